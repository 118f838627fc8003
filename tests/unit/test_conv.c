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
#include "loss.h"
#include "net.h"
#include "optim.h"
#include "spec.h"
#include "util.h"

#define SENT 12345.0f
#define TOL 1e-4    /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6 /* reference backward vs central differences (double) */

/* ------------------------------------------------------------- plumbing */

static nn_err E;

#define TRY(expr)                                                                          \
    do {                                                                                   \
        memset(&E, 0, sizeof E);                                                           \
        int rc_ = (expr);                                                                  \
        CHECK(rc_ == 0, "%s -> %d: %s", #expr, rc_, E.msg[0] ? E.msg : "(no message)");    \
    } while (0)

#define NEED_DEV(d)                                                        \
    nn_dev *d = nn_test_dev();                                                 \
    CHECK(d, "cannot open an OpenCL device: %s", nn_test_dev_msg())

static void *xmalloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        abort();
    return p;
}

/* splitmix64 */
typedef struct crng {
    uint64_t s;
} crng;

static uint64_t crng_next(crng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double crng_range(crng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(crng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* n values uniform in [lo, hi), rounded to float so that the reference sees
 * exactly what the device sees; never exactly zero. */
static double *rnd_vec(crng *r, size_t n, double lo, double hi)
{
    double *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        do
            v[i] = (float)crng_range(r, lo, hi);
        while (v[i] == 0);
    }
    return v;
}

static int upload(cl_mem m, size_t off, const double *v, size_t n, nn_err *e)
{
    float *f = xmalloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    int r = nn_buf_write(nn_test_dev(), m, off * sizeof(float), n * sizeof(float), f, 1, e);
    free(f);
    return r;
}

static float *read_all(cl_mem m, size_t nf, nn_err *e)
{
    float *f = xmalloc(nf * sizeof *f);
    if (nn_buf_read(nn_test_dev(), m, 0, nf * sizeof(float), f, e)) {
        free(f);
        return NULL;
    }
    return f;
}

/* Float offset of a sub-buffer in its parent. */
static size_t sub_off(cl_mem m)
{
    size_t o = 0;
    clGetMemObjectInfo(m, CL_MEM_OFFSET, sizeof o, &o, NULL);
    return o / sizeof(float);
}

/* max|a - b| / max(floor, max|b|) */
static double rel_err(const double *a, const double *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > md || d != d)
            md = d;
        if (fabs(b[i]) > mb)
            mb = fabs(b[i]);
    }
    return md / (mb > 1e-6 ? mb : 1e-6);
}

/* rel err of (float device values f - base) against ref */
static double rel_err_f(const float *f, const double *base, const double *ref, size_t n)
{
    double *a = xmalloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (double)f[i] - (base ? base[i] : 0.0);
    double r = rel_err(a, ref, n);
    free(a);
    return r;
}

/* First index in [0, nf) outside [off, off+len) where a and b differ; -1 if none. */
static long changed_outside(const float *a, const float *b, size_t nf, size_t off, size_t len)
{
    for (size_t i = 0; i < nf; i++)
        if ((i < off || i >= off + len) && memcmp(&a[i], &b[i], sizeof(float)))
            return (long)i;
    return -1;
}

typedef struct tnet {
    nn_spec spec;
    nn_net net;
} tnet;

static int tnet_make(tnet *t, const char *json, int max_batch, int training, nn_err *e)
{
    memset(t, 0, sizeof *t);
    int r = nn_spec_parse(json, strlen(json), "test.json", &t->spec, e);
    if (!r)
        r = nn_net_build(&t->net, &t->spec, e);
    if (!r && max_batch)
        r = nn_net_alloc(&t->net, nn_test_dev(), max_batch, training, e);
    return r;
}

static void tnet_free(tnet *t)
{
    nn_net_free(&t->net);
    nn_spec_free(&t->spec);
}

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

static const char *act_str(int a)
{
    static const char *const s[] = {"linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu"};
    return a >= 0 && a < 6 ? s[a] : "?";
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
    double *y = xmalloc(no * sizeof *y);
    long *arg = xmalloc(no * sizeof *arg);
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

typedef double (*fd_fn)(void *ctx);

/* rel err of d f / d v[0..n) by central differences against ana. */
static double fd_rel_err(fd_fn f, void *ctx, double *v, size_t n, const double *ana)
{
    const double h = 1e-5;
    double *num = xmalloc(n * sizeof *num);
    for (size_t i = 0; i < n; i++) {
        double s = v[i];
        v[i] = s + h;
        double fp = f(ctx);
        v[i] = s - h;
        double fm = f(ctx);
        v[i] = s;
        num[i] = (fp - fm) / (2 * h);
    }
    double r = rel_err(num, ana, n);
    free(num);
    return r;
}

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
        crng rng = {1234 + ci};
        size_t nx = (size_t)c.n * c.g.C * c.g.H * c.g.W, nw = geo_wsize(&c.g), nb = (size_t)c.g.F;
        size_t ny = (size_t)c.n * c.g.F * c.g.OH * c.g.OW;
        c.x = rnd_vec(&rng, nx, -1, 1);
        c.W = rnd_vec(&rng, nw, -0.5, 0.5);
        c.b = rnd_vec(&rng, nb, -0.5, 0.5);
        c.r = rnd_vec(&rng, ny, -1, 1);
        c.y = xmalloc(ny * sizeof(double));
        double *dx = xmalloc(nx * sizeof(double)), *dW = xmalloc(nw * sizeof(double));
        double *db = xmalloc(nb * sizeof(double));
        conv_fd_f(&c);
        ref_conv_backward(&c.g, c.n, c.x, c.W, c.y, c.r, c.act, dx, dW, db);
        double ex = fd_rel_err(conv_fd_f, &c, c.x, nx, dx), ew = fd_rel_err(conv_fd_f, &c, c.W, nw, dW),
               eb = fd_rel_err(conv_fd_f, &c, c.b, nb, db);
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
            crng rng = {77 + ci};
            size_t nx = (size_t)c.n * c.g.C * c.g.H * c.g.W, ny = (size_t)c.n * c.g.C * c.g.OH * c.g.OW;
            c.x = rnd_vec(&rng, nx, -1, 1); /* distinct values: no ties, no kinks within h */
            c.r = rnd_vec(&rng, ny, -1, 1);
            c.y = xmalloc(ny * sizeof(double));
            double *dx = xmalloc(nx * sizeof(double));
            ref_pool_backward(&c.g, c.n, max, c.x, c.r, dx);
            double ex = fd_rel_err(pool_fd_f, &c, c.x, nx, dx);
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

static int conv_case(const ccase *c)
{
    NEED_DEV(d);
    char desc[256], pad[32], json[1024];
    if (c->same)
        snprintf(pad, sizeof pad, "\"same\"");
    else
        snprintf(pad, sizeof pad, "[%d,%d]", c->ph, c->pw);
    snprintf(desc, sizeof desc,
             "conv C=%d %dx%d F=%d k=%dx%d s=%dx%d pad=%s dil=%dx%d groups=%d bias=%d act=%s n=%d/%d%s", c->C, c->H,
             c->W, c->F, c->kh, c->kw, c->sh, c->sw, pad, c->dh, c->dw, c->G, c->bias, act_str(c->act), c->n, c->maxb,
             c->first ? " first" : "");
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d,%d]},\"layers\":[%s{\"type\":\"conv2d\",\"filters\":%d,"
             "\"kernel\":[%d,%d],\"stride\":[%d,%d],\"padding\":%s,\"dilation\":[%d,%d],\"groups\":%d,"
             "\"use_bias\":%s,\"activation\":\"%s\"}],\"loss\":\"mse\"}",
             c->C, c->H, c->W, c->first ? "" : "{\"type\":\"dropout\",\"rate\":0},", c->F, c->kh, c->kw, c->sh, c->sw,
             pad, c->dh, c->dw, c->G, c->bias ? "true" : "false", act_str(c->act));
    tnet t;
    TRY(tnet_make(&t, json, c->maxb, 1, &E));
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

    crng rng = {(uint64_t)(c->C * 1000003 + c->H * 1009 + c->W * 101 + c->F * 13 + c->kh * 7 + c->G + c->n)};
    double *Wt = rnd_vec(&rng, nw, -1, 1), *b = c->bias ? rnd_vec(&rng, (size_t)c->F, -1, 1) : NULL;
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1);
    double *dx0 = c->first ? NULL : rnd_vec(&rng, nx, -1, 1);

    /* forward: y[0:n] matches; nothing else in the activation arena changes */
    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(upload(L->x[0], 0, x, nx, &E));
    TRY(upload(L->param[0].w, 0, Wt, nw, &E));
    if (b)
        TRY(upload(L->param[1].w, 0, b, (size_t)c->F, &E));
    float *before = read_all(net->arena, na, &E);
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    double *yr = xmalloc(ny * sizeof(double));
    ref_conv_forward(&g, c->n, x, Wt, b, c->act, yr);
    size_t yo = sub_off(L->y);
    double ef = rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu) from %g to %g", desc, bad, yo, ny,
          bad < 0 ? 0.0 : before[bad], bad < 0 ? 0.0 : after[bad]);
    double *ydev = xmalloc(ny * sizeof(double)); /* act' from the device's y, as the layer does */
    for (size_t i = 0; i < ny; i++)
        ydev[i] = after[yo + i];
    free(before), free(after);

    /* backward: dx accumulates, dW/db overwritten, nothing else changes */
    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    TRY(upload(L->dy, 0, dy, ny, &E));
    if (dx0)
        TRY(upload(L->dx[0], 0, dx0, nx, &E));
    float *gbefore = read_all(net->garena, ng, &E);
    TRY(L->type->backward(L, &run, &E));
    float *gafter = read_all(net->garena, ng, &E), *gr = read_all(net->grads, net->nparams, &E);
    CHECK(gbefore && gafter && gr, "%s: %s", desc, E.msg);
    double *dxr = c->first ? NULL : xmalloc(nx * sizeof(double));
    double *dWr = xmalloc(nw * sizeof(double)), *dbr = xmalloc((size_t)c->F * sizeof(double));
    ref_conv_backward(&g, c->n, x, Wt, ydev, dy, c->act, dxr, dWr, c->bias ? dbr : NULL);
    size_t xo = 0, xl = 0;
    if (dxr) {
        xo = sub_off(L->dx[0]);
        xl = nx;
        double ex = rel_err_f(gafter + xo, dx0, dxr, nx);
        CHECK(ex < TOL, "%s: dx (accumulated) rel err %.3g", desc, ex);
    }
    bad = changed_outside(gbefore, gafter, ng, xo, xl);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    size_t wo = sub_off(L->param[0].g);
    double ew = rel_err_f(gr + wo, NULL, dWr, nw);
    CHECK(ew < TOL, "%s: dW rel err %.3g", desc, ew);
    size_t bo = c->bias ? sub_off(L->param[1].g) : 0;
    if (c->bias) {
        double eb = rel_err_f(gr + bo, NULL, dbr, (size_t)c->F);
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
    tnet_free(&t);
    return 0;
}

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
    tnet t;
    TRY(tnet_make(&t, json, c->maxb, 1, &E));
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
    crng rng = {(uint64_t)(c->kind * 7919 + c->C * 1009 + c->H * 101 + c->W * 13 + c->kh + c->n)};
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1), *dx0 = rnd_vec(&rng, nx, -1, 1);
    if (c->ties)
        for (size_t i = 0; i < nx; i++)
            x[i] = floor(x[i] * 1.5) / 2; /* values in {-1, -0.5, 0, 0.5}: many ties */

    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(upload(L->x[0], 0, x, nx, &E));
    float *before = read_all(net->arena, na, &E);
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    double *yr = xmalloc(ny * sizeof(double));
    ref_pool_forward(&g, c->n, c->kind == 1, x, yr, NULL);
    size_t yo = sub_off(L->y);
    double ef = rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu)", desc, bad, yo, ny);
    free(before), free(after);

    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    TRY(upload(L->dy, 0, dy, ny, &E));
    TRY(upload(L->dx[0], 0, dx0, nx, &E));
    float *gbefore = read_all(net->garena, ng, &E);
    TRY(L->type->backward(L, &run, &E));
    float *gafter = read_all(net->garena, ng, &E);
    CHECK(gbefore && gafter, "%s: %s", desc, E.msg);
    double *dxr = xmalloc(nx * sizeof(double));
    ref_pool_backward(&g, c->n, c->kind == 1, x, dy, dxr);
    size_t xo = sub_off(L->dx[0]);
    double ex = rel_err_f(gafter + xo, dx0, dxr, nx);
    CHECK(ex < TOL, "%s: dx (accumulated) rel err %.3g", desc, ex);
    bad = changed_outside(gbefore, gafter, ng, xo, nx);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    free(gbefore), free(gafter), free(dxr), free(yr), free(x), free(dy), free(dx0);
    tnet_free(&t);
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

/* Parses and builds json; expects code 65 and every fragment in the message. */
static int expect_error(const char *json, const char *f1, const char *f2)
{
    tnet t;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = tnet_make(&t, json, 0, 0, &e);
    tnet_free(&t);
    CHECK(r == NN_EDATA, "%s: code %d (expected 65): %s", json, r, e.msg);
    CHECK(strstr(e.msg, f1), "%s: message '%s' lacks '%s'", json, e.msg, f1);
    CHECK(!f2 || strstr(e.msg, f2), "%s: message '%s' lacks '%s'", json, e.msg, f2);
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s\n", e.msg);
    return 0;
}

#define IN(shape) "{\"input\":{\"shape\":" shape "},\"layers\":["
#define END "],\"loss\":\"mse\"}"

TEST(conv_shape_errors)
{
    return expect_error(IN("[1,5,5]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":7}" END,
                        "layers[0].kernel: 7x7 kernel does not fit the 5x5 input (with padding 0)", NULL) ||
           expect_error(IN("[1,9,9]") "{\"type\":\"relu\"},{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
                        "\"dilation\":5}" END,
                        "layers[1].kernel: 3x3 kernel (dilated to 11x11) does not fit the 9x9 input", NULL) ||
           expect_error(IN("[3,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"groups\":2}" END,
                        "layers[0].groups", "3 channels cannot be split into 2 groups") ||
           expect_error(IN("[4,8,8]") "{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,\"groups\":2}" END,
                        "layers[0].groups", "3 filters") ||
           expect_error(IN("[784]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}" END,
                        "layers[0]: conv2d needs a [channels, height, width] input; got [784]", "flatten") ||
           expect_error(IN("[1,28,28]") "{\"type\":\"flatten\"},{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}" END,
                        "layers[1]: conv2d needs a [channels, height, width] input; got [784]", NULL) ||
           expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"full\"}" END,
                        "layers[0].padding", "\"same\"") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":[3,3,3]}" END,
                        "layers[0].kernel", "pair") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"kernel\":3}" END, "layers[0].filters", "missing") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":0}" END, "layers[0].kernel",
                        "out of range") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,\"strides\":2}" END,
                        "unknown key 'strides'", "stride");
}

TEST(pool_shape_errors)
{
    return expect_error(IN("[2,3,3]") "{\"type\":\"maxpool\",\"pool\":4}" END,
                        "layers[0].pool: 4x4 window does not fit the 3x3 input (with padding 0)", NULL) ||
           expect_error(IN("[10]") "{\"type\":\"avgpool\"}" END,
                        "layers[0]: avgpool needs a [channels, height, width] input; got [10]", NULL) ||
           expect_error(IN("[2,4]") "{\"type\":\"global_avgpool\"}" END, "layers[0]: global_avgpool needs", "[2, 4]") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"maxpool\",\"pool\":2,\"padding\":2}" END, "layers[0].padding",
                        "more than half") ||
           expect_error(IN("[1,8,8]") "{\"type\":\"avgpool\",\"pool\":[2,2,2]}" END, "layers[0].pool", "pair");
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
    tnet t;
    TRY(tnet_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    crng rng = {5};
    double *x = xmalloc(N * 64 * sizeof(double));
    int lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = i & 1;
        int pos = (int)(crng_next(&rng) % 8);
        for (int p = 0; p < 64; p++) {
            int h = p / 8, w = p % 8;
            int on = lab[i] ? w == pos : h == pos;
            x[i * 64 + p] = (float)((on ? 1.0 : 0.0) + crng_range(&rng, -0.3, 0.3));
        }
    }
    cl_mem lb, metrics, acc;
    TRY(nn_buf_alloc(d, sizeof lab, "labels", &lb, &E));
    TRY(nn_buf_write(d, lb, 0, sizeof lab, lab, 1, &E));
    TRY(nn_buf_alloc(d, 2 * N * sizeof(float), "metrics", &metrics, &E));
    TRY(nn_buf_alloc(d, 3 * sizeof(float), "acc", &acc, &E));
    TRY(upload(net->x_in, 0, x, N * 64, &E));
    nn_optim o;
    TRY(nn_optim_init(&o, d, &t.spec.opt, net->nparams, &E));
    double first[3] = {0}, last[3] = {0};
    for (int s = 0; s <= STEPS; s++) {
        nn_run run = {d, N, s < STEPS, 9, (uint64_t)s};
        TRY(nn_net_forward(net, &run, &E));
        if (s == 0 || s == STEPS) {
            TRY(nn_loss_run(net, &run, lb, metrics, 0, &E));
            TRY(nn_buf_zero(d, acc, 0, 3 * sizeof(float), &E));
            TRY(nn_metrics_accum(d, metrics, N, acc, &E));
            float h[3];
            TRY(nn_buf_read(d, acc, 0, sizeof h, h, &E));
            for (int k = 0; k < 3; k++)
                (s ? last : first)[k] = h[k];
            if (s == STEPS)
                break;
        }
        TRY(nn_net_zero_grads(net, &E));
        TRY(nn_loss_run(net, &run, lb, metrics, 1, &E));
        TRY(nn_net_backward(net, &run, &E));
        TRY(nn_optim_step(&o, d, net->params, net->grads, t.spec.opt.lr, &E));
    }
    double l0 = first[0] / first[2], l1 = last[0] / last[2], a1 = last[1] / last[2];
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  conv_train_smoke: loss %.4f -> %.4f, accuracy %.3f after %d steps\n", l0, l1, a1, STEPS);
    CHECK(isfinite(l1) && l1 < l0 / 2, "loss %.4f -> %.4f: not halved", l0, l1);
    CHECK(a1 >= 0.9, "accuracy %.3f after training", a1);
    nn_optim_free(&o);
    nn_buf_free(&lb);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    free(x);
    tnet_free(&t);
    return 0;
}

/* ------------------------------------------------------------ timing */

static int time_layer(const char *desc, const char *json, int li, int batch)
{
    NEED_DEV(d);
    tnet t;
    TRY(tnet_make(&t, json, batch, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 1, &E));
    nn_layer *L = &net->L[li];
    crng rng = {3};
    size_t nx = (size_t)batch * nn_shape_size(&L->in_shape[0]), ny = (size_t)batch * nn_shape_size(&L->out_shape);
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1);
    TRY(upload(L->x[0], 0, x, nx, &E));
    TRY(upload(L->dy, 0, dy, ny, &E));
    nn_run run = {d, batch, 1, 1, 1};
    enum { WARM = 3, REPS = 10 };
    double tf = 0, tb = 0;
    for (int i = 0; i < WARM + REPS; i++) {
        double t0 = nn_now();
        TRY(L->type->forward(L, &run, &E));
        TRY(nn_dev_finish(d, &E));
        double t1 = nn_now();
        TRY(L->type->backward(L, &run, &E));
        TRY(nn_dev_finish(d, &E));
        double t2 = nn_now();
        if (i >= WARM) {
            tf += t1 - t0;
            tb += t2 - t1;
        }
    }
    double fl = L->flops * batch;
    fprintf(stderr, "  %s: forward %.2f ms, backward %.2f ms, total %.2f ms (%.1f GFLOP/s forward)\n", desc,
            tf / REPS * 1e3, tb / REPS * 1e3, (tf + tb) / REPS * 1e3, fl / (tf / REPS) * 1e-9);
    free(x), free(dy);
    tnet_free(&t);
    return 0;
}

/* LeNet-shaped convolutions and pooling; runs only with NN_TEST_BENCH=1. */
TEST(conv_timing)
{
    if (!getenv("NN_TEST_BENCH"))
        return 0;
    return time_layer("conv 32 5x5 on [1,28,28] batch 64 (first layer, no dx)",
                     "{\"input\":{\"shape\":[1,28,28]},\"layers\":[{\"type\":\"conv2d\",\"filters\":32,\"kernel\":5,"
                     "\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                     0, 64) ||
           time_layer("conv 32 5x5 on [1,28,28] batch 64 (with dx)",
                     "{\"input\":{\"shape\":[1,28,28]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                     "{\"type\":\"conv2d\",\"filters\":32,\"kernel\":5,\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                     1, 64) ||
           time_layer("conv 64 5x5 on [32,12,12] batch 64 (with dx)",
                     "{\"input\":{\"shape\":[32,12,12]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                     "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":5,\"activation\":\"relu\"}],\"loss\":\"mse\"}",
                     1, 64) ||
           time_layer("maxpool 2 on [32,24,24] batch 64",
                     "{\"input\":{\"shape\":[32,24,24]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                     "{\"type\":\"maxpool\"}],\"loss\":\"mse\"}",
                     1, 64) ||
           time_layer("avgpool 2 on [32,24,24] batch 64",
                     "{\"input\":{\"shape\":[32,24,24]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                     "{\"type\":\"avgpool\"}],\"loss\":\"mse\"}",
                     1, 64);
}
