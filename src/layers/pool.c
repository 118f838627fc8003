/* pool.c - pooling over [C, H, W] samples (NCHW activations):
 *   maxpool, avgpool   keys pool (int or [ph, pw], default 2), stride (int or
 *                      pair, default = pool), padding (int or pair, default 0,
 *                      at most half the window as in PyTorch); output
 *                      floor((H + 2p - k) / s) + 1 per axis.
 *   global_avgpool     [C, H, W] -> [C], the mean of each channel.
 * maxpool pads with -inf: padding never wins. Its forward stores, per output,
 * the index h*W + w of the window's first maximum (ties: the first in
 * row-major order) in the layer's scratch (one int per output); backward
 * routes each output's gradient to that element.
 * avgpool EXCLUDES padding from the count (PyTorch count_include_pad=False,
 * TensorFlow/Keras "same" behaviour): a border window averages only the
 * input elements it covers.
 * Backward kernels gather (no atomics) and accumulate into dx; maxpool with
 * windows that do not overlap scatters each output's gradient to its argmax
 * instead (every input element is in at most one window: no races either).
 * The 2-D kernels loop over rows, one per work item on GPUs and a long run
 * per item on CPUs (nn_row_split). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct pool2d {
    int max;            /* 1: maxpool, 0: avgpool */
    int k[2], s[2], pad[2];
    int C, H, W, OH, OW;
} pool2d;

static const char *const keys[] = {"pool", "stride", "padding", NULL};

static int parse_common(nn_layer *L, const cJSON *j, const char *path, int max, nn_err *e)
{
    pool2d *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    p->max = max;
    static const int two[2] = {2, 2}, zero[2] = {0, 0};
    int r = nn_layer_get_pair(j, "pool", path, 1, 1 << 12, two, p->k, e);
    if (!r)
        r = nn_layer_get_pair(j, "stride", path, 1, 1 << 12, p->k, p->s, e);
    if (!r)
        r = nn_layer_get_pair(j, "padding", path, 0, 1 << 12, zero, p->pad, e);
    if (r)
        return r;
    for (int a = 0; a < 2; a++)
        if (p->pad[a] > p->k[a] / 2)
            return nn_fail(e, NN_EDATA, "%s.padding: padding %d is more than half the %dx%d window (at most %d)",
                           path, p->pad[a], p->k[0], p->k[1], p->k[a] / 2);
    return 0;
}

static int parse_max(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    return parse_common(L, j, path, 1, e);
}

static int parse_avg(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    return parse_common(L, j, path, 0, e);
}

static int need_3d(const nn_layer *L, const char *path, nn_err *e)
{
    const nn_shape *s = &L->in_shape[0];
    if (s->nd == 3)
        return 0;
    char b[64];
    return nn_fail(e, NN_EDATA, "%s: %s needs a [channels, height, width] input; got %s%s", path, L->type->name,
                   nn_shape_str(s, b, sizeof b),
                   s->nd < 3 ? " (give the input a shape such as [1, 28, 28] and flatten after the pooling, not "
                               "before it)"
                             : "");
}

static int shape2d(nn_layer *L, const char *path, nn_err *e)
{
    pool2d *p = L->p;
    int r = need_3d(L, path, e);
    if (r)
        return r;
    const nn_shape *s = &L->in_shape[0];
    p->C = s->d[0];
    p->H = s->d[1];
    p->W = s->d[2];
    int in[2] = {p->H, p->W}, out[2];
    for (int a = 0; a < 2; a++) {
        if (p->k[a] > in[a] + 2 * p->pad[a]) {
            char pp[48];
            if (p->pad[0] == p->pad[1])
                snprintf(pp, sizeof pp, "%d", p->pad[0]);
            else
                snprintf(pp, sizeof pp, "[%d, %d]", p->pad[0], p->pad[1]);
            return nn_fail(e, NN_EDATA, "%s.pool: %dx%d window does not fit the %dx%d input (with padding %s)", path,
                           p->k[0], p->k[1], p->H, p->W, pp);
        }
        out[a] = (in[a] + 2 * p->pad[a] - p->k[a]) / p->s[a] + 1;
    }
    p->OH = out[0];
    p->OW = out[1];
    L->out_shape.nd = 3;
    L->out_shape.d[0] = p->C;
    L->out_shape.d[1] = p->OH;
    L->out_shape.d[2] = p->OW;
    size_t outs = (size_t)p->C * p->OH * p->OW;
    L->flops = (double)outs * p->k[0] * p->k[1];
    L->scratch = p->max ? outs : 0; /* argmax indices (ints in a float-sized slot) */
    return 0;
}

static int forward2d(nn_layer *L, const nn_run *r, nn_err *e)
{
    pool2d *p = L->p;
    int planes = r->n * p->C;
    nn_rows ro = nn_row_split(r->dev, (size_t)planes * p->OH, 1);
    if (p->max)
        return nn_launch(r->dev, "maxpool_forward", ro.items, ro.local, e, 15, KMEM(L->x[0]), KMEM(L->y),
                         KMEM(L->work), KINT(planes), KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]),
                         KINT(p->s[0]), KINT(p->s[1]), KINT(p->pad[0]), KINT(p->pad[1]), KINT(p->OH), KINT(p->OW),
                         KINT(ro.per));
    return nn_launch(r->dev, "avgpool_forward", ro.items, ro.local, e, 14, KMEM(L->x[0]), KMEM(L->y), KINT(planes),
                     KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]), KINT(p->s[0]), KINT(p->s[1]),
                     KINT(p->pad[0]), KINT(p->pad[1]), KINT(p->OH), KINT(p->OW), KINT(ro.per));
}

static int backward2d(nn_layer *L, const nn_run *r, nn_err *e)
{
    pool2d *p = L->p;
    if (!L->dx[0])
        return 0;
    int planes = r->n * p->C;
    if (p->max && p->s[0] >= p->k[0] && p->s[1] >= p->k[1]) {
        nn_rows ro = nn_row_split(r->dev, (size_t)planes * p->OH, 1);
        return nn_launch(r->dev, "maxpool_backward_scatter", ro.items, ro.local, e, 9, KMEM(L->dy), KMEM(L->work),
                         KMEM(L->dx[0]), KINT(planes), KINT(p->H), KINT(p->W), KINT(p->OH), KINT(p->OW),
                         KINT(ro.per));
    }
    nn_rows ri = nn_row_split(r->dev, (size_t)planes * p->H, 1);
    if (p->max)
        return nn_launch(r->dev, "maxpool_backward", ri.items, ri.local, e, 15, KMEM(L->dy), KMEM(L->work),
                         KMEM(L->dx[0]), KINT(planes), KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]),
                         KINT(p->s[0]), KINT(p->s[1]), KINT(p->pad[0]), KINT(p->pad[1]), KINT(p->OH), KINT(p->OW),
                         KINT(ri.per));
    return nn_launch(r->dev, "avgpool_backward", ri.items, ri.local, e, 14, KMEM(L->dy), KMEM(L->dx[0]), KINT(planes),
                     KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]), KINT(p->s[0]), KINT(p->s[1]),
                     KINT(p->pad[0]), KINT(p->pad[1]), KINT(p->OH), KINT(p->OW), KINT(ri.per));
}

/* ------------------------------------------------------- global_avgpool */

static int shape_gap(nn_layer *L, const char *path, nn_err *e)
{
    int r = need_3d(L, path, e);
    if (r)
        return r;
    const nn_shape *s = &L->in_shape[0];
    L->out_shape.nd = 1;
    L->out_shape.d[0] = s->d[0];
    L->flops = (double)nn_shape_size(s);
    return 0;
}

static int forward_gap(nn_layer *L, const nn_run *r, nn_err *e)
{
    const nn_shape *s = &L->in_shape[0];
    int planes = r->n * s->d[0], hw = s->d[1] * s->d[2];
    return nn_launch(r->dev, "gap_forward", (size_t)planes, 0, e, 4, KMEM(L->x[0]), KMEM(L->y), KINT(planes),
                     KINT(hw));
}

static int backward_gap(nn_layer *L, const nn_run *r, nn_err *e)
{
    if (!L->dx[0])
        return 0;
    const nn_shape *s = &L->in_shape[0];
    int planes = r->n * s->d[0], hw = s->d[1] * s->d[2];
    return nn_launch(r->dev, "gap_backward", (size_t)planes, 0, e, 4, KMEM(L->dy), KMEM(L->dx[0]), KINT(planes),
                     KINT(hw));
}

const nn_layer_type nn_layer_maxpool = {
    .name = "maxpool",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse_max,
    .shape = shape2d,
    .forward = forward2d,
    .backward = backward2d,
};

const nn_layer_type nn_layer_avgpool = {
    .name = "avgpool",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse_avg,
    .shape = shape2d,
    .forward = forward2d,
    .backward = backward2d,
};

const nn_layer_type nn_layer_global_avgpool = {
    .name = "global_avgpool",
    .min_inputs = 1,
    .max_inputs = 1,
    .shape = shape_gap,
    .forward = forward_gap,
    .backward = backward_gap,
};
