/* test_norm.c - batchnorm, add / concat and the leaky_relu / elu / gelu
 * activations against plain-C double references (in this file), through the
 * real code paths (nn_spec_parse -> nn_net_build -> nn_net_alloc -> the
 * layer's forward/backward), plus finite-difference checks of the references.
 *
 *   bn_*     batchnorm: references (fd), train/eval forward, backward, running
 *            statistics over several steps, parameters, key errors
 *   merge_*  add and concat: references (fd), forward/backward with every
 *            kind of input (layers, the network input, one layer twice), a
 *            whole graph, shape validation errors
 *   act_*    leaky_relu / elu / gelu: references (fd), standalone layers,
 *            fused into dense (leaky_relu, elu), names and errors
 *
 * The device is opened once (lazily). Data are random and non-zero, shapes
 * odd, batches partial (n < max batch) with sentinel rows that must survive,
 * and dx is pre-filled so that the accumulation is what gets checked.
 * NN_TEST_VERBOSE=1 prints the largest error seen per check to stderr. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "net.h"
#include "spec.h"
#include "harness.h"
#include "tutil.h"

#define TOL 1e-4      /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-8 /* the smallest largest |gradient| those differences are relative to */

static nn_err E;

/* ----------------------------------------------------- references: bn */

/* x, y: [n, C, HW]. Training forward: batch mean, biased variance; mean[C],
 * inv[C] = 1/sqrt(var + eps) and the unbiased variance uvar[C] out (any may be NULL). */
static void ref_bn_train(const double *x, size_t n, size_t C, size_t HW, const double *gam, const double *bet,
                         double eps, double *y, double *mean_out, double *inv_out, double *uvar_out)
{
    size_t m = n * HW;
    for (size_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < HW; k++)
                s += x[(b * C + c) * HW + k];
        double mean = s / (double)m;
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < HW; k++) {
                double d = x[(b * C + c) * HW + k] - mean;
                q += d * d;
            }
        double inv = 1.0 / sqrt(q / (double)m + eps);
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < HW; k++) {
                size_t i = (b * C + c) * HW + k;
                y[i] = gam[c] * (x[i] - mean) * inv + bet[c];
            }
        if (mean_out)
            mean_out[c] = mean;
        if (inv_out)
            inv_out[c] = inv;
        if (uvar_out)
            uvar_out[c] = m > 1 ? q / (double)(m - 1) : NAN;
    }
}

/* Training backward: dx += (may be NULL), dgamma, dbeta overwritten. */
static void ref_bn_train_backward(const double *x, const double *dy, size_t n, size_t C, size_t HW,
                                  const double *gam, double eps, double *dx, double *dgam, double *dbet)
{
    size_t m = n * HW;
    double *mean = tu_xmalloc(C * sizeof *mean), *inv = tu_xmalloc(C * sizeof *inv);
    double *y = tu_xmalloc(n * C * HW * sizeof *y), *one = tu_xmalloc(C * sizeof *one),
           *zero = tu_xmalloc(C * sizeof *zero);
    for (size_t c = 0; c < C; c++)
        one[c] = 1;
    ref_bn_train(x, n, C, HW, one, zero, eps, y, mean, inv, NULL); /* y = x_hat */
    for (size_t c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < HW; k++) {
                size_t i = (b * C + c) * HW + k;
                sdy += dy[i];
                sdyx += dy[i] * y[i];
            }
        dbet[c] = sdy;
        dgam[c] = sdyx;
        if (dx)
            for (size_t b = 0; b < n; b++)
                for (size_t k = 0; k < HW; k++) {
                    size_t i = (b * C + c) * HW + k;
                    dx[i] += gam[c] * inv[c] / (double)m * ((double)m * dy[i] - sdy - y[i] * sdyx);
                }
    }
    free(mean), free(inv), free(y), free(one), free(zero);
}

static void ref_bn_eval(const double *x, size_t n, size_t C, size_t HW, const double *gam, const double *bet,
                        const double *rm, const double *rv, double eps, double *y)
{
    for (size_t i = 0; i < n * C * HW; i++) {
        size_t c = (i / HW) % C;
        y[i] = gam[c] * (x[i] - rm[c]) / sqrt(rv[c] + eps) + bet[c];
    }
}

static void ref_bn_eval_backward(const double *x, const double *dy, size_t n, size_t C, size_t HW,
                                 const double *gam, const double *rm, const double *rv, double eps, double *dx,
                                 double *dgam, double *dbet)
{
    for (size_t c = 0; c < C; c++)
        dgam[c] = dbet[c] = 0;
    for (size_t i = 0; i < n * C * HW; i++) {
        size_t c = (i / HW) % C;
        double inv = 1 / sqrt(rv[c] + eps);
        dbet[c] += dy[i];
        dgam[c] += dy[i] * (x[i] - rm[c]) * inv;
        if (dx)
            dx[i] += gam[c] * inv * dy[i];
    }
}

/* ----------------------------------------------- references: activations */

static double ref_act_alpha(double v, int act, double alpha)
{
    switch (act) {
    case NN_ACT_LEAKY_RELU: return v > 0 ? v : alpha * v;
    case NN_ACT_ELU: return v > 0 ? v : alpha * expm1(v);
    case NN_ACT_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    default: return v;
    }
}

/* d act / dx at x (analytically from the input). */
static double ref_act_alpha_grad(double v, int act, double alpha)
{
    switch (act) {
    case NN_ACT_LEAKY_RELU: return v > 0 ? 1 : alpha;
    case NN_ACT_ELU: return v > 0 ? 1 : alpha * exp(v);
    case NN_ACT_GELU: return 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
    default: return 1;
    }
}

static const char *act_type(int act)
{
    return act == NN_ACT_LEAKY_RELU ? "leaky_relu" : act == NN_ACT_ELU ? "elu" : act == NN_ACT_GELU ? "gelu" : "?";
}

/* ------------------------------------------------- references: merge */

/* concat along axis `ax` of per-sample shapes sh[k] (nd dims) of nin inputs;
 * x[k] is [n, sh[k]], y is [n, out]. back: dx[k] += slices of dy instead. */
static void ref_concat(int back, double **x, const double *y_in, double *y_out, int nin, const int (*sh)[4], int nd,
                       int ax, size_t n)
{
    size_t outer = 1, inner = 1, tot = 0;
    for (int i = 0; i < ax; i++)
        outer *= (size_t)sh[0][i];
    for (int i = ax + 1; i < nd; i++)
        inner *= (size_t)sh[0][i];
    for (int k = 0; k < nin; k++)
        tot += (size_t)sh[k][ax];
    size_t before = 0;
    for (int k = 0; k < nin; k++) {
        size_t a = (size_t)sh[k][ax];
        for (size_t r = 0; r < n * outer; r++)
            for (size_t j = 0; j < a * inner; j++) {
                size_t si = r * a * inner + j, di = r * tot * inner + before * inner + j;
                if (back)
                    x[k][si] += y_in[di];
                else
                    y_out[di] = x[k][si];
            }
        before += a;
    }
}

/* ================================================================ bn */

typedef struct bn_fd {
    size_t n, C, HW;
    int train;
    double eps;
    double *x, *g, *b, *rm, *rv, *r, *y;
} bn_fd;

static double bn_fd_f(void *ctx)
{
    bn_fd *c = ctx;
    if (c->train)
        ref_bn_train(c->x, c->n, c->C, c->HW, c->g, c->b, c->eps, c->y, NULL, NULL, NULL);
    else
        ref_bn_eval(c->x, c->n, c->C, c->HW, c->g, c->b, c->rm, c->rv, c->eps, c->y);
    return tu_dot(c->r, c->y, c->n * c->C * c->HW);
}

TEST(bn_ref_fd)
{
    ref_rng rng = {21};
    const size_t shapes[][3] = {{4, 3, 5}, {5, 13, 1}, {2, 1, 7}, {1, 2, 3}};
    for (int si = 0; si < 4; si++)
        for (int train = 0; train < 2; train++) {
            bn_fd c = {shapes[si][0], shapes[si][1], shapes[si][2], train, 1e-3, 0, 0, 0, 0, 0, 0, 0};
            size_t N = c.n * c.C * c.HW;
            c.x = tu_rnd_vec_nz(&rng, N, -2, 3, 1e-3);
            c.g = tu_rnd_vec_nz(&rng, c.C, 0.5, 1.5, 1e-3);
            c.b = tu_rnd_vec_nz(&rng, c.C, -1, 1, 1e-3);
            c.rm = tu_rnd_vec_nz(&rng, c.C, -1, 1, 1e-3);
            c.rv = tu_rnd_vec_nz(&rng, c.C, 0.5, 2, 1e-3);
            c.r = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
            c.y = tu_xmalloc(N * sizeof(double));
            double *dx = tu_xmalloc(N * sizeof(double)), *dg = tu_xmalloc(c.C * sizeof(double)),
                   *db = tu_xmalloc(c.C * sizeof(double));
            if (train)
                ref_bn_train_backward(c.x, c.r, c.n, c.C, c.HW, c.g, c.eps, dx, dg, db);
            else
                ref_bn_eval_backward(c.x, c.r, c.n, c.C, c.HW, c.g, c.rm, c.rv, c.eps, dx, dg, db);
            double ex = tu_fd_rel_err(bn_fd_f, &c, c.x, N, dx, FD_FLOOR);
            double eg = tu_fd_rel_err(bn_fd_f, &c, c.g, c.C, dg, FD_FLOOR);
            double eb = tu_fd_rel_err(bn_fd_f, &c, c.b, c.C, db, FD_FLOOR);
            tu_note_err("fd.batchnorm", fmax(ex, fmax(eg, eb)));
            CHECK(ex < FD_TOL && eg < FD_TOL && eb < FD_TOL, "bn %zux%zux%zu %s: fd rel err dx %.3g dg %.3g db %.3g",
                  c.n, c.C, c.HW, train ? "train" : "eval", ex, eg, eb);
            free(c.x), free(c.g), free(c.b), free(c.rm), free(c.rv), free(c.r), free(c.y), free(dx), free(dg),
                free(db);
        }
    return 0;
}

typedef struct bcase {
    int nd, shape[3], maxb, n;
    double momentum, eps; /* < 0: default */
} bcase;

/* One training step (forward, then backward) and one eval forward/backward
 * on a single batch, against the references. */
static int bn_case(const bcase *c)
{
    NEED_DEV(d);
    char sh[64], keys[128] = "", desc[200], json[1024];
    tu_shape_json(sh, sizeof sh, c->shape, c->nd);
    if (c->momentum >= 0)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), ",\"momentum\":%g", c->momentum);
    if (c->eps >= 0)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), ",\"eps\":%g", c->eps);
    double mom = c->momentum >= 0 ? c->momentum : 0.1, eps = c->eps >= 0 ? c->eps : 1e-5;
    snprintf(desc, sizeof desc, "batchnorm [%s] n=%d/%d%s", sh, c->n, c->maxb, keys);
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%s]},\"layers\":[" PLACEHOLDER "{\"type\":\"batchnorm\"%s}],\"loss\":\"mse\"}",
             sh, keys);
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = nn_net_out(net);
    size_t C = (size_t)c->shape[0], per = tu_prod(c->shape, c->nd), HW = per / C;
    size_t N = (size_t)c->n * per, maxN = (size_t)c->maxb * per;
    CHECK(L->nparam == 4, "%s: %d params", desc, L->nparam);
    CHECK(!strcmp(L->param[0].name, "weight") && !strcmp(L->param[1].name, "bias") &&
              !strcmp(L->param[2].name, "running_mean") && !strcmp(L->param[3].name, "running_var"),
          "%s: parameter names", desc);
    CHECK(L->param[0].trainable && L->param[1].trainable && !L->param[2].trainable && !L->param[3].trainable,
          "%s: trainable flags", desc);
    CHECK(L->param[2].g == NULL && L->param[3].g == NULL && L->param[0].g && L->param[1].g, "%s: gradient buffers",
          desc);
    CHECK(net->nstate >= 2 * C && net->ntrainable == 2 * C, "%s: %zu state, %zu trainable floats", desc,
          net->nstate, net->ntrainable);

    ref_rng rng = {1000003ull * (uint64_t)c->n + 101ull * per + 7ull * C};
    double *g = tu_rnd_vec_nz(&rng, C, 0.5, 1.5, 1e-3), *b = tu_rnd_vec_nz(&rng, C, -1, 1, 1e-3);
    double *rm = tu_rnd_vec_nz(&rng, C, -1, 1, 1e-3), *rv = tu_rnd_vec_nz(&rng, C, 0.5, 2, 1e-3);
    double *x = tu_rnd_vec_nz(&rng, maxN, -1, 1, 1e-3);
    for (size_t i = 0; i < maxN; i++) /* per-channel offsets and scales */
        x[i] = (float)(x[i] * (1 + (double)((i / HW) % C)) + 2.0 - (double)((i / HW) % C));
    TRY(tu_upload(L->param[0].w, 0, g, C, &E));
    TRY(tu_upload(L->param[1].w, 0, b, C, &E));
    TRY(tu_upload(L->param[2].w, 0, rm, C, &E));
    TRY(tu_upload(L->param[3].w, 0, rv, C, &E));
    TRY(nn_buf_fill(d, L->y, 0, maxN, SENT, &E));
    TRY(tu_upload(L->x[0], 0, x, maxN, &E));

    /* training forward */
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    double *y = tu_xmalloc(maxN * sizeof *y), *yr = tu_xmalloc(maxN * sizeof *yr);
    double *mean = tu_xmalloc(C * sizeof *mean), *inv = tu_xmalloc(C * sizeof *inv),
           *uvar = tu_xmalloc(C * sizeof *uvar);
    TRY(tu_download(L->y, 0, y, N, &E));
    ref_bn_train(x, (size_t)c->n, C, HW, g, b, eps, yr, mean, inv, uvar);
    double ef = tu_rel_err(y, yr, N);
    tu_note_err("bn.forward.train", ef);
    CHECK(ef < TOL, "%s: train forward rel err %.3g", desc, ef);
    long bad = tu_sentinel_bad(L->y, N, maxN - N, &E);
    CHECK(bad < 0, "%s: train forward wrote y beyond row %d (float %ld)", desc, c->n, bad);
    /* normalised (before gamma/beta): per-channel mean 0, variance var/(var+eps) ~ 1 */
    for (size_t ch = 0; ch < C && (size_t)c->n * HW > 1; ch++) {
        double s = 0, q = 0;
        size_t m = (size_t)c->n * HW;
        for (size_t bi = 0; bi < (size_t)c->n; bi++)
            for (size_t k = 0; k < HW; k++) {
                double h = (y[(bi * C + ch) * HW + k] - b[ch]) / g[ch];
                s += h;
                q += h * h;
            }
        double mu = s / (double)m, var = q / (double)m - mu * mu;
        double want = 1 - eps * inv[ch] * inv[ch]; /* var / (var + eps) */
        CHECK(fabs(mu) < 1e-4 && fabs(var - want) < 1e-3, "%s: channel %zu normalised mean %.3g var %.6f (want %.6f)",
              desc, ch, mu, var, want);
    }
    /* running statistics: one step of the recurrence */
    double *rm2 = tu_xmalloc(C * sizeof *rm2), *rv2 = tu_xmalloc(C * sizeof *rv2);
    double *rmr = tu_xmalloc(C * sizeof *rmr), *rvr = tu_xmalloc(C * sizeof *rvr);
    for (size_t ch = 0; ch < C; ch++) {
        rmr[ch] = (1 - mom) * rm[ch] + mom * mean[ch];
        rvr[ch] = (size_t)c->n * HW > 1 ? (1 - mom) * rv[ch] + mom * uvar[ch] : rv[ch];
    }
    TRY(tu_download(L->param[2].w, 0, rm2, C, &E));
    TRY(tu_download(L->param[3].w, 0, rv2, C, &E));
    double erm = tu_rel_err(rm2, rmr, C), erv = tu_rel_err(rv2, rvr, C);
    tu_note_err("bn.running", fmax(erm, erv));
    CHECK(erm < TOL && erv < TOL, "%s: running stats rel err mean %.3g var %.3g", desc, erm, erv);

    /* training backward: dx accumulates, dgamma/dbeta overwritten, rows >= n untouched */
    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    double *dy = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3), *dx0 = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
    TRY(tu_upload(L->dy, 0, dy, N, &E));
    TRY(tu_upload(L->dx[0], 0, dx0, N, &E));
    TRY(L->type->backward(L, &run, &E));
    double *dx = tu_xmalloc(N * sizeof *dx), *dxr = tu_dup_vec(dx0, N);
    double *dg = tu_xmalloc(C * sizeof *dg), *db = tu_xmalloc(C * sizeof *db);
    double *dgr = tu_xmalloc(C * sizeof *dgr), *dbr = tu_xmalloc(C * sizeof *dbr);
    ref_bn_train_backward(x, dy, (size_t)c->n, C, HW, g, eps, dxr, dgr, dbr);
    TRY(tu_download(L->dx[0], 0, dx, N, &E));
    TRY(tu_download(L->param[0].g, 0, dg, C, &E));
    TRY(tu_download(L->param[1].g, 0, db, C, &E));
    for (size_t i = 0; i < N; i++) /* compare the deltas */
        dx[i] -= dx0[i], dxr[i] -= dx0[i];
    double ex = tu_rel_err(dx, dxr, N), eg = tu_rel_err(dg, dgr, C), eb = tu_rel_err(db, dbr, C);
    tu_note_err("bn.backward.train", fmax(ex, fmax(eg, eb)));
    CHECK(ex < TOL && eg < TOL && eb < TOL, "%s: train backward rel err dx %.3g dgamma %.3g dbeta %.3g", desc, ex,
          eg, eb);
    bad = tu_sentinel_bad(L->dx[0], N, maxN - N, &E);
    CHECK(bad < 0, "%s: backward wrote dx beyond row %d (float %ld)", desc, c->n, bad);
    double *dyb = tu_xmalloc(N * sizeof *dyb);
    TRY(tu_download(L->dy, 0, dyb, N, &E));
    CHECK(tu_rel_err(dyb, dy, N) == 0, "%s: backward changed dy", desc);

    /* eval: running statistics, which it must not change */
    TRY(nn_buf_fill(d, L->y, 0, maxN, SENT, &E));
    run.train = 0;
    TRY(L->type->forward(L, &run, &E));
    TRY(tu_download(L->y, 0, y, N, &E));
    ref_bn_eval(x, (size_t)c->n, C, HW, g, b, rmr, rvr, eps, yr);
    double ee = tu_rel_err(y, yr, N);
    tu_note_err("bn.forward.eval", ee);
    CHECK(ee < TOL, "%s: eval forward rel err %.3g", desc, ee);
    bad = tu_sentinel_bad(L->y, N, maxN - N, &E);
    CHECK(bad < 0, "%s: eval forward wrote y beyond row %d (float %ld)", desc, c->n, bad);
    TRY(tu_download(L->param[2].w, 0, rm2, C, &E));
    TRY(tu_download(L->param[3].w, 0, rv2, C, &E));
    CHECK(tu_rel_err(rm2, rmr, C) < TOL && tu_rel_err(rv2, rvr, C) < TOL, "%s: eval forward changed the running stats",
          desc);
    /* eval-mode backward (running statistics as constants) */
    TRY(tu_upload(L->dx[0], 0, dx0, N, &E));
    TRY(L->type->backward(L, &run, &E));
    memcpy(dxr, dx0, N * sizeof *dxr);
    ref_bn_eval_backward(x, dy, (size_t)c->n, C, HW, g, rmr, rvr, eps, dxr, dgr, dbr);
    TRY(tu_download(L->dx[0], 0, dx, N, &E));
    TRY(tu_download(L->param[0].g, 0, dg, C, &E));
    TRY(tu_download(L->param[1].g, 0, db, C, &E));
    for (size_t i = 0; i < N; i++)
        dx[i] -= dx0[i], dxr[i] -= dx0[i];
    ex = tu_rel_err(dx, dxr, N), eg = tu_rel_err(dg, dgr, C), eb = tu_rel_err(db, dbr, C);
    tu_note_err("bn.backward.eval", fmax(ex, fmax(eg, eb)));
    CHECK(ex < TOL && eg < TOL && eb < TOL, "%s: eval backward rel err dx %.3g dgamma %.3g dbeta %.3g", desc, ex,
          eg, eb);

    free(g), free(b), free(rm), free(rv), free(x), free(y), free(yr), free(mean), free(inv), free(uvar);
    free(rm2), free(rv2), free(rmr), free(rvr), free(dy), free(dx0), free(dx), free(dxr), free(dg), free(db);
    free(dgr), free(dbr), free(dyb);
    tu_net_free(&t);
    return 0;
}

TEST(bn_conv_shapes)
{
    const bcase cs[] = {
        {3, {3, 5, 7}, 6, 4, -1, -1},   {3, {3, 5, 7}, 5, 5, 0.3, 1e-3}, {3, {3, 5, 7}, 3, 1, -1, -1},
        {3, {1, 1, 1}, 9, 7, 0.5, -1},  {3, {16, 2, 3}, 8, 3, -1, -1},   {2, {5, 9}, 4, 3, -1, 0.01},
        {3, {2, 33, 17}, 3, 2, -1, -1}, /* 1122 values per channel: more than one pass of the work-group */
        {3, {40, 4, 5}, 7, 6, -1, -1},  /* CPUs: several channels per work item, 16-lane sums and a tail */
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (bn_case(&cs[i]))
            return 1;
    return 0;
}

TEST(bn_features)
{
    const bcase cs[] = {
        /* (2 values per channel would be ill-conditioned in fp32: the exact dx is O(eps)) */
        {1, {13}, 17, 11, -1, -1}, {1, {13}, 4, 4, 1.0, -1}, {1, {1}, 5, 3, -1, -1},
        {1, {13}, 6, 1, -1, -1}, /* one value per feature: running_var unchanged */
        {1, {200}, 130, 129, 0.05, 1e-4},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (bn_case(&cs[i]))
            return 1;
    return 0;
}

/* k training steps on different batches (and batch sizes): the running
 * statistics follow the recurrence; then eval uses them. */
TEST(bn_running_stats_steps)
{
    NEED_DEV(d);
    const int shape[3] = {3, 5, 7}, maxb = 6, steps = 5, ns[5] = {6, 4, 1, 5, 2};
    const double mom = 0.25, eps = 1e-5;
    tu_net t;
    TRY(tu_net_make(&t,
                    "{\"input\":{\"shape\":[3,5,7]},\"layers\":[" PLACEHOLDER
                    "{\"type\":\"batchnorm\",\"momentum\":0.25}],\"loss\":\"mse\"}",
                    maxb, 1, &E));
    nn_layer *L = nn_net_out(&t.net);
    size_t C = 3, per = tu_prod(shape, 3), HW = per / C, maxN = (size_t)maxb * per;
    /* the initialisation: gamma 1, beta 0, running mean 0, running var 1 */
    TRY(nn_net_init_params(&t.net, 5, &E));
    double v[4][3];
    for (int p = 0; p < 4; p++)
        TRY(tu_download(L->param[p].w, 0, v[p], C, &E));
    for (size_t c = 0; c < C; c++)
        CHECK(v[0][c] == 1 && v[1][c] == 0 && v[2][c] == 0 && v[3][c] == 1, "initial values of channel %zu", c);
    ref_rng rng = {77};
    double *g = tu_rnd_vec_nz(&rng, C, 0.5, 1.5, 1e-3), *b = tu_rnd_vec_nz(&rng, C, -1, 1, 1e-3);
    TRY(tu_upload(L->param[0].w, 0, g, C, &E));
    TRY(tu_upload(L->param[1].w, 0, b, C, &E));
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1}, mean[3], inv[3], uvar[3];
    double *x = NULL, *yr = tu_xmalloc(maxN * sizeof *yr), *y = tu_xmalloc(maxN * sizeof *y);
    for (int s = 0; s < steps; s++) {
        free(x);
        x = tu_rnd_vec_nz(&rng, maxN, -2, 4, 1e-3);
        TRY(tu_upload(L->x[0], 0, x, maxN, &E));
        nn_run run = {d, ns[s], 1, 7, (uint64_t)s};
        TRY(L->type->forward(L, &run, &E));
        ref_bn_train(x, (size_t)ns[s], C, HW, g, b, eps, yr, mean, inv, uvar);
        for (size_t c = 0; c < C; c++) {
            rm[c] = (1 - mom) * rm[c] + mom * mean[c];
            rv[c] = (1 - mom) * rv[c] + mom * uvar[c];
        }
    }
    double got[2][3];
    TRY(tu_download(L->param[2].w, 0, got[0], C, &E));
    TRY(tu_download(L->param[3].w, 0, got[1], C, &E));
    double erm = tu_rel_err(got[0], rm, C), erv = tu_rel_err(got[1], rv, C);
    tu_note_err("bn.running.steps", fmax(erm, erv));
    CHECK(erm < TOL && erv < TOL, "after %d steps: running mean rel err %.3g, var %.3g (var %g vs %g)", steps, erm,
          erv, got[1][0], rv[0]);
    /* eval on the last batch: the reference eval formula with those stats */
    nn_run run = {d, ns[steps - 1], 0, 7, 9};
    size_t N = (size_t)ns[steps - 1] * per;
    TRY(L->type->forward(L, &run, &E));
    TRY(tu_download(L->y, 0, y, N, &E));
    ref_bn_eval(x, (size_t)ns[steps - 1], C, HW, g, b, rm, rv, eps, yr);
    double ee = tu_rel_err(y, yr, N);
    CHECK(ee < TOL, "eval after %d steps: rel err %.3g", steps, ee);
    /* and it differs from the batch-statistics output */
    ref_bn_train(x, (size_t)ns[steps - 1], C, HW, g, b, eps, yr, NULL, NULL, NULL);
    CHECK(tu_rel_err(y, yr, N) > 1e-2, "eval output equals the training output: running stats unused?");
    free(g), free(b), free(x), free(yr), free(y);
    tu_net_free(&t);
    return 0;
}

/* The running statistics are state: saved with the parameters, not optimised. */
TEST(bn_params_layout)
{
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    const char *json = "{\"input\":{\"shape\":[4]},\"layers\":[{\"type\":\"dense\",\"units\":6},"
                       "{\"type\":\"batchnorm\"},{\"type\":\"relu\"},{\"type\":\"dense\",\"units\":3}],"
                       "\"loss\":\"mse\"}";
    TRY(nn_spec_parse(json, strlen(json), "test.json", &s, &E));
    TRY(nn_net_build(&net, &s, &s.input, 0, &E));
    nn_layer *L = &net.L[1];
    CHECK(!strcmp(L->name, "batchnorm_1"), "name %s", L->name);
    CHECK(L->out_shape.nd == 1 && L->out_shape.d[0] == 6, "output shape");
    CHECK(net.ntrainable == 4 * 6 + 6 + 6 + 6 + 6 * 3 + 3, "trainable %zu", net.ntrainable);
    CHECK(net.nstate >= 12 && L->param[2].off != L->param[3].off, "state %zu", net.nstate);
    CHECK(L->param[2].init == NN_INIT_ZERO && L->param[3].init == NN_INIT_ONE && L->param[0].init == NN_INIT_ONE &&
              L->param[1].init == NN_INIT_ZERO,
          "initialisers");
    nn_spec_free(&s);
    return 0;
}

TEST(bn_key_errors)
{
    static const struct {
        const char *layer, *want;
    } cs[] = {
        {"{\"type\":\"batchnorm\",\"momentum\":1.5}", "layers[0].momentum: 1.5 is out of range"},
        {"{\"type\":\"batchnorm\",\"eps\":-1}", "layers[0].eps"},
        {"{\"type\":\"batchnorm\",\"momentum\":\"x\"}", "expected a number"},
        {"{\"type\":\"batchnorm\",\"moment\":0.1}", "did you mean 'momentum'"},
        {"{\"type\":\"batchnorm\",\"inputs\":[\"input\",\"input\"]}", "takes 1 to 1 inputs"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"input\":{\"shape\":[3,4,4]},\"layers\":[%s],\"loss\":\"mse\"}", cs[i].layer);
        int r = tu_build_only(json, 0, &E);
        CHECK(r == NN_EDATA && strstr(E.msg, cs[i].want), "%s: got %d '%s', want '%s'", cs[i].layer, r, E.msg,
              cs[i].want);
    }
    return 0;
}

/* ============================================================= merge */

typedef struct merge_fd {
    int concat, nin, nd, ax;
    size_t n;
    int sh[4][4];
    double *x[4], *r, *y;
    size_t ny;
} merge_fd;

static double merge_fd_f(void *ctx)
{
    merge_fd *c = ctx;
    if (c->concat) {
        ref_concat(0, c->x, NULL, c->y, c->nin, (const int (*)[4])c->sh, c->nd, c->ax, c->n);
    } else {
        for (size_t i = 0; i < c->ny; i++) {
            c->y[i] = 0;
            for (int k = 0; k < c->nin; k++)
                c->y[i] += c->x[k][i];
        }
    }
    return tu_dot(c->r, c->y, c->ny);
}

TEST(merge_ref_fd)
{
    ref_rng rng = {31};
    for (int concat = 0; concat < 2; concat++) {
        merge_fd c = {concat, 3, 3, 1, 2, {{3, 2, 5}, {3, concat ? 4 : 2, 5}, {3, concat ? 1 : 2, 5}}, {0}, 0, 0, 0};
        size_t sz[3];
        c.ny = 0;
        for (int k = 0; k < 3; k++) {
            sz[k] = c.n * tu_prod(c.sh[k], 3);
            c.x[k] = tu_rnd_vec_nz(&rng, sz[k], -1, 1, 1e-3);
            c.ny = concat ? c.ny + sz[k] : sz[k];
        }
        c.r = tu_rnd_vec_nz(&rng, c.ny, -1, 1, 1e-3);
        c.y = tu_xmalloc(c.ny * sizeof(double));
        double *dx[3];
        for (int k = 0; k < 3; k++)
            dx[k] = tu_xmalloc(sz[k] * sizeof(double));
        if (concat)
            ref_concat(1, dx, c.r, NULL, 3, (const int (*)[4])c.sh, 3, c.ax, c.n);
        else
            for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < sz[k]; i++)
                    dx[k][i] += c.r[i];
        for (int k = 0; k < 3; k++) {
            double err = tu_fd_rel_err(merge_fd_f, &c, c.x[k], sz[k], dx[k], FD_FLOOR);
            tu_note_err("fd.merge", err);
            CHECK(err < FD_TOL, "%s input %d: fd rel err %.3g", concat ? "concat" : "add", k, err);
        }
        for (int k = 0; k < 3; k++)
            free(c.x[k]), free(dx[k]);
        free(c.r), free(c.y);
    }
    return 0;
}

/* A net whose last layer (add or concat) is under test. Its inputs are earlier
 * layers whose outputs we write directly (they never run), or the network
 * input (no dx); one may appear twice. */
typedef struct mcase {
    const char *json;
    int maxb, n;
    int concat, ax; /* resolved axis of the per-sample shape */
} mcase;

static int merge_case(const mcase *c)
{
    NEED_DEV(d);
    tu_net t;
    TRY(tu_net_make(&t, c->json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = nn_net_out(net);
    const char *desc = c->json;
    size_t B = (size_t)c->maxb, n = (size_t)c->n;
    int nin = L->nin, nd = L->in_shape[0].nd;
    int sh[NN_MAX_INPUTS][4];
    size_t per[NN_MAX_INPUTS], oper = nn_shape_size(&L->out_shape);
    double *x[NN_MAX_INPUTS], *dx0[NN_MAX_INPUTS], *dxr[NN_MAX_INPUTS];
    ref_rng rng = {(uint64_t)strlen(c->json) * 31u + (uint64_t)c->n};
    /* one host array per distinct producer, shared by repeated inputs */
    for (int k = 0; k < nin; k++) {
        for (int i = 0; i < 4; i++)
            sh[k][i] = i < nd ? L->in_shape[k].d[i] : 1;
        per[k] = nn_shape_size(&L->in_shape[k]);
        int first = k;
        for (int j = 0; j < k; j++)
            if (L->in[j] == L->in[k])
                first = j;
        if (first < k) {
            x[k] = x[first], dx0[k] = dx0[first], dxr[k] = dxr[first];
            continue;
        }
        x[k] = tu_rnd_vec_nz(&rng, B * per[k], -1, 1, 1e-3);
        dx0[k] = tu_rnd_vec_nz(&rng, n * per[k], -1, 1, 1e-3);
        dxr[k] = tu_dup_vec(dx0[k], n * per[k]);
    }
    TRY(nn_buf_fill(d, net->arena, 0, net->arena_bytes / sizeof(float), SENT, &E));
    for (int k = 0; k < nin; k++)
        TRY(tu_upload(L->x[k], 0, x[k], B * per[k], &E));

    /* forward */
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    double *y = tu_xmalloc(n * oper * sizeof *y), *yr = tu_xmalloc(n * oper * sizeof *yr);
    TRY(tu_download(L->y, 0, y, n * oper, &E));
    if (c->concat) {
        ref_concat(0, x, NULL, yr, nin, (const int (*)[4])sh, nd, c->ax, n);
    } else {
        for (size_t i = 0; i < n * oper; i++) {
            yr[i] = 0;
            for (int k = 0; k < nin; k++)
                yr[i] += (float)x[k][i];
        }
    }
    double ef = tu_rel_err(y, yr, n * oper);
    tu_note_err(c->concat ? "concat.forward" : "add.forward", ef);
    CHECK(ef < (c->concat ? 1e-12 : TOL), "%s n=%d: forward rel err %.3g", desc, c->n, ef);
    long bad = tu_sentinel_bad(L->y, n * oper, (B - n) * oper, &E);
    CHECK(bad < 0, "%s n=%d: forward wrote y beyond row %d (float %ld)", desc, c->n, c->n, bad);

    /* backward: every input's dx += its part of dy; rows >= n untouched */
    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    double *dy = tu_rnd_vec_nz(&rng, n * oper, -1, 1, 1e-3);
    TRY(tu_upload(L->dy, 0, dy, n * oper, &E));
    for (int k = 0; k < nin; k++)
        if (L->dx[k])
            TRY(tu_upload(L->dx[k], 0, dx0[k], n * per[k], &E));
    TRY(L->type->backward(L, &run, &E));
    if (c->concat) {
        ref_concat(1, dxr, dy, NULL, nin, (const int (*)[4])sh, nd, c->ax, n);
    } else {
        for (int k = 0; k < nin; k++)
            for (size_t i = 0; i < n * oper; i++)
                dxr[k][i] += dy[i];
    }
    for (int k = 0; k < nin; k++) {
        if (!L->dx[k]) {
            CHECK(L->in[k] < 0, "%s: input %d has no dx", desc, k);
            continue;
        }
        double *dx = tu_xmalloc(n * per[k] * sizeof *dx);
        TRY(tu_download(L->dx[k], 0, dx, n * per[k], &E));
        for (size_t i = 0; i < n * per[k]; i++)
            dx[i] -= dx0[k][i];
        double *want = tu_dup_vec(dxr[k], n * per[k]);
        for (size_t i = 0; i < n * per[k]; i++)
            want[i] -= dx0[k][i];
        double eb = tu_rel_err(dx, want, n * per[k]);
        tu_note_err(c->concat ? "concat.backward" : "add.backward", eb);
        CHECK(eb < TOL, "%s n=%d: backward rel err of input %d (%s): %.3g", desc, c->n, k,
              net->L[L->in[k]].name, eb);
        bad = tu_sentinel_bad(L->dx[k], n * per[k], (B - n) * per[k], &E);
        CHECK(bad < 0, "%s n=%d: backward wrote dx of input %d beyond row %d (float %ld)", desc, c->n, k, c->n,
              bad);
        free(dx), free(want);
    }
    double *dyb = tu_xmalloc(n * oper * sizeof *dyb);
    TRY(tu_download(L->dy, 0, dyb, n * oper, &E));
    CHECK(tu_rel_err(dyb, dy, n * oper) == 0, "%s: backward changed dy", desc);

    for (int k = 0; k < nin; k++) {
        int first = 1;
        for (int j = 0; j < k; j++)
            if (L->in[j] == L->in[k])
                first = 0;
        if (first)
            free(x[k]), free(dx0[k]), free(dxr[k]);
    }
    free(y), free(yr), free(dy), free(dyb);
    tu_net_free(&t);
    return 0;
}

#define DROP(nm) "{\"type\":\"dropout\",\"rate\":0,\"name\":\"" nm "\",\"inputs\":[\"input\"]},"

TEST(merge_add)
{
    const mcase cs[] = {
        {"{\"input\":{\"shape\":[3,5,7]},\"layers\":[" DROP("p") DROP("q")
         "{\"type\":\"add\",\"inputs\":[\"p\",\"q\"]}],\"loss\":\"mse\"}",
         6, 4, 0, 0},
        {"{\"input\":{\"shape\":[13]},\"layers\":[" DROP("p") DROP("q") DROP("r")
         "{\"type\":\"add\",\"inputs\":[\"p\",\"q\",\"r\"]}],\"loss\":\"mse\"}",
         17, 11, 0, 0},
        /* the network input (no dx) and one layer twice (dx gets dy twice) */
        {"{\"input\":{\"shape\":[3,5,7]},\"layers\":[" DROP("p")
         "{\"type\":\"add\",\"inputs\":[\"input\",\"p\",\"p\"]}],\"loss\":\"mse\"}",
         5, 2, 0, 0},
        {"{\"input\":{\"shape\":[13]},\"layers\":[" DROP("p") DROP("q")
         "{\"type\":\"add\",\"inputs\":[\"q\",\"p\"]}],\"loss\":\"mse\"}",
         4, 4, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (merge_case(&cs[i]))
            return 1;
    return 0;
}

TEST(merge_concat)
{
    const mcase cs[] = {
        /* axis 0 (channels): [3,5,7] + [6,5,7] + the input [3,5,7] -> [12,5,7] */
        {"{\"input\":{\"shape\":[3,5,7]},\"layers\":[" DROP("p")
         "{\"type\":\"concat\",\"name\":\"q\",\"inputs\":[\"input\",\"input\"]},"
         "{\"type\":\"concat\",\"inputs\":[\"p\",\"q\",\"input\"]}],\"loss\":\"mse\"}",
         6, 4, 1, 0},
        /* axis 1: [3,5,7] + [3,10,7] */
        {"{\"input\":{\"shape\":[3,5,7]},\"layers\":[" DROP("p")
         "{\"type\":\"concat\",\"name\":\"q\",\"axis\":1,\"inputs\":[\"input\",\"input\"]},"
         "{\"type\":\"concat\",\"axis\":1,\"inputs\":[\"p\",\"q\"]}],\"loss\":\"mse\"}",
         5, 3, 1, 1},
        /* axis -1 (= 2): [3,5,2] (dense) + [3,5,7] */
        {"{\"input\":{\"shape\":[3,5,7]},\"layers\":[" DROP("p")
         "{\"type\":\"dense\",\"units\":2,\"name\":\"q\",\"inputs\":[\"input\"]},"
         "{\"type\":\"concat\",\"axis\":-1,\"inputs\":[\"q\",\"p\"]}],\"loss\":\"mse\"}",
         4, 1, 1, 2},
        /* 1-D: [13] + [4] + [13] again (the same layer twice) */
        {"{\"input\":{\"shape\":[13]},\"layers\":[" DROP("p")
         "{\"type\":\"dense\",\"units\":4,\"name\":\"q\",\"inputs\":[\"input\"]},"
         "{\"type\":\"concat\",\"inputs\":[\"p\",\"q\",\"p\"]}],\"loss\":\"mse\"}",
         17, 11, 1, 0},
        {"{\"input\":{\"shape\":[13]},\"layers\":[" DROP("p") DROP("q")
         "{\"type\":\"concat\",\"inputs\":[\"q\",\"p\"]}],\"loss\":\"mse\"}",
         3, 3, 1, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (merge_case(&cs[i]))
            return 1;
    return 0;
}

TEST(merge_shapes)
{
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    const char *json = "{\"input\":{\"shape\":[3,5,7]},\"layers\":["
                       "{\"type\":\"concat\",\"name\":\"a\",\"inputs\":[\"input\",\"input\",\"input\"]},"
                       "{\"type\":\"concat\",\"name\":\"b\",\"axis\":-2,\"inputs\":[\"input\",\"a\"]},"
                       "{\"type\":\"dense\",\"units\":4,\"name\":\"c\",\"inputs\":[\"input\"]},"
                       "{\"type\":\"concat\",\"name\":\"d\",\"axis\":2,\"inputs\":[\"c\",\"input\",\"c\"]},"
                       "{\"type\":\"add\",\"name\":\"e\",\"inputs\":[\"input\",\"input\"]}],\"loss\":\"mse\"}";
    TRY(nn_spec_parse(json, strlen(json), "test.json", &s, &E));
    int r = nn_net_build(&net, &s, &s.input, 0, &E);
    CHECK(r == NN_EDATA && strstr(E.msg, "layers[1] (b): input 'input' has shape [3, 5, 7] but 'a' has [9, 5, 7]"),
          "axis -2 with different channels: %d %s", r, E.msg);
    nn_spec_free(&s);
    json = "{\"input\":{\"shape\":[3,5,7]},\"layers\":["
           "{\"type\":\"concat\",\"name\":\"a\",\"inputs\":[\"input\",\"input\",\"input\"]},"
           "{\"type\":\"dense\",\"units\":4,\"name\":\"c\",\"inputs\":[\"input\"]},"
           "{\"type\":\"concat\",\"name\":\"d\",\"axis\":2,\"inputs\":[\"c\",\"input\",\"c\"]},"
           "{\"type\":\"add\",\"name\":\"e\",\"inputs\":[\"input\",\"input\"]}],\"loss\":\"mse\"}";
    memset(&s, 0, sizeof s);
    TRY(nn_spec_parse(json, strlen(json), "test.json", &s, &E));
    TRY(nn_net_build(&net, &s, &s.input, 0, &E));
    const nn_shape *o0 = &net.L[0].out_shape, *o2 = &net.L[2].out_shape, *o3 = &net.L[3].out_shape;
    CHECK(o0->nd == 3 && o0->d[0] == 9 && o0->d[1] == 5 && o0->d[2] == 7, "concat axis 0 shape");
    CHECK(o2->nd == 3 && o2->d[0] == 3 && o2->d[1] == 5 && o2->d[2] == 15, "concat axis 2 shape");
    CHECK(o3->nd == 3 && o3->d[0] == 3 && o3->d[1] == 5 && o3->d[2] == 7, "add shape");
    CHECK(net.L[2].nparam == 0 && net.L[3].nparam == 0, "merge layers have no parameters");
    nn_spec_free(&s);
    return 0;
}

/* The graph of the brief: two dense layers on the input, added; whole-net
 * forward and backward (both branches get the full gradient). */
TEST(merge_graph_add_dense)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[4]},\"layers\":[{\"type\":\"dense\",\"units\":3,\"name\":\"a\","
                       "\"inputs\":[\"input\"]},{\"type\":\"dense\",\"units\":3,\"name\":\"b\",\"inputs\":[\"input\"]},"
                       "{\"type\":\"add\",\"inputs\":[\"a\",\"b\"]}],\"loss\":\"mse\"}";
    const int maxb = 7, n = 5;
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 1, &E));
    nn_net *net = &t.net;
    CHECK(net->nl == 3 && !strcmp(net->L[2].name, "add_1") && net->L[2].nin == 2, "graph");
    TRY(nn_net_init_params(net, 3, &E));
    ref_rng rng = {5};
    double *x = tu_rnd_vec_nz(&rng, (size_t)maxb * 4, -1, 1, 1e-3);
    TRY(tu_upload(net->x_in, 0, x, (size_t)maxb * 4, &E));
    double W[2][12], bias[2][3];
    for (int l = 0; l < 2; l++) {
        double *bb = tu_rnd_vec_nz(&rng, 3, -1, 1, 1e-3); /* non-zero biases */
        TRY(tu_upload(net->L[l].param[1].w, 0, bb, 3, &E));
        memcpy(bias[l], bb, sizeof bias[l]);
        free(bb);
        TRY(tu_download(net->L[l].param[0].w, 0, W[l], 12, &E));
    }
    nn_run run = {d, n, 1, 1, 1};
    TRY(nn_net_forward(net, &run, &E));
    double y[15], yr[15];
    TRY(tu_download(nn_net_out(net)->y, 0, y, 15, &E));
    for (int r = 0; r < n; r++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int l = 0; l < 2; l++) {
                s += bias[l][j];
                for (int i = 0; i < 4; i++)
                    s += x[r * 4 + i] * W[l][i * 3 + j];
            }
            yr[r * 3 + j] = s;
        }
    double ef = tu_rel_err(y, yr, 15);
    CHECK(ef < TOL, "graph forward rel err %.3g", ef);
    TRY(nn_net_zero_grads(net, &E));
    double *dy = tu_rnd_vec_nz(&rng, 15, -1, 1, 1e-3);
    TRY(tu_upload(nn_net_out(net)->dy, 0, dy, 15, &E));
    TRY(nn_net_backward(net, &run, &E));
    double dwr[12], dbr[3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            dwr[i * 3 + j] = 0;
            for (int r = 0; r < n; r++)
                dwr[i * 3 + j] += x[r * 4 + i] * dy[r * 3 + j];
        }
    for (int j = 0; j < 3; j++) {
        dbr[j] = 0;
        for (int r = 0; r < n; r++)
            dbr[j] += dy[r * 3 + j];
    }
    for (int l = 0; l < 2; l++) {
        double dw[12], db[3];
        TRY(tu_download(net->L[l].param[0].g, 0, dw, 12, &E));
        TRY(tu_download(net->L[l].param[1].g, 0, db, 3, &E));
        double ew = tu_rel_err(dw, dwr, 12), eb = tu_rel_err(db, dbr, 3);
        CHECK(ew < TOL && eb < TOL, "branch %s: dW rel err %.3g, db %.3g", net->L[l].name, ew, eb);
    }
    free(x), free(dy);
    tu_net_free(&t);
    return 0;
}

TEST(merge_errors)
{
    static const struct {
        const char *json, *want[3];
    } cs[] = {
        {"{\"input\":{\"shape\":[4]},\"layers\":[{\"type\":\"dense\",\"units\":3,\"name\":\"a\",\"inputs\":[\"input\"]},"
         "{\"type\":\"dense\",\"units\":5,\"name\":\"b\",\"inputs\":[\"input\"]},{\"type\":\"add\",\"inputs\":[\"a\",\"b\"]}],"
         "\"loss\":\"mse\"}",
         {"layers[2] (add_1): input 'a' has shape [3] but 'b' has [5]", "test.json", NULL}},
        {"{\"input\":{\"shape\":[2,3,3]},\"layers\":[{\"type\":\"concat\",\"name\":\"c2\",\"inputs\":[\"input\",\"input\"]},"
         "{\"type\":\"relu\",\"name\":\"r\",\"inputs\":[\"input\"]},"
         "{\"type\":\"add\",\"name\":\"sum\",\"inputs\":[\"r\",\"input\",\"c2\"]}],\"loss\":\"mse\"}",
         {"layers[2] (sum): input 'r' has shape [2, 3, 3] but 'c2' has [4, 3, 3]", "identical shape", NULL}},
        {"{\"input\":{\"shape\":[3,4]},\"layers\":[{\"type\":\"dense\",\"units\":2,\"name\":\"d1\",\"inputs\":[\"input\"]},"
         "{\"type\":\"concat\",\"inputs\":[\"input\",\"d1\"]}],\"loss\":\"mse\"}",
         {"layers[1] (concat_1): input 'input' has shape [3, 4] but 'd1' has [3, 2]", "axis 0", NULL}},
        {"{\"input\":{\"shape\":[3,4]},\"layers\":[{\"type\":\"flatten\",\"name\":\"f\",\"inputs\":[\"input\"]},"
         "{\"type\":\"concat\",\"axis\":-1,\"inputs\":[\"input\",\"f\"]}],\"loss\":\"mse\"}",
         {"input 'input' has shape [3, 4] but 'f' has [12]", "same rank", NULL}},
        {"{\"input\":{\"shape\":[3,4]},\"layers\":[{\"type\":\"concat\",\"axis\":2,\"inputs\":[\"input\",\"input\"]}],"
         "\"loss\":\"mse\"}",
         {"layers[0].axis: 2 is out of range", "input 'input' of shape [3, 4]", NULL}},
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"concat\",\"axis\":9,\"inputs\":[\"input\",\"input\"]}],"
         "\"loss\":\"mse\"}",
         {"layers[0].axis: 9 is out of range", NULL, NULL}},
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"add\",\"inputs\":[\"input\"]}],\"loss\":\"mse\"}",
         {"a add layer takes 2 to 8 inputs, not 1", NULL, NULL}},
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"relu\"},{\"type\":\"concat\"}],\"loss\":\"mse\"}",
         {"takes 2 to 8 inputs, not 1", NULL, NULL}},
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"add\",\"axis\":0,\"inputs\":[\"input\",\"input\"]}],"
         "\"loss\":\"mse\"}",
         {"unknown key 'axis'", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        int r = tu_build_only(cs[i].json, 0, &E);
        CHECK(r == NN_EDATA, "case %zu: code %d (%s)", i, r, E.msg);
        for (int k = 0; k < 3 && cs[i].want[k]; k++)
            CHECK(strstr(E.msg, cs[i].want[k]), "case %zu: '%s' lacks '%s'", i, E.msg, cs[i].want[k]);
    }
    return 0;
}

/* ======================================================= activations */

typedef struct act_fd {
    int act;
    double alpha, *x, *r, *y;
    size_t n;
} act_fd;

static double act_fd_f(void *ctx)
{
    act_fd *c = ctx;
    for (size_t i = 0; i < c->n; i++)
        c->y[i] = ref_act_alpha(c->x[i], c->act, c->alpha);
    return tu_dot(c->r, c->y, c->n);
}

TEST(act_ref_fd)
{
    ref_rng rng = {41};
    const struct {
        int act;
        double alpha;
    } cs[] = {{NN_ACT_LEAKY_RELU, 0.01}, {NN_ACT_LEAKY_RELU, 0.3}, {NN_ACT_ELU, 1.0},
              {NN_ACT_ELU, 0.4},         {NN_ACT_GELU, 0}};
    for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
        act_fd c = {cs[k].act, cs[k].alpha, NULL, NULL, NULL, 40};
        c.x = tu_rnd_vec_nz(&rng, c.n, -4, 4, 1e-3);
        c.r = tu_rnd_vec_nz(&rng, c.n, -1, 1, 1e-3);
        c.y = tu_xmalloc(c.n * sizeof(double));
        double *dx = tu_xmalloc(c.n * sizeof(double));
        for (size_t i = 0; i < c.n; i++)
            dx[i] = c.r[i] * ref_act_alpha_grad(c.x[i], c.act, c.alpha);
        double err = tu_fd_rel_err(act_fd_f, &c, c.x, c.n, dx, FD_FLOOR);
        tu_note_err("fd.act", err);
        CHECK(err < FD_TOL, "%s alpha %g: fd rel err %.3g", act_type(c.act), c.alpha, err);
        /* gradient from the output (what the kernels of leaky_relu and elu do) */
        if (c.act != NN_ACT_GELU)
            for (size_t i = 0; i < c.n; i++) {
                double yv = ref_act_alpha(c.x[i], c.act, c.alpha);
                double gy = yv > 0 ? 1 : c.act == NN_ACT_ELU ? yv + c.alpha : c.alpha;
                CHECK(fabs(gy - ref_act_alpha_grad(c.x[i], c.act, c.alpha)) < 1e-12, "%s: grad from y at x=%g",
                      act_type(c.act), c.x[i]);
            }
        free(c.x), free(c.r), free(c.y), free(dx);
    }
    return 0;
}

/* The standalone layers through the generic harness (harness.h); ctx is the acase. */
typedef struct acase {
    int act;
    double alpha; /* < 0: default (not written into the JSON) */
} acase;

static double alpha_of(const acase *a) { return a->alpha >= 0 ? a->alpha : a->act == NN_ACT_ELU ? 1.0 : 0.01; }

static void act_fwd(const tu_layer_case *c, const double *x, double *const *p, double *y, size_t n, size_t in,
                    size_t out)
{
    const acase *a = c->ctx;
    for (size_t i = 0; i < n * in; i++)
        y[i] = ref_act_alpha(x[i], a->act, alpha_of(a));
}

static void act_bwd(const tu_layer_case *c, const double *x, double *const *p, const double *dy, double *dx,
                    double *const *dp, size_t n, size_t in, size_t out)
{
    const acase *a = c->ctx;
    for (size_t i = 0; i < n * in; i++)
        dx[i] = dy[i] * ref_act_alpha_grad(x[i], a->act, alpha_of(a));
}

TEST(act_layers)
{
    static const acase lr = {NN_ACT_LEAKY_RELU, -1}, lr2 = {NN_ACT_LEAKY_RELU, 0.2}, lr0 = {NN_ACT_LEAKY_RELU, 0},
                       el = {NN_ACT_ELU, -1}, el5 = {NN_ACT_ELU, 0.5}, el25 = {NN_ACT_ELU, 2.5}, ge = {NN_ACT_GELU, -1};
    const tu_layer_case cs[] = {
        {"{\"type\":\"leaky_relu\"}", 3, {3, 5, 7}, 6, 4, act_fwd, act_bwd, &lr, -4, 4},
        {"{\"type\":\"leaky_relu\",\"alpha\":0.2}", 1, {13}, 17, 11, act_fwd, act_bwd, &lr2, -4, 4},
        {"{\"type\":\"leaky_relu\",\"alpha\":0}", 1, {13}, 3, 3, act_fwd, act_bwd, &lr0, -4, 4},
        {"{\"type\":\"elu\"}", 3, {3, 5, 7}, 5, 2, act_fwd, act_bwd, &el, -4, 4},
        {"{\"type\":\"elu\",\"alpha\":0.5}", 1, {13}, 4, 1, act_fwd, act_bwd, &el5, -4, 4},
        {"{\"type\":\"elu\",\"alpha\":2.5}", 2, {5, 3}, 7, 6, act_fwd, act_bwd, &el25, -4, 4},
        {"{\"type\":\"gelu\"}", 3, {3, 5, 7}, 6, 5, act_fwd, act_bwd, &ge, -4, 4},
        {"{\"type\":\"gelu\"}", 1, {13}, 17, 11, act_fwd, act_bwd, &ge, -4, 4},
    };
    return tu_layer_check_all(cs, sizeof cs / sizeof *cs);
}

/* leaky_relu and elu fused into dense (default alpha): the shared
 * act_apply / act_grad_from_y of cl/common.cl. */
TEST(act_fused_dense)
{
    NEED_DEV(d);
    const int acts[2] = {NN_ACT_LEAKY_RELU, NN_ACT_ELU};
    for (int a = 0; a < 2; a++) {
        const int maxb = 6, n = 4, in = 7, u = 5;
        char json[512];
        snprintf(json, sizeof json,
                 "{\"input\":{\"shape\":[%d]},\"layers\":[" PLACEHOLDER
                 "{\"type\":\"dense\",\"units\":%d,\"activation\":\"%s\"}],\"loss\":\"mse\"}",
                 in, u, act_type(acts[a]));
        tu_net t;
        TRY(tu_net_make(&t, json, maxb, 1, &E));
        nn_layer *L = nn_net_out(&t.net);
        CHECK(L->act == acts[a], "%s: act %d", act_type(acts[a]), L->act);
        double alpha = acts[a] == NN_ACT_ELU ? 1.0 : 0.01;
        ref_rng rng = {(uint64_t)(900 + a)};
        double *W = tu_rnd_vec_nz(&rng, (size_t)in * u, -1, 1, 1e-3), *b = tu_rnd_vec_nz(&rng, (size_t)u, -1, 1, 1e-3);
        double *x = tu_rnd_vec_nz(&rng, (size_t)maxb * in, -1, 1, 1e-3);
        TRY(tu_upload(L->param[0].w, 0, W, (size_t)in * u, &E));
        TRY(tu_upload(L->param[1].w, 0, b, (size_t)u, &E));
        TRY(tu_upload(L->x[0], 0, x, (size_t)maxb * in, &E));
        nn_run run = {d, n, 1, 7, 3};
        TRY(L->type->forward(L, &run, &E));
        double z[30], yr[30], y[30];
        for (int r = 0; r < n; r++)
            for (int j = 0; j < u; j++) {
                double s = b[j];
                for (int i = 0; i < in; i++)
                    s += x[r * in + i] * W[i * u + j];
                z[r * u + j] = s;
                yr[r * u + j] = ref_act_alpha(s, acts[a], alpha);
            }
        TRY(tu_download(L->y, 0, y, (size_t)n * u, &E));
        double ef = tu_rel_err(y, yr, (size_t)n * u);
        tu_note_err("act.fused.forward", ef);
        CHECK(ef < TOL, "dense+%s: forward rel err %.3g", act_type(acts[a]), ef);
        double *dy = tu_rnd_vec_nz(&rng, (size_t)n * u, -1, 1, 1e-3),
               *dx0 = tu_rnd_vec_nz(&rng, (size_t)n * in, -1, 1, 1e-3);
        TRY(tu_upload(L->dy, 0, dy, (size_t)n * u, &E));
        TRY(tu_upload(L->dx[0], 0, dx0, (size_t)n * in, &E));
        TRY(L->type->backward(L, &run, &E));
        double dz[30], dxr[28], dx[28], dbr[5], db[5];
        for (int i = 0; i < n * u; i++)
            dz[i] = dy[i] * ref_act_alpha_grad(z[i], acts[a], alpha);
        for (int j = 0; j < u; j++) {
            dbr[j] = 0;
            for (int r = 0; r < n; r++)
                dbr[j] += dz[r * u + j];
        }
        for (int r = 0; r < n; r++)
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int j = 0; j < u; j++)
                    s += dz[r * u + j] * W[i * u + j];
                dxr[r * in + i] = s;
            }
        TRY(tu_download(L->dx[0], 0, dx, (size_t)n * in, &E));
        for (int i = 0; i < n * in; i++)
            dx[i] -= dx0[i];
        TRY(tu_download(L->param[1].g, 0, db, (size_t)u, &E));
        double ex = tu_rel_err(dx, dxr, (size_t)n * in), eb = tu_rel_err(db, dbr, (size_t)u);
        tu_note_err("act.fused.backward", fmax(ex, eb));
        CHECK(ex < TOL && eb < TOL, "dense+%s: backward rel err dx %.3g db %.3g", act_type(acts[a]), ex, eb);
        free(W), free(b), free(x), free(dy), free(dx0);
        tu_net_free(&t);
    }
    return 0;
}

TEST(act_names_and_errors)
{
    static const char *const names[] = {"none", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu"};
    for (int a = 0; a < 7; a++) {
        CHECK(nn_act_parse(names[a]) == a, "nn_act_parse(%s) = %d", names[a], nn_act_parse(names[a]));
        CHECK(!strcmp(nn_act_name(a), names[a]), "nn_act_name(%d) = %s", a, nn_act_name(a));
    }
    CHECK(NN_ACT_LEAKY_RELU == 4 && NN_ACT_ELU == 5 && NN_ACT_GELU == 6, "codes");
    CHECK(!strcmp(nn_act_name(7), "?") && nn_act_parse("swish") == -1, "unknown names");
    CHECK(nn_layer_find("leaky_relu") && nn_layer_find("elu") && nn_layer_find("gelu") &&
              nn_layer_find("batchnorm") && nn_layer_find("add") && nn_layer_find("concat"),
          "registry");
    static const struct {
        const char *layer, *want;
    } cs[] = {
        {"{\"type\":\"dense\",\"units\":3,\"activation\":\"gelu\"}",
         "layers[0].activation: \"gelu\" cannot be fused into this layer"},
        {"{\"type\":\"dense\",\"units\":3,\"activation\":\"gelu\"}", "use a separate {\"type\": \"gelu\"} layer"},
        {"{\"type\":\"dense\",\"units\":3,\"activation\":\"elux\"}", "did you mean 'elu'"},
        {"{\"type\":\"dense\",\"units\":3,\"activation\":\"swish\"}",
         "(known: relu, sigmoid, tanh, leaky_relu, elu, linear)"},
        {"{\"type\":\"leaky_relu\",\"alpha\":-0.1}", "layers[0].alpha: -0.1 is out of range"},
        {"{\"type\":\"elu\",\"alpha\":\"big\"}", "layers[0].alpha: expected a number"},
        {"{\"type\":\"gelu\",\"alpha\":1}", "unknown key 'alpha'"},
        {"{\"type\":\"leaky_relu\",\"slope\":0.1}", "unknown key 'slope'"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"input\":{\"shape\":[4]},\"layers\":[%s],\"loss\":\"mse\"}", cs[i].layer);
        int r = tu_build_only(json, 0, &E);
        CHECK(r == NN_EDATA && strstr(E.msg, cs[i].want), "%s: got %d '%s', want '%s'", cs[i].layer, r, E.msg,
              cs[i].want);
    }
    /* fused leaky_relu / elu parse; standalone alpha kept */
    CHECK(tu_build_only("{\"input\":{\"shape\":[4]},\"layers\":[{\"type\":\"dense\",\"units\":3,\"activation\":"
                        "\"leaky_relu\"},{\"type\":\"dense\",\"units\":3,\"activation\":\"elu\"},{\"type\":\"gelu\"},"
                        "{\"type\":\"leaky_relu\",\"alpha\":0.2},{\"type\":\"elu\",\"alpha\":0.5}],\"loss\":\"mse\"}",
                        0, &E) == 0,
          "valid net: %s", E.msg);
    return 0;
}
