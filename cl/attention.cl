/* attention.cl - the data movement and softmax of multi-head self-attention
 * (src/layers/attention.c); the products go through CLBlast. Buffers are
 * passed with float offsets (regions of the layer's scratch). Layouts:
 * merged [n, T, ncomp*D] (D = H*dh; component c, head h at columns
 * c*D + h*dh ...); per head [ncomp][n, H, T, dh] (component stride n*T*D);
 * attention matrices [n*H*T rows, T]. The host checks that every index fits
 * in an int. */

/* dst (per head) = src (merged) + bias. One work item per (row s*T + t,
 * component c, head h) copies dh values. Global n*T*ncomp*H. */
__kernel void attn_split_heads(__global const float *src, int soff, __global const float *bias, int has_bias,
                               __global float *dst, int doff, int n, int T, int H, int dh, int ncomp)
{
    int i = get_global_id(0);
    if (i >= n * T * ncomp * H)
        return;
    int ch = i % (ncomp * H), row = i / (ncomp * H);
    int c = ch / H, h = ch - c * H;
    int s = row / T, t = row - s * T;
    int D = H * dh;
    __global const float *a = src + soff + row * ncomp * D + ch * dh;
    __global float *b = dst + doff + c * n * T * D + ((s * H + h) * T + t) * dh;
    if (has_bias) {
        __global const float *bb = bias + ch * dh;
        for (int k = 0; k < dh; k++)
            b[k] = a[k] + bb[k];
    } else {
        for (int k = 0; k < dh; k++)
            b[k] = a[k];
    }
}

/* dst (merged) = src (per head), the inverse of attn_split_heads; with fill
 * also y[row, h*dh + k] = bias[h*dh + k] (ncomp = 1: the output rows start
 * as the output bias, the projection GEMM adds to them). Global n*T*ncomp*H. */
__kernel void attn_merge_heads(__global const float *src, int soff, __global float *dst, int doff, int n, int T,
                               int H, int dh, int ncomp, __global float *y, __global const float *bias, int fill)
{
    int i = get_global_id(0);
    if (i >= n * T * ncomp * H)
        return;
    int ch = i % (ncomp * H), row = i / (ncomp * H);
    int c = ch / H, h = ch - c * H;
    int s = row / T, t = row - s * T;
    int D = H * dh;
    __global const float *a = src + soff + c * n * T * D + ((s * H + h) * T + t) * dh;
    __global float *b = dst + doff + row * ncomp * D + ch * dh;
    for (int k = 0; k < dh; k++)
        b[k] = a[k];
    if (fill) {
        __global float *yr = y + row * ncomp * D + ch * dh;
        __global const float *bb = bias + ch * dh;
        for (int k = 0; k < dh; k++)
            yr[k] = bb[k];
    }
}

/* The dropout keep factor of element idx of the attention matrices. */
inline float attn_keep(float rate, uint seed_lo, uint seed_hi, uint stream, int idx)
{
    return hash_uniform(seed_lo, seed_hi, stream, (uint)idx) >= rate ? 1.0f / (1.0f - rate) : 0.0f;
}

/* Row softmax in place over a[poff + r*T ...] (scores in, probabilities out),
 * one work item per row r < rows (query position i = r % T). Causal: the
 * row covers keys 0..i and P[i, j > i] = 0 exactly. With drop: also
 * a[doff + r*T + j] = P * keep / (1 - rate) (keep from the hash of the
 * element's index r*T + j). */
__kernel void attn_softmax_forward(__global float *a, int poff, int doff, int rows, int T, int causal, int drop,
                                   float rate, uint seed_lo, uint seed_hi, uint stream)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    int len = causal ? r % T + 1 : T;
    __global float *p = a + poff + r * T;
    float m = p[0];
    for (int j = 1; j < len; j++)
        m = fmax(m, p[j]);
    float s = 0.0f;
    for (int j = 0; j < len; j++) {
        float v = exp(p[j] - m);
        p[j] = v;
        s += v;
    }
    float inv = 1.0f / s;
    for (int j = 0; j < len; j++)
        p[j] *= inv;
    for (int j = len; j < T; j++)
        p[j] = 0.0f;
    if (drop) {
        __global float *q = a + doff + r * T;
        for (int j = 0; j < T; j++)
            q[j] = p[j] * attn_keep(rate, seed_lo, seed_hi, stream, r * T + j);
    }
}

/* In place over g = a[goff + r*T ...]: dP (of the dropout-applied P) in,
 * dS out: with drop g *= keep / (1 - rate); then dS = P (g - sum_j g_j P_j).
 * Masked (causal) positions get 0. One work item per row. */
__kernel void attn_softmax_backward(__global float *a, int poff, int goff, int rows, int T, int causal, int drop,
                                    float rate, uint seed_lo, uint seed_hi, uint stream)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    int len = causal ? r % T + 1 : T;
    __global const float *p = a + poff + r * T;
    __global float *g = a + goff + r * T;
    float dot = 0.0f;
    if (drop) {
        for (int j = 0; j < len; j++) {
            float v = g[j] * attn_keep(rate, seed_lo, seed_hi, stream, r * T + j);
            g[j] = v;
            dot += v * p[j];
        }
    } else {
        for (int j = 0; j < len; j++)
            dot += g[j] * p[j];
    }
    for (int j = 0; j < len; j++)
        g[j] = p[j] * (g[j] - dot);
    for (int j = len; j < T; j++)
        g[j] = 0.0f;
}

/* Per-sample partial column sums: part[poff + s*cols + j] = sum over the R
 * rows of sample s of src[soff + (s*R + t)*cols + j]. Global (cols, n). The
 * second pass is seq_sum_rows (cl/layernorm.cl). */
__kernel void seq_colsum_partial(__global const float *src, int soff, int R, int cols, int n, __global float *part,
                                 int poff)
{
    int j = get_global_id(0), s = get_global_id(1);
    if (j >= cols || s >= n)
        return;
    float acc = 0.0f;
    __global const float *a = src + soff + s * R * cols + j;
    for (int t = 0; t < R; t++)
        acc += a[t * cols];
    part[poff + s * cols + j] = acc;
}
