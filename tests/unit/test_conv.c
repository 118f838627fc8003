/* test_conv.c - conv2d, maxpool, avgpool and global_avgpool against plain-C
 * double-precision references (direct loops, below), through the real code
 * paths (nn_spec_parse -> nn_net_build -> nn_net_alloc -> the layer's
 * forward/backward).
 *
 *   conv_ref_fd / pool_ref_fd   finite differences of the references
 *   conv_forward_backward ...   device vs reference: odd shapes, strides,
 *                               padding (explicit, "same" incl. asymmetric),
 *                               dilation, groups (2, depthwise), partial
 *                               batches, sentinels, dx accumulation
 *   conv_shape_errors, pool_shape_errors   code 65 and the message
 *   conv_train_smoke            conv -> maxpool -> dense -> softmax learns
 *   conv_timing                 LeNet-shaped timings (NN_TEST_BENCH=1 only)
 *
 * The layer under test usually sits after a placeholder (dropout of rate 0)
 * whose output buffer the test writes directly: that gives it a real x and a
 * real dx (the network input has no gradient buffer). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "net.h"
#include "spec.h"
#include "tutil.h"

#define TOL 1e-4      /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-6 /* the smallest largest |gradient| those differences are relative to */

static nn_err E;

/* ------------------------------------------------------------ reference */

static double act_f(double v, int act)
{
    switch (act) {
    case NN_ACT_RELU: return v > 0 ? v : 0;
    case NN_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case NN_ACT_TANH: return tanh(v);
    case 4: return v > 0 ? v : 0.01 * v;  /* leaky_relu */
    case 5: return v > 0 ? v : expm1(v); /* elu */
    default: return v;
    }
}

static double act_g(double y, int act)
{
    switch (act) {
    case NN_ACT_RELU: return y > 0 ? 1 : 0;
    case NN_ACT_SIGMOID: return y * (1 - y);
    case NN_ACT_TANH: return 1 - y * y;
    case 4: return y > 0 ? 1 : 0.01;
    case 5: return y > 0 ? 1 : y + 1;
    default: return 1;
    }
}

/* Convolution geometry; pb = padding before (top/left). */
typedef struct cgeo {
    int C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, G, OH, OW;
} cgeo;

/* pads: same = 1 for "same" (TF/PyTorch split: total/2 before), else
 * explicit symmetric ph/pw. */
static void geo_fill(cgeo *g, int same, int ph, int pw)
{
    int in[2] = {g->H, g->W}, k[2] = {g->kh, g->kw}, s[2] = {g->sh, g->sw}, d[2] = {g->dh, g->dw}, p[2] = {ph, pw};
    int out[2], pb[2];
    for (int a = 0; a < 2; a++) {
        int ek = (k[a] - 1) * d[a] + 1;
        if (same) {
            out[a] = (in[a] + s[a] - 1) / s[a];
            int tot = (out[a] - 1) * s[a] + ek - in[a];
            pb[a] = (tot > 0 ? tot : 0) / 2;
        } else {
            out[a] = (in[a] + 2 * p[a] - ek) / s[a] + 1;
            pb[a] = p[a];
        }
    }
    g->OH = out[0];
    g->OW = out[1];
    g->ph = pb[0];
    g->pw = pb[1];
}

static size_t geo_wsize(const cgeo *g) { return (size_t)g->F * (g->C / g->G) * g->kh * g->kw; }

/* y[n, F, OH, OW] = act(conv(x, W) + b); b may be NULL. */
static void ref_conv_forward(const cgeo *g, int n, const double *x, const double *Wt, const double *b, int act,
                             double *y)
{
    int Cg = g->C / g->G, Fg = g->F / g->G;
    for (int s = 0; s < n; s++)
        for (int f = 0; f < g->F; f++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    double acc = b ? b[f] : 0;
                    int grp = f / Fg;
                    for (int cg = 0; cg < Cg; cg++) {
                        int c = grp * Cg + cg;
                        for (int ki = 0; ki < g->kh; ki++) {
                            int h = oh * g->sh - g->ph + ki * g->dh;
                            if (h < 0 || h >= g->H)
                                continue;
                            for (int kj = 0; kj < g->kw; kj++) {
                                int w = ow * g->sw - g->pw + kj * g->dw;
                                if (w < 0 || w >= g->W)
                                    continue;
                                acc += Wt[((f * Cg + cg) * g->kh + ki) * g->kw + kj] *
                                       x[((s * g->C + c) * g->H + h) * g->W + w];
                            }
                        }
                    }
                    y[((s * g->F + f) * g->OH + oh) * g->OW + ow] = act_f(acc, act);
                }
}

/* Given y (for act') and dy: dx += (when dx), dW =, db = (when db). */
static void ref_conv_backward(const cgeo *g, int n, const double *x, const double *Wt, const double *y,
                              const double *dy, int act, double *dx, double *dW, double *db)
{
    int Cg = g->C / g->G, Fg = g->F / g->G;
    memset(dW, 0, geo_wsize(g) * sizeof *dW);
    if (db)
        memset(db, 0, (size_t)g->F * sizeof *db);
    for (int s = 0; s < n; s++)
        for (int f = 0; f < g->F; f++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    size_t yi = (((size_t)s * g->F + f) * g->OH + oh) * g->OW + ow;
                    double gp = dy[yi] * act_g(y[yi], act);
                    if (db)
                        db[f] += gp;
                    int grp = f / Fg;
                    for (int cg = 0; cg < Cg; cg++) {
                        int c = grp * Cg + cg;
                        for (int ki = 0; ki < g->kh; ki++) {
                            int h = oh * g->sh - g->ph + ki * g->dh;
                            if (h < 0 || h >= g->H)
                                continue;
                            for (int kj = 0; kj < g->kw; kj++) {
                                int w = ow * g->sw - g->pw + kj * g->dw;
                                if (w < 0 || w >= g->W)
                                    continue;
                                size_t wi = (((size_t)f * Cg + cg) * g->kh + ki) * g->kw + kj;
                                size_t xi = (((size_t)s * g->C + c) * g->H + h) * g->W + w;
                                dW[wi] += gp * x[xi];
                                if (dx)
                                    dx[xi] += gp * Wt[wi];
                            }
                        }
                    }
                }
}

/* Pooling geometry: explicit symmetric padding. */
typedef struct pgeo {
    int C, H, W, kh, kw, sh, sw, ph, pw, OH, OW;
} pgeo;

static void pgeo_fill(pgeo *g)
{
    g->OH = (g->H + 2 * g->ph - g->kh) / g->sh + 1;
    g->OW = (g->W + 2 * g->pw - g->kw) / g->sw + 1;
}

/* max (first maximum in row-major order wins; padding never) or mean over
 * the window's input elements (padding excluded from the count). arg: the
 * winning index per output (max only). */
static void ref_pool_forward(const pgeo *g, int n, int max, const double *x, double *y, long *arg)
{
    for (int pl = 0; pl < n * g->C; pl++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                double m = -INFINITY, s = 0;
                long best = -1;
                int cnt = 0;
                for (int a = 0; a < g->kh; a++) {
                    int h = oh * g->sh - g->ph + a;
                    if (h < 0 || h >= g->H)
                        continue;
                    for (int b = 0; b < g->kw; b++) {
                        int w = ow * g->sw - g->pw + b;
                        if (w < 0 || w >= g->W)
                            continue;
                        long xi = ((long)pl * g->H + h) * g->W + w;
                        if (best < 0 || x[xi] > m) {
                            m = x[xi];
                            best = xi;
                        }
                        s += x[xi];
                        cnt++;
                    }
                }
                long o = ((long)pl * g->OH + oh) * g->OW + ow;
                y[o] = max ? (best < 0 ? 0 : m) : (cnt ? s / cnt : 0);
                if (arg)
                    arg[o] = best;
            }
}

/* dx += gradient of the pooling for dy. */
static void ref_pool_backward(const pgeo *g, int n, int max, const double *x, const double *dy, double *dx)
{
    size_t no = (size_t)n * g->C * g->OH * g->OW;
    double *y = tu_xmalloc(no * sizeof *y);
    long *arg = tu_xmalloc(no * sizeof *arg);
    ref_pool_forward(g, n, max, x, y, arg);
    for (int pl = 0; pl < n * g->C; pl++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                long o = ((long)pl * g->OH + oh) * g->OW + ow;
                if (max) {
                    if (arg[o] >= 0)
                        dx[arg[o]] += dy[o];
                    continue;
                }
                int ha = oh * g->sh - g->ph, wa = ow * g->sw - g->pw;
                int h0 = ha < 0 ? 0 : ha, h1 = ha + g->kh < g->H ? ha + g->kh : g->H;
                int w0 = wa < 0 ? 0 : wa, w1 = wa + g->kw < g->W ? wa + g->kw : g->W;
                int cnt = (h1 - h0) * (w1 - w0);
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dx[((long)pl * g->H + h) * g->W + w] += dy[o] / cnt;
            }
    free(y);
    free(arg);
}

/* ------------------------------------------------- finite differences */

typedef struct conv_fd {
    cgeo g;
    int n, act;
    double *x, *W, *b, *r, *y;
} conv_fd;

static double conv_fd_f(void *ctx)
{
    conv_fd *c = ctx;
    ref_conv_forward(&c->g, c->n, c->x, c->W, c->b, c->act, c->y);
    double s = 0;
    size_t ny = (size_t)c->n * c->g.F * c->g.OH * c->g.OW;
    for (size_t i = 0; i < ny; i++)
        s += c->r[i] * c->y[i];
    return s;
}

TEST(conv_ref_fd)
{
    /* C H W F kh kw sh sw ph pw dh dw G; same; act */
    static const struct {
        cgeo g;
        int same, act;
    } cases[] = {
        {{3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 0, NN_ACT_TANH},
        {{4, 7, 5, 6, 3, 2, 2, 1, 1, 0, 2, 1, 2, 0, 0}, 0, NN_ACT_SIGMOID},
        {{3, 6, 7, 3, 3, 3, 2, 2, 0, 0, 1, 2, 3, 0, 0}, 1, NN_ACT_NONE},
        {{2, 5, 5, 2, 2, 4, 1, 1, 0, 0, 1, 1, 1, 0, 0}, 1, NN_ACT_TANH}, /* asymmetric "same" */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        conv_fd c;
        memset(&c, 0, sizeof c);
        c.g = cases[ci].g;
        geo_fill(&c.g, cases[ci].same, c.g.ph, c.g.pw);
        c.n = 2;
        c.act = cases[ci].act;
        ref_rng rng = {1234 + ci};
        size_t nx = (size_t)c.n * c.g.C * c.g.H * c.g.W, nw = geo_wsize(&c.g), nb = (size_t)c.g.F;
        size_t ny = (size_t)c.n * c.g.F * c.g.OH * c.g.OW;
        c.x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0);
        c.W = tu_rnd_vec_nz(&rng, nw, -0.5, 0.5, 0);
        c.b = tu_rnd_vec_nz(&rng, nb, -0.5, 0.5, 0);
        c.r = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
        c.y = tu_xmalloc(ny * sizeof(double));
        double *dx = tu_xmalloc(nx * sizeof(double)), *dW = tu_xmalloc(nw * sizeof(double));
        double *db = tu_xmalloc(nb * sizeof(double));
        conv_fd_f(&c);
        ref_conv_backward(&c.g, c.n, c.x, c.W, c.y, c.r, c.act, dx, dW, db);
        double ex = tu_fd_rel_err(conv_fd_f, &c, c.x, nx, dx, FD_FLOOR),
               ew = tu_fd_rel_err(conv_fd_f, &c, c.W, nw, dW, FD_FLOOR),
               eb = tu_fd_rel_err(conv_fd_f, &c, c.b, nb, db, FD_FLOOR);
        CHECK(ex < FD_TOL && ew < FD_TOL && eb < FD_TOL, "case %zu: fd rel err dx %.3g dW %.3g db %.3g", ci, ex, ew,
              eb);
        free(c.x), free(c.W), free(c.b), free(c.r), free(c.y), free(dx), free(dW), free(db);
    }
    return 0;
}

typedef struct pool_fd {
    pgeo g;
    int n, max;
    double *x, *r, *y;
} pool_fd;

static double pool_fd_f(void *ctx)
{
    pool_fd *c = ctx;
    ref_pool_forward(&c->g, c->n, c->max, c->x, c->y, NULL);
    double s = 0;
    size_t ny = (size_t)c->n * c->g.C * c->g.OH * c->g.OW;
    for (size_t i = 0; i < ny; i++)
        s += c->r[i] * c->y[i];
    return s;
}

TEST(pool_ref_fd)
{
    static const pgeo cases[] = {
        {3, 5, 7, 2, 2, 2, 2, 0, 0, 0, 0}, {2, 7, 5, 3, 3, 1, 1, 1, 1, 0, 0},
        {1, 9, 6, 3, 2, 2, 1, 1, 0, 0, 0}, {2, 5, 5, 3, 3, 2, 2, 1, 1, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int max = 0; max < 2; max++) {
            pool_fd c;
            c.g = cases[ci];
            pgeo_fill(&c.g);
            c.n = 2;
            c.max = max;
            ref_rng rng = {77 + ci};
            size_t nx = (size_t)c.n * c.g.C * c.g.H * c.g.W, ny = (size_t)c.n * c.g.C * c.g.OH * c.g.OW;
            c.x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0); /* distinct values: no ties, no kinks within h */
            c.r = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
            c.y = tu_xmalloc(ny * sizeof(double));
            double *dx = tu_xmalloc(nx * sizeof(double));
            ref_pool_backward(&c.g, c.n, max, c.x, c.r, dx);
            double ex = tu_fd_rel_err(pool_fd_f, &c, c.x, nx, dx, FD_FLOOR);
            CHECK(ex < FD_TOL, "case %zu %s: fd rel err dx %.3g", ci, max ? "max" : "avg", ex);
            free(c.x), free(c.r), free(c.y), free(dx);
        }
    return 0;
}

/* --------------------------------------------------------- device: conv */

typedef struct ccase {
    int C, H, W, F, kh, kw, sh, sw;
    int same, ph, pw; /* same: "same"; else explicit [ph, pw] */
    int dh, dw, G, bias, act, n, maxb, first;
} ccase;

/* One case, run as training does (train 1) or as inference does (train 0):
 * forward and backward must agree with the reference either way. */
static int conv_case_mode(const ccase *c, int train)
{
    NEED_DEV(d);
    char desc[256], pad[32], json[1024];
    if (c->same)
        snprintf(pad, sizeof pad, "\"same\"");
    else
        snprintf(pad, sizeof pad, "[%d,%d]", c->ph, c->pw);
    snprintf(desc, sizeof desc,
             "conv C=%d %dx%d F=%d k=%dx%d s=%dx%d pad=%s dil=%dx%d groups=%d bias=%d act=%s n=%d/%d%s%s", c->C,
             c->H, c->W, c->F, c->kh, c->kw, c->sh, c->sw, pad, c->dh, c->dw, c->G, c->bias, tu_act_str(c->act), c->n,
             c->maxb, c->first ? " first" : "", train ? "" : " (inference mode)");
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d,%d]},\"layers\":[%s{\"type\":\"conv2d\",\"filters\":%d,"
             "\"kernel\":[%d,%d],\"stride\":[%d,%d],\"padding\":%s,\"dilation\":[%d,%d],\"groups\":%d,"
             "\"use_bias\":%s,\"activation\":\"%s\"}],\"loss\":\"mse\"}",
             c->C, c->H, c->W, c->first ? "" : "{\"type\":\"dropout\",\"rate\":0},", c->F, c->kh, c->kw, c->sh, c->sw,
             pad, c->dh, c->dw, c->G, c->bias ? "true" : "false", tu_act_str(c->act));
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = &net->L[c->first ? 0 : 1];
    cgeo g = {c->C, c->H, c->W, c->F, c->kh, c->kw, c->sh, c->sw, 0, 0, c->dh, c->dw, c->G, 0, 0};
    geo_fill(&g, c->same, c->ph, c->pw);
    CHECK(L->out_shape.nd == 3 && L->out_shape.d[0] == c->F && L->out_shape.d[1] == g.OH && L->out_shape.d[2] == g.OW,
          "%s: output shape [%d, %d, %d], expected [%d, %d, %d]", desc, L->out_shape.d[0], L->out_shape.d[1],
          L->out_shape.d[2], c->F, g.OH, g.OW);
    size_t insz = (size_t)c->C * c->H * c->W, outsz = (size_t)c->F * g.OH * g.OW, nw = geo_wsize(&g);
    size_t nx = (size_t)c->n * insz, ny = (size_t)c->n * outsz;
    CHECK(L->nparam == (c->bias ? 2 : 1) && L->param[0].n == nw, "%s: %d params, weight %zu floats (expected %zu)",
          desc, L->nparam, L->param[0].n, nw);
    CHECK(fabs(L->flops - 2.0 * g.OH * g.OW * c->F * (c->C / c->G) * c->kh * c->kw) < 0.5, "%s: flops %g", desc,
          L->flops);

    ref_rng rng = {(uint64_t)(c->C * 1000003 + c->H * 1009 + c->W * 101 + c->F * 13 + c->kh * 7 + c->G + c->n)};
    double *Wt = tu_rnd_vec_nz(&rng, nw, -1, 1, 0), *b = c->bias ? tu_rnd_vec_nz(&rng, (size_t)c->F, -1, 1, 0) : NULL;
    double *x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0), *dy = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
    double *dx0 = c->first ? NULL : tu_rnd_vec_nz(&rng, nx, -1, 1, 0);

    /* forward: y[0:n] matches; nothing else in the activation arena changes */
    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(tu_upload(L->x[0], 0, x, nx, &E));
    TRY(tu_upload(L->param[0].w, 0, Wt, nw, &E));
    if (b)
        TRY(tu_upload(L->param[1].w, 0, b, (size_t)c->F, &E));
    float *before = tu_read_all(net->arena, na, &E);
    nn_run run = {d, c->n, train, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = tu_read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    double *yr = tu_xmalloc(ny * sizeof(double));
    ref_conv_forward(&g, c->n, x, Wt, b, c->act, yr);
    size_t yo = tu_sub_off(L->y);
    double ef = tu_rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu) from %g to %g", desc, bad, yo, ny,
          bad < 0 ? 0.0 : before[bad], bad < 0 ? 0.0 : after[bad]);
    double *ydev = tu_xmalloc(ny * sizeof(double)); /* act' from the device's y, as the layer does */
    for (size_t i = 0; i < ny; i++)
        ydev[i] = after[yo + i];
    free(before), free(after);

    /* backward: dx accumulates, dW/db overwritten, nothing else changes */
    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    TRY(tu_upload(L->dy, 0, dy, ny, &E));
    if (dx0)
        TRY(tu_upload(L->dx[0], 0, dx0, nx, &E));
    float *gbefore = tu_read_all(net->garena, ng, &E);
    TRY(L->type->backward(L, &run, &E));
    float *gafter = tu_read_all(net->garena, ng, &E), *gr = tu_read_all(net->grads, net->nparams, &E);
    CHECK(gbefore && gafter && gr, "%s: %s", desc, E.msg);
    double *dxr = c->first ? NULL : tu_xmalloc(nx * sizeof(double));
    double *dWr = tu_xmalloc(nw * sizeof(double)), *dbr = tu_xmalloc((size_t)c->F * sizeof(double));
    ref_conv_backward(&g, c->n, x, Wt, ydev, dy, c->act, dxr, dWr, c->bias ? dbr : NULL);
    size_t xo = 0, xl = 0;
    if (dxr) {
        xo = tu_sub_off(L->dx[0]);
        xl = nx;
        double ex = tu_rel_err_f(gafter + xo, dx0, dxr, nx);
        CHECK(ex < TOL, "%s: dx (accumulated) rel err %.3g", desc, ex);
    }
    bad = tu_changed_outside(gbefore, gafter, ng, xo, xl);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    size_t wo = tu_sub_off(L->param[0].g);
    double ew = tu_rel_err_f(gr + wo, NULL, dWr, nw);
    CHECK(ew < TOL, "%s: dW rel err %.3g", desc, ew);
    size_t bo = c->bias ? tu_sub_off(L->param[1].g) : 0;
    if (c->bias) {
        double eb = tu_rel_err_f(gr + bo, NULL, dbr, (size_t)c->F);
        CHECK(eb < TOL, "%s: db rel err %.3g", desc, eb);
    }
    for (size_t i = 0; i < net->nparams; i++) {
        int in_w = i >= wo && i < wo + nw, in_b = c->bias && i >= bo && i < bo + (size_t)c->F;
        CHECK(in_w || in_b || gr[i] == SENT, "%s: backward changed grads[%zu] (outside dW/db)", desc, i);
    }
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s: ok (y %.2g)\n", desc, ef);
    free(gbefore), free(gafter), free(gr), free(dxr), free(dWr), free(dbr), free(ydev), free(yr);
    free(Wt), free(b), free(x), free(dy), free(dx0);
    tu_net_free(&t);
    return 0;
}

static int conv_case(const ccase *c) { return conv_case_mode(c, 1) || conv_case_mode(c, 0); }

/* C H W F kh kw sh sw same ph pw dh dw G bias act n maxb first */
TEST(conv_forward_backward)
{
    static const ccase cases[] = {
        {3, 7, 9, 4, 3, 3, 1, 1, 0, 1, 1, 1, 1, 1, 1, NN_ACT_RELU, 5, 7, 0},
        {1, 5, 7, 2, 5, 5, 1, 1, 0, 0, 0, 1, 1, 1, 1, NN_ACT_TANH, 3, 4, 0},
        {5, 9, 7, 6, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, NN_ACT_NONE, 2, 3, 0},   /* 1x1 */
        {3, 9, 5, 4, 3, 5, 2, 2, 0, 1, 2, 1, 1, 1, 1, NN_ACT_SIGMOID, 3, 5, 0}, /* non-square, stride 2 */
        {3, 7, 9, 5, 3, 3, 2, 2, 0, 1, 1, 1, 1, 1, 0, NN_ACT_RELU, 4, 4, 0},    /* stride 2 pad 1, no bias */
        {5, 5, 9, 3, 1, 3, 1, 2, 0, 0, 1, 1, 1, 1, 1, NN_ACT_NONE, 1, 2, 0},
        {1, 9, 9, 3, 5, 3, 1, 1, 0, 0, 0, 1, 1, 1, 1, 4, 3, 3, 0},             /* leaky_relu */
        {2, 6, 12, 3, 3, 5, 1, 1, 0, 1, 0, 1, 1, 1, 1, NN_ACT_RELU, 3, 4, 0},   /* rows of 8 (one run each),
                                                                                   padded only vertically */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (conv_case(&cases[i]))
            return 1;
    return 0;
}

TEST(conv_same_padding)
{
    static const ccase cases[] = {
        {3, 7, 9, 4, 3, 3, 1, 1, 1, 0, 0, 1, 1, 1, 1, NN_ACT_RELU, 3, 4, 0},    /* symmetric 1 */
        {3, 9, 7, 4, 5, 3, 2, 2, 1, 0, 0, 1, 1, 1, 1, NN_ACT_TANH, 2, 3, 0},    /* stride 2: ceil(in/2) */
        {1, 5, 7, 2, 4, 2, 1, 1, 1, 0, 0, 1, 1, 1, 1, NN_ACT_NONE, 3, 3, 0},    /* even: extra pad after */
        {3, 9, 9, 3, 2, 2, 2, 2, 1, 0, 0, 1, 1, 1, 1, NN_ACT_SIGMOID, 2, 5, 0}, /* 9 -> 5, total pad 1 */
        {5, 7, 5, 5, 3, 3, 1, 1, 1, 0, 0, 2, 2, 5, 1, NN_ACT_RELU, 3, 4, 0},    /* dilated depthwise */
        {2, 6, 21, 3, 3, 3, 1, 1, 1, 0, 0, 1, 1, 1, 1, NN_ACT_RELU, 3, 4, 0},   /* rows wider than 16: shifted planes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (conv_case(&cases[i]))
            return 1;
    return 0;
}

TEST(conv_dilation_groups)
{
    static const ccase cases[] = {
        {3, 9, 7, 4, 3, 3, 1, 1, 0, 0, 0, 2, 2, 1, 1, NN_ACT_TANH, 3, 5, 0},   /* dilation 2 */
        {3, 9, 9, 3, 3, 3, 1, 1, 0, 1, 1, 1, 1, 3, 1, NN_ACT_RELU, 4, 5, 0},   /* depthwise */
        {5, 7, 9, 10, 3, 3, 2, 1, 0, 1, 0, 2, 1, 5, 1, NN_ACT_NONE, 2, 3, 0},  /* depthwise x2, stride/dil pairs */
        {4, 7, 5, 6, 3, 3, 1, 1, 0, 1, 1, 1, 1, 2, 1, NN_ACT_SIGMOID, 3, 4, 0}, /* groups 2 */
        {6, 5, 7, 4, 3, 1, 2, 1, 0, 1, 0, 1, 1, 2, 0, NN_ACT_TANH, 2, 2, 0},   /* groups 2, no bias */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (conv_case(&cases[i]))
            return 1;
    return 0;
}

/* Stride 1, one group, F <= C and rows of at least 8: on CPU devices the
 * input gradient is itself a convolution of the output gradient (conv2d.c,
 * backward_input_implicit), the GEMM gathering from it with the padding
 * (k-1)*dil - pad: 'same' (odd and even kernels), 'valid', explicit
 * padding, dilation, 1x1; elsewhere the dcol path as in the other cases. */
TEST(conv_input_grad_as_conv)
{
    static const ccase cases[] = {
        {4, 7, 9, 4, 3, 3, 1, 1, 1, 0, 0, 1, 1, 1, 1, NN_ACT_RELU, 3, 4, 0},    /* 3x3 'same', F = C */
        {6, 6, 10, 3, 5, 3, 1, 1, 0, 2, 1, 1, 1, 1, 1, NN_ACT_TANH, 2, 3, 0},   /* 5x3, explicit padding */
        {5, 5, 8, 4, 4, 2, 1, 1, 1, 0, 0, 1, 1, 1, 0, NN_ACT_NONE, 3, 3, 0},    /* even kernel: more padding after */
        {4, 9, 12, 3, 3, 3, 1, 1, 0, 0, 0, 2, 2, 1, 1, NN_ACT_SIGMOID, 2, 4, 0}, /* 'valid', dilation 2 */
        {6, 5, 8, 6, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, NN_ACT_NONE, 4, 5, 0},    /* 1x1 */
        {3, 4, 11, 2, 3, 3, 1, 1, 0, 3, 0, 1, 1, 1, 1, NN_ACT_RELU, 2, 2, 0},   /* padding 3 > k-1: a negative one */
        {8, 3, 8, 8, 3, 8, 1, 1, 0, 0, 0, 1, 1, 1, 1, NN_ACT_NONE, 1, 1, 0},    /* F > n*OH*OW: the dcol path */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (conv_case(&cases[i]))
            return 1;
    return 0;
}

/* The first layer: x is the network input and dx is NULL. */
TEST(conv_first_layer)
{
    static const ccase cases[] = {
        {1, 9, 7, 4, 3, 3, 1, 1, 0, 1, 1, 1, 1, 1, 1, NN_ACT_RELU, 3, 5, 1},
        {3, 7, 9, 6, 5, 3, 2, 1, 1, 0, 0, 1, 1, 3, 1, 5, 2, 2, 1}, /* elu, groups 3, same */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (conv_case(&cases[i]))
            return 1;
    return 0;
}

/* --------------------------------------------------------- device: pool */

typedef struct pcase {
    int kind; /* 0 avgpool, 1 maxpool, 2 global_avgpool */
    int C, H, W, kh, kw, sh, sw, ph, pw; /* sh = 0: default stride */
    int n, maxb, ties;
} pcase;

static int pool_case(const pcase *c)
{
    NEED_DEV(d);
    static const char *const kinds[] = {"avgpool", "maxpool", "global_avgpool"};
    char desc[256], json[1024], extra[128] = "";
    pgeo g = {c->C, c->H, c->W, c->kh, c->kw, c->sh ? c->sh : c->kh, c->sh ? c->sw : c->kw, c->ph, c->pw, 0, 0};
    if (c->kind == 2) {
        g.kh = c->H; /* one window covering the plane */
        g.kw = c->W;
        g.OH = g.OW = 1;
        g.sh = g.sw = 1;
        g.ph = g.pw = 0;
    } else {
        pgeo_fill(&g);
        snprintf(extra, sizeof extra, ",\"pool\":[%d,%d],\"padding\":[%d,%d]", c->kh, c->kw, c->ph, c->pw);
        if (c->sh)
            snprintf(extra, sizeof extra, ",\"pool\":[%d,%d],\"stride\":[%d,%d],\"padding\":[%d,%d]", c->kh, c->kw,
                     c->sh, c->sw, c->ph, c->pw);
    }
    snprintf(desc, sizeof desc, "%s C=%d %dx%d pool=%dx%d stride=%dx%d pad=%dx%d n=%d/%d%s", kinds[c->kind], c->C,
             c->H, c->W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, c->n, c->maxb, c->ties ? " ties" : "");
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d,%d]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
             "{\"type\":\"%s\"%s}],\"loss\":\"mse\"}",
             c->C, c->H, c->W, kinds[c->kind], extra);
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = &net->L[1];
    size_t insz = (size_t)c->C * c->H * c->W, outsz = (size_t)c->C * g.OH * g.OW;
    if (c->kind == 2)
        CHECK(L->out_shape.nd == 1 && L->out_shape.d[0] == c->C, "%s: output shape nd %d [%d]", desc,
              L->out_shape.nd, L->out_shape.d[0]);
    else
        CHECK(L->out_shape.nd == 3 && L->out_shape.d[0] == c->C && L->out_shape.d[1] == g.OH &&
                  L->out_shape.d[2] == g.OW,
              "%s: output shape [%d, %d, %d], expected [%d, %d, %d]", desc, L->out_shape.d[0], L->out_shape.d[1],
              L->out_shape.d[2], c->C, g.OH, g.OW);
    size_t nx = (size_t)c->n * insz, ny = (size_t)c->n * outsz;
    ref_rng rng = {(uint64_t)(c->kind * 7919 + c->C * 1009 + c->H * 101 + c->W * 13 + c->kh + c->n)};
    double *x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0), *dy = tu_rnd_vec_nz(&rng, ny, -1, 1, 0),
           *dx0 = tu_rnd_vec_nz(&rng, nx, -1, 1, 0);
    if (c->ties)
        for (size_t i = 0; i < nx; i++)
            x[i] = floor(x[i] * 1.5) / 2; /* values in {-1, -0.5, 0, 0.5}: many ties */

    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(tu_upload(L->x[0], 0, x, nx, &E));
    float *before = tu_read_all(net->arena, na, &E);
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = tu_read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    double *yr = tu_xmalloc(ny * sizeof(double));
    ref_pool_forward(&g, c->n, c->kind == 1, x, yr, NULL);
    size_t yo = tu_sub_off(L->y);
    double ef = tu_rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu)", desc, bad, yo, ny);
    free(before), free(after);

    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    TRY(tu_upload(L->dy, 0, dy, ny, &E));
    TRY(tu_upload(L->dx[0], 0, dx0, nx, &E));
    float *gbefore = tu_read_all(net->garena, ng, &E);
    TRY(L->type->backward(L, &run, &E));
    float *gafter = tu_read_all(net->garena, ng, &E);
    CHECK(gbefore && gafter, "%s: %s", desc, E.msg);
    double *dxr = tu_xmalloc(nx * sizeof(double));
    ref_pool_backward(&g, c->n, c->kind == 1, x, dy, dxr);
    size_t xo = tu_sub_off(L->dx[0]);
    double ex = tu_rel_err_f(gafter + xo, dx0, dxr, nx);
    CHECK(ex < TOL, "%s: dx (accumulated) rel err %.3g", desc, ex);
    bad = tu_changed_outside(gbefore, gafter, ng, xo, nx);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    free(gbefore), free(gafter), free(dxr), free(yr), free(x), free(dy), free(dx0);
    tu_net_free(&t);
    return 0;
}

/* kind C H W kh kw sh sw ph pw n maxb ties */
TEST(pool_max)
{
    static const pcase cases[] = {
        {1, 3, 7, 9, 2, 2, 0, 0, 0, 0, 3, 5, 0},  /* default stride = pool, odd sizes drop the edge */
        {1, 1, 5, 7, 3, 3, 1, 1, 1, 1, 2, 3, 0},  /* overlapping windows, -inf padding */
        {1, 5, 9, 5, 3, 2, 2, 1, 1, 0, 4, 4, 0},  /* non-square window and stride */
        {1, 3, 7, 7, 3, 3, 2, 2, 1, 1, 3, 5, 1},  /* ties: the first maximum wins */
        {1, 2, 8, 6, 2, 2, 0, 0, 0, 0, 5, 6, 1},
        /* wide rows: the four-outputs-at-a-time path (windows inside the
         * row) with its scalar edges, ties and padding */
        {1, 3, 24, 24, 2, 2, 0, 0, 0, 0, 3, 4, 1},  /* LeNet's 2x2/2 */
        {1, 2, 11, 29, 3, 3, 2, 2, 1, 1, 2, 3, 1},  /* overlapping, padded, ties */
        {1, 2, 9, 37, 2, 3, 1, 1, 0, 1, 2, 2, 0},   /* stride 1, odd width */
        {1, 1, 6, 40, 3, 3, 3, 3, 1, 1, 3, 3, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (pool_case(&cases[i]))
            return 1;
    return 0;
}

TEST(pool_avg)
{
    static const pcase cases[] = {
        {0, 3, 7, 9, 2, 2, 0, 0, 0, 0, 3, 5, 0},
        {0, 1, 5, 7, 3, 3, 1, 1, 1, 1, 2, 3, 0}, /* padding excluded from the count */
        {0, 5, 9, 5, 3, 2, 2, 1, 1, 1, 4, 4, 0},
        {0, 3, 7, 7, 3, 3, 2, 2, 1, 1, 1, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (pool_case(&cases[i]))
            return 1;
    return 0;
}

TEST(pool_global_avg)
{
    static const pcase cases[] = {
        {2, 3, 7, 9, 0, 0, 0, 0, 0, 0, 3, 5, 0},
        {2, 5, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 0},
        {2, 1, 5, 7, 0, 0, 0, 0, 0, 0, 1, 4, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (pool_case(&cases[i]))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ errors */

#define IN(shape) "{\"input\":{\"shape\":" shape "},\"layers\":["
#define END "],\"loss\":\"mse\"}"

TEST(conv_shape_errors)
{
    return tu_expect_error(IN("[1,5,5]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":7}" END,
                           "layers[0].kernel: 7x7 kernel does not fit the 5x5 input (with padding 0)", NULL) ||
           tu_expect_error(IN("[1,9,9]") "{\"type\":\"relu\"},{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
                                         "\"dilation\":5}" END,
                           "layers[1].kernel: 3x3 kernel (dilated to 11x11) does not fit the 9x9 input", NULL) ||
           tu_expect_error(IN("[3,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"groups\":2}" END,
                           "layers[0].groups", "3 channels cannot be split into 2 groups") ||
           tu_expect_error(IN("[4,8,8]") "{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,\"groups\":2}" END,
                           "layers[0].groups", "3 filters") ||
           tu_expect_error(IN("[784]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}" END,
                           "layers[0]: conv2d needs a [channels, height, width] input; got [784]", "flatten") ||
           tu_expect_error(IN("[1,28,28]") "{\"type\":\"flatten\"},"
                                           "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}" END,
                           "layers[1]: conv2d needs a [channels, height, width] input; got [784]", NULL) ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"full\"}" END,
                           "layers[0].padding", "\"same\"") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":[3,3,3]}" END,
                           "layers[0].kernel", "pair") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"kernel\":3}" END, "layers[0].filters", "missing") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":0}" END, "layers[0].kernel",
                           "out of range") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,\"strides\":2}" END,
                           "unknown key 'strides'", "stride");
}

TEST(pool_shape_errors)
{
    return tu_expect_error(IN("[2,3,3]") "{\"type\":\"maxpool\",\"pool\":4}" END,
                           "layers[0].pool: 4x4 window does not fit the 3x3 input (with padding 0)", NULL) ||
           tu_expect_error(IN("[10]") "{\"type\":\"avgpool\"}" END,
                           "layers[0]: avgpool needs a [channels, height, width] input; got [10]", NULL) ||
           tu_expect_error(IN("[2,4]") "{\"type\":\"global_avgpool\"}" END, "layers[0]: global_avgpool needs",
                           "[2, 4]") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"maxpool\",\"pool\":2,\"padding\":2}" END, "layers[0].padding",
                           "more than half") ||
           tu_expect_error(IN("[1,8,8]") "{\"type\":\"avgpool\",\"pool\":[2,2,2]}" END, "layers[0].pool", "pair");
}

/* ------------------------------------------------------------ training */

/* conv -> maxpool -> flatten -> dense -> softmax on 8x8 images with a
 * horizontal (class 0) or vertical (class 1) bar in noise. */
TEST(conv_train_smoke)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[1,8,8]},\"layers\":["
                       "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"same\",\"activation\":\"relu\"},"
                       "{\"type\":\"maxpool\",\"pool\":2},{\"type\":\"flatten\"},"
                       "{\"type\":\"dense\",\"units\":2},{\"type\":\"softmax\"}],"
                       "\"loss\":\"cross_entropy\",\"optimizer\":{\"type\":\"adam\",\"lr\":0.01}}";
    enum { N = 64, STEPS = 40 };
    tu_net t;
    TRY(tu_net_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    ref_rng rng = {5};
    double *x = tu_xmalloc(N * 64 * sizeof(double));
    int lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = i & 1;
        int pos = (int)(ref_rng_next(&rng) % 8);
        for (int p = 0; p < 64; p++) {
            int h = p / 8, w = p % 8;
            int on = lab[i] ? w == pos : h == pos;
            x[i * 64 + p] = (float)((on ? 1.0 : 0.0) + ref_rng_range(&rng, -0.3, 0.3));
        }
    }
    double l0, l1, a1;
    TRY(tu_train(d, &t, x, N * 64, lab, N, STEPS, &l0, &l1, &a1, &E));
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  conv_train_smoke: loss %.4f -> %.4f, accuracy %.3f after %d steps\n", l0, l1, a1, STEPS);
    CHECK(isfinite(l1) && l1 < l0 / 2, "loss %.4f -> %.4f: not halved", l0, l1);
    CHECK(a1 >= 0.9, "accuracy %.3f after training", a1);
    free(x);
    tu_net_free(&t);
    return 0;
}

/* ------------------------------------------------------------ timing */

/* LeNet-shaped convolutions and pooling; runs only with NN_TEST_BENCH=1. */
TEST(conv_timing)
{
    if (!getenv("NN_TEST_BENCH"))
        SKIP("timings only with NN_TEST_BENCH=1");
    return tu_time_layer("conv 32 5x5 on [1,28,28] batch 64 (first layer, no dx)",
                         "{\"input\":{\"shape\":[1,28,28]},\"layers\":[{\"type\":\"conv2d\",\"filters\":32,"
                         "\"kernel\":5,\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                         0, 64, 3, 10) ||
           tu_time_layer("conv 32 5x5 on [1,28,28] batch 64 (with dx)",
                         "{\"input\":{\"shape\":[1,28,28]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"conv2d\",\"filters\":32,\"kernel\":5,\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                         1, 64, 3, 10) ||
           tu_time_layer("conv 64 5x5 on [32,12,12] batch 64 (with dx)",
                         "{\"input\":{\"shape\":[32,12,12]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":5,\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                         1, 64, 3, 10) ||
           tu_time_layer("maxpool 2 on [32,24,24] batch 64",
                         "{\"input\":{\"shape\":[32,24,24]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"maxpool\"}],\"loss\":\"mse\"}",
                         1, 64, 3, 10) ||
           tu_time_layer("avgpool 2 on [32,24,24] batch 64",
                         "{\"input\":{\"shape\":[32,24,24]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"avgpool\"}],\"loss\":\"mse\"}",
                         1, 64, 3, 10);
}
