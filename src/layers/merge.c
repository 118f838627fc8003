/* merge.c - the graph layers that join 2 to NN_MAX_INPUTS inputs:
 *   add    - elementwise sum of inputs of identical shape;
 *   concat - concatenation along "axis" of the per-sample shape (default 0:
 *            the channel axis of [C, H, W], the feature axis of [F]; negative
 *            values count from the end); every other dimension must match.
 * Backward accumulates dy (add) or its slice (concat) into every input's dx. */
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"

/* The name of input k: the layers live in one array (spec->layers) and L->in
 * holds indices into it (-1 = the network input). */
static const char *input_name(const nn_layer *L, int k)
{
    return L->in[k] < 0 ? "input" : (L - L->index)[L->in[k]].name;
}

static int mismatch(const nn_layer *L, const char *path, int k, const char *why, nn_err *e)
{
    char a[96], b[96];
    return nn_fail(e, NN_EDATA, "%s (%s): input '%s' has shape %s but '%s' has %s%s", path, L->name,
                   input_name(L, 0), nn_shape_str(&L->in_shape[0], a, sizeof a), input_name(L, k),
                   nn_shape_str(&L->in_shape[k], b, sizeof b), why);
}

/* ----------------------------------------------------------------- add */

static int add_shape(nn_layer *L, const char *path, nn_err *e)
{
    const nn_shape *s0 = &L->in_shape[0];
    for (int k = 1; k < L->nin; k++) {
        const nn_shape *s = &L->in_shape[k];
        int same = s->nd == s0->nd;
        for (int i = 0; same && i < s->nd; i++)
            same = s->d[i] == s0->d[i];
        if (!same)
            return mismatch(L, path, k, " (add needs inputs of identical shape)", e);
    }
    L->out_shape = *s0;
    L->flops = (double)(L->nin - 1) * (double)nn_shape_size(s0);
    return 0;
}

static int add_forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    int rc = nn_launch(r->dev, "merge_add2", n, 0, e, 4, KMEM(L->x[0]), KMEM(L->x[1]), KMEM(L->y), KINT(n));
    for (int k = 2; k < L->nin && !rc; k++)
        rc = nn_launch(r->dev, "merge_acc", n, 0, e, 3, KMEM(L->y), KMEM(L->x[k]), KINT(n));
    return rc;
}

static int add_backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    int rc = 0;
    for (int k = 0; k < L->nin && !rc; k++)
        if (L->dx[k])
            rc = nn_launch(r->dev, "merge_acc", n, 0, e, 3, KMEM(L->dx[k]), KMEM(L->dy), KINT(n));
    return rc;
}

const nn_layer_type nn_layer_add = {
    .name = "add",
    .min_inputs = 2,
    .max_inputs = NN_MAX_INPUTS,
    .shape = add_shape,
    .forward = add_forward,
    .backward = add_backward,
};

/* -------------------------------------------------------------- concat */

typedef struct concat {
    int axis;      /* as given */
    int ax;        /* resolved against the inputs' rank by shape() */
} concat;

static const char *const concat_keys[] = {"axis", NULL};

static int concat_parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    int axis;
    int r = nn_layer_get_int(j, "axis", path, -NN_MAX_DIMS, NN_MAX_DIMS - 1, 0, &axis, e);
    if (r)
        return r;
    concat *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    p->axis = axis;
    L->p = p;
    return 0;
}

static int concat_shape(nn_layer *L, const char *path, nn_err *e)
{
    concat *p = L->p;
    const nn_shape *s0 = &L->in_shape[0];
    int ax = p->axis < 0 ? p->axis + s0->nd : p->axis;
    if (ax < 0 || ax >= s0->nd) {
        char a[96];
        return nn_fail(e, NN_EDATA, "%s.axis: %d is out of range for input '%s' of shape %s (axes %d to %d)", path,
                       p->axis, input_name(L, 0), nn_shape_str(s0, a, sizeof a), -s0->nd, s0->nd - 1);
    }
    p->ax = ax;
    L->out_shape = *s0;
    for (int k = 1; k < L->nin; k++) {
        const nn_shape *s = &L->in_shape[k];
        if (s->nd != s0->nd)
            return mismatch(L, path, k, " (concat needs inputs of the same rank)", e);
        for (int i = 0; i < s->nd; i++)
            if (i != ax && s->d[i] != s0->d[i]) {
                char why[96];
                snprintf(why, sizeof why, " (concat along axis %d needs every other dimension to match)", ax);
                return mismatch(L, path, k, why, e);
            }
        L->out_shape.d[ax] += s->d[ax];
    }
    L->flops = 0;
    return 0;
}

/* Input k as [rows, bk] inside the output's [rows, bo] at column off. */
static void concat_geom(const nn_layer *L, int k, int n, int *rows, int *bk, int *bo, int *off)
{
    const concat *p = L->p;
    size_t outer = 1, inner = 1, before = 0;
    for (int i = 0; i < p->ax; i++)
        outer *= (size_t)L->out_shape.d[i];
    for (int i = p->ax + 1; i < L->out_shape.nd; i++)
        inner *= (size_t)L->out_shape.d[i];
    for (int j = 0; j < k; j++)
        before += (size_t)L->in_shape[j].d[p->ax];
    *rows = (int)((size_t)n * outer);
    *bk = (int)((size_t)L->in_shape[k].d[p->ax] * inner);
    *bo = (int)((size_t)L->out_shape.d[p->ax] * inner);
    *off = (int)(before * inner);
}

static int concat_forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    int rc = 0;
    for (int k = 0; k < L->nin && !rc; k++) {
        int rows, bk, bo, off;
        concat_geom(L, k, r->n, &rows, &bk, &bo, &off);
        rc = nn_launch(r->dev, "concat_forward", (size_t)rows * (size_t)bk, 0, e, 6, KMEM(L->x[k]), KMEM(L->y),
                       KINT(rows), KINT(bk), KINT(bo), KINT(off));
    }
    return rc;
}

static int concat_backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    int rc = 0;
    for (int k = 0; k < L->nin && !rc; k++) {
        if (!L->dx[k])
            continue;
        int rows, bk, bo, off;
        concat_geom(L, k, r->n, &rows, &bk, &bo, &off);
        rc = nn_launch(r->dev, "concat_backward_acc", (size_t)rows * (size_t)bk, 0, e, 6, KMEM(L->dy),
                       KMEM(L->dx[k]), KINT(rows), KINT(bk), KINT(bo), KINT(off));
    }
    return rc;
}

const nn_layer_type nn_layer_concat = {
    .name = "concat",
    .keys = concat_keys,
    .min_inputs = 2,
    .max_inputs = NN_MAX_INPUTS,
    .parse = concat_parse,
    .shape = concat_shape,
    .forward = concat_forward,
    .backward = concat_backward,
};
