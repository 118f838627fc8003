/* activation.cl - elementwise activations (standalone layers) and their grads. */

__kernel void act_forward(__global const float *x, __global float *y, int n, int act)
{
    int i = get_global_id(0);
    if (i < n)
        y[i] = act_apply(x[i], act);
}

/* dx += dy * act'(y) */
__kernel void act_backward_acc(__global const float *y, __global const float *dy, __global float *dx, int n,
                               int act)
{
    int i = get_global_id(0);
    if (i < n)
        dx[i] += dy[i] * act_grad_from_y(y[i], act);
}
