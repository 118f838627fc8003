/* batchnorm.cl - batch normalisation over the channel axis (axis 0 of the
 * per-sample shape). A batch is [n, C, HW] row-major (HW = 1 for [F] inputs);
 * channel c holds m = n * HW values. The reductions run one work-group per
 * channel (local size a power of two = get_local_size(0), `red` that many
 * floats); stats = [mean[C] | inv_std[C]] saved by the training forward for
 * the backward. */

/* Tree sum of red[0..ls) into red[0]; every work item sees the result. */
inline float bn_reduce(__local float *red, float v)
{
    int l = get_local_id(0), ls = get_local_size(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ls / 2; s > 0; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Training: batch mean and biased variance (two passes), y = gamma x_hat + beta,
 * stats saved, running stats updated with momentum and the unbiased variance
 * (left unchanged when m == 1, where it is undefined). */
__kernel void bn_forward_train(__global const float *x, __global float *y, __global const float *gamma,
                               __global const float *beta, __global float *rmean, __global float *rvar,
                               __global float *stats, int n, int C, int HW, float eps, float momentum,
                               __local float *red)
{
    int c = get_group_id(0), l = get_local_id(0), ls = get_local_size(0);
    int m = n * HW;
    float s = 0.0f;
    for (int j = l; j < m; j += ls) {
        int b = j / HW, k = j - b * HW;
        s += x[(b * C + c) * HW + k];
    }
    float mean = bn_reduce(red, s) / (float)m;
    float q = 0.0f;
    for (int j = l; j < m; j += ls) {
        int b = j / HW, k = j - b * HW;
        float d = x[(b * C + c) * HW + k] - mean;
        q += d * d;
    }
    float ss = bn_reduce(red, q);
    float var = ss / (float)m;
    float inv = rsqrt(var + eps);
    float g = gamma[c] * inv, bb = beta[c];
    for (int j = l; j < m; j += ls) {
        int b = j / HW, k = j - b * HW;
        int i = (b * C + c) * HW + k;
        y[i] = (x[i] - mean) * g + bb;
    }
    if (l == 0) {
        stats[c] = mean;
        stats[C + c] = inv;
        rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
        if (m > 1)
            rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (ss / (float)(m - 1));
    }
}

/* Inference: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, elementwise. */
__kernel void bn_forward_eval(__global const float *x, __global float *y, __global const float *gamma,
                              __global const float *beta, __global const float *rmean, __global const float *rvar,
                              int total, int C, int HW, float eps)
{
    int i = get_global_id(0);
    if (i >= total)
        return;
    int c = (i / HW) % C;
    y[i] = (x[i] - rmean[c]) * (gamma[c] * rsqrt(rvar[c] + eps)) + beta[c];
}

/* Backward, one work-group per channel. x_hat = (x - mean) inv_std;
 * dbeta = sum dy, dgamma = sum dy x_hat (overwritten). With has_dx:
 *   train (batch statistics from `stats`):
 *     dx += gamma inv_std / m * (m dy - dbeta - x_hat dgamma)
 *   eval (running statistics, constants): dx += gamma inv_std dy. */
__kernel void bn_backward(__global const float *x, __global const float *dy, __global float *dx, int has_dx,
                          __global const float *gamma, __global const float *stats, __global const float *rmean,
                          __global const float *rvar, __global float *dgamma, __global float *dbeta, int n, int C,
                          int HW, float eps, int train, __local float *red)
{
    int c = get_group_id(0), l = get_local_id(0), ls = get_local_size(0);
    int m = n * HW;
    float mean = train ? stats[c] : rmean[c];
    float inv = train ? stats[C + c] : rsqrt(rvar[c] + eps);
    float s1 = 0.0f, s2 = 0.0f;
    for (int j = l; j < m; j += ls) {
        int b = j / HW, k = j - b * HW;
        int i = (b * C + c) * HW + k;
        float d = dy[i];
        s1 += d;
        s2 += d * (x[i] - mean) * inv;
    }
    float sdy = bn_reduce(red, s1);
    float sdyx = bn_reduce(red, s2);
    if (l == 0) {
        dbeta[c] = sdy;
        dgamma[c] = sdyx;
    }
    if (!has_dx)
        return;
    float g = gamma[c] * inv;
    if (train) {
        float a = sdy / (float)m, bq = sdyx / (float)m;
        for (int j = l; j < m; j += ls) {
            int b = j / HW, k = j - b * HW;
            int i = (b * C + c) * HW + k;
            dx[i] += g * (dy[i] - a - (x[i] - mean) * inv * bq);
        }
    } else {
        for (int j = l; j < m; j += ls) {
            int b = j / HW, k = j - b * HW;
            int i = (b * C + c) * HW + k;
            dx[i] += g * dy[i];
        }
    }
}

/* ------------------------------------------------------------------ CPUs
 * The same computations laid out for a CPU (src/layers/batchnorm.c picks them
 * on CPU devices): a work item owns `rows` consecutive channels
 * (nn_row_split) and reduces each one alone, sample by sample over its
 * contiguous HW segment, in 16 vector lanes plus a scalar tail; the lanes are
 * combined in a fixed order at the end. No barriers, no per-element division,
 * and the order of every sum depends only on (n, HW): results are the same
 * run to run. Local size 1. */

inline float bn_hsum16(float16 v)
{
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* Sum over channel c of x - mu, or of (x - mu)^2 with sq (a constant after inlining). */
inline float bn_chan_sum(__global const float *x, int n, int C, int HW, int c, float mu, int sq)
{
    float16 a = 0.0f;
    float t = 0.0f;
    for (int b = 0; b < n; b++) {
        __global const float *p = x + (b * C + c) * HW;
        int k = 0;
        for (; k + 16 <= HW; k += 16) {
            float16 v = vload16(0, p + k) - mu;
            a += sq ? v * v : v;
        }
        for (; k < HW; k++) {
            float v = p[k] - mu;
            t += sq ? v * v : v;
        }
    }
    return bn_hsum16(a) + t;
}

__kernel void bn_forward_train_rows(__global const float *x, __global float *y, __global const float *gamma,
                                    __global const float *beta, __global float *rmean, __global float *rvar,
                                    __global float *stats, int n, int C, int HW, float eps, float momentum, int rows)
{
    int c = get_global_id(0) * rows, end = min(c + rows, C);
    int m = n * HW;
    for (; c < end; c++) {
        float mean = bn_chan_sum(x, n, C, HW, c, 0.0f, 0) / (float)m;
        float ss = bn_chan_sum(x, n, C, HW, c, mean, 1);
        float inv = rsqrt(ss / (float)m + eps);
        float g = gamma[c] * inv, bb = beta[c];
        for (int b = 0; b < n; b++) {
            int o = (b * C + c) * HW, k = 0;
            for (; k + 16 <= HW; k += 16)
                vstore16((vload16(0, x + o + k) - mean) * g + bb, 0, y + o + k);
            for (; k < HW; k++)
                y[o + k] = (x[o + k] - mean) * g + bb;
        }
        stats[c] = mean;
        stats[C + c] = inv;
        rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
        if (m > 1)
            rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (ss / (float)(m - 1));
    }
}

__kernel void bn_backward_rows(__global const float *x, __global const float *dy, __global float *dx, int has_dx,
                               __global const float *gamma, __global const float *stats, __global const float *rmean,
                               __global const float *rvar, __global float *dgamma, __global float *dbeta, int n, int C,
                               int HW, float eps, int train, int rows)
{
    int c = get_global_id(0) * rows, end = min(c + rows, C);
    int m = n * HW;
    for (; c < end; c++) {
        float mean = train ? stats[c] : rmean[c];
        float inv = train ? stats[C + c] : rsqrt(rvar[c] + eps);
        /* sum dy and sum dy (x - mean) */
        float16 a1 = 0.0f, a2 = 0.0f;
        float t1 = 0.0f, t2 = 0.0f;
        for (int b = 0; b < n; b++) {
            int o = (b * C + c) * HW, k = 0;
            for (; k + 16 <= HW; k += 16) {
                float16 d = vload16(0, dy + o + k);
                a1 += d;
                a2 += d * (vload16(0, x + o + k) - mean);
            }
            for (; k < HW; k++) {
                float d = dy[o + k];
                t1 += d;
                t2 += d * (x[o + k] - mean);
            }
        }
        float sdy = bn_hsum16(a1) + t1, sdyx = (bn_hsum16(a2) + t2) * inv;
        dbeta[c] = sdy;
        dgamma[c] = sdyx;
        if (!has_dx)
            continue;
        float g = gamma[c] * inv;
        /* train: dx += g (dy - a - (x - mean) q); eval: a = q = 0 */
        float a = train ? sdy / (float)m : 0.0f, q = train ? inv * (sdyx / (float)m) : 0.0f;
        for (int b = 0; b < n; b++) {
            int o = (b * C + c) * HW, k = 0;
            for (; k + 16 <= HW; k += 16) {
                float16 v = vload16(0, dx + o + k);
                v += g * (vload16(0, dy + o + k) - a - (vload16(0, x + o + k) - mean) * q);
                vstore16(v, 0, dx + o + k);
            }
            for (; k < HW; k++)
                dx[o + k] += g * (dy[o + k] - a - (x[o + k] - mean) * q);
        }
    }
}

/* Inference on CPUs: a work item takes `rows` consecutive (sample, channel)
 * rows of HW values, the channel's scale and shift computed once per row.
 * The same per-element expression as bn_forward_eval. */
__kernel void bn_forward_eval_rows(__global const float *x, __global float *y, __global const float *gamma,
                                   __global const float *beta, __global const float *rmean,
                                   __global const float *rvar, int nC, int C, int HW, float eps, int rows)
{
    int row = get_global_id(0) * rows, end = min(row + rows, nC);
    for (int c = row % C; row < end; row++) {
        float mu = rmean[c], g = gamma[c] * rsqrt(rvar[c] + eps), bb = beta[c];
        int o = row * HW, k = 0;
        for (; k + 16 <= HW; k += 16)
            vstore16((vload16(0, x + o + k) - mu) * g + bb, 0, y + o + k);
        for (; k < HW; k++)
            y[o + k] = (x[o + k] - mu) * g + bb;
        if (++c == C)
            c = 0;
    }
}
