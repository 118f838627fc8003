/* layernorm.c - layer normalisation over the last axis (PyTorch semantics):
 *     y = (x - mean) / sqrt(var + eps) * weight + bias
 * with the mean and the biased variance of each row of the last axis (D
 * values); the same in training and inference. Keys: eps (1e-5), init
 * ("torch" only: accepted for symmetry with the other layers; PyTorch's
 * nn.LayerNorm starts as this one always does).
 * Parameters "weight" (ones) and "bias" (zeros), [D].
 *
 * Scratch per sample (L->work): 2*R + 2*D floats, R = rows per sample
 * (the product of the other axes): [mean, rstd] per row, saved by every
 * forward for the backward, then per-sample partial sums of dweight / dbias.
 *
 * Kernels (cl/layernorm.cl): forward, one work item per row (two passes);
 * backward dx += rstd (g - mean(g) - x_hat mean(g x_hat)), g = dy * weight,
 * one work item per row; the parameter gradients in two deterministic
 * passes: per-(column, sample) partial sums over the sample's R rows, then
 * per column over the samples (no atomics). */
#include <stdlib.h>

#include "layer.h"

typedef struct layernorm {
    float eps;
    int D, R; /* normalised length; rows per sample */
} layernorm;

static const char *const keys[] = {"eps", "init", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    double eps;
    int init, r = nn_layer_get_num(j, "eps", path, 1e-12, 1.0, 1e-5, &eps, e);
    if (!r)
        r = nn_layer_get_init_torch(j, path, &init, e);
    if (r)
        return r;
    layernorm *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    p->eps = (float)eps;
    L->p = p;
    return 0;
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    layernorm *p = L->p;
    L->out_shape = L->in_shape[0];
    const nn_shape *s = &L->out_shape;
    p->D = s->d[s->nd - 1];
    p->R = (int)(nn_shape_size(s) / (size_t)p->D);
    nn_layer_add_param(L, "weight", 1, &p->D, NN_INIT_ONE, p->D, p->D);
    nn_layer_add_param(L, "bias", 1, &p->D, NN_INIT_ZERO, p->D, p->D);
    L->scratch = 2 * (size_t)p->R + 2 * (size_t)p->D;
    L->flops = 8.0 * (double)nn_shape_size(s);
    return 0;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    layernorm *p = L->p;
    if (r->n <= 0)
        return 0;
    int rows = r->n * p->R;
    return nn_launch(r->dev, "ln_forward", (size_t)rows, 0, e, 8, KMEM(L->x[0]), KMEM(L->y), KMEM(L->param[0].w),
                     KMEM(L->param[1].w), KMEM(L->work), KINT(rows), KINT(p->D), KFLT(p->eps));
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    layernorm *p = L->p;
    if (r->n <= 0)
        return 0;
    nn_dev *d = r->dev;
    int rows = r->n * p->R, D = p->D, poff = 2 * rows; /* partials [n, 2D] after the row statistics */
    int rc = 0;
    if (L->dx[0])
        rc = nn_launch(d, "ln_backward_dx", (size_t)rows, 0, e, 7, KMEM(L->x[0]), KMEM(L->dy), KMEM(L->dx[0]),
                       KMEM(L->param[0].w), KMEM(L->work), KINT(rows), KINT(D));
    if (!rc)
        rc = nn_launch2(d, "ln_param_grad_partial", (size_t)D, (size_t)r->n, 0, 0, e, 7, KMEM(L->x[0]),
                        KMEM(L->dy), KMEM(L->work), KINT(poff), KINT(r->n), KINT(p->R), KINT(D));
    if (!rc)
        rc = nn_launch(d, "seq_sum_rows", (size_t)D, 0, e, 6, KMEM(L->work), KINT(poff), KINT(2 * D), KINT(r->n),
                       KINT(D), KMEM(L->param[0].g));
    if (!rc)
        rc = nn_launch(d, "seq_sum_rows", (size_t)D, 0, e, 6, KMEM(L->work), KINT(poff + D), KINT(2 * D),
                       KINT(r->n), KINT(D), KMEM(L->param[1].g));
    return rc;
}

const nn_layer_type nn_layer_layernorm = {
    .name = "layernorm",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
