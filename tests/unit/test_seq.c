/* test_seq.c - the sequence layers (embedding, layernorm, attention) against
 * plain-C double references (in this file), through the real code paths
 * (nn_spec_parse -> nn_net_build -> nn_net_alloc -> the layer's
 * forward/backward), plus finite-difference checks of the references.
 *
 *   seq_ref_fd          the references' backward vs central differences
 *   seq_embedding*      forward/backward, positional on/off, first layer (no
 *                       dx) or not (dx untouched), invalid ids, "vocab"
 *   seq_layernorm       forward/backward over 1-, 2- and 3-D samples
 *   seq_attention       forward/backward, odd T / D / heads, causal, bias
 *   seq_attention_dropout  train vs eval, determinism per step, the mask
 *                       reproduced in C (hash_uniform) for forward and backward
 *   seq_causal          perturbing position t leaves outputs < t unchanged
 *                       (attention alone and a whole embedding stack)
 *   seq_key_errors      shape / key validation messages
 *   seq_train_toy       embedding -> attention -> layernorm -> dense learns
 *   seq_bench           timings at T=128, D=128, n=64 (only with NN_TEST_SEQ_BENCH=1)
 *
 * Data are random and non-zero, shapes odd, batches partial (n < max batch)
 * with sentinel rows that must survive, dx pre-filled so that the
 * accumulation is what gets checked, parameter gradients pre-filled so that
 * their overwriting is. NN_TEST_VERBOSE=1 prints the largest error seen per
 * check to stderr. */
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
#include "util.h"

#define TOL 1e-4      /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-8 /* the smallest largest |gradient| those differences are relative to */

/* ------------------------------------------------------------- plumbing */

static nn_err E;

#define DVEC(n) ((double *)tu_xmalloc((size_t)(n) * sizeof(double)))

/* n token ids in [0, V) as doubles. */
static double *rnd_ids(ref_rng *r, size_t n, int V)
{
    double *v = DVEC(n);
    for (size_t i = 0; i < n; i++)
        v[i] = (double)(ref_rng_next(r) % (uint64_t)V);
    return v;
}

/* Device hash_uniform (cl/common.cl) reproduced bit for bit. */
static float c_hash_uniform(uint32_t seed_lo, uint32_t seed_hi, uint32_t stream, uint32_t idx)
{
    uint32_t h = idx * 0x9E3779B1u ^ seed_lo;
    h ^= stream * 0x85EBCA77u + seed_hi;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    h ^= idx + 0x68E31DA4u;
    h *= 0xB5297A4Du;
    h ^= h >> 13;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

/* The attention dropout multipliers [n, H, T, T] of layer `index` at (seed, step). */
static double *attn_keep_mask(size_t count, float rate, uint64_t seed, uint64_t step, int index)
{
    uint32_t stream = (uint32_t)(step * 0x9E3779B1u) ^ (uint32_t)(index * 0x632BE5ABu);
    double *k = DVEC(count);
    for (size_t i = 0; i < count; i++)
        k[i] = c_hash_uniform((uint32_t)seed, (uint32_t)(seed >> 32), stream, (uint32_t)i) >= rate
                   ? (double)(1.0f / (1.0f - rate))
                   : 0.0;
    return k;
}

/* ------------------------------------------------------- references */

/* id as the device reads it: nearest integer, -1 outside [0, V). */
static int ref_id(double x, int V)
{
    if (!(x > -0.5 && x < V - 0.5))
        return -1;
    return (int)floor(x + 0.5);
}

/* y[n, T, D] = W[id] (+ pos[t]); pos may be NULL. */
static void ref_emb_forward(const double *ids, size_t n, int T, int V, int D, const double *w, const double *pos,
                            double *y)
{
    for (size_t r = 0; r < n * (size_t)T; r++) {
        int id = ref_id(ids[r], V);
        for (int j = 0; j < D; j++)
            y[r * D + j] = (id >= 0 ? w[(size_t)id * D + j] : 0) + (pos ? pos[(r % (size_t)T) * D + j] : 0);
    }
}

/* dW [V, D], dpos [T, D] (may be NULL) overwritten. */
static void ref_emb_backward(const double *ids, const double *dy, size_t n, int T, int V, int D, double *dw,
                             double *dpos)
{
    memset(dw, 0, (size_t)V * D * sizeof *dw);
    if (dpos)
        memset(dpos, 0, (size_t)T * D * sizeof *dpos);
    for (size_t r = 0; r < n * (size_t)T; r++) {
        int id = ref_id(ids[r], V);
        for (int j = 0; j < D; j++) {
            if (id >= 0)
                dw[(size_t)id * D + j] += dy[r * D + j];
            if (dpos)
                dpos[(r % (size_t)T) * D + j] += dy[r * D + j];
        }
    }
}

static void ref_ln_forward(const double *x, size_t rows, int D, const double *g, const double *b, double eps,
                           double *y)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * D;
        double m = 0, q = 0;
        for (int j = 0; j < D; j++)
            m += xr[j];
        m /= D;
        for (int j = 0; j < D; j++)
            q += (xr[j] - m) * (xr[j] - m);
        double rs = 1 / sqrt(q / D + eps);
        for (int j = 0; j < D; j++)
            y[r * D + j] = (xr[j] - m) * rs * g[j] + b[j];
    }
}

/* dx += (may be NULL); dg, db overwritten. */
static void ref_ln_backward(const double *x, const double *dy, size_t rows, int D, const double *g, double eps,
                            double *dx, double *dg, double *db)
{
    memset(dg, 0, (size_t)D * sizeof *dg);
    memset(db, 0, (size_t)D * sizeof *db);
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * D, *dr = dy + r * D;
        double m = 0, q = 0;
        for (int j = 0; j < D; j++)
            m += xr[j];
        m /= D;
        for (int j = 0; j < D; j++)
            q += (xr[j] - m) * (xr[j] - m);
        double rs = 1 / sqrt(q / D + eps), a = 0, b = 0;
        for (int j = 0; j < D; j++) {
            double xh = (xr[j] - m) * rs;
            dg[j] += dr[j] * xh;
            db[j] += dr[j];
            a += dr[j] * g[j];
            b += dr[j] * g[j] * xh;
        }
        a /= D;
        b /= D;
        if (dx)
            for (int j = 0; j < D; j++)
                dx[r * D + j] += rs * (dr[j] * g[j] - a - (xr[j] - m) * rs * b);
    }
}

/* Multi-head self-attention on x [n, T, D]; bq / bo NULL without bias; keep
 * [n, H, T, T] dropout multipliers or NULL. */
typedef struct aref {
    int n, T, D, H, causal;
    const double *x, *wq, *bq, *wo, *bo, *keep;
} aref;

/* Forward into y; with dy also the backward: dx += (may be NULL), parameter
 * gradients overwritten (dbq / dbo ignored without bias). */
static void ref_attn(const aref *a, double *y, const double *dy, double *dx, double *dwq, double *dbq, double *dwo,
                     double *dbo)
{
    const int n = a->n, T = a->T, D = a->D, H = a->H, dh = D / H, D3 = 3 * D;
    const size_t rows = (size_t)n * T;
    const double sc = 1 / sqrt((double)dh);
    double *qkv = DVEC(rows * D3), *P = DVEC((size_t)n * H * T * T), *C = DVEC(rows * D);
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < D3; c++) {
            double s = a->bq ? a->bq[c] : 0;
            for (int k = 0; k < D; k++)
                s += a->x[r * D + k] * a->wq[(size_t)k * D3 + c];
            qkv[r * D3 + c] = s;
        }
#define QV(s, t, h, k) qkv[((size_t)(s) * T + (t)) * D3 + (size_t)(h) * dh + (k)]
#define KV(s, t, h, k) qkv[((size_t)(s) * T + (t)) * D3 + D + (size_t)(h) * dh + (k)]
#define VV(s, t, h, k) qkv[((size_t)(s) * T + (t)) * D3 + 2 * D + (size_t)(h) * dh + (k)]
#define KEEP(s, h, i, j) (a->keep ? a->keep[(((size_t)(s) * H + (h)) * T + (i)) * T + (j)] : 1.0)
    for (int s = 0; s < n; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double *pr = P + (((size_t)s * H + h) * T + i) * T;
                int len = a->causal ? i + 1 : T;
                double m = -INFINITY, z = 0;
                for (int j = 0; j < len; j++) {
                    double v = 0;
                    for (int k = 0; k < dh; k++)
                        v += QV(s, i, h, k) * KV(s, j, h, k);
                    pr[j] = v * sc;
                    if (pr[j] > m)
                        m = pr[j];
                }
                for (int j = 0; j < len; j++)
                    z += (pr[j] = exp(pr[j] - m));
                for (int j = 0; j < T; j++)
                    pr[j] = j < len ? pr[j] / z : 0;
                for (int k = 0; k < dh; k++) {
                    double v = 0;
                    for (int j = 0; j < T; j++)
                        v += pr[j] * KEEP(s, h, i, j) * VV(s, j, h, k);
                    C[((size_t)s * T + i) * D + (size_t)h * dh + k] = v;
                }
            }
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < D; c++) {
            double v = a->bo ? a->bo[c] : 0;
            for (int k = 0; k < D; k++)
                v += C[r * D + k] * a->wo[(size_t)k * D + c];
            y[r * D + c] = v;
        }
    if (dy) {
        double *dC = DVEC(rows * D), *dq = DVEC(rows * D3), *g = DVEC((size_t)T);
        for (int k = 0; k < D; k++)
            for (int c = 0; c < D; c++) {
                double v = 0;
                for (size_t r = 0; r < rows; r++)
                    v += C[r * D + k] * dy[r * D + c];
                dwo[(size_t)k * D + c] = v;
            }
        if (a->bo)
            for (int c = 0; c < D; c++) {
                double v = 0;
                for (size_t r = 0; r < rows; r++)
                    v += dy[r * D + c];
                dbo[c] = v;
            }
        for (size_t r = 0; r < rows; r++)
            for (int k = 0; k < D; k++) {
                double v = 0;
                for (int c = 0; c < D; c++)
                    v += dy[r * D + c] * a->wo[(size_t)k * D + c];
                dC[r * D + k] = v;
            }
#define DQ(s, t, h, k) dq[((size_t)(s) * T + (t)) * D3 + (size_t)(h) * dh + (k)]
#define DK(s, t, h, k) dq[((size_t)(s) * T + (t)) * D3 + D + (size_t)(h) * dh + (k)]
#define DV(s, t, h, k) dq[((size_t)(s) * T + (t)) * D3 + 2 * D + (size_t)(h) * dh + (k)]
#define DCV(s, t, h, k) dC[((size_t)(s) * T + (t)) * D + (size_t)(h) * dh + (k)]
        for (int s = 0; s < n; s++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++) {
                    const double *pr = P + (((size_t)s * H + h) * T + i) * T;
                    double dt = 0;
                    for (int j = 0; j < T; j++) {
                        double v = 0;
                        for (int k = 0; k < dh; k++) {
                            v += DCV(s, i, h, k) * VV(s, j, h, k);
                            DV(s, j, h, k) += pr[j] * KEEP(s, h, i, j) * DCV(s, i, h, k);
                        }
                        g[j] = v * KEEP(s, h, i, j);
                        dt += g[j] * pr[j];
                    }
                    for (int j = 0; j < T; j++) {
                        double ds = pr[j] * (g[j] - dt) * sc;
                        for (int k = 0; k < dh; k++) {
                            DQ(s, i, h, k) += ds * KV(s, j, h, k);
                            DK(s, j, h, k) += ds * QV(s, i, h, k);
                        }
                    }
                }
        for (int k = 0; k < D; k++)
            for (int c = 0; c < D3; c++) {
                double v = 0;
                for (size_t r = 0; r < rows; r++)
                    v += a->x[r * D + k] * dq[r * D3 + c];
                dwq[(size_t)k * D3 + c] = v;
            }
        if (a->bq)
            for (int c = 0; c < D3; c++) {
                double v = 0;
                for (size_t r = 0; r < rows; r++)
                    v += dq[r * D3 + c];
                dbq[c] = v;
            }
        if (dx)
            for (size_t r = 0; r < rows; r++)
                for (int k = 0; k < D; k++) {
                    double v = 0;
                    for (int c = 0; c < D3; c++)
                        v += dq[r * D3 + c] * a->wq[(size_t)k * D3 + c];
                    dx[r * D + k] += v;
                }
        free(dC), free(dq), free(g);
    }
#undef QV
#undef KV
#undef VV
#undef KEEP
#undef DQ
#undef DK
#undef DV
#undef DCV
    free(qkv), free(P), free(C);
}

/* ====================================================== reference fd */

typedef struct afd {
    aref a;
    double *r, *y;
    size_t ny;
} afd;

static double afd_f(void *ctx)
{
    afd *c = ctx;
    ref_attn(&c->a, c->y, NULL, NULL, NULL, NULL, NULL, NULL);
    return tu_dot(c->r, c->y, c->ny);
}

typedef struct lfd {
    size_t rows;
    int D;
    double eps, *x, *g, *b, *r, *y;
} lfd;

static double lfd_f(void *ctx)
{
    lfd *c = ctx;
    ref_ln_forward(c->x, c->rows, c->D, c->g, c->b, c->eps, c->y);
    return tu_dot(c->r, c->y, c->rows * (size_t)c->D);
}

typedef struct efd {
    size_t n;
    int T, V, D;
    double *ids, *w, *pos, *r, *y;
} efd;

static double efd_f(void *ctx)
{
    efd *c = ctx;
    ref_emb_forward(c->ids, c->n, c->T, c->V, c->D, c->w, c->pos, c->y);
    return tu_dot(c->r, c->y, c->n * (size_t)c->T * c->D);
}

TEST(seq_ref_fd)
{
    ref_rng rng = {4242};
    /* attention: (n, T, D, H, causal, bias, dropout) */
    static const int ac[][7] = {{2, 3, 4, 2, 0, 1, 0}, {2, 4, 6, 3, 1, 1, 0}, {1, 5, 6, 2, 1, 0, 1},
                                {2, 3, 4, 1, 0, 1, 1}, {1, 1, 4, 2, 1, 1, 0}};
    for (size_t ci = 0; ci < sizeof ac / sizeof *ac; ci++) {
        int n = ac[ci][0], T = ac[ci][1], D = ac[ci][2], H = ac[ci][3], bias = ac[ci][5];
        size_t rows = (size_t)n * T, N = rows * D;
        afd c;
        memset(&c, 0, sizeof c);
        double *x = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3), *wq = tu_rnd_vec_nz(&rng, (size_t)D * 3 * D, -0.6, 0.6, 1e-3);
        double *bq = tu_rnd_vec_nz(&rng, 3 * (size_t)D, -0.3, 0.3, 1e-3),
               *wo = tu_rnd_vec_nz(&rng, (size_t)D * D, -0.6, 0.6, 1e-3);
        double *bo = tu_rnd_vec_nz(&rng, (size_t)D, -0.3, 0.3, 1e-3);
        double *keep = ac[ci][6] ? attn_keep_mask((size_t)n * H * T * T, 0.3f, 11, 5, 2) : NULL;
        c.a = (aref){n, T, D, H, ac[ci][4], x, wq, bias ? bq : NULL, wo, bias ? bo : NULL, keep};
        c.ny = N;
        c.r = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
        c.y = DVEC(N);
        double *dx = DVEC(N), *dwq = DVEC((size_t)D * 3 * D), *dbq = DVEC(3 * (size_t)D), *dwo = DVEC((size_t)D * D),
               *dbo = DVEC((size_t)D);
        ref_attn(&c.a, c.y, c.r, dx, dwq, dbq, dwo, dbo);
        double ex = tu_fd_rel_err(afd_f, &c, x, N, dx, FD_FLOOR),
               eq = tu_fd_rel_err(afd_f, &c, wq, (size_t)D * 3 * D, dwq, FD_FLOOR);
        double eo = tu_fd_rel_err(afd_f, &c, wo, (size_t)D * D, dwo, FD_FLOOR);
        double ebq = bias ? tu_fd_rel_err(afd_f, &c, bq, 3 * (size_t)D, dbq, FD_FLOOR) : 0;
        double ebo = bias ? tu_fd_rel_err(afd_f, &c, bo, (size_t)D, dbo, FD_FLOOR) : 0;
        double m = fmax(fmax(ex, eq), fmax(eo, fmax(ebq, ebo)));
        tu_note_err("fd.attention", m);
        CHECK(m < FD_TOL, "attention case %zu: fd rel err dx %.3g dWqkv %.3g dbqkv %.3g dWout %.3g dbout %.3g", ci,
              ex, eq, ebq, eo, ebo);
        free(x), free(wq), free(bq), free(wo), free(bo), free(keep), free(c.r), free(c.y), free(dx), free(dwq);
        free(dbq), free(dwo), free(dbo);
    }
    /* layernorm */
    static const int lc[][2] = {{5, 4}, {3, 7}, {1, 12}, {6, 2}};
    for (size_t ci = 0; ci < sizeof lc / sizeof *lc; ci++) {
        lfd c = {(size_t)lc[ci][0], lc[ci][1], 1e-3, 0, 0, 0, 0, 0};
        size_t N = c.rows * (size_t)c.D;
        c.x = tu_rnd_vec_nz(&rng, N, -2, 3, 1e-3);
        c.g = tu_rnd_vec_nz(&rng, (size_t)c.D, 0.5, 1.5, 1e-3);
        c.b = tu_rnd_vec_nz(&rng, (size_t)c.D, -1, 1, 1e-3);
        c.r = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
        c.y = DVEC(N);
        double *dx = DVEC(N), *dg = DVEC((size_t)c.D), *db = DVEC((size_t)c.D);
        ref_ln_backward(c.x, c.r, c.rows, c.D, c.g, c.eps, dx, dg, db);
        double ex = tu_fd_rel_err(lfd_f, &c, c.x, N, dx, FD_FLOOR),
               eg = tu_fd_rel_err(lfd_f, &c, c.g, (size_t)c.D, dg, FD_FLOOR),
               eb = tu_fd_rel_err(lfd_f, &c, c.b, (size_t)c.D, db, FD_FLOOR);
        tu_note_err("fd.layernorm", fmax(ex, fmax(eg, eb)));
        CHECK(ex < FD_TOL && eg < FD_TOL && eb < FD_TOL, "layernorm %zux%d: fd rel err dx %.3g dg %.3g db %.3g",
              c.rows, c.D, ex, eg, eb);
        free(c.x), free(c.g), free(c.b), free(c.r), free(c.y), free(dx), free(dg), free(db);
    }
    /* embedding (linear in its parameters; ids repeat) */
    for (int positional = 0; positional < 2; positional++) {
        efd c = {3, 5, 4, 3, 0, 0, 0, 0, 0};
        size_t N = c.n * (size_t)c.T * c.D;
        c.ids = rnd_ids(&rng, c.n * (size_t)c.T, c.V);
        c.w = tu_rnd_vec_nz(&rng, (size_t)c.V * c.D, -1, 1, 1e-3);
        c.pos = positional ? tu_rnd_vec_nz(&rng, (size_t)c.T * c.D, -1, 1, 1e-3) : NULL;
        c.r = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
        c.y = DVEC(N);
        double *dw = DVEC((size_t)c.V * c.D), *dp = DVEC((size_t)c.T * c.D);
        ref_emb_backward(c.ids, c.r, c.n, c.T, c.V, c.D, dw, positional ? dp : NULL);
        double ew = tu_fd_rel_err(efd_f, &c, c.w, (size_t)c.V * c.D, dw, FD_FLOOR);
        double ep = positional ? tu_fd_rel_err(efd_f, &c, c.pos, (size_t)c.T * c.D, dp, FD_FLOOR) : 0;
        tu_note_err("fd.embedding", fmax(ew, ep));
        CHECK(ew < FD_TOL && ep < FD_TOL, "embedding positional=%d: fd rel err dW %.3g dpos %.3g", positional, ew, ep);
        free(c.ids), free(c.w), free(c.pos), free(c.r), free(c.y), free(dw), free(dp);
    }
    return 0;
}

/* ======================================================== embedding */

typedef struct ecase {
    int n, maxb, T, V, D, positional, first, invalid;
} ecase;

static int emb_case(const ecase *c)
{
    NEED_DEV(d);
    char json[512], desc[160];
    snprintf(desc, sizeof desc, "embedding T=%d V=%d D=%d n=%d/%d positional=%d first=%d invalid=%d", c->T, c->V,
             c->D, c->n, c->maxb, c->positional, c->first, c->invalid);
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d]},\"layers\":[%s{\"type\":\"embedding\",\"input_dim\":%d,\"output_dim\":%d,"
             "\"positional\":%s}],\"loss\":\"mse\"}",
             c->T, c->first ? "" : PLACEHOLDER, c->V, c->D, c->positional ? "true" : "false");
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = nn_net_out(net);
    CHECK(L->out_shape.nd == 2 && L->out_shape.d[0] == c->T && L->out_shape.d[1] == c->D, "%s: output shape", desc);
    CHECK(L->nparam == 1 + c->positional && !strcmp(L->param[0].name, "weight") &&
              L->param[0].shape.d[0] == c->V && L->param[0].shape.d[1] == c->D &&
              (!c->positional || (!strcmp(L->param[1].name, "position") && L->param[1].shape.d[0] == c->T)),
          "%s: parameters", desc);
    CHECK(c->first ? L->dx[0] == NULL : L->dx[0] != NULL, "%s: dx", desc);
    size_t T = (size_t)c->T, D = (size_t)c->D, V = (size_t)c->V;
    size_t R = (size_t)c->n * T, maxR = (size_t)c->maxb * T, N = R * D, maxN = maxR * D;
    ref_rng rng = {7919ull * (uint64_t)c->V + 31ull * T + (uint64_t)c->n + 1000ull * (uint64_t)c->first};
    double *ids = rnd_ids(&rng, maxR, c->V);
    if (c->invalid) { /* out of range: zero vector, no gradient */
        ids[0] = (double)c->V;
        ids[R / 2] = -1;
        ids[R - 1] = 1e6;
    }
    double *w = tu_rnd_vec_nz(&rng, V * D, -1, 1, 1e-3),
           *pos = c->positional ? tu_rnd_vec_nz(&rng, T * D, -1, 1, 1e-3) : NULL;
    TRY(tu_upload(L->param[0].w, 0, w, V * D, &E));
    if (pos)
        TRY(tu_upload(L->param[1].w, 0, pos, T * D, &E));
    TRY(tu_upload(L->x[0], 0, ids, maxR, &E));
    TRY(nn_buf_fill(d, L->y, 0, maxN, SENT, &E));
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    double *y = DVEC(N), *yr = DVEC(N);
    TRY(tu_download(L->y, 0, y, N, &E));
    ref_emb_forward(ids, (size_t)c->n, c->T, c->V, c->D, w, pos, yr);
    double ef = tu_rel_err(y, yr, N);
    tu_note_err("embedding.forward", ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_sentinel_bad(L->y, N, maxN - N, &E);
    CHECK(bad < 0, "%s: forward wrote y beyond row %d (float %ld)", desc, c->n, bad);

    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    double *dy = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3), *dx0 = tu_rnd_vec_nz(&rng, R, -1, 1, 1e-3);
    TRY(tu_upload(L->dy, 0, dy, N, &E));
    if (L->dx[0])
        TRY(tu_upload(L->dx[0], 0, dx0, R, &E));
    TRY(L->type->backward(L, &run, &E));
    double *dw = DVEC(V * D), *dwr = DVEC(V * D), *dp = DVEC(T * D), *dpr = DVEC(T * D);
    ref_emb_backward(ids, dy, (size_t)c->n, c->T, c->V, c->D, dwr, dpr);
    TRY(tu_download(L->param[0].g, 0, dw, V * D, &E));
    double ew = tu_rel_err(dw, dwr, V * D), ep = 0;
    if (pos) {
        TRY(tu_download(L->param[1].g, 0, dp, T * D, &E));
        ep = tu_rel_err(dp, dpr, T * D);
    }
    tu_note_err("embedding.backward", fmax(ew, ep));
    CHECK(ew < TOL && ep < TOL, "%s: backward rel err dW %.3g dpos %.3g", desc, ew, ep);
    if (L->dx[0]) { /* no gradient flows to the ids: dx left as it was */
        double *dx = DVEC(maxR);
        TRY(tu_download(L->dx[0], 0, dx, maxR, &E));
        CHECK(tu_rel_err(dx, dx0, R) == 0, "%s: backward changed dx", desc);
        bad = -1;
        for (size_t i = R; i < maxR && bad < 0; i++)
            if (dx[i] != SENT)
                bad = (long)i;
        CHECK(bad < 0, "%s: backward wrote dx at %ld", desc, bad);
        free(dx);
    }
    free(ids), free(w), free(pos), free(y), free(yr), free(dy), free(dx0), free(dw), free(dwr), free(dp), free(dpr);
    tu_net_free(&t);
    return 0;
}

TEST(seq_embedding)
{
    const ecase cs[] = {
        {3, 4, 7, 5, 6, 0, 1, 0},  {3, 4, 7, 5, 6, 1, 1, 0},   {2, 2, 1, 37, 4, 1, 0, 0},
        {5, 7, 3, 17, 12, 1, 0, 1}, {1, 3, 9, 11, 3, 0, 0, 1}, {4, 6, 16, 29, 33, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (emb_case(&cs[i]))
            return 1;
    return 0;
}

/* "input_dim": "vocab" takes the data's vocabulary size; the initialisation
 * is N(0, 1), PyTorch's nn.Embedding (test_layers.c: init_torch_sequence
 * checks "he" and "torch"). */
TEST(seq_embedding_vocab)
{
    const char *json = "{\"input\":{\"shape\":[6]},\"layers\":[{\"type\":\"embedding\",\"input_dim\":\"vocab\","
                       "\"output_dim\":32,\"positional\":true}],\"loss\":\"mse\"}";
    int r = tu_build_only(json, 0, &E);
    CHECK(r == NN_EDATA && strstr(E.msg, "layers[0].input_dim") && strstr(E.msg, "text data"),
          "without a vocabulary: %d '%s'", r, E.msg);
    NEED_DEV(d);
    (void)d;
    tu_net t;
    TRY(tu_net_make_vocab(&t, json, 2, 0, 211, &E));
    nn_layer *L = nn_net_out(&t.net);
    CHECK(L->param[0].shape.d[0] == 211 && L->param[0].shape.d[1] == 32, "weight shape [%d, %d]",
          L->param[0].shape.d[0], L->param[0].shape.d[1]);
    CHECK(L->param[0].init == NN_INIT_NORMAL && L->param[1].init == NN_INIT_NORMAL, "initialisers");
    TRY(nn_net_init_params(&t.net, 3, &E));
    size_t nw = 211 * 32;
    double *w = DVEC(nw);
    TRY(tu_download(L->param[0].w, 0, w, nw, &E));
    double m = 0, q = 0;
    for (size_t i = 0; i < nw; i++)
        m += w[i], q += w[i] * w[i];
    m /= (double)nw;
    double sd = sqrt(q / (double)nw - m * m), want = 1.0;
    CHECK(fabs(m) < 0.08 * want && fabs(sd - want) < 0.1 * want, "init mean %.4f std %.4f (want 0, %.4f)", m, sd, want);
    free(w);
    tu_net_free(&t);
    return 0;
}

/* ======================================================== layernorm */

typedef struct lcase {
    int nd, shape[3], n, maxb;
    double eps; /* < 0: default */
    int first;
} lcase;

static int ln_case(const lcase *c)
{
    NEED_DEV(d);
    char sh[64] = "", keys[64] = "", json[512], desc[160];
    size_t per = 1;
    for (int i = 0; i < c->nd; i++) {
        snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%d", i ? "," : "", c->shape[i]);
        per *= (size_t)c->shape[i];
    }
    if (c->eps >= 0)
        snprintf(keys, sizeof keys, ",\"eps\":%g", c->eps);
    double eps = c->eps >= 0 ? c->eps : 1e-5;
    snprintf(desc, sizeof desc, "layernorm [%s] n=%d/%d%s first=%d", sh, c->n, c->maxb, keys, c->first);
    snprintf(json, sizeof json, "{\"input\":{\"shape\":[%s]},\"layers\":[%s{\"type\":\"layernorm\"%s}],\"loss\":\"mse\"}",
             sh, c->first ? "" : PLACEHOLDER, keys);
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *L = nn_net_out(net);
    int D = c->shape[c->nd - 1];
    size_t Dz = (size_t)D, N = (size_t)c->n * per, maxN = (size_t)c->maxb * per, rows = N / Dz;
    CHECK(L->nparam == 2 && !strcmp(L->param[0].name, "weight") && !strcmp(L->param[1].name, "bias") &&
              L->param[0].n == Dz && L->param[0].init == NN_INIT_ONE && L->param[1].init == NN_INIT_ZERO,
          "%s: parameters", desc);
    ref_rng rng = {1000003ull * (uint64_t)c->n + 101ull * per + (uint64_t)c->first};
    double *g = tu_rnd_vec_nz(&rng, Dz, 0.5, 1.5, 1e-3), *b = tu_rnd_vec_nz(&rng, Dz, -1, 1, 1e-3),
           *x = tu_rnd_vec_nz(&rng, maxN, -1, 1, 1e-3);
    for (size_t i = 0; i < maxN; i++) /* row offsets and scales */
        x[i] = (float)(x[i] * (1 + (double)((i / Dz) % 3)) + 2.0 - (double)((i / Dz) % 5));
    TRY(tu_upload(L->param[0].w, 0, g, Dz, &E));
    TRY(tu_upload(L->param[1].w, 0, b, Dz, &E));
    TRY(nn_buf_fill(d, L->y, 0, maxN, SENT, &E));
    TRY(tu_upload(L->x[0], 0, x, maxN, &E));
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    double *y = DVEC(N), *yr = DVEC(N);
    TRY(tu_download(L->y, 0, y, N, &E));
    ref_ln_forward(x, rows, D, g, b, eps, yr);
    double ef = tu_rel_err(y, yr, N);
    tu_note_err("layernorm.forward", ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_sentinel_bad(L->y, N, maxN - N, &E);
    CHECK(bad < 0, "%s: forward wrote y beyond row %d (float %ld)", desc, c->n, bad);
    /* inference: the same formula */
    run.train = 0;
    TRY(L->type->forward(L, &run, &E));
    TRY(tu_download(L->y, 0, y, N, &E));
    CHECK(tu_rel_err(y, yr, N) < TOL, "%s: eval forward differs", desc);
    run.train = 1;

    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    double *dy = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3), *dx0 = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3),
           *dxr = tu_dup_vec(dx0, N);
    TRY(tu_upload(L->dy, 0, dy, N, &E));
    if (L->dx[0])
        TRY(tu_upload(L->dx[0], 0, dx0, N, &E));
    TRY(L->type->backward(L, &run, &E));
    double *dx = DVEC(N), *dg = DVEC(Dz), *db = DVEC(Dz), *dgr = DVEC(Dz), *dbr = DVEC(Dz);
    ref_ln_backward(x, dy, rows, D, g, eps, dxr, dgr, dbr);
    TRY(tu_download(L->param[0].g, 0, dg, Dz, &E));
    TRY(tu_download(L->param[1].g, 0, db, Dz, &E));
    double ex = 0, eg = tu_rel_err(dg, dgr, Dz), eb = tu_rel_err(db, dbr, Dz);
    if (L->dx[0]) {
        TRY(tu_download(L->dx[0], 0, dx, N, &E));
        for (size_t i = 0; i < N; i++) /* compare the deltas */
            dx[i] -= dx0[i], dxr[i] -= dx0[i];
        ex = tu_rel_err(dx, dxr, N);
        bad = tu_sentinel_bad(L->dx[0], N, maxN - N, &E);
        CHECK(bad < 0, "%s: backward wrote dx beyond row %d (float %ld)", desc, c->n, bad);
    }
    tu_note_err("layernorm.backward", fmax(ex, fmax(eg, eb)));
    CHECK(ex < TOL && eg < TOL && eb < TOL, "%s: backward rel err dx %.3g dweight %.3g dbias %.3g", desc, ex, eg,
          eb);
    double *dyb = DVEC(N);
    TRY(tu_download(L->dy, 0, dyb, N, &E));
    CHECK(tu_rel_err(dyb, dy, N) == 0, "%s: backward changed dy", desc);
    free(g), free(b), free(x), free(y), free(yr), free(dy), free(dx0), free(dxr), free(dx), free(dg), free(db);
    free(dgr), free(dbr), free(dyb);
    tu_net_free(&t);
    return 0;
}

TEST(seq_layernorm)
{
    const lcase cs[] = {
        {2, {7, 6}, 3, 4, -1, 0},  {2, {3, 12}, 5, 5, 1e-3, 0}, {1, {4}, 6, 9, -1, 0},  {2, {1, 4}, 2, 3, -1, 1},
        {3, {2, 3, 5}, 2, 3, -1, 0}, {2, {5, 33}, 4, 6, -1, 0}, {2, {3, 130}, 3, 3, -1, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        if (ln_case(&cs[i]))
            return 1;
    return 0;
}

/* ======================================================== attention */

typedef struct acase {
    int n, maxb, T, D, H, causal, bias;
    double rate; /* dropout */
} acase;

typedef struct anet {
    tu_net t;
    nn_layer *L;
    size_t N, maxN, D;
    double *x, *wq, *bq, *wo, *bo;
} anet;

static void anet_free(anet *a)
{
    free(a->x), free(a->wq), free(a->bq), free(a->wo), free(a->bo);
    tu_net_free(&a->t);
}

/* placeholder -> attention, random parameters and input uploaded. */
static int anet_make(anet *a, const acase *c, ref_rng *rng)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d,%d]},\"layers\":[" PLACEHOLDER
             "{\"type\":\"attention\",\"heads\":%d,\"causal\":%s,\"use_bias\":%s,\"dropout\":%g}],\"loss\":\"mse\"}",
             c->T, c->D, c->H, c->causal ? "true" : "false", c->bias ? "true" : "false", c->rate);
    memset(a, 0, sizeof *a);
    TRY(tu_net_make(&a->t, json, c->maxb, 1, &E));
    nn_layer *L = a->L = nn_net_out(&a->t.net);
    size_t D = a->D = (size_t)c->D, per = (size_t)c->T * D;
    a->N = (size_t)c->n * per;
    a->maxN = (size_t)c->maxb * per;
    CHECK(L->nparam == (c->bias ? 4 : 2), "%d parameters", L->nparam);
    int iw = 0, ib = c->bias ? 1 : -1, io = c->bias ? 2 : 1, ibo = c->bias ? 3 : -1;
    CHECK(!strcmp(L->param[iw].name, "weight_qkv") && L->param[iw].shape.d[0] == c->D &&
              L->param[iw].shape.d[1] == 3 * c->D && L->param[iw].init == NN_INIT_GLOROT &&
              !strcmp(L->param[io].name, "weight_out") && L->param[io].n == D * D &&
              L->param[io].init == NN_INIT_GLOROT,
          "weight parameters");
    CHECK(!c->bias || (!strcmp(L->param[ib].name, "bias_qkv") && L->param[ib].n == 3 * D &&
                       !strcmp(L->param[ibo].name, "bias_out") && L->param[ibo].n == D &&
                       L->param[ib].init == NN_INIT_ZERO && L->param[ibo].init == NN_INIT_ZERO),
          "bias parameters");
    CHECK(L->scratch == 7 * per + 2 * (size_t)c->H * c->T * c->T, "scratch %zu floats per sample", L->scratch);
    a->x = tu_rnd_vec_nz(rng, a->maxN, -1, 1, 1e-3);
    a->wq = tu_rnd_vec_nz(rng, D * 3 * D, -0.6, 0.6, 1e-3);
    a->wo = tu_rnd_vec_nz(rng, D * D, -0.6, 0.6, 1e-3);
    TRY(tu_upload(L->param[iw].w, 0, a->wq, D * 3 * D, &E));
    TRY(tu_upload(L->param[io].w, 0, a->wo, D * D, &E));
    if (c->bias) {
        a->bq = tu_rnd_vec_nz(rng, 3 * D, -0.3, 0.3, 1e-3);
        a->bo = tu_rnd_vec_nz(rng, D, -0.3, 0.3, 1e-3);
        TRY(tu_upload(L->param[ib].w, 0, a->bq, 3 * D, &E));
        TRY(tu_upload(L->param[ibo].w, 0, a->bo, D, &E));
    }
    TRY(tu_upload(L->x[0], 0, a->x, a->maxN, &E));
    return 0;
}

/* Forward (y against the reference, sentinel rows) and backward (dx delta,
 * every parameter gradient, sentinel rows, dy unchanged) for run; keep: the
 * dropout multipliers the reference uses (NULL: none). */
static int attn_check(anet *a, const acase *c, const nn_run *run, const double *keep, ref_rng *rng, const char *desc,
                      const char *tag)
{
    nn_dev *d = run->dev;
    nn_layer *L = a->L;
    nn_net *net = &a->t.net;
    size_t N = a->N, maxN = a->maxN, D = a->D;
    char op[48];
    TRY(nn_buf_fill(d, L->y, 0, maxN, SENT, &E));
    TRY(L->type->forward(L, run, &E));
    double *y = DVEC(N), *yr = DVEC(N);
    TRY(tu_download(L->y, 0, y, N, &E));
    aref ar = {c->n, c->T, c->D, c->H, c->causal, a->x, a->wq, a->bq, a->wo, a->bo, keep};
    ref_attn(&ar, yr, NULL, NULL, NULL, NULL, NULL, NULL);
    double ef = tu_rel_err(y, yr, N);
    snprintf(op, sizeof op, "attention.forward%s", tag);
    tu_note_err(op, ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_sentinel_bad(L->y, N, maxN - N, &E);
    CHECK(bad < 0, "%s: forward wrote y beyond row %d (float %ld)", desc, c->n, bad);

    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    double *dy = tu_rnd_vec_nz(rng, N, -1, 1, 1e-3), *dx0 = tu_rnd_vec_nz(rng, N, -1, 1, 1e-3),
           *dxr = tu_dup_vec(dx0, N);
    TRY(tu_upload(L->dy, 0, dy, N, &E));
    TRY(tu_upload(L->dx[0], 0, dx0, N, &E));
    TRY(L->type->backward(L, run, &E));
    double *dwq = DVEC(D * 3 * D), *dbq = DVEC(3 * D), *dwo = DVEC(D * D), *dbo = DVEC(D);
    ref_attn(&ar, yr, dy, dxr, dwq, dbq, dwo, dbo);
    double *dx = DVEC(N), *g = DVEC(D * 3 * D);
    TRY(tu_download(L->dx[0], 0, dx, N, &E));
    for (size_t i = 0; i < N; i++)
        dx[i] -= dx0[i], dxr[i] -= dx0[i];
    double ex = tu_rel_err(dx, dxr, N), e4[4] = {0, 0, 0, 0};
    const double *want[4] = {dwq, dbq, dwo, dbo};
    for (int p = 0, k = 0; p < 4; p++) {
        if (!c->bias && (p == 1 || p == 3))
            continue;
        size_t cnt = L->param[k].n;
        TRY(tu_download(L->param[k].g, 0, g, cnt, &E));
        e4[p] = tu_rel_err(g, want[p], cnt);
        k++;
    }
    snprintf(op, sizeof op, "attention.backward%s", tag);
    tu_note_err(op, fmax(fmax(ex, e4[0]), fmax(fmax(e4[1], e4[2]), e4[3])));
    CHECK(ex < TOL && e4[0] < TOL && e4[1] < TOL && e4[2] < TOL && e4[3] < TOL,
          "%s: backward rel err dx %.3g dWqkv %.3g dbqkv %.3g dWout %.3g dbout %.3g", desc, ex, e4[0], e4[1], e4[2],
          e4[3]);
    bad = tu_sentinel_bad(L->dx[0], N, maxN - N, &E);
    CHECK(bad < 0, "%s: backward wrote dx beyond row %d (float %ld)", desc, c->n, bad);
    double *dyb = DVEC(N);
    TRY(tu_download(L->dy, 0, dyb, N, &E));
    CHECK(tu_rel_err(dyb, dy, N) == 0, "%s: backward changed dy", desc);
    free(y), free(yr), free(dy), free(dx0), free(dxr), free(dwq), free(dbq), free(dwo), free(dbo), free(dx), free(g);
    free(dyb);
    return 0;
}

static void acase_desc(char *b, size_t n, const acase *c)
{
    snprintf(b, n, "attention T=%d D=%d heads=%d n=%d/%d causal=%d bias=%d dropout=%g", c->T, c->D, c->H, c->n,
             c->maxb, c->causal, c->bias, c->rate);
}

TEST(seq_attention)
{
    NEED_DEV(d);
    const acase cs[] = {
        {2, 3, 1, 4, 1, 0, 1, 0},  {3, 4, 3, 6, 2, 1, 1, 0},  {2, 2, 7, 12, 3, 1, 1, 0}, {1, 3, 7, 6, 3, 0, 0, 0},
        {4, 5, 3, 12, 2, 0, 1, 0}, {3, 3, 7, 4, 2, 1, 0, 0},  {2, 4, 5, 6, 1, 1, 1, 0},  {1, 1, 1, 6, 3, 1, 1, 0},
        {2, 3, 7, 4, 1, 0, 1, 0},  {3, 5, 17, 12, 3, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char desc[160];
        acase_desc(desc, sizeof desc, &cs[i]);
        ref_rng rng = {97ull * i + 5};
        anet a;
        if (anet_make(&a, &cs[i], &rng))
            return 1;
        nn_run run = {d, cs[i].n, 1, 7, 3};
        int r = attn_check(&a, &cs[i], &run, NULL, &rng, desc, "");
        if (!r) { /* inference gives the same (no dropout here) */
            run.train = 0;
            r = attn_check(&a, &cs[i], &run, NULL, &rng, desc, "");
        }
        anet_free(&a);
        if (r)
            return 1;
    }
    return 0;
}

TEST(seq_attention_dropout)
{
    NEED_DEV(d);
    const acase cs[] = {
        {3, 4, 7, 6, 2, 0, 1, 0.3}, {2, 3, 5, 12, 3, 1, 1, 0.5}, {2, 2, 3, 4, 1, 1, 0, 0.2},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        const acase *c = &cs[i];
        char desc[160];
        acase_desc(desc, sizeof desc, c);
        ref_rng rng = {1234567ull + i};
        anet a;
        if (anet_make(&a, c, &rng))
            return 1;
        nn_layer *L = a.L;
        size_t N = a.N, cnt = (size_t)c->n * c->H * c->T * c->T;
        uint64_t seed = 0x123456789abcull + i, step = 17 + i;
        nn_run run = {d, c->n, 1, seed, step};
        double *keep = attn_keep_mask(cnt, (float)c->rate, seed, step, L->index);
        size_t dropped = 0;
        for (size_t k = 0; k < cnt; k++)
            dropped += keep[k] == 0;
        CHECK(dropped > 0 && dropped < cnt, "%s: the mask drops %zu of %zu", desc, dropped, cnt);
        /* training: forward and backward with the hash mask */
        if (attn_check(&a, c, &run, keep, &rng, desc, ".dropout"))
            return 1;
        /* determinism: the same (seed, step) gives the same output, another step another */
        double *y1 = DVEC(N), *y2 = DVEC(N), *y3 = DVEC(N);
        TRY(L->type->forward(L, &run, &E));
        TRY(tu_download(L->y, 0, y1, N, &E));
        TRY(L->type->forward(L, &run, &E));
        TRY(tu_download(L->y, 0, y2, N, &E));
        CHECK(tu_rel_err(y1, y2, N) == 0, "%s: two forwards of the same step differ", desc);
        nn_run next = run;
        next.step++;
        TRY(L->type->forward(L, &next, &E));
        TRY(tu_download(L->y, 0, y3, N, &E));
        CHECK(tu_rel_err(y3, y1, N) > 1e-3, "%s: the mask does not change with the step", desc);
        /* inference: no dropout */
        nn_run ev = run;
        ev.train = 0;
        if (attn_check(&a, c, &ev, NULL, &rng, desc, ".eval"))
            return 1;
        TRY(tu_download(L->y, 0, y3, N, &E));
        CHECK(tu_rel_err(y3, y1, N) > 1e-3, "%s: eval output equals the training output", desc);
        free(keep), free(y1), free(y2), free(y3);
        anet_free(&a);
    }
    return 0;
}

/* max |a[rows t0..] - b[...]| over positions [p0, p1) of [n, T, D] outputs. */
static double pos_diff(const double *a, const double *b, int n, int T, int D, int p0, int p1)
{
    double m = 0;
    for (int s = 0; s < n; s++)
        for (int t = p0; t < p1; t++)
            for (int j = 0; j < D; j++) {
                size_t i = ((size_t)s * T + t) * D + j;
                m = fmax(m, fabs(a[i] - b[i]));
            }
    return m;
}

/* Causality: perturbing the input at position t leaves every output at
 * positions < t unchanged and changes those at t. Attention alone (with
 * dropout in training: the mask of a masked position is irrelevant), then
 * embedding(positional) -> attention -> layernorm -> attention through
 * nn_net_forward with the token ids changed. */
TEST(seq_causal)
{
    NEED_DEV(d);
    {
        const acase c = {3, 3, 7, 6, 2, 1, 1, 0.25};
        ref_rng rng = {8080};
        anet a;
        if (anet_make(&a, &c, &rng))
            return 1;
        nn_layer *L = a.L;
        size_t N = a.N;
        double *y0 = DVEC(N), *y1 = DVEC(N), *x = tu_dup_vec(a.x, N);
        for (int train = 0; train < 2; train++) {
            nn_run run = {d, c.n, train, 99, 4};
            TRY(tu_upload(L->x[0], 0, a.x, N, &E));
            TRY(L->type->forward(L, &run, &E));
            TRY(tu_download(L->y, 0, y0, N, &E));
            for (int t = 0; t < c.T; t++) {
                memcpy(x, a.x, N * sizeof *x);
                for (int s = 0; s < c.n; s++)
                    for (int j = 0; j < c.D; j++)
                        x[((size_t)s * c.T + t) * c.D + j] += 0.5;
                TRY(tu_upload(L->x[0], 0, x, N, &E));
                TRY(L->type->forward(L, &run, &E));
                TRY(tu_download(L->y, 0, y1, N, &E));
                double before = pos_diff(y0, y1, c.n, c.T, c.D, 0, t), at = pos_diff(y0, y1, c.n, c.T, c.D, t, t + 1);
                tu_note_err("attention.causal.leak", before);
                CHECK(before == 0, "train=%d: perturbing position %d changed outputs before it by %.3g", train, t,
                      before);
                CHECK(at > 1e-3, "train=%d: perturbing position %d did not change its output (%.3g)", train, t, at);
            }
        }
        free(y0), free(y1), free(x);
        anet_free(&a);
    }
    {
        enum { T = 9, V = 13, D = 12, n = 2 };
        const char *json = "{\"input\":{\"shape\":[9]},\"layers\":["
                           "{\"type\":\"embedding\",\"input_dim\":13,\"output_dim\":12,\"positional\":true},"
                           "{\"type\":\"attention\",\"heads\":3,\"causal\":true},{\"type\":\"layernorm\"},"
                           "{\"type\":\"attention\",\"heads\":2,\"causal\":true}],\"loss\":\"mse\"}";
        tu_net t;
        TRY(tu_net_make(&t, json, n, 0, &E));
        TRY(nn_net_init_params(&t.net, 17, &E));
        ref_rng rng = {31337};
        double *ids = rnd_ids(&rng, n * T, V), *ids2 = DVEC(n * T), *y0 = DVEC(n * T * D), *y1 = DVEC(n * T * D);
        nn_run run = {d, n, 0, 5, 6};
        TRY(tu_upload(t.net.x_in, 0, ids, n * T, &E));
        TRY(nn_net_forward(&t.net, &run, &E));
        TRY(tu_download(nn_net_out(&t.net)->y, 0, y0, n * T * D, &E));
        for (int p = 0; p < T; p++) {
            memcpy(ids2, ids, n * T * sizeof *ids);
            for (int s = 0; s < n; s++)
                ids2[s * T + p] = fmod(ids[s * T + p] + 1 + s, V);
            TRY(tu_upload(t.net.x_in, 0, ids2, n * T, &E));
            TRY(nn_net_forward(&t.net, &run, &E));
            TRY(tu_download(nn_net_out(&t.net)->y, 0, y1, n * T * D, &E));
            double before = pos_diff(y0, y1, n, T, D, 0, p), at = pos_diff(y0, y1, n, T, D, p, T);
            tu_note_err("stack.causal.leak", before);
            CHECK(before == 0, "stack: changing token %d changed outputs before it by %.3g", p, before);
            CHECK(at > 1e-4, "stack: changing token %d changed nothing from there on (%.3g)", p, at);
        }
        free(ids), free(ids2), free(y0), free(y1);
        tu_net_free(&t);
    }
    return 0;
}

TEST(seq_key_errors)
{
    static const struct {
        const char *shape, *layer, *want;
    } cs[] = {
        {"[5,6]", "{\"type\":\"attention\",\"heads\":4}", "layers[0].heads: 6 features cannot be split into 4 heads"},
        {"[5,6]", "{\"type\":\"attention\"}", "layers[0].heads: required key is missing"},
        {"[30]", "{\"type\":\"attention\",\"heads\":2}", "attention needs a [sequence_length, features] input"},
        {"[5,6]", "{\"type\":\"attention\",\"heads\":2,\"dropout\":1.5}", "layers[0].dropout: 1.5 is out of range"},
        {"[5,6]", "{\"type\":\"attention\",\"heads\":2,\"causal\":1}", "layers[0].causal: expected true or false"},
        {"[5,6]", "{\"type\":\"attention\",\"heads\":2,\"head\":2}", "did you mean"},
        {"[5]", "{\"type\":\"embedding\",\"output_dim\":4}", "layers[0].input_dim: required key is missing"},
        {"[5]", "{\"type\":\"embedding\",\"input_dim\":4}", "layers[0].output_dim: required key is missing"},
        {"[5]", "{\"type\":\"embedding\",\"input_dim\":\"words\",\"output_dim\":4}", "expected an integer or \"vocab\""},
        {"[5,2]", "{\"type\":\"embedding\",\"input_dim\":4,\"output_dim\":4}", "needs a [sequence_length] input"},
        {"[5,2]", "{\"type\":\"layernorm\",\"eps\":0}", "layers[0].eps: 0 is out of range"},
        {"[5,2]", "{\"type\":\"layernorm\",\"momentum\":0.1}", "unknown key 'momentum'"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"input\":{\"shape\":%s},\"layers\":[%s],\"loss\":\"mse\"}", cs[i].shape,
                 cs[i].layer);
        int r = tu_build_only(json, 0, &E);
        CHECK(r == NN_EDATA && strstr(E.msg, cs[i].want), "%s: got %d '%s', want '%s'", cs[i].layer, r, E.msg,
              cs[i].want);
    }
    return 0;
}

/* embedding(positional) -> attention(causal) -> layernorm -> flatten ->
 * dense -> softmax with cross-entropy learns a toy task through the real
 * kernels: the label is a function of two tokens (first and last), so the
 * last position must attend to the first. */
TEST(seq_train_toy)
{
    NEED_DEV(d);
    enum { N = 64, T = 8, V = 6, K = 3, STEPS = 60 };
    const char *json = "{\"input\":{\"shape\":[8]},\"layers\":["
                       "{\"type\":\"embedding\",\"input_dim\":6,\"output_dim\":16,\"positional\":true},"
                       "{\"type\":\"attention\",\"heads\":2,\"causal\":true,\"dropout\":0.1},"
                       "{\"type\":\"layernorm\"},{\"type\":\"flatten\"},"
                       "{\"type\":\"dense\",\"units\":3},{\"type\":\"softmax\"}],"
                       "\"loss\":\"cross_entropy\",\"optimizer\":{\"type\":\"adam\",\"lr\":0.01}}";
    double t0 = nn_now();
    tu_net t;
    TRY(tu_net_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    ref_rng rng = {2024};
    double *ids = rnd_ids(&rng, N * T, V);
    int lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (int)(ids[i * T] + ids[i * T + T - 1]) % K;
    double l0, l1, a1;
    TRY(tu_train(d, &t, ids, N * T, lab, N, STEPS, &l0, &l1, &a1, &E));
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  seq_train_toy: loss %.4f -> %.4f, accuracy %.3f, %d steps in %.2f s\n", l0, l1, a1, STEPS,
                nn_now() - t0);
    CHECK(isfinite(l1) && l1 < l0 / 5, "loss %.4f -> %.4f: not reduced 5x in %d steps", l0, l1, STEPS);
    CHECK(a1 >= 0.95, "accuracy %.3f after training", a1);
    free(ids);
    tu_net_free(&t);
    return 0;
}

/* Timings at the target size (V=256, T=128, D=128, n=64, 4 heads); only with
 * NN_TEST_SEQ_BENCH=1. */
TEST(seq_bench)
{
    if (!getenv("NN_TEST_SEQ_BENCH"))
        return 0;
    NEED_DEV(d);
    enum { N = 64, T = 128, V = 256, D = 128, REPS = 3 };
    const char *json = "{\"input\":{\"shape\":[128]},\"layers\":["
                       "{\"type\":\"embedding\",\"input_dim\":256,\"output_dim\":128,\"positional\":true},"
                       "{\"type\":\"attention\",\"heads\":4,\"causal\":true,\"dropout\":0.1},"
                       "{\"type\":\"layernorm\"}],\"loss\":\"mse\"}";
    tu_net t;
    TRY(tu_net_make(&t, json, N, 1, &E));
    TRY(nn_net_init_params(&t.net, 1, &E));
    ref_rng rng = {5};
    double *ids = rnd_ids(&rng, N * T, V);
    TRY(tu_upload(t.net.x_in, 0, ids, N * T, &E));
    TRY(nn_buf_fill(d, t.net.garena, 0, t.net.garena_bytes / sizeof(float), 0.01f, &E));
    double best[3][2];
    for (int l = 0; l < 3; l++)
        best[l][0] = best[l][1] = 1e9;
    for (int rep = 0; rep < REPS + 1; rep++) {
        nn_run run = {d, N, 1, 3, (uint64_t)rep};
        for (int l = 0; l < 3; l++) {
            nn_layer *L = &t.net.L[l];
            TRY(nn_dev_finish(d, &E));
            double a = nn_now();
            TRY(L->type->forward(L, &run, &E));
            TRY(nn_dev_finish(d, &E));
            double b = nn_now();
            if (rep && b - a < best[l][0])
                best[l][0] = b - a;
        }
        for (int l = 2; l >= 0; l--) {
            nn_layer *L = &t.net.L[l];
            TRY(nn_dev_finish(d, &E));
            double a = nn_now();
            TRY(L->type->backward(L, &run, &E));
            TRY(nn_dev_finish(d, &E));
            double b = nn_now();
            if (rep && b - a < best[l][1])
                best[l][1] = b - a;
        }
    }
    for (int l = 0; l < 3; l++)
        fprintf(stderr, "  seq_bench %-10s forward %7.2f ms  backward %7.2f ms  (scratch %zu floats/sample)\n",
                t.net.L[l].type->name, best[l][0] * 1e3, best[l][1] * 1e3, t.net.L[l].scratch);
    free(ids);
    tu_net_free(&t);
    return 0;
}
