/* data.cl - assembling batches on the device from a device-resident dataset. */

/* dst[r, j] = (src[idx[start + r], j] - mean[j]) * inv_std[j]  (norm = [mean | inv_std]) */
__kernel void gather_rows(__global const float *src, __global const int *idx, int start, int n, int dim,
                          __global const float *norm, int use_norm, __global float *dst)
{
    int i = get_global_id(0);
    if (i >= n * dim)
        return;
    int r = i / dim, j = i - r * dim;
    float v = src[(size_t)idx[start + r] * dim + j];
    if (use_norm)
        v = (v - norm[j]) * norm[dim + j];
    dst[i] = v;
}

/* The same for CPU devices: work-item i copies rows [i per, (i+1) per), each
 * a contiguous run, 8 floats at a time (the same arithmetic). */
__kernel void gather_rows_run(__global const float *src, __global const int *idx, int start, int n, int dim,
                              __global const float *norm, int use_norm, __global float *dst, int per)
{
    int r0 = get_global_id(0) * per, r1 = min(n, r0 + per);
    for (int r = r0; r < r1; r++) {
        __global const float *s = src + (size_t)idx[start + r] * dim;
        __global float *o = dst + (size_t)r * dim;
        int j = 0;
        if (use_norm) {
            for (; j + 8 <= dim; j += 8)
                vstore8((vload8(0, s + j) - vload8(0, norm + j)) * vload8(0, norm + dim + j), 0, o + j);
            for (; j < dim; j++)
                o[j] = (s[j] - norm[j]) * norm[dim + j];
        } else {
            for (; j + 8 <= dim; j += 8)
                vstore8(vload8(0, s + j), 0, o + j);
            for (; j < dim; j++)
                o[j] = s[j];
        }
    }
}

/* dst[r, j] = src[idx[start + r], j] for rows of `len` ints (text labels) */
__kernel void gather_int_rows(__global const int *src, __global const int *idx, int start, int n, int len,
                              __global int *dst)
{
    int i = get_global_id(0);
    if (i >= n * len)
        return;
    int r = i / len, j = i - r * len;
    dst[i] = src[(size_t)idx[start + r] * len + j];
}

__kernel void gather_ints(__global const int *src, __global const int *idx, int start, int n, __global int *dst)
{
    int i = get_global_id(0);
    if (i < n)
        dst[i] = src[idx[start + i]];
}

/* Like gather_rows for images [C, H, W], with training augmentation drawn
 * per (seed, step, sample): a horizontal flip with probability 1/2 when
 * `flip`, and a shift of up to `shift` pixels in x and y with zero fill (the
 * same as padding by `shift` and cropping at random). Normalisation after. */
__kernel void gather_aug(__global const float *src, __global const int *idx, int start, int n, int C, int H, int W,
                         __global const float *norm, int use_norm, __global float *dst, int flip, int shift,
                         uint seed_lo, uint seed_hi, uint step)
{
    int i = get_global_id(0);
    int hw = H * W, dim = C * hw;
    if (i >= n * dim)
        return;
    int r = i / dim, j = i - r * dim;
    int c = j / hw, p = j - c * hw, y = p / W, x = p - y * W;
    uint key = step * 0x9E3779B1u + (uint)r;
    int fl = flip && hash_uniform(seed_lo, seed_hi, key, 0u) < 0.5f;
    int dx = 0, dy = 0;
    if (shift > 0) {
        dx = min((int)(hash_uniform(seed_lo, seed_hi, key, 1u) * (2 * shift + 1)), 2 * shift) - shift;
        dy = min((int)(hash_uniform(seed_lo, seed_hi, key, 2u) * (2 * shift + 1)), 2 * shift) - shift;
    }
    int sx = (fl ? W - 1 - x : x) + dx, sy = y + dy;
    float v = 0.0f;
    if (sx >= 0 && sx < W && sy >= 0 && sy < H)
        v = src[(size_t)idx[start + r] * dim + c * hw + sy * W + sx];
    if (use_norm)
        v = (v - norm[j]) * norm[dim + j];
    dst[i] = v;
}
