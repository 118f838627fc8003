/* dropout.c - inverted dropout (scaled at training time, identity at inference). */
#include <stdlib.h>

#include "layer.h"

typedef struct dropout {
    float rate;
} dropout;

static const char *const keys[] = {"rate", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    double rate;
    int r = nn_layer_get_num(j, "rate", path, 0.0, 0.99, 0.5, &rate, e);
    if (r)
        return r;
    dropout *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    p->rate = (float)rate;
    L->p = p;
    return 0;
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape = L->in_shape[0];
    return 0;
}

static uint32_t stream_of(const nn_layer *L, const nn_run *r)
{
    return (uint32_t)(r->step * 0x9E3779B1u) ^ (uint32_t)(L->index * 0x632BE5ABu);
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    dropout *p = L->p;
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    if (!r->train || p->rate == 0.0f) {
        cl_int st = clEnqueueCopyBuffer(r->dev->q, L->x[0], L->y, 0, 0, n * sizeof(float), 0, NULL, NULL);
        return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "dropout copy");
    }
    nn_rows rs = nn_elem_split(r->dev, n);
    return nn_launch(r->dev, "dropout_forward", rs.items, rs.local, e, 8, KMEM(L->x[0]), KMEM(L->y), KINT(n),
                     KFLT(p->rate), KUINT(r->seed), KUINT(r->seed >> 32), KUINT(stream_of(L, r)), KINT(rs.per));
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    dropout *p = L->p;
    if (!L->dx[0])
        return 0;
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    nn_rows rs = nn_elem_split(r->dev, n);
    return nn_launch(r->dev, "dropout_backward_acc", rs.items, rs.local, e, 8, KMEM(L->dy), KMEM(L->dx[0]), KINT(n),
                     KFLT(p->rate == 0.0f ? 0.0f : p->rate), KUINT(r->seed), KUINT(r->seed >> 32),
                     KUINT(stream_of(L, r)), KINT(rs.per));
}

const nn_layer_type nn_layer_dropout = {
    .name = "dropout",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
