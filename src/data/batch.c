#include "batch.h"

#include <stdlib.h>
#include <string.h>

int nn_devdata_upload(nn_dev *d, const nn_dataset *ds, const int *rows, size_t nrows, nn_devdata *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    size_t n = rows ? nrows : ds->n, dim = ds->dim;
    out->n = n;
    out->dim = dim;
    out->has_targets = ds->y || ds->t;
    out->tdim = ds->t ? ds->tdim : 0;
    out->ylen = ds->ylen > 1 ? ds->ylen : 1;
    size_t tsz = ds->t ? (size_t)ds->tdim * sizeof(float) : (size_t)out->ylen * sizeof(int);
    int r = nn_buf_alloc(d, (n ? n : 1) * dim * sizeof(float), "the dataset", &out->x, e);
    if (!r)
        r = nn_buf_alloc(d, (n ? n : 1) * tsz, "the dataset labels", &out->y, e);
    if (!r)
        r = nn_buf_alloc(d, (n ? n : 1) * sizeof(int), "the sample order", &out->idx, e);
    if (r)
        return r;
    if (!rows) {
        r = nn_buf_write(d, out->x, 0, n * dim * sizeof(float), ds->x, 1, e);
        if (!r && out->has_targets)
            r = nn_buf_write(d, out->y, 0, n * tsz, ds->t ? (const void *)ds->t : (const void *)ds->y, 1, e);
    } else {
        /* copy the selected rows in chunks through a host staging buffer */
        /* at most 4096 rows and 64 MiB of them: a few very wide rows must not
         * ask for a 4096-row buffer (2 rows of 3M features: 48 GB) */
        size_t row = dim * sizeof(float) > tsz ? dim * sizeof(float) : tsz;
        size_t chunk = ((size_t)64 << 20) / (row ? row : 1);
        chunk = chunk < 1 ? 1 : chunk > 4096 ? 4096 : chunk;
        if (chunk > n)
            chunk = n ? n : 1;
        float *hx = malloc(chunk * dim * sizeof(float));
        unsigned char *hy = malloc(chunk * tsz);
        if (!hx || !hy)
            r = nn_oom(e, "staging %zu rows of the dataset (%zu bytes)", chunk, chunk * (dim * sizeof(float) + tsz));
        for (size_t s = 0; !r && s < n; s += chunk) {
            size_t m = n - s < chunk ? n - s : chunk;
            for (size_t i = 0; i < m; i++) {
                size_t src = (size_t)rows[s + i];
                memcpy(hx + i * dim, ds->x + src * dim, dim * sizeof(float));
                if (ds->t)
                    memcpy(hy + i * tsz, ds->t + src * (size_t)ds->tdim, tsz);
                else if (ds->y)
                    memcpy(hy + i * tsz, ds->y + src * (size_t)out->ylen, tsz);
            }
            r = nn_buf_write(d, out->x, s * dim * sizeof(float), m * dim * sizeof(float), hx, 1, e);
            if (!r && out->has_targets)
                r = nn_buf_write(d, out->y, s * tsz, m * tsz, hy, 1, e);
        }
        free(hx);
        free(hy);
    }
    if (r)
        return r;
    int *ord = malloc((n ? n : 1) * sizeof(int));
    if (!ord)
        return nn_oom(e, "for the sample order (%zu samples)", n);
    for (size_t i = 0; i < n; i++)
        ord[i] = (int)i;
    r = nn_devdata_order(d, out, ord, e);
    free(ord);
    return r;
}

int nn_devdata_order(nn_dev *d, nn_devdata *dd, const int *order, nn_err *e)
{
    return nn_buf_write(d, dd->idx, 0, dd->n * sizeof(int), order, 1, e);
}

int nn_devdata_batch(nn_net *net, nn_devdata *dd, size_t start, int n, cl_mem target, nn_err *e)
{
    nn_dev *d = net->dev;
    nn_rows rs = nn_row_split(d, (size_t)n, 1); /* CPU devices: runs of whole rows */
    int r = rs.local ? nn_launch(d, "gather_rows_run", rs.items, rs.local, e, 9, KMEM(dd->x), KMEM(dd->idx),
                                 KINT(start), KINT(n), KINT(dd->dim), KMEM(net->norm ? net->norm : dd->x),
                                 KINT(net->norm != NULL), KMEM(net->x_in), KINT(rs.per))
                     : nn_launch(d, "gather_rows", (size_t)n * dd->dim, 0, e, 8, KMEM(dd->x), KMEM(dd->idx),
                                 KINT(start), KINT(n), KINT(dd->dim), KMEM(net->norm ? net->norm : dd->x),
                                 KINT(net->norm != NULL), KMEM(net->x_in));
    if (r || !target || !dd->has_targets)
        return r;
    if (dd->tdim)
        return nn_launch(d, "gather_rows", (size_t)n * (size_t)dd->tdim, 0, e, 8, KMEM(dd->y), KMEM(dd->idx),
                         KINT(start), KINT(n), KINT(dd->tdim), KMEM(dd->y), KINT(0), KMEM(target));
    if (dd->ylen > 1)
        return nn_launch(d, "gather_int_rows", (size_t)n * (size_t)dd->ylen, 0, e, 6, KMEM(dd->y), KMEM(dd->idx),
                         KINT(start), KINT(n), KINT(dd->ylen), KMEM(target));
    return nn_launch(d, "gather_ints", (size_t)n, 0, e, 5, KMEM(dd->y), KMEM(dd->idx), KINT(start), KINT(n),
                     KMEM(target));
}

void nn_devdata_free(nn_devdata *dd)
{
    nn_buf_free(&dd->x);
    nn_buf_free(&dd->y);
    nn_buf_free(&dd->idx);
}
