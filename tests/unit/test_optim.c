/* test_optim.c - RMSprop, gradient clipping and cross-entropy with label
 * smoothing against PyTorch (torch_optim_ref.h, written by
 * gen_torch_optim.py), through the real APIs (nn_optim_step, nn_loss_run):
 *
 *   optim_rmsprop_torch    plain, momentum, centered, weight decay, all three,
 *                          all three with clip_value + clip_norm: parameters
 *                          and every state buffer after 5 steps
 *   optim_clip_torch       clip_norm, clip_value, both (value first), a norm
 *                          below the limit (factor exactly 1), with the CPU
 *                          and the GPU-shaped norm reductions
 *   optim_clip_norm_large  70001 random gradients (more than 256 work-groups
 *                          of 256): the norm against a double reference
 *   optim_clip_adam_sgd    clip_norm reaches every optimizer's kernel
 *   loss_ce_label_smoothing   loss and gradient, logits / fused softmax /
 *                          one row per time step
 *   spec_optim_errors      validation of the new keys, with JSON paths */
#include <math.h>
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
#include "torch_optim_ref.h"
#include "tutil.h"

#define TOL 1e-4 /* device (fp32) vs PyTorch (fp32): relative to the reference's largest value */

static nn_err E;

/* An optimiser for s over n floats with its w and g buffers (w from w0 or
 * zeros, g from g0 unless NULL). gpu: the GPU-shaped clip_norm reduction
 * whatever the device (nn_optim_init picks it from the device type). */
typedef struct rig {
    cl_mem w, g;
    nn_optim o;
} rig;

static int rig_make(nn_dev *d, const nn_opt_spec *s, size_t n, const double *w0, const double *g0, int gpu, rig *r)
{
    memset(r, 0, sizeof *r);
    TRY(nn_buf_alloc(d, n * sizeof(float), "w", &r->w, &E));
    TRY(nn_buf_alloc(d, n * sizeof(float), "g", &r->g, &E));
    if (w0)
        TRY(tu_upload(r->w, 0, w0, n, &E));
    if (g0)
        TRY(tu_upload(r->g, 0, g0, n, &E));
    cl_device_type type = d->type;
    if (gpu)
        d->type = CL_DEVICE_TYPE_GPU;
    int rc = nn_optim_init(&r->o, d, s, n, &E);
    d->type = type;
    TRY(rc);
    return 0;
}

static void rig_free(rig *r)
{
    nn_optim_free(&r->o);
    nn_buf_free(&r->w);
    nn_buf_free(&r->g);
}

/* ------------------------------------------------------------- RMSprop */

static int rms_case(const torch_rms_case *c)
{
    NEED_DEV(d);
    const size_t n = TORCH_RMS_N;
    nn_opt_spec s;
    memset(&s, 0, sizeof s);
    s.type = NN_OPT_RMSPROP;
    s.lr = c->lr;
    s.alpha = c->alpha;
    s.eps = c->eps;
    s.momentum = c->momentum;
    s.centered = c->centered;
    s.weight_decay = c->weight_decay;
    s.clip_value = c->clip_value;
    s.clip_norm = c->clip_norm;
    double *w0 = tu_f2d(torch_rms_w0, n), *got = tu_xmalloc(n * sizeof(double));
    rig R;
    if (rig_make(d, &s, n, w0, NULL, 0, &R))
        return 1;
    nn_optim *o = &R.o;
    cl_mem wb = R.w, gb = R.g;
    CHECK(!!o->m1 == (c->momentum > 0) && o->m2 && !!o->m3 == c->centered, "%s: state buffers m1 %d m2 %d m3 %d",
          c->name, !!o->m1, !!o->m2, !!o->m3);
    for (int t = 0; t < TORCH_RMS_STEPS; t++) {
        double *g = tu_f2d(torch_rms_g + (size_t)t * n, n);
        TRY(tu_upload(gb, 0, g, n, &E));
        TRY(nn_optim_step(o, d, wb, gb, c->lr, &E));
        TRY(tu_download(gb, 0, got, n, &E));
        CHECK(ref_max_abs_diff(got, g, n) == 0, "%s: step %d modified the gradient", c->name, t + 1);
        free(g);
    }
    /* the total update w - w0 (small next to w), then each state buffer */
    double *dref = tu_xmalloc(n * sizeof(double)), *ddev = tu_xmalloc(n * sizeof(double));
    TRY(tu_download(wb, 0, got, n, &E));
    for (size_t i = 0; i < n; i++) {
        dref[i] = (double)c->w[i] - w0[i];
        ddev[i] = got[i] - w0[i];
    }
    double ew = ref_rel_err(ddev, dref, n, 1e-6);
    tu_note_err("optim.rmsprop", ew);
    CHECK(ew < TOL, "%s: update w - w0 rel err %.3g vs torch", c->name, ew);
    const cl_mem bufs[3] = {o->m2, o->m1, o->m3};
    const float *refs[3] = {c->square_avg, c->momentum_buffer, c->grad_avg};
    const char *what[3] = {"square_avg", "momentum_buffer", "grad_avg"};
    for (int k = 0; k < 3; k++) {
        if (!bufs[k])
            continue;
        double *r = tu_f2d(refs[k], n);
        TRY(tu_download(bufs[k], 0, got, n, &E));
        double es = ref_rel_err(got, r, n, 1e-6);
        CHECK(es < TOL, "%s: %s rel err %.3g vs torch", c->name, what[k], es);
        free(r);
    }
    rig_free(&R);
    free(w0), free(got), free(dref), free(ddev);
    return 0;
}

TEST(optim_rmsprop_torch)
{
    for (size_t i = 0; i < sizeof torch_rms_cases / sizeof *torch_rms_cases; i++)
        if (rms_case(&torch_rms_cases[i]))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ clipping */

/* One SGD step (lr 1, no momentum) from w = 0 with gradient g[0..n):
 * afterwards w = -(the clipped gradient). gpu: the GPU-shaped norm
 * reduction, whatever the device. *norm: what clip_norm measured (-1 without). */
static int clip_run(nn_dev *d, const double *g, size_t n, float cv, float cn, int gpu, double *clipped, double *norm,
                    int *shape)
{
    nn_opt_spec s;
    memset(&s, 0, sizeof s);
    s.type = NN_OPT_SGD;
    s.lr = 1;
    s.clip_value = cv;
    s.clip_norm = cn;
    rig R;
    if (rig_make(d, &s, n, NULL, g, gpu, &R))
        return 1;
    *shape = R.o.gpu_shape;
    TRY(nn_optim_step(&R.o, d, R.w, R.g, 1.0f, &E));
    TRY(tu_download(R.w, 0, clipped, n, &E));
    for (size_t i = 0; i < n; i++)
        clipped[i] = -clipped[i];
    *norm = -1;
    if (R.o.clip)
        TRY(tu_download(R.o.clip, 1, norm, 1, &E));
    rig_free(&R);
    return 0;
}

TEST(optim_clip_torch)
{
    NEED_DEV(d);
    const size_t n = TORCH_CLIP_N;
    double *g = tu_f2d(torch_clip_g, n), *got = tu_xmalloc(n * sizeof(double));
    for (int gpu = 0; gpu < 2; gpu++)
        for (size_t i = 0; i < sizeof torch_clip_cases / sizeof *torch_clip_cases; i++) {
            const torch_clip_case *c = &torch_clip_cases[i];
            double norm;
            int shape;
            if (clip_run(d, g, n, c->clip_value, c->clip_norm, gpu, got, &norm, &shape))
                return 1;
            CHECK(!c->clip_norm || shape == (gpu || !(d->type & CL_DEVICE_TYPE_CPU)), "%s: reduction shape %d",
                  c->name, shape);
            double *r = tu_f2d(c->g, n);
            double eg = ref_rel_err(got, r, n, 1e-6);
            tu_note_err("optim.clip", eg);
            CHECK(eg < 1e-5, "%s (%s reduction): clipped gradient rel err %.3g vs torch", c->name,
                  gpu ? "GPU-shaped" : "default", eg);
            if (c->clip_norm > 0)
                CHECK(fabs(norm - c->norm) <= 1e-5 * c->norm, "%s: norm %.9g, torch %.9g", c->name, norm, c->norm);
            if (c->clip_norm >= c->norm && c->clip_value == 0) /* below the limit: untouched, bit for bit */
                CHECK(ref_max_abs_diff(got, g, n) == 0, "%s: a gradient below clip_norm changed", c->name);
            free(r);
        }
    free(g), free(got);
    return 0;
}

TEST(optim_clip_norm_large)
{
    NEED_DEV(d);
    const size_t n = 70001;
    ref_rng rng;
    ref_rng_seed(&rng, 1212);
    double *g = tu_rnd_vec(&rng, n, -1, 1), *got = tu_xmalloc(n * sizeof(double));
    for (int gpu = 0; gpu < 2; gpu++) {
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            double v = fmin(fmax(g[i], -0.75), 0.75);
            ss += v * v;
        }
        double norm, want = sqrt(ss), f = 10.0 / (want + 1e-6);
        int shape;
        if (clip_run(d, g, n, 0.75f, 10.0f, gpu, got, &norm, &shape))
            return 1;
        CHECK(fabs(norm - want) <= 1e-5 * want, "%s reduction: norm %.9g, double reference %.9g",
              gpu ? "GPU-shaped" : "default", norm, want);
        double err = 0;
        for (size_t i = 0; i < n; i++)
            err = fmax(err, fabs(got[i] - fmin(fmax(g[i], -0.75), 0.75) * f));
        CHECK(err < 1e-5 * 0.75 * f, "%s reduction: clipped gradient max error %.3g", gpu ? "GPU-shaped" : "default",
              err);
    }
    free(g), free(got);
    return 0;
}

/* The clip factor reaches SGD with momentum and Adam: their update from a
 * clipped gradient equals the update from the pre-clipped one. */
TEST(optim_clip_adam_sgd)
{
    NEED_DEV(d);
    const size_t n = TORCH_CLIP_N;
    const nn_opt_kind kinds[3] = {NN_OPT_SGD, NN_OPT_ADAM, NN_OPT_RMSPROP};
    const torch_clip_case *c = &torch_clip_cases[2]; /* value then norm */
    double *w[2] = {tu_xmalloc(n * sizeof(double)), tu_xmalloc(n * sizeof(double))};
    for (int k = 0; k < 3; k++) {
        for (int pre = 0; pre < 2; pre++) {
            nn_opt_spec s;
            memset(&s, 0, sizeof s);
            s.type = kinds[k];
            s.lr = 0.01f;
            s.momentum = kinds[k] == NN_OPT_ADAM ? 0 : 0.9f;
            s.beta1 = 0.9f;
            s.beta2 = 0.999f;
            s.alpha = 0.99f;
            s.eps = 1e-8f;
            if (!pre) {
                s.clip_value = c->clip_value;
                s.clip_norm = c->clip_norm;
            }
            double *g = tu_f2d(pre ? c->g : torch_clip_g, n);
            rig R;
            if (rig_make(d, &s, n, NULL, g, 0, &R))
                return 1;
            for (int t = 0; t < 3; t++)
                TRY(nn_optim_step(&R.o, d, R.w, R.g, s.lr, &E));
            TRY(tu_download(R.w, 0, w[pre], n, &E));
            rig_free(&R);
            free(g);
        }
        double err = ref_rel_err(w[0], w[1], n, 1e-6);
        CHECK(err < TOL, "%s: clipping inside the step vs a pre-clipped gradient: rel err %.3g",
              nn_opt_name(kinds[k]), err);
    }
    free(w[0]), free(w[1]);
    return 0;
}

/* ---------------------------------------------- label smoothing (CE) */

enum { LS_LOGITS, LS_FUSED, LS_STEPS };

static int ls_case(int kind, const torch_ce_case *c)
{
    NEED_DEV(d);
    const int R = TORCH_CE_ROWS, K = TORCH_CE_K;
    const char *names[3] = {"logits", "fused softmax", "per time step"};
    char json[512];
    /* LS_STEPS: 2 samples of [3, K] outputs, one label per step = the same 6 rows */
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":%s},\"layers\":[{\"type\":\"dense\",\"units\":%d}%s],"
             "\"loss\":{\"type\":\"cross_entropy\",\"label_smoothing\":%.9g}}",
             kind == LS_STEPS ? "[3,4]" : "[4]", K, kind == LS_FUSED ? ",{\"type\":\"softmax\"}" : "", c->ls);
    int n = kind == LS_STEPS ? 2 : R;
    tu_net t;
    TRY(tu_net_make(&t, json, n, 1, &E));
    nn_net *net = &t.net;
    CHECK(t.spec.label_smoothing == c->ls, "label_smoothing parsed as %g", t.spec.label_smoothing);
    CHECK((int)nn_loss_rows(net) * n == R, "%s: %zu rows per sample", names[kind], nn_loss_rows(net));
    nn_layer *out = nn_net_out(net);
    double *x = tu_f2d(torch_ce_logits, (size_t)R * K);
    if (kind == LS_FUSED) {
        TRY(tu_upload(out->x[0], 0, x, (size_t)R * K, &E));
        nn_run rs = {d, n, 1, 0, 0};
        TRY(out->type->forward(out, &rs, &E));
    } else {
        TRY(tu_upload(out->y, 0, x, (size_t)R * K, &E));
    }
    cl_mem lab, metrics;
    TRY(nn_buf_alloc(d, (size_t)R * sizeof(int), "labels", &lab, &E));
    TRY(nn_buf_write(d, lab, 0, (size_t)R * sizeof(int), torch_ce_labels, 1, &E));
    TRY(nn_buf_alloc(d, 2 * (size_t)R * sizeof(float), "metrics", &metrics, &E));
    nn_run run = {d, n, 1, 0, 0};
    TRY(nn_loss_run(net, &run, lab, metrics, 1, &E));
    double m[2 * TORCH_CE_ROWS], loss[TORCH_CE_ROWS], grad[TORCH_CE_ROWS * TORCH_CE_K];
    TRY(tu_download(metrics, 0, m, 2 * (size_t)R, &E));
    double mean = 0;
    for (int r = 0; r < R; r++) {
        loss[r] = m[2 * r];
        mean += loss[r] / R;
    }
    double *rl = tu_f2d(c->loss, (size_t)R), *rg = tu_f2d(c->grad, (size_t)R * K);
    double el = ref_rel_err(loss, rl, (size_t)R, 1e-6);
    TRY(tu_download(kind == LS_FUSED ? out->dx[0] : out->dy, 0, grad, (size_t)R * K, &E));
    double eg = ref_rel_err(grad, rg, (size_t)R * K, 1e-6);
    tu_note_err("loss.label_smoothing", fmax(el, eg));
    CHECK(el < TOL && fabs(mean - c->mean) < TOL * c->mean, "%s, ls %g: per-row loss rel err %.3g, mean %.7g vs torch %.7g",
          names[kind], c->ls, el, mean, c->mean);
    CHECK(eg < TOL, "%s, ls %g: gradient rel err %.3g vs torch", names[kind], c->ls, eg);
    nn_buf_free(&lab);
    nn_buf_free(&metrics);
    free(x), free(rl), free(rg);
    tu_net_free(&t);
    return 0;
}

TEST(loss_ce_label_smoothing)
{
    for (int kind = 0; kind < 3; kind++)
        for (size_t i = 0; i < sizeof torch_ce_cases / sizeof *torch_ce_cases; i++)
            if (ls_case(kind, &torch_ce_cases[i]))
                return 1;
    return 0;
}

/* ---------------------------------------------------------- the spec */

#define NET "{\"input\":{\"shape\":[4]},\"layers\":[{\"type\":\"dense\",\"units\":3}],"

TEST(spec_optim_errors)
{
    static const struct { const char *json, *f1, *f2; } bad[] = {
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"alpha\":1.5}}", "optimizer.alpha: 1.5 is out of range", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"centered\":1}}", "optimizer.centered: expected true or false", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"momentum\":-0.1}}", "optimizer.momentum: -0.1 is out of range", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"eps\":0}}", "optimizer.eps: 0 is out of range", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"nesterov\":true}}", "optimizer: unknown key 'nesterov'", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprop\",\"beta1\":0.9}}", "optimizer: unknown key 'beta1'", NULL},
        {NET "\"optimizer\":{\"type\":\"adam\",\"centered\":true}}", "optimizer: unknown key 'centered'", NULL},
        {NET "\"optimizer\":{\"type\":\"sgd\",\"alpha\":0.9}}", "optimizer: unknown key 'alpha'", NULL},
        {NET "\"optimizer\":{\"type\":\"rmsprp\"}}", "optimizer.type: unknown optimizer 'rmsprp'", "did you mean 'rmsprop'"},
        {NET "\"optimizer\":{\"type\":\"sgd\",\"clip_norm\":0}}", "optimizer.clip_norm: 0 is out of range", NULL},
        {NET "\"optimizer\":{\"type\":\"adam\",\"clip_norm\":\"1\"}}", "optimizer.clip_norm: expected a number", NULL},
        {NET "\"optimizer\":{\"type\":\"adamw\",\"clip_value\":-1}}", "optimizer.clip_value: -1 is out of range", NULL},
        {NET "\"optimizer\":{\"type\":\"sgd\",\"clip_nrom\":1}}", "optimizer: unknown key 'clip_nrom'", "did you mean 'clip_norm'"},
        {NET "\"loss\":{\"type\":\"cross_entropy\",\"label_smoothing\":1.5}}", "loss.label_smoothing: 1.5 is out of range", NULL},
        {NET "\"loss\":{\"type\":\"cross_entropy\",\"label_smoothing\":\"a\"}}", "loss.label_smoothing: expected a number", NULL},
        {NET "\"loss\":{\"type\":\"mse\",\"label_smoothing\":0.1}}", "loss.label_smoothing: only cross_entropy", NULL},
        {NET "\"loss\":{\"label_smoothing\":0.1}}", "loss.type: required", NULL},
        {NET "\"loss\":{\"type\":\"cross_entropy\",\"smoothing\":0.1}}", "loss: unknown key 'smoothing'", NULL},
        {NET "\"loss\":{\"type\":\"crossentropy\"}}", "loss.type: unknown loss 'crossentropy'", "did you mean"},
        {NET "\"loss\":{\"type\":3}}", "loss.type: expected a string", NULL},
        {NET "\"loss\":[1]}", "loss: expected a string", "or an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (tu_expect_error(bad[i].json, bad[i].f1, bad[i].f2))
            return 1;
    /* and the good forms, with their defaults (torch.optim.RMSprop's) */
    nn_spec s;
    const char *ok = NET "\"loss\":{\"type\":\"categorical_crossentropy\",\"label_smoothing\":0.2},"
                         "\"optimizer\":{\"type\":\"rmsprop\",\"centered\":true,\"clip_norm\":2,\"clip_value\":0.5}}";
    TRY(nn_spec_parse(ok, strlen(ok), "ok.json", &s, &E));
    CHECK(s.loss == NN_LOSS_CE && s.label_smoothing == 0.2f, "loss %d ls %g", s.loss, s.label_smoothing);
    CHECK(s.opt.type == NN_OPT_RMSPROP && s.opt.lr == 0.01f && s.opt.alpha == 0.99f && s.opt.eps == 1e-8f &&
              s.opt.momentum == 0 && s.opt.centered && s.opt.weight_decay == 0 && s.opt.clip_norm == 2.0f &&
              s.opt.clip_value == 0.5f,
          "rmsprop defaults: lr %g alpha %g eps %g momentum %g centered %d wd %g clip %g/%g", s.opt.lr, s.opt.alpha,
          s.opt.eps, s.opt.momentum, s.opt.centered, s.opt.weight_decay, s.opt.clip_norm, s.opt.clip_value);
    /* the canonical JSON (model.bin) parses back to the same settings */
    char *canon = nn_spec_canonical(&s, NULL, &E);
    CHECK(canon, "canonical: %s", E.msg);
    nn_spec s2;
    TRY(nn_spec_parse(canon, strlen(canon), "canon.json", &s2, &E));
    CHECK(s2.label_smoothing == s.label_smoothing && !memcmp(&s2.opt, &s.opt, sizeof s.opt),
          "the canonical JSON does not round-trip: %s", canon);
    free(canon);
    nn_spec_free(&s2);
    nn_spec_free(&s);
    const char *plain = NET "\"optimizer\":\"rmsprop\"}";
    TRY(nn_spec_parse(plain, strlen(plain), "plain.json", &s, &E));
    CHECK(s.opt.type == NN_OPT_RMSPROP && s.opt.lr == 0.01f && s.label_smoothing == 0 && s.opt.clip_norm == 0,
          "\"rmsprop\" as a string: type %d lr %g", s.opt.type, s.opt.lr);
    nn_spec_free(&s);
    return 0;
}
