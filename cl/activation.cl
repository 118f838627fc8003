/* activation.cl - elementwise activations (standalone layers) and their grads.
 * A work item takes the `per` consecutive elements from get_global_id(0) * per
 * (nn_elem_split, src/layers/layer.c: one on GPUs, a long run of whole 16-float
 * blocks on CPUs). The activation is chosen once per run, outside the loop:
 * relu and none run in 16-lane vectors, the common others as constants. */

#define ACT_RUN int i = get_global_id(0) * per, end = min(i + per, n)

/* y = act(x) over [i, end) for a constant act (after inlining). */
#define ACT_FWD_LOOP(A)                        \
    for (; i < end; i++)                       \
        y[i] = act_apply(x[i], A)

__kernel void act_forward(__global const float *x, __global float *y, int n, int act, int per)
{
    ACT_RUN;
    switch (act) {
    case ACT_RELU:
        for (; i + 16 <= end; i += 16) {
            float16 v = vload16(0, x + i);
            vstore16(select((float16)0.0f, v, v > 0.0f), 0, y + i);
        }
        ACT_FWD_LOOP(ACT_RELU);
        break;
    case ACT_NONE:
        for (; i + 16 <= end; i += 16)
            vstore16(vload16(0, x + i), 0, y + i);
        ACT_FWD_LOOP(ACT_NONE);
        break;
    case ACT_SIGMOID: ACT_FWD_LOOP(ACT_SIGMOID); break;
    case ACT_TANH: ACT_FWD_LOOP(ACT_TANH); break;
    default: ACT_FWD_LOOP(act);
    }
}

/* dx += dy * act'(y) over [i, end) for a constant act. */
#define ACT_BWD_LOOP(A)                        \
    for (; i < end; i++)                       \
        dx[i] += dy[i] * act_grad_from_y(y[i], A)

/* dx += dy * act'(y) */
__kernel void act_backward_acc(__global const float *y, __global const float *dy, __global float *dx, int n,
                               int act, int per)
{
    ACT_RUN;
    switch (act) {
    case ACT_RELU:
        for (; i + 16 <= end; i += 16) {
            float16 g = select((float16)0.0f, (float16)1.0f, vload16(0, y + i) > 0.0f);
            vstore16(vload16(0, dx + i) + vload16(0, dy + i) * g, 0, dx + i);
        }
        ACT_BWD_LOOP(ACT_RELU);
        break;
    case ACT_NONE:
        for (; i + 16 <= end; i += 16)
            vstore16(vload16(0, dx + i) + vload16(0, dy + i), 0, dx + i);
        ACT_BWD_LOOP(ACT_NONE);
        break;
    case ACT_SIGMOID: ACT_BWD_LOOP(ACT_SIGMOID); break;
    case ACT_TANH: ACT_BWD_LOOP(ACT_TANH); break;
    default: ACT_BWD_LOOP(act);
    }
}

/* The standalone leaky_relu / elu / gelu layers (src/layers/activation.c):
 * as above with the layer's alpha; gelu's gradient from its INPUT x. */
__kernel void act_forward_alpha(__global const float *x, __global float *y, int n, int act, float alpha, int per)
{
    ACT_RUN;
    for (; i < end; i++)
        y[i] = act_apply_alpha(x[i], act, alpha);
}

/* dx += dy * act'(y) */
__kernel void act_backward_alpha_acc(__global const float *y, __global const float *dy, __global float *dx, int n,
                                     int act, float alpha, int per)
{
    ACT_RUN;
    for (; i < end; i++)
        dx[i] += dy[i] * act_grad_from_y_alpha(y[i], act, alpha);
}

/* dx += dy * gelu'(x) */
__kernel void gelu_backward_acc(__global const float *x, __global const float *dy, __global float *dx, int n, int per)
{
    ACT_RUN;
    for (; i < end; i++)
        dx[i] += dy[i] * gelu_grad(x[i]);
}
