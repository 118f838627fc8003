/* test_rnn.c - lstm and gru against plain-C double-precision references
 * (forward and backpropagation through time, below), through the real code
 * paths (nn_spec_parse -> nn_net_build -> nn_net_alloc -> the layer's
 * forward/backward).
 *
 *   rnn_ref_fd            finite differences of the references (lstm, gru,
 *                         with and without bias)
 *   rnn_lstm_*, rnn_gru_* device vs reference: return_sequences true and
 *                         false, T in {1, 5, 9}, F in {1, 3, 7}, H in
 *                         {1, 4, 13}, partial batches with sentinels, dx
 *                         accumulation, the first layer (dx NULL)
 *   rnn_stacked           lstm(seq) -> lstm / gru -> dense (per time step)
 *                         through nn_net_forward / nn_net_backward
 *   rnn_shape_errors      code 65 and the message
 *   rnn_train_smoke       lstm -> dense -> softmax learns the sign of a
 *                         sequence's sum
 *   rnn_timing            timings (NN_TEST_BENCH=1 only)
 *
 * The layer under test usually sits after a placeholder (dropout of rate 0)
 * whose output buffer the test writes directly: that gives it a real x and
 * a real dx (the network input has no gradient buffer). */
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
#include "ref.h"
#include "spec.h"
#include "util.h"

#define SENT 12345.0f
/* Device (fp32) vs reference, relative to the reference's largest value.
 * Sequences of up to 9 steps with up to 13 units keep the fp32 error of the
 * recurrence (and of the weight gradients, sums over n*T rows) near 1e-6. */
#define TOL 1e-4
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

/* n values uniform in [lo, hi), rounded to float so that the reference sees
 * exactly what the device sees; never exactly zero. */
static double *rnd_vec(ref_rng *r, size_t n, double lo, double hi)
{
    double *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        do
            v[i] = (float)ref_rng_range(r, lo, hi);
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

/* max|a - b| / max(1e-6, max|b|) */
static double rel_err(const double *a, const double *b, size_t n) { return ref_rel_err(a, b, n, 1e-6); }

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

static double max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m)
            m = fabs(v[i]);
    return m;
}

/* ------------------------------------------------------------ reference */

/* One recurrent layer: gru = 0 lstm (K = 4 gates i, f, g, o), 1 gru (K = 3,
 * r, z, n). Weights wih [F, K*H], whh [H, K*H]; lstm: b [K*H]; gru: b (b_ih)
 * and bh (b_hh) [K*H]; NULL = no bias. */
typedef struct rgeo {
    int gru, T, F, H;
} rgeo;

static int geo_k(const rgeo *g) { return g->gru ? 3 : 4; }

/* What the forward keeps for the backward, all [n, T, ...]. */
typedef struct rcache {
    double *h;   /* [n, T, H] h_t */
    double *a;   /* [n, T, K*H] gate activations */
    double *c;   /* [n, T, H] lstm c_t */
    double *hn;  /* [n, T, H] gru h_{t-1} W_hn + b_hn */
} rcache;

static void cache_alloc(rcache *c, const rgeo *g, int n)
{
    size_t th = (size_t)n * g->T * g->H;
    c->h = xmalloc(th * sizeof(double));
    c->a = xmalloc(th * geo_k(g) * sizeof(double));
    c->c = xmalloc(th * sizeof(double));
    c->hn = xmalloc(th * sizeof(double));
}

static void cache_free(rcache *c) { free(c->h), free(c->a), free(c->c), free(c->hn); }

static double sigm(double v) { return 1 / (1 + exp(-v)); }

static void ref_rnn_forward(const rgeo *g, int n, const double *x, const double *wih, const double *whh,
                            const double *b, const double *bh, rcache *c)
{
    int T = g->T, F = g->F, H = g->H, KH = geo_k(g) * H;
    double *px = xmalloc((size_t)KH * sizeof *px), *ph = xmalloc((size_t)KH * sizeof *ph);
    for (int s = 0; s < n; s++)
        for (int t = 0; t < T; t++) {
            const double *xt = x + ((size_t)s * T + t) * F;
            const double *hp = t ? c->h + ((size_t)s * T + t - 1) * H : NULL;
            for (int k = 0; k < KH; k++) {
                double u = b ? b[k] : 0, v = bh ? bh[k] : 0;
                for (int f = 0; f < F; f++)
                    u += xt[f] * wih[(size_t)f * KH + k];
                for (int j = 0; hp && j < H; j++)
                    v += hp[j] * whh[(size_t)j * KH + k];
                px[k] = u;
                ph[k] = v;
            }
            size_t row = (size_t)s * T + t;
            double *a = c->a + row * KH, *h = c->h + row * H;
            for (int j = 0; j < H; j++) {
                double hpj = hp ? hp[j] : 0;
                if (!g->gru) {
                    double i = sigm(px[j] + ph[j]), f = sigm(px[H + j] + ph[H + j]);
                    double gg = tanh(px[2 * H + j] + ph[2 * H + j]), o = sigm(px[3 * H + j] + ph[3 * H + j]);
                    double cp = t ? c->c[(row - 1) * H + j] : 0;
                    double ct = f * cp + i * gg;
                    a[j] = i, a[H + j] = f, a[2 * H + j] = gg, a[3 * H + j] = o;
                    c->c[row * H + j] = ct;
                    h[j] = o * tanh(ct);
                } else {
                    double r = sigm(px[j] + ph[j]), z = sigm(px[H + j] + ph[H + j]);
                    double nv = tanh(px[2 * H + j] + r * ph[2 * H + j]);
                    a[j] = r, a[H + j] = z, a[2 * H + j] = nv;
                    c->hn[row * H + j] = ph[2 * H + j];
                    h[j] = (1 - z) * nv + z * hpj;
                }
            }
        }
    free(px), free(ph);
}

/* BPTT given dh [n, T, H] (the gradient of every h_t from outside): dx +=
 * (when dx), dwih, dwhh =, db, dbh = (when not NULL). */
static void ref_rnn_backward(const rgeo *g, int n, const double *x, const double *wih, const double *whh,
                             const rcache *c, const double *dh_out, double *dx, double *dwih, double *dwhh, double *db,
                             double *dbh)
{
    int T = g->T, F = g->F, H = g->H, KH = geo_k(g) * H;
    memset(dwih, 0, (size_t)F * KH * sizeof *dwih);
    memset(dwhh, 0, (size_t)H * KH * sizeof *dwhh);
    if (db)
        memset(db, 0, (size_t)KH * sizeof *db);
    if (dbh)
        memset(dbh, 0, (size_t)KH * sizeof *dbh);
    double *dhn = xmalloc((size_t)H * sizeof *dhn), *dcn = xmalloc((size_t)H * sizeof *dcn);
    double *gx = xmalloc((size_t)KH * sizeof *gx), *gh = xmalloc((size_t)KH * sizeof *gh);
    for (int s = 0; s < n; s++) {
        memset(dhn, 0, (size_t)H * sizeof *dhn);
        memset(dcn, 0, (size_t)H * sizeof *dcn);
        for (int t = T - 1; t >= 0; t--) {
            size_t row = (size_t)s * T + t;
            const double *a = c->a + row * KH, *hp = t ? c->h + (row - 1) * H : NULL;
            double *carry = xmalloc((size_t)H * sizeof *carry); /* the direct part of dh_{t-1} */
            for (int j = 0; j < H; j++) {
                double dh = dh_out[row * H + j] + dhn[j];
                if (!g->gru) {
                    double i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
                    double ct = c->c[row * H + j], cp = t ? c->c[(row - 1) * H + j] : 0, tc = tanh(ct);
                    double dc = dh * o * (1 - tc * tc) + dcn[j];
                    dcn[j] = dc * f;
                    gx[j] = dc * gg * i * (1 - i);
                    gx[H + j] = dc * cp * f * (1 - f);
                    gx[2 * H + j] = dc * i * (1 - gg * gg);
                    gx[3 * H + j] = dh * tc * o * (1 - o);
                    gh[j] = gx[j], gh[H + j] = gx[H + j], gh[2 * H + j] = gx[2 * H + j], gh[3 * H + j] = gx[3 * H + j];
                    carry[j] = 0;
                } else {
                    double r = a[j], z = a[H + j], nv = a[2 * H + j], hn = c->hn[row * H + j];
                    double hpj = hp ? hp[j] : 0;
                    double dnp = dh * (1 - z) * (1 - nv * nv);
                    double dzp = dh * (hpj - nv) * z * (1 - z);
                    double drp = dnp * hn * r * (1 - r);
                    gx[j] = drp, gx[H + j] = dzp, gx[2 * H + j] = dnp;
                    gh[j] = drp, gh[H + j] = dzp, gh[2 * H + j] = dnp * r;
                    carry[j] = dh * z;
                }
            }
            const double *xt = x + row * F;
            for (int k = 0; k < KH; k++) {
                for (int f = 0; f < F; f++)
                    dwih[(size_t)f * KH + k] += xt[f] * gx[k];
                for (int j = 0; hp && j < H; j++)
                    dwhh[(size_t)j * KH + k] += hp[j] * gh[k];
                if (db)
                    db[k] += gx[k];
                if (dbh)
                    dbh[k] += gh[k];
            }
            if (dx)
                for (int f = 0; f < F; f++) {
                    double sum = 0;
                    for (int k = 0; k < KH; k++)
                        sum += gx[k] * wih[(size_t)f * KH + k];
                    dx[row * F + f] += sum;
                }
            for (int j = 0; j < H; j++) {
                double sum = carry[j];
                for (int k = 0; k < KH; k++)
                    sum += gh[k] * whh[(size_t)j * KH + k];
                dhn[j] = sum;
            }
            free(carry);
        }
    }
    free(dhn), free(dcn), free(gx), free(gh);
}

/* ------------------------------------------------- finite differences */

typedef struct rnn_fd {
    rgeo g;
    int n;
    double *x, *wih, *whh, *b, *bh, *r;
    rcache c;
} rnn_fd;

/* f = sum r . h over every step (covers return_sequences false too: r is
 * any projection of the h's). */
static double rnn_fd_f(rnn_fd *c)
{
    ref_rnn_forward(&c->g, c->n, c->x, c->wih, c->whh, c->b, c->bh, &c->c);
    double s = 0;
    size_t nh = (size_t)c->n * c->g.T * c->g.H;
    for (size_t i = 0; i < nh; i++)
        s += c->r[i] * c->c.h[i];
    return s;
}

/* rel err of d f / d v[0..n) by central differences against ana. */
static double fd_rel_err(rnn_fd *c, double *v, size_t n, const double *ana)
{
    const double h = 1e-5;
    double *num = xmalloc(n * sizeof *num);
    for (size_t i = 0; i < n; i++) {
        double s = v[i];
        v[i] = s + h;
        double fp = rnn_fd_f(c);
        v[i] = s - h;
        double fm = rnn_fd_f(c);
        v[i] = s;
        num[i] = (fp - fm) / (2 * h);
    }
    double r = rel_err(num, ana, n);
    free(num);
    return r;
}

TEST(rnn_ref_fd)
{
    /* gru T F H; bias */
    static const struct {
        rgeo g;
        int bias;
    } cases[] = {
        {{0, 5, 3, 4}, 1}, {{0, 1, 2, 3}, 1}, {{0, 4, 1, 1}, 0},
        {{1, 5, 3, 4}, 1}, {{1, 1, 2, 3}, 1}, {{1, 4, 1, 1}, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        rnn_fd c;
        memset(&c, 0, sizeof c);
        c.g = cases[ci].g;
        c.n = 2;
        ref_rng rng;
        ref_rng_seed(&rng, 4321 + ci);
        int KH = geo_k(&c.g) * c.g.H;
        size_t nx = (size_t)c.n * c.g.T * c.g.F, nh = (size_t)c.n * c.g.T * c.g.H;
        size_t nwi = (size_t)c.g.F * KH, nwh = (size_t)c.g.H * KH;
        c.x = rnd_vec(&rng, nx, -1, 1);
        c.wih = rnd_vec(&rng, nwi, -0.8, 0.8);
        c.whh = rnd_vec(&rng, nwh, -0.8, 0.8);
        c.b = cases[ci].bias ? rnd_vec(&rng, (size_t)KH, -0.5, 0.5) : NULL;
        c.bh = cases[ci].bias && c.g.gru ? rnd_vec(&rng, (size_t)KH, -0.5, 0.5) : NULL;
        c.r = rnd_vec(&rng, nh, -1, 1);
        cache_alloc(&c.c, &c.g, c.n);
        double *dx = xmalloc(nx * sizeof(double)), *dwi = xmalloc(nwi * sizeof(double));
        double *dwh = xmalloc(nwh * sizeof(double)), *db = xmalloc((size_t)KH * sizeof(double));
        double *dbh = xmalloc((size_t)KH * sizeof(double));
        rnn_fd_f(&c);
        ref_rnn_backward(&c.g, c.n, c.x, c.wih, c.whh, &c.c, c.r, dx, dwi, dwh, c.b ? db : NULL, c.bh ? dbh : NULL);
        double ex = fd_rel_err(&c, c.x, nx, dx), ewi = fd_rel_err(&c, c.wih, nwi, dwi);
        double ewh = fd_rel_err(&c, c.whh, nwh, dwh);
        double eb = c.b ? fd_rel_err(&c, c.b, (size_t)KH, db) : 0, ebh = c.bh ? fd_rel_err(&c, c.bh, (size_t)KH, dbh) : 0;
        CHECK(ex < FD_TOL && ewi < FD_TOL && ewh < FD_TOL && eb < FD_TOL && ebh < FD_TOL,
              "case %zu (%s T=%d F=%d H=%d): fd rel err dx %.3g dW_ih %.3g dW_hh %.3g db %.3g db_hh %.3g", ci,
              c.g.gru ? "gru" : "lstm", c.g.T, c.g.F, c.g.H, ex, ewi, ewh, eb, ebh);
        /* the gradients are not trivially zero */
        CHECK(max_abs(dwh, nwh) > 1e-3 || c.g.T == 1, "case %zu: dW_hh is zero", ci);
        free(c.x), free(c.wih), free(c.whh), free(c.b), free(c.bh), free(c.r), free(dx), free(dwi), free(dwh);
        free(db), free(dbh);
        cache_free(&c.c);
    }
    return 0;
}

/* ------------------------------------------------------------ device */

typedef struct rcase {
    int gru, T, F, H, seq, bias, n, maxb, first;
} rcase;

static double g_maxerr[2]; /* largest device error seen: forward, backward */

static int rnn_case(const rcase *c)
{
    NEED_DEV(d);
    const char *tn = c->gru ? "gru" : "lstm";
    char desc[256], json[1024];
    snprintf(desc, sizeof desc, "%s T=%d F=%d H=%d seq=%d bias=%d n=%d/%d%s", tn, c->T, c->F, c->H, c->seq, c->bias,
             c->n, c->maxb, c->first ? " first" : "");
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d]},\"layers\":[%s{\"type\":\"%s\",\"units\":%d,"
             "\"return_sequences\":%s,\"use_bias\":%s}],\"loss\":\"mse\"}",
             c->T, c->F, c->first ? "" : "{\"type\":\"dropout\",\"rate\":0},", tn, c->H, c->seq ? "true" : "false",
             c->bias ? "true" : "false");
    tnet t;
    TRY(tnet_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = &net->L[c->first ? 0 : 1];
    rgeo g = {c->gru, c->T, c->F, c->H};
    int K = geo_k(&g), KH = K * c->H, T = c->T, H = c->H, F = c->F;
    if (c->seq)
        CHECK(L->out_shape.nd == 2 && L->out_shape.d[0] == T && L->out_shape.d[1] == H,
              "%s: output shape nd %d [%d, %d]", desc, L->out_shape.nd, L->out_shape.d[0], L->out_shape.d[1]);
    else
        CHECK(L->out_shape.nd == 1 && L->out_shape.d[0] == H, "%s: output shape nd %d [%d]", desc, L->out_shape.nd,
              L->out_shape.d[0]);
    int np = c->bias ? (c->gru ? 4 : 3) : 2;
    size_t nwi = (size_t)F * KH, nwh = (size_t)H * KH;
    CHECK(L->nparam == np && L->param[0].n == nwi && L->param[1].n == nwh &&
              (!c->bias || (L->param[2].n == (size_t)KH && (!c->gru || L->param[3].n == (size_t)KH))),
          "%s: %d params, weights %zu + %zu floats", desc, L->nparam, L->param[0].n, L->param[1].n);
    CHECK(!strcmp(L->param[0].name, "weight_ih") && !strcmp(L->param[1].name, "weight_hh") &&
              (!c->bias || !strcmp(L->param[2].name, c->gru ? "bias_ih" : "bias")) &&
              (!c->bias || !c->gru || !strcmp(L->param[3].name, "bias_hh")),
          "%s: parameter names %s, %s", desc, L->param[0].name, L->param[1].name);
    double fl = 2.0 * T * F * KH + 2.0 * (T - 1) * H * KH;
    CHECK(fabs(L->flops - fl) < 0.5, "%s: flops %g, expected %g", desc, L->flops, fl);

    ref_rng rng;
    ref_rng_seed(&rng, (unsigned long long)(c->gru * 7919 + T * 1009 + F * 101 + H * 13 + c->seq * 3 + c->n));
    size_t nx = (size_t)c->n * T * F, nh = (size_t)c->n * T * H, outsz = c->seq ? (size_t)T * H : (size_t)H;
    size_t ny = (size_t)c->n * outsz;
    double *wih = rnd_vec(&rng, nwi, -0.7, 0.7), *whh = rnd_vec(&rng, nwh, -0.7, 0.7);
    double *b = c->bias ? rnd_vec(&rng, (size_t)KH, -0.5, 0.5) : NULL;
    double *bh = c->bias && c->gru ? rnd_vec(&rng, (size_t)KH, -0.5, 0.5) : NULL;
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1);
    double *dx0 = c->first ? NULL : rnd_vec(&rng, nx, -1, 1);

    /* forward: y[0:n] matches; nothing else in the activation arena changes */
    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(upload(L->x[0], 0, x, nx, &E));
    TRY(upload(L->param[0].w, 0, wih, nwi, &E));
    TRY(upload(L->param[1].w, 0, whh, nwh, &E));
    if (b)
        TRY(upload(L->param[2].w, 0, b, (size_t)KH, &E));
    if (bh)
        TRY(upload(L->param[3].w, 0, bh, (size_t)KH, &E));
    float *before = read_all(net->arena, na, &E);
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    rcache rc;
    cache_alloc(&rc, &g, c->n);
    ref_rnn_forward(&g, c->n, x, wih, whh, b, bh, &rc);
    double *yr = xmalloc(ny * sizeof(double));
    for (int s = 0; s < c->n; s++)
        for (size_t k = 0; k < outsz; k++)
            yr[s * outsz + k] = c->seq ? rc.h[s * outsz + k] : rc.h[((size_t)s * T + T - 1) * H + k];
    size_t yo = sub_off(L->y);
    double ef = rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu) from %g to %g", desc, bad, yo, ny,
          bad < 0 ? 0.0 : before[bad], bad < 0 ? 0.0 : after[bad]);
    free(before), free(after);

    /* backward: dx accumulates, the parameter gradients are overwritten,
     * nothing else changes (dy included) */
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
    double *dh = xmalloc(nh * sizeof(double)); /* dy as the gradient of every h_t */
    for (int s = 0; s < c->n; s++)
        for (size_t k = 0; k < outsz; k++)
            dh[c->seq ? s * outsz + k : ((size_t)s * T + T - 1) * H + k] = dy[s * outsz + k];
    double *dxr = c->first ? NULL : xmalloc(nx * sizeof(double));
    double *dwi = xmalloc(nwi * sizeof(double)), *dwh = xmalloc(nwh * sizeof(double));
    double *db = xmalloc((size_t)KH * sizeof(double)), *dbh = xmalloc((size_t)KH * sizeof(double));
    ref_rnn_backward(&g, c->n, x, wih, whh, &rc, dh, dxr, dwi, dwh, b ? db : NULL, bh ? dbh : NULL);
    double eb = 0, e1;
    size_t xo = 0, xl = 0;
    if (dxr) {
        xo = sub_off(L->dx[0]);
        xl = nx;
        e1 = rel_err_f(gafter + xo, dx0, dxr, nx);
        CHECK(e1 < TOL, "%s: dx (accumulated) rel err %.3g", desc, e1);
        eb = e1 > eb ? e1 : eb;
    }
    bad = changed_outside(gbefore, gafter, ng, xo, xl);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    const double *refs[4] = {dwi, dwh, db, c->gru ? dbh : NULL};
    for (int k = 0; k < np; k++) {
        nn_param *P = &L->param[k];
        e1 = rel_err_f(gr + sub_off(P->g), NULL, refs[k], P->n);
        CHECK(e1 < TOL, "%s: d%s rel err %.3g", desc, P->name, e1);
        eb = e1 > eb ? e1 : eb;
    }
    for (size_t i = 0; i < net->nparams; i++) {
        int mine = 0;
        for (int k = 0; k < np; k++)
            mine |= i >= sub_off(L->param[k].g) && i < sub_off(L->param[k].g) + L->param[k].n;
        CHECK(mine || gr[i] == SENT, "%s: backward changed grads[%zu] (outside the layer's gradients)", desc, i);
    }
    if (ef > g_maxerr[0])
        g_maxerr[0] = ef;
    if (eb > g_maxerr[1])
        g_maxerr[1] = eb;
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s: forward %.2g backward %.2g\n", desc, ef, eb);
    free(gbefore), free(gafter), free(gr), free(dh), free(dxr), free(dwi), free(dwh), free(db), free(dbh), free(yr);
    free(wih), free(whh), free(b), free(bh), free(x), free(dy), free(dx0);
    cache_free(&rc);
    tnet_free(&t);
    return 0;
}

static int run_cases(const rcase *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rnn_case(&cs[i]))
            return 1;
    return 0;
}

/* gru T F H seq bias n maxb first */
TEST(rnn_lstm_sequences)
{
    static const rcase cases[] = {
        {0, 5, 3, 4, 1, 1, 3, 5, 0},  {0, 9, 7, 13, 1, 1, 4, 4, 0}, {0, 1, 3, 4, 1, 1, 2, 3, 0},
        {0, 5, 1, 1, 1, 1, 1, 2, 0},  {0, 9, 1, 13, 1, 0, 3, 7, 0}, {0, 5, 7, 1, 1, 1, 5, 6, 0},
    };
    return run_cases(cases, sizeof cases / sizeof *cases);
}

TEST(rnn_lstm_last)
{
    static const rcase cases[] = {
        {0, 5, 3, 4, 0, 1, 3, 5, 0},  {0, 9, 7, 13, 0, 1, 2, 3, 0}, {0, 1, 7, 13, 0, 1, 4, 4, 0},
        {0, 9, 3, 1, 0, 0, 3, 4, 0},  {0, 5, 1, 4, 0, 1, 1, 1, 0},
    };
    return run_cases(cases, sizeof cases / sizeof *cases);
}

TEST(rnn_gru_sequences)
{
    static const rcase cases[] = {
        {1, 5, 3, 4, 1, 1, 3, 5, 0},  {1, 9, 7, 13, 1, 1, 4, 4, 0}, {1, 1, 3, 4, 1, 1, 2, 3, 0},
        {1, 5, 1, 1, 1, 1, 1, 2, 0},  {1, 9, 1, 13, 1, 0, 3, 7, 0}, {1, 5, 7, 1, 1, 1, 5, 6, 0},
    };
    return run_cases(cases, sizeof cases / sizeof *cases);
}

TEST(rnn_gru_last)
{
    static const rcase cases[] = {
        {1, 5, 3, 4, 0, 1, 3, 5, 0},  {1, 9, 7, 13, 0, 1, 2, 3, 0}, {1, 1, 7, 13, 0, 1, 4, 4, 0},
        {1, 9, 3, 1, 0, 0, 3, 4, 0},  {1, 5, 1, 4, 0, 1, 1, 1, 0},
    };
    return run_cases(cases, sizeof cases / sizeof *cases);
}

/* The first layer: x is the network input and dx is NULL. */
TEST(rnn_first_layer)
{
    static const rcase cases[] = {
        {0, 5, 3, 4, 1, 1, 3, 4, 1}, {0, 9, 7, 13, 0, 1, 2, 5, 1},
        {1, 5, 3, 4, 0, 1, 3, 4, 1}, {1, 9, 1, 13, 1, 0, 2, 2, 1},
    };
    int r = run_cases(cases, sizeof cases / sizeof *cases);
    if (!r && getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  rnn device cases: largest rel err forward %.3g, backward %.3g\n", g_maxerr[0],
                g_maxerr[1]);
    return r;
}

/* ------------------------------------------------------------ stacking */

/* [T, F] -> rnn1 (H1, sequences) -> rnn2 (H2, seq2) -> dense (U): the whole
 * net through nn_net_forward / nn_net_backward (dy written to the output's
 * gradient), every parameter gradient against the chained references. */
static int stacked_case(int gru1, int gru2, int seq2, int T, int F, int H1, int H2, int U, int n, int maxb)
{
    NEED_DEV(d);
    char desc[200], json[1024];
    const char *t1 = gru1 ? "gru" : "lstm", *t2 = gru2 ? "gru" : "lstm";
    snprintf(desc, sizeof desc, "%s(%d, seq) -> %s(%d, seq=%d) -> dense(%d), T=%d F=%d n=%d/%d", t1, H1, t2, H2, seq2,
             U, T, F, n, maxb);
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d]},\"layers\":[{\"type\":\"%s\",\"units\":%d,\"return_sequences\":true},"
             "{\"type\":\"%s\",\"units\":%d,\"return_sequences\":%s},{\"type\":\"dense\",\"units\":%d}],"
             "\"loss\":\"mse\"}",
             T, F, t1, H1, t2, H2, seq2 ? "true" : "false", U);
    tnet t;
    TRY(tnet_make(&t, json, maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *D = &net->L[2];
    size_t rows2 = seq2 ? (size_t)n * T : (size_t)n; /* dense rows */
    CHECK(D->out_shape.nd == (seq2 ? 2 : 1) && D->out_shape.d[D->out_shape.nd - 1] == U, "%s: output shape nd %d",
          desc, D->out_shape.nd);
    ref_rng rng;
    ref_rng_seed(&rng, (unsigned long long)(31 * T + 7 * F + H1 + 3 * H2 + gru1 * 2 + gru2));
    /* every parameter random (biases included) */
    double *pv[3][NN_MAX_PARAMS] = {{0}};
    for (int li = 0; li < 3; li++)
        for (int k = 0; k < net->L[li].nparam; k++) {
            nn_param *P = &net->L[li].param[k];
            pv[li][k] = rnd_vec(&rng, P->n, -0.6, 0.6);
            TRY(upload(P->w, 0, pv[li][k], P->n, &E));
        }
    size_t nx = (size_t)n * T * F, ny = rows2 * U;
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1);
    TRY(upload(net->x_in, 0, x, nx, &E));
    nn_run run = {d, n, 1, 1, 1};
    TRY(nn_net_forward(net, &run, &E));
    TRY(nn_net_zero_grads(net, &E));
    TRY(upload(D->dy, 0, dy, ny, &E));
    TRY(nn_net_backward(net, &run, &E));
    float *ya = read_all(D->y, ny, &E), *gr = read_all(net->grads, net->nparams, &E);
    CHECK(ya && gr, "%s: %s", desc, E.msg);

    /* reference chain */
    rgeo g1 = {gru1, T, F, H1}, g2 = {gru2, T, H1, H2};
    rcache c1, c2;
    cache_alloc(&c1, &g1, n);
    cache_alloc(&c2, &g2, n);
    ref_rnn_forward(&g1, n, x, pv[0][0], pv[0][1], pv[0][2], gru1 ? pv[0][3] : NULL, &c1);
    ref_rnn_forward(&g2, n, c1.h, pv[1][0], pv[1][1], pv[1][2], gru2 ? pv[1][3] : NULL, &c2);
    double *h2 = xmalloc(rows2 * H2 * sizeof(double)); /* the dense input */
    for (size_t r = 0; r < rows2; r++)
        for (int j = 0; j < H2; j++)
            h2[r * H2 + j] = seq2 ? c2.h[r * H2 + j] : c2.h[(r * T + T - 1) * H2 + j];
    double *yr = xmalloc(ny * sizeof(double));
    ref_dense_forward(h2, pv[2][0], pv[2][1], rows2, (size_t)H2, (size_t)U, REF_ACT_NONE, yr);
    double ef = rel_err_f(ya, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    double *dh2 = xmalloc(rows2 * H2 * sizeof(double)), *gref[3][NN_MAX_PARAMS] = {{0}};
    for (int li = 0; li < 3; li++)
        for (int k = 0; k < net->L[li].nparam; k++)
            gref[li][k] = xmalloc(net->L[li].param[k].n * sizeof(double));
    ref_dense_backward(h2, pv[2][0], yr, dy, rows2, (size_t)H2, (size_t)U, REF_ACT_NONE, dh2, gref[2][0], gref[2][1]);
    double *dhs2 = xmalloc((size_t)n * T * H2 * sizeof(double));
    for (size_t r = 0; r < rows2; r++)
        for (int j = 0; j < H2; j++)
            dhs2[(seq2 ? r : r * T + T - 1) * H2 + j] = dh2[r * H2 + j];
    double *dh1 = xmalloc((size_t)n * T * H1 * sizeof(double));
    ref_rnn_backward(&g2, n, c1.h, pv[1][0], pv[1][1], &c2, dhs2, dh1, gref[1][0], gref[1][1], gref[1][2],
                     gru2 ? gref[1][3] : NULL);
    ref_rnn_backward(&g1, n, x, pv[0][0], pv[0][1], &c1, dh1, NULL, gref[0][0], gref[0][1], gref[0][2],
                     gru1 ? gref[0][3] : NULL);
    double emax = 0;
    for (int li = 0; li < 3; li++)
        for (int k = 0; k < net->L[li].nparam; k++) {
            nn_param *P = &net->L[li].param[k];
            double e1 = rel_err_f(gr + sub_off(P->g), NULL, gref[li][k], P->n);
            CHECK(e1 < TOL, "%s: layer %d d%s rel err %.3g", desc, li, P->name, e1);
            emax = e1 > emax ? e1 : emax;
            free(pv[li][k]), free(gref[li][k]);
        }
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s: forward %.2g gradients %.2g\n", desc, ef, emax);
    free(ya), free(gr), free(h2), free(yr), free(dh2), free(dhs2), free(dh1), free(x), free(dy);
    cache_free(&c1);
    cache_free(&c2);
    tnet_free(&t);
    return 0;
}

TEST(rnn_stacked)
{
    return stacked_case(0, 0, 1, 5, 3, 4, 7, 3, 3, 4) || /* lstm -> lstm -> dense per time step */
           stacked_case(0, 0, 0, 9, 7, 13, 4, 2, 2, 3) ||
           stacked_case(0, 1, 0, 5, 3, 4, 5, 2, 3, 3) || /* lstm -> gru */
           stacked_case(1, 0, 1, 5, 1, 3, 4, 1, 2, 5);   /* gru -> lstm */
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

TEST(rnn_shape_errors)
{
    return expect_error(IN("[784]") "{\"type\":\"lstm\",\"units\":8}" END,
                        "layers[0]: lstm needs a [time, features] input; got [784]", NULL) ||
           expect_error(IN("[1,28,28]") "{\"type\":\"gru\",\"units\":8}" END,
                        "layers[0]: gru needs a [time, features] input; got [1, 28, 28]", NULL) ||
           expect_error(IN("[5,3]") "{\"type\":\"lstm\",\"units\":4},{\"type\":\"lstm\",\"units\":4}" END,
                        "layers[1]: lstm needs a [time, features] input; got [4]", "\"return_sequences\": true there") ||
           expect_error(IN("[5,3]") "{\"type\":\"lstm\"}" END, "layers[0].units", "missing") ||
           expect_error(IN("[5,3]") "{\"type\":\"gru\",\"units\":0}" END, "layers[0].units", "out of range") ||
           expect_error(IN("[5,3]") "{\"type\":\"lstm\",\"units\":4,\"return_sequences\":1}" END,
                        "layers[0].return_sequences", "true or false") ||
           expect_error(IN("[5,3]") "{\"type\":\"gru\",\"units\":4,\"return_sequence\":true}" END,
                        "unknown key 'return_sequence'", NULL);
}

/* ------------------------------------------------------------ training */

/* lstm (last step) -> dense -> softmax on sequences of 6 numbers in
 * [-1, 1): class 1 when their sum is positive. */
TEST(rnn_train_smoke)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[6,1]},\"layers\":["
                       "{\"type\":\"lstm\",\"units\":8},{\"type\":\"dense\",\"units\":2},{\"type\":\"softmax\"}],"
                       "\"loss\":\"cross_entropy\",\"optimizer\":{\"type\":\"adam\",\"lr\":0.03}}";
    enum { N = 64, T = 6, STEPS = 40 };
    tnet t;
    TRY(tnet_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    ref_rng rng;
    ref_rng_seed(&rng, 11);
    double *x = xmalloc(N * T * sizeof(double));
    int lab[N];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < T; k++)
            s += x[i * T + k] = (float)ref_rng_range(&rng, -1, 1);
        lab[i] = s > 0;
    }
    cl_mem lb, metrics, acc;
    TRY(nn_buf_alloc(d, sizeof lab, "labels", &lb, &E));
    TRY(nn_buf_write(d, lb, 0, sizeof lab, lab, 1, &E));
    TRY(nn_buf_alloc(d, 2 * N * sizeof(float), "metrics", &metrics, &E));
    TRY(nn_buf_alloc(d, 3 * sizeof(float), "acc", &acc, &E));
    TRY(upload(net->x_in, 0, x, N * T, &E));
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
        fprintf(stderr, "  rnn_train_smoke: loss %.4f -> %.4f, accuracy %.3f after %d steps\n", l0, l1, a1, STEPS);
    CHECK(isfinite(l1) && l1 < l0 / 3, "loss %.4f -> %.4f: not divided by 3", l0, l1);
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
    ref_rng rng;
    ref_rng_seed(&rng, 3);
    size_t nx = (size_t)batch * nn_shape_size(&L->in_shape[0]), ny = (size_t)batch * nn_shape_size(&L->out_shape);
    double *x = rnd_vec(&rng, nx, -1, 1), *dy = rnd_vec(&rng, ny, -1, 1);
    TRY(upload(L->x[0], 0, x, nx, &E));
    TRY(upload(L->dy, 0, dy, ny, &E));
    nn_run run = {d, batch, 1, 1, 1};
    enum { WARM = 2, REPS = 5 };
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
    fprintf(stderr, "  %s: forward %.2f ms, backward %.2f ms (%.2f GFLOP/s forward)\n", desc, tf / REPS * 1e3,
            tb / REPS * 1e3, fl / (tf / REPS) * 1e-9);
    free(x), free(dy);
    tnet_free(&t);
    return 0;
}

/* Runs only with NN_TEST_BENCH=1. */
TEST(rnn_timing)
{
    if (!getenv("NN_TEST_BENCH"))
        return 0;
    return time_layer("lstm 128 on [28, 28] batch 64 (first layer, last step)",
                      "{\"input\":{\"shape\":[28,28]},\"layers\":[{\"type\":\"lstm\",\"units\":128}],"
                      "\"loss\":\"mse\"}",
                      0, 64) ||
           time_layer("gru 128 on [28, 28] batch 64 (first layer, last step)",
                      "{\"input\":{\"shape\":[28,28]},\"layers\":[{\"type\":\"gru\",\"units\":128}],"
                      "\"loss\":\"mse\"}",
                      0, 64) ||
           time_layer("lstm 64 on [50, 32] batch 32 (with dx, sequences)",
                      "{\"input\":{\"shape\":[50,32]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                      "{\"type\":\"lstm\",\"units\":64,\"return_sequences\":true}],\"loss\":\"mse\"}",
                      1, 32) ||
           time_layer("lstm 192 on [64, 48] batch 32 (with dx, sequences: models/char_lstm.json)",
                      "{\"input\":{\"shape\":[64,48]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                      "{\"type\":\"lstm\",\"units\":192,\"return_sequences\":true}],\"loss\":\"mse\"}",
                      1, 32);
}
