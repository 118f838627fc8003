/* test_layers.c - every kernel against the double-precision references of
 * ref.c, through the real code paths (nn_spec_parse -> nn_net_build ->
 * nn_net_alloc -> the layer's forward/backward, nn_loss_run, nn_optim_step,
 * nn_devdata_batch), plus finite-difference checks of the references.
 *
 *   ref_*    finite differences of the references (host only, double)
 *   layer_*  dense / activations / softmax / dropout / whole nets
 *   loss_*   cross-entropy (fused and logits), bce (probabilities and logits), mse, metrics_accum
 *   optim_*  sgd (momentum, nesterov, weight decay), adam, adamw over several steps
 *   gather_* batch assembly with normalisation
 *
 * Device tests open the device once (lazily) and share it. Inputs are random
 * (never zero parameters), shapes are odd, batches are partial (n < max
 * batch), dx is pre-filled to check accumulation, and every buffer the op may
 * not write is pre-filled with a sentinel that must survive.
 * NN_TEST_VERBOSE=1 prints the largest error seen per op to stderr. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/batch.h"
#include "device.h"
#include "loss.h"
#include "net.h"
#include "optim.h"
#include "ref.h"
#include "spec.h"
#include "tutil.h"
#include "util.h"

#define TOL 1e-4      /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-8 /* the smallest largest |gradient| those differences are relative to */

/* ------------------------------------------------------------- plumbing */

static nn_err E;

typedef struct span {
    size_t off, n; /* floats */
} span;

/* First index of buf[0..nf) outside every span that does not hold SENT; -1 if none. */
static long clobbered(const float *buf, size_t nf, const span *ok, int nok)
{
    for (size_t i = 0; i < nf; i++) {
        int allowed = 0;
        for (int k = 0; k < nok && !allowed; k++)
            allowed = i >= ok[k].off && i < ok[k].off + ok[k].n;
        if (!allowed && buf[i] != SENT)
            return (long)i;
    }
    return -1;
}

/* ------------------------------------------------- finite differences */

typedef struct dense_fd {
    size_t rows, in, units;
    int act;
    double *x, *W, *b, *r, *y;
} dense_fd;

static double dense_fd_f(void *ctx)
{
    dense_fd *c = ctx;
    ref_dense_forward(c->x, c->W, c->b, c->rows, c->in, c->units, c->act, c->y);
    double s = 0;
    for (size_t i = 0; i < c->rows * c->units; i++)
        s += c->r[i] * c->y[i];
    return s;
}

TEST(ref_dense_fd)
{
    ref_rng rng;
    ref_rng_seed(&rng, 11);
    const size_t shapes[][3] = {{3, 4, 5}, {1, 7, 1}, {5, 1, 3}};
    for (int si = 0; si < 3; si++)
        for (int act = 0; act < 4; act++) {
            dense_fd c = {shapes[si][0], shapes[si][1], shapes[si][2], act, NULL, NULL, NULL, NULL, NULL};
            size_t R = c.rows, I = c.in, U = c.units;
            c.x = tu_rnd_vec(&rng, R * I, -1, 1);
            c.W = tu_rnd_vec(&rng, I * U, -1, 1);
            c.b = tu_rnd_vec(&rng, U, -1, 1);
            c.r = tu_rnd_vec(&rng, R * U, -1, 1);
            c.y = tu_xmalloc(R * U * sizeof(double));
            double *dx = tu_xmalloc(R * I * sizeof(double)), *dW = tu_xmalloc(I * U * sizeof(double)),
                   *db = tu_xmalloc(U * sizeof(double));
            dense_fd_f(&c);
            ref_dense_backward(c.x, c.W, c.y, c.r, R, I, U, act, dx, dW, db);
            double ex = tu_fd_rel_err(dense_fd_f, &c, c.x, R * I, dx, FD_FLOOR);
            double ew = tu_fd_rel_err(dense_fd_f, &c, c.W, I * U, dW, FD_FLOOR);
            double eb = tu_fd_rel_err(dense_fd_f, &c, c.b, U, db, FD_FLOOR);
            tu_note_err("fd.dense", fmax(ex, fmax(ew, eb)));
            CHECK(ex < FD_TOL && ew < FD_TOL && eb < FD_TOL,
                  "dense %zux%zu->%zu %s: fd rel err dx %.3g dW %.3g db %.3g", R, I, U, tu_act_str(act), ex, ew, eb);
            free(c.x), free(c.W), free(c.b), free(c.r), free(c.y), free(dx), free(dW), free(db);
        }
    return 0;
}

typedef struct unary_fd {
    size_t rows, k;
    int act; /* -1: softmax */
    double *x, *r, *y;
} unary_fd;

static double unary_fd_f(void *ctx)
{
    unary_fd *c = ctx;
    size_t n = c->rows * c->k;
    if (c->act < 0)
        ref_softmax_forward(c->x, c->y, c->rows, c->k);
    else
        ref_act_forward(c->x, c->y, n, c->act);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += c->r[i] * c->y[i];
    return s;
}

TEST(ref_act_softmax_fd)
{
    ref_rng rng;
    ref_rng_seed(&rng, 12);
    for (int act = -1; act < 4; act++)
        for (size_t k = 1; k <= 9; k += 4) {
            unary_fd c = {4, k, act, NULL, NULL, NULL};
            size_t n = c.rows * k;
            c.x = tu_rnd_vec(&rng, n, -3, 3);
            c.r = tu_rnd_vec(&rng, n, -1, 1);
            c.y = tu_xmalloc(n * sizeof(double));
            double *dx = tu_xmalloc(n * sizeof(double));
            unary_fd_f(&c);
            if (act < 0)
                ref_softmax_backward(c.y, c.r, dx, c.rows, k);
            else
                ref_act_backward(c.y, c.r, dx, n, act);
            double err = tu_fd_rel_err(unary_fd_f, &c, c.x, n, dx, FD_FLOOR);
            tu_note_err(act < 0 ? "fd.softmax" : "fd.activation", err);
            /* softmax of one class is constant: its gradient is exactly 0 */
            CHECK(err < FD_TOL, "%s k=%zu: fd rel err %.3g", act < 0 ? "softmax" : tu_act_str(act), k, err);
            free(c.x), free(c.r), free(c.y), free(dx);
        }
    return 0;
}

enum { L_CE_PROBS, L_CE_LOGITS, L_BCE_PROBS, L_BCE_LOGITS, L_MSE };
static const char *const loss_names[] = {"ce_probs(fused)", "ce_logits", "bce_probs", "bce_logits", "mse"};

typedef struct loss_fd {
    int kind;
    size_t n, k;
    double *v, *t, *p, *m;
    int *lab;
} loss_fd;

/* Mean loss; with grad, also its gradient from the reference. */
static double loss_eval(loss_fd *c, double *grad)
{
    switch (c->kind) {
    case L_CE_PROBS:
        ref_softmax_forward(c->v, c->p, c->n, c->k);
        ref_ce_probs(c->p, c->lab, c->n, c->k, grad, c->m);
        break;
    case L_CE_LOGITS: ref_ce_logits(c->v, c->lab, c->n, c->k, grad, c->m); break;
    case L_BCE_PROBS: ref_bce_probs(c->v, c->lab, c->n, grad, c->m); break;
    case L_BCE_LOGITS: ref_bce_logits(c->v, c->lab, c->n, grad, c->m); break;
    case L_MSE: ref_mse(c->v, c->t, c->n, c->k, grad, c->m); break;
    }
    double s = 0;
    for (size_t i = 0; i < c->n; i++)
        s += c->m[2 * i];
    return s / (double)c->n;
}

static double loss_fd_f(void *ctx) { return loss_eval(ctx, NULL); }

TEST(ref_loss_fd)
{
    ref_rng rng;
    ref_rng_seed(&rng, 13);
    for (int kind = 0; kind < 5; kind++) {
        loss_fd c = {kind, 6, (kind == L_BCE_PROBS || kind == L_BCE_LOGITS) ? 1 : 5, NULL, NULL, NULL, NULL, NULL};
        size_t nk = c.n * c.k;
        if (kind == L_BCE_PROBS)
            c.v = tu_rnd_vec(&rng, nk, 0.05, 0.95);
        else
            c.v = tu_rnd_vec(&rng, nk, -3, 3);
        c.t = tu_rnd_vec(&rng, nk, -1, 1);
        c.p = tu_xmalloc(nk * sizeof(double));
        c.m = tu_xmalloc(2 * c.n * sizeof(double));
        c.lab = tu_xmalloc(c.n * sizeof(int));
        for (size_t i = 0; i < c.n; i++)
            c.lab[i] = (int)(ref_rng_next(&rng) % (c.k > 1 ? c.k : 2));
        double *g = tu_xmalloc(nk * sizeof(double));
        loss_eval(&c, g);
        double err = tu_fd_rel_err(loss_fd_f, &c, c.v, nk, g, FD_FLOOR);
        char op[48];
        snprintf(op, sizeof op, "fd.%s", loss_names[kind]);
        tu_note_err(op, err);
        CHECK(err < FD_TOL, "%s: fd rel err %.3g", loss_names[kind], err);
        free(c.v), free(c.t), free(c.p), free(c.m), free(c.lab), free(g);
    }
    return 0;
}

/* The references agree with each other: logits CE == fused CE on softmax(z),
 * bce on logits == bce on sigmoid(z). */
TEST(ref_loss_consistency)
{
    ref_rng rng;
    ref_rng_seed(&rng, 14);
    size_t n = 7, k = 4;
    double *z = tu_rnd_vec(&rng, n * k, -4, 4), *p = tu_xmalloc(n * k * sizeof(double));
    double *m1 = tu_xmalloc(2 * n * sizeof(double)), *m2 = tu_xmalloc(2 * n * sizeof(double));
    double *g1 = tu_xmalloc(n * k * sizeof(double)), *g2 = tu_xmalloc(n * k * sizeof(double));
    int lab[7];
    for (size_t i = 0; i < n; i++)
        lab[i] = (int)(ref_rng_next(&rng) % k);
    ref_softmax_forward(z, p, n, k);
    ref_ce_probs(p, lab, n, k, g1, m1);
    ref_ce_logits(z, lab, n, k, g2, m2);
    CHECK(ref_max_abs_diff(m1, m2, 2 * n) < 1e-12 && ref_max_abs_diff(g1, g2, n * k) < 1e-12, "ce probs vs logits");
    for (size_t i = 0; i < n; i++)
        p[i] = 1 / (1 + exp(-z[i]));
    ref_bce_probs(p, lab, n, NULL, m1);
    ref_bce_logits(z, lab, n, NULL, m2);
    CHECK(ref_max_abs_diff(m1, m2, 2 * n) < 1e-9, "bce probs vs logits");
    free(z), free(p), free(m1), free(m2), free(g1), free(g2);
    return 0;
}

/* ------------------------------------------------------------- dense */

typedef struct dcase {
    int n, maxb, nd, shape[3], units, act, bias, first;
} dcase;

static int dense_case(const dcase *c)
{
    NEED_DEV(d);
    char sh[64], desc[200], json[1024];
    tu_shape_json(sh, sizeof sh, c->shape, c->nd);
    snprintf(desc, sizeof desc, "dense n=%d/%d in=[%s] units=%d %s bias=%d%s", c->n, c->maxb, sh, c->units,
             tu_act_str(c->act), c->bias, c->first ? " (first layer)" : "");
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%s]},\"layers\":[%s{\"type\":\"dense\",\"units\":%d,\"activation\":\"%s\","
             "\"use_bias\":%s}],\"loss\":\"mse\"}",
             sh, c->first ? "" : PLACEHOLDER, c->units, tu_act_str(c->act), c->bias ? "true" : "false");
    tu_net t;
    TRY(tu_net_make(&t, json, c->maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *D = nn_net_out(net);
    size_t in = (size_t)c->shape[c->nd - 1], u = (size_t)c->units, per = tu_prod(c->shape, c->nd) / in;
    size_t rows = (size_t)c->n * per, maxrows = (size_t)c->maxb * per;
    CHECK(D->nparam == 1 + c->bias, "%s: %d params", desc, D->nparam);
    CHECK(D->out_shape.nd == c->nd && (size_t)D->out_shape.d[c->nd - 1] == u, "%s: output shape", desc);
    CHECK((D->dx[0] != NULL) == !c->first, "%s: dx buffer", desc);

    ref_rng rng;
    ref_rng_seed(&rng, 1000003u * (unsigned)c->n + 101u * in + u * 7u + (unsigned)c->act);
    double *W = tu_rnd_vec(&rng, in * u, -1, 1), *b = c->bias ? tu_rnd_vec(&rng, u, -1, 1) : NULL;
    double *x = tu_rnd_vec(&rng, maxrows * in, -1, 1);
    TRY(tu_upload(D->param[0].w, 0, W, in * u, &E));
    if (b)
        TRY(tu_upload(D->param[1].w, 0, b, u, &E));

    /* forward: only y[0:rows] may change in the activation arena */
    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(tu_upload(D->x[0], 0, x, maxrows * in, &E));
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(D->type->forward(D, &run, &E));
    float *ar = tu_read_all(net->arena, na, &E);
    CHECK(ar, "%s: %s", desc, E.msg);
    size_t yo = tu_sub_off(D->y);
    double *y = tu_f2d(ar + yo, rows * u), *yr = tu_xmalloc(rows * u * sizeof(double));
    ref_dense_forward(x, W, b, rows, in, u, c->act, yr);
    double ef = ref_rel_err(y, yr, rows * u, 1e-6);
    tu_note_err("dense.forward", ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    span ok[2] = {{yo, rows * u}, {c->first ? 0 : tu_sub_off(D->x[0]), c->first ? 0 : maxrows * in}};
    long bad = clobbered(ar, na, ok, 2);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] (y at %zu, rows*units %zu, max %zu) to %g", desc, bad,
          yo, rows * u, maxrows * u, bad < 0 ? 0.0 : ar[bad]);
    free(ar);

    /* backward: dx accumulates; dW, db overwritten; nothing else written */
    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    TRY(nn_buf_fill(d, net->grads, 0, net->nparams, SENT, &E));
    double *dy = tu_rnd_vec(&rng, rows * u, -1, 1);
    double *dx0 = c->first ? NULL : tu_rnd_vec(&rng, rows * in, -1, 1);
    TRY(tu_upload(D->dy, 0, dy, rows * u, &E));
    if (dx0)
        TRY(tu_upload(D->dx[0], 0, dx0, rows * in, &E));
    TRY(D->type->backward(D, &run, &E));
    double *dxr = c->first ? NULL : tu_dup_vec(dx0, rows * in);
    double *dWr = tu_xmalloc(in * u * sizeof(double)), *dbr = tu_xmalloc(u * sizeof(double));
    ref_dense_backward(x, W, y, dy, rows, in, u, c->act, dxr, dWr, c->bias ? dbr : NULL);
    float *ga = tu_read_all(net->garena, ng, &E), *gr = tu_read_all(net->grads, net->nparams, &E);
    CHECK(ga && gr, "%s: %s", desc, E.msg);
    span gok[2] = {{tu_sub_off(D->dy), rows * u}, {0, 0}};
    if (dxr) {
        size_t xo = tu_sub_off(D->dx[0]);
        double *dx = tu_f2d(ga + xo, rows * in);
        double ex = ref_rel_err(dx, dxr, rows * in, 1e-6);
        tu_note_err("dense.backward.dx", ex);
        CHECK(ex < TOL, "%s: dx (accumulated) rel err %.3g", desc, ex);
        gok[1] = (span){xo, rows * in};
        free(dx);
    }
    bad = clobbered(ga, ng, gok, 2);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] to %g (outside dy/dx rows < n)", desc, bad,
          bad < 0 ? 0.0 : ga[bad]);
    size_t wo = tu_sub_off(D->param[0].g);
    double *dW = tu_f2d(gr + wo, in * u);
    double ew = ref_rel_err(dW, dWr, in * u, 1e-6);
    tu_note_err("dense.backward.dW", ew);
    CHECK(ew < TOL, "%s: dW rel err %.3g", desc, ew);
    span pok[2] = {{wo, in * u}, {0, 0}};
    if (c->bias) {
        size_t bo = tu_sub_off(D->param[1].g);
        double *db = tu_f2d(gr + bo, u);
        double eb = ref_rel_err(db, dbr, u, 1e-6);
        tu_note_err("dense.backward.db", eb);
        CHECK(eb < TOL, "%s: db rel err %.3g", desc, eb);
        pok[1] = (span){bo, u};
        free(db);
    }
    bad = clobbered(gr, net->nparams, pok, 2);
    CHECK(bad < 0, "%s: backward changed grads[%ld] to %g (outside dW/db)", desc, bad, bad < 0 ? 0.0 : gr[bad]);

    free(ga), free(gr), free(dW), free(dWr), free(dbr), free(dxr), free(dx0), free(dy), free(y), free(yr);
    free(W), free(b), free(x);
    tu_net_free(&t);
    return 0;
}

TEST(layer_dense)
{
    static const dcase cases[] = {
        {1, 1, 1, {1}, 1, NN_ACT_NONE, 1, 0},     {3, 4, 1, {7}, 5, NN_ACT_TANH, 1, 0},
        {17, 20, 1, {33}, 64, NN_ACT_RELU, 1, 0}, {5, 9, 1, {300}, 5, NN_ACT_SIGMOID, 0, 0},
        {17, 17, 1, {7}, 1, NN_ACT_NONE, 0, 0},   {1, 3, 1, {300}, 64, NN_ACT_TANH, 1, 0},
        {3, 5, 1, {1}, 64, NN_ACT_SIGMOID, 1, 0}, {17, 31, 1, {33}, 5, NN_ACT_NONE, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (dense_case(&cases[i]))
            return 1;
    return 0;
}

/* The first layer: its input has no gradient buffer (dx NULL). */
TEST(layer_dense_first)
{
    static const dcase cases[] = {
        {2, 3, 1, {300}, 64, NN_ACT_TANH, 1, 1},
        {1, 5, 1, {33}, 5, NN_ACT_RELU, 1, 1},
        {17, 17, 1, {7}, 1, NN_ACT_SIGMOID, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (dense_case(&cases[i]))
            return 1;
    return 0;
}

/* Dense over the last axis of a 2-D per-sample shape: [4, 6] -> [4, units]. */
TEST(layer_dense_timestep)
{
    static const dcase cases[] = {
        {3, 5, 2, {4, 6}, 5, NN_ACT_TANH, 1, 0},
        {1, 2, 2, {4, 6}, 3, NN_ACT_RELU, 1, 1},
        {7, 7, 3, {2, 3, 6}, 1, NN_ACT_NONE, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (dense_case(&cases[i]))
            return 1;
    return 0;
}

/* --------------------------------------- activations and softmax layers */

/* [placeholder, layer]; act >= 0: an activation layer, -1: softmax. */
static int unary_case(int act, int n, int maxb, const int *shape, int nd, double scale)
{
    NEED_DEV(d);
    char sh[64], desc[200], json[1024];
    const char *type = act < 0 ? "softmax" : tu_act_str(act);
    tu_shape_json(sh, sizeof sh, shape, nd);
    snprintf(desc, sizeof desc, "%s n=%d/%d shape=[%s] scale=%g", type, n, maxb, sh, scale);
    snprintf(json, sizeof json, "{\"input\":{\"shape\":[%s]},\"layers\":[" PLACEHOLDER "{\"type\":\"%s\"}]}", sh,
             type);
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *A = nn_net_out(net);
    size_t per = tu_prod(shape, nd), k = (size_t)shape[nd - 1], cnt = (size_t)n * per, maxcnt = (size_t)maxb * per;
    ref_rng rng;
    ref_rng_seed(&rng, 77u + 13u * (unsigned)(act + 1) + 1009u * (unsigned)n + per);
    double *x = tu_rnd_vec(&rng, maxcnt, -scale, scale);

    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(tu_upload(A->x[0], 0, x, maxcnt, &E));
    nn_run run = {d, n, 1, 5, 9};
    TRY(A->type->forward(A, &run, &E));
    float *ar = tu_read_all(net->arena, na, &E);
    CHECK(ar, "%s: %s", desc, E.msg);
    size_t yo = tu_sub_off(A->y);
    double *y = tu_f2d(ar + yo, cnt), *yr = tu_xmalloc(cnt * sizeof(double));
    if (act < 0)
        ref_softmax_forward(x, yr, cnt / k, k);
    else
        ref_act_forward(x, yr, cnt, act);
    double ef = ref_rel_err(y, yr, cnt, 1e-6);
    tu_note_err(act < 0 ? "softmax.forward" : "activation.forward", ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    span ok[2] = {{yo, cnt}, {tu_sub_off(A->x[0]), maxcnt}};
    long bad = clobbered(ar, na, ok, 2);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] to %g (y at %zu, %zu valid)", desc, bad,
          bad < 0 ? 0.0 : ar[bad], yo, cnt);
    free(ar);

    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    double *dy = tu_rnd_vec(&rng, cnt, -1, 1), *dx0 = tu_rnd_vec(&rng, cnt, -1, 1);
    TRY(tu_upload(A->dy, 0, dy, cnt, &E));
    TRY(tu_upload(A->dx[0], 0, dx0, cnt, &E));
    TRY(A->type->backward(A, &run, &E));
    double *dxr = tu_dup_vec(dx0, cnt);
    if (act < 0)
        ref_softmax_backward(y, dy, dxr, cnt / k, k);
    else
        ref_act_backward(y, dy, dxr, cnt, act);
    float *ga = tu_read_all(net->garena, ng, &E);
    CHECK(ga, "%s: %s", desc, E.msg);
    size_t xo = tu_sub_off(A->dx[0]), dyo = tu_sub_off(A->dy);
    double *dx = tu_f2d(ga + xo, cnt), *dy_after = tu_f2d(ga + dyo, cnt);
    double eb = ref_rel_err(dx, dxr, cnt, 1e-6);
    tu_note_err(act < 0 ? "softmax.backward" : "activation.backward", eb);
    CHECK(eb < TOL, "%s: dx (accumulated) rel err %.3g", desc, eb);
    CHECK(ref_max_abs_diff(dy_after, dy, cnt) == 0, "%s: backward modified dy", desc);
    span gok[2] = {{xo, cnt}, {dyo, cnt}};
    bad = clobbered(ga, ng, gok, 2);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] to %g", desc, bad, bad < 0 ? 0.0 : ga[bad]);
    free(ga), free(dx), free(dy_after), free(dxr), free(dy), free(dx0), free(y), free(yr), free(x);
    tu_net_free(&t);
    return 0;
}

TEST(layer_activation)
{
    static const int s1[] = {300}, s2[] = {3, 7}, s3[] = {1};
    for (int act = NN_ACT_RELU; act <= NN_ACT_TANH; act++) {
        if (unary_case(act, 3, 4, s1, 1, 3.0) || unary_case(act, 5, 8, s2, 2, 3.0) ||
            unary_case(act, 1, 1, s3, 1, 3.0) || unary_case(act, 17, 17, s2, 2, 12.0))
            return 1;
    }
    return 0;
}

TEST(layer_softmax)
{
    static const int k1[] = {1}, k2[] = {2}, k10[] = {10}, k33[] = {33}, s2[] = {3, 7};
    if (unary_case(-1, 3, 5, k1, 1, 2.0) || unary_case(-1, 17, 20, k2, 1, 2.0) || unary_case(-1, 1, 4, k10, 1, 2.0) ||
        unary_case(-1, 5, 5, k33, 1, 2.0) || unary_case(-1, 4, 6, s2, 2, 2.0) ||
        /* large logits: exp overflows without the max subtraction */
        unary_case(-1, 3, 4, k10, 1, 200.0))
        return 1;
    return 0;
}

/* A softmax output sums to one per row and has no NaN even for huge logits. */
TEST(layer_softmax_rows_sum_to_one)
{
    NEED_DEV(d);
    tu_net t;
    const char *json = "{\"input\":{\"shape\":[2,9]},\"layers\":[" PLACEHOLDER "{\"type\":\"softmax\"}]}";
    TRY(tu_net_make(&t, json, 6, 0, &E));
    nn_layer *S = nn_net_out(&t.net);
    ref_rng rng;
    ref_rng_seed(&rng, 5);
    double *x = tu_rnd_vec(&rng, 6 * 18, -1000, 1000), *y = tu_xmalloc(6 * 18 * sizeof(double));
    TRY(tu_upload(S->x[0], 0, x, 6 * 18, &E));
    nn_run run = {d, 6, 0, 0, 0};
    TRY(S->type->forward(S, &run, &E));
    TRY(tu_download(S->y, 0, y, 6 * 18, &E));
    for (int r = 0; r < 12; r++) {
        double s = 0;
        for (int j = 0; j < 9; j++) {
            CHECK(isfinite(y[r * 9 + j]) && y[r * 9 + j] >= 0, "row %d: y[%d] = %g", r, j, y[r * 9 + j]);
            s += y[r * 9 + j];
        }
        CHECK(fabs(s - 1) < 1e-5, "row %d sums to %.8f", r, s);
    }
    free(x), free(y);
    tu_net_free(&t);
    return 0;
}

/* ------------------------------------------------------------- dropout */

/* 5-sigma band around p for a proportion over m trials. */
static int near_p(double frac, double p, size_t m)
{
    double sd = sqrt(p * (1 - p) / (double)m);
    return fabs(frac - p) <= 5 * sd + 1e-12;
}

/* One dropout forward (mask via y == 0) for the layer `L` of `net`. */
static int dropout_fwd(nn_layer *L, const nn_run *run, const double *x, size_t maxcnt, double *y, size_t cnt,
                       nn_err *e)
{
    int r = tu_upload(L->x[0], 0, x, maxcnt, e);
    if (!r)
        r = L->type->forward(L, run, e);
    if (!r)
        r = tu_download(L->y, 0, y, cnt, e);
    return r;
}

static int dropout_case(double rate, int n, int maxb, int dim)
{
    NEED_DEV(d);
    char json[512], desc[96];
    snprintf(desc, sizeof desc, "dropout rate=%g n=%d/%d dim=%d", rate, n, maxb, dim);
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d]},\"layers\":[" PLACEHOLDER
             "{\"type\":\"dropout\",\"rate\":%g},{\"type\":\"dropout\",\"rate\":%g,\"inputs\":[\"dropout_1\"]}]}",
             dim, rate, rate);
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *D = &net->L[1], *D2 = &net->L[2];
    CHECK(D->x[0] == D2->x[0], "%s: both dropouts read the placeholder", desc);
    size_t cnt = (size_t)n * (size_t)dim, maxcnt = (size_t)maxb * (size_t)dim;
    ref_rng rng;
    ref_rng_seed(&rng, (unsigned long long)(rate * 1000) + (unsigned)n);
    /* |x| in [0.5, 1.5]: a zero in y is a dropped unit, never a zero input */
    double *x = tu_xmalloc(maxcnt * sizeof(double));
    for (size_t i = 0; i < maxcnt; i++)
        x[i] = (float)(ref_rng_range(&rng, 0.5, 1.5) * (ref_rng_next(&rng) & 1 ? 1 : -1));
    double *y = tu_xmalloc(cnt * sizeof(double)), *y2 = tu_xmalloc(cnt * sizeof(double));
    double scale = 1.0 / (1.0 - (double)(float)rate);

    size_t na = net->arena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    nn_run run = {d, n, 1, 0x123456789abcdefULL, 17};
    TRY(dropout_fwd(D, &run, x, maxcnt, y, cnt, &E));
    float *ar = tu_read_all(net->arena, na, &E);
    CHECK(ar, "%s: %s", desc, E.msg);
    span ok[2] = {{tu_sub_off(D->y), cnt}, {tu_sub_off(D->x[0]), maxcnt}};
    long bad = clobbered(ar, na, ok, 2);
    CHECK(bad < 0, "%s: forward changed activation arena[%ld] to %g", desc, bad, bad < 0 ? 0.0 : ar[bad]);
    free(ar);

    /* kept values are x / (1 - rate), dropped are 0; the dropped fraction is the rate */
    size_t dropped = 0, both = 0, vert = 0;
    double maxe = 0, ysum = 0, xsum = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (y[i] == 0)
            dropped++;
        else
            maxe = fmax(maxe, fabs(y[i] - x[i] * scale) / fabs(x[i] * scale));
        /* disjoint pairs: horizontal neighbours, and the same feature of samples 2s, 2s+1 */
        if (i % 2 == 0 && i + 1 < cnt && y[i] == 0 && y[i + 1] == 0)
            both++;
        if ((i / (size_t)dim) % 2 == 0 && i + (size_t)dim < cnt && y[i] == 0 && y[i + (size_t)dim] == 0)
            vert++;
        ysum += y[i] * (x[i] > 0 ? 1 : -1);
        xsum += fabs(x[i]);
    }
    tu_note_err("dropout.forward", maxe);
    CHECK(maxe < 1e-6, "%s: kept values differ from x/(1-rate) by %.3g", desc, maxe);
    double frac = (double)dropped / (double)cnt;
    CHECK(near_p(frac, rate, cnt), "%s: dropped fraction %.4f", desc, frac);
    size_t nh = cnt / 2, nv = (size_t)(n / 2) * (size_t)dim;
    CHECK(near_p((double)both / (double)nh, rate * rate, nh),
          "%s: neighbours both dropped %.4f, expected %.4f (independence)", desc, (double)both / (double)nh,
          rate * rate);
    CHECK(near_p((double)vert / (double)nv, rate * rate, nv),
          "%s: same feature of consecutive samples both dropped %.4f, expected %.4f", desc, (double)vert / (double)nv,
          rate * rate);
    /* inverted dropout keeps the expectation: E[y] = x */
    double sd = sqrt(rate / (1 - rate) * 2.25 * (double)cnt); /* |x| <= 1.5 */
    CHECK(fabs(ysum - xsum) <= 5 * sd, "%s: sum of |y| %.1f vs sum of |x| %.1f", desc, ysum, xsum);

    /* backward: the same mask: dx += dy * keep / (1 - rate) */
    size_t ng = net->garena_bytes / sizeof(float);
    TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
    double *dy = tu_rnd_vec(&rng, cnt, -1, 1), *dx0 = tu_rnd_vec(&rng, cnt, -1, 1),
           *dx = tu_xmalloc(cnt * sizeof(double));
    TRY(tu_upload(D->dy, 0, dy, cnt, &E));
    TRY(tu_upload(D->dx[0], 0, dx0, cnt, &E));
    TRY(D->type->backward(D, &run, &E));
    TRY(tu_download(D->dx[0], 0, dx, cnt, &E));
    maxe = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (y[i] == 0)
            CHECK(dx[i] == dx0[i], "%s: position %zu dropped in forward but dx changed by %g in backward", desc, i,
                  dx[i] - dx0[i]);
        else
            maxe = fmax(maxe, fabs(dx[i] - (dx0[i] + dy[i] * scale)));
    }
    tu_note_err("dropout.backward", maxe);
    CHECK(maxe < 1e-5, "%s: kept positions: dx differs from dx0 + dy/(1-rate) by %.3g", desc, maxe);
    float *ga = tu_read_all(net->garena, ng, &E);
    CHECK(ga, "%s: %s", desc, E.msg);
    span gok[2] = {{tu_sub_off(D->dx[0]), cnt}, {tu_sub_off(D->dy), cnt}};
    bad = clobbered(ga, ng, gok, 2);
    CHECK(bad < 0, "%s: backward changed gradient arena[%ld] to %g", desc, bad, bad < 0 ? 0.0 : ga[bad]);
    free(ga);

    /* deterministic: the same (seed, step) gives the same mask */
    TRY(dropout_fwd(D, &run, x, maxcnt, y2, cnt, &E));
    CHECK(ref_max_abs_diff(y, y2, cnt) == 0, "%s: same seed and step, different output", desc);
    /* a new step, a new seed (high or low half) or another layer: a new mask */
    double pdiff = 2 * rate * (1 - rate);
    for (int v = 0; v < 4; v++) {
        nn_run r2 = run;
        nn_layer *L = D;
        if (v == 0)
            r2.step++;
        else if (v == 1)
            r2.seed ^= 1ULL << 40;
        else if (v == 2)
            r2.seed ^= 1;
        else
            L = D2;
        TRY(dropout_fwd(L, &r2, x, maxcnt, y2, cnt, &E));
        size_t diff = 0;
        for (size_t i = 0; i < cnt; i++)
            diff += (y[i] == 0) != (y2[i] == 0);
        static const char *const what[] = {"step+1", "seed high bits", "seed low bits", "another layer"};
        CHECK(near_p((double)diff / (double)cnt, pdiff, cnt), "%s: %s changes the mask at %.4f of positions, expected %.4f",
              desc, what[v], (double)diff / (double)cnt, pdiff);
    }

    /* inference: identity */
    nn_run ev = run;
    ev.train = 0;
    TRY(nn_buf_fill(d, net->arena, 0, na, SENT, &E));
    TRY(dropout_fwd(D, &ev, x, maxcnt, y2, cnt, &E));
    CHECK(ref_max_abs_diff(y2, x, cnt) == 0, "%s: eval mode is not the identity", desc);
    ar = tu_read_all(net->arena, na, &E);
    CHECK(ar, "%s: %s", desc, E.msg);
    bad = clobbered(ar, na, ok, 2);
    CHECK(bad < 0, "%s: eval forward changed activation arena[%ld] to %g", desc, bad, bad < 0 ? 0.0 : ar[bad]);
    free(ar);
    free(x), free(y), free(y2), free(dy), free(dx0), free(dx);
    tu_net_free(&t);
    return 0;
}

TEST(layer_dropout)
{
    if (dropout_case(0.5, 17, 20, 300) || dropout_case(0.1, 13, 16, 333) || dropout_case(0.9, 9, 9, 1001) ||
        dropout_case(0.3, 50, 64, 101))
        return 1;
    return 0;
}

/* rate 0 while training: the identity, and backward passes dy through. */
TEST(layer_dropout_rate0)
{
    NEED_DEV(d);
    tu_net t;
    const char *json = "{\"input\":{\"shape\":[37]},\"layers\":[" PLACEHOLDER "{\"type\":\"dropout\",\"rate\":0}]}";
    TRY(tu_net_make(&t, json, 5, 1, &E));
    nn_layer *D = nn_net_out(&t.net);
    ref_rng rng;
    ref_rng_seed(&rng, 3);
    size_t cnt = 3 * 37;
    double *x = tu_rnd_vec(&rng, 5 * 37, -1, 1), *y = tu_xmalloc(cnt * sizeof(double));
    double *dy = tu_rnd_vec(&rng, cnt, -1, 1), *dx0 = tu_rnd_vec(&rng, cnt, -1, 1),
           *dx = tu_xmalloc(cnt * sizeof(double));
    nn_run run = {d, 3, 1, 99, 4};
    TRY(dropout_fwd(D, &run, x, 5 * 37, y, cnt, &E));
    CHECK(ref_max_abs_diff(y, x, cnt) == 0, "rate 0: y != x");
    TRY(tu_upload(D->dy, 0, dy, cnt, &E));
    TRY(tu_upload(D->dx[0], 0, dx0, cnt, &E));
    TRY(D->type->backward(D, &run, &E));
    TRY(tu_download(D->dx[0], 0, dx, cnt, &E));
    for (size_t i = 0; i < cnt; i++)
        dx0[i] += dy[i];
    CHECK(ref_max_abs_diff(dx, dx0, cnt) < 1e-6, "rate 0: dx != dx0 + dy (%.3g)", ref_max_abs_diff(dx, dx0, cnt));
    free(x), free(y), free(dy), free(dx0), free(dx);
    tu_net_free(&t);
    return 0;
}

/* ------------------------------------------------------- whole nets */

static int write_params(nn_layer *L, ref_rng *rng, double **out, nn_err *e)
{
    for (int p = 0; p < L->nparam; p++) {
        out[p] = tu_rnd_vec(rng, L->param[p].n, -1, 1);
        int r = tu_upload(L->param[p].w, 0, out[p], L->param[p].n, e);
        if (r)
            return r;
    }
    return 0;
}

/* nn_net_forward / nn_net_zero_grads / nn_net_backward over a 3-layer MLP
 * with a 2-D input, against the chained references. */
TEST(layer_net_mlp)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[2,7]},\"layers\":["
                       "{\"type\":\"dense\",\"units\":5,\"activation\":\"tanh\"},"
                       "{\"type\":\"dense\",\"units\":4,\"activation\":\"relu\"},"
                       "{\"type\":\"dense\",\"units\":3}],\"loss\":\"mse\"}";
    tu_net t;
    TRY(tu_net_make(&t, json, 9, 1, &E));
    nn_net *net = &t.net;
    CHECK(net->nl == 3 && net->out_dim == 6, "out_dim %zu", net->out_dim);
    ref_rng rng;
    ref_rng_seed(&rng, 21);
    double *P[3][2];
    for (int i = 0; i < 3; i++)
        TRY(write_params(&net->L[i], &rng, P[i], &E));
    const int n = 7, per = 2;
    size_t rows = (size_t)n * per, dims[4] = {7, 5, 4, 3};
    int acts[3] = {NN_ACT_TANH, NN_ACT_RELU, NN_ACT_NONE};
    double *x = tu_rnd_vec(&rng, 9 * 14, -1, 1);
    TRY(tu_upload(net->x_in, 0, x, 9 * 14, &E));
    nn_run run = {d, n, 1, 1, 1};
    TRY(nn_net_forward(net, &run, &E));
    double *h[4] = {x, NULL, NULL, NULL}, *hd[4] = {x, NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        h[i + 1] = tu_xmalloc(rows * dims[i + 1] * sizeof(double));
        hd[i + 1] = tu_xmalloc(rows * dims[i + 1] * sizeof(double));
        TRY(tu_download(net->L[i].y, 0, hd[i + 1], rows * dims[i + 1], &E));
        /* each layer's reference from the device's own input, so errors do not compound */
        ref_dense_forward(hd[i], P[i][0], P[i][1], rows, dims[i], dims[i + 1], acts[i], h[i + 1]);
        double err = ref_rel_err(hd[i + 1], h[i + 1], rows * dims[i + 1], 1e-6);
        tu_note_err("net.forward", err);
        CHECK(err < TOL, "layer %d forward rel err %.3g", i, err);
    }
    /* backward from a random output gradient, after zeroing (the sentinel
     * must be gone); parameter gradients against the reference chain (the
     * activation gradients are consumed in place by the layers' backward) */
    TRY(nn_buf_fill(d, net->garena, 0, net->garena_bytes / sizeof(float), SENT, &E));
    TRY(nn_net_zero_grads(net, &E));
    double *g = tu_rnd_vec(&rng, rows * 3, -1, 1);
    TRY(tu_upload(nn_net_out(net)->dy, 0, g, rows * 3, &E));
    TRY(nn_net_backward(net, &run, &E));
    for (int i = 2; i >= 0; i--) {
        size_t in = dims[i], u = dims[i + 1];
        double *dW = tu_xmalloc(in * u * sizeof(double)), *db = tu_xmalloc(u * sizeof(double));
        double *dx = i ? tu_xmalloc(rows * in * sizeof(double)) : NULL, *dWd = tu_xmalloc(in * u * sizeof(double)),
               *dbd = tu_xmalloc(u * sizeof(double));
        ref_dense_backward(hd[i], P[i][0], hd[i + 1], g, rows, in, u, acts[i], dx, dW, db);
        TRY(tu_download(net->L[i].param[0].g, 0, dWd, in * u, &E));
        TRY(tu_download(net->L[i].param[1].g, 0, dbd, u, &E));
        double ew = ref_rel_err(dWd, dW, in * u, 1e-6), eb = ref_rel_err(dbd, db, u, 1e-6);
        tu_note_err("net.backward", fmax(ew, eb));
        CHECK(ew < TOL && eb < TOL, "layer %d: dW rel err %.3g, db %.3g", i, ew, eb);
        free(g);
        g = dx; /* starts from zero: the layer below's dy */
        free(dW), free(db), free(dWd), free(dbd);
    }
    for (int i = 0; i < 3; i++)
        free(P[i][0]), free(P[i][1]), free(h[i + 1]), free(hd[i + 1]);
    free(x);
    tu_net_free(&t);
    return 0;
}

/* --------------------------------------------------------------- losses */

enum { K_CE_FUSED, K_CE_LOGITS, K_BCE_DENSE_SIGMOID, K_BCE_SIGMOID_LAYER, K_BCE_LOGITS, K_MSE };
static const char *const kind_names[] = {"ce fused (softmax out)", "ce logits (dense out)",
                                         "bce probs (dense sigmoid out)", "bce probs (sigmoid layer out)",
                                         "bce logits (dense out)", "mse"};

/* values: NULL for random ones. */
static int loss_case(int kind, int n, int maxb, int k, const double *values)
{
    NEED_DEV(d);
    char json[512], desc[128];
    int bce = kind >= K_BCE_DENSE_SIGMOID && kind <= K_BCE_LOGITS;
    if (bce)
        k = 1;
    snprintf(desc, sizeof desc, "%s n=%d/%d k=%d", kind_names[kind], n, maxb, k);
    const char *loss = bce ? "binary_cross_entropy" : kind == K_MSE ? "mse" : "cross_entropy";
    char lb[256];
    switch (kind) {
    case K_CE_FUSED: snprintf(lb, sizeof lb, "{\"type\":\"dense\",\"units\":%d},{\"type\":\"softmax\"}", k); break;
    case K_BCE_DENSE_SIGMOID: snprintf(lb, sizeof lb, "{\"type\":\"dense\",\"units\":1,\"activation\":\"sigmoid\"}"); break;
    case K_BCE_SIGMOID_LAYER: snprintf(lb, sizeof lb, "{\"type\":\"dense\",\"units\":1},{\"type\":\"sigmoid\"}"); break;
    default: snprintf(lb, sizeof lb, "{\"type\":\"dense\",\"units\":%d}", k); break;
    }
    snprintf(json, sizeof json, "{\"input\":{\"shape\":[3]},\"layers\":[%s],\"loss\":\"%s\"}", lb, loss);
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 1, &E));
    nn_net *net = &t.net;
    nn_layer *out = nn_net_out(net);
    int want_logits = kind == K_CE_LOGITS || kind == K_BCE_LOGITS;
    CHECK(nn_loss_from_logits(net) == want_logits, "%s: nn_loss_from_logits = %d", desc, nn_loss_from_logits(net));
    CHECK(net->fused_softmax == (kind == K_CE_FUSED), "%s: fused_softmax = %d", desc, net->fused_softmax);
    TRY(nn_loss_check(net, bce ? 2 : k, k, 1, &E));

    size_t nk = (size_t)n * (size_t)k, maxnk = (size_t)maxb * (size_t)k;
    ref_rng rng;
    ref_rng_seed(&rng, 500u + 31u * (unsigned)kind + 7u * (unsigned)n + (unsigned)k);
    int *lab = tu_xmalloc((size_t)maxb * sizeof(int));
    for (int i = 0; i < maxb; i++)
        lab[i] = (int)(ref_rng_next(&rng) % (unsigned)(bce ? 2 : k));
    double *tgt = tu_rnd_vec(&rng, maxnk, -2, 2);
    double *o; /* what the loss reads: the output layer's y */
    if (values)
        o = tu_dup_vec(values, maxnk);
    else if (kind == K_BCE_DENSE_SIGMOID || kind == K_BCE_SIGMOID_LAYER)
        o = tu_rnd_vec(&rng, maxnk, 0.01, 0.99);
    else
        o = tu_rnd_vec(&rng, maxnk, -4, 4);
    if (kind == K_CE_FUSED) {
        /* logits into the dense output, then the real softmax forward */
        TRY(tu_upload(out->x[0], 0, o, maxnk, &E));
        nn_run rs = {d, maxb, 1, 0, 0};
        TRY(out->type->forward(out, &rs, &E));
        double *pr = tu_xmalloc(maxnk * sizeof(double));
        ref_softmax_forward(o, pr, (size_t)maxb, (size_t)k);
        TRY(tu_download(out->y, 0, o, maxnk, &E));
        double es = ref_rel_err(o, pr, maxnk, 1e-6);
        CHECK(es < TOL, "%s: softmax rel err %.3g", desc, es);
        free(pr);
    } else {
        TRY(tu_upload(out->y, 0, o, maxnk, &E));
    }
    cl_mem target, metrics;
    size_t nm = 2 * (size_t)maxb + 16;
    if (kind == K_MSE) {
        TRY(nn_buf_alloc(d, maxnk * sizeof(float), "targets", &target, &E));
        TRY(tu_upload(target, 0, tgt, maxnk, &E));
    } else {
        TRY(nn_buf_alloc(d, (size_t)maxb * sizeof(int), "labels", &target, &E));
        TRY(nn_buf_write(d, target, 0, (size_t)maxb * sizeof(int), lab, 1, &E));
    }
    TRY(nn_buf_alloc(d, nm * sizeof(float), "metrics", &metrics, &E));

    double *gr = tu_xmalloc(nk * sizeof(double)), *mr = tu_xmalloc(2 * (size_t)n * sizeof(double));
    switch (kind) {
    case K_CE_FUSED: ref_ce_probs(o, lab, (size_t)n, (size_t)k, gr, mr); break;
    case K_CE_LOGITS: ref_ce_logits(o, lab, (size_t)n, (size_t)k, gr, mr); break;
    case K_BCE_LOGITS: ref_bce_logits(o, lab, (size_t)n, gr, mr); break;
    case K_MSE: ref_mse(o, tgt, (size_t)n, (size_t)k, gr, mr); break;
    default: ref_bce_probs(o, lab, (size_t)n, gr, mr); break;
    }
    cl_mem gbuf = kind == K_CE_FUSED ? out->dx[0] : out->dy;
    size_t go = tu_sub_off(gbuf), ng = net->garena_bytes / sizeof(float);
    nn_run run = {d, n, 1, 0, 0};
    double *lm = tu_xmalloc(2 * (size_t)n * sizeof(double));
    for (int want = 0; want < 2; want++) {
        TRY(nn_buf_fill(d, net->garena, 0, ng, SENT, &E));
        TRY(nn_buf_fill(d, metrics, 0, nm, SENT, &E));
        TRY(nn_loss_run(net, &run, target, metrics, want, &E));
        float *mf = tu_read_all(metrics, nm, &E), *ga = tu_read_all(net->garena, ng, &E);
        CHECK(mf && ga, "%s: %s", desc, E.msg);
        span mok = {0, 2 * (size_t)n};
        long bad = clobbered(mf, nm, &mok, 1);
        CHECK(bad < 0, "%s: metrics[%ld] written beyond 2n = %d", desc, bad, 2 * n);
        double el = 0, em = 0;
        for (int r = 0; r < n; r++) {
            lm[r] = mf[2 * r];
            lm[n + r] = mr[2 * r];
        }
        el = ref_rel_err(lm, lm + n, (size_t)n, 1e-6);
        for (int r = 0; r < n; r++) {
            double a = mf[2 * r + 1], b = mr[2 * r + 1];
            em = fmax(em, fabs(a - b) / (kind == K_MSE ? fmax(fabs(b), 1e-6) : 1.0));
        }
        tu_note_err("loss.value", el);
        CHECK(el < TOL, "%s: per-sample loss rel err %.3g", desc, el);
        CHECK(em < (kind == K_MSE ? TOL : 0.5), "%s: metric err %.3g", desc, em);
        span gok = {go, want ? nk : 0};
        bad = clobbered(ga, ng, &gok, 1);
        CHECK(bad < 0, "%s (want_grad=%d): gradient arena[%ld] = %g outside grad rows < n (grad at %zu)", desc, want,
              bad, bad < 0 ? 0.0 : ga[bad], go);
        if (want) {
            double *g = tu_f2d(ga + go, nk);
            double eg = ref_rel_err(g, gr, nk, 1e-6);
            tu_note_err("loss.grad", eg);
            CHECK(eg < TOL, "%s: gradient rel err %.3g", desc, eg);
            free(g);
        }
        free(mf), free(ga);
    }
    nn_buf_free(&target);
    nn_buf_free(&metrics);
    free(lab), free(tgt), free(o), free(gr), free(mr), free(lm);
    tu_net_free(&t);
    return 0;
}

TEST(loss_ce_fused)
{
    return loss_case(K_CE_FUSED, 17, 20, 10, NULL) || loss_case(K_CE_FUSED, 1, 3, 2, NULL) ||
           loss_case(K_CE_FUSED, 3, 3, 33, NULL);
}

TEST(loss_ce_logits)
{
    return loss_case(K_CE_LOGITS, 17, 20, 10, NULL) || loss_case(K_CE_LOGITS, 1, 3, 2, NULL) ||
           loss_case(K_CE_LOGITS, 5, 8, 33, NULL);
}

TEST(loss_bce_probs)
{
    return loss_case(K_BCE_DENSE_SIGMOID, 17, 20, 1, NULL) || loss_case(K_BCE_SIGMOID_LAYER, 5, 9, 1, NULL) ||
           loss_case(K_BCE_DENSE_SIGMOID, 1, 1, 1, NULL);
}

/* Probabilities at and beyond the clamp [1e-7, 1 - 1e-7]: finite loss and
 * gradient, equal to the clamped reference. */
TEST(loss_bce_clamp)
{
    static const double v[8] = {0.0, 1.0, 1e-9, 1 - 1e-9, 0.3, 0.7, 1e-7, 0.999};
    return loss_case(K_BCE_DENSE_SIGMOID, 8, 8, 1, v) || loss_case(K_BCE_SIGMOID_LAYER, 6, 8, 1, v);
}

TEST(loss_bce_logits)
{
    static const double v[6] = {-40.0, 40.0, -0.01, 0.01, 15.0, -15.0};
    return loss_case(K_BCE_LOGITS, 17, 20, 1, NULL) || loss_case(K_BCE_LOGITS, 6, 6, 1, v);
}

TEST(loss_mse)
{
    return loss_case(K_MSE, 17, 20, 3, NULL) || loss_case(K_MSE, 1, 4, 1, NULL) || loss_case(K_MSE, 7, 7, 64, NULL);
}

/* softmax + cross-entropy through nn_net_forward / nn_loss_run / nn_net_backward:
 * the softmax backward is skipped and the loss writes the logits' gradient. */
TEST(loss_ce_fused_chain)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[6]},\"layers\":["
                       "{\"type\":\"dense\",\"units\":5,\"activation\":\"sigmoid\"},"
                       "{\"type\":\"dense\",\"units\":4},{\"type\":\"softmax\"}],\"loss\":\"cross_entropy\"}";
    tu_net t;
    TRY(tu_net_make(&t, json, 12, 1, &E));
    nn_net *net = &t.net;
    ref_rng rng;
    ref_rng_seed(&rng, 31);
    double *P[2][2];
    for (int i = 0; i < 2; i++)
        TRY(write_params(&net->L[i], &rng, P[i], &E));
    const int n = 11;
    double *x = tu_rnd_vec(&rng, 12 * 6, -1, 1);
    int lab[12];
    for (int i = 0; i < 12; i++)
        lab[i] = (int)(ref_rng_next(&rng) % 4);
    cl_mem lb, metrics;
    TRY(nn_buf_alloc(d, sizeof lab, "labels", &lb, &E));
    TRY(nn_buf_write(d, lb, 0, sizeof lab, lab, 1, &E));
    TRY(nn_buf_alloc(d, 2 * 12 * sizeof(float), "metrics", &metrics, &E));
    TRY(tu_upload(net->x_in, 0, x, 12 * 6, &E));
    nn_run run = {d, n, 1, 1, 1};
    TRY(nn_net_forward(net, &run, &E));
    TRY(nn_net_zero_grads(net, &E));
    TRY(nn_loss_run(net, &run, lb, metrics, 1, &E));
    TRY(nn_net_backward(net, &run, &E));

    double h1[11 * 5], h2[11 * 4], p[11 * 4], m[22], g[11 * 4], dh1[11 * 5] = {0};
    double dW2[5 * 4], db2[4], dW1[6 * 5], db1[5], dev_w[6 * 5], dev_b[5], dm[22];
    ref_dense_forward(x, P[0][0], P[0][1], n, 6, 5, NN_ACT_SIGMOID, h1);
    ref_dense_forward(h1, P[1][0], P[1][1], n, 5, 4, NN_ACT_NONE, h2);
    ref_softmax_forward(h2, p, n, 4);
    ref_ce_probs(p, lab, n, 4, g, m);
    ref_dense_backward(h1, P[1][0], h2, g, n, 5, 4, NN_ACT_NONE, dh1, dW2, db2);
    ref_dense_backward(x, P[0][0], h1, dh1, n, 6, 5, NN_ACT_SIGMOID, NULL, dW1, db1);
    TRY(tu_download(metrics, 0, dm, 22, &E));
    double el = 0;
    for (int r = 0; r < n; r++) {
        el = fmax(el, fabs(dm[2 * r] - m[2 * r]) / fmax(fabs(m[2 * r]), 1e-3));
        CHECK(dm[2 * r + 1] == m[2 * r + 1], "sample %d: correct %g vs %g", r, dm[2 * r + 1], m[2 * r + 1]);
    }
    tu_note_err("loss.chain", el);
    CHECK(el < TOL, "loss rel err %.3g", el);
    TRY(tu_download(net->L[1].param[0].g, 0, dev_w, 20, &E));
    TRY(tu_download(net->L[1].param[1].g, 0, dev_b, 4, &E));
    double e2 = fmax(ref_rel_err(dev_w, dW2, 20, 1e-6), ref_rel_err(dev_b, db2, 4, 1e-6));
    TRY(tu_download(net->L[0].param[0].g, 0, dev_w, 30, &E));
    TRY(tu_download(net->L[0].param[1].g, 0, dev_b, 5, &E));
    double e1 = fmax(ref_rel_err(dev_w, dW1, 30, 1e-6), ref_rel_err(dev_b, db1, 5, 1e-6));
    tu_note_err("loss.chain", fmax(e1, e2));
    CHECK(e2 < TOL && e1 < TOL, "param grads rel err: layer 1 %.3g, layer 0 %.3g", e2, e1);
    nn_buf_free(&lb);
    nn_buf_free(&metrics);
    for (int i = 0; i < 2; i++)
        free(P[i][0]), free(P[i][1]);
    free(x);
    tu_net_free(&t);
    return 0;
}

TEST(loss_metrics_accum)
{
    NEED_DEV(d);
    static const int ns[] = {1, 3, 63, 64, 65, 200, 1000};
    ref_rng rng;
    ref_rng_seed(&rng, 41);
    cl_mem m, acc;
    TRY(nn_buf_alloc(d, 2 * 1000 * sizeof(float) + 64, "metrics", &m, &E));
    TRY(nn_buf_alloc(d, 3 * sizeof(float), "acc", &acc, &E));
    for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
        size_t n = (size_t)ns[c];
        double *v = tu_rnd_vec(&rng, 2 * 1000, 0, 3);
        double a0[3] = {1.5, 2.5, 7}, ar[3] = {1.5, 2.5, 7}, ad[3];
        TRY(tu_upload(m, 0, v, 2 * 1000, &E));
        TRY(tu_upload(acc, 0, a0, 3, &E));
        TRY(nn_metrics_accum(d, m, (int)n, acc, &E));
        TRY(nn_metrics_accum(d, m, (int)n, acc, &E));
        ref_metrics_accum(v, n, ar);
        ref_metrics_accum(v, n, ar);
        TRY(tu_download(acc, 0, ad, 3, &E));
        double err = fmax(fabs(ad[0] - ar[0]) / ar[0], fabs(ad[1] - ar[1]) / ar[1]);
        tu_note_err("loss.metrics_accum", err);
        CHECK(err < TOL, "n=%zu: acc (%g, %g) vs (%g, %g): rel err %.3g", n, ad[0], ad[1], ar[0], ar[1], err);
        CHECK(ad[2] == ar[2], "n=%zu: count %g vs %g", n, ad[2], ar[2]);
        free(v);
    }
    nn_buf_free(&m);
    nn_buf_free(&acc);
    return 0;
}

/* ------------------------------------------------------------ optimisers */

typedef struct ocase {
    nn_opt_kind type;
    float lr, mu, wd;
    int nesterov;
} ocase;

static int optim_case(const ocase *c)
{
    NEED_DEV(d);
    char desc[128];
    snprintf(desc, sizeof desc, "%s lr=%g mu=%g wd=%g nesterov=%d", nn_opt_name(c->type), c->lr, c->mu, c->wd,
             c->nesterov);
    const size_t n = 1031;
    const int steps = 5;
    nn_opt_spec s = {c->type, c->lr, c->mu, c->wd, 0.9f, 0.999f, 1e-8f, c->nesterov};
    if (c->type != NN_OPT_SGD) {
        s.beta1 = 0.8f;
        s.beta2 = 0.99f;
        s.eps = 1e-6f;
    }
    ref_rng rng;
    ref_rng_seed(&rng, 61u + (unsigned)c->type * 5u + (unsigned)(c->mu * 10) + (unsigned)c->nesterov);
    double *w = tu_rnd_vec(&rng, n, -1, 1), *w0 = tu_dup_vec(w, n);
    double *m1 = tu_xmalloc(n * sizeof(double)), *m2 = tu_xmalloc(n * sizeof(double));
    double *got = tu_xmalloc(n * sizeof(double)), *dref = tu_xmalloc(n * sizeof(double)),
           *ddev = tu_xmalloc(n * sizeof(double));
    cl_mem wb, gb;
    TRY(nn_buf_alloc(d, n * sizeof(float), "w", &wb, &E));
    TRY(nn_buf_alloc(d, n * sizeof(float), "g", &gb, &E));
    TRY(tu_upload(wb, 0, w, n, &E));
    nn_optim o;
    TRY(nn_optim_init(&o, d, &s, n, &E));
    for (int t = 1; t <= steps; t++) {
        double *g = tu_rnd_vec(&rng, n, -1, 1);
        if (t == 3) /* small gradients too */
            for (size_t i = 0; i < n; i += 3)
                g[i] = (float)(g[i] * 1e-3);
        float lr = c->lr * (1.0f - 0.1f * (float)(t - 1)); /* a schedule: the lr argument is honoured */
        TRY(tu_upload(gb, 0, g, n, &E));
        TRY(nn_optim_step(&o, d, wb, gb, lr, &E));
        if (c->type == NN_OPT_SGD)
            ref_sgd_step(w, g, m1, n, lr, s.momentum, s.weight_decay, s.nesterov);
        else
            ref_adam_step(w, g, m1, m2, n, lr, s.beta1, s.beta2, s.eps, s.weight_decay, c->type == NN_OPT_ADAMW, t);
        TRY(tu_download(gb, 0, got, n, &E));
        CHECK(ref_max_abs_diff(got, g, n) == 0, "%s: step %d modified the gradient", desc, t);
        free(g);
    }
    CHECK(o.t == steps, "%s: t = %ld", desc, o.t);
    TRY(tu_download(wb, 0, got, n, &E));
    /* compare the total update w - w0, which is small next to w */
    for (size_t i = 0; i < n; i++) {
        dref[i] = w[i] - w0[i];
        ddev[i] = got[i] - w0[i];
    }
    double ew = ref_rel_err(ddev, dref, n, 1e-6);
    tu_note_err(c->type == NN_OPT_SGD ? "optim.sgd" : "optim.adam", ew);
    CHECK(ew < TOL, "%s: update w - w0 rel err %.3g", desc, ew);
    if (o.m1) {
        TRY(tu_download(o.m1, 0, got, n, &E));
        double em = ref_rel_err(got, m1, n, 1e-6);
        CHECK(em < TOL, "%s: first moment / momentum rel err %.3g", desc, em);
    } else {
        CHECK(c->type == NN_OPT_SGD && c->mu == 0, "%s: no moment buffer", desc);
    }
    if (o.m2) {
        TRY(tu_download(o.m2, 0, got, n, &E));
        double ev = ref_rel_err(got, m2, n, 1e-6);
        CHECK(ev < TOL, "%s: second moment rel err %.3g", desc, ev);
    }
    nn_optim_free(&o);
    nn_buf_free(&wb);
    nn_buf_free(&gb);
    free(w), free(w0), free(m1), free(m2), free(got), free(dref), free(ddev);
    return 0;
}

TEST(optim_sgd)
{
    static const ocase cases[] = {
        {NN_OPT_SGD, 0.1f, 0.0f, 0.0f, 0},  {NN_OPT_SGD, 0.05f, 0.9f, 0.0f, 0}, {NN_OPT_SGD, 0.05f, 0.9f, 0.0f, 1},
        {NN_OPT_SGD, 0.1f, 0.0f, 0.01f, 0}, {NN_OPT_SGD, 0.05f, 0.9f, 0.05f, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (optim_case(&cases[i]))
            return 1;
    return 0;
}

TEST(optim_adam)
{
    static const ocase cases[] = {
        {NN_OPT_ADAM, 0.01f, 0, 0.0f, 0},
        {NN_OPT_ADAM, 0.01f, 0, 0.05f, 0},
        {NN_OPT_ADAMW, 0.01f, 0, 0.1f, 0},
        {NN_OPT_ADAMW, 0.003f, 0, 0.0f, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (optim_case(&cases[i]))
            return 1;
    return 0;
}

/* A tiny MLP learns a separable 2-D problem through the real kernels. */
TEST(optim_train_mlp)
{
    NEED_DEV(d);
    const char *json = "{\"input\":{\"shape\":[2]},\"layers\":["
                       "{\"type\":\"dense\",\"units\":16,\"activation\":\"tanh\"},"
                       "{\"type\":\"dense\",\"units\":2},{\"type\":\"softmax\"}],"
                       "\"loss\":\"cross_entropy\",\"optimizer\":{\"type\":\"adam\",\"lr\":0.02}}";
    double t0 = nn_now();
    tu_net t;
    enum { N = 128, STEPS = 300 };
    TRY(tu_net_make(&t, json, N, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 42, &E));
    ref_rng rng;
    ref_rng_seed(&rng, 51);
    double x[N * 2];
    int lab[N];
    for (int i = 0; i < N; i++) {
        double a, b, s;
        do {
            a = ref_rng_range(&rng, -1, 1);
            b = ref_rng_range(&rng, -1, 1);
            s = a - 0.7 * b + 0.1;
        } while (fabs(s) < 0.1); /* a margin around the boundary */
        x[2 * i] = (float)a;
        x[2 * i + 1] = (float)b;
        lab[i] = s > 0;
    }
    double l0, l1, a1;
    TRY(tu_train(d, &t, x, N * 2, lab, N, STEPS, &l0, &l1, &a1, &E));
    double secs = nn_now() - t0;
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  train_mlp: loss %.4f -> %.5f (x%.0f lower), accuracy %.3f, %d steps in %.2f s\n", l0, l1,
                l0 / l1, a1, STEPS, secs);
    CHECK(isfinite(l1) && l1 < l0 / 20, "loss %.4f -> %.4f: not reduced 20x", l0, l1);
    CHECK(a1 >= 0.99, "accuracy %.3f after training", a1);
    tu_net_free(&t);
    return 0;
}

/* ------------------------------------------------------------- gather */

/* nn_devdata_batch: rows picked through the order, normalised per feature /
 * per channel / by one value; labels and float targets gathered alike. */
static int gather_case(const int *shape, int nd, int nnorm, int tdim, size_t start, int n, int maxb)
{
    NEED_DEV(d);
    char sh[64], json[256], desc[128];
    tu_shape_json(sh, sizeof sh, shape, nd);
    snprintf(desc, sizeof desc, "gather shape=[%s] nnorm=%d tdim=%d start=%zu n=%d/%d", sh, nnorm, tdim, start, n,
             maxb);
    snprintf(json, sizeof json, "{\"input\":{\"shape\":[%s]},\"layers\":[{\"type\":\"relu\"}]}", sh);
    tu_net t;
    TRY(tu_net_make(&t, json, maxb, 0, &E));
    nn_net *net = &t.net;
    size_t dim = tu_prod(shape, nd), N = 50;
    ref_rng rng;
    ref_rng_seed(&rng, 71u + dim + (unsigned)nnorm);
    double *src = tu_rnd_vec(&rng, N * dim, -5, 5);
    double *norm = NULL;
    if (nnorm) {
        float *mean = tu_xmalloc((size_t)nnorm * sizeof(float)), *sd = tu_xmalloc((size_t)nnorm * sizeof(float));
        for (int i = 0; i < nnorm; i++) {
            mean[i] = (float)ref_rng_range(&rng, -2, 2);
            sd[i] = i == 1 ? 0.0f : (float)ref_rng_range(&rng, 0.1, 3); /* std 0 means 1 */
        }
        TRY(nn_net_set_norm(net, mean, sd, nnorm, &E));
        norm = tu_xmalloc(2 * dim * sizeof(double));
        size_t per = dim / (size_t)nnorm;
        for (size_t j = 0; j < dim; j++) {
            norm[j] = mean[j / per];
            norm[dim + j] = 1.0 / (sd[j / per] > 0 ? sd[j / per] : 1.0);
        }
        free(mean), free(sd);
    }
    int order[50];
    for (int i = 0; i < 50; i++)
        order[i] = i;
    for (int i = 49; i > 0; i--) {
        int j = (int)(ref_rng_next(&rng) % (unsigned)(i + 1)), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    nn_devdata dd;
    memset(&dd, 0, sizeof dd);
    dd.n = N;
    dd.dim = dim;
    dd.tdim = tdim;
    dd.has_targets = 1;
    size_t tsz = tdim ? (size_t)tdim * sizeof(float) : sizeof(int);
    TRY(nn_buf_alloc(d, N * dim * sizeof(float), "x", &dd.x, &E));
    TRY(nn_buf_alloc(d, N * tsz, "y", &dd.y, &E));
    TRY(nn_buf_alloc(d, N * sizeof(int), "idx", &dd.idx, &E));
    TRY(tu_upload(dd.x, 0, src, N * dim, &E));
    TRY(nn_devdata_order(d, &dd, order, &E));
    int labels[50];
    double *tg = tu_rnd_vec(&rng, N * (size_t)(tdim ? tdim : 1), -3, 3);
    for (int i = 0; i < 50; i++)
        labels[i] = (int)(ref_rng_next(&rng) % 1000);
    if (tdim)
        TRY(tu_upload(dd.y, 0, tg, N * (size_t)tdim, &E));
    else
        TRY(nn_buf_write(d, dd.y, 0, sizeof labels, labels, 1, &E));
    cl_mem target;
    size_t ntf = (size_t)maxb * (tdim ? (size_t)tdim : 1);
    TRY(nn_buf_alloc(d, ntf * sizeof(float), "target", &target, &E));
    TRY(nn_buf_fill(d, target, 0, ntf, SENT, &E));
    TRY(nn_buf_fill(d, net->x_in, 0, (size_t)maxb * dim, SENT, &E));
    TRY(nn_devdata_batch(net, &dd, start, n, target, &E));

    float *xf = tu_read_all(net->x_in, (size_t)maxb * dim, &E), *tf = tu_read_all(target, ntf, &E);
    CHECK(xf && tf, "%s: %s", desc, E.msg);
    double *xr = tu_xmalloc((size_t)n * dim * sizeof(double)), *xd = tu_f2d(xf, (size_t)n * dim);
    ref_gather_rows(src, order, start, (size_t)n, dim, norm, xr);
    double ex = ref_rel_err(xd, xr, (size_t)n * dim, 1e-6);
    tu_note_err("gather.rows", ex);
    CHECK(ex < TOL, "%s: gathered rows rel err %.3g", desc, ex);
    span ok = {0, (size_t)n * dim};
    long bad = clobbered(xf, (size_t)maxb * dim, &ok, 1);
    CHECK(bad < 0, "%s: x_in[%ld] written beyond row n", desc, bad);
    if (tdim) {
        double *tr = tu_xmalloc((size_t)n * (size_t)tdim * sizeof(double)), *td = tu_f2d(tf, (size_t)n * (size_t)tdim);
        ref_gather_rows(tg, order, start, (size_t)n, (size_t)tdim, NULL, tr);
        CHECK(ref_max_abs_diff(td, tr, (size_t)n * (size_t)tdim) == 0, "%s: gathered targets differ", desc);
        free(tr), free(td);
    } else {
        for (int r = 0; r < n; r++) {
            int ti;
            memcpy(&ti, tf + r, sizeof ti);
            CHECK(ti == labels[order[start + (size_t)r]], "%s: label %d is %d, expected %d", desc, r, ti,
                  labels[order[start + (size_t)r]]);
        }
    }
    span tok = {0, (size_t)n * (tdim ? (size_t)tdim : 1)};
    bad = clobbered(tf, ntf, &tok, 1);
    CHECK(bad < 0, "%s: target[%ld] written beyond row n", desc, bad);
    nn_devdata_free(&dd);
    nn_buf_free(&target);
    free(xf), free(tf), free(xr), free(xd), free(src), free(norm), free(tg);
    tu_net_free(&t);
    return 0;
}

TEST(gather_rows)
{
    static const int s7[] = {7}, s300[] = {300}, s3d[] = {3, 2, 5};
    return gather_case(s7, 1, 0, 0, 9, 13, 16) ||    /* no normalisation, int labels */
           gather_case(s7, 1, 7, 3, 0, 17, 20) ||    /* per feature, float targets */
           gather_case(s300, 1, 1, 0, 37, 13, 13) || /* one value for all */
           gather_case(s3d, 3, 3, 1, 20, 1, 4) ||    /* per channel of [c, h, w] */
           gather_case(s3d, 3, 30, 0, 49, 1, 1);     /* per feature of a 3-D input, last sample */
}

/* ------------------------------------------------------------ initialisation */

typedef struct {
    double lo, hi, sum, sq;
    size_t n;
} init_stats;

static int param_stats(nn_net *net, int layer, int param, init_stats *st, nn_err *e)
{
    nn_param *P = &net->L[layer].param[param];
    double *v = malloc(P->n * sizeof *v);
    if (!v)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    int r = tu_download(P->w, 0, v, P->n, e);
    memset(st, 0, sizeof *st);
    st->lo = st->hi = v[0];
    for (size_t i = 0; !r && i < P->n; i++) {
        st->lo = fmin(st->lo, v[i]);
        st->hi = fmax(st->hi, v[i]);
        st->sum += v[i];
        st->sq += v[i] * v[i];
    }
    st->n = P->n;
    free(v);
    return r;
}

/* Each "init" draws from the documented distribution (bounds and variance). */
TEST(init_distributions)
{
    NEED_DEV(d);
    (void)d;
    const char *json = "{\"input\":{\"shape\":[4,20,20]},\"layers\":["
                       "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":5,\"init\":\"torch\"},"    /* fan_in 100 */
                       "{\"type\":\"flatten\"},"
                       "{\"type\":\"dense\",\"units\":200,\"activation\":\"relu\"},"              /* he, fan_in 16384 */
                       "{\"type\":\"dense\",\"units\":300,\"init\":\"glorot\"},"                  /* 200 -> 300 */
                       "{\"type\":\"dense\",\"units\":500,\"init\":\"torch\"}]}";                 /* fan_in 300 */
    tu_net t;
    TRY(tu_net_make(&t, json, 1, 0, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 7, &E));
    init_stats w, b;
    /* torch conv: U(+-1/sqrt(100)) for weights and bias; variance lim^2/3 */
    TRY(param_stats(net, 0, 0, &w, &E));
    TRY(param_stats(net, 0, 1, &b, &E));
    double lim = 0.1, var = w.sq / (double)w.n;
    CHECK(w.lo >= -lim && w.hi <= lim && w.hi > 0.95 * lim && fabs(var - lim * lim / 3) < 0.05 * lim * lim / 3,
          "torch conv weights: [%g, %g] var %g", w.lo, w.hi, var);
    CHECK(b.lo >= -lim && b.hi <= lim && b.sq > 0, "torch conv bias [%g, %g]", b.lo, b.hi);
    /* relu dense: He normal, std sqrt(2/16384); bias zero */
    TRY(param_stats(net, 2, 0, &w, &E));
    TRY(param_stats(net, 2, 1, &b, &E));
    var = w.sq / (double)w.n;
    CHECK(fabs(var / (2.0 / 16384) - 1) < 0.02 && fabs(w.sum / (double)w.n) < 0.01 * sqrt(2.0 / 16384),
          "he: var %g want %g", var, 2.0 / 16384);
    CHECK(b.lo == 0 && b.hi == 0, "he bias is not zero");
    /* glorot uniform: limit sqrt(6/500) */
    TRY(param_stats(net, 3, 0, &w, &E));
    lim = sqrt(6.0 / 500);
    var = w.sq / (double)w.n;
    CHECK(w.lo >= -lim && w.hi <= lim && fabs(var - lim * lim / 3) < 0.05 * lim * lim / 3, "glorot: [%g, %g] var %g",
          w.lo, w.hi, var);
    /* torch dense: U(+-1/sqrt(300)) */
    TRY(param_stats(net, 4, 0, &w, &E));
    TRY(param_stats(net, 4, 1, &b, &E));
    lim = 1 / sqrt(300.0);
    var = w.sq / (double)w.n;
    CHECK(w.lo >= -lim && w.hi <= lim && fabs(var - lim * lim / 3) < 0.05 * lim * lim / 3, "torch dense: var %g",
          var);
    CHECK(b.lo >= -lim && b.hi <= lim && b.lo < -0.5 * lim && b.hi > 0.5 * lim, "torch dense bias [%g, %g]", b.lo,
          b.hi);
    tu_net_free(&t);
    return 0;
}

/* Mean, variance and fourth moment of a parameter (or of elements [a, b) of it). */
static int param_moments(nn_net *net, int layer, int param, size_t a, size_t b, double m[3], init_stats *st,
                         nn_err *e)
{
    nn_param *P = &net->L[layer].param[param];
    if (b == 0 || b > P->n)
        b = P->n;
    double *v = malloc(P->n * sizeof *v);
    if (!v)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    int r = tu_download(P->w, 0, v, P->n, e);
    memset(st, 0, sizeof *st);
    m[0] = m[1] = m[2] = 0;
    st->lo = st->hi = v[a];
    for (size_t i = a; !r && i < b; i++) {
        st->lo = fmin(st->lo, v[i]);
        st->hi = fmax(st->hi, v[i]);
        m[0] += v[i];
        m[1] += v[i] * v[i];
        m[2] += v[i] * v[i] * v[i] * v[i];
    }
    st->n = b - a;
    m[0] /= (double)st->n;
    m[1] /= (double)st->n;
    m[2] /= (double)st->n;
    free(v);
    return r;
}

/* Checks a parameter drawn from U(-lim, lim) (k = 1) or from the sum of two
 * such draws (k = 2: triangular on [-2 lim, 2 lim]): bounds, mean, variance
 * k lim^2 / 3 and kurtosis (9/5 uniform, 12/5 triangular), within tol. */
static int check_uniform(nn_net *net, int layer, int param, double lim, int k, double tol, const char *what)
{
    init_stats st;
    double m[3];
    TRY(param_moments(net, layer, param, 0, 0, m, &st, &E));
    double var = k * lim * lim / 3, kurt = m[2] / (m[1] * m[1]), want_kurt = k == 1 ? 1.8 : 2.4;
    CHECK(st.lo >= -k * lim && st.hi <= k * lim && st.hi > 0.9 * k * lim && st.lo < -0.9 * k * lim,
          "%s: [%g, %g], want within +-%g and reaching near it", what, st.lo, st.hi, k * lim);
    CHECK(fabs(m[0]) < 4 * sqrt(var / (double)st.n), "%s: mean %g", what, m[0]);
    CHECK(fabs(m[1] / var - 1) < tol, "%s: variance %g, want %g", what, m[1], var);
    CHECK(fabs(kurt - want_kurt) < 2 * tol * want_kurt, "%s: kurtosis %g, want %g", what, kurt, want_kurt);
    return 0;
}

/* "init": "torch" on the sequence layers draws PyTorch's distributions:
 * nn.Embedding N(0, 1) (the position table too), nn.LSTM/nn.GRU uniform
 * +-1/sqrt(units) for every weight and bias (the lstm's one bias as the sum
 * b_ih + b_hh of two draws, no forget-gate 1), nn.MultiheadAttention
 * (in_proj Glorot, out_proj uniform +-1/sqrt(D), biases zero), nn.LayerNorm
 * (ones, zeros); the embedding's default is N(0, 1) too, the others' defaults
 * (and the embedding's "he") stay what they were. */
TEST(init_torch_sequence)
{
    NEED_DEV(d);
    (void)d;
    static const char *const json[2] = {
        "{\"input\":{\"shape\":[64]},\"layers\":["
        "{\"type\":\"embedding\",\"input_dim\":300,\"output_dim\":96,\"positional\":true,\"init\":\"torch\"},"
        "{\"type\":\"layernorm\",\"init\":\"torch\"},"
        "{\"type\":\"attention\",\"heads\":4,\"causal\":true,\"init\":\"torch\"},"
        "{\"type\":\"lstm\",\"units\":256,\"return_sequences\":true,\"init\":\"torch\"},"
        "{\"type\":\"gru\",\"units\":100,\"init\":\"torch\"}]}",
        "{\"input\":{\"shape\":[64]},\"layers\":["
        "{\"type\":\"embedding\",\"input_dim\":300,\"output_dim\":96,\"positional\":true,\"init\":\"he\"},"
        "{\"type\":\"layernorm\"},"
        "{\"type\":\"attention\",\"heads\":4,\"causal\":true},"
        "{\"type\":\"lstm\",\"units\":256,\"return_sequences\":true},"
        "{\"type\":\"gru\",\"units\":100}]}"};
    for (int v = 0; v < 2; v++) {
        const int torch = v == 0;
        tu_net t;
        TRY(tu_net_make(&t, json[v], 1, 0, &E));
        nn_net *net = &t.net;
        TRY(nn_net_init_params(net, 11, &E));
        init_stats st;
        double m[3];
        /* embedding weight [300, 96] and position [64, 96] */
        for (int p = 0; p < 2; p++) {
            TRY(param_moments(net, 0, p, 0, 0, m, &st, &E));
            double var = torch ? 1.0 : 2.0 / 96, kurt = m[2] / (m[1] * m[1]);
            CHECK(fabs(m[1] / var - 1) < 0.05 && fabs(m[0]) < 4 * sqrt(var / (double)st.n) && fabs(kurt - 3) < 0.3,
                  "embedding %s (%s): mean %g var %g (want %g) kurtosis %g (want 3)", net->L[0].param[p].name,
                  torch ? "torch" : "default", m[0], m[1], var, kurt);
        }
        /* layernorm: ones and zeros either way */
        TRY(param_moments(net, 1, 0, 0, 0, m, &st, &E));
        CHECK(st.lo == 1 && st.hi == 1, "layernorm weight is not all ones");
        TRY(param_moments(net, 1, 1, 0, 0, m, &st, &E));
        CHECK(st.lo == 0 && st.hi == 0, "layernorm bias is not all zeros");
        /* attention D = 96: weight_qkv Glorot over [96, 288] either way; weight_out U(+-1/sqrt(96)) with torch,
         * Glorot sqrt(6/192) by default; biases zero */
        TRY(check_uniform(net, 2, 0, sqrt(6.0 / (96 + 288)), 1, 0.05, "attention weight_qkv"));
        TRY(check_uniform(net, 2, 2, torch ? 1 / sqrt(96.0) : sqrt(6.0 / 192), 1, 0.05, "attention weight_out"));
        for (int p = 1; p < 4; p += 2) {
            TRY(param_moments(net, 2, p, 0, 0, m, &st, &E));
            CHECK(st.lo == 0 && st.hi == 0, "attention %s is not zero", net->L[2].param[p].name);
        }
        /* lstm H = 256 on F = 96 */
        if (torch) {
            double lim = 1 / sqrt(256.0);
            TRY(check_uniform(net, 3, 0, lim, 1, 0.05, "lstm weight_ih"));
            TRY(check_uniform(net, 3, 1, lim, 1, 0.05, "lstm weight_hh"));
            TRY(check_uniform(net, 3, 2, lim, 2, 0.12, "lstm bias (b_ih + b_hh)"));
            /* no forget bias of 1: the forget block [H, 2H) is centred on 0 like the rest */
            TRY(param_moments(net, 3, 2, 256, 512, m, &st, &E));
            CHECK(fabs(m[0]) < 0.2 * lim, "lstm forget-gate bias mean %g", m[0]);
        } else {
            TRY(check_uniform(net, 3, 0, sqrt(6.0 / (96 + 1024)), 1, 0.05, "lstm weight_ih (default)"));
            TRY(check_uniform(net, 3, 1, sqrt(6.0 / (256 + 1024)), 1, 0.05, "lstm weight_hh (default)"));
            TRY(param_moments(net, 3, 2, 0, 0, m, &st, &E));
            CHECK(st.lo == 0 && st.hi == 1 && fabs(m[0] - 0.25) < 1e-9, "lstm default bias: forget gate 1, rest 0");
        }
        /* gru H = 100 on F = 256 */
        if (torch)
            for (int p = 0; p < 4; p++)
                TRY(check_uniform(net, 4, p, 0.1, 1, p < 2 ? 0.05 : 0.15, net->L[4].param[p].name));
        else
            for (int p = 2; p < 4; p++) {
                TRY(param_moments(net, 4, p, 0, 0, m, &st, &E));
                CHECK(st.lo == 0 && st.hi == 0, "gru default %s is not zero", net->L[4].param[p].name);
            }
        tu_net_free(&t);
    }
    /* the embedding's default is PyTorch's N(0, 1) (README: the char-LSTM ends with 15% fewer
     * bits/char than with He) */
    tu_net t;
    TRY(tu_net_make(&t, "{\"input\":{\"shape\":[64]},\"layers\":[{\"type\":\"embedding\",\"input_dim\":300,"
                        "\"output_dim\":96,\"positional\":true}]}",
                    1, 0, &E));
    for (int p = 0; p < 2; p++) {
        init_stats st;
        double m[3];
        TRY(nn_net_init_params(&t.net, 3, &E));
        TRY(param_moments(&t.net, 0, p, 0, 0, m, &st, &E));
        CHECK(fabs(m[1] - 1) < 0.05 && fabs(m[0]) < 4 / sqrt((double)st.n) && fabs(m[2] / (m[1] * m[1]) - 3) < 0.3,
              "embedding default %s: mean %g var %g kurtosis %g, want N(0, 1)", t.net.L[0].param[p].name, m[0], m[1],
              m[2] / (m[1] * m[1]));
    }
    tu_net_free(&t);
    /* what "init" accepts where */
    TRY(tu_expect_error("{\"input\":{\"shape\":[8]},\"layers\":[{\"type\":\"embedding\",\"input_dim\":9,"
                        "\"output_dim\":4,\"init\":\"normal\"}]}",
                        "layers[0].init: expected \"he\", \"glorot\" or \"torch\"", NULL));
    TRY(tu_expect_error("{\"input\":{\"shape\":[8,4]},\"layers\":[{\"type\":\"layernorm\",\"init\":\"he\"}]}",
                        "layers[0].init: expected \"torch\"", NULL));
    TRY(tu_expect_error("{\"input\":{\"shape\":[8,4]},\"layers\":[{\"type\":\"lstm\",\"units\":3,\"init\":1}]}",
                        "layers[0].init: expected", NULL));
    return 0;
}

/* ------------------------------------------------------------ denormalize */

/* adapt takes the targets' mean/std over the given rows; forward is
 * x * std + mean per target; backward accumulates dy / std (the gradient of
 * the loss on standardised targets). */
TEST(layer_denormalize)
{
    NEED_DEV(d);
    enum { T = 5, D = 3, N = 4, ROWS = 6 };
    tu_net t;
    TRY(tu_net_make(&t, "{\"input\":{\"shape\":[5,3]},\"layers\":[" PLACEHOLDER "{\"type\":\"denormalize\"}],"
                      "\"loss\":\"mse\"}",
                  N, 1, &E));
    nn_layer *L = nn_net_out(&t.net);
    CHECK(L->nparam == 2 && !L->param[0].trainable && !L->param[1].trainable, "mean/std are state, not trained");
    /* targets of 6 rows (the adapt uses rows 5, 0, 2, 3: 4 of them); column 2 constant */
    const float tg[ROWS * D] = {1, 100, 7, 2, 900, 7, 3, 300, 7, 5, 500, 7, 1e9f, 1e9f, 1e9f, 9, -100, 7};
    const int rows[N] = {5, 0, 2, 3};
    TRY(L->type->fit(L, d, tg, D, rows, N, &E));
    double mean[D] = {0}, sd[D] = {0};
    for (int k = 0; k < D; k++) {
        for (int i = 0; i < N; i++)
            mean[k] += tg[rows[i] * D + k] / (double)N;
        for (int i = 0; i < N; i++)
            sd[k] += pow(tg[rows[i] * D + k] - mean[k], 2) / N;
        sd[k] = sd[k] > 0 ? sqrt(sd[k]) : 1.0; /* a constant target keeps scale 1 */
    }
    double got[2 * D];
    TRY(tu_download(L->param[0].w, 0, got, D, &E));
    TRY(tu_download(L->param[1].w, 0, got + D, D, &E));
    for (int k = 0; k < D; k++)
        CHECK(fabs(got[k] - mean[k]) < 1e-5 * (1 + fabs(mean[k])) && fabs(got[D + k] - sd[k]) < 1e-5 * sd[k],
              "target %d: mean %g std %g, want %g %g", k, got[k], got[D + k], mean[k], sd[k]);
    size_t cnt = (size_t)N * T * D;
    ref_rng rng;
    ref_rng_seed(&rng, 4242);
    double *x = tu_rnd_vec(&rng, cnt, -2, 2), *dy = tu_rnd_vec(&rng, cnt, -1, 1), *dx0 = tu_rnd_vec(&rng, cnt, -1, 1);
    double *y = tu_xmalloc(cnt * sizeof *y), *dx = tu_xmalloc(cnt * sizeof *dx);
    TRY(tu_upload(L->x[0], 0, x, cnt, &E));
    nn_run run = {d, N, 1, 1, 1};
    TRY(L->type->forward(L, &run, &E));
    TRY(tu_download(L->y, 0, y, cnt, &E));
    TRY(tu_upload(L->dy, 0, dy, cnt, &E));
    TRY(tu_upload(L->dx[0], 0, dx0, cnt, &E));
    TRY(L->type->backward(L, &run, &E));
    TRY(tu_download(L->dx[0], 0, dx, cnt, &E));
    for (size_t i = 0; i < cnt; i++) {
        int k = (int)(i % D);
        double yr = x[i] * sd[k] + mean[k], dxr = dx0[i] + dy[i] / sd[k];
        CHECK(fabs(y[i] - yr) < 1e-5 * (1 + fabs(yr)), "y[%zu] %g want %g", i, y[i], yr);
        CHECK(fabs(dx[i] - dxr) < 1e-5 * (1 + fabs(dxr)), "dx[%zu] %g want %g", i, dx[i], dxr);
    }
    free(x), free(dy), free(dx0), free(y), free(dx);
    tu_net_free(&t);
    /* only as the output of an mse model */
    const char *bad[2][2] = {
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"denormalize\"},{\"type\":\"dense\",\"units\":1}],"
         "\"loss\":\"mse\"}",
         "denormalize must be the last layer"},
        {"{\"input\":{\"shape\":[3]},\"layers\":[{\"type\":\"dense\",\"units\":2},{\"type\":\"denormalize\"}]}",
         "it needs \"loss\": \"mse\""}};
    for (int i = 0; i < 2; i++) {
        TRY(tu_net_make(&t, bad[i][0], 2, 1, &E));
        int rc = nn_loss_check(&t.net, 2, 1, 1, &E);
        CHECK(rc == NN_EDATA && strstr(E.msg, bad[i][1]), "case %d: rc %d msg '%s'", i, rc, E.msg);
        tu_net_free(&t);
    }
    return 0;
}
