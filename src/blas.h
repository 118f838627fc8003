/* blas.h - the GEMM seam: every GEMM of nnrun goes through nn_gemm and
 * nn_gemm_strided. Above the seam: argument checks, split-K, shape recording.
 * Behind it: a table of implementations (CLBlast; nnrun's own CPU-shaped
 * kernel in cl/gemm.cl) and one policy function choosing per device and
 * shape (blas.c, gemm_choose).
 *
 * The BLAS state (choice, workspaces, recorded shapes, tuned choices) lives
 * in an nn_blas owned by this module and hung on the device by nn_blas_open;
 * device.c never looks inside it. Matrices are row-major; offsets and leading
 * dimensions are in elements. */
#ifndef NN_BLAS_H
#define NN_BLAS_H

#include "device.h"

/* The implementations behind the seam (index into the table in blas.c). */
typedef enum nn_gemm_backend { NN_GEMM_AUTO = -1, NN_GEMM_CLBLAST = 0, NN_GEMM_NATIVE = 1 } nn_gemm_backend;
#define NN_GEMM_NBACKENDS 2

/* Creates the device's BLAS state. The backend comes from `force` when it is
 * not NN_GEMM_AUTO, else from $NNRUN_GEMM ("clblast", "native", "auto"),
 * else from the policy. 64 (usage) for an unknown $NNRUN_GEMM, 69 when the
 * forced backend cannot run on the device. NNRUN_NO_SPLITK=1 turns split-K
 * off. */
int nn_blas_open(nn_dev *d, nn_gemm_backend force, nn_err *e);
void nn_blas_close(nn_dev *d);

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C; ta/tb: 1 = transposed. */
int nn_gemm(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
            cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
            float beta, cl_mem c, size_t coff, size_t ldc, nn_err *e);

/* The same, then C = act(C + bias[j]) once the product is complete: bias
 * (n floats) may be NULL, act is an nn_act (NN_ACT_NONE: none). The native
 * kernel applies it to each block of C while the block is in its cache;
 * elsewhere (CLBlast, split-K, k = 0) a second kernel does, with the same
 * arithmetic, so results do not depend on the path. */
int nn_gemm_bias_act(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                     cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
                     float beta, cl_mem c, size_t coff, size_t ldc, cl_mem bias, int act, nn_err *e);

/* `batch` independent GEMMs, matrix i at offset + i*stride in each buffer. */
int nn_gemm_strided(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                    cl_mem a, size_t aoff, size_t lda, size_t astride,
                    cl_mem b, size_t boff, size_t ldb, size_t bstride, float beta,
                    cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e);

/* The im2col matrix of a convolution's input as a GEMM operand that is never
 * written: the native kernel packs its panels straight from x (cl/gemm.cl).
 *   col[r][p] = x[s, c, oh*sh + ki*dh - ph, ow*sw + kj*dw - pw] (0 outside),
 *   r = (c*kh + ki)*kw + kj, p = (s*OH + oh)*OW + ow:
 * C*kh*kw rows of n*OH*OW columns, the layout conv.cl's conv_im2col writes.
 * ph/pw: the padding before (top, left); the padding after is whatever OH
 * and OW imply, and may be negative. x[s, c, h, w] is at s*xs + c*xc +
 * h*W + w; xs = xc = 0 means NCHW (C*H*W and H*W). */
typedef struct nn_im2col {
    cl_mem x;
    int n, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
    int xs, xc;
} nn_im2col;

/* 1 when GEMMs on this device take an nn_im2col operand: the native backend
 * is in effect for every shape (the CPU default, or NNRUN_GEMM=native) and
 * NNRUN_GEMM_NATIVE has no "im=0". Otherwise the caller writes the col. */
int nn_blas_im2col_ok(nn_dev *d);

/* nn_gemm_strided with B the im2col matrix `b`: op(B) = col, or col^T when
 * tb; op(A) not transposed. boff and bstride are positions in col (row *
 * ldb + column, ldb = n*OH*OW), as they would be in a written col. One GEMM
 * (batch 1) may be split along k like any other. */
int nn_gemm_im2col(nn_dev *d, int tb, size_t m, size_t n, size_t k, float alpha,
                   cl_mem a, size_t aoff, size_t lda, size_t astride,
                   const nn_im2col *b, size_t boff, size_t bstride, float beta,
                   cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e);

/* A GEMM shape (recorded for nnrun tune and bench). */
typedef struct nn_gemm_shape {
    int ta, tb;
    size_t m, n, k, batch;
    long count;
} nn_gemm_shape;
#define NN_MAX_GEMM_SHAPES 64

/* Shape recording: every GEMM until nn_blas_record_stop is counted into
 * out[0..cap) (distinct shapes; further ones are dropped). */
void nn_blas_record_start(nn_dev *d, nn_gemm_shape *out, size_t cap);
size_t nn_blas_record_stop(nn_dev *d);

/* The backend the policy picks for a shape (after NNRUN_GEMM and tuning). */
nn_gemm_backend nn_blas_choice(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, size_t batch);
/* "native" / "clblast". */
const char *nn_blas_backend_name(nn_gemm_backend b);
/* Parses "native" / "clblast" / "auto"; -2 when unknown. */
int nn_blas_backend_parse(const char *s);
/* 1 when backend b can run on the device. */
int nn_blas_usable(nn_dev *d, nn_gemm_backend b);
/* One line for `nnrun devices`/bench: "native (CPU-shaped OpenCL GEMM)", plus
 * the tuned state. */
const char *nn_blas_describe(nn_dev *d);

/* For tests, tune and bench: force a backend (NN_GEMM_AUTO: back to the
 * policy) or turn split-K off; each returns the previous setting. The
 * backend must be usable (nn_blas_usable). */
nn_gemm_backend nn_blas_force(nn_dev *d, nn_gemm_backend b);
int nn_blas_splitk_off(nn_dev *d, int off);
/* GEMMs split along k so far (tests observe the path). */
long nn_blas_splitk_count(nn_dev *d);

/* Knobs of the native kernel's cost model: K block length (0: the default)
 * and work-items per compute unit (0: 2, or 1 where the model says that
 * saves enough packing). */
typedef struct nn_native_knobs {
    int kc, per_unit;
} nn_native_knobs;
/* Sets the knobs used where no tuned shape choice applies; returns the
 * previous ones (tune tries candidates this way). */
nn_native_knobs nn_blas_native_knobs(nn_dev *d, nn_native_knobs k);

/* Tuning (tune.c) hands its results to the seam: per-shape winners (with the
 * native kernel's knobs), and a description of the CLBlast parameters it
 * applied. -1 when the choice is unusable or the table is full. */
int nn_blas_set_shape_choice(nn_dev *d, const nn_gemm_shape *s, nn_gemm_backend b, nn_native_knobs k);
void nn_blas_set_tuned(nn_dev *d, const char *desc);

#endif
