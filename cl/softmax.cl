/* softmax.cl - softmax over the last axis (rows of k values). */

__kernel void softmax_forward(__global const float *x, __global float *y, int rows, int k)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = x + (size_t)r * k;
    __global float *yr = y + (size_t)r * k;
    float m = xr[0];
    for (int j = 1; j < k; j++)
        m = fmax(m, xr[j]);
    float s = 0.0f;
    for (int j = 0; j < k; j++) {
        float v = exp(xr[j] - m);
        yr[j] = v;
        s += v;
    }
    float inv = 1.0f / s;
    for (int j = 0; j < k; j++)
        yr[j] *= inv;
}

/* dx += y * (dy - sum_j dy_j y_j) */
__kernel void softmax_backward_acc(__global const float *y, __global const float *dy, __global float *dx, int rows,
                                   int k)
{
    int r = get_global_id(0);
    if (r >= rows)
        return;
    size_t o = (size_t)r * k;
    float dot = 0.0f;
    for (int j = 0; j < k; j++)
        dot += dy[o + j] * y[o + j];
    for (int j = 0; j < k; j++)
        dx[o + j] += y[o + j] * (dy[o + j] - dot);
}
