/* tutil.c - the helpers the device tests share (see tutil.h). */
#include "tutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "optim.h"
#include "util.h"

static nn_err E; /* for TRY in tu_time_layer */

void *tu_xmalloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        abort();
    return p;
}

double *tu_rnd_vec(ref_rng *r, size_t n, double lo, double hi)
{
    double *v = tu_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)ref_rng_range(r, lo, hi);
    return v;
}

double *tu_rnd_vec_nz(ref_rng *r, size_t n, double lo, double hi, double min_abs)
{
    double *v = tu_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        do
            v[i] = (float)ref_rng_range(r, lo, hi);
        while (fabs(v[i]) <= min_abs);
    }
    return v;
}

double *tu_f2d(const float *f, size_t n)
{
    double *v = tu_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = f[i];
    return v;
}

double *tu_dup_vec(const double *v, size_t n)
{
    double *c = tu_xmalloc(n * sizeof *c);
    if (v)
        memcpy(c, v, n * sizeof *c);
    return c;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

double tu_max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m)
            m = fabs(v[i]);
    return m;
}

double tu_dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* max |a - b| / max(floor, max |b|); NaN gives INFINITY. */
static double rel_err_floor(const double *a, const double *b, size_t n, double floor)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs(a[i] - b[i]);
        if (x != x)
            return INFINITY;
        if (x > d)
            d = x;
    }
    double m = tu_max_abs(b, n);
    return d / (m > floor ? m : floor);
}

double tu_rel_err(const double *a, const double *b, size_t n) { return rel_err_floor(a, b, n, 1e-6); }

double tu_rel_err_f(const float *f, const double *base, const double *ref, size_t n)
{
    double *a = tu_xmalloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (double)f[i] - (base ? base[i] : 0.0);
    double r = tu_rel_err(a, ref, n);
    free(a);
    return r;
}

double tu_fd_rel_err(tu_fd_fn f, void *ctx, double *v, size_t n, const double *ana, double floor)
{
    const double h = 1e-5;
    double *num = tu_xmalloc(n * sizeof *num);
    for (size_t i = 0; i < n; i++) {
        double s = v[i];
        v[i] = s + h;
        double fp = f(ctx);
        v[i] = s - h;
        double fm = f(ctx);
        v[i] = s;
        num[i] = (fp - fm) / (2 * h);
    }
    double r = rel_err_floor(num, ana, n, floor);
    free(num);
    return r;
}

int tu_upload(cl_mem m, size_t off, const double *v, size_t n, nn_err *e)
{
    float *f = tu_xmalloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    int r = nn_buf_write(nn_test_dev(), m, off * sizeof(float), n * sizeof(float), f, 1, e);
    free(f);
    return r;
}

int tu_download(cl_mem m, size_t off, double *v, size_t n, nn_err *e)
{
    float *f = tu_xmalloc(n * sizeof *f);
    int r = nn_buf_read(nn_test_dev(), m, off * sizeof(float), n * sizeof(float), f, e);
    for (size_t i = 0; i < n; i++)
        v[i] = f[i];
    free(f);
    return r;
}

float *tu_read_all(cl_mem m, size_t nf, nn_err *e)
{
    float *f = tu_xmalloc(nf * sizeof *f);
    if (nn_buf_read(nn_test_dev(), m, 0, nf * sizeof(float), f, e)) {
        free(f);
        return NULL;
    }
    return f;
}

size_t tu_sub_off(cl_mem m)
{
    size_t o = 0;
    clGetMemObjectInfo(m, CL_MEM_OFFSET, sizeof o, &o, NULL);
    return o / sizeof(float);
}

long tu_sentinel_bad(cl_mem m, size_t off, size_t n, nn_err *e)
{
    if (!n)
        return -1;
    double *v = tu_xmalloc(n * sizeof *v);
    long bad = -1;
    if (tu_download(m, off, v, n, e))
        bad = -2;
    for (size_t i = 0; i < n && bad == -1; i++)
        if (v[i] != SENT)
            bad = (long)i;
    free(v);
    return bad;
}

long tu_changed_outside(const float *a, const float *b, size_t nf, size_t off, size_t len)
{
    for (size_t i = 0; i < nf; i++)
        if ((i < off || i >= off + len) && memcmp(&a[i], &b[i], sizeof(float)))
            return (long)i;
    return -1;
}

int tu_net_make_vocab(tu_net *t, const char *json, int max_batch, int training, int vocab, nn_err *e)
{
    memset(t, 0, sizeof *t);
    int r = nn_spec_parse(json, strlen(json), "test.json", &t->spec, e);
    if (!r)
        r = nn_net_build(&t->net, &t->spec, &t->spec.input, vocab > 0 ? vocab : 0, e);
    if (!r && max_batch > 0)
        r = nn_net_alloc(&t->net, nn_test_dev(), max_batch, training, e);
    return r;
}

int tu_net_make(tu_net *t, const char *json, int max_batch, int training, nn_err *e)
{
    return tu_net_make_vocab(t, json, max_batch, training, 0, e);
}

void tu_net_free(tu_net *t)
{
    nn_net_free(&t->net);
    nn_spec_free(&t->spec);
}

int tu_build_only(const char *json, int vocab, nn_err *e)
{
    tu_net t;
    memset(e, 0, sizeof *e);
    int r = tu_net_make_vocab(&t, json, 0, 0, vocab, e);
    tu_net_free(&t);
    return r;
}

int tu_expect_error(const char *json, const char *f1, const char *f2)
{
    nn_err e;
    int r = tu_build_only(json, 0, &e);
    CHECK(r == NN_EDATA, "%s: code %d (expected 65): %s", json, r, e.msg);
    CHECK(strstr(e.msg, f1), "%s: message '%s' lacks '%s'", json, e.msg, f1);
    CHECK(!f2 || strstr(e.msg, f2), "%s: message '%s' lacks '%s'", json, e.msg, f2);
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "  %s\n", e.msg);
    return 0;
}

void tu_shape_json(char *buf, size_t n, const int *shape, int nd)
{
    size_t o = 0;
    for (int i = 0; i < nd && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%d", i ? "," : "", shape[i]);
}

size_t tu_prod(const int *shape, int nd)
{
    size_t p = 1;
    for (int i = 0; i < nd; i++)
        p *= (size_t)shape[i];
    return p;
}

const char *tu_act_str(int act)
{
    static const char *const s[] = {"linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu"};
    return act >= 0 && act < 6 ? s[act] : "?";
}

/* Largest error seen per op. */
#define MAX_OPS 128
static struct {
    char op[48];
    double err;
} g_errs[MAX_OPS];
static int g_nerrs;

static void print_errs(void)
{
    for (int i = 0; i < g_nerrs; i++)
        fprintf(stderr, "  max error %-28s %.3g\n", g_errs[i].op, g_errs[i].err);
}

void tu_note_err(const char *op, double err)
{
    int i;
    for (i = 0; i < g_nerrs; i++)
        if (!strcmp(g_errs[i].op, op))
            break;
    if (i == g_nerrs) {
        if (g_nerrs == MAX_OPS)
            return;
        if (!g_nerrs && getenv("NN_TEST_VERBOSE"))
            atexit(print_errs);
        snprintf(g_errs[i].op, sizeof g_errs[i].op, "%s", op);
        g_errs[i].err = 0;
        g_nerrs++;
    }
    if (err > g_errs[i].err || err != err)
        g_errs[i].err = err;
}

int tu_train(nn_dev *d, tu_net *t, const double *x, size_t nx, const int *lab, int n, int steps, double *loss0,
             double *loss1, double *acc1, nn_err *e)
{
    double first[3] = {0}, last[3] = {0}; /* sum loss, sum metric, count */
    nn_net *net = &t->net;
    cl_mem lb = NULL, metrics = NULL, acc = NULL;
    nn_optim o;
    memset(&o, 0, sizeof o);
    int r = nn_buf_alloc(d, (size_t)n * sizeof *lab, "labels", &lb, e);
    if (!r)
        r = nn_buf_write(d, lb, 0, (size_t)n * sizeof *lab, lab, 1, e);
    if (!r) /* (sum loss, metric) per row; a row per position at the most */
        r = nn_buf_alloc(d, 2 * (size_t)n * net->out_dim * sizeof(float), "metrics", &metrics, e);
    if (!r)
        r = nn_buf_alloc(d, 3 * sizeof(float), "acc", &acc, e);
    if (!r)
        r = tu_upload(net->x_in, 0, x, nx, e);
    if (!r)
        r = nn_optim_init(&o, d, &t->spec.opt, net->nparams, e);
    for (int s = 0; !r && s <= steps; s++) {
        nn_run run = {d, n, 1, 9, (uint64_t)s};
        if (s == 0 || s == steps) { /* evaluation forward (no dropout) */
            nn_run ev = run;
            ev.train = 0;
            r = nn_net_forward(net, &ev, e);
            if (!r)
                r = nn_loss_run(net, &ev, lb, metrics, 0, e);
            if (!r)
                r = nn_buf_zero(d, acc, 0, 3 * sizeof(float), e);
            if (!r)
                r = nn_metrics_accum(d, metrics, n, acc, e);
            if (!r)
                r = tu_download(acc, 0, s ? last : first, 3, e);
            if (r || s == steps)
                break;
        }
        r = nn_net_forward(net, &run, e);
        if (!r)
            r = nn_net_zero_grads(net, e);
        if (!r)
            r = nn_loss_run(net, &run, lb, metrics, 1, e);
        if (!r)
            r = nn_net_backward(net, &run, e);
        if (!r)
            r = nn_optim_step(&o, d, net->params, net->grads, t->spec.opt.lr, e);
    }
    nn_optim_free(&o);
    nn_buf_free(&lb);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    *loss0 = first[0] / first[2];
    *loss1 = last[0] / last[2];
    *acc1 = last[1] / last[2];
    return r;
}

int tu_time_layer(const char *desc, const char *json, int li, int batch, int warm, int reps)
{
    NEED_DEV(d);
    tu_net t;
    TRY(tu_net_make(&t, json, batch, 1, &E));
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 1, &E));
    nn_layer *L = &net->L[li];
    ref_rng rng;
    ref_rng_seed(&rng, 3);
    size_t nx = (size_t)batch * nn_shape_size(&L->in_shape[0]), ny = (size_t)batch * nn_shape_size(&L->out_shape);
    double *x = tu_rnd_vec_nz(&rng, nx, -1, 1, 0), *dy = tu_rnd_vec_nz(&rng, ny, -1, 1, 0);
    TRY(tu_upload(L->x[0], 0, x, nx, &E));
    TRY(tu_upload(L->dy, 0, dy, ny, &E));
    nn_run run = {d, batch, 1, 1, 1};
    double tf = 0, tb = 0;
    for (int i = 0; i < warm + reps; i++) {
        double t0 = nn_now();
        TRY(L->type->forward(L, &run, &E));
        TRY(nn_dev_finish(d, &E));
        double t1 = nn_now();
        TRY(L->type->backward(L, &run, &E));
        TRY(nn_dev_finish(d, &E));
        double t2 = nn_now();
        if (i >= warm) {
            tf += t1 - t0;
            tb += t2 - t1;
        }
    }
    double fl = L->flops * batch;
    fprintf(stderr, "  %s: forward %.2f ms, backward %.2f ms, total %.2f ms (%.1f GFLOP/s forward)\n", desc,
            tf / reps * 1e3, tb / reps * 1e3, (tf + tb) / reps * 1e3, fl / (tf / reps) * 1e-9);
    free(x), free(dy);
    tu_net_free(&t);
    return 0;
}
