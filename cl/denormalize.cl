/* denormalize.cl - the denormalize output layer (src/layers/denormalize.c):
 * y = x * std + mean over the last axis (D values); the backward gives the
 * standardised-target gradient dx += dy / std. */

__kernel void denorm_forward(__global const float *x, __global const float *mean, __global const float *sd,
                             __global float *y, int n, int D)
{
    int i = get_global_id(0);
    if (i < n) {
        int k = i % D;
        y[i] = x[i] * sd[k] + mean[k];
    }
}

__kernel void denorm_backward_acc(__global const float *dy, __global const float *sd, __global float *dx, int n,
                                  int D)
{
    int i = get_global_id(0);
    if (i < n)
        dx[i] += dy[i] / sd[i % D];
}
