#include "feed.h"

#include <stdlib.h>
#include <string.h>

#include "../dist.h"

int nn_feed_resident(nn_feed *f, nn_dev *d, const nn_dataset *ds, const int *rows, size_t nrows, nn_err *e)
{
    memset(f, 0, sizeof *f);
    f->n = rows ? nrows : ds->n;
    f->c = ds->c;
    f->h = ds->h;
    f->w = ds->w;
    return nn_devdata_upload(d, ds, rows, nrows, &f->dd, e);
}

int nn_feed_stream(nn_feed *f, nn_dev *d, const nn_imgset *set, const int *rows, size_t nrows, int B, int c, int h,
                   int w, nn_err *e)
{
    memset(f, 0, sizeof *f);
    f->streaming = 1;
    f->set = set;
    f->n = rows ? nrows : set->n;
    f->B = B;
    f->c = c;
    f->h = h;
    f->w = w;
    f->rows = malloc((f->n ? f->n : 1) * sizeof(int));
    f->order = malloc((f->n ? f->n : 1) * sizeof(int));
    if (!f->rows || !f->order)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n; i++) {
        f->rows[i] = rows ? rows[i] : (int)i;
        f->order[i] = (int)i;
    }
    /* the staging area: one batch, in the shape of a small resident dataset */
    nn_dataset stage = {0};
    stage.n = (size_t)B;
    stage.c = c;
    stage.h = h;
    stage.w = w;
    stage.dim = (size_t)c * h * w;
    stage.task = NN_TASK_CLASSIFY;
    stage.x = calloc((size_t)B * stage.dim, sizeof(float));
    stage.y = calloc((size_t)B, sizeof(int));
    int r = (!stage.x || !stage.y) ? nn_fail(e, NN_ENOMEM, "out of memory")
                                   : nn_devdata_upload(d, &stage, NULL, 0, &f->dd, e);
    free(stage.x);
    free(stage.y);
    return r;
}

int nn_feed_begin(nn_feed *f, nn_dev *d, const int *order, size_t from, nn_err *e)
{
    if (!f->streaming) {
        if (!order) {
            int *id = malloc((f->n ? f->n : 1) * sizeof(int));
            if (!id)
                return nn_fail(e, NN_ENOMEM, "out of memory");
            for (size_t i = 0; i < f->n; i++)
                id[i] = (int)i;
            int r = nn_devdata_order(d, &f->dd, id, e);
            free(id);
            return r;
        }
        return nn_devdata_order(d, &f->dd, order, e);
    }
    nn_feed_end(f);
    for (size_t i = 0; i < f->n; i++)
        f->order[i] = order ? order[i] : (int)i;
    if (from > f->n)
        from = f->n;
    const nn_dist *dist = nn_dist_get();
    int sharded = f->gB > 0;
    return nn_prefetch_start(&f->pf, f->set, f->rows, f->order + from, f->n - from, sharded ? f->gB : f->B,
                             sharded ? dist->rank : 0, sharded ? dist->size : 1, f->c, f->h, f->w, e);
}

int nn_feed_batch(nn_feed *f, nn_net *net, size_t start, int n, cl_mem target, const nn_augment *aug,
                  uint64_t seed, uint64_t step, nn_err *e)
{
    nn_devdata *dd = &f->dd;
    size_t at = start;
    if (n == 0 && !f->streaming)
        return 0;
    if (f->streaming) {
        const float *x;
        const int *y;
        int got;
        int r = nn_prefetch_next(f->pf, &x, &y, &got, e);
        if (r)
            return r;
        if (got != n)
            return nn_fail(e, NN_ESOFTWARE, "image prefetch out of step (%d of %d samples)", got, n);
        if (n == 0)
            return 0;
        /* blocking writes: the host buffers go back to the decoder next call */
        if ((r = nn_buf_write(net->dev, dd->x, 0, (size_t)n * dd->dim * sizeof(float), x, 1, e)) ||
            (r = nn_buf_write(net->dev, dd->y, 0, (size_t)n * sizeof(int), y, 1, e)))
            return r;
        at = 0;
    }
    if (!aug || (!aug->flip && !aug->shift) || f->h * f->w <= 1)
        return nn_devdata_batch(net, dd, at, n, target, e);
    nn_dev *d = net->dev;
    int r = nn_launch(d, "gather_aug", (size_t)n * dd->dim, 0, e, 15, KMEM(dd->x), KMEM(dd->idx), KINT(at), KINT(n),
                      KINT(f->c), KINT(f->h), KINT(f->w), KMEM(net->norm ? net->norm : dd->x), KINT(net->norm != NULL),
                      KMEM(net->x_in), KINT(aug->flip), KINT(aug->shift), KUINT(seed), KUINT(seed >> 32), KUINT(step));
    if (r || !target || !dd->has_targets)
        return r;
    return nn_launch(d, "gather_ints", (size_t)n, 0, e, 5, KMEM(dd->y), KMEM(dd->idx), KINT(at), KINT(n), KMEM(target));
}

void nn_feed_shard(nn_feed *f, int gbatch)
{
    f->gB = gbatch;
}

void nn_feed_end(nn_feed *f)
{
    nn_prefetch_stop(f->pf);
    f->pf = NULL;
}

void nn_feed_free(nn_feed *f)
{
    nn_feed_end(f);
    nn_devdata_free(&f->dd);
    free(f->rows);
    free(f->order);
    memset(f, 0, sizeof *f);
}
