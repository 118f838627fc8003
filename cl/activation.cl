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

/* The standalone leaky_relu / elu / gelu layers (src/layers/activation.c):
 * as above with the layer's alpha; gelu's gradient from its INPUT x. */
__kernel void act_forward_alpha(__global const float *x, __global float *y, int n, int act, float alpha)
{
    int i = get_global_id(0);
    if (i < n)
        y[i] = act_apply_alpha(x[i], act, alpha);
}

/* dx += dy * act'(y) */
__kernel void act_backward_alpha_acc(__global const float *y, __global const float *dy, __global float *dx, int n,
                                     int act, float alpha)
{
    int i = get_global_id(0);
    if (i < n)
        dx[i] += dy[i] * act_grad_from_y_alpha(y[i], act, alpha);
}

/* dx += dy * gelu'(x) */
__kernel void gelu_backward_acc(__global const float *x, __global const float *dy, __global float *dx, int n)
{
    int i = get_global_id(0);
    if (i < n)
        dx[i] += dy[i] * gelu_grad(x[i]);
}
