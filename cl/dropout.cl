/* dropout.cl - inverted dropout; the mask is a hash of (seed, layer, step,
 * index), recomputed in backward instead of stored. */

__kernel void dropout_forward(__global const float *x, __global float *y, int n, float rate, uint seed_lo,
                              uint seed_hi, uint stream)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float keep = hash_uniform(seed_lo, seed_hi, stream, (uint)i) >= rate ? 1.0f : 0.0f;
    y[i] = x[i] * keep / (1.0f - rate);
}

__kernel void dropout_backward_acc(__global const float *dy, __global float *dx, int n, float rate, uint seed_lo,
                                   uint seed_hi, uint stream)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float keep = hash_uniform(seed_lo, seed_hi, stream, (uint)i) >= rate ? 1.0f : 0.0f;
    dx[i] += dy[i] * keep / (1.0f - rate);
}
