/* dense.c - fully connected layer: y = act(x W + b) over the last axis.
 * W is [in, units] (row-major), so forward is one GEMM with no transpose. */
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
#include "layer.h"

typedef struct dense {
    int units;
    int use_bias;
    int init;        /* -1: from the activation (He for relu, else Glorot) */
} dense;

static const char *const keys[] = {"units", "activation", "use_bias", "init", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    dense *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    int r = nn_layer_get_int_or_vocab(j, "units", path, 1, 1 << 20, INT32_MIN, &p->units, e);
    if (!r)
        r = nn_layer_get_act(j, "activation", path, &L->act, e);
    if (!r)
        r = nn_layer_get_bool(j, "use_bias", path, 1, &p->use_bias, e);
    if (r)
        return r;
    return nn_layer_get_init(j, path, &p->init, e);
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    dense *p = L->p;
    const nn_shape *s = &L->in_shape[0];
    int in = s->d[s->nd - 1];
    int r = nn_layer_vocab(L, "units", &p->units, e);
    if (r)
        return r;
    L->out_shape = *s;
    L->out_shape.d[s->nd - 1] = p->units;
    nn_init wi, bi;
    nn_layer_pick_init(p->init, L->act, &wi, &bi);
    int wd[2] = {in, p->units};
    nn_layer_add_param(L, "weight", 2, wd, wi, in, p->units);
    if (p->use_bias)
        nn_layer_add_param(L, "bias", 1, &p->units, bi, in, p->units);
    size_t rows = nn_shape_size(s) / (size_t)in;
    L->flops = 2.0 * (double)rows * in * p->units;
    return 0;
}

static size_t rows_of(const nn_layer *L, int n)
{
    const nn_shape *s = &L->in_shape[0];
    return (size_t)n * (nn_shape_size(s) / (size_t)s->d[s->nd - 1]);
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    dense *p = L->p;
    size_t rows = rows_of(L, r->n), in = (size_t)L->in_shape[0].d[L->in_shape[0].nd - 1], u = (size_t)p->units;
    /* y = act(x W + b): the bias and activation are the GEMM's epilogue */
    return nn_gemm_bias_act(r->dev, 0, 0, rows, u, in, 1.0f, L->x[0], 0, in, L->param[0].w, 0, u, 0.0f, L->y, 0, u,
                            p->use_bias ? L->param[1].w : NULL, L->act, e);
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    dense *p = L->p;
    size_t rows = rows_of(L, r->n), in = (size_t)L->in_shape[0].d[L->in_shape[0].nd - 1], u = (size_t)p->units;
    int rc = 0;
    /* dY *= act'(Y) and db = column sums of dY, in one pass */
    if (p->use_bias) {
        int vec = (r->dev->type & CL_DEVICE_TYPE_CPU) && u % 8 == 0;
        rc = nn_launch(r->dev, "act_bias_grad", vec ? u / 8 : u, vec, e, 7, KMEM(L->y), KMEM(L->dy),
                       KMEM(L->param[1].g), KINT(rows), KINT(u), KINT(L->act), KINT(vec));
    } else if (L->act != NN_ACT_NONE) {
        rc = nn_launch(r->dev, "act_grad_inplace", rows * u, 0, e, 4, KMEM(L->y), KMEM(L->dy), KINT(rows * u),
                       KINT(L->act));
    }
    /* dW[in, u] = X^T dY */
    if (!rc)
        rc = nn_gemm(r->dev, 1, 0, in, u, rows, 1.0f, L->x[0], 0, in, L->dy, 0, u, 0.0f, L->param[0].g, 0, u, e);
    /* dX[rows, in] += dY W^T */
    if (!rc && L->dx[0])
        rc = nn_gemm(r->dev, 0, 1, rows, in, u, 1.0f, L->dy, 0, u, L->param[0].w, 0, u, 1.0f, L->dx[0], 0, in, e);
    return rc;
}

/* With "activation": "sigmoid" the output is a probability (binary_cross_entropy reads it as one). */
static nn_out_kind output(const nn_layer *L) { return L->act == NN_ACT_SIGMOID ? NN_OUT_SIGMOID : NN_OUT_VALUES; }

const nn_layer_type nn_layer_dense = {
    .name = "dense",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
    .output = output,
};
