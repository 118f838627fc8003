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

int nn_gemm(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
            cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
            float beta, cl_mem c, size_t coff, size_t ldc, nn_err *e)
{
    if (!m || !n)
        return 0;
    record(d, ta, tb, m, n, k, 1);
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, aoff, lda,
                                        b, boff, ldb, beta, c, coff, ldc, &d->q,
                                        nn_prof_slot(d, 2.0 * (double)m * (double)n * (double)k));
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
        nn_prof_slot(d, 2.0 * (double)m * (double)n * (double)k * (double)batch));
    return st == CLBlastSuccess ? 0 : blas_fail(e, st, "batched GEMM", m, n, k);
}
