#include "blas.h"

#include <clblast_c.h>

static int blas_fail(nn_err *e, CLBlastStatusCode st, const char *what, size_t m, size_t n, size_t k)
{
    if (st == CLBlastTempBufferAllocFailure || st == CLBlastOpenCLOutOfResources ||
        st == CLBlastInsufficientMemoryTemp)
        return nn_fail(e, NN_ENODEV, "CLBlast %s %zux%zux%zu: the device ran out of memory (status %d): "
                       "try a smaller --batch-size", what, m, n, k, (int)st);
    return nn_fail(e, NN_ESOFTWARE, "CLBlast %s %zux%zux%zu failed with status %d", what, m, n, k, (int)st);
}

static void record(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, size_t batch)
{
    if (!d->gemm_recording)
        return;
    for (size_t i = 0; i < d->ngemm_shapes; i++) {
        nn_gemm_shape *g = &d->gemm_shapes[i];
        if (g->ta == ta && g->tb == tb && g->m == m && g->n == n && g->k == k && g->batch == batch) {
            g->count++;
            return;
        }
    }
    if (d->ngemm_shapes < NN_MAX_GEMM_SHAPES)
        d->gemm_shapes[d->ngemm_shapes++] = (nn_gemm_shape){ta, tb, m, n, k, batch, 1};
}

/* Split-K: a GEMM whose output is a few tiles but whose inner dimension is
 * long (a convolution's weight gradient sums over batch x positions: 32x25
 * outputs over 36,864 terms in LeNet's first layer) runs as one or two
 * work-groups: one core of a CPU, a sliver of a GPU. It is cut into S chunks
 * along k, computed as one strided-batched GEMM into partial sums
 * (d->splitk), and summed in a fixed order by a kernel, so results stay
 * deterministic. Returns the number of chunks, or 0 for "do not split". */
#define SPLITK_TILE 32     /* the output tile one work-group computes, about */
#define SPLITK_MIN_K 2048  /* shorter sums are not worth a second launch */
#define SPLITK_CHUNK 512   /* no chunk shorter than this */
#define SPLITK_PER_UNIT 4  /* aim for this many work-groups per compute unit */

/* Split only when the output gives fewer than two work-groups per compute
 * unit (a 2-core CPU: at most 3 tiles; a 132-SM GPU: up to 263), into enough
 * chunks for SPLITK_PER_UNIT per unit. */
static size_t splitk_chunks(const nn_dev *d, size_t m, size_t n, size_t k)
{
    if (d->splitk_off || k < SPLITK_MIN_K)
        return 0;
    size_t tiles = ((m + SPLITK_TILE - 1) / SPLITK_TILE) * ((n + SPLITK_TILE - 1) / SPLITK_TILE);
    size_t want = (size_t)SPLITK_PER_UNIT * (d->units ? d->units : 1);
    if (2 * tiles >= want)
        return 0;
    size_t s = want / tiles, most = k / SPLITK_CHUNK;
    if (s > most)
        s = most;
    return s >= 2 ? s : 0;
}

static int gemm_splitk(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, size_t s, float alpha, cl_mem a,
                       size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb, float beta, cl_mem c, size_t coff,
                       size_t ldc, nn_err *e)
{
    size_t kc = (k + s - 1) / s, full = k / kc, rem = k - full * kc, slices = full + (rem > 0);
    size_t bytes = slices * m * n * sizeof(float);
    if (bytes > d->splitk_bytes) {
        if (d->splitk)
            clReleaseMemObject(d->splitk);
        d->splitk = NULL;
        d->splitk_bytes = 0;
        int r = nn_buf_alloc(d, bytes, "the split-K GEMM partial sums", &d->splitk, e);
        if (r)
            return r;
        d->splitk_bytes = bytes;
    }
    /* chunk j of op(A) is columns [j kc, (j+1) kc); of op(B) rows [j kc, (j+1) kc) */
    size_t astep = ta ? kc * lda : kc, bstep = tb ? kc : kc * ldb;
    int r = nn_gemm_strided(d, ta, tb, m, n, kc, alpha, a, aoff, lda, astep, b, boff, ldb, bstep, 0.0f, d->splitk, 0,
                            n, m * n, full, e);
    if (!r && rem)
        r = nn_gemm_strided(d, ta, tb, m, n, rem, alpha, a, aoff + full * astep, lda, astep, b, boff + full * bstep,
                            ldb, bstep, 0.0f, d->splitk, full * m * n, n, m * n, 1, e);
    if (!r)
        r = nn_launch(d, "splitk_reduce", m * n, 0, e, 8, KMEM(d->splitk), KINT(slices), KINT(m), KINT(n),
                      KFLT(beta), KMEM(c), KINT(coff), KINT(ldc));
    return r;
}

int nn_gemm(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
            cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
            float beta, cl_mem c, size_t coff, size_t ldc, nn_err *e)
{
    if (!m || !n)
        return 0;
    size_t s = splitk_chunks(d, m, n, k);
    if (s)
        return gemm_splitk(d, ta, tb, m, n, k, s, alpha, a, aoff, lda, b, boff, ldb, beta, c, coff, ldc, e);
    record(d, ta, tb, m, n, k, 1);
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda,
                                        b, boff, ldb, beta, c, coff, ldc, &d->q,
                                        nn_prof_slot(d, "GEMM", 2.0 * (double)m * (double)n * (double)k));
    return st == CLBlastSuccess ? 0 : blas_fail(e, st, "GEMM", m, n, k);
}

int nn_gemm_strided(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                    cl_mem a, size_t aoff, size_t lda, size_t astride,
                    cl_mem b, size_t boff, size_t ldb, size_t bstride, float beta,
                    cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e)
{
    if (!m || !n || !batch)
        return 0;
    record(d, ta, tb, m, n, k, batch);
    CLBlastStatusCode st = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda, astride, b, boff, ldb,
        bstride, beta, c, coff, ldc, cstride, batch, &d->q,
        nn_prof_slot(d, "batched GEMM", 2.0 * (double)m * (double)n * (double)k * (double)batch));
    return st == CLBlastSuccess ? 0 : blas_fail(e, st, "batched GEMM", m, n, k);
}
