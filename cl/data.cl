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

__kernel void gather_ints(__global const int *src, __global const int *idx, int start, int n, __global int *dst)
{
    int i = get_global_id(0);
    if (i < n)
        dst[i] = src[idx[start + i]];
}
