/* activation.c - the standalone activation layers relu, sigmoid, tanh.
 * Three registry entries share this file: they differ only in the
 * activation code passed to the shared kernels (cl/activation.cl). */
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

#define ACT_PARSE(nm, code)                                                      \
    static int parse_##nm(nn_layer *L, const cJSON *j, const char *path, nn_err *e) \
    {                                                                            \
        L->act = code;                                                           \
        return 0;                                                                \
    }                                                                            \
    const nn_layer_type nn_layer_##nm = {                                        \
        .name = #nm, .min_inputs = 1, .max_inputs = 1, .parse = parse_##nm,      \
        .shape = shape, .forward = forward, .backward = backward,                \
    };

ACT_PARSE(relu, NN_ACT_RELU)
ACT_PARSE(sigmoid, NN_ACT_SIGMOID)
ACT_PARSE(tanh, NN_ACT_TANH)
