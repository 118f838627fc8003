/* test_blas.c - the CLBlast wrappers (src/blas.c): GEMMs that blas.c splits
 * along k (split-K: a strided-batched GEMM into partial sums and a fixed-order
 * reduction) against a double reference and against the unsplit GEMM, for
 * every transpose, a k that does not divide evenly, beta 0 (C never read)
 * and beta != 0, offsets and a leading dimension wider than n. */
#include <math.h>
#include <stdlib.h>

#include "blas.h"
#include "tutil.h"

static nn_err E;

typedef struct {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
} gcase;

/* element (i, j) of op(X) where X is stored row-major with leading dimension ld */
static double at(const double *x, int t, size_t ld, size_t i, size_t j) { return t ? x[j * ld + i] : x[i * ld + j]; }

static int gemm_case(const gcase *c)
{
    NEED_DEV(d);
    const size_t aoff = 3, boff = 5, coff = 7;
    size_t lda = (c->ta ? c->m : c->k) + 2, ldb = (c->tb ? c->k : c->n) + 1, ldc = c->n + 4;
    size_t arows = c->ta ? c->k : c->m, brows = c->tb ? c->n : c->k;
    size_t asz = aoff + arows * lda, bsz = boff + brows * ldb, csz = coff + c->m * ldc;
    ref_rng rng;
    ref_rng_seed(&rng, 1000u + c->m * 7u + c->n * 13u + c->k + (size_t)c->ta * 2u + (size_t)c->tb);
    double *a = tu_rnd_vec(&rng, asz, -1, 1), *b = tu_rnd_vec(&rng, bsz, -1, 1), *c0 = tu_rnd_vec(&rng, csz, -1, 1);
    if (c->beta == 0.0f)
        for (size_t i = 0; i < csz; i++)
            c0[i] = NAN; /* beta 0: C must not be read */
    cl_mem A, B, C;
    TRY(nn_buf_alloc(d, asz * sizeof(float), "A", &A, &E));
    TRY(nn_buf_alloc(d, bsz * sizeof(float), "B", &B, &E));
    TRY(nn_buf_alloc(d, csz * sizeof(float), "C", &C, &E));
    TRY(tu_upload(A, 0, a, asz, &E));
    TRY(tu_upload(B, 0, b, bsz, &E));
    double *got[2];
    for (int split = 1; split >= 0; split--) {
        TRY(tu_upload(C, 0, c0, csz, &E));
        d->splitk_off = !split;
        size_t before = d->splitk_bytes;
        if (split && d->splitk) { /* observe the split path being taken */
            clReleaseMemObject(d->splitk);
            d->splitk = NULL;
            d->splitk_bytes = before = 0;
        }
        TRY(nn_gemm(d, c->ta, c->tb, c->m, c->n, c->k, c->alpha, A, aoff, lda, B, boff, ldb, c->beta, C, coff, ldc,
                    &E));
        CHECK(!split || d->splitk_bytes > before, "%zux%zux%zu ta%d tb%d: the split-K path was not taken", c->m, c->n,
              c->k, c->ta, c->tb);
        got[split] = tu_xmalloc(csz * sizeof(double));
        TRY(tu_download(C, 0, got[split], csz, &E));
    }
    d->splitk_off = 0;
    double worst = 0;
    for (size_t i = 0; i < c->m; i++)
        for (size_t j = 0; j < c->n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < c->k; p++) {
                double t = at(a + aoff, c->ta, lda, i, p) * at(b + boff, c->tb, ldb, p, j);
                s += t;
                mag += fabs(t);
            }
            size_t o = coff + i * ldc + j;
            double want = c->alpha * s + (c->beta != 0.0f ? c->beta * c0[o] : 0.0);
            double scale = fabs(c->alpha) * mag + fabs(c->beta) * fabs(c->beta != 0.0f ? c0[o] : 0.0) + 1e-30;
            for (int v = 0; v < 2; v++) {
                double err = fabs(got[v][o] - want) / scale;
                worst = fmax(worst, isnan(err) ? INFINITY : err);
            }
        }
    CHECK(worst < 1e-5, "%zux%zux%zu ta%d tb%d beta %g: error %.3g relative to sum |terms|", c->m, c->n, c->k, c->ta,
          c->tb, (double)c->beta, worst);
    /* everything outside C's m x n window is untouched */
    for (int v = 0; v < 2; v++)
        for (size_t i = 0; i < csz; i++) {
            int inside = i >= coff && (i - coff) % ldc < c->n && (i - coff) / ldc < c->m;
            if (!inside)
                CHECK(got[v][i] == (float)c0[i] || (isnan(got[v][i]) && isnan(c0[i])),
                      "C[%zu] outside the result changed (%s path)", i, v ? "split" : "plain");
        }
    free(a), free(b), free(c0), free(got[0]), free(got[1]);
    nn_buf_free(&A);
    nn_buf_free(&B);
    nn_buf_free(&C);
    return 0;
}

TEST(blas_gemm_splitk)
{
    static const gcase cases[] = {
        {0, 1, 32, 25, 36864, 1.0f, 0.0f},  /* LeNet conv1's weight gradient */
        {0, 0, 7, 5, 4099, 1.0f, 0.0f},     /* k not a multiple of the chunk */
        {1, 0, 16, 9, 3000, 0.5f, 0.25f},   /* beta != 0 accumulates */
        {1, 1, 3, 40, 5121, -1.0f, 1.0f},
        {0, 1, 1, 1, 2048, 2.0f, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (gemm_case(&cases[i]))
            return 1;
    return 0;
}
