/* activation.c - the standalone activation layers relu, sigmoid, tanh,
 * leaky_relu, elu, gelu. The registry entries share this file: they differ
 * only in the activation code (and alpha) passed to the shared kernels
 * (cl/activation.cl). leaky_relu and elu take "alpha"; gelu (exact erf form)
 * gets its gradient from its input x, not from its output. */
#include <stdlib.h>

#include "layer.h"

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape = L->in_shape[0];
    L->flops = (double)nn_shape_size(&L->out_shape);
    return 0;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    return nn_act_forward(r->dev, L->act, L->x[0], L->y, (size_t)r->n * nn_shape_size(&L->out_shape), e);
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    if (!L->dx[0])
        return 0;
    return nn_act_backward(r->dev, L->act, L->y, L->dy, L->dx[0], (size_t)r->n * nn_shape_size(&L->out_shape), e);
}

/* A sigmoid layer's output is a probability (binary_cross_entropy reads it as one). */
static nn_out_kind output(const nn_layer *L) { return L->act == NN_ACT_SIGMOID ? NN_OUT_SIGMOID : NN_OUT_VALUES; }

#define ACT_PARSE(nm, code)                                                      \
    static int parse_##nm(nn_layer *L, const cJSON *j, const char *path, nn_err *e) \
    {                                                                            \
        L->act = code;                                                           \
        return 0;                                                                \
    }                                                                            \
    const nn_layer_type nn_layer_##nm = {                                        \
        .name = #nm, .min_inputs = 1, .max_inputs = 1, .parse = parse_##nm,      \
        .shape = shape, .forward = forward, .backward = backward,                \
        .output = output,                                                        \
    };

ACT_PARSE(relu, NN_ACT_RELU)
ACT_PARSE(sigmoid, NN_ACT_SIGMOID)
ACT_PARSE(tanh, NN_ACT_TANH)

/* leaky_relu, elu, gelu: L->p holds alpha (NULL for gelu). */
static float alpha_of(const nn_layer *L) { return L->p ? *(const float *)L->p : 0.0f; }

static int forward_alpha(nn_layer *L, const nn_run *r, nn_err *e)
{
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    nn_rows rs = nn_elem_split(r->dev, n);
    return nn_launch(r->dev, "act_forward_alpha", rs.items, rs.local, e, 6, KMEM(L->x[0]), KMEM(L->y), KINT(n),
                     KINT(L->act), KFLT(alpha_of(L)), KINT(rs.per));
}

static int backward_alpha(nn_layer *L, const nn_run *r, nn_err *e)
{
    if (!L->dx[0])
        return 0;
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    nn_rows rs = nn_elem_split(r->dev, n);
    if (L->act == NN_ACT_GELU)
        return nn_launch(r->dev, "gelu_backward_acc", rs.items, rs.local, e, 5, KMEM(L->x[0]), KMEM(L->dy),
                         KMEM(L->dx[0]), KINT(n), KINT(rs.per));
    return nn_launch(r->dev, "act_backward_alpha_acc", rs.items, rs.local, e, 7, KMEM(L->y), KMEM(L->dy),
                     KMEM(L->dx[0]), KINT(n), KINT(L->act), KFLT(alpha_of(L)), KINT(rs.per));
}

static const char *const alpha_keys[] = {"alpha", NULL};

/* alpha >= 0: the gradients are computed from the output's sign. */
#define ACT_PARSE_ALPHA(nm, code, dflt)                                              \
    static int parse_##nm(nn_layer *L, const cJSON *j, const char *path, nn_err *e) \
    {                                                                                \
        double a;                                                                    \
        L->act = code;                                                               \
        int rc = nn_layer_get_num(j, "alpha", path, 0.0, 100.0, dflt, &a, e);        \
        if (rc)                                                                      \
            return rc;                                                               \
        float *p = malloc(sizeof *p);                                                \
        if (!p)                                                                      \
            return nn_fail(e, NN_ENOMEM, "out of memory");                        \
        *p = (float)a;                                                               \
        L->p = p;                                                                    \
        return 0;                                                                    \
    }                                                                                \
    const nn_layer_type nn_layer_##nm = {                                            \
        .name = #nm, .keys = alpha_keys, .min_inputs = 1, .max_inputs = 1,           \
        .parse = parse_##nm, .shape = shape, .forward = forward_alpha,               \
        .backward = backward_alpha,                                                  \
    };

ACT_PARSE_ALPHA(leaky_relu, NN_ACT_LEAKY_RELU, 0.01)
ACT_PARSE_ALPHA(elu, NN_ACT_ELU, 1.0)

static int parse_gelu(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    L->act = NN_ACT_GELU;
    return 0;
}

const nn_layer_type nn_layer_gelu = {
    .name = "gelu", .min_inputs = 1, .max_inputs = 1, .parse = parse_gelu,
    .shape = shape, .forward = forward_alpha, .backward = backward_alpha,
};
