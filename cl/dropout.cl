/* dropout.cl - inverted dropout; the mask is a hash of (seed, layer, step,
 * index), recomputed in backward instead of stored. A work item takes the
 * `per` consecutive elements from get_global_id(0) * per (nn_elem_split: one
 * on GPUs, long runs on CPUs, where the branch-free loop vectorizes). */

inline float dropout_keep(float rate, uint seed_lo, uint seed_hi, uint stream, int i)
{
    return hash_uniform(seed_lo, seed_hi, stream, (uint)i) >= rate ? 1.0f : 0.0f;
}

__kernel void dropout_forward(__global const float *x, __global float *y, int n, float rate, uint seed_lo,
                              uint seed_hi, uint stream, int per)
{
    int i = get_global_id(0) * per, end = min(i + per, n);
    for (; i < end; i++)
        y[i] = x[i] * dropout_keep(rate, seed_lo, seed_hi, stream, i) / (1.0f - rate);
}

__kernel void dropout_backward_acc(__global const float *dy, __global float *dx, int n, float rate, uint seed_lo,
                                   uint seed_hi, uint stream, int per)
{
    int i = get_global_id(0) * per, end = min(i + per, n);
    for (; i < end; i++)
        dx[i] += dy[i] * dropout_keep(rate, seed_lo, seed_hi, stream, i) / (1.0f - rate);
}
