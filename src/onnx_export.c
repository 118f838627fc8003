/* onnx_export.c - model.bin -> ONNX (opset NN_ONNX_OPSET), docs/FORMATS.md.
 *
 * The model JSON stored in model.bin is parsed and its graph built (shapes,
 * no device); each layer becomes standard ONNX nodes reading its tensors as
 * initializers named as in model.bin ("<layer>.<param>"). Values are named
 * after the layers that produce them; the graph input is "input" [N, shape],
 * the output "output". What `nnrun infer` does around the net is explicit:
 * the input normalisation (Sub, Mul by 1/std) first, and a Softmax (or
 * Sigmoid) last when the net ends in logits, so onnxruntime's output is
 * what `nnrun infer` prints. Layer-specific mappings:
 *   dense           Gemm on [N, in]; MatMul + Add on [N, T, in]
 *   conv2d          Conv (pads from "same" as nnrun computes them)
 *   maxpool/avgpool MaxPool / AveragePool (count_include_pad 0)
 *   global_avgpool  GlobalAveragePool + Flatten
 *   gelu            0.5 x (1 + Erf(x / sqrt 2)) (Gelu is opset 20)
 *   dropout         nothing (identity at inference)
 *   embedding       Round, Cast to int64, Gather (+ Add of the positions)
 *   lstm, gru       Transpose to [T, N, F], LSTM / GRU with the gates
 *                   reordered (nnrun i,f,g,o -> ONNX i,o,f,c; r,z,n -> z,r,h;
 *                   GRU linear_before_reset 1), then the sequence or last step
 *   attention       MatMul/Split/Reshape/Transpose per head, scaled scores,
 *                   causal mask added (-1e9 above the diagonal), Softmax, output
 *                   projection
 *   denormalize     Mul std, Add mean */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model.h"
#include "modelbin.h"
#include "loss.h"
#include "net.h"
#include "onnx.h"
#include "onnx_build.h"
#include "version.h"

typedef struct ex {
    ox_graph g;
    const char *file;
    nn_net *net;
    nn_modelbin *c;
    const char **val; /* value name per layer */
    const char *input; /* the network input after the normalisation */
} ex;

static const float *param(ex *x, const nn_layer *L, const char *p, size_t want, nn_err *e)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, p);
    const nn_modelbin_tensor *t = nn_modelbin_find(x->c, name);
    if (!t || t->length != want) {
        nn_fail(e, NN_EDATA, "%s: %s (%s): tensor '%s' is %s", x->file, L->path, L->name, name,
                t ? "of the wrong size" : "missing");
        return NULL;
    }
    return t->data;
}

/* The initializer "<layer>.<p>" with the given dims (a reshaped view of the tensor). */
static const char *init_param(ex *x, const nn_layer *L, const char *p, int nd, const int64_t *dims, nn_err *e)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)dims[i];
    const float *d = param(x, L, p, n, e);
    return d ? ox_init_f(&x->g, ox_str(&x->g, "%s.%s", L->name, p), nd, dims, d) : NULL;
}

static const char *in_name(ex *x, const nn_layer *L, int k)
{
    return L->in[k] < 0 ? x->input : x->val[L->in[k]];
}

static const char *scalar(ex *x, const char *name, float v)
{
    int64_t one = 1;
    return ox_init_f(&x->g, name, 1, &one, &v);
}

static const char *ints(ex *x, const char *name, int n, const int64_t *v)
{
    int64_t d = n;
    return ox_init_i64(&x->g, name, 1, &d, v);
}

/* Activation `act` (alpha for leaky_relu/elu) from value a into value y. */
static void activation(ex *x, const char *name, int act, double alpha, const char *a, const char *y)
{
    ox_graph *g = &x->g;
    Onnx__NodeProto *n;
    switch (act) {
    case NN_ACT_RELU: ox_op1(g, "Relu", name, a, y); break;
    case NN_ACT_SIGMOID: ox_op1(g, "Sigmoid", name, a, y); break;
    case NN_ACT_TANH: ox_op1(g, "Tanh", name, a, y); break;
    case NN_ACT_LEAKY_RELU:
        n = ox_op1(g, "LeakyRelu", name, a, y);
        ox_attr_float(g, n, "alpha", (float)alpha);
        break;
    case NN_ACT_ELU:
        n = ox_op1(g, "Elu", name, a, y);
        ox_attr_float(g, n, "alpha", (float)alpha);
        break;
    case NN_ACT_GELU: {
        const char *s = scalar(x, ox_str(g, "%s.inv_sqrt2", name), (float)M_SQRT1_2);
        const char *one = scalar(x, ox_str(g, "%s.one", name), 1.0f);
        const char *half = scalar(x, ox_str(g, "%s.half", name), 0.5f);
        const char *t1 = ox_str(g, "%s/scaled", name), *t2 = ox_str(g, "%s/erf", name);
        const char *t3 = ox_str(g, "%s/erf1", name), *t4 = ox_str(g, "%s/xerf1", name);
        ox_op2(g, "Mul", ox_str(g, "%s/scale", name), a, s, t1);
        ox_op1(g, "Erf", ox_str(g, "%s/erf", name), t1, t2);
        ox_op2(g, "Add", ox_str(g, "%s/add1", name), t2, one, t3);
        ox_op2(g, "Mul", ox_str(g, "%s/mulx", name), a, t3, t4);
        ox_op2(g, "Mul", name, t4, half, y);
        break;
    }
    default: ox_op1(g, "Identity", name, a, y); break;
    }
}

/* A layer's fused activation after its linear part (written to `pre`). */
static const char *pre_act(ex *x, const nn_layer *L)
{
    return L->act ? ox_str(&x->g, "%s/linear", L->name) : x->val[L->index];
}

static void fused_act(ex *x, const nn_layer *L, const char *pre)
{
    if (L->act)
        activation(x, ox_str(&x->g, "%s/%s", L->name, nn_act_name(L->act)), L->act,
                   L->act == NN_ACT_ELU ? 1.0 : 0.01, pre, x->val[L->index]);
}

/* An int or [a, b] key of the layer JSON; dflt when absent. */
static void pair(const cJSON *j, const char *key, int dflt, int out[2])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    out[0] = out[1] = dflt;
    if (cJSON_IsNumber(v))
        out[0] = out[1] = v->valueint;
    else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
        out[0] = cJSON_GetArrayItem(v, 0)->valueint;
        out[1] = cJSON_GetArrayItem(v, 1)->valueint;
    }
}

static double num(const cJSON *j, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int flag(const cJSON *j, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int ex_dense(ex *x, const nn_layer *L, const cJSON *j, nn_err *e)
{
    ox_graph *g = &x->g;
    int in = L->in_shape[0].d[L->in_shape[0].nd - 1], units = L->out_shape.d[L->out_shape.nd - 1];
    int64_t wd[2] = {in, units}, bd[1] = {units};
    const char *w = init_param(x, L, "weight", 2, wd, e);
    const char *b = flag(j, "use_bias", 1) ? init_param(x, L, "bias", 1, bd, e) : NULL;
    if (!w || (!b && flag(j, "use_bias", 1)))
        return e->code;
    const char *pre = pre_act(x, L), *xin = in_name(x, L, 0);
    if (L->in_shape[0].nd == 1) {
        const char *ins[3] = {xin, w, b};
        ox_node(g, "Gemm", L->name, b ? 3 : 2, ins, 1, &pre);
    } else if (b) {
        const char *mm = ox_str(g, "%s/matmul", L->name);
        ox_op2(g, "MatMul", mm, xin, w, mm);
        ox_op2(g, "Add", L->name, mm, b, pre);
    } else {
        ox_op2(g, "MatMul", L->name, xin, w, pre);
    }
    fused_act(x, L, pre);
    return 0;
}

static int ex_conv(ex *x, const nn_layer *L, const cJSON *j, nn_err *e)
{
    ox_graph *g = &x->g;
    int k[2], s[2], dil[2], pad[2] = {0, 0};
    pair(j, "kernel", 1, k);
    pair(j, "stride", 1, s);
    pair(j, "dilation", 1, dil);
    int groups = (int)num(j, "groups", 1), use_bias = flag(j, "use_bias", 1);
    int C = L->in_shape[0].d[0], F = L->out_shape.d[0];
    int in[2] = {L->in_shape[0].d[1], L->in_shape[0].d[2]}, out[2] = {L->out_shape.d[1], L->out_shape.d[2]};
    int64_t pads[4];
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(j, "padding");
    for (int a = 0; a < 2; a++) {
        if (cJSON_IsString(pd) && !strcmp(pd->valuestring, "same")) {
            int t = (out[a] - 1) * s[a] + (k[a] - 1) * dil[a] + 1 - in[a];
            t = t > 0 ? t : 0;
            pads[a] = t / 2;
            pads[a + 2] = t - t / 2;
        } else {
            if (!cJSON_IsString(pd))
                pair(j, "padding", 0, pad);
            pads[a] = pads[a + 2] = pad[a];
        }
    }
    int64_t wd[4] = {F, C / groups, k[0], k[1]}, bd[1] = {F};
    const char *w = init_param(x, L, "weight", 4, wd, e);
    const char *b = use_bias ? init_param(x, L, "bias", 1, bd, e) : NULL;
    if (!w || (use_bias && !b))
        return e->code;
    const char *pre = pre_act(x, L);
    const char *ins[3] = {in_name(x, L, 0), w, b};
    Onnx__NodeProto *n = ox_node(g, "Conv", L->name, b ? 3 : 2, ins, 1, &pre);
    int64_t ks[2] = {k[0], k[1]}, ss[2] = {s[0], s[1]}, ds[2] = {dil[0], dil[1]};
    ox_attr_ints(g, n, "kernel_shape", 2, ks);
    ox_attr_ints(g, n, "strides", 2, ss);
    ox_attr_ints(g, n, "dilations", 2, ds);
    ox_attr_ints(g, n, "pads", 4, pads);
    ox_attr_int(g, n, "group", groups);
    fused_act(x, L, pre);
    return 0;
}

static int ex_pool(ex *x, const nn_layer *L, const cJSON *j, int max)
{
    ox_graph *g = &x->g;
    int k[2], s[2], p[2];
    pair(j, "pool", 2, k);
    pair(j, "stride", 0, s);
    pair(j, "padding", 0, p);
    if (!s[0])
        s[0] = k[0], s[1] = k[1];
    Onnx__NodeProto *n = ox_op1(g, max ? "MaxPool" : "AveragePool", L->name, in_name(x, L, 0), x->val[L->index]);
    int64_t ks[2] = {k[0], k[1]}, ss[2] = {s[0], s[1]}, pads[4] = {p[0], p[1], p[0], p[1]};
    ox_attr_ints(g, n, "kernel_shape", 2, ks);
    ox_attr_ints(g, n, "strides", 2, ss);
    ox_attr_ints(g, n, "pads", 4, pads);
    if (!max)
        ox_attr_int(g, n, "count_include_pad", 0);
    return 0;
}

static int ex_rnn(ex *x, const nn_layer *L, const cJSON *j, int lstm, nn_err *e)
{
    ox_graph *g = &x->g;
    int F = L->in_shape[0].d[1], H = (int)num(j, "units", 1), K = lstm ? 4 : 3;
    int seq = flag(j, "return_sequences", 0), use_bias = flag(j, "use_bias", 1);
    /* ONNX gate g takes nnrun's block map[g] */
    static const int lmap[4] = {0, 3, 1, 2}, gmap[3] = {1, 0, 2};
    const int *map = lstm ? lmap : gmap;
    const float *wi = param(x, L, "weight_ih", (size_t)F * K * H, e);
    const float *wh = wi ? param(x, L, "weight_hh", (size_t)H * K * H, e) : NULL;
    const float *bi = NULL, *bh = NULL;
    if (wh && use_bias)
        bi = lstm ? param(x, L, "bias", (size_t)K * H, e) : param(x, L, "bias_ih", (size_t)K * H, e);
    if (bi && !lstm)
        bh = param(x, L, "bias_hh", (size_t)K * H, e);
    if (!wh || (use_bias && (!bi || (!lstm && !bh))))
        return e->code;
    float *W = malloc(sizeof(float) * (size_t)K * H * F), *R = malloc(sizeof(float) * (size_t)K * H * H);
    float *B = calloc((size_t)2 * K * H, sizeof(float));
    if (!W || !R || !B) {
        free(W);
        free(R);
        free(B);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    for (int q = 0; q < K; q++)
        for (int h = 0; h < H; h++) {
            int src = map[q] * H + h, dst = q * H + h;
            for (int f = 0; f < F; f++)
                W[(size_t)dst * F + f] = wi[(size_t)f * K * H + src];
            for (int f = 0; f < H; f++)
                R[(size_t)dst * H + f] = wh[(size_t)f * K * H + src];
            if (bi)
                B[dst] = bi[src];
            if (bh)
                B[K * H + dst] = bh[src];
        }
    int64_t wd[3] = {1, K * H, F}, rd[3] = {1, K * H, H}, bd[2] = {1, 2 * K * H};
    const char *wn = ox_init_f(g, ox_str(g, "%s.W", L->name), 3, wd, W);
    const char *rn = ox_init_f(g, ox_str(g, "%s.R", L->name), 3, rd, R);
    const char *bn = use_bias ? ox_init_f(g, ox_str(g, "%s.B", L->name), 2, bd, B) : NULL;
    free(W);
    free(R);
    free(B);
    const char *xt = ox_str(g, "%s/x_tnf", L->name);
    int64_t perm[3] = {1, 0, 2};
    ox_attr_ints(g, ox_op1(g, "Transpose", ox_str(g, "%s/transpose_in", L->name), in_name(x, L, 0), xt), "perm", 3,
                 perm);
    const char *ins[4] = {xt, wn, rn, bn};
    const char *Y = ox_str(g, "%s/Y", L->name), *Yh = ox_str(g, "%s/Y_h", L->name);
    const char *outs[2] = {seq ? Y : "", Yh};
    Onnx__NodeProto *n = ox_node(g, lstm ? "LSTM" : "GRU", L->name, bn ? 4 : 3, ins, 2, outs);
    ox_attr_int(g, n, "hidden_size", H);
    if (!lstm)
        ox_attr_int(g, n, "linear_before_reset", 1);
    if (seq) { /* Y [T, 1, N, H] -> [N, T, H] */
        int64_t ax1 = 1;
        const char *sq = ox_str(g, "%s/Y_tnh", L->name);
        ox_op2(g, "Squeeze", ox_str(g, "%s/squeeze", L->name), Y, ints(x, ox_str(g, "%s.axis1", L->name), 1, &ax1),
               sq);
        ox_attr_ints(g, ox_op1(g, "Transpose", ox_str(g, "%s/transpose_out", L->name), sq, x->val[L->index]),
                     "perm", 3, perm);
    } else { /* Y_h [1, N, H] -> [N, H] */
        int64_t ax0 = 0;
        ox_op2(g, "Squeeze", ox_str(g, "%s/squeeze", L->name), Yh, ints(x, ox_str(g, "%s.axis0", L->name), 1, &ax0),
               x->val[L->index]);
    }
    return 0;
}

static int ex_attention(ex *x, const nn_layer *L, const cJSON *j, nn_err *e)
{
    ox_graph *g = &x->g;
    int T = L->in_shape[0].d[0], D = L->in_shape[0].d[1], heads = (int)num(j, "heads", 1), dh = D / heads;
    int use_bias = flag(j, "use_bias", 1), causal = flag(j, "causal", 0);
    const char *nm = L->name;
    int64_t wq[2] = {D, 3 * D}, bq[1] = {3 * D}, wo[2] = {D, D}, bo[1] = {D};
    const char *Wq = init_param(x, L, "weight_qkv", 2, wq, e);
    const char *Bq = Wq && use_bias ? init_param(x, L, "bias_qkv", 1, bq, e) : NULL;
    const char *Wo = Wq ? init_param(x, L, "weight_out", 2, wo, e) : NULL;
    const char *Bo = Wo && use_bias ? init_param(x, L, "bias_out", 1, bo, e) : NULL;
    if (!Wq || !Wo || (use_bias && (!Bq || !Bo)))
        return e->code;
    const char *qkv = ox_str(g, "%s/qkv", nm);
    if (Bq) {
        const char *mm = ox_str(g, "%s/qkv_matmul", nm);
        ox_op2(g, "MatMul", mm, in_name(x, L, 0), Wq, mm);
        ox_op2(g, "Add", ox_str(g, "%s/qkv_bias", nm), mm, Bq, qkv);
    } else {
        ox_op2(g, "MatMul", ox_str(g, "%s/qkv_matmul", nm), in_name(x, L, 0), Wq, qkv);
    }
    int64_t split[3] = {D, D, D};
    const char *sp[2] = {qkv, ints(x, ox_str(g, "%s.split", nm), 3, split)};
    const char *qkvs[3] = {ox_str(g, "%s/q", nm), ox_str(g, "%s/k", nm), ox_str(g, "%s/v", nm)};
    ox_attr_int(g, ox_node(g, "Split", ox_str(g, "%s/split", nm), 2, sp, 3, qkvs), "axis", -1);
    int64_t hs[4] = {0, T, heads, dh}, back[3] = {0, T, D};
    const char *hshape = ints(x, ox_str(g, "%s.heads_shape", nm), 4, hs);
    const char *hv[3];
    static const char *const tag[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        const char *r = ox_str(g, "%s/%s_heads", nm, tag[i]);
        ox_op2(g, "Reshape", ox_str(g, "%s/%s_reshape", nm, tag[i]), qkvs[i], hshape, r);
        hv[i] = ox_str(g, "%s/%s_nhtd", nm, tag[i]);
        /* q, v: [N, h, T, dh]; k: [N, h, dh, T] */
        int64_t perm_q[4] = {0, 2, 1, 3}, perm_k[4] = {0, 2, 3, 1};
        ox_attr_ints(g, ox_op1(g, "Transpose", ox_str(g, "%s/%s_transpose", nm, tag[i]), r, hv[i]), "perm", 4,
                     i == 1 ? perm_k : perm_q);
    }
    const char *sc = ox_str(g, "%s/scores", nm), *scs = ox_str(g, "%s/scores_scaled", nm);
    ox_op2(g, "MatMul", ox_str(g, "%s/qk", nm), hv[0], hv[1], sc);
    ox_op2(g, "Mul", ox_str(g, "%s/scale", nm), sc, scalar(x, ox_str(g, "%s.scale", nm), 1.0f / sqrtf((float)dh)),
           scs);
    if (causal) {
        float *m = malloc(sizeof(float) * (size_t)T * T);
        if (!m)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        for (int a = 0; a < T; a++)
            for (int b = 0; b < T; b++)
                m[(size_t)a * T + b] = b > a ? -1e9f : 0.0f;
        int64_t md[2] = {T, T};
        const char *mask = ox_init_f(g, ox_str(g, "%s.causal_mask", nm), 2, md, m);
        free(m);
        const char *masked = ox_str(g, "%s/scores_masked", nm);
        ox_op2(g, "Add", ox_str(g, "%s/mask", nm), scs, mask, masked);
        scs = masked;
    }
    const char *p = ox_str(g, "%s/probs", nm), *ctx = ox_str(g, "%s/context", nm);
    ox_attr_int(g, ox_op1(g, "Softmax", ox_str(g, "%s/softmax", nm), scs, p), "axis", -1);
    ox_op2(g, "MatMul", ox_str(g, "%s/pv", nm), p, hv[2], ctx);
    const char *ct = ox_str(g, "%s/context_nthd", nm), *cm = ox_str(g, "%s/context_merged", nm);
    int64_t perm[4] = {0, 2, 1, 3};
    ox_attr_ints(g, ox_op1(g, "Transpose", ox_str(g, "%s/merge_transpose", nm), ctx, ct), "perm", 4, perm);
    ox_op2(g, "Reshape", ox_str(g, "%s/merge_reshape", nm), ct, ints(x, ox_str(g, "%s.merged_shape", nm), 3, back),
           cm);
    if (Bo) {
        const char *mm = ox_str(g, "%s/out_matmul", nm);
        ox_op2(g, "MatMul", mm, cm, Wo, mm);
        ox_op2(g, "Add", nm, mm, Bo, x->val[L->index]);
    } else {
        ox_op2(g, "MatMul", nm, cm, Wo, x->val[L->index]);
    }
    return 0;
}

static int ex_layer(ex *x, const nn_layer *L, const cJSON *j, nn_err *e)
{
    ox_graph *g = &x->g;
    const char *t = L->type->name, *a = in_name(x, L, 0), *y = x->val[L->index];
    Onnx__NodeProto *n;
    if (!strcmp(t, "dense"))
        return ex_dense(x, L, j, e);
    if (!strcmp(t, "conv2d"))
        return ex_conv(x, L, j, e);
    if (!strcmp(t, "maxpool") || !strcmp(t, "avgpool"))
        return ex_pool(x, L, j, t[0] == 'm');
    if (!strcmp(t, "lstm") || !strcmp(t, "gru"))
        return ex_rnn(x, L, j, t[0] == 'l', e);
    if (!strcmp(t, "attention"))
        return ex_attention(x, L, j, e);
    if (!strcmp(t, "global_avgpool")) {
        const char *gp = ox_str(g, "%s/pooled", L->name);
        ox_op1(g, "GlobalAveragePool", L->name, a, gp);
        ox_attr_int(g, ox_op1(g, "Flatten", ox_str(g, "%s/flatten", L->name), gp, y), "axis", 1);
        return 0;
    }
    if (!strcmp(t, "flatten")) {
        ox_attr_int(g, ox_op1(g, "Flatten", L->name, a, y), "axis", 1);
        return 0;
    }
    if (!strcmp(t, "softmax")) {
        ox_attr_int(g, ox_op1(g, "Softmax", L->name, a, y), "axis", -1);
        return 0;
    }
    int act = nn_act_parse(t);
    if (act > 0) {
        activation(x, L->name, act, num(j, "alpha", act == NN_ACT_ELU ? 1.0 : 0.01), a, y);
        return 0;
    }
    if (!strcmp(t, "batchnorm") || !strcmp(t, "layernorm")) {
        int C = !strcmp(t, "batchnorm") ? L->in_shape[0].d[0] : L->in_shape[0].d[L->in_shape[0].nd - 1];
        int64_t cd[1] = {C};
        const char *w = init_param(x, L, "weight", 1, cd, e);
        const char *b = w ? init_param(x, L, "bias", 1, cd, e) : NULL;
        if (!b)
            return e->code;
        if (t[0] == 'l') {
            const char *ins[3] = {a, w, b};
            n = ox_node(g, "LayerNormalization", L->name, 3, ins, 1, &y);
            ox_attr_int(g, n, "axis", -1);
        } else {
            const char *m = init_param(x, L, "running_mean", 1, cd, e);
            const char *v = m ? init_param(x, L, "running_var", 1, cd, e) : NULL;
            if (!v)
                return e->code;
            const char *ins[5] = {a, w, b, m, v};
            n = ox_node(g, "BatchNormalization", L->name, 5, ins, 1, &y);
        }
        ox_attr_float(g, n, "epsilon", (float)num(j, "eps", 1e-5));
        return 0;
    }
    if (!strcmp(t, "add") || !strcmp(t, "concat")) {
        const char *ins[NN_MAX_INPUTS];
        for (int i = 0; i < L->nin; i++)
            ins[i] = in_name(x, L, i);
        if (t[0] == 'a') {
            ox_node(g, L->nin == 2 ? "Add" : "Sum", L->name, L->nin, ins, 1, &y);
        } else {
            int ax = (int)num(j, "axis", 0), nd = L->out_shape.nd;
            n = ox_node(g, "Concat", L->name, L->nin, ins, 1, &y);
            ox_attr_int(g, n, "axis", (ax < 0 ? ax + nd : ax) + 1);
        }
        return 0;
    }
    if (!strcmp(t, "embedding")) {
        int T = L->in_shape[0].d[0], V = (int)L->param[0].shape.d[0], D = L->out_shape.d[1];
        int64_t wd[2] = {V, D};
        const char *w = init_param(x, L, "weight", 2, wd, e);
        const char *pos = w && flag(j, "positional", 0) ? init_param(x, L, "position", 2, (int64_t[]){T, D}, e) : NULL;
        if (!w || (flag(j, "positional", 0) && !pos))
            return e->code;
        const char *r = ox_str(g, "%s/ids_rounded", L->name), *ids = ox_str(g, "%s/ids", L->name);
        ox_op1(g, "Round", ox_str(g, "%s/round", L->name), a, r);
        ox_attr_int(g, ox_op1(g, "Cast", ox_str(g, "%s/cast", L->name), r, ids), "to",
                    ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        const char *gy = pos ? ox_str(g, "%s/gathered", L->name) : y;
        ox_attr_int(g, ox_op2(g, "Gather", L->name, w, ids, gy), "axis", 0);
        if (pos)
            ox_op2(g, "Add", ox_str(g, "%s/position", L->name), gy, pos, y);
        return 0;
    }
    if (!strcmp(t, "denormalize")) {
        int D = L->out_shape.d[L->out_shape.nd - 1];
        int64_t dd[1] = {D};
        const char *m = init_param(x, L, "mean", 1, dd, e), *s = m ? init_param(x, L, "std", 1, dd, e) : NULL;
        if (!s)
            return e->code;
        const char *sc = ox_str(g, "%s/scaled", L->name);
        ox_op2(g, "Mul", ox_str(g, "%s/std", L->name), a, s, sc);
        ox_op2(g, "Add", L->name, sc, m, y);
        return 0;
    }
    return nn_fail(e, NN_EDATA, "%s: %s (%s): layer type '%s' has no ONNX export", x->file, L->path, L->name, t);
}

/* The normalisation nnrun applies to its input: (x - mean) * (1 / std). */
static const char *ex_norm(ex *x, nn_err *e)
{
    ox_graph *g = &x->g;
    const nn_shape *s = &x->net->in_shape;
    int k = x->c->nnorm;
    int64_t d[NN_MAX_DIMS];
    int nd;
    if ((size_t)k == x->net->in_dim) {
        nd = s->nd;
        for (int i = 0; i < nd; i++)
            d[i] = s->d[i];
    } else if (k == 1) {
        nd = 1;
        d[0] = 1;
    } else if (s->nd == 3 && k == s->d[0]) {
        nd = 3;
        d[0] = k;
        d[1] = d[2] = 1;
    } else {
        nn_fail(e, NN_EDATA, "%s: normalize: %d values fit neither 1, the channels nor the %zu features", x->file, k,
                x->net->in_dim);
        return NULL;
    }
    float *inv = malloc(sizeof(float) * (size_t)k);
    if (!inv) {
        nn_fail(e, NN_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < k; i++)
        inv[i] = 1.0f / x->c->std[i];
    const char *m = ox_init_f(g, "normalize.mean", nd, d, x->c->mean);
    const char *is = ox_init_f(g, "normalize.inv_std", nd, d, inv);
    free(inv);
    ox_op2(g, "Sub", "normalize/sub", "input", m, "normalize/centered");
    ox_op2(g, "Mul", "normalize/mul", "normalize/centered", is, "normalized");
    return "normalized";
}

static Onnx__StringStringEntryProto *meta(ox_graph *g, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *p = ox_alloc(g, sizeof *p);
    if (p) {
        onnx__string_string_entry_proto__init(p);
        p->key = ox_str(g, "%s", k);
        p->value = ox_str(g, "%s", v);
    }
    return p;
}

static int build(ex *x, nn_spec *s, unsigned char **buf, size_t *len, nn_err *e)
{
    ox_graph *g = &x->g;
    nn_net *net = x->net;
    x->input = "input";
    if (x->c->nnorm && !(x->input = ex_norm(x, e)))
        return e->code;
    x->val = ox_alloc(g, sizeof(char *) * (size_t)net->nl);
    if (!x->val)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    const cJSON *lj = cJSON_GetObjectItemCaseSensitive(s->root, "layers")->child;
    for (int i = 0; i < net->nl; i++, lj = lj->next) {
        nn_layer *L = &net->L[i];
        if (!strcmp(L->type->name, "dropout")) { /* identity at inference */
            x->val[i] = in_name(x, L, 0);
            continue;
        }
        /* values are named after their layers; two names are the graph's own */
        x->val[i] = strcmp(L->name, "output") && strcmp(L->name, "normalized") ? L->name
                                                                                : ox_str(g, "%s/value", L->name);
        int r = ex_layer(x, L, lj, e);
        if (r)
            return r;
    }
    const char *last = x->val[net->nl - 1];
    int logits = nn_loss_from_logits(net);
    if (logits && s->loss == NN_LOSS_CE)
        ox_attr_int(g, ox_op1(g, "Softmax", "output/softmax", last, "output"), "axis", -1);
    else if (logits)
        ox_op1(g, "Sigmoid", "output/sigmoid", last, "output");
    else
        ox_op1(g, "Identity", "output/identity", last, "output");

    Onnx__GraphProto *gp = ox_alloc(g, sizeof *gp);
    Onnx__ModelProto *mp = ox_alloc(g, sizeof *mp);
    Onnx__OperatorSetIdProto *op = ox_alloc(g, sizeof *op), **ops = ox_alloc(g, sizeof *ops);
    Onnx__ValueInfoProto **vin = ox_alloc(g, sizeof *vin), **vout = ox_alloc(g, sizeof *vout);
    Onnx__StringStringEntryProto **md = ox_alloc(g, sizeof *md * 4);
    if (g->oom || !gp || !mp || !op || !ops || !vin || !vout || !md)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    onnx__graph_proto__init(gp);
    onnx__model_proto__init(mp);
    onnx__operator_set_id_proto__init(op);
    op->domain = ox_str(g, "%s", "");
    op->has_version = 1;
    op->version = NN_ONNX_OPSET;
    ops[0] = op;
    vin[0] = ox_value_info(g, "input", net->in_shape.nd, net->in_shape.d);
    nn_layer *o = nn_net_out(net);
    vout[0] = ox_value_info(g, "output", o->out_shape.nd, o->out_shape.d);
    gp->name = ox_str(g, "%s", s->name);
    gp->n_node = g->nnodes;
    gp->node = g->nodes;
    gp->n_initializer = g->ninits;
    gp->initializer = g->inits;
    gp->n_input = 1;
    gp->input = vin;
    gp->n_output = 1;
    gp->output = vout;
    mp->has_ir_version = 1;
    mp->ir_version = NN_ONNX_IR_VERSION;
    mp->n_opset_import = 1;
    mp->opset_import = ops;
    mp->producer_name = ox_str(g, "nnrun");
    mp->producer_version = ox_str(g, "%s", NNRUN_VERSION);
    mp->graph = gp;
    /* class names, the task and the loss */
    cJSON *cl = cJSON_CreateArray();
    for (int i = 0; cl && i < x->c->nclasses; i++)
        cJSON_AddItemToArray(cl, cJSON_CreateString(x->c->classes[i]));
    char *cls = cl ? cJSON_PrintUnformatted(cl) : NULL;
    cJSON_Delete(cl);
    if (!cls)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    md[0] = meta(g, "classes", cls);
    free(cls);
    md[1] = meta(g, "loss", nn_loss_name(s->loss));
    md[2] = meta(g, "model_name", s->name);
    mp->n_metadata_props = 3;
    mp->metadata_props = md;
    if (g->oom || !vin[0] || !vout[0] || !md[0] || !md[1] || !md[2])
        return nn_fail(e, NN_ENOMEM, "out of memory");
    size_t n = onnx__model_proto__get_packed_size(mp);
    if (n > (size_t)NN_ONNX_MAX_BYTES)
        return nn_fail(e, NN_EDATA, "%s: the ONNX model would be %zu bytes, more than protobuf's 2 GiB limit", x->file,
                       n);
    *buf = malloc(n ? n : 1);
    if (!*buf)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    *len = onnx__model_proto__pack(mp, *buf);
    return 0;
}

int nn_onnx_export(const char *in, const char *out, nn_err *e)
{
    nn_modelbin c;
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    memset(&net, 0, sizeof net);
    int r = nn_modelbin_read(in, &c, e);
    if (r)
        return r;
    unsigned char *buf = NULL;
    size_t len = 0;
    ex x = {.file = in, .net = &net, .c = &c};
    if ((r = nn_spec_parse(c.model_json, strlen(c.model_json), in, &s, e))) {
        nn_wrap(e, "the model JSON stored in ");
        goto out;
    }
    if (!s.has_input_shape) {
        r = nn_fail(e, NN_EDATA, "%s: the stored model has no input shape", in);
        goto out;
    }
    if ((r = nn_net_build(&net, &s, &s.input, nn_model_stored_vocab(&s, c.nclasses), e)))
        goto out;
    if (!(r = build(&x, &s, &buf, &len, e)))
        r = nn_write_atomic(out, buf, len, e);
out:
    free(buf);
    ox_free(&x.g);
    nn_net_free(&net);
    nn_spec_free(&s);
    nn_modelbin_free(&c);
    return r;
}
