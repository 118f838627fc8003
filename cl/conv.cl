/* conv.cl - the data movement of conv2d (src/layers/conv2d.c); the products
 * go through CLBlast. Layouts: x [n, C, H, W]; col [C*kh*kw, n*OH*OW] (row
 * (c*kh + ki)*kw + kj, column s*OH*OW + oh*OW + ow); tmp [F, n*OH*OW];
 * y [n, F, OH*OW]. The host checks that every index fits in an int. */

/* col[r, s*OHW + oh*OW + ow] = x[s, c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw]
 * (0 outside), r = (c*kh + ki)*kw + kj. One work item per (s*OH + oh, r)
 * writes a row segment of OW values: on CPUs (PoCL) a loop per work item is
 * several times faster than one work item per element. Global (n*OH, C*kh*kw). */
__kernel void conv_im2col(__global const float *x, __global float *col, int n, int C, int H, int W, int kh, int kw,
                          int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW, int Ckk)
{
    int so = get_global_id(0), r = get_global_id(1);
    if (so >= n * OH || r >= Ckk)
        return;
    int kj = r % kw, t = r / kw;
    int ki = t % kh, c = t / kh;
    int s = so / OH, oh = so - s * OH;
    __global float *dst = col + r * (n * OH * OW) + so * OW;
    int h = oh * sh - ph + ki * dh;
    if (h < 0 || h >= H) {
        for (int ow = 0; ow < OW; ow++)
            dst[ow] = 0.0f;
        return;
    }
    __global const float *src = x + ((s * C + c) * H + h) * W;
    int w0 = kj * dw - pw;
    for (int ow = 0; ow < OW; ow++) {
        int w = w0 + ow * sw;
        dst[ow] = w >= 0 && w < W ? src[w] : 0.0f;
    }
}

/* y[s, f, :] = act(tmp[f, s, :] + b[f]), tmp at float offset toff; one work
 * item per (s, f) row of OHW values. Global n*F. */
__kernel void conv_bias_act(__global const float *tmp, int toff, __global const float *b, __global float *y, int n,
                            int F, int ohw, int has_bias, int act)
{
    int row = get_global_id(0);
    if (row >= n * F)
        return;
    int f = row % F, s = row / F;
    __global const float *src = tmp + toff + (f * n + s) * ohw;
    __global float *dst = y + row * ohw;
    float bb = has_bias ? b[f] : 0.0f;
    for (int q = 0; q < ohw; q++)
        dst[q] = act_apply(src[q] + bb, act);
}

/* tmp[f, s, :] = dy[s, f, :] * act'(y[s, f, :]), tmp at float offset toff
 * (dy is not modified); one work item per (f, s) row. Global F*n. */
__kernel void conv_grad_permute(__global const float *y, __global const float *dy, __global float *tmp, int toff,
                                int n, int F, int ohw, int act)
{
    int row = get_global_id(0);
    if (row >= F * n)
        return;
    int s = row % n, f = row / n;
    int yo = (s * F + f) * ohw;
    __global float *dst = tmp + toff + row * ohw;
    if (act == ACT_NONE) {
        for (int q = 0; q < ohw; q++)
            dst[q] = dy[yo + q];
    } else {
        for (int q = 0; q < ohw; q++)
            dst[q] = dy[yo + q] * act_grad_from_y(y[yo + q], act);
    }
}

/* db[f] = sum of row f of tmp[F, N] (at float offset toff); one work-group
 * (power-of-two size, local memory `part` of that many floats) per row. */
__kernel void conv_bias_grad(__global const float *tmp, int toff, __global float *db, int F, int N,
                             __local float *part)
{
    int f = get_group_id(0), l = get_local_id(0), ls = get_local_size(0);
    float s = 0.0f;
    if (f < F) {
        __global const float *row = tmp + toff + (size_t)f * N;
        for (int j = l; j < N; j += ls)
            s += row[j];
    }
    part[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = ls / 2; k > 0; k >>= 1) {
        if (l < k)
            part[l] += part[l + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0 && f < F)
        db[f] = part[0];
}

/* dx[s, c, h, :] += col2im(dcol): one work item per dx row (s, c, h) adds
 * the dcol row segments of every kernel offset (ki, kj) whose output rows
 * read input row h. A work item owns its dx row, so there are no atomics
 * and no races. Global n*C*H. */
__kernel void conv_col2im(__global const float *dcol, __global float *dx, int n, int C, int H, int W, int kh, int kw,
                          int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW)
{
    int row = get_global_id(0);
    if (row >= n * C * H)
        return;
    int h = row % H, t = row / H;
    int c = t % C, s = t / C;
    int ohw = OH * OW, N = n * ohw;
    __global float *dxr = dx + row * W;
    for (int ki = 0; ki < kh; ki++) {
        int hh = h + ph - ki * dh;
        if (hh < 0)
            break;
        if (hh % sh)
            continue;
        int oh = hh / sh;
        if (oh >= OH)
            continue;
        for (int kj = 0; kj < kw; kj++) {
            __global const float *src = dcol + ((c * kh + ki) * kw + kj) * N + s * ohw + oh * OW;
            int w0 = kj * dw - pw;
            for (int ow = 0; ow < OW; ow++) {
                int w = w0 + ow * sw;
                if (w >= 0 && w < W)
                    dxr[w] += src[ow];
            }
        }
    }
}
