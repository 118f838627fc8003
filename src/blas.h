/* blas.h - every GEMM of nnrun goes through these CLBlast wrappers.
 * Matrices are row-major; offsets and leading dimensions are in elements. */
#ifndef NN_BLAS_H
#define NN_BLAS_H

#include "device.h"

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C; ta/tb: 1 = transposed. */
int nn_gemm(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
            cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
            float beta, cl_mem c, size_t coff, size_t ldc, nn_err *e);

/* `batch` independent GEMMs, matrix i at offset + i*stride in each buffer. */
int nn_gemm_strided(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                    cl_mem a, size_t aoff, size_t lda, size_t astride,
                    cl_mem b, size_t boff, size_t ldb, size_t bstride, float beta,
                    cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e);

/* A GEMM shape met while d->gemm_recording (nnrun tune). */
typedef struct nn_gemm_shape {
    int ta, tb;
    size_t m, n, k, batch;
    long count;
} nn_gemm_shape;
#define NN_MAX_GEMM_SHAPES 64

#endif
