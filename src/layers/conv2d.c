/* conv2d.c - 2-D convolution over [C, H, W] samples (NCHW activations),
 * with stride, padding ("same" / "valid" / explicit), dilation, groups and a
 * fused bias + activation. The weight is [filters, C/groups, kh, kw] (the
 * PyTorch layout), the bias [filters].
 *
 * Forward, a constant number of launches whatever the batch:
 *   1. conv_im2col:   col[C*kh*kw, n*OH*OW] from x[n, C, H, W] (all samples);
 *                     group g owns rows [g*Ckk_g, (g+1)*Ckk_g), Ckk_g = C/groups*kh*kw;
 *   2. GEMM:          tmp[F, n*OHW] = W[F, Ckk_g] . col (one GEMM when groups = 1,
 *                     one strided-batched GEMM over the groups otherwise);
 *   3. conv_bias_act: y[n, F, OHW] = act(tmp[F, n, OHW] + b) (bias, activation, permute).
 * Backward:
 *   1. conv_grad_permute: tmp[F, n*OHW] = dy * act'(y) (dy is left alone), and
 *                         with a bias part[F, n] = the sum of each (f, s) row;
 *   2. conv_bias_grad:    db[f] = sum of part row f (no second pass over tmp);
 *   3. GEMM:              dW_g = tmp_g . col_g^T (col still holds the forward's im2col);
 *   4. GEMM:              dcol_g = W_g^T . tmp_g, written over col (no longer needed);
 *   5. conv_col2im:       dx += col2im(dcol); a work item owns dx rows and adds every
 *                         kernel offset's dcol segments to them (no atomics).
 * Steps 4-5 are skipped when dx is NULL (the first layer). The data-movement
 * kernels loop over whole rows; nn_row_split gives each work item one row on
 * GPUs and a long run of rows on CPUs (PoCL), several times faster there.
 *
 * On CPU devices the GEMM reads col straight from x (nn_gemm_im2col: the
 * native kernel packs its panels from the image): step 1 of the forward is
 * skipped and step 3 of the backward reads x. Against writing col
 * (interleaved, kernel device time of a training step): fashion_resnet 167
 * against 174 ms, fashion_cnn_bn 73 against 79, LeNet 7.6 against 8.3;
 * inference gains most (LeNet, batch 256: +38% samples/s). Where it pays
 * (stride 1, one group, F <= C, rows of 8 or more: dgrad_implicit), steps
 * 4-5 become one GEMM per sample that reads tmp as the implicit im2col of
 * a convolution with the rotated weight (backward_input_implicit): tmp then
 * goes first in the work, the rotated weight behind part.
 *
 * Scratch per sample (L->work): C*kh*kw*OH*OW (col) + F*OH*OW (tmp) + F
 * (part); the col of the forward must survive until the backward (L->work is
 * per layer).
 *
 * Padding "same": output ceil(in / stride); the total padding
 * max((out-1)*stride + (k-1)*dilation + 1 - in, 0) is split as TensorFlow and
 * PyTorch do: total/2 before (top/left), the rest (the odd one) after
 * (bottom/right). Stride 1 with an odd kernel is therefore symmetric
 * (k-1)/2*dilation. Explicit padding is symmetric. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
#include "layer.h"

typedef struct conv2d {
    int filters, groups, use_bias, init;
    int k[2], s[2], dil[2];
    int pad_mode;        /* 0: explicit pad[], 1: "same" */
    int pad[2];          /* explicit (symmetric) padding */
    /* from shape() */
    int C, H, W, OH, OW;
    int pb[2];           /* padding before (top, left) actually used */
    int pt[2];           /* total padding (before + after) */
    int implicit;        /* the last forward read x as an implicit im2col operand (no col written) */
} conv2d;

static const char *const keys[] = {"filters", "kernel",  "stride",     "padding", "dilation",
                                   "groups",  "use_bias", "activation", "init",    NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    conv2d *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    int r = nn_layer_get_int(j, "filters", path, 1, 1 << 16, INT32_MIN, &p->filters, e);
    if (!r)
        r = nn_layer_get_pair(j, "kernel", path, 1, 1 << 12, NULL, p->k, e);
    if (!r)
        r = nn_layer_get_pair(j, "stride", path, 1, 1 << 12, (const int[2]){1, 1}, p->s, e);
    if (!r)
        r = nn_layer_get_pair(j, "dilation", path, 1, 1 << 12, (const int[2]){1, 1}, p->dil, e);
    if (!r)
        r = nn_layer_get_int(j, "groups", path, 1, 1 << 16, 1, &p->groups, e);
    if (!r)
        r = nn_layer_get_bool(j, "use_bias", path, 1, &p->use_bias, e);
    if (!r)
        r = nn_layer_get_act(j, "activation", path, &L->act, e);
    if (r)
        return r;
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(j, "padding");
    if (pd && cJSON_IsString(pd)) {
        if (!strcmp(pd->valuestring, "same"))
            p->pad_mode = 1;
        else if (!strcmp(pd->valuestring, "valid"))
            p->pad[0] = p->pad[1] = 0;
        else
            return nn_fail(e, NN_EDATA, "%s.padding: expected \"same\", \"valid\", an integer or a pair; got \"%s\"",
                           path, pd->valuestring);
    } else if ((r = nn_layer_get_pair(j, "padding", path, 0, 1 << 12, (const int[2]){0, 0}, p->pad, e))) {
        return r;
    }
    if (p->filters % p->groups)
        return nn_fail(e, NN_EDATA, "%s.groups: %d filters cannot be split into %d groups (filters must be a multiple "
                       "of groups)", path, p->filters, p->groups);
    return nn_layer_get_init(j, path, &p->init, e);
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    conv2d *p = L->p;
    const nn_shape *s = &L->in_shape[0];
    char b[64];
    if (s->nd != 3)
        return nn_fail(e, NN_EDATA,
                       "%s: conv2d needs a [channels, height, width] input; got %s%s", path,
                       nn_shape_str(s, b, sizeof b),
                       s->nd < 3 ? " (give the input a shape such as [1, 28, 28] and flatten after the convolutions, "
                                   "not before them)"
                                 : "");
    p->C = s->d[0];
    p->H = s->d[1];
    p->W = s->d[2];
    if (p->C % p->groups)
        return nn_fail(e, NN_EDATA, "%s.groups: the input's %d channels cannot be split into %d groups (input %s; "
                       "channels must be a multiple of groups)", path, p->C, p->groups, nn_shape_str(s, b, sizeof b));
    int in[2] = {p->H, p->W}, out[2], ek[2];
    for (int a = 0; a < 2; a++) {
        ek[a] = (p->k[a] - 1) * p->dil[a] + 1; /* effective (dilated) extent */
        if (p->pad_mode == 1) {
            out[a] = (in[a] + p->s[a] - 1) / p->s[a];
            int tot = (out[a] - 1) * p->s[a] + ek[a] - in[a];
            if (tot < 0)
                tot = 0;
            p->pt[a] = tot;
            p->pb[a] = tot / 2;
        } else {
            p->pt[a] = 2 * p->pad[a];
            p->pb[a] = p->pad[a];
            if (ek[a] > in[a] + p->pt[a]) {
                char dl[64] = "";
                if (p->dil[0] > 1 || p->dil[1] > 1)
                    snprintf(dl, sizeof dl, " (dilated to %dx%d)", (p->k[0] - 1) * p->dil[0] + 1,
                             (p->k[1] - 1) * p->dil[1] + 1);
                char pp[48];
                if (p->pad[0] == p->pad[1])
                    snprintf(pp, sizeof pp, "%d", p->pad[0]);
                else
                    snprintf(pp, sizeof pp, "[%d, %d]", p->pad[0], p->pad[1]);
                return nn_fail(e, NN_EDATA, "%s.kernel: %dx%d kernel%s does not fit the %dx%d input (with padding %s)",
                               path, p->k[0], p->k[1], dl, p->H, p->W, pp);
            }
            out[a] = (in[a] + p->pt[a] - ek[a]) / p->s[a] + 1;
        }
    }
    p->OH = out[0];
    p->OW = out[1];
    int F = p->filters, Cg = p->C / p->groups, kk = p->k[0] * p->k[1];
    L->out_shape.nd = 3;
    L->out_shape.d[0] = F;
    L->out_shape.d[1] = p->OH;
    L->out_shape.d[2] = p->OW;
    nn_init wi, bi;
    nn_layer_pick_init(p->init, L->act, &wi, &bi);
    int fan_in = Cg * kk, fan_out = F / p->groups * kk;
    int wd[4] = {F, Cg, p->k[0], p->k[1]};
    nn_layer_add_param(L, "weight", 4, wd, wi, fan_in, fan_out);
    if (p->use_bias)
        nn_layer_add_param(L, "bias", 1, &F, bi, fan_in, fan_out);
    size_t ohw = (size_t)p->OH * p->OW;
    L->flops = 2.0 * (double)ohw * F * Cg * kk;
    L->scratch = (size_t)p->C * kk * ohw + (size_t)F * ohw + (size_t)F;
    if (L->scratch > (size_t)INT_MAX / 4)
        return nn_fail(e, NN_EDATA, "%s: the im2col buffer of this convolution (%zu floats per sample) is too large",
                       path, L->scratch);
    return 0;
}

/* The im2col matrix of this batch's input, as a GEMM operand. */
static nn_im2col im2col_view(const nn_layer *L, int n)
{
    const conv2d *p = L->p;
    return (nn_im2col){L->x[0], n, p->C, p->H, p->W, p->k[0], p->k[1], p->s[0], p->s[1], p->pb[0], p->pb[1],
                       p->dil[0], p->dil[1], p->OH, p->OW};
}

/* tmp[F, n*OHW] = W . col, per group; col is implicit (read from x by the
 * GEMM) when p->implicit. */
static int gemm_forward(nn_layer *L, nn_dev *d, int n, size_t N, cl_mem col, cl_mem tmp, size_t tmp_off, nn_err *e)
{
    conv2d *p = L->p;
    size_t G = (size_t)p->groups, Fg = (size_t)p->filters / G, Kg = (size_t)p->C / G * p->k[0] * p->k[1];
    cl_mem w = L->param[0].w;
    if (p->implicit) {
        nn_im2col v = im2col_view(L, n);
        return nn_gemm_im2col(d, 0, Fg, N, Kg, 1.0f, w, 0, Kg, Fg * Kg, &v, 0, Kg * N, 0.0f, tmp, tmp_off, N, Fg * N,
                              G, e);
    }
    if (G == 1)
        return nn_gemm(d, 0, 0, Fg, N, Kg, 1.0f, w, 0, Kg, col, 0, N, 0.0f, tmp, tmp_off, N, e);
    return nn_gemm_strided(d, 0, 0, Fg, N, Kg, 1.0f, w, 0, Kg, Fg * Kg, col, 0, N, Kg * N, 0.0f, tmp, tmp_off, N,
                           Fg * N, G, e);
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    conv2d *p = L->p;
    nn_dev *d = r->dev;
    int n = r->n, ohw = p->OH * p->OW, Ckk = p->C * p->k[0] * p->k[1];
    size_t N = (size_t)n * ohw, tmp_off = (size_t)Ckk * N;
    int rc = 0;
    p->implicit = nn_blas_im2col_ok(d);
    if (!p->implicit) {
        nn_rows ri = nn_row_split(d, (size_t)n * p->OH, (size_t)Ckk);
        rc = nn_launch2(d, "conv_im2col", ri.items, (size_t)Ckk, ri.local, ri.local, e, 17, KMEM(L->x[0]),
                        KMEM(L->work), KINT(n), KINT(p->C), KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]),
                        KINT(p->s[0]), KINT(p->s[1]), KINT(p->pb[0]), KINT(p->pb[1]), KINT(p->dil[0]),
                        KINT(p->dil[1]), KINT(p->OH), KINT(p->OW), KINT(ri.per));
    }
    if (!rc)
        rc = gemm_forward(L, d, n, N, L->work, L->work, tmp_off, e);
    nn_rows rb = nn_row_split(d, (size_t)n * p->filters, 1);
    if (!rc)
        rc = nn_launch(d, "conv_bias_act", rb.items, rb.local, e, 10, KMEM(L->work), KINT(tmp_off),
                       KMEM(p->use_bias ? L->param[1].w : L->param[0].w), KMEM(L->y), KINT(n), KINT(p->filters),
                       KINT(ohw), KINT(p->use_bias), KINT(L->act), KINT(rb.per));
    return rc;
}

/* 1 when the input gradient goes as a convolution of the output gradient
 * (backward_input_implicit): the col was implicit in the forward, stride 1,
 * one group, and the rotated weight fits in the work behind part; and where
 * it pays. Its GEMM gathers F*kh*kw rows per input pixel from tmp where the
 * dcol path writes and reads back C*kh*kw, so it needs F <= C; and input
 * rows of at least 8: its per-sample GEMMs are H*W columns wide. Device
 * time of a training step's layer backward (old path -> this):
 * fashion_resnet's 32-channel 28x28 layers 53.8 -> 42.4 and 51.6 -> 44.1
 * ms, its 64-channel 14x14 one 38.1 -> 34.8; but its 128-channel 7x7 one
 * 40.0 -> 44.1 (gathered lane by lane then; still 12 ms a step worse with
 * two-run gathers for rows of 7, in 4 interleaved rounds), and LeNet's
 * conv2 (F 64, C 32, 12x12 'valid': its dcol GEMM and col2im) 4.3 -> 12
 * ms. */
static int dgrad_implicit(const nn_layer *L, int n)
{
    const conv2d *p = L->p;
    return p->implicit && p->s[0] == 1 && p->s[1] == 1 && p->groups == 1 && p->filters <= p->C && p->W >= 8 &&
           (size_t)p->filters <= (size_t)n * p->OH * p->OW;
}

/* dx += the input gradient of a stride-1 convolution, itself a convolution:
 *   dx[s, c, h, w] = sum over f, ki, kj of W[f, c, ki, kj] *
 *                    tmp[f, s, h + ph - ki*dh, w + pw - kj*dw],
 * i.e. the rotated, transposed weight wt (conv_flip_weight, at float offset
 * WT of work) over tmp (at offset 0, laid out [F, n, OH, OW]) padded by
 * (k-1)*dil - ph before. One GEMM per sample, packed straight from tmp
 * (nn_gemm_im2col with tmp's strides) into dx with beta 1: no dcol, no
 * col2im. */
static int backward_input_implicit(nn_layer *L, nn_dev *d, int n, size_t WT, nn_err *e)
{
    conv2d *p = L->p;
    int F = p->filters, C = p->C, kk = p->k[0] * p->k[1], ohw = p->OH * p->OW, hw = p->H * p->W;
    int rc = nn_launch(d, "conv_flip_weight", (size_t)F * C, 0, e, 6, KMEM(L->param[0].w), KMEM(L->work),
                       KINT((int)WT), KINT(F), KINT(C), KINT(kk));
    nn_im2col v = {L->work, n, F, p->OH, p->OW, p->k[0], p->k[1], 1, 1,
                   (p->k[0] - 1) * p->dil[0] - p->pb[0], (p->k[1] - 1) * p->dil[1] - p->pb[1],
                   p->dil[0], p->dil[1], p->H, p->W, ohw, n * ohw};
    size_t Kt = (size_t)F * kk;
    if (!rc)
        rc = nn_gemm_im2col(d, 0, (size_t)C, (size_t)hw, Kt, 1.0f, L->work, WT, Kt, 0, &v, 0, (size_t)hw, 1.0f,
                            L->dx[0], 0, (size_t)hw, (size_t)C * hw, (size_t)n, e);
    return rc;
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    conv2d *p = L->p;
    nn_dev *d = r->dev;
    int n = r->n, ohw = p->OH * p->OW, F = p->filters;
    size_t G = (size_t)p->groups, Fg = (size_t)F / G, Kg = (size_t)p->C / G * p->k[0] * p->k[1], K = Kg * G;
    /* work: [col | tmp | part], or [tmp | part | wt] when the input gradient
     * needs no dcol (the col of the forward was implicit) */
    int implicit_dx = L->dx[0] && dgrad_implicit(L, n);
    size_t N = (size_t)n * ohw, T = implicit_dx ? 0 : K * N; /* tmp offset in work */
    size_t P = T + (size_t)F * N;                            /* part offset in work */
    cl_mem w = L->param[0].w, dw = L->param[0].g, col = L->work;
    nn_rows rg = nn_row_split(d, (size_t)F * n, 1);
    int rc = nn_launch(d, "conv_grad_permute", rg.items, rg.local, e, 10, KMEM(L->y), KMEM(L->dy), KMEM(col), KINT(T),
                   KINT(p->use_bias ? (int)P : -1), KINT(n), KINT(F), KINT(ohw), KINT(L->act), KINT(rg.per));
    if (!rc && p->use_bias)
        rc = nn_launch(d, "conv_bias_grad", (size_t)F, 0, e, 5, KMEM(col), KINT(P), KMEM(L->param[1].g), KINT(F),
                       KINT(n));
    /* dW_g[Fg, Kg] = tmp_g[Fg, N] . col_g[Kg, N]^T */
    if (!rc && p->implicit) {
        nn_im2col v = im2col_view(L, n);
        rc = nn_gemm_im2col(d, 1, Fg, Kg, N, 1.0f, col, T, N, Fg * N, &v, 0, Kg * N, 0.0f, dw, 0, Kg, Fg * Kg, G, e);
    } else if (!rc) {
        if (G == 1)
            rc = nn_gemm(d, 0, 1, Fg, Kg, N, 1.0f, col, T, N, col, 0, N, 0.0f, dw, 0, Kg, e);
        else
            rc = nn_gemm_strided(d, 0, 1, Fg, Kg, N, 1.0f, col, T, N, Fg * N, col, 0, N, Kg * N, 0.0f, dw, 0, Kg,
                                 Fg * Kg, G, e);
    }
    if (rc || !L->dx[0])
        return rc;
    if (implicit_dx)
        return backward_input_implicit(L, d, n, P + (size_t)F * n, e);
    /* dcol_g[Kg, N] = W_g[Fg, Kg]^T . tmp_g[Fg, N], over the col */
    if (G == 1)
        rc = nn_gemm(d, 1, 0, Kg, N, Fg, 1.0f, w, 0, Kg, col, T, N, 0.0f, col, 0, N, e);
    else
        rc = nn_gemm_strided(d, 1, 0, Kg, N, Fg, 1.0f, w, 0, Kg, Fg * Kg, col, T, N, Fg * N, 0.0f, col, 0, N, Kg * N,
                             G, e);
    nn_rows rx = nn_row_split(d, (size_t)n * p->C * p->H, 1);
    if (!rc)
        rc = nn_launch(d, "conv_col2im", rx.items, rx.local, e, 17, KMEM(col), KMEM(L->dx[0]), KINT(n),
                       KINT(p->C), KINT(p->H), KINT(p->W), KINT(p->k[0]), KINT(p->k[1]), KINT(p->s[0]),
                       KINT(p->s[1]), KINT(p->pb[0]), KINT(p->pb[1]), KINT(p->dil[0]), KINT(p->dil[1]), KINT(p->OH),
                       KINT(p->OW), KINT(rx.per));
    return rc;
}

const nn_layer_type nn_layer_conv2d = {
    .name = "conv2d",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
