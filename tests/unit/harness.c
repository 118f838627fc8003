/* harness.c - the generic layer test (harness.h). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

#include "tutil.h"

static nn_err E;

#define TOL 1e-4      /* device (fp32) vs reference, relative to the reference's largest value */
#define FD_TOL 1e-6   /* reference backward vs central differences (double) */
#define FD_FLOOR 1e-8 /* the smallest largest |gradient| those differences are relative to */

/* The reference's forward as a scalar: sum r . f(x, p). */
typedef struct fd_ctx {
    const tu_layer_case *c;
    const double *x;
    double *const *p;
    const double *r;
    double *y;
    size_t n, in, out;
} fd_ctx;

static double fd_f(void *v)
{
    fd_ctx *f = v;
    f->c->forward(f->c, f->x, f->p, f->y, f->n, f->in, f->out);
    return tu_dot(f->r, f->y, f->n * f->out);
}

static int check(const tu_layer_case *c, nn_dev *d, tu_net *t, const char *desc)
{
    nn_layer *L = nn_net_out(&t->net);
    size_t in = tu_prod(c->shape, c->nd), out = nn_shape_size(&L->out_shape);
    size_t n = (size_t)c->n, N = n * in, NO = n * out, maxN = (size_t)c->maxb * in, maxO = (size_t)c->maxb * out;
    ref_rng rng = {(uint64_t)in * 131 + out * 7 + n};
    double lo = c->lo, hi = c->hi;
    if (lo == 0 && hi == 0)
        lo = -2, hi = 2;
    double *p[NN_MAX_PARAMS] = {0}, *dp[NN_MAX_PARAMS] = {0}, *dpr[NN_MAX_PARAMS] = {0};
    for (int k = 0; k < L->nparam; k++) {
        p[k] = tu_rnd_vec_nz(&rng, L->param[k].n, -1, 1, 1e-3);
        TRY(tu_upload(L->param[k].w, 0, p[k], L->param[k].n, &E));
    }
    double *x = tu_rnd_vec_nz(&rng, maxN, lo, hi, 1e-3);
    TRY(tu_upload(L->x[0], 0, x, maxN, &E));

    /* forward: y for n rows, nothing past them */
    TRY(nn_buf_fill(d, L->y, 0, maxO, SENT, &E));
    nn_run run = {d, c->n, 1, 7, 3};
    TRY(L->type->forward(L, &run, &E));
    double *y = tu_xmalloc(NO * sizeof *y), *yr = tu_xmalloc(NO * sizeof *yr);
    TRY(tu_download(L->y, 0, y, NO, &E));
    c->forward(c, x, p, yr, n, in, out);
    double ef = tu_rel_err(y, yr, NO);
    tu_note_err("harness.forward", ef);
    CHECK(ef < TOL, "%s: forward rel err %.3g", desc, ef);
    long bad = tu_sentinel_bad(L->y, NO, maxO - NO, &E);
    CHECK(bad < 0, "%s: forward wrote y beyond row %d (float %ld)", desc, c->n, bad);

    /* backward: dx += J^T dy, parameter gradients overwritten */
    TRY(nn_buf_fill(d, t->net.garena, 0, t->net.garena_bytes / sizeof(float), SENT, &E));
    double *dy = tu_rnd_vec_nz(&rng, NO, -1, 1, 1e-3), *dx0 = tu_rnd_vec_nz(&rng, N, -1, 1, 1e-3);
    TRY(tu_upload(L->dy, 0, dy, NO, &E));
    TRY(tu_upload(L->dx[0], 0, dx0, N, &E));
    for (int k = 0; k < L->nparam; k++)
        if (L->param[k].g) {
            TRY(nn_buf_fill(d, L->param[k].g, 0, L->param[k].n, SENT, &E));
            dp[k] = tu_xmalloc(L->param[k].n * sizeof(double));
            dpr[k] = tu_xmalloc(L->param[k].n * sizeof(double));
        }
    TRY(L->type->backward(L, &run, &E));
    double *dx = tu_xmalloc(N * sizeof *dx), *dxr = tu_xmalloc(N * sizeof *dxr);
    TRY(tu_download(L->dx[0], 0, dx, N, &E));
    for (size_t i = 0; i < N; i++)
        dx[i] -= dx0[i];
    c->backward(c, x, p, dy, dxr, dpr, n, in, out);
    double eb = tu_rel_err(dx, dxr, N);
    tu_note_err("harness.backward", eb);
    CHECK(eb < TOL, "%s: backward dx rel err %.3g (dx must be accumulated into)", desc, eb);
    bad = tu_sentinel_bad(L->dx[0], N, maxN - N, &E);
    CHECK(bad < 0, "%s: backward wrote dx beyond row %d (float %ld)", desc, c->n, bad);
    for (int k = 0; k < L->nparam; k++) {
        if (!dp[k])
            continue;
        TRY(tu_download(L->param[k].g, 0, dp[k], L->param[k].n, &E));
        double eg = tu_rel_err(dp[k], dpr[k], L->param[k].n);
        tu_note_err("harness.param_grad", eg);
        CHECK(eg < TOL, "%s: gradient of '%s' rel err %.3g (overwritten, not accumulated)", desc,
              L->param[k].name, eg);
    }

    /* the reference itself: its backward against central differences of its forward */
    double *yf = tu_xmalloc(NO * sizeof *yf);
    fd_ctx f = {c, x, p, dy, yf, n, in, out};
    double err = tu_fd_rel_err(fd_f, &f, x, N, dxr, FD_FLOOR);
    tu_note_err("harness.fd", err);
    CHECK(err < FD_TOL, "%s: the reference's dx against finite differences: rel err %.3g", desc, err);
    for (int k = 0; k < L->nparam; k++) {
        if (!dpr[k])
            continue;
        err = tu_fd_rel_err(fd_f, &f, p[k], L->param[k].n, dpr[k], FD_FLOOR);
        tu_note_err("harness.fd", err);
        CHECK(err < FD_TOL, "%s: the reference's gradient of '%s' against finite differences: rel err %.3g", desc,
              L->param[k].name, err);
    }
    for (int k = 0; k < L->nparam; k++)
        free(p[k]), free(dp[k]), free(dpr[k]);
    free(x), free(y), free(yr), free(dy), free(dx0), free(dx), free(dxr), free(yf);
    return 0;
}

int tu_layer_check(const tu_layer_case *c)
{
    NEED_DEV(d);
    char sh[64], desc[300], json[2048];
    tu_shape_json(sh, sizeof sh, c->shape, c->nd);
    snprintf(desc, sizeof desc, "%s [%s] n=%d/%d", c->layer, sh, c->n, c->maxb);
    snprintf(json, sizeof json, "{\"input\":{\"shape\":[%s]},\"layers\":[" PLACEHOLDER "%s],\"loss\":\"mse\"}", sh,
             c->layer);
    tu_net t;
    int r = tu_net_make(&t, json, c->maxb, 1, &E);
    if (r) {
        tu_net_free(&t);
        CHECK(0, "%s: building the net: %s", desc, E.msg);
    }
    r = check(c, d, &t, desc);
    tu_net_free(&t);
    return r;
}

int tu_layer_check_all(const tu_layer_case *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tu_layer_check(&cs[i]))
            return 1;
    return 0;
}
