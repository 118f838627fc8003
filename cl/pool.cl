/* pool.cl - max / average / global average pooling over [n, C, H, W]
 * (src/layers/pool.c). Windows start at oh*sh - ph; positions outside the
 * input are padding. Backward kernels gather (one work item owns the dx rows
 * it writes), so they need no atomics, and they accumulate into dx; so does
 * maxpool_backward_scatter, for windows that do not overlap.
 *
 * As in conv.cl, a work item takes `rows` consecutive rows (one on GPUs, a
 * long run on CPUs: nn_row_split, src/layers/layer.c) and advances the
 * row's coordinates by counting. */

/* First output row/column o whose window (starting at o*s - p, k wide)
 * reaches v: ceil((v + p - k + 1) / s), at least 0. */
inline int pool_first(int v, int p, int k, int s)
{
    int lo = v + p - k + 1;
    return lo <= 0 ? 0 : (lo + s - 1) / s;
}

/* The outputs [.x, .y) of a row of O whose window [o*s - p, o*s - p + k)
 * lies wholly inside [0, len). */
inline int2 pool_full(int len, int k, int s, int p, int O)
{
    int a = 0, b = O;
    while (a < b && a * s - p < 0)
        a++;
    while (b > a && (b - 1) * s - p + k > len)
        b--;
    return (int2)(a, b);
}

/* One maxpool output: the window's rows [ha, hb) and columns [w0, w0 + kw)
 * (clipped to the plane xp of width W). *yo = the maximum (0 when the window
 * holds no input), *ao = h*W + w of the first maximum in row-major window
 * order (-1 when none). */
inline void max_one(__global const float *xp, int W, int ha, int hb, int w0, int kw, __global float *yo,
                    __global int *ao)
{
    int wa = max(w0, 0), wb = min(w0 + kw, W);
    float m = -INFINITY;
    int best = -1;
    for (int h = ha; h < hb; h++)
        for (int w = wa; w < wb; w++) {
            float v = xp[h * W + w];
            if (best < 0 || v > m) {
                m = v;
                best = h * W + w;
            }
        }
    *yo = best < 0 ? 0.0f : m;
    *ao = best;
}

/* max_one for four neighbouring outputs (columns w0 + {0,1,2,3}*sw) whose
 * windows are whole (ha < hb, no column clipped): four independent
 * comparison chains in vector lanes instead of one serial chain, with the
 * same result (the first element taken, then strictly greater ones). */
inline void max_four(__global const float *xp, int W, int ha, int hb, int w0, int sw, int kw, __global float *yo,
                     __global int *ao)
{
    int4 lane = (int4)(0, 1, 2, 3) * sw;
    float4 m = 0.0f;
    int4 best = 0, first = -1;
    for (int h = ha; h < hb; h++)
        for (int j = 0; j < kw; j++) {
            int i = h * W + w0 + j;
            __global const float *p = xp + i;
            float4 v;
            if (sw == 2) {
                float4 a = vload4(0, p), b = vload4(0, p + 3); /* p[0..6]: no read past the window */
                v = (float4)(a.s02, b.s13);
            } else {
                v = (float4)(p[0], p[sw], p[2 * sw], p[3 * sw]);
            }
            int4 take = first | isgreater(v, m);
            m = select(m, v, take);
            best = select(best, i + lane, take);
            first = 0;
        }
    vstore4(m, 0, yo);
    vstore4(best, 0, ao);
}

/* y = max over the window (padding is -inf); arg = index h*W + w of the
 * first maximum in row-major window order (-1 if the window holds no input:
 * y = 0). A work item does `rows` consecutive output rows (plane, oh).
 * Global ceil(planes*OH / rows). */
__kernel void maxpool_forward(__global const float *x, __global float *y, __global int *arg, int planes, int H, int W,
                              int kh, int kw, int sh, int sw, int ph, int pw, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= planes * OH)
        return;
    int end = min(row + rows, planes * OH);
    int pl = row / OH, oh = row - pl * OH;
    int2 full = pool_full(W, kw, sw, pw, OW);
    __global const float *xp = x + pl * H * W;
    for (; row < end; row++) {
        int h0 = oh * sh - ph, ow = 0;
        int ha = max(h0, 0), hb = min(h0 + kh, H);
        __global float *yr = y + row * OW;
        __global int *ar = arg + row * OW;
        if (ha < hb) {
            for (; ow < full.x; ow++)
                max_one(xp, W, ha, hb, ow * sw - pw, kw, yr + ow, ar + ow);
            for (; ow + 4 <= full.y; ow += 4)
                max_four(xp, W, ha, hb, ow * sw - pw, sw, kw, yr + ow, ar + ow);
        }
        for (; ow < OW; ow++)
            max_one(xp, W, ha, hb, ow * sw - pw, kw, yr + ow, ar + ow);
        if (++oh == OH) {
            oh = 0;
            xp += H * W;
        }
    }
}

/* dx[pl, h, :] += dy of every window whose argmax lies in input row h. A
 * work item owns `rows` consecutive input rows (pl, h). Any window geometry.
 * Global ceil(planes*H / rows). */
__kernel void maxpool_backward(__global const float *dy, __global const int *arg, __global float *dx, int planes,
                               int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= planes * H)
        return;
    int end = min(row + rows, planes * H);
    int pl = row / H, h = row - pl * H;
    for (; row < end; row++) {
        int lo = h * W, hi = lo + W;
        int oh0 = pool_first(h, ph, kh, sh), oh1 = min((h + ph) / sh, OH - 1);
        __global float *dxr = dx + row * W;
        for (int oh = oh0; oh <= oh1; oh++) {
            int o = (pl * OH + oh) * OW;
            for (int ow = 0; ow < OW; ow++) {
                int a = arg[o + ow];
                if (a >= lo && a < hi)
                    dxr[a - lo] += dy[o + ow];
            }
        }
        if (++h == H) {
            h = 0;
            pl++;
        }
    }
}

/* maxpool_backward for windows that do not overlap (sh >= kh, sw >= kw):
 * every input element is in at most one window, so each output adds its dy
 * to its argmax and no two outputs touch the same dx element (the result is
 * that of the gather). A work item does `rows` consecutive output rows.
 * Global ceil(planes*OH / rows). */
__kernel void maxpool_backward_scatter(__global const float *dy, __global const int *arg, __global float *dx,
                                       int planes, int H, int W, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= planes * OH)
        return;
    int end = min(row + rows, planes * OH);
    int pl = row / OH, oh = row - pl * OH;
    __global float *dxp = dx + pl * H * W;
    for (; row < end; row++) {
        int o = row * OW;
        for (int ow = 0; ow < OW; ow++) {
            int a = arg[o + ow];
            if (a >= 0)
                dxp[a] += dy[o + ow];
        }
        if (++oh == OH) {
            oh = 0;
            dxp += H * W;
        }
    }
}

/* y = mean of the window's input elements: padding is NOT counted
 * (count_include_pad = false). A work item does `rows` consecutive output
 * rows. Global ceil(planes*OH / rows). */
__kernel void avgpool_forward(__global const float *x, __global float *y, int planes, int H, int W, int kh, int kw,
                              int sh, int sw, int ph, int pw, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= planes * OH)
        return;
    int end = min(row + rows, planes * OH);
    int pl = row / OH, oh = row - pl * OH;
    __global const float *xp = x + pl * H * W;
    for (; row < end; row++) {
        int h0 = oh * sh - ph;
        int ha = max(h0, 0), hb = min(h0 + kh, H);
        for (int ow = 0; ow < OW; ow++) {
            int w0 = ow * sw - pw;
            int wa = max(w0, 0), wb = min(w0 + kw, W);
            float s = 0.0f;
            for (int h = ha; h < hb; h++)
                for (int w = wa; w < wb; w++)
                    s += xp[h * W + w];
            int cnt = (hb - ha) * (wb - wa);
            y[row * OW + ow] = hb > ha && wb > wa ? s / (float)cnt : 0.0f;
        }
        if (++oh == OH) {
            oh = 0;
            xp += H * W;
        }
    }
}

/* dx[pl, h, :] += dy / count of every window covering input row h, over the
 * columns it covers. A work item owns `rows` consecutive input rows.
 * Global ceil(planes*H / rows). */
__kernel void avgpool_backward(__global const float *dy, __global float *dx, int planes, int H, int W, int kh, int kw,
                               int sh, int sw, int ph, int pw, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= planes * H)
        return;
    int end = min(row + rows, planes * H);
    int pl = row / H, h = row - pl * H;
    for (; row < end; row++) {
        int oh0 = pool_first(h, ph, kh, sh), oh1 = min((h + ph) / sh, OH - 1);
        __global float *dxr = dx + row * W;
        for (int oh = oh0; oh <= oh1; oh++) {
            int h0 = oh * sh - ph;
            int hc = min(h0 + kh, H) - max(h0, 0);
            int o = (pl * OH + oh) * OW;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * sw - pw;
                int wa = max(w0, 0), wb = min(w0 + kw, W);
                float g = dy[o + ow] / (float)(hc * (wb - wa));
                for (int w = wa; w < wb; w++)
                    dxr[w] += g;
            }
        }
        if (++h == H) {
            h = 0;
            pl++;
        }
    }
}

/* y[pl] = mean of the plane's hw values. Global planes. */
__kernel void gap_forward(__global const float *x, __global float *y, int planes, int hw)
{
    int i = get_global_id(0);
    if (i >= planes)
        return;
    __global const float *xp = x + (size_t)i * hw;
    float s = 0.0f;
    for (int k = 0; k < hw; k++)
        s += xp[k];
    y[i] = s / (float)hw;
}

/* dx[pl, :] += dy[pl] / hw. Global planes. */
__kernel void gap_backward(__global const float *dy, __global float *dx, int planes, int hw)
{
    int i = get_global_id(0);
    if (i >= planes)
        return;
    float g = dy[i] / (float)hw;
    __global float *dxp = dx + (size_t)i * hw;
    for (int k = 0; k < hw; k++)
        dxp[k] += g;
}
