/* dense.cl - the elementwise parts of dense (and later conv) layers; the
 * matrix products go through CLBlast. */

/* y[r, j] = act(y[r, j] + b[j]) for r < rows, j < units */
__kernel void bias_act_forward(__global float *y, __global const float *b, int rows, int units, int has_bias,
                               int act)
{
    int i = get_global_id(0);
    if (i >= rows * units)
        return;
    float v = y[i];
    if (has_bias)
        v += b[i % units];
    y[i] = act_apply(v, act);
}

/* dy *= act'(y), in place (the layer's dy is not needed afterwards) */
__kernel void act_grad_inplace(__global const float *y, __global float *dy, int n, int act)
{
    int i = get_global_id(0);
    if (i < n)
        dy[i] *= act_grad_from_y(y[i], act);
}

/* db[j] = sum over rows of dy[r, j] */
__kernel void bias_grad(__global const float *dy, __global float *db, int rows, int units)
{
    int j = get_global_id(0);
    if (j >= units)
        return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++)
        s += dy[r * units + j];
    db[j] = s;
}
