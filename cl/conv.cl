/* conv.cl - the data movement of conv2d (src/layers/conv2d.c); the products
 * go through the GEMM seam. Layouts: x [n, C, H, W]; col [C*kh*kw, n*OH*OW]
 * (row (c*kh + ki)*kw + kj, column s*OH*OW + oh*OW + ow); tmp [F, n*OH*OW];
 * y [n, F, OH*OW]. The host checks that every index fits in an int.
 *
 * Every kernel here loops over whole rows (contiguous runs of the output) and
 * each work item takes `rows` consecutive rows (nn_row_split, src/layers/layer.c):
 * one on GPUs, a long run on CPUs, where PoCL compiles a work-group into a
 * loop and per-item index math (divisions) and short loops would dominate.
 * Inside a run the row's coordinates advance by counting, not dividing, and
 * the inner loops are contiguous and branch-free, so they vectorize. */

/* d[o] = s[i + o] for o in [a, b). */
inline void copy_run(__global float *d, __global const float *s, int i, int a, int b)
{
    int o = a;
    for (; o + 8 <= b; o += 8)
        vstore8(vload8(0, s + i + o), 0, d + o);
    for (; o < b; o++)
        d[o] = s[i + o];
}

/* d[o] = 0 for o in [a, b). */
inline void zero_run(__global float *d, int a, int b)
{
    int o = a;
    for (; o + 8 <= b; o += 8)
        vstore8((float8)0.0f, 0, d + o);
    for (; o < b; o++)
        d[o] = 0.0f;
}

/* d[i + o] += s[o] for o in [a, b). */
inline void add_run(__global float *d, int i, __global const float *s, int a, int b)
{
    int o = a;
    for (; o + 8 <= b; o += 8)
        vstore8(vload8(0, d + i + o) + vload8(0, s + o), 0, d + i + o);
    for (; o < b; o++)
        d[i + o] += s[o];
}

/* col[r, s*OHW + oh*OW + ow] = x[s, c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw]
 * (0 outside), r = (c*kh + ki)*kw + kj. A work item writes the OW-wide
 * segments of col row r for `rows` consecutive (s, oh). Global
 * (ceil(n*OH / rows), C*kh*kw). */
__kernel void conv_im2col(__global const float *x, __global float *col, int n, int C, int H, int W, int kh, int kw,
                          int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW, int rows)
{
    int so = get_global_id(0) * rows, r = get_global_id(1);
    if (so >= n * OH || r >= C * kh * kw)
        return;
    int end = min(so + rows, n * OH);
    int kj = r % kw, t = r / kw;
    int ki = t % kh, c = t / kh;
    int s = so / OH, oh = so - s * OH;
    int h0 = ki * dh - ph, w0 = kj * dw - pw;
    int2 wr = out_range(w0, sw, W, OW); /* the columns ow that read inside the row */
    __global const float *xp = x + (s * C + c) * H * W;
    __global float *dst = col + r * (n * OH * OW) + so * OW;
    if (sh == 1 && sw == 1 && OW == W) {
        /* stride 1 and full-width rows (3x3 'same'): output p = oh*OW + ow of
         * a plane reads input p + sft, so the rows of a sample form one
         * contiguous copy, zeros outside the input, and then the columns
         * that wrapped into a neighbouring row are zeroed */
        int sft = h0 * W + w0, hw = H * W;
        while (so < end) {
            int ohb = min(OH, oh + end - so), pa = oh * OW, pb = ohb * OW;
            int lo = clamp(-sft, pa, pb), hi = clamp(hw - sft, lo, pb);
            __global float *d = dst - pa;
            zero_run(d, pa, lo);
            copy_run(d, xp, sft, lo, hi);
            zero_run(d, hi, pb);
            if (wr.x > 0 || wr.y < OW)
                for (int q = pa; q < pb; q += OW) {
                    zero_run(d + q, 0, wr.x);
                    zero_run(d + q, wr.y, OW);
                }
            dst += pb - pa;
            so += ohb - oh;
            oh = 0;
            xp += C * H * W;
        }
        return;
    }
    for (; so < end; so++, dst += OW) {
        int h = h0 + oh * sh, ow = 0;
        if (h >= 0 && h < H) {
            int i = h * W + w0;
            for (; ow < wr.x; ow++)
                dst[ow] = 0.0f;
            if (sw == 1) {
                copy_run(dst, xp, i, wr.x, wr.y);
            } else {
                for (; ow < wr.y; ow++)
                    dst[ow] = xp[i + ow * sw];
            }
            ow = wr.y;
        }
        for (; ow < OW; ow++)
            dst[ow] = 0.0f;
        if (++oh == OH) {
            oh = 0;
            xp += C * H * W;
        }
    }
}

/* dst[q] = act(src[q] + bb), q < len; act a constant after inlining. */
inline void bias_act_run(__global float *dst, __global const float *src, float bb, int len, int act)
{
    for (int q = 0; q < len; q++)
        dst[q] = act_apply(src[q] + bb, act);
}

/* y[s, f, :] = act(tmp[f, s, :] + b[f]), tmp at float offset toff. A work
 * item does `rows` consecutive (s, f) rows of OHW values. Global
 * ceil(n*F / rows). */
__kernel void conv_bias_act(__global const float *tmp, int toff, __global const float *b, __global float *y, int n,
                            int F, int ohw, int has_bias, int act, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= n * F)
        return;
    int end = min(row + rows, n * F);
    int s = row / F, f = row - s * F;
    __global float *dst = y + row * ohw;
    for (; row < end; row++, dst += ohw) {
        __global const float *src = tmp + toff + (f * n + s) * ohw;
        float bb = has_bias ? b[f] : 0.0f;
        /* the common activations as constants: no switch per element */
        if (act == ACT_RELU)
            bias_act_run(dst, src, bb, ohw, ACT_RELU);
        else if (act == ACT_NONE)
            bias_act_run(dst, src, bb, ohw, ACT_NONE);
        else
            bias_act_run(dst, src, bb, ohw, act);
        if (++f == F) {
            f = 0;
            s++;
        }
    }
}

/* dst[q] = dy[q] * act'(y[q]), q < len; act a constant after inlining. */
inline void grad_run(__global float *dst, __global const float *dy, __global const float *y, int len, int act)
{
    for (int q = 0; q < len; q++)
        dst[q] = act == ACT_NONE ? dy[q] : dy[q] * act_grad_from_y(y[q], act);
}

/* The sum of v[0..len) in a fixed order (eight interleaved partial sums). */
inline float row_sum(__global const float *v, int len)
{
    float8 acc = 0.0f;
    int q = 0;
    for (; q + 8 <= len; q += 8)
        acc += vload8(0, v + q);
    float4 a4 = acc.lo + acc.hi;
    float sum = (a4.x + a4.z) + (a4.y + a4.w);
    for (; q < len; q++)
        sum += v[q];
    return sum;
}

/* tmp[f, s, :] = dy[s, f, :] * act'(y[s, f, :]) (dy is not modified), and
 * when poff >= 0 part[f*n + s] = the sum of that tmp row (the bias
 * gradient's term of sample s); tmp and part are at float offsets toff and
 * poff of work. A work item does `rows` consecutive (f, s) rows. Global
 * ceil(F*n / rows). */
__kernel void conv_grad_permute(__global const float *y, __global const float *dy, __global float *work, int toff,
                                int poff, int n, int F, int ohw, int act, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= F * n)
        return;
    int end = min(row + rows, F * n);
    int f = row / n, s = row - f * n;
    __global float *dst = work + toff + row * ohw;
    for (; row < end; row++, dst += ohw) {
        int yo = (s * F + f) * ohw;
        if (act == ACT_RELU)
            grad_run(dst, dy + yo, y + yo, ohw, ACT_RELU);
        else if (act == ACT_NONE)
            grad_run(dst, dy + yo, y + yo, ohw, ACT_NONE);
        else
            grad_run(dst, dy + yo, y + yo, ohw, act);
        if (poff >= 0)
            work[poff + row] = row_sum(dst, ohw);
        if (++s == n) {
            s = 0;
            f++;
        }
    }
}

/* db[f] = the sum over s of part[f*n + s] (conv_grad_permute's row sums, at
 * float offset poff of work), in sample order. Global F. */
__kernel void conv_bias_grad(__global const float *work, int poff, __global float *db, int F, int n)
{
    int f = get_global_id(0);
    if (f >= F)
        return;
    __global const float *p = work + poff + f * n;
    float sum = 0.0f;
    for (int s = 0; s < n; s++)
        sum += p[s];
    db[f] = sum;
}

/* The weight of a stride-1 convolution's input gradient as a convolution of
 * the output gradient (src/layers/conv2d.c, groups 1): wt[c][f][kk-1-t] =
 * w[f][c][t], t = ki*kw + kj, i.e. transposed and rotated by 180 degrees,
 * written at float offset woff. Global F*C: a work item per (f, c). */
__kernel void conv_flip_weight(__global const float *w, __global float *wt, int woff, int F, int C, int kk)
{
    int i = get_global_id(0);
    if (i >= F * C)
        return;
    int f = i / C, c = i - f * C;
    __global const float *src = w + i * kk;
    __global float *dst = wt + woff + (c * F + f) * kk + kk - 1;
    for (int t = 0; t < kk; t++)
        dst[-t] = src[t];
}

/* For stride 1 and full-width rows (OW == W, e.g. 3x3 'same'): d[p + sft] +=
 * s[p] for p in [pa, pb) (whole output rows) whose column p mod OW lies in
 * wr, i.e. one kernel offset's terms, as one long 16-lane loop instead of
 * row segments. The lanes of other columns store d back unchanged; the
 * range is clipped so that they stay in the owned span [da, db) of d. */
inline void add_shifted(__global float *d, __global const float *s, int sft, int pa, int pb, int da, int db, int OW,
                        int2 wr)
{
    int p = max(pa, da - sft), end = min(pb, db - sft);
    if (p >= end)
        return;
    int c0 = (p - pa) % OW, step = 16 % OW;
    int16 col = ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + c0) % OW;
    for (; p + 16 <= end; p += 16) {
        float16 v = vload16(0, d + p + sft);
        vstore16(select(v, v + vload16(0, s + p), col >= wr.x && col < wr.y), 0, d + p + sft);
        col += step;
        col -= select((int16)0, (int16)OW, col >= OW);
    }
    for (int cj = col.s0; p < end; p++) {
        if (cj >= wr.x && cj < wr.y)
            d[p + sft] += s[p];
        if (++cj == OW)
            cj = 0;
    }
}

/* dx[s, c, h, :] += col2im(dcol): a work item owns `rows` consecutive rows
 * (c, s, h) of dx (c-major: see below) and adds to them, kernel offset (ki, kj) by offset, the
 * dcol row segments that read them. Each dx element receives its terms in
 * (ki, kj) order; there are no atomics and no races. Offset-major order also
 * keeps consecutive additions on different dx rows (adding the kj and kj + 1
 * segments back to back into one row makes CPUs wait on store forwarding).
 * Global ceil(n*C*H / rows). */
__kernel void conv_col2im(__global const float *dcol, __global float *dx, int n, int C, int H, int W, int kh, int kw,
                          int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW, int rows)
{
    int row = get_global_id(0) * rows;
    if (row >= n * C * H)
        return;
    int end = min(row + rows, n * C * H);
    int ohw = OH * OW, N = n * ohw;
    int lin = sh == 1 && sw == 1 && OW == W; /* add_shifted applies */
    while (row < end) {
        /* rows [ha, hb) of plane (s, c); planes go in (c, s) order, so that
         * consecutive planes read consecutive dcol segments */
        int q = row / H, ha = row - q * H, hb = min(H, ha + end - row);
        int c = q / n, s = q - c * n;
        __global float *dxp = dx + (s * C + c) * H * W;
        __global const float *dc = dcol + c * kh * kw * N + s * ohw;
        for (int ki = 0; ki < kh; ki++) {
            int h0 = ki * dh - ph; /* output row oh reads input row h0 + oh*sh */
            int2 hr = out_range(h0 - ha, sh, hb - ha, OH);
            for (int kj = 0; kj < kw; kj++, dc += N) {
                int w0 = kj * dw - pw;
                int2 wr = out_range(w0, sw, W, OW);
                /* the same dcol row's segment for the plane after next */
                for (int z = 0; z < ohw; z += 16)
                    NN_PREFETCH(dc + 2 * ohw + z);
                if (lin) {
                    add_shifted(dxp, dc, h0 * W + w0, hr.x * OW, hr.y * OW, ha * W, hb * W, OW, wr);
                    continue;
                }
                for (int oh = hr.x; oh < hr.y; oh++) {
                    __global float *d = dxp + (h0 + oh * sh) * W;
                    __global const float *src = dc + oh * OW;
                    if (sw == 1) {
                        add_run(d, w0, src, wr.x, wr.y);
                    } else {
                        for (int ow = wr.x; ow < wr.y; ow++)
                            d[w0 + ow * sw] += src[ow];
                    }
                }
            }
        }
        row += hb - ha;
    }
}
