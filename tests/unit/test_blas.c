/* test_blas.c - the GEMM seam (src/blas.c): every implementation behind it
 * (CLBlast, nnrun's CPU-shaped kernel in cl/gemm.cl), forced in turn,
 * against a double reference over every transpose, odd and tiny sizes, edge
 * tiles, offsets, leading dimensions wider than the matrix, strided batches,
 * alpha != 1, beta 0 (C never read: it holds NaN) and beta != 0; sentinels
 * outside C's window must survive. Then split-K (a strided-batched GEMM into
 * partial sums and a fixed-order reduction) against the same reference and
 * the unsplit GEMM, the policy's choices, and determinism. */
#include <math.h>
#include <stdlib.h>

#include "blas.h"
#include "tutil.h"

static nn_err E;

typedef struct {
    int ta, tb;
    size_t m, n, k, batch;
    float alpha, beta;
} gcase;

/* element (i, j) of op(X) where X is stored row-major with leading dimension ld */
static double at(const double *x, int t, size_t ld, size_t i, size_t j) { return t ? x[j * ld + i] : x[i * ld + j]; }

/* The operands of one case: A, B, C with offsets, padded leading dimensions
 * and batch strides that leave gaps (the gaps must stay untouched). */
typedef struct gmats {
    size_t aoff, boff, coff, lda, ldb, ldc, as, bs, cs, asz, bsz, csz;
    double *a, *b, *c0;
    cl_mem A, B, C;
} gmats;

static int mats_make(nn_dev *d, const gcase *c, gmats *g)
{
    g->aoff = 3, g->boff = 5, g->coff = 7;
    g->lda = (c->ta ? c->m : c->k) + 2, g->ldb = (c->tb ? c->k : c->n) + 1, g->ldc = c->n + 4;
    size_t arows = c->ta ? c->k : c->m, brows = c->tb ? c->n : c->k;
    g->as = arows * g->lda + 9, g->bs = brows * g->ldb + 2, g->cs = c->m * g->ldc + 5;
    g->asz = g->aoff + g->as * c->batch, g->bsz = g->boff + g->bs * c->batch, g->csz = g->coff + g->cs * c->batch;
    ref_rng rng;
    ref_rng_seed(&rng, 1000u + c->m * 7u + c->n * 13u + c->k + (size_t)c->ta * 2u + (size_t)c->tb + c->batch * 31u);
    g->a = tu_rnd_vec(&rng, g->asz, -1, 1), g->b = tu_rnd_vec(&rng, g->bsz, -1, 1);
    g->c0 = tu_rnd_vec(&rng, g->csz, -1, 1);
    for (size_t i = 0; i < g->csz; i++) {
        size_t r = i < g->coff ? 0 : (i - g->coff) % g->cs;
        int inside = i >= g->coff && r < c->m * g->ldc && r % g->ldc < c->n;
        if (!inside)
            g->c0[i] = SENT;      /* must survive */
        else if (c->beta == 0.0f)
            g->c0[i] = NAN;       /* beta 0: C must not be read */
    }
    TRY(nn_buf_alloc(d, g->asz * sizeof(float), "A", &g->A, &E));
    TRY(nn_buf_alloc(d, g->bsz * sizeof(float), "B", &g->B, &E));
    TRY(nn_buf_alloc(d, g->csz * sizeof(float), "C", &g->C, &E));
    TRY(tu_upload(g->A, 0, g->a, g->asz, &E));
    TRY(tu_upload(g->B, 0, g->b, g->bsz, &E));
    return 0;
}

static void mats_free(gmats *g)
{
    free(g->a), free(g->b), free(g->c0);
    nn_buf_free(&g->A);
    nn_buf_free(&g->B);
    nn_buf_free(&g->C);
}

/* Runs the case (uploading C first) and downloads the result into got. */
static int run_case(nn_dev *d, const gcase *c, const gmats *g, double *got)
{
    TRY(tu_upload(g->C, 0, g->c0, g->csz, &E));
    if (c->batch == 1)
        TRY(nn_gemm(d, c->ta, c->tb, c->m, c->n, c->k, c->alpha, g->A, g->aoff, g->lda, g->B, g->boff, g->ldb, c->beta,
                    g->C, g->coff, g->ldc, &E));
    else
        TRY(nn_gemm_strided(d, c->ta, c->tb, c->m, c->n, c->k, c->alpha, g->A, g->aoff, g->lda, g->as, g->B, g->boff,
                            g->ldb, g->bs, c->beta, g->C, g->coff, g->ldc, g->cs, c->batch, &E));
    TRY(tu_download(g->C, 0, got, g->csz, &E));
    return 0;
}

/* got against the double reference, relative to the sum of |terms|, and
 * every element outside the C windows unchanged. */
static int check_result(const gcase *c, const gmats *g, const double *got, const char *what)
{
    double worst = 0;
    for (size_t bi = 0; bi < c->batch; bi++) {
        const double *a = g->a + g->aoff + bi * g->as, *b = g->b + g->boff + bi * g->bs;
        for (size_t i = 0; i < c->m; i++)
            for (size_t j = 0; j < c->n; j++) {
                double s = 0, mag = 0;
                for (size_t p = 0; p < c->k; p++) {
                    double t = at(a, c->ta, g->lda, i, p) * at(b, c->tb, g->ldb, p, j);
                    s += t;
                    mag += fabs(t);
                }
                size_t o = g->coff + bi * g->cs + i * g->ldc + j;
                double cin = c->beta != 0.0f ? g->c0[o] : 0.0;
                double want = c->alpha * s + c->beta * cin;
                double scale = fabs(c->alpha) * mag + fabs(c->beta * cin) + 1e-30;
                double err = fabs(got[o] - want) / scale;
                worst = fmax(worst, isnan(err) ? INFINITY : err);
            }
    }
    CHECK(worst < 1e-5, "%s: %zux%zux%zu x%zu ta%d tb%d alpha %g beta %g: error %.3g relative to sum |terms|", what,
          c->m, c->n, c->k, c->batch, c->ta, c->tb, (double)c->alpha, (double)c->beta, worst);
    for (size_t i = 0; i < g->csz; i++)
        if (g->c0[i] == SENT)
            CHECK(got[i] == SENT, "%s: %zux%zux%zu x%zu ta%d tb%d: C[%zu] outside the result changed to %g", what,
                  c->m, c->n, c->k, c->batch, c->ta, c->tb, i, got[i]);
    return 0;
}

static const gcase cases[] = {
    {0, 0, 1, 1, 1, 1, 1.0f, 0.0f},       /* tiny */
    {0, 0, 1, 10, 256, 1, 1.0f, 0.0f},    /* batch-1 inference: one row */
    {0, 0, 7, 5, 3, 1, 1.0f, 0.0f},       /* less than one tile */
    {0, 0, 6, 16, 8, 1, 1.0f, 0.0f},      /* exactly one 6x16 tile */
    {0, 0, 6, 32, 8, 1, 1.0f, 0.0f},      /* exactly one 6x32 tile */
    {0, 0, 13, 33, 17, 1, 0.5f, 0.0f},    /* edge tiles both ways */
    {0, 0, 37, 70, 300, 1, 1.0f, 0.0f},   /* two K blocks of the native kernel */
    {0, 0, 130, 257, 513, 1, 1.0f, 0.0f}, /* several blocks, odd everything */
    {0, 0, 97, 200, 64, 1, 1.0f, 1.0f},   /* beta 1 accumulates (input gradients) */
    {0, 0, 40, 24, 600, 1, -1.5f, 0.25f}, /* beta on the first K block only */
    {0, 0, 9, 11, 0, 1, 1.0f, 0.5f},      /* k = 0: C = beta C */
    {0, 0, 9, 11, 0, 1, 1.0f, 0.0f},      /* k = 0, beta 0: C = 0 */
    {0, 0, 64, 24, 64, 6, 1.0f, 0.0f},    /* strided batches (attention, grouped conv) */
    {0, 0, 7, 5, 3, 4, 2.0f, 0.5f},
    {0, 0, 5, 300, 40, 3, 1.0f, 0.0f},
    {0, 0, 12, 100, 20, 1, 1.0f, 0.0f},   /* whole B panels packed row by row, then a partial one */
    {0, 0, 66, 1000, 40, 1, 1.0f, 0.5f},  /* wide: several B sub-blocks per work-item */
};

/* Every case with every transpose combination. */
static int backend_cases(nn_dev *d, nn_gemm_backend be)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int t = 0; t < 4; t++) {
            gcase c = cases[i];
            c.ta = t >> 1, c.tb = t & 1;
            gmats g = {0};
            if (mats_make(d, &c, &g))
                return 1;
            double *got = tu_xmalloc(g.csz * sizeof(double));
            if (run_case(d, &c, &g, got) || check_result(&c, &g, got, nn_blas_backend_name(be)))
                return 1;
            free(got);
            mats_free(&g);
        }
    return 0;
}

/* ... with the backend forced and split-K off, restored whatever happens */
static int backend_suite(nn_dev *d, nn_gemm_backend be)
{
    nn_gemm_backend was = nn_blas_force(d, be);
    int old = nn_blas_splitk_off(d, 1);
    int r = backend_cases(d, be);
    nn_blas_splitk_off(d, old);
    nn_blas_force(d, was);
    return r;
}

TEST(blas_gemm_native)
{
    NEED_DEV(d);
    if (!nn_blas_usable(d, NN_GEMM_NATIVE))
        SKIP("the native GEMM cannot run on %s (local memory)", d->name);
    return backend_suite(d, NN_GEMM_NATIVE);
}

TEST(blas_gemm_clblast)
{
    NEED_DEV(d);
    return backend_suite(d, NN_GEMM_CLBLAST);
}

/* Split-K against the reference and the unsplit GEMM, with each backend. */
static int splitk_case(nn_dev *d, const gcase *c)
{
    gmats g = {0};
    if (mats_make(d, c, &g))
        return 1;
    double *got = tu_xmalloc(g.csz * sizeof(double));
    for (int split = 1; split >= 0; split--) {
        nn_blas_splitk_off(d, !split);
        long before = nn_blas_splitk_count(d);
        if (run_case(d, c, &g, got) || check_result(c, &g, got, split ? "split-K" : "unsplit"))
            return 1;
        CHECK(!split || nn_blas_splitk_count(d) > before, "%zux%zux%zu ta%d tb%d: the split-K path was not taken",
              c->m, c->n, c->k, c->ta, c->tb);
    }
    nn_blas_splitk_off(d, 0);
    free(got);
    mats_free(&g);
    return 0;
}

TEST(blas_gemm_splitk)
{
    NEED_DEV(d);
    static const gcase split_cases[] = {
        {0, 1, 32, 25, 36864, 1, 1.0f, 0.0f}, /* LeNet conv1's weight gradient */
        {0, 0, 7, 5, 4099, 1, 1.0f, 0.0f},    /* k not a multiple of the chunk */
        {1, 0, 16, 9, 3000, 1, 0.5f, 0.25f},  /* beta != 0 accumulates */
        {1, 1, 3, 40, 5121, 1, -1.0f, 1.0f},
        {0, 1, 1, 1, 2048, 1, 2.0f, 0.0f},
    };
    for (int be = 0; be < NN_GEMM_NBACKENDS; be++) {
        if (!nn_blas_usable(d, (nn_gemm_backend)be))
            continue;
        nn_gemm_backend was = nn_blas_force(d, (nn_gemm_backend)be);
        int r = 0;
        for (size_t i = 0; i < sizeof split_cases / sizeof *split_cases && !r; i++)
            r = splitk_case(d, &split_cases[i]);
        nn_blas_splitk_off(d, 0);
        nn_blas_force(d, was);
        if (r)
            return r;
    }
    /* the native kernel also splits a long, thin product whose output has
     * plenty of tiles (a weight gradient: k >= 16 (m + n)) */
    if (nn_blas_usable(d, NN_GEMM_NATIVE)) {
        static const gcase thin = {0, 1, 32, 288, 5200, 1, 1.0f, 0.0f};
        nn_gemm_backend was = nn_blas_force(d, NN_GEMM_NATIVE);
        int r = splitk_case(d, &thin);
        nn_blas_force(d, was);
        if (r)
            return r;
    }
    return 0;
}

/* The same GEMM twice gives the same bits (each backend), and the policy
 * picks the CPU-shaped kernel on CPU devices, CLBlast elsewhere, unless
 * forced. */
TEST(blas_gemm_policy_determinism)
{
    NEED_DEV(d);
    gcase c = {1, 0, 150, 260, 700, 1, 1.0f, 0.0f};
    gmats g = {0};
    if (mats_make(d, &c, &g))
        return 1;
    double *r1 = tu_xmalloc(g.csz * sizeof(double)), *r2 = tu_xmalloc(g.csz * sizeof(double));
    for (int be = 0; be < NN_GEMM_NBACKENDS; be++) {
        if (!nn_blas_usable(d, (nn_gemm_backend)be))
            continue;
        nn_gemm_backend was = nn_blas_force(d, (nn_gemm_backend)be);
        nn_gemm_backend chosen = nn_blas_choice(d, 0, 0, 64, 64, 64, 1);
        int r = run_case(d, &c, &g, r1) || run_case(d, &c, &g, r2);
        nn_blas_force(d, was);
        if (r)
            return 1;
        CHECK(chosen == (nn_gemm_backend)be, "forcing %s did not take", nn_blas_backend_name((nn_gemm_backend)be));
        for (size_t i = 0; i < g.csz; i++)
            CHECK(r1[i] == r2[i] || (isnan(r1[i]) && isnan(r2[i])), "%s: C[%zu] differs between two runs: %.9g %.9g",
                  nn_blas_backend_name((nn_gemm_backend)be), i, r1[i], r2[i]);
    }
    const char *env = getenv("NNRUN_GEMM");
    if (!env || !*env || !strcmp(env, "auto")) {
        nn_gemm_backend want = (d->type & CL_DEVICE_TYPE_CPU) && nn_blas_usable(d, NN_GEMM_NATIVE) ? NN_GEMM_NATIVE
                                                                                                    : NN_GEMM_CLBLAST;
        CHECK(nn_blas_choice(d, 0, 0, 128, 512, 784, 1) == want, "the policy chose %s on %s, expected %s",
              nn_blas_backend_name(nn_blas_choice(d, 0, 0, 128, 512, 784, 1)), d->name, nn_blas_backend_name(want));
    }
    free(r1), free(r2);
    mats_free(&g);
    return 0;
}

/* The policy's order: a forced backend, else a tuned shape's winner (with
 * its knobs; invalid knobs are refused), else the device default. */
TEST(blas_gemm_policy_tuned)
{
    NEED_DEV(d);
    if (!nn_blas_usable(d, NN_GEMM_NATIVE))
        SKIP("the native GEMM cannot run on %s", d->name);
    nn_gemm_backend was = nn_blas_force(d, NN_GEMM_AUTO);
    nn_gemm_backend dflt = nn_blas_choice(d, 0, 0, 128, 512, 784, 1);
    nn_gemm_backend other = dflt == NN_GEMM_NATIVE ? NN_GEMM_CLBLAST : NN_GEMM_NATIVE;
    nn_gemm_shape s = {1, 0, 33, 47, 59, 3, 1}; /* stays tuned: no other test uses this shape */
    int r = nn_blas_set_shape_choice(d, &s, other, (nn_native_knobs){128, 2});
    int bad = nn_blas_set_shape_choice(d, &s, NN_GEMM_NATIVE, (nn_native_knobs){3, 2}); /* kc < 8 */
    nn_gemm_backend tuned = nn_blas_choice(d, 1, 0, 33, 47, 59, 3);
    nn_gemm_backend near = nn_blas_choice(d, 1, 0, 33, 47, 59, 1); /* another batch: not the tuned shape */
    nn_blas_force(d, NN_GEMM_CLBLAST);
    nn_gemm_backend forced = nn_blas_choice(d, 1, 0, 33, 47, 59, 3);
    nn_blas_force(d, was);
    CHECK(r == 0, "a valid tuned choice was refused");
    CHECK(bad != 0, "a tuned choice with kc = 3 was accepted");
    CHECK(tuned == other, "the tuned shape runs %s, not the tuned %s", nn_blas_backend_name(tuned),
          nn_blas_backend_name(other));
    CHECK(near == dflt, "a shape tune did not measure runs %s, not the default %s", nn_blas_backend_name(near),
          nn_blas_backend_name(dflt));
    CHECK(forced == NN_GEMM_CLBLAST, "a forced backend did not win over the tuned choice");
    /* and the tuned shape still computes correctly through its backend */
    gcase c = {1, 0, 33, 47, 59, 3, 1.0f, 0.0f};
    gmats g = {0};
    if (mats_make(d, &c, &g))
        return 1;
    double *got = tu_xmalloc(g.csz * sizeof(double));
    if (run_case(d, &c, &g, got) || check_result(&c, &g, got, "tuned"))
        return 1;
    free(got);
    mats_free(&g);
    return 0;
}

/* nn_gemm_bias_act: C = act(alpha op(A) op(B) + beta C + bias[j]) through
 * every backend and path (the native kernel's fused epilogue; CLBlast, k = 0
 * and split-K with the epilogue kernel) against the double reference, and
 * the fused epilogue bit for bit equal to the plain GEMM followed by the
 * epilogue kernel. */
static int epi_case(nn_dev *d, const gcase *c, int act, int with_bias, const char *what)
{
    gmats g = {0};
    if (mats_make(d, c, &g))
        return 1;
    ref_rng rng;
    ref_rng_seed(&rng, 77u + c->n);
    double *bias = tu_rnd_vec(&rng, c->n, -1, 1), *got = tu_xmalloc(g.csz * sizeof(double)),
           *plain = tu_xmalloc(g.csz * sizeof(double));
    cl_mem B = NULL;
    TRY(nn_buf_alloc(d, c->n * sizeof(float), "bias", &B, &E));
    TRY(tu_upload(B, 0, bias, c->n, &E));
    TRY(tu_upload(g.C, 0, g.c0, g.csz, &E));
    TRY(nn_gemm_bias_act(d, c->ta, c->tb, c->m, c->n, c->k, c->alpha, g.A, g.aoff, g.lda, g.B, g.boff, g.ldb, c->beta,
                         g.C, g.coff, g.ldc, with_bias ? B : NULL, act, &E));
    TRY(tu_download(g.C, 0, got, g.csz, &E));
    /* the same product unfused: nn_gemm, then the epilogue kernel */
    TRY(tu_upload(g.C, 0, g.c0, g.csz, &E));
    TRY(nn_gemm(d, c->ta, c->tb, c->m, c->n, c->k, c->alpha, g.A, g.aoff, g.lda, g.B, g.boff, g.ldb, c->beta, g.C,
                g.coff, g.ldc, &E));
    TRY(nn_launch(d, "gemm_bias_act", c->m * c->n, 0, &E, 8, KMEM(g.C), KULONG(g.coff), KINT(g.ldc), KINT(c->m),
                  KINT(c->n), KMEM(B), KINT(with_bias), KINT(act)));
    TRY(tu_download(g.C, 0, plain, g.csz, &E));
    double worst = 0;
    for (size_t i = 0; i < c->m; i++)
        for (size_t j = 0; j < c->n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < c->k; p++) {
                double t = at(g.a + g.aoff, c->ta, g.lda, i, p) * at(g.b + g.boff, c->tb, g.ldb, p, j);
                s += t;
                mag += fabs(t);
            }
            size_t o = g.coff + i * g.ldc + j;
            double cin = c->beta != 0.0f ? g.c0[o] : 0.0, b = with_bias ? bias[j] : 0.0;
            double want = ref_act(c->alpha * s + c->beta * cin + b, act);
            /* the product's rounding (sum |terms|) and the activation's own (|want|) */
            double err =
                fabs(got[o] - want) / (fabs(c->alpha) * mag + fabs(c->beta * cin) + fabs(b) + fabs(want) + 1e-30);
            worst = fmax(worst, isnan(err) ? INFINITY : err);
            CHECK(got[o] == plain[o], "%s: %zux%zux%zu act %d bias %d: C[%zu][%zu] fused %.9g, unfused %.9g", what,
                  c->m, c->n, c->k, act, with_bias, i, j, got[o], plain[o]);
        }
    CHECK(worst < 1e-5, "%s: %zux%zux%zu ta%d tb%d act %d bias %d: error %.3g relative to sum |terms| + |C|", what,
          c->m, c->n, c->k, c->ta, c->tb, act, with_bias, worst);
    for (size_t i = 0; i < g.csz; i++)
        if (g.c0[i] == SENT)
            CHECK(got[i] == SENT, "%s: C[%zu] outside the result changed to %g", what, i, got[i]);
    nn_buf_free(&B);
    free(bias), free(got), free(plain);
    mats_free(&g);
    return 0;
}

TEST(blas_gemm_epilogue)
{
    NEED_DEV(d);
    static const gcase ecases[] = {
        {0, 0, 13, 33, 17, 1, 1.0f, 0.0f},    /* edge tiles, columns not a multiple of 8 */
        {0, 0, 130, 257, 513, 1, 1.0f, 0.0f}, /* several blocks, two K blocks */
        {0, 0, 1, 10, 256, 1, 1.0f, 0.0f},    /* batch-1 inference */
        {0, 1, 40, 24, 600, 1, -1.5f, 0.25f}, /* alpha, beta */
        {0, 0, 9, 11, 0, 1, 1.0f, 0.5f},      /* k = 0 */
        {0, 1, 32, 25, 36864, 1, 1.0f, 0.0f}, /* split-K (when not turned off) */
    };
    static const int acts[][2] = {{NN_ACT_NONE, 1}, {NN_ACT_RELU, 1}, {NN_ACT_SIGMOID, 0}, {NN_ACT_TANH, 1}};
    for (int be = 0; be < NN_GEMM_NBACKENDS; be++) {
        if (!nn_blas_usable(d, (nn_gemm_backend)be))
            continue;
        nn_gemm_backend was = nn_blas_force(d, (nn_gemm_backend)be);
        int r = 0;
        for (size_t i = 0; i < sizeof ecases / sizeof *ecases && !r; i++)
            for (size_t a = 0; a < sizeof acts / sizeof *acts && !r; a++)
                r = epi_case(d, &ecases[i], acts[a][0], acts[a][1], nn_blas_backend_name((nn_gemm_backend)be));
        nn_blas_force(d, was);
        if (r)
            return r;
    }
    return 0;
}

/* nn_gemm_im2col: the native kernel packing B straight from a convolution's
 * input must give, bit for bit, what it gives on the col written out (the
 * host's im2col here), and C outside the result must be untouched; over
 * strides, dilation, asymmetric and zero padding, groups (strided batches),
 * several samples, a B offset, both op(B), split-K and x in NCHW and in
 * [C, n, H, W] (the layout of the gradient a transposed convolution reads). */
typedef struct imcase {
    int n, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, G, F;
} imcase;

/* col[(c*kh + ki)*kw + kj][(s*OH + oh)*OW + ow], conv.cl's layout, from
 * x[s, c, h, w] at s*xs + c*xc + h*W + w */
static void host_im2col(const imcase *q, int OH, int OW, const double *x, size_t xs, size_t xc, double *col)
{
    size_t P = (size_t)q->n * OH * OW, r = 0;
    for (int c = 0; c < q->C; c++)
        for (int ki = 0; ki < q->kh; ki++)
            for (int kj = 0; kj < q->kw; kj++, r++)
                for (int s = 0; s < q->n; s++)
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++) {
                            int h = oh * q->sh + ki * q->dh - q->ph, w = ow * q->sw + kj * q->dw - q->pw;
                            int in = h >= 0 && h < q->H && w >= 0 && w < q->W;
                            col[r * P + ((size_t)s * OH + oh) * OW + ow] =
                                in ? x[s * xs + c * xc + (size_t)h * q->W + w] : 0.0;
                        }
}

/* cnhw: x laid out [C, n, H, W] (a gradient's layout) instead of NCHW */
static int im_case(nn_dev *d, const imcase *q, int tb, int boff_rows, int cnhw)
{
    int OH = (q->H + 2 * q->ph - (q->kh - 1) * q->dh - 1) / q->sh + 1;
    int OW = (q->W + 2 * q->pw - (q->kw - 1) * q->dw - 1) / q->sw + 1;
    size_t G = (size_t)q->G, Fg = (size_t)q->F / G, Kg = (size_t)q->C / G * q->kh * q->kw;
    size_t P = (size_t)q->n * OH * OW, N = P - (size_t)(boff_rows ? 3 : 0); /* boff: skip 3 columns too */
    size_t boff = boff_rows ? (size_t)boff_rows * P + 3 : 0; /* G = 1 then */
    Kg -= (size_t)boff_rows;
    /* tb = 0: C[Fg, N] = A[Fg, Kg] col_g; tb = 1: C[Fg, Kg] = A[Fg, N] col_g^T */
    size_t m = Fg, nn = tb ? Kg : N, k = tb ? N : Kg, lda = k + 1, ldc = nn + 2;
    size_t as = m * lda + 3, cs = m * ldc + 5, asz = as * G, csz = cs * G + 7;
    size_t xsz = (size_t)q->n * q->C * q->H * q->W, colsz = (size_t)q->C * q->kh * q->kw * P;
    ref_rng rng;
    ref_rng_seed(&rng, 4242u + (unsigned)(q->C * 31 + q->H * 7 + tb));
    double *x = tu_rnd_vec(&rng, xsz, -1, 1), *a = tu_rnd_vec(&rng, asz, -1, 1), *col = tu_xmalloc(colsz * sizeof(double));
    double *c0 = tu_xmalloc(csz * sizeof(double)), *got = tu_xmalloc(csz * sizeof(double)),
           *want = tu_xmalloc(csz * sizeof(double));
    for (size_t i = 0; i < csz; i++)
        c0[i] = SENT;
    size_t hw = (size_t)q->H * q->W, xs = cnhw ? hw : q->C * hw, xc = cnhw ? q->n * hw : hw;
    host_im2col(q, OH, OW, x, xs, xc, col);
    cl_mem X = NULL, COL = NULL, A = NULL, C = NULL;
    TRY(nn_buf_alloc(d, xsz * sizeof(float), "x", &X, &E));
    TRY(nn_buf_alloc(d, colsz * sizeof(float), "col", &COL, &E));
    TRY(nn_buf_alloc(d, asz * sizeof(float), "A", &A, &E));
    TRY(nn_buf_alloc(d, csz * sizeof(float), "C", &C, &E));
    TRY(tu_upload(X, 0, x, xsz, &E));
    TRY(tu_upload(COL, 0, col, colsz, &E));
    TRY(tu_upload(A, 0, a, asz, &E));
    nn_im2col v = {X, q->n, q->C, q->H, q->W, q->kh, q->kw, q->sh, q->sw, q->ph, q->pw, q->dh, q->dw, OH, OW,
                   cnhw ? (int)xs : 0, cnhw ? (int)xc : 0};
    for (int pass = 0; pass < 2; pass++) { /* 0: the written col, 1: the implicit one */
        TRY(tu_upload(C, 0, c0, csz, &E));
        if (pass)
            TRY(nn_gemm_im2col(d, tb, m, nn, k, 1.0f, A, 0, lda, as, &v, boff, Kg * P, 0.0f, C, 0, ldc, cs, G, &E));
        else if (G == 1)
            TRY(nn_gemm(d, 0, tb, m, nn, k, 1.0f, A, 0, lda, COL, boff, P, 0.0f, C, 0, ldc, &E));
        else
            TRY(nn_gemm_strided(d, 0, tb, m, nn, k, 1.0f, A, 0, lda, as, COL, boff, P, Kg * P, 0.0f, C, 0, ldc, cs, G,
                                &E));
        TRY(tu_download(C, 0, pass ? got : want, csz, &E));
    }
    for (size_t i = 0; i < csz; i++)
        CHECK(got[i] == want[i], "im2col operand, n=%d C=%d %dx%d k=%dx%d s=%dx%d pad=%dx%d dil=%dx%d groups=%d tb=%d "
              "boff=%zu%s: C[%zu] = %.9g implicit, %.9g from the written col", q->n, q->C, q->H, q->W, q->kh, q->kw,
              q->sh, q->sw, q->ph, q->pw, q->dh, q->dw, q->G, tb, boff, cnhw ? " [C,n,H,W]" : "", i, got[i], want[i]);
    nn_buf_free(&X), nn_buf_free(&COL), nn_buf_free(&A), nn_buf_free(&C);
    free(x), free(a), free(col), free(c0), free(got), free(want);
    return 0;
}

TEST(blas_gemm_im2col)
{
    NEED_DEV(d);
    if (!nn_blas_usable(d, NN_GEMM_NATIVE))
        SKIP("the native GEMM cannot run on %s (local memory)", d->name);
    static const imcase ims[] = {
        {3, 2, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5},      /* 3x3 'same', several samples */
        {2, 3, 11, 10, 5, 3, 2, 2, 2, 0, 1, 1, 1, 7},    /* stride 2, asymmetric kernel and padding */
        {2, 4, 12, 12, 3, 3, 1, 2, 2, 1, 2, 3, 2, 6},    /* dilation, groups */
        {1, 1, 5, 5, 5, 5, 1, 1, 0, 0, 1, 1, 1, 3},      /* one output pixel */
        {4, 6, 12, 12, 5, 5, 1, 1, 0, 0, 1, 1, 1, 16},   /* LeNet conv2-like: K blocks, several panels */
        {8, 1, 28, 28, 5, 5, 1, 1, 0, 0, 1, 1, 1, 32},   /* LeNet conv1: the weight gradient is split along k */
        {2, 8, 7, 7, 1, 1, 2, 2, 0, 0, 1, 1, 1, 9},      /* 1x1 stride-2 projection */
        {2, 300, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 4},    /* K longer than a K block (300 channels) */
        {3, 3, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8},    /* 3x3 'same', rows of 14: runs split at row ends */
        {2, 2, 10, 11, 3, 5, 1, 1, 1, 2, 1, 1, 1, 5},    /* padded borders inside runs, rows of 11 */
    };
    nn_gemm_backend was = nn_blas_force(d, NN_GEMM_NATIVE);
    int r = 0;
    for (int split = 0; split < 2 && !r; split++) {
        int old = nn_blas_splitk_off(d, !split);
        for (size_t i = 0; i < sizeof ims / sizeof *ims && !r; i++)
            for (int tb = 0; tb < 2 && !r; tb++)
                r = im_case(d, &ims[i], tb, 0, 0) || im_case(d, &ims[i], tb, 0, 1);
        nn_blas_splitk_off(d, old);
    }
    /* a B offset: rows and columns into col */
    for (int tb = 0; tb < 2 && !r; tb++)
        r = im_case(d, &ims[1], tb, 2, 0) || im_case(d, &ims[8], tb, 1, 1);
    int ok = nn_blas_im2col_ok(d);
    nn_blas_force(d, was);
    if (r)
        return r;
    const char *kn = getenv("NNRUN_GEMM_NATIVE");
    CHECK(ok || (kn && strstr(kn, "im=0")), "the native backend is forced, yet convolutions would write their col");
    return 0;
}
