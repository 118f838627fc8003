/* pool.cl - max / average / global average pooling over [n, C, H, W]
 * (src/layers/pool.c). Windows start at oh*sh - ph; positions outside the
 * input are padding. Backward kernels gather (one work item per dx element,
 * visiting the windows that contain it), so they need no atomics, and they
 * accumulate into dx. */

/* First output row/column o whose window (starting at o*s - p, k wide)
 * reaches v: ceil((v + p - k + 1) / s), at least 0. */
inline int pool_first(int v, int p, int k, int s)
{
    int lo = v + p - k + 1;
    return lo <= 0 ? 0 : (lo + s - 1) / s;
}

/* y = max over the window (padding is -inf); arg = index h*W + w of the
 * first maximum in row-major window order (-1 if the window holds no input:
 * y = 0). One work item per output row (plane, oh). Global planes*OH. */
__kernel void maxpool_forward(__global const float *x, __global float *y, __global int *arg, int planes, int H, int W,
                              int kh, int kw, int sh, int sw, int ph, int pw, int OH, int OW)
{
    int row = get_global_id(0);
    if (row >= planes * OH)
        return;
    int oh = row % OH, pl = row / OH;
    int h0 = oh * sh - ph;
    int ha = max(h0, 0), hb = min(h0 + kh, H);
    __global const float *xp = x + pl * H * W;
    for (int ow = 0; ow < OW; ow++) {
        int w0 = ow * sw - pw;
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
        y[row * OW + ow] = best < 0 ? 0.0f : m;
        arg[row * OW + ow] = best;
    }
}

/* dx[pl, h, :] += dy of every window whose argmax lies in input row h. One
 * work item per input row (it owns that dx row: no atomics). Global planes*H. */
__kernel void maxpool_backward(__global const float *dy, __global const int *arg, __global float *dx, int planes,
                               int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int OH, int OW)
{
    int row = get_global_id(0);
    if (row >= planes * H)
        return;
    int h = row % H, pl = row / H;
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
}

/* y = mean of the window's input elements: padding is NOT counted
 * (count_include_pad = false). One work item per output row. Global planes*OH. */
__kernel void avgpool_forward(__global const float *x, __global float *y, int planes, int H, int W, int kh, int kw,
                              int sh, int sw, int ph, int pw, int OH, int OW)
{
    int row = get_global_id(0);
    if (row >= planes * OH)
        return;
    int oh = row % OH, pl = row / OH;
    int h0 = oh * sh - ph;
    int ha = max(h0, 0), hb = min(h0 + kh, H);
    __global const float *xp = x + pl * H * W;
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
}

/* dx[pl, h, :] += dy / count of every window covering input row h, over the
 * columns it covers. One work item per input row. Global planes*H. */
__kernel void avgpool_backward(__global const float *dy, __global float *dx, int planes, int H, int W, int kh, int kw,
                               int sh, int sw, int ph, int pw, int OH, int OW)
{
    int row = get_global_id(0);
    if (row >= planes * H)
        return;
    int h = row % H, pl = row / H;
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
