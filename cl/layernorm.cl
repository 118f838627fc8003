/* layernorm.cl - layer normalisation over the last axis (src/layers/layernorm.c).
 * x, y, dy, dx: [rows, D] (rows = n*R, R rows per sample); stats [rows, 2]
 * = (mean, rstd) per row; the host checks that every index fits in an int. */

/* One work item per row: two-pass mean / biased variance, y, stats. */
__kernel void ln_forward(__global const float *x, __global float *y, __global const float *gamma,
                         __global const float *beta, __global float *stats, int rows, int D, float eps)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = x + r * D;
    __global float *yr = y + r * D;
    float s = 0.0f;
    for (int j = 0; j < D; j++)
        s += xr[j];
    float mean = s / (float)D;
    float q = 0.0f;
    for (int j = 0; j < D; j++) {
        float d = xr[j] - mean;
        q += d * d;
    }
    float rstd = rsqrt(q / (float)D + eps);
    for (int j = 0; j < D; j++)
        yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
    stats[2 * r] = mean;
    stats[2 * r + 1] = rstd;
}

/* dx += rstd (g - mean(g) - x_hat mean(g x_hat)), g = dy * gamma; one work
 * item per row. */
__kernel void ln_backward_dx(__global const float *x, __global const float *dy, __global float *dx,
                             __global const float *gamma, __global const float *stats, int rows, int D)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    int o = r * D;
    float mean = stats[2 * r], rstd = stats[2 * r + 1];
    float sg = 0.0f, sgx = 0.0f;
    for (int j = 0; j < D; j++) {
        float g = dy[o + j] * gamma[j];
        sg += g;
        sgx += g * (x[o + j] - mean) * rstd;
    }
    float a = sg / (float)D, b = sgx / (float)D;
    for (int j = 0; j < D; j++) {
        float xh = (x[o + j] - mean) * rstd;
        dx[o + j] += rstd * (dy[o + j] * gamma[j] - a - xh * b);
    }
}

/* Per-sample partial sums of the parameter gradients: for column j and
 * sample s, part[poff + s*2D + j] = sum over the sample's R rows of dy x_hat,
 * part[poff + s*2D + D + j] = sum of dy. Global (D, n). `part` is the stats
 * buffer (the partials follow the 2*n*R statistics). */
__kernel void ln_param_grad_partial(__global const float *x, __global const float *dy, __global float *part,
                                    int poff, int n, int R, int D)
{
    int j = get_global_id(0), s = get_global_id(1);
    if (j >= D || s >= n)
        return;
    float sg = 0.0f, sb = 0.0f;
    for (int t = 0; t < R; t++) {
        int r = s * R + t, i = r * D + j;
        float d = dy[i];
        sg += d * (x[i] - part[2 * r]) * part[2 * r + 1];
        sb += d;
    }
    part[poff + s * 2 * D + j] = sg;
    part[poff + s * 2 * D + D + j] = sb;
}

/* out[j] = sum over g < G of a[off + g*ld + j], j < cols, in order (the
 * second, deterministic pass of the column reductions of layernorm and
 * attention). Global cols. */
__kernel void seq_sum_rows(__global const float *a, int off, int ld, int G, int cols, __global float *out)
{
    int j = get_global_id(0);
    if (j >= cols)
        return;
    float s = 0.0f;
    for (int g = 0; g < G; g++)
        s += a[off + g * ld + j];
    out[j] = s;
}
