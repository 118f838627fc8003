/* rnn.c - recurrent layers over [time, features] samples: lstm and gru
 * (PyTorch formulations, row-major weights for our GEMMs). The state starts
 * at zero for every sequence (stateless across batches).
 *
 *   lstm: gates i, f, g, o (in that order along the 4H axis)
 *         c_t = f*c_{t-1} + i*g,  h_t = o*tanh(c_t)
 *         params weight_ih [F, 4H], weight_hh [H, 4H], bias [4H]
 *   gru:  gates r, z, n (3H axis)
 *         n_t = tanh(x W_in + b_in + r*(h_{t-1} W_hn + b_hn))
 *         h_t = (1-z)*n_t + z*h_{t-1}
 *         params weight_ih [F, 3H], weight_hh [H, 3H], bias_ih [3H], bias_hh [3H]
 * Output [T, H] with return_sequences, else [H] (the last step's h).
 * Keys: units (required), return_sequences (false), use_bias (true), init.
 * Initialisation: weights Glorot uniform (fan_in F or H, fan_out K*H),
 * biases zero except the lstm's forget gate at 1 (by default); "he": He
 * normal weights, the same biases; "torch" (PyTorch's nn.LSTM/nn.GRU): every
 * weight and bias uniform in +-1/sqrt(units), no forget-gate 1; the lstm's
 * one bias stands for PyTorch's b_ih + b_hh and is drawn as the sum of two
 * independent such draws, so that its distribution is PyTorch's.
 *
 * Forward (K = 4 for lstm, 3 for gru), nothing read back, nothing waited on:
 *   1. one GEMM for every time step: G[n*T, K*H] = X[n*T, F] . W_ih;
 *   2. per step t: one GEMM with the recurrent weights over the n rows of
 *      step t (row-major [n, T, K*H] seen with ld T*K*H) - lstm adds into
 *      G[:, t], gru writes a separate GH[:, t] (r multiplies its n part) -
 *      skipped at t = 0 (h_{-1} = 0); then one elementwise kernel for the
 *      gates, c_t, h_t (cl/rnn.cl), which also stores h_{t-1} in P[n, T, H]
 *      so that the weight gradients are single GEMMs.
 * Backward through time, t = T-1 .. 0: one kernel turning the step's gate
 * activations into gate gradients (in place: the forward's G becomes dG)
 * and the carries, then (t > 0) one GEMM for dh_{t-1} = dG_t . W_hh^T.
 * After the loop: dW_hh = P^T . dG, dW_ih = X^T . dG, the bias gradients
 * (column sums of dG), dX += dG . W_ih^T (skipped when dx is NULL).
 * The backward consumes the forward's state (as conv2d's does).
 *
 * Scratch (L->work), regions laid out for the batch's n (forward and
 * backward see the same n), in floats per sample:
 *   lstm: G 4TH | C TH | P TH | DH H | DC H       = 6TH + 2H
 *   gru:  GI 3TH | GH 3TH | P TH | DH H            = 7TH + H */
#include <limits.h>
#include <stdlib.h>

#include "../blas.h"
#include "layer.h"

typedef struct rnn {
    int units, seq, use_bias;
    int init;          /* -1 (default), NN_INIT_HE, NN_INIT_GLOROT or NN_INIT_FAN_IN_UNIFORM ("torch") */
    int gru;           /* 0: lstm (K = 4), 1: gru (K = 3) */
    int T, F, K;       /* from shape() */
} rnn;

static const char *const keys[] = {"units", "return_sequences", "use_bias", "init", NULL};

static int parse_common(nn_layer *L, const cJSON *j, const char *path, int gru, nn_err *e)
{
    rnn *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    p->gru = gru;
    int r = nn_layer_get_int(j, "units", path, 1, 1 << 16, INT32_MIN, &p->units, e);
    if (!r)
        r = nn_layer_get_bool(j, "return_sequences", path, 0, &p->seq, e);
    if (!r)
        r = nn_layer_get_bool(j, "use_bias", path, 1, &p->use_bias, e);
    if (!r)
        r = nn_layer_get_init(j, path, &p->init, e);
    return r;
}

static int parse_lstm(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    return parse_common(L, j, path, 0, e);
}

static int parse_gru(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    return parse_common(L, j, path, 1, e);
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    rnn *p = L->p;
    const nn_shape *s = &L->in_shape[0];
    const char *tn = p->gru ? "gru" : "lstm";
    char b[64];
    if (s->nd != 2) {
        const char *hint = "";
        if (s->nd == 1 && L->in[0] < 0)
            hint = " (give the input a shape such as [28, 28]: time steps, then features per step)";
        else if (s->nd == 1)
            hint = " (if it comes from an lstm or gru, set \"return_sequences\": true there)";
        return nn_fail(e, NN_EDATA, "%s: %s needs a [time, features] input; got %s%s", path, tn,
                       nn_shape_str(s, b, sizeof b), hint);
    }
    int T = s->d[0], F = s->d[1], H = p->units, K = p->gru ? 3 : 4;
    p->T = T;
    p->F = F;
    p->K = K;
    if (p->seq) {
        L->out_shape.nd = 2;
        L->out_shape.d[0] = T;
        L->out_shape.d[1] = H;
    } else {
        L->out_shape.nd = 1;
        L->out_shape.d[0] = H;
    }
    int wi[2] = {F, K * H}, wh[2] = {H, K * H}, kh = K * H;
    if (p->init == NN_INIT_FAN_IN_UNIFORM) {
        /* PyTorch: everything uniform in +-1/sqrt(H) (fan_in H for all) */
        nn_layer_add_param(L, "weight_ih", 2, wi, NN_INIT_FAN_IN_UNIFORM, H, K * H);
        nn_layer_add_param(L, "weight_hh", 2, wh, NN_INIT_FAN_IN_UNIFORM, H, K * H);
        if (p->use_bias && p->gru) {
            nn_layer_add_param(L, "bias_ih", 1, &kh, NN_INIT_FAN_IN_UNIFORM, H, K * H);
            nn_layer_add_param(L, "bias_hh", 1, &kh, NN_INIT_FAN_IN_UNIFORM, H, K * H);
        } else if (p->use_bias) {
            nn_layer_add_param(L, "bias", 1, &kh, NN_INIT_FAN_IN_UNIFORM2, H, K * H);
        }
    } else {
        nn_init w = p->init == NN_INIT_HE ? NN_INIT_HE : NN_INIT_GLOROT;
        nn_layer_add_param(L, "weight_ih", 2, wi, w, F, K * H);
        nn_layer_add_param(L, "weight_hh", 2, wh, w, H, K * H);
        /* zeros; the lstm's forget gate starts at 1 (remember by default) */
        if (p->use_bias && p->gru) {
            nn_layer_add_param(L, "bias_ih", 1, &kh, NN_INIT_ZERO, F, K * H);
            nn_layer_add_param(L, "bias_hh", 1, &kh, NN_INIT_ZERO, H, K * H);
        } else if (p->use_bias) {
            nn_layer_add_param(L, "bias", 1, &kh, NN_INIT_LSTM_BIAS, F, K * H);
        }
    }
    /* the GEMMs: input projection for every step, recurrent one for t >= 1 */
    L->flops = 2.0 * T * F * K * H + 2.0 * (T - 1) * H * K * H;
    L->scratch = p->gru ? (size_t)7 * T * H + H : (size_t)6 * T * H + 2 * (size_t)H;
    if (L->scratch > (size_t)INT_MAX / 4)
        return nn_fail(e, NN_EDATA, "%s: this %s keeps %zu floats per sample for the backward pass, too many; use "
                       "fewer time steps or units", path, tn, L->scratch);
    return 0;
}

/* Every index of the kernels fits in an int for this batch. */

/* Region offsets (floats) in L->work for a batch of n. */
typedef struct regions {
    size_t g, gh, c, pv, dh, dc;
} regions;

static regions regions_of(const rnn *p, int n)
{
    size_t TH = (size_t)n * p->T * p->units, H = (size_t)n * p->units;
    regions g = {0};
    if (p->gru) {
        g.g = 0;          /* GI [n, T, 3H] */
        g.gh = 3 * TH;    /* GH [n, T, 3H] */
        g.pv = 6 * TH;    /* P  [n, T, H] */
        g.dh = 7 * TH;    /* DH [n, H] */
    } else {
        g.g = 0;          /* G  [n, T, 4H] */
        g.c = 4 * TH;     /* C  [n, T, H] */
        g.pv = 5 * TH;    /* P  [n, T, H] */
        g.dh = 6 * TH;    /* DH [n, H] */
        g.dc = 6 * TH + H; /* DC [n, H] */
    }
    return g;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    rnn *p = L->p;
    nn_dev *d = r->dev;
    int n = r->n, T = p->T, H = p->units;
    size_t F = (size_t)p->F, KH = (size_t)p->K * H, rows = (size_t)n * T;
    regions g = regions_of(p, n);
    cl_mem w = L->work, wih = L->param[0].w, whh = L->param[1].w;
    /* G[n*T, KH] = X . W_ih */
    int rc = nn_gemm(d, 0, 0, rows, KH, F, 1.0f, L->x[0], 0, F, wih, 0, KH, 0.0f, w, g.g, KH, e);
    for (int t = 0; !rc && t < T; t++) {
        if (!p->gru) {
            /* G[:, t] += h_{t-1} . W_hh */
            if (t > 0)
                rc = nn_gemm(d, 0, 0, (size_t)n, KH, (size_t)H, 1.0f, w, g.pv + (size_t)t * H, (size_t)T * H, whh, 0,
                             KH, 1.0f, w, g.g + (size_t)t * KH, (size_t)T * KH, e);
            if (!rc)
                rc = nn_launch(d, "lstm_step_fwd", (size_t)n * H, 0, e, 12, KMEM(w), KINT(g.g), KINT(g.c),
                               KINT(g.pv), KMEM(p->use_bias ? L->param[2].w : wih), KINT(p->use_bias), KMEM(L->y),
                               KINT(n), KINT(T), KINT(H), KINT(t), KINT(p->seq));
        } else {
            /* GH[:, t] = h_{t-1} . W_hh */
            if (t > 0)
                rc = nn_gemm(d, 0, 0, (size_t)n, KH, (size_t)H, 1.0f, w, g.pv + (size_t)t * H, (size_t)T * H, whh, 0,
                             KH, 0.0f, w, g.gh + (size_t)t * KH, (size_t)T * KH, e);
            if (!rc)
                rc = nn_launch(d, "gru_step_fwd", (size_t)n * H, 0, e, 13, KMEM(w), KINT(g.g), KINT(g.gh),
                               KINT(g.pv), KMEM(p->use_bias ? L->param[2].w : wih),
                               KMEM(p->use_bias ? L->param[3].w : wih), KINT(p->use_bias), KMEM(L->y), KINT(n),
                               KINT(T), KINT(H), KINT(t), KINT(p->seq));
        }
    }
    return rc;
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    rnn *p = L->p;
    nn_dev *d = r->dev;
    int n = r->n, T = p->T, H = p->units;
    size_t F = (size_t)p->F, KH = (size_t)p->K * H, rows = (size_t)n * T;
    regions g = regions_of(p, n);
    cl_mem w = L->work, wih = L->param[0].w, whh = L->param[1].w;
    /* the gradient w.r.t. the recurrent pre-activations: dG itself for the
     * lstm, dGH for the gru */
    size_t rg = p->gru ? g.gh : g.g;
    int rc = 0;
    for (int t = T - 1; !rc && t >= 0; t--) {
        if (!p->gru)
            rc = nn_launch(d, "lstm_step_bwd", (size_t)n * H, 0, e, 11, KMEM(w), KINT(g.g), KINT(g.c), KINT(g.dh),
                           KINT(g.dc), KMEM(L->dy), KINT(n), KINT(T), KINT(H), KINT(t), KINT(p->seq));
        else
            rc = nn_launch(d, "gru_step_bwd", (size_t)n * H, 0, e, 11, KMEM(w), KINT(g.g), KINT(g.gh), KINT(g.pv),
                           KINT(g.dh), KMEM(L->dy), KINT(n), KINT(T), KINT(H), KINT(t), KINT(p->seq));
        /* DH[n, H] (=, lstm; +=, gru) dG_t . W_hh^T: the gradient reaching h_{t-1} */
        if (!rc && t > 0)
            rc = nn_gemm(d, 0, 1, (size_t)n, (size_t)H, KH, 1.0f, w, rg + (size_t)t * KH, (size_t)T * KH, whh, 0, KH,
                         p->gru ? 1.0f : 0.0f, w, g.dh, (size_t)H, e);
    }
    /* dW_hh[H, KH] = P^T . dG (P[:, 0] = 0) */
    if (!rc)
        rc = nn_gemm(d, 1, 0, (size_t)H, KH, rows, 1.0f, w, g.pv, (size_t)H, w, rg, KH, 0.0f, L->param[1].g, 0, KH, e);
    /* dW_ih[F, KH] = X^T . dG */
    if (!rc)
        rc = nn_gemm(d, 1, 0, F, KH, rows, 1.0f, L->x[0], 0, F, w, g.g, KH, 0.0f, L->param[0].g, 0, KH, e);
    if (!rc && p->use_bias)
        rc = nn_launch(d, "rnn_colsum", KH, 0, e, 5, KMEM(w), KINT(g.g), KINT(rows), KINT(KH), KMEM(L->param[2].g));
    if (!rc && p->use_bias && p->gru)
        rc = nn_launch(d, "rnn_colsum", KH, 0, e, 5, KMEM(w), KINT(g.gh), KINT(rows), KINT(KH), KMEM(L->param[3].g));
    /* dX[n*T, F] += dG . W_ih^T */
    if (!rc && L->dx[0])
        rc = nn_gemm(d, 0, 1, rows, F, KH, 1.0f, w, g.g, KH, wih, 0, KH, 1.0f, L->dx[0], 0, F, e);
    return rc;
}

const nn_layer_type nn_layer_lstm = {
    .name = "lstm",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse_lstm,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};

const nn_layer_type nn_layer_gru = {
    .name = "gru",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse_gru,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
