/* bench_gemm.c - `nnrun bench --gemm`: every GEMM implementation behind the
 * seam (src/blas.c) on the shapes of the W1/W2 benchmarks and 1024^3, timed
 * in rotating order (median of 7 after warm-up; each timing is 8 calls
 * enqueued back to back and one finish, as in a training step), each checked
 * on sampled entries against a double-precision product. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
#include "cli.h"

typedef struct gshape {
    int ta, tb;
    size_t m, n, k;
    const char *what;
} gshape;

static const gshape shapes[] = {
    {0, 0, 128, 512, 784, "W1 dense_1 forward"},
    {1, 0, 784, 512, 128, "W1 dense_1 weight gradient"},
    {0, 1, 128, 784, 512, "W1 dense_1 input gradient"},
    {0, 0, 32, 50176, 25, "W2 conv1 forward (im2col)"},
    {0, 0, 64, 12544, 800, "W2 conv2 forward"},
    {0, 1, 64, 800, 12544, "W2 conv2 weight gradient"},
    {0, 0, 1024, 1024, 1024, "square"},
};
#define NSHAPES (sizeof shapes / sizeof *shapes)
#define REPS 7
#define CALLS 8 /* back to back per timing, as a training step enqueues them */
#define SAMPLES 512

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct gbufs {
    float *a, *b, *c;
    cl_mem A, B, C;
    size_t lda, ldb;
} gbufs;

/* Worst error of sampled entries of C against a double product, relative to
 * the sum of |terms| (the scale of float rounding in any summation order). */
static double sample_error(const gshape *s, const gbufs *g, nn_rng *rng)
{
    double worst = 0;
    for (int t = 0; t < SAMPLES; t++) {
        size_t i = (size_t)(nn_rng_next(rng) % s->m), j = (size_t)(nn_rng_next(rng) % s->n);
        double sum = 0, mag = 0;
        for (size_t p = 0; p < s->k; p++) {
            double x = s->ta ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
            double y = s->tb ? g->b[j * g->ldb + p] : g->b[p * g->ldb + j];
            sum += x * y;
            mag += fabs(x * y);
        }
        double err = fabs((double)g->c[i * s->n + j] - sum) / (mag + 1e-30);
        worst = isnan(err) ? INFINITY : fmax(worst, err);
    }
    return worst;
}

static int run_once(nn_dev *d, const gshape *s, const gbufs *g, nn_err *e)
{
    return nn_gemm(d, s->ta, s->tb, s->m, s->n, s->k, 1.0f, g->A, 0, g->lda, g->B, 0, g->ldb, 0.0f, g->C, 0, s->n, e);
}

int nn_bench_gemm(const char *device, int json, nn_err *e)
{
    nn_dev d;
    int r = nn_dev_open(&d, device, 0, e);
    if (r)
        return r;
    if ((r = nn_blas_open(&d, NN_GEMM_AUTO, e))) {
        nn_dev_close(&d);
        return r;
    }
    nn_gemm_backend be[NN_GEMM_NBACKENDS];
    int nbe = 0;
    for (int b = 0; b < NN_GEMM_NBACKENDS; b++)
        if (nn_blas_usable(&d, (nn_gemm_backend)b))
            be[nbe++] = (nn_gemm_backend)b;
    nn_blas_splitk_off(&d, 1); /* the implementations themselves */
    nn_gemm_backend dflt = nn_blas_choice(&d, 0, 0, 128, 128, 128, 1);
    if (json) {
        printf("{\"device\":");
        nn_json_str(stdout, d.name);
        printf(",\"default\":\"%s\",\"gemm\":[", nn_blas_backend_name(dflt));
    } else {
        printf("GEMM on %s (GFLOP/s, median of %d; error: worst of %d sampled entries vs double, relative to "
               "sum |terms|)\n", d.name, REPS, SAMPLES);
        printf("  %-28s %-17s", "shape", "M x N x K");
        for (int b = 0; b < nbe; b++)
            printf(" %10s %8s", nn_blas_backend_name(be[b]), "error");
        printf("\n");
    }
    nn_rng rng;
    nn_rng_seed(&rng, 11);
    int first = 1;
    for (size_t si = 0; si < NSHAPES && !r; si++) {
        const gshape *s = &shapes[si];
        gbufs g = {0};
        g.lda = s->ta ? s->m : s->k;
        g.ldb = s->tb ? s->k : s->n;
        size_t an = s->m * s->k, bn = s->k * s->n, cn = s->m * s->n;
        g.a = malloc(an * sizeof(float));
        g.b = malloc(bn * sizeof(float));
        g.c = malloc(cn * sizeof(float));
        if (!g.a || !g.b || !g.c)
            r = nn_fail(e, NN_ENOMEM, "out of memory for the GEMM operands");
        for (size_t i = 0; !r && i < an; i++)
            g.a[i] = (float)(2 * nn_rng_uniform(&rng) - 1);
        for (size_t i = 0; !r && i < bn; i++)
            g.b[i] = (float)(2 * nn_rng_uniform(&rng) - 1);
        if (!r && !(r = nn_buf_alloc(&d, an * sizeof(float), "GEMM A", &g.A, e)) &&
            !(r = nn_buf_alloc(&d, bn * sizeof(float), "GEMM B", &g.B, e)) &&
            !(r = nn_buf_alloc(&d, cn * sizeof(float), "GEMM C", &g.C, e)) &&
            !(r = nn_buf_write(&d, g.A, 0, an * sizeof(float), g.a, 1, e)))
            r = nn_buf_write(&d, g.B, 0, bn * sizeof(float), g.b, 1, e);
        double t[NN_GEMM_NBACKENDS][REPS], err[NN_GEMM_NBACKENDS];
        for (int b = 0; b < nbe && !r; b++) { /* warm-up (compiles), then the error check */
            nn_blas_force(&d, be[b]);
            for (int w = 0; w < 2 && !r; w++)
                r = run_once(&d, s, &g, e);
            if (!r && !(r = nn_dev_finish(&d, e)) && !(r = nn_buf_read(&d, g.C, 0, cn * sizeof(float), g.c, e)))
                err[b] = sample_error(s, &g, &rng);
        }
        for (int rep = 0; rep < REPS && !r; rep++)
            for (int j = 0; j < nbe && !r; j++) { /* rotating order */
                int b = (j + rep) % nbe;
                nn_blas_force(&d, be[b]);
                double t0 = nn_now();
                for (int c = 0; c < CALLS && !r; c++)
                    r = run_once(&d, s, &g, e);
                if (!r && !(r = nn_dev_finish(&d, e)))
                    t[b][rep] = (nn_now() - t0) / CALLS;
            }
        double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k;
        if (!r && !json)
            printf("  %-28s %5zux%5zux%-5zu%s%s", s->what, s->m, s->n, s->k, s->ta ? "T" : " ", s->tb ? "T" : " ");
        for (int b = 0; b < nbe && !r; b++) {
            qsort(t[b], REPS, sizeof(double), cmpd);
            double gf = flops / t[b][REPS / 2] / 1e9;
            if (json) {
                printf("%s{\"m\":%zu,\"n\":%zu,\"k\":%zu,\"ta\":%d,\"tb\":%d,\"what\":", first ? "" : ",", s->m, s->n,
                       s->k, s->ta, s->tb);
                nn_json_str(stdout, s->what);
                printf(",\"backend\":\"%s\"", nn_blas_backend_name(be[b]));
                nn_json_num(stdout, "gflops", gf);
                nn_json_num(stdout, "max_rel_err", err[b]);
                printf("}");
                first = 0;
            } else
                printf(" %10.1f %8.1e", gf, err[b]);
        }
        if (!r && !json)
            printf("\n");
        nn_buf_free(&g.A);
        nn_buf_free(&g.B);
        nn_buf_free(&g.C);
        free(g.a);
        free(g.b);
        free(g.c);
    }
    if (!r && json)
        printf("]}\n");
    nn_blas_close(&d);
    nn_dev_close(&d);
    return r;
}
