/* attention.c - multi-head self-attention over [T, D] samples.
 *
 * Keys: heads (required; D % heads == 0), causal (false), dropout (0: rate on
 * the attention probabilities, training only), use_bias (true), init.
 * Parameters: weight_qkv [D, 3D] (columns [Q | K | V], head h owning columns
 * h*dh .. (h+1)*dh - 1 of each), bias_qkv [3D], weight_out [D, D], bias_out
 * [D]; weights Glorot (weight_qkv over the whole [D, 3D]: fan_in D, fan_out
 * 3D), biases zero. "he": He-normal weights; "torch" (PyTorch's
 * nn.MultiheadAttention): weight_qkv Glorot as by default, weight_out
 * uniform +-1/sqrt(D) (its out_proj is an nn.Linear), biases zero.
 * dh = D / heads, scale = 1 / sqrt(dh).
 *
 * Forward (n samples, B = n*heads attention matrices):
 *   1. GEMM           raw[n*T, 3D] = X W_qkv                         (TMP)
 *   2. attn_split_heads  Q, K, V [B, T, dh] = raw + b_qkv, per head    (QKV)
 *   3. strided GEMM   S[B, T, T] = scale Q K^T                          (P)
 *   4. attn_softmax_forward  P = softmax(S) per row in place; causal: row i
 *      covers keys 0..i and P[i, j > i] = 0 exactly; training dropout:
 *      Pd = P * keep / (1 - rate) (R2), keep from hash_uniform(seed, stream,
 *      index in P), recomputed by the backward
 *   5. strided GEMM   Ch[B, T, dh] = Pd V                               (TMP)
 *   6. attn_merge_heads  C[n*T, D] (CM); y rows = b_out
 *   7. GEMM           y += C W_out
 * Backward (dy given; dW, db overwritten; dx accumulated when not NULL):
 *   1. db_out = column sums of dy (per-sample partials, then over samples)
 *      dW_out = C^T dy
 *   2. GEMM dC[n*T, D] = dy W_out^T (TMP) -> split into heads (CM)
 *   3. strided GEMMs  dV = Pd^T dC (TMP third), dP = dC V^T (R2)
 *   4. attn_softmax_backward  dS = P (g - sum_j g_j P_j), g = dP (* keep /
 *      (1 - rate)), in place in R2
 *   5. strided GEMMs  dQ = scale dS K, dK = scale dS^T Q (TMP first, second)
 *   6. attn_merge_heads  dQKV[n*T, 3D] (over QKV, no longer needed)
 *   7. db_qkv = column sums of dQKV, dW_qkv = X^T dQKV, dX += dQKV W_qkv^T
 *
 * Scratch (L->work), regions packed for the batch's n (forward and backward
 * of one step use the same n), per sample 7*T*D + 2*heads*T*T floats:
 *   QKV [3][n, heads, T, dh] | P [n, heads, T, T] | R2 [n, heads, T, T] |
 *   CM [n, T, D] | TMP [3 n T D].
 * The second T*T region holds the dropout-applied probabilities in the
 * forward and dP / dS in the backward (so it is needed even without
 * dropout). All reductions are deterministic (no atomics). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "../blas.h"
#include "layer.h"

typedef struct attention {
    int heads, causal, use_bias;
    int init; /* -1 (default), NN_INIT_HE, NN_INIT_GLOROT or NN_INIT_FAN_IN_UNIFORM ("torch") */
    float rate;
    int T, D, dh;
    int wqkv, bqkv, wout, bout; /* parameter indices (-1: none) */
} attention;

static const char *const keys[] = {"heads", "causal", "dropout", "use_bias", "init", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    attention *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    double rate;
    int r = nn_layer_get_int(j, "heads", path, 1, 1 << 12, INT32_MIN, &p->heads, e);
    if (!r)
        r = nn_layer_get_bool(j, "causal", path, 0, &p->causal, e);
    if (!r)
        r = nn_layer_get_num(j, "dropout", path, 0.0, 0.99, 0.0, &rate, e);
    if (!r)
        r = nn_layer_get_bool(j, "use_bias", path, 1, &p->use_bias, e);
    if (!r)
        r = nn_layer_get_init(j, path, &p->init, e);
    if (r)
        return r;
    p->rate = (float)rate;
    return 0;
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    attention *p = L->p;
    const nn_shape *s = &L->in_shape[0];
    char b[64];
    if (s->nd != 2)
        return nn_fail(e, NN_EDATA, "%s: attention needs a [sequence_length, features] input; got %s", path,
                       nn_shape_str(s, b, sizeof b));
    p->T = s->d[0];
    p->D = s->d[1];
    if (p->D % p->heads)
        return nn_fail(e, NN_EDATA, "%s.heads: %d features cannot be split into %d heads (features must be a "
                       "multiple of heads)", path, p->D, p->heads);
    p->dh = p->D / p->heads;
    int D = p->D, D3 = 3 * D, T = p->T;
    L->out_shape = *s;
    int wq[2] = {D, D3}, wo[2] = {D, D};
    p->bqkv = p->bout = -1;
    p->wqkv = L->nparam;
    nn_init wqi = p->init == NN_INIT_HE ? NN_INIT_HE : NN_INIT_GLOROT;
    nn_init woi = p->init == NN_INIT_FAN_IN_UNIFORM ? NN_INIT_FAN_IN_UNIFORM : wqi;
    nn_layer_add_param(L, "weight_qkv", 2, wq, wqi, D, D3);
    if (p->use_bias) {
        p->bqkv = L->nparam;
        nn_layer_add_param(L, "bias_qkv", 1, &D3, NN_INIT_ZERO, D, D3);
    }
    p->wout = L->nparam;
    nn_layer_add_param(L, "weight_out", 2, wo, woi, D, D);
    if (p->use_bias) {
        p->bout = L->nparam;
        nn_layer_add_param(L, "bias_out", 1, &D, NN_INIT_ZERO, D, D);
    }
    L->flops = 2.0 * T * D * D3 + 4.0 * p->heads * (double)T * T * p->dh + 2.0 * T * D * D;
    L->scratch = 7 * (size_t)T * D + 2 * (size_t)p->heads * T * T;
    if (L->scratch > (size_t)INT_MAX / 64)
        return nn_fail(e, NN_EDATA, "%s: the scratch of this attention (%zu floats per sample) is too large", path,
                       L->scratch);
    return 0;
}

/* Float offsets of the scratch regions for a batch of n. */
typedef struct regions {
    size_t N, PP, qkv, q, k, v, P, R2, CM, TMP;
} regions;

static regions regions_of(const attention *p, int n)
{
    regions g;
    g.N = (size_t)n * p->T * p->D;
    g.PP = (size_t)n * p->heads * p->T * p->T;
    g.qkv = g.q = 0;
    g.k = g.N;
    g.v = 2 * g.N;
    g.P = 3 * g.N;
    g.R2 = g.P + g.PP;
    g.CM = g.R2 + g.PP;
    g.TMP = g.CM + g.N;
    return g;
}

static uint32_t stream_of(const nn_layer *L, const nn_run *r)
{
    return (uint32_t)(r->step * 0x9E3779B1u) ^ (uint32_t)(L->index * 0x632BE5ABu);
}

static int dropout_on(const attention *p, const nn_run *r) { return r->train && p->rate > 0.0f; }

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    attention *p = L->p;
    if (r->n <= 0)
        return 0;
    nn_dev *d = r->dev;
    regions g = regions_of(p, r->n);
    size_t n = (size_t)r->n, T = (size_t)p->T, D = (size_t)p->D, dh = (size_t)p->dh, H = (size_t)p->heads;
    size_t rows = n * T, B = n * H, sTD = T * dh, sTT = T * T;
    float scale = (float)(1.0 / sqrt((double)p->dh));
    int drop = dropout_on(p, r);
    cl_mem w = L->work, bq = p->use_bias ? L->param[p->bqkv].w : L->param[p->wqkv].w;
    cl_mem bo = p->use_bias ? L->param[p->bout].w : L->param[p->wout].w;
    int rc = nn_gemm(d, 0, 0, rows, 3 * D, D, 1.0f, L->x[0], 0, D, L->param[p->wqkv].w, 0, 3 * D, 0.0f, w, g.TMP,
                 3 * D, e);
    if (!rc)
        rc = nn_launch(d, "attn_split_heads", rows * 3 * H, 0, e, 11, KMEM(w), KINT(g.TMP), KMEM(bq),
                       KINT(p->use_bias), KMEM(w), KINT(g.qkv), KINT(r->n), KINT(p->T), KINT(p->heads), KINT(p->dh),
                       KINT(3));
    if (!rc)
        rc = nn_gemm_strided(d, 0, 1, T, T, dh, scale, w, g.q, dh, sTD, w, g.k, dh, sTD, 0.0f, w, g.P, T, sTT, B, e);
    if (!rc)
        rc = nn_launch(d, "attn_softmax_forward", B * T, 0, e, 11, KMEM(w), KINT(g.P), KINT(g.R2), KINT(B * T),
                       KINT(p->T), KINT(p->causal), KINT(drop), KFLT(p->rate), KUINT(r->seed), KUINT(r->seed >> 32),
                       KUINT(stream_of(L, r)));
    if (!rc)
        rc = nn_gemm_strided(d, 0, 0, T, dh, T, 1.0f, w, drop ? g.R2 : g.P, T, sTT, w, g.v, dh, sTD, 0.0f, w, g.TMP,
                             dh, sTD, B, e);
    if (!rc)
        rc = nn_launch(d, "attn_merge_heads", rows * H, 0, e, 12, KMEM(w), KINT(g.TMP), KMEM(w), KINT(g.CM),
                       KINT(r->n), KINT(p->T), KINT(p->heads), KINT(p->dh), KINT(1), KMEM(L->y), KMEM(bo),
                       KINT(p->use_bias));
    if (!rc)
        rc = nn_gemm(d, 0, 0, rows, D, D, 1.0f, w, g.CM, D, L->param[p->wout].w, 0, D, p->use_bias ? 1.0f : 0.0f,
                     L->y, 0, D, e);
    return rc;
}

/* out[cols] = column sums of src [n*R, cols] at soff: per-sample partials
 * into part (at poff, n*cols floats), then over the samples. */
static int colsum(nn_dev *d, cl_mem src, size_t soff, int n, int R, int cols, cl_mem part, size_t poff, cl_mem out,
                  nn_err *e)
{
    int rc = nn_launch2(d, "seq_colsum_partial", (size_t)cols, (size_t)n, 0, 0, e, 7, KMEM(src), KINT(soff),
                        KINT(R), KINT(cols), KINT(n), KMEM(part), KINT(poff));
    if (!rc)
        rc = nn_launch(d, "seq_sum_rows", (size_t)cols, 0, e, 6, KMEM(part), KINT(poff), KINT(cols), KINT(n),
                       KINT(cols), KMEM(out));
    return rc;
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    attention *p = L->p;
    if (r->n <= 0)
        return 0;
    int rc = 0;
    nn_dev *d = r->dev;
    regions g = regions_of(p, r->n);
    size_t n = (size_t)r->n, T = (size_t)p->T, D = (size_t)p->D, dh = (size_t)p->dh, H = (size_t)p->heads;
    size_t rows = n * T, B = n * H, sTD = T * dh, sTT = T * T;
    float scale = (float)(1.0 / sqrt((double)p->dh));
    int drop = dropout_on(p, r);
    cl_mem w = L->work;
    /* 1. output projection */
    if (p->use_bias)
        rc = colsum(d, L->dy, 0, r->n, p->T, p->D, w, g.TMP, L->param[p->bout].g, e);
    if (!rc)
        rc = nn_gemm(d, 1, 0, D, D, rows, 1.0f, w, g.CM, D, L->dy, 0, D, 0.0f, L->param[p->wout].g, 0, D, e);
    /* 2. dC = dy W_out^T, per head */
    if (!rc)
        rc = nn_gemm(d, 0, 1, rows, D, D, 1.0f, L->dy, 0, D, L->param[p->wout].w, 0, D, 0.0f, w, g.TMP, D, e);
    if (!rc)
        rc = nn_launch(d, "attn_split_heads", rows * H, 0, e, 11, KMEM(w), KINT(g.TMP), KMEM(w), KINT(0), KMEM(w),
                       KINT(g.CM), KINT(r->n), KINT(p->T), KINT(p->heads), KINT(p->dh), KINT(1));
    /* 3. dV = Pd^T dC, dP = dC V^T */
    if (!rc)
        rc = nn_gemm_strided(d, 1, 0, T, dh, T, 1.0f, w, drop ? g.R2 : g.P, T, sTT, w, g.CM, dh, sTD, 0.0f, w,
                             g.TMP + 2 * g.N, dh, sTD, B, e);
    if (!rc)
        rc = nn_gemm_strided(d, 0, 1, T, T, dh, 1.0f, w, g.CM, dh, sTD, w, g.v, dh, sTD, 0.0f, w, g.R2, T, sTT, B, e);
    /* 4. softmax (and dropout) backward, in place */
    if (!rc)
        rc = nn_launch(d, "attn_softmax_backward", B * T, 0, e, 11, KMEM(w), KINT(g.P), KINT(g.R2), KINT(B * T),
                       KINT(p->T), KINT(p->causal), KINT(drop), KFLT(p->rate), KUINT(r->seed), KUINT(r->seed >> 32),
                       KUINT(stream_of(L, r)));
    /* 5. dQ = scale dS K, dK = scale dS^T Q */
    if (!rc)
        rc = nn_gemm_strided(d, 0, 0, T, dh, T, scale, w, g.R2, T, sTT, w, g.k, dh, sTD, 0.0f, w, g.TMP, dh, sTD, B,
                             e);
    if (!rc)
        rc = nn_gemm_strided(d, 1, 0, T, dh, T, scale, w, g.R2, T, sTT, w, g.q, dh, sTD, 0.0f, w, g.TMP + g.N, dh,
                             sTD, B, e);
    /* 6. dQKV [n*T, 3D] over the QKV region */
    if (!rc)
        rc = nn_launch(d, "attn_merge_heads", rows * 3 * H, 0, e, 12, KMEM(w), KINT(g.TMP), KMEM(w), KINT(g.qkv),
                       KINT(r->n), KINT(p->T), KINT(p->heads), KINT(p->dh), KINT(3), KMEM(w), KMEM(w), KINT(0));
    /* 7. input projection */
    if (!rc && p->use_bias)
        rc = colsum(d, w, g.qkv, r->n, p->T, 3 * p->D, w, g.TMP, L->param[p->bqkv].g, e);
    if (!rc)
        rc = nn_gemm(d, 1, 0, D, 3 * D, rows, 1.0f, L->x[0], 0, D, w, g.qkv, 3 * D, 0.0f, L->param[p->wqkv].g, 0,
                     3 * D, e);
    if (!rc && L->dx[0])
        rc = nn_gemm(d, 0, 1, rows, D, 3 * D, 1.0f, w, g.qkv, 3 * D, L->param[p->wqkv].w, 0, 3 * D, 1.0f, L->dx[0], 0,
                     D, e);
    return rc;
}

const nn_layer_type nn_layer_attention = {
    .name = "attention",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
