/* dense.cl - the elementwise parts of the dense layer's backward pass; the
 * matrix products (and the forward bias and activation, as the GEMM's
 * epilogue) go through the GEMM seam (src/blas.c). */

/* dy *= act'(y), in place (the layer's dy is not needed afterwards) */
__kernel void act_grad_inplace(__global const float *y, __global float *dy, int n, int act)
{
    int i = get_global_id(0);
    if (i < n)
        dy[i] *= act_grad_from_y(y[i], act);
}

/* One pass over dy: dy[r, j] *= act'(y[r, j]) (act != ACT_NONE) and
 * db[j] = the sum over rows of the new dy[r, j]. Work-item j owns column j,
 * or with vec (CPU devices, units % 8 == 0) columns [8j, 8j + 8) as one
 * float8, rows summed in order either way: the same bits on every path. */
__kernel void act_bias_grad(__global const float *y, __global float *dy, __global float *db, int rows, int units,
                            int act, int vec)
{
    int j = get_global_id(0);
    if (vec) {
        if (8 * j >= units)
            return;
        float8 s = 0.0f;
        for (int r = 0; r < rows; r++) {
            size_t o = (size_t)r * units + 8 * j;
            float8 d = vload8(0, dy + o);
            if (act != ACT_NONE) {
                float8 yv = vload8(0, y + o);
                if (act == ACT_RELU)
                    d *= select((float8)0.0f, (float8)1.0f, yv > (float8)0.0f); /* as act_grad_from_y */
                else
                    d *= (float8)(act_grad_from_y(yv.s0, act), act_grad_from_y(yv.s1, act),
                                  act_grad_from_y(yv.s2, act), act_grad_from_y(yv.s3, act),
                                  act_grad_from_y(yv.s4, act), act_grad_from_y(yv.s5, act),
                                  act_grad_from_y(yv.s6, act), act_grad_from_y(yv.s7, act));
                vstore8(d, 0, dy + o);
            }
            s += d;
        }
        vstore8(s, 0, db + 8 * j);
        return;
    }
    if (j >= units)
        return;
    float s = 0.0f;
    for (int r = 0; r < rows; r++) {
        size_t o = (size_t)r * units + j;
        float d = dy[o];
        if (act != ACT_NONE) {
            d *= act_grad_from_y(y[o], act);
            dy[o] = d;
        }
        s += d;
    }
    db[j] = s;
}
