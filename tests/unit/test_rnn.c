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
#include "net.h"
#include "ref.h"
#include "spec.h"
#include "tutil.h"

/* Device (fp32) vs reference, relative to the reference's largest value.
 * Sequences of up to 9 steps with up to 13 units keep the fp32 error of the
 * recurrence (and of the weight gradients, sums over n*T rows) near 1e-6. */
#define TOL 1e-4
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-6 /* the smallest largest |gradient| those differences are relative to */

static nn_err E;

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
    c->h = tu_xmalloc(th * sizeof(double));
    c->a = tu_xmalloc(th * geo_k(g) * sizeof(double));
    c->c = tu_xmalloc(th * sizeof(double));
    c->hn = tu_xmalloc(th * sizeof(double));
}

static void cache_free(rcache *c) { free(c->h), free(c->a), free(c->c), free(c->hn); }

static double sigm(double v) { return 1 / (1 + exp(-v)); }

static void ref_rnn_forward(const rgeo *g, int n, const double *x, const double *wih, const double *whh,
                            const double *b, const double *bh, rcache *c)
{
    int T = g->T, F = g->F, H = g->H, KH = geo_k(g) * H;
    double *px = tu_xmalloc((size_t)KH * sizeof *px), *ph = tu_xmalloc((size_t)KH * sizeof *ph);
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
    double *dhn = tu_xmalloc((size_t)H * sizeof *dhn), *dcn = tu_xmalloc((size_t)H * sizeof *dcn);
    double *gx = tu_xmalloc((size_t)KH * sizeof *gx), *gh = tu_xmalloc((size_t)KH * sizeof *gh);
    for (int s = 0; s < n; s++) {
        memset(dhn, 0, (size_t)H * sizeof *dhn);
        memset(dcn, 0, (size_t)H * sizeof *dcn);
        for (int t = T - 1; t >= 0; t--) {
            size_t row = (size_t)s * T + t;
            const double *a = c->a + row * KH, *hp = t ? c->h + (row - 1) * H : NULL;
            double *carry = tu_xmalloc((size_t)H * sizeof *carry); /* the direct part of dh_{t-1} */
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
static double rnn_fd_f(void *ctx)
{
    rnn_fd *c = ctx;
    ref_rnn_forward(&c->g, c->n, c->x, c->wih, c->whh, c->b, c->bh, &c->c);
    double s = 0;
    size_t nh = (size_t)c->n * c->g.T * c->g.H;
    for (size_t i = 0; i < nh; i++)
        s += c->r[i] * c->c.h[i];
    return s;
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
        c.x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0);
        c.wih = tu_rnd_vec_nz(&rng, nwi, -0.8, 0.8, 0);
        c.whh = tu_rnd_vec_nz(&rng, nwh, -0.8, 0.8, 0);
        c.b = cases[ci].bias ? tu_rnd_vec_nz(&rng, (size_t)KH, -0.5, 0.5, 0) : NULL;
        c.bh = cases[ci].bias && c.g.gru ? tu_rnd_vec_nz(&rng, (size_t)KH, -0.5, 0.5, 0) : NULL;
        c.r = tu_rnd_vec_nz(&rng, nh, -1, 1, 0);
        cache_alloc(&c.c, &c.g, c.n);
        double *dx = tu_xmalloc(nx * sizeof(double)), *dwi = tu_xmalloc(nwi * sizeof(double));
        double *dwh = tu_xmalloc(nwh * sizeof(double)), *db = tu_xmalloc((size_t)KH * sizeof(double));
        double *dbh = tu_xmalloc((size_t)KH * sizeof(double));
        rnn_fd_f(&c);
        ref_rnn_backward(&c.g, c.n, c.x, c.wih, c.whh, &c.c, c.r, dx, dwi, dwh, c.b ? db : NULL, c.bh ? dbh : NULL);
        double ex = tu_fd_rel_err(rnn_fd_f, &c, c.x, nx, dx, FD_FLOOR),
               ewi = tu_fd_rel_err(rnn_fd_f, &c, c.wih, nwi, dwi, FD_FLOOR);
        double ewh = tu_fd_rel_err(rnn_fd_f, &c, c.whh, nwh, dwh, FD_FLOOR);
        double eb = c.b ? tu_fd_rel_err(rnn_fd_f, &c, c.b, (size_t)KH, db, FD_FLOOR) : 0,
               ebh = c.bh ? tu_fd_rel_err(rnn_fd_f, &c, c.bh, (size_t)KH, dbh, FD_FLOOR) : 0;
        CHECK(ex < FD_TOL && ewi < FD_TOL && ewh < FD_TOL && eb < FD_TOL && ebh < FD_TOL,
              "case %zu (%s T=%d F=%d H=%d): fd rel err dx %.3g dW_ih %.3g dW_hh %.3g db %.3g db_hh %.3g", ci,
              c.g.gru ? "gru" : "lstm", c.g.T, c.g.F, c.g.H, ex, ewi, ewh, eb, ebh);
        /* the gradients are not trivially zero */
        CHECK(tu_max_abs(dwh, nwh) > 1e-3 || c.g.T == 1, "case %zu: dW_hh is zero", ci);
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
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
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
    double *wih = tu_rnd_vec_nz(&rng, nwi, -0.7, 0.7, 0), *whh = tu_rnd_vec_nz(&rng, nwh, -0.7, 0.7, 0);
    double *b = c->bias ? tu_rnd_vec_nz(&rng, (size_t)KH, -0.5, 0.5, 0) : NULL;
    double *bh = c->bias && c->gru ? tu_rnd_vec_nz(&rng, (size_t)KH, -0.5, 0.5, 0) : NULL;
    double *x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0), *dy = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
    double *dx0 = c->first ? NULL : tu_rnd_vec_nz(&rng, nx, -1, 1, 0);

    /* forward: y[0:n] matches; nothing else in the activation arena changes */
    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(tu_upload(L->x[0], 0, x, nx, &E));
    TRY(tu_upload(L->param[0].w, 0, wih, nwi, &E));
    TRY(tu_upload(L->param[1].w, 0, whh, nwh, &E));
    if (b)
        TRY(tu_upload(L->param[2].w, 0, b, (size_t)KH, &E));
    if (bh)
        TRY(tu_upload(L->param[3].w, 0, bh, (size_t)KH, &E));
    float *before = tu_read_all(net->arena, na, &E);
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    float *after = tu_read_all(net->arena, na, &E);
    CHECK(before && after, "%s: %s", desc, E.msg);
    rcache rc;
    cache_alloc(&rc, &g, c->n);
    ref_rnn_forward(&g, c->n, x, wih, whh, b, bh, &rc);
    double *yr = tu_xmalloc(ny * sizeof(double));
    for (int s = 0; s < c->n; s++)
        for (size_t k = 0; k < outsz; k++)
            yr[s * outsz + k] = c->seq ? rc.h[s * outsz + k] : rc.h[((size_t)s * T + T - 1) * H + k];
    size_t yo = tu_sub_off(L->y);
    double ef = tu_rel_err_f(after + yo, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_changed_outside(before, after, na, yo, ny);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, n*out %zu) from %g to %g", desc, bad, yo, ny,
          bad < 0 ? 0.0 : before[bad], bad < 0 ? 0.0 : after[bad]);
    free(before), free(after);

    /* backward: dx accumulates, the parameter gradients are overwritten,
     * nothing else changes (dy included) */
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
    double *dh = tu_xmalloc(nh * sizeof(double)); /* dy as the gradient of every h_t */
    for (int s = 0; s < c->n; s++)
        for (size_t k = 0; k < outsz; k++)
            dh[c->seq ? s * outsz + k : ((size_t)s * T + T - 1) * H + k] = dy[s * outsz + k];
    double *dxr = c->first ? NULL : tu_xmalloc(nx * sizeof(double));
    double *dwi = tu_xmalloc(nwi * sizeof(double)), *dwh = tu_xmalloc(nwh * sizeof(double));
    double *db = tu_xmalloc((size_t)KH * sizeof(double)), *dbh = tu_xmalloc((size_t)KH * sizeof(double));
    ref_rnn_backward(&g, c->n, x, wih, whh, &rc, dh, dxr, dwi, dwh, b ? db : NULL, bh ? dbh : NULL);
    double eb = 0, e1;
    size_t xo = 0, xl = 0;
    if (dxr) {
        xo = tu_sub_off(L->dx[0]);
        xl = nx;
        e1 = tu_rel_err_f(gafter + xo, dx0, dxr, nx);
        CHECK(e1 < TOL, "%s: dx (accumulated) rel err %.3g", desc, e1);
        eb = e1 > eb ? e1 : eb;
    }
    bad = tu_changed_outside(gbefore, gafter, ng, xo, xl);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] (outside dx rows < n)", desc, bad);
    const double *refs[4] = {dwi, dwh, db, c->gru ? dbh : NULL};
    for (int k = 0; k < np; k++) {
        nn_param *P = &L->param[k];
        e1 = tu_rel_err_f(gr + tu_sub_off(P->g), NULL, refs[k], P->n);
        CHECK(e1 < TOL, "%s: d%s rel err %.3g", desc, P->name, e1);
        eb = e1 > eb ? e1 : eb;
    }
    for (size_t i = 0; i < net->nparams; i++) {
        int mine = 0;
        for (int k = 0; k < np; k++)
            mine |= i >= tu_sub_off(L->param[k].g) && i < tu_sub_off(L->param[k].g) + L->param[k].n;
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
    tu_net_free(&t);
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
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 1, &E));
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
            pv[li][k] = tu_rnd_vec_nz(&rng, P->n, -0.6, 0.6, 0);
            TRY(tu_upload(P->w, 0, pv[li][k], P->n, &E));
        }
    size_t nx = (size_t)n * T * F, ny = rows2 * U;
    double *x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0), *dy = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
    TRY(tu_upload(net->x_in, 0, x, nx, &E));
    nn_run run = {d, n, 1, 1, 1};
    TRY(nn_net_forward(net, &run, &E));
    TRY(nn_net_zero_grads(net, &E));
    TRY(tu_upload(D->dy, 0, dy, ny, &E));
    TRY(nn_net_backward(net, &run, &E));
    float *ya = tu_read_all(D->y, ny, &E), *gr = tu_read_all(net->grads, net->nparams, &E);
    CHECK(ya && gr, "%s: %s", desc, E.msg);

    /* reference chain */
    rgeo g1 = {gru1, T, F, H1}, g2 = {gru2, T, H1, H2};
    rcache c1, c2;
    cache_alloc(&c1, &g1, n);
    cache_alloc(&c2, &g2, n);
    ref_rnn_forward(&g1, n, x, pv[0][0], pv[0][1], pv[0][2], gru1 ? pv[0][3] : NULL, &c1);
    ref_rnn_forward(&g2, n, c1.h, pv[1][0], pv[1][1], pv[1][2], gru2 ? pv[1][3] : NULL, &c2);
    double *h2 = tu_xmalloc(rows2 * H2 * sizeof(double)); /* the dense input */
    for (size_t r = 0; r < rows2; r++)
        for (int j = 0; j < H2; j++)
            h2[r * H2 + j] = seq2 ? c2.h[r * H2 + j] : c2.h[(r * T + T - 1) * H2 + j];
    double *yr = tu_xmalloc(ny * sizeof(double));
    ref_dense_forward(h2, pv[2][0], pv[2][1], rows2, (size_t)H2, (size_t)U, REF_ACT_NONE, yr);
    double ef = tu_rel_err_f(ya, NULL, yr, ny);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    double *dh2 = tu_xmalloc(rows2 * H2 * sizeof(double)), *gref[3][NN_MAX_PARAMS] = {{0}};
    for (int li = 0; li < 3; li++)
        for (int k = 0; k < net->L[li].nparam; k++)
            gref[li][k] = tu_xmalloc(net->L[li].param[k].n * sizeof(double));
    ref_dense_backward(h2, pv[2][0], yr, dy, rows2, (size_t)H2, (size_t)U, REF_ACT_NONE, dh2, gref[2][0], gref[2][1]);
    double *dhs2 = tu_xmalloc((size_t)n * T * H2 * sizeof(double));
    for (size_t r = 0; r < rows2; r++)
        for (int j = 0; j < H2; j++)
            dhs2[(seq2 ? r : r * T + T - 1) * H2 + j] = dh2[r * H2 + j];
    double *dh1 = tu_xmalloc((size_t)n * T * H1 * sizeof(double));
    ref_rnn_backward(&g2, n, c1.h, pv[1][0], pv[1][1], &c2, dhs2, dh1, gref[1][0], gref[1][1], gref[1][2],
                     gru2 ? gref[1][3] : NULL);
    ref_rnn_backward(&g1, n, x, pv[0][0], pv[0][1], &c1, dh1, NULL, gref[0][0], gref[0][1], gref[0][2],
                     gru1 ? gref[0][3] : NULL);
    double emax = 0;
    for (int li = 0; li < 3; li++)
        for (int k = 0; k < net->L[li].nparam; k++) {
            nn_param *P = &net->L[li].param[k];
            double e1 = tu_rel_err_f(gr + tu_sub_off(P->g), NULL, gref[li][k], P->n);
            CHECK(e1 < TOL, "%s: layer %d d%s rel err %.3g", desc, li, P->name, e1);
            emax = e1 > emax ? e1 : emax;
            free(pv[li][k]), free(gref[li][k]);
        }
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s: forward %.2g gradients %.2g\n", desc, ef, emax);
    free(ya), free(gr), free(h2), free(yr), free(dh2), free(dhs2), free(dh1), free(x), free(dy);
    cache_free(&c1);
    cache_free(&c2);
    tu_net_free(&t);
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

#define IN(shape) "{\"input\":{\"shape\":" shape "},\"layers\":["
#define END "],\"loss\":\"mse\"}"

TEST(rnn_shape_errors)
{
    return tu_expect_error(IN("[784]") "{\"type\":\"lstm\",\"units\":8}" END,
                           "layers[0]: lstm needs a [time, features] input; got [784]", NULL) ||
           tu_expect_error(IN("[1,28,28]") "{\"type\":\"gru\",\"units\":8}" END,
                           "layers[0]: gru needs a [time, features] input; got [1, 28, 28]", NULL) ||
           tu_expect_error(IN("[5,3]") "{\"type\":\"lstm\",\"units\":4},{\"type\":\"lstm\",\"units\":4}" END,
                           "layers[1]: lstm needs a [time, features] input; got [4]",
                           "\"return_sequences\": true there") ||
           tu_expect_error(IN("[5,3]") "{\"type\":\"lstm\"}" END, "layers[0].units", "missing") ||
           tu_expect_error(IN("[5,3]") "{\"type\":\"gru\",\"units\":0}" END, "layers[0].units", "out of range") ||
           tu_expect_error(IN("[5,3]") "{\"type\":\"lstm\",\"units\":4,\"return_sequences\":1}" END,
                           "layers[0].return_sequences", "true or false") ||
           tu_expect_error(IN("[5,3]") "{\"type\":\"gru\",\"units\":4,\"return_sequence\":true}" END,
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
    tu_net t;
    TRY(tu_net_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    ref_rng rng;
    ref_rng_seed(&rng, 11);
    double *x = tu_xmalloc(N * T * sizeof(double));
    int lab[N];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < T; k++)
            s += x[i * T + k] = (float)ref_rng_range(&rng, -1, 1);
        lab[i] = s > 0;
    }
    double l0, l1, a1;
    TRY(tu_train(d, &t, x, N * T, lab, N, STEPS, &l0, &l1, &a1, &E));
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  rnn_train_smoke: loss %.4f -> %.4f, accuracy %.3f after %d steps\n", l0, l1, a1, STEPS);
    CHECK(isfinite(l1) && l1 < l0 / 3, "loss %.4f -> %.4f: not divided by 3", l0, l1);
    CHECK(a1 >= 0.9, "accuracy %.3f after training", a1);
    free(x);
    tu_net_free(&t);
    return 0;
}

/* ------------------------------------------------------------ timing */

/* Runs only with NN_TEST_BENCH=1. */
TEST(rnn_timing)
{
    if (!getenv("NN_TEST_BENCH"))
        SKIP("timings only with NN_TEST_BENCH=1");
    return tu_time_layer("lstm 128 on [28, 28] batch 64 (first layer, last step)",
                         "{\"input\":{\"shape\":[28,28]},\"layers\":[{\"type\":\"lstm\",\"units\":128}],"
                         "\"loss\":\"mse\"}",
                         0, 64, 2, 5) ||
           tu_time_layer("gru 128 on [28, 28] batch 64 (first layer, last step)",
                         "{\"input\":{\"shape\":[28,28]},\"layers\":[{\"type\":\"gru\",\"units\":128}],"
                         "\"loss\":\"mse\"}",
                         0, 64, 2, 5) ||
           tu_time_layer("lstm 64 on [50, 32] batch 32 (with dx, sequences)",
                         "{\"input\":{\"shape\":[50,32]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"lstm\",\"units\":64,\"return_sequences\":true}],\"loss\":\"mse\"}",
                         1, 32, 2, 5) ||
           tu_time_layer("lstm 192 on [64, 48] batch 32 (with dx, sequences: models/char_lstm.json)",
                         "{\"input\":{\"shape\":[64,48]},\"layers\":[{\"type\":\"dropout\",\"rate\":0},"
                         "{\"type\":\"lstm\",\"units\":192,\"return_sequences\":true}],\"loss\":\"mse\"}",
                         1, 32, 2, 5);
}
