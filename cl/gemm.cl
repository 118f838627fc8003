/* gemm.cl - nnrun's own SGEMM for CPU-type OpenCL devices (src/blas.c picks
 * it; CLBlast serves GPUs).
 *
 * Shaped the way CPU BLAS libraries are (BLIS, OpenBLAS), not the way GPU
 * kernels are. Launched with local size 1: a work-item is then simply a
 * function that the implementation compiles for the host (PoCL: LLVM), and
 * `__local` is per-work-item scratch with no barriers. A handful of
 * work-items, a few per core, each own one block of C:
 *
 *   for each K block (<= kc terms):
 *     pack op(A)[block rows, K block] into Ap as MR-row micro-panels
 *     for each NC-column sub-block of the block:
 *       pack op(B)[K block, sub-block] into Bp as NR-column micro-panels
 *       for each B micro-panel (stays in L1), each A micro-panel (in L2):
 *         MR x NR register tile (6x16: 12 float8 accumulators, AVX2;
 *         6x32: 24, AVX-512), A broadcast,
 *         B loaded as float8, explicit fma; then C = alpha*acc + beta*C
 *         (first K block) or C += alpha*acc (the others), edges masked.
 *
 * The packing absorbs the transposes (four compile-time variants) and pads
 * edge panels with zeros, so the micro-kernel never branches. The order of
 * every sum is fixed by the block sizes: results are bit-identical run to
 * run for the same parameters.
 *
 * C[i][j] (row-major, ldc) = alpha * sum_k op(A)[i][k] op(B)[k][j] + beta C;
 * op(A)[i][k] = TA ? A[k*lda + i] : A[i*lda + k];
 * op(B)[k][j] = TB ? B[j*ldb + k] : B[k*ldb + j].
 * Batch b (get_global_id(1)) adds b*astride, b*bstride, b*cstride.
 * beta == 0 never reads C (BLAS semantics: C may hold NaN).
 * epi != 0: then C = act(C + bias[j]) per block (gemm_epilogue): a dense
 * layer's bias and activation with no second launch or pass over memory.
 * The _im kernels take B as a convolution's implicit im2col matrix, packed
 * straight from the image (gemm_pack_b_im). */

#define GEMM_MR 6

#if NN_CPU_DEVICE && defined(__clang__)
#define GEMM_PREFETCH(p) __builtin_prefetch(p)
#else
#define GEMM_PREFETCH(p)
#endif

/* Ap[p][k][r] = op(A)[i0 + p*MR + r][k0 + k], rows past `rows` zero. */
inline void gemm_pack_a(const int ta, __global const float *A, int lda, int i0, int rows, int k0, int kb,
                        __local float *Ap)
{
    for (int p = 0; p * GEMM_MR < rows; p++) {
        __local float *dst = Ap + (size_t)p * kb * GEMM_MR;
        int r0 = i0 + p * GEMM_MR, nr = min(GEMM_MR, rows - p * GEMM_MR);
        if (ta) {
            __global const float *src = A + (size_t)k0 * lda + r0;
            if (nr == GEMM_MR) {
                for (int k = 0; k < kb; k++, src += lda, dst += GEMM_MR) {
                    vstore4(vload4(0, src), 0, dst);
                    vstore2(vload2(0, src + 4), 0, dst + 4);
                }
            } else {
                for (int k = 0; k < kb; k++, src += lda, dst += GEMM_MR)
                    for (int r = 0; r < GEMM_MR; r++)
                        dst[r] = r < nr ? src[r] : 0.0f;
            }
        } else if (nr == GEMM_MR) {
            /* six rows read side by side, 8 terms at a time, transposed
             * through registers into 6 contiguous float8 writes */
            __global const float *s0 = A + (size_t)r0 * lda + k0, *s1 = s0 + lda, *s2 = s1 + lda, *s3 = s2 + lda,
                                 *s4 = s3 + lda, *s5 = s4 + lda;
            int k = 0;
            for (; k + 8 <= kb; k += 8, dst += 8 * GEMM_MR) {
                float8 a0 = vload8(0, s0 + k), a1 = vload8(0, s1 + k), a2 = vload8(0, s2 + k),
                       a3 = vload8(0, s3 + k), a4 = vload8(0, s4 + k), a5 = vload8(0, s5 + k);
                vstore8((float8)(a0.s0, a1.s0, a2.s0, a3.s0, a4.s0, a5.s0, a0.s1, a1.s1), 0, dst);
                vstore8((float8)(a2.s1, a3.s1, a4.s1, a5.s1, a0.s2, a1.s2, a2.s2, a3.s2), 0, dst + 8);
                vstore8((float8)(a4.s2, a5.s2, a0.s3, a1.s3, a2.s3, a3.s3, a4.s3, a5.s3), 0, dst + 16);
                vstore8((float8)(a0.s4, a1.s4, a2.s4, a3.s4, a4.s4, a5.s4, a0.s5, a1.s5), 0, dst + 24);
                vstore8((float8)(a2.s5, a3.s5, a4.s5, a5.s5, a0.s6, a1.s6, a2.s6, a3.s6), 0, dst + 32);
                vstore8((float8)(a4.s6, a5.s6, a0.s7, a1.s7, a2.s7, a3.s7, a4.s7, a5.s7), 0, dst + 40);
            }
            for (; k < kb; k++, dst += GEMM_MR) {
                dst[0] = s0[k]; dst[1] = s1[k]; dst[2] = s2[k];
                dst[3] = s3[k]; dst[4] = s4[k]; dst[5] = s5[k];
            }
        } else {
            for (int r = 0; r < GEMM_MR; r++) {
                if (r < nr) {
                    __global const float *src = A + (size_t)(r0 + r) * lda + k0;
                    for (int k = 0; k < kb; k++)
                        dst[k * GEMM_MR + r] = src[k];
                } else {
                    for (int k = 0; k < kb; k++)
                        dst[k * GEMM_MR + r] = 0.0f;
                }
            }
        }
    }
}

/* o[i*ld + j] = r_j.s_i for rows i < rows: 8 float8 (columns) transposed
 * through registers into `rows` rows of 8. */
inline void gemm_store8x8t(float8 r0, float8 r1, float8 r2, float8 r3, float8 r4, float8 r5, float8 r6, float8 r7,
                           int rows, __local float *o, int ld)
{
    float8 t[8];
    t[0] = (float8)(r0.s0, r1.s0, r2.s0, r3.s0, r4.s0, r5.s0, r6.s0, r7.s0);
    t[1] = (float8)(r0.s1, r1.s1, r2.s1, r3.s1, r4.s1, r5.s1, r6.s1, r7.s1);
    t[2] = (float8)(r0.s2, r1.s2, r2.s2, r3.s2, r4.s2, r5.s2, r6.s2, r7.s2);
    t[3] = (float8)(r0.s3, r1.s3, r2.s3, r3.s3, r4.s3, r5.s3, r6.s3, r7.s3);
    t[4] = (float8)(r0.s4, r1.s4, r2.s4, r3.s4, r4.s4, r5.s4, r6.s4, r7.s4);
    t[5] = (float8)(r0.s5, r1.s5, r2.s5, r3.s5, r4.s5, r5.s5, r6.s5, r7.s5);
    t[6] = (float8)(r0.s6, r1.s6, r2.s6, r3.s6, r4.s6, r5.s6, r6.s6, r7.s6);
    t[7] = (float8)(r0.s7, r1.s7, r2.s7, r3.s7, r4.s7, r5.s7, r6.s7, r7.s7);
    for (int i = 0; i < rows; i++)
        vstore8(t[i], 0, o + (size_t)i * ld);
}

/* Bp[q][k][c] = op(B)[k0 + k][j0 + q*nr + c], columns past `cols` zero;
 * nr (16 or 32) is a compile-time constant after inlining. */
inline void gemm_pack_b(const int tb, const int nr, __global const float *B, int ldb, int j0, int cols, int k0,
                        int kb, __local float *Bp)
{
    for (int q = 0; q * nr < cols; q++) {
        __local float *dst = Bp + (size_t)q * kb * nr;
        int c0 = j0 + q * nr, nc = min(nr, cols - q * nr);
        if (tb && nc == nr) {
            /* 8 columns of op(B) (rows of B) at a time, transposed through
             * registers: 8 contiguous reads, 8 contiguous writes */
            for (int c = 0; c < nr; c += 8) {
                __global const float *src = B + (size_t)(c0 + c) * ldb + k0;
                int k = 0;
                for (; k + 8 <= kb; k += 8) {
                    if (!(k & 15)) { /* each row's cache line 4 lines ahead */
                        GEMM_PREFETCH(src + k + 64);
                        GEMM_PREFETCH(src + ldb + k + 64);
                        GEMM_PREFETCH(src + 2 * ldb + k + 64);
                        GEMM_PREFETCH(src + 3 * ldb + k + 64);
                        GEMM_PREFETCH(src + 4 * ldb + k + 64);
                        GEMM_PREFETCH(src + 5 * ldb + k + 64);
                        GEMM_PREFETCH(src + 6 * ldb + k + 64);
                        GEMM_PREFETCH(src + 7 * ldb + k + 64);
                    }
                    gemm_store8x8t(vload8(0, src + k), vload8(0, src + ldb + k), vload8(0, src + 2 * ldb + k),
                                   vload8(0, src + 3 * ldb + k), vload8(0, src + 4 * ldb + k),
                                   vload8(0, src + 5 * ldb + k), vload8(0, src + 6 * ldb + k),
                                   vload8(0, src + 7 * ldb + k), 8, dst + k * nr + c, nr);
                }
                for (; k < kb; k++)
                    for (int j = 0; j < 8; j++)
                        dst[k * nr + c + j] = src[(size_t)j * ldb + k];
            }
        } else if (tb) {
            for (int c = 0; c < nr; c++) {
                if (c < nc) {
                    __global const float *src = B + (size_t)(c0 + c) * ldb + k0;
                    for (int k = 0; k < kb; k++)
                        dst[k * nr + c] = src[k];
                } else {
                    for (int k = 0; k < kb; k++)
                        dst[k * nr + c] = 0.0f;
                }
            }
        } else {
            __global const float *src = B + (size_t)k0 * ldb + c0;
            if (nc == nr && q == 0 && cols >= 2 * nr) {
                /* the whole panels, row by row: one long contiguous read per
                 * row of B (what the hardware prefetchers follow), every
                 * cache line of a row a few rows ahead prefetched */
                int full = cols / nr;
                for (int k = 0; k < kb; k++, src += ldb) {
                    for (int c = 0; c < full * nr; c += 16)
                        GEMM_PREFETCH(src + 3 * ldb + c);
                    for (int p = 0; p < full; p++)
                        for (int v = 0; v < nr / 8; v++)
                            vstore8(vload8(0, src + p * nr + 8 * v), 0, dst + (size_t)p * kb * nr + k * nr + 8 * v);
                }
                q = full - 1; /* continue with the partial panel, if any */
            } else if (nc == nr) {
                for (int k = 0; k < kb; k++, src += ldb, dst += nr) {
                    GEMM_PREFETCH(src + 4 * ldb);
                    for (int v = 0; v < nr / 8; v++)
                        vstore8(vload8(v, src), v, dst);
                }
            } else {
                for (int k = 0; k < kb; k++, src += ldb, dst += nr)
                    for (int c = 0; c < nr; c++)
                        dst[c] = c < nc ? src[c] : 0.0f;
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * The implicit im2col operand (convolutions on CPU devices). Instead of a
 * matrix in memory, B may be the im2col matrix of a convolution's input x
 * [n, C, H, W], which is then never written: the packing reads x itself.
 *   col[r][p] = x[s, c, oh*sh + ki*dh - ph, ow*sw + kj*dw - pw] (0 outside),
 *   r = (c*kh + ki)*kw + kj, p = (s*OH + oh)*OW + ow, ldb = n*OH*OW,
 * exactly what conv.cl's conv_im2col writes. g: C, H, W, kh, kw, sh, sw,
 * ph, pw, dh, dw, OH, OW in .s0-.sc, the floats in x (which the host checks
 * fit an int) in .sd, and the distance between samples and between channels
 * of x in .se and .sf (C*H*W and H*W for NCHW; a transposed convolution
 * reads a gradient laid out [C, n, H, W]). B's offset (boff +
 * batch*bstride, as for a matrix in memory) is a position in col: its
 * first row and column. */

/* Packing from x is a gather: element (row, column) of a panel reads
 * x[ro + co[column]] when h = rh + ch[column] and w = rw + cw[column] fall
 * inside the H x W plane, else 0. One side (the pixels of col for the
 * forward, its rows for the weight gradient) gives the per-row scalars, the
 * other the tables, built once per packing call. Tables are at most
 * GEMM_IM_MAXC long (the host keeps nc <= GEMM_IM_MAXC); entries past the
 * panel read nothing (ch = GEMM_IM_NONE).
 *
 * Values go 8 at a time along the pixels. With stride 1 and output rows of
 * at least 7, 8 consecutive pixels are at most two runs of x (split at lane
 * m >= 1, the end of an output row, the rest at most 7 pixels of the next
 * one), so two float8 loads and a select fetch
 * them, the lanes outside the plane then zeroed; the loads may touch
 * neighbouring rows but never leave x (checked; else lane by lane). */
#define GEMM_IM_MAXC 128
#define GEMM_IM_NONE (-(1 << 29))
#define GEMM_LANES ((int8)(0, 1, 2, 3, 4, 5, 6, 7))

/* x[a + i] for lanes i < m, x[b + i] for the rest: two runs (m = 8: one). */
inline float8 im_runs8(__global const float *x, int m, int a, int b)
{
    float8 v = vload8(0, x + a);
    return m < 8 ? select(v, vload8(0, x + b), GEMM_LANES >= (int8)m) : v;
}

/* im_runs8 (m = 0: no runs, idx per lane), zero where !ok; xlen: the
 * floats in x, which the loads never leave. */
inline float8 im_load8(__global const float *x, int xlen, int m, int a, int b, int8 idx, int8 ok)
{
    if (m > 0 && a >= 0 && a + 8 <= xlen && (m == 8 || (b >= 0 && b + 8 <= xlen)))
        return select((float8)0.0f, im_runs8(x, m, a, b), ok);
    int8 i = select((int8)0, idx, ok);
    float8 v = (float8)(x[i.s0], x[i.s1], x[i.s2], x[i.s3], x[i.s4], x[i.s5], x[i.s6], x[i.s7]);
    return select((float8)0.0f, v, ok);
}

/* The pixel p of col: ro/rh/rw of its sample, output row and column. */
inline void im_pixel(const int16 g, int p, int *ro, int *rh, int *rw)
{
    int ohw = g.sb * g.sc, s = p / ohw, t = p - s * ohw, oh = t / g.sc, ow = t - oh * g.sc;
    *rh = oh * g.s5;
    *rw = ow * g.s6;
    *ro = s * g.se + *rh * g.s2 + *rw;
}

/* Pixels p..p+7 as runs of x: the lane where the second run starts (8: one
 * run), or 0 when they are not two runs (a stride, rows under 7). */
inline int im_split8(const int16 g, int p)
{
    return g.s6 == 1 && g.sc >= 7 ? min(8, g.sc - p % g.sc) : 0;
}

/* The row r of col (channel c, kernel offset ki, kj): the same three. */
inline void im_offset(const int16 g, int r, int *ro, int *rh, int *rw)
{
    int kk = g.s3 * g.s4, c = r / kk, t = r - c * kk, ki = t / g.s4, kj = t - ki * g.s4;
    *rh = ki * g.s9 - g.s7;
    *rw = kj * g.sa - g.s8;
    *ro = c * g.sf + *rh * g.s2 + *rw;
}

/* gemm_pack_b's job with B = col from row r0, column p0 on:
 * tb = 0: Bp[q][k][c] = col[r0 + k0 + k][p0 + j0 + q*nr + c] (a convolution's forward),
 * tb = 1: Bp[q][k][c] = col[r0 + j0 + q*nr + c][p0 + k0 + k] (its weight gradient).
 * The tables are the columns of op(B): pixels for tb = 0, col rows for
 * tb = 1; the rows of op(B) are the other. */
inline void gemm_pack_b_im(const int tb, const int nr, __global const float *x, const int16 g, int r0, int p0, int j0,
                           int cols, int k0, int kb, __local float *Bp)
{
    int co[GEMM_IM_MAXC], ch[GEMM_IM_MAXC], cw[GEMM_IM_MAXC], split[GEMM_IM_MAXC / 8];
    int npan = (cols + nr - 1) / nr, H = g.s1, W = g.s2, xlen = g.sd;
    for (int j = 0; j < npan * nr; j++) {
        if (j < cols) {
            if (tb)
                im_offset(g, r0 + j0 + j, &co[j], &ch[j], &cw[j]);
            else
                im_pixel(g, p0 + j0 + j, &co[j], &ch[j], &cw[j]);
        } else {
            co[j] = 0;
            ch[j] = GEMM_IM_NONE;
            cw[j] = 0;
        }
    }
    if (!tb) {
        /* per group of 8 pixels: the runs, and the extent of h and w */
        int hlo[GEMM_IM_MAXC / 8], hhi[GEMM_IM_MAXC / 8], wlo[GEMM_IM_MAXC / 8], whi[GEMM_IM_MAXC / 8];
        for (int j = 0; j < npan * nr; j += 8) {
            int e = j >> 3;
            split[e] = j + 8 <= cols ? im_split8(g, p0 + j0 + j) : 0;
            int8 hv = vload8(0, ch + j), wv = vload8(0, cw + j);
            int4 h4 = min(hv.lo, hv.hi), H4 = max(hv.lo, hv.hi), w4 = min(wv.lo, wv.hi), W4 = max(wv.lo, wv.hi);
            int2 h2 = min(h4.lo, h4.hi), H2 = max(H4.lo, H4.hi), w2 = min(w4.lo, w4.hi), W2 = max(W4.lo, W4.hi);
            hlo[e] = min(h2.x, h2.y), hhi[e] = max(H2.x, H2.y), wlo[e] = min(w2.x, w2.y), whi[e] = max(W2.x, W2.y);
        }
        for (int k = 0; k < kb; k++) {
            int ro, rh, rw;
            im_offset(g, r0 + k0 + k, &ro, &rh, &rw);
            for (int q = 0; q < npan; q++) {
                __local float *dst = Bp + (size_t)q * kb * nr + (size_t)k * nr;
                for (int c = 0; c < nr; c += 8) {
                    int j = q * nr + c, e = j >> 3, m = split[e];
                    if (m && rh + hlo[e] >= 0 && rh + hhi[e] < H && rw + wlo[e] >= 0 && rw + whi[e] < W) {
                        /* all 8 inside the plane: one or two plain loads */
                        vstore8(im_runs8(x, m, ro + co[j], m < 8 ? ro + co[j + m] - m : 0), 0, dst + c);
                        continue;
                    }
                    int8 h = rh + vload8(0, ch + j), w = rw + vload8(0, cw + j);
                    int8 ok = (as_uint8(h) < (uint8)H) & (as_uint8(w) < (uint8)W);
                    int a = ro + co[j], b = m > 0 && m < 8 ? ro + co[j + m] - m : a;
                    vstore8(im_load8(x, xlen, m, a, b, ro + vload8(0, co + j), ok), 0, dst + c);
                }
            }
        }
        return;
    }
    /* tb: 8 pixels (rows of op(B)) at a time; per column a float8 along
     * them, 8 columns transposed through registers into 8 rows of a panel */
    for (int k = 0; k < kb; k += 8) {
        int pro[8], prh[8], prw[8], n8 = min(8, kb - k);
        for (int i = 0; i < 8; i++) {
            if (i < n8) {
                im_pixel(g, p0 + k0 + k + i, &pro[i], &prh[i], &prw[i]);
            } else {
                pro[i] = 0;
                prh[i] = GEMM_IM_NONE;
                prw[i] = 0;
            }
        }
        int m = n8 == 8 ? im_split8(g, p0 + k0 + k) : 0;
        int8 PRO = vload8(0, pro), PRH = vload8(0, prh), PRW = vload8(0, prw);
        int hlo = prh[0], hhi = prh[0], wlo = prw[0], whi = prw[0];
        for (int i = 1; i < 8; i++) {
            hlo = min(hlo, prh[i]), hhi = max(hhi, prh[i]);
            wlo = min(wlo, prw[i]), whi = max(whi, prw[i]);
        }
        for (int q = 0; q < npan; q++)
            for (int c = 0; c < nr; c += 8) {
                float8 r[8];
                for (int i = 0; i < 8; i++) {
                    int j = q * nr + c + i;
                    if (m && ch[j] + hlo >= 0 && ch[j] + hhi < H && cw[j] + wlo >= 0 && cw[j] + whi < W) {
                        r[i] = im_runs8(x, m, pro[0] + co[j], m < 8 ? pro[m] + co[j] - m : 0);
                        continue;
                    }
                    int8 h = PRH + ch[j], w = PRW + cw[j];
                    int8 ok = (as_uint8(h) < (uint8)H) & (as_uint8(w) < (uint8)W);
                    int a = pro[0] + co[j], b = m > 0 && m < 8 ? pro[m] + co[j] - m : a;
                    r[i] = im_load8(x, xlen, m, a, b, PRO + co[j], ok);
                }
                gemm_store8x8t(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], n8,
                               Bp + (size_t)q * kb * nr + (size_t)k * nr + c, nr);
            }
    }
}

/* 8 values of C row r at columns [8v, 8v+8) of the tile: alpha * acc, plus
 * beta * C on the first K block or C on the later ones; masked past nc. */
#define GEMM_STORE8(r, v, acc)                                                                                     \
    if ((r) < nr && 8 * (v) < nc) {                                                                                \
        __global float *cr = C + (size_t)(r) * ldc + 8 * (v);                                                      \
        float8 x = alpha * (acc);                                                                                  \
        if (nc >= 8 * (v) + 8) {                                                                                   \
            if (!first)                                                                                            \
                x += vload8(0, cr);                                                                                \
            else if (beta != 0.0f)                                                                                 \
                x = fma((float8)beta, vload8(0, cr), x);                                                           \
            vstore8(x, 0, cr);                                                                                     \
        } else {                                                                                                   \
            float t[8];                                                                                            \
            vstore8(x, 0, t);                                                                                      \
            for (int c = 0; c < nc - 8 * (v); c++) {                                                               \
                float y = t[c];                                                                                    \
                if (!first)                                                                                        \
                    y += cr[c];                                                                                    \
                else if (beta != 0.0f)                                                                             \
                    y = fma(beta, cr[c], y);                                                                       \
                cr[c] = y;                                                                                         \
            }                                                                                                      \
        }                                                                                                          \
    }

/* the tile's rows of C, fetched while the loop runs: they are read (or
 * written) right after it, and a miss there stalls every accumulator */
#define GEMM_PREFETCH_C(w)                                                                                         \
    for (int r = 0; r < nr; r++)                                                                                   \
        for (int c = 0; c < (w); c += 16)                                                                          \
            GEMM_PREFETCH(C + (size_t)r * ldc + c);

#define GEMM_FMA2(r)                                                                                               \
    {                                                                                                              \
        float8 av = (float8)(a[r]);                                                                                \
        c##r##0 = fma(av, b0, c##r##0);                                                                            \
        c##r##1 = fma(av, b1, c##r##1);                                                                            \
    }
#define GEMM_FMA4(r)                                                                                               \
    {                                                                                                              \
        float8 av = (float8)(a[r]);                                                                                \
        c##r##0 = fma(av, b0, c##r##0);                                                                            \
        c##r##1 = fma(av, b1, c##r##1);                                                                            \
        c##r##2 = fma(av, b2, c##r##2);                                                                            \
        c##r##3 = fma(av, b3, c##r##3);                                                                            \
    }

/* C[0..nr, 0..nc) (+)= alpha * Ap-panel . Bp-panel over kb terms: a 6x16
 * tile in 12 float8 (16 vector registers: AVX2) ... */
inline void gemm_micro16(int kb, __local const float *a, __local const float *b, __global float *C, int ldc,
                         int nr, int nc, float alpha, float beta, int first)
{
    float8 c00 = 0.0f, c01 = 0.0f, c10 = 0.0f, c11 = 0.0f, c20 = 0.0f, c21 = 0.0f;
    float8 c30 = 0.0f, c31 = 0.0f, c40 = 0.0f, c41 = 0.0f, c50 = 0.0f, c51 = 0.0f;
    GEMM_PREFETCH_C(16);
    for (int k = 0; k < kb; k++) {
        float8 b0 = vload8(0, b), b1 = vload8(1, b);
        GEMM_PREFETCH(b + 8 * 16);
        GEMM_FMA2(0) GEMM_FMA2(1) GEMM_FMA2(2) GEMM_FMA2(3) GEMM_FMA2(4) GEMM_FMA2(5)
        a += GEMM_MR;
        b += 16;
    }
    GEMM_STORE8(0, 0, c00) GEMM_STORE8(0, 1, c01)
    GEMM_STORE8(1, 0, c10) GEMM_STORE8(1, 1, c11)
    GEMM_STORE8(2, 0, c20) GEMM_STORE8(2, 1, c21)
    GEMM_STORE8(3, 0, c30) GEMM_STORE8(3, 1, c31)
    GEMM_STORE8(4, 0, c40) GEMM_STORE8(4, 1, c41)
    GEMM_STORE8(5, 0, c50) GEMM_STORE8(5, 1, c51)
}

/* ... or a 6x32 tile in 24 float8 (32 vector registers: AVX-512). */
inline void gemm_micro32(int kb, __local const float *a, __local const float *b, __global float *C, int ldc,
                         int nr, int nc, float alpha, float beta, int first)
{
    float8 c00 = 0.0f, c01 = 0.0f, c02 = 0.0f, c03 = 0.0f, c10 = 0.0f, c11 = 0.0f, c12 = 0.0f, c13 = 0.0f;
    float8 c20 = 0.0f, c21 = 0.0f, c22 = 0.0f, c23 = 0.0f, c30 = 0.0f, c31 = 0.0f, c32 = 0.0f, c33 = 0.0f;
    float8 c40 = 0.0f, c41 = 0.0f, c42 = 0.0f, c43 = 0.0f, c50 = 0.0f, c51 = 0.0f, c52 = 0.0f, c53 = 0.0f;
    GEMM_PREFETCH_C(32);
    for (int k = 0; k < kb; k++) {
        float8 b0 = vload8(0, b), b1 = vload8(1, b), b2 = vload8(2, b), b3 = vload8(3, b);
        GEMM_PREFETCH(b + 8 * 32);
        GEMM_FMA4(0) GEMM_FMA4(1) GEMM_FMA4(2) GEMM_FMA4(3) GEMM_FMA4(4) GEMM_FMA4(5)
        a += GEMM_MR;
        b += 32;
    }
    GEMM_STORE8(0, 0, c00) GEMM_STORE8(0, 1, c01) GEMM_STORE8(0, 2, c02) GEMM_STORE8(0, 3, c03)
    GEMM_STORE8(1, 0, c10) GEMM_STORE8(1, 1, c11) GEMM_STORE8(1, 2, c12) GEMM_STORE8(1, 3, c13)
    GEMM_STORE8(2, 0, c20) GEMM_STORE8(2, 1, c21) GEMM_STORE8(2, 2, c22) GEMM_STORE8(2, 3, c23)
    GEMM_STORE8(3, 0, c30) GEMM_STORE8(3, 1, c31) GEMM_STORE8(3, 2, c32) GEMM_STORE8(3, 3, c33)
    GEMM_STORE8(4, 0, c40) GEMM_STORE8(4, 1, c41) GEMM_STORE8(4, 2, c42) GEMM_STORE8(4, 3, c43)
    GEMM_STORE8(5, 0, c50) GEMM_STORE8(5, 1, c51) GEMM_STORE8(5, 2, c52) GEMM_STORE8(5, 3, c53)
}

/* The last row panel of a block when it has at most 2 of its 6 rows, in
 * the 6x32 kernel's place: a third of its work (M = 32: 5 panels and 2
 * rows). */
inline void gemm_micro32_r2(int kb, __local const float *a, __local const float *b, __global float *C, int ldc,
                            int nr, int nc, float alpha, float beta, int first)
{
    float8 c00 = 0.0f, c01 = 0.0f, c02 = 0.0f, c03 = 0.0f, c10 = 0.0f, c11 = 0.0f, c12 = 0.0f, c13 = 0.0f;
    GEMM_PREFETCH(C);
    GEMM_PREFETCH(C + 16);
    GEMM_PREFETCH(C + ldc);
    GEMM_PREFETCH(C + ldc + 16);
    for (int k = 0; k < kb; k++) {
        float8 b0 = vload8(0, b), b1 = vload8(1, b), b2 = vload8(2, b), b3 = vload8(3, b);
        GEMM_FMA4(0) GEMM_FMA4(1)
        a += GEMM_MR;
        b += 32;
    }
    GEMM_STORE8(0, 0, c00) GEMM_STORE8(0, 1, c01) GEMM_STORE8(0, 2, c02) GEMM_STORE8(0, 3, c03)
    GEMM_STORE8(1, 0, c10) GEMM_STORE8(1, 1, c11) GEMM_STORE8(1, 2, c12) GEMM_STORE8(1, 3, c13)
}

/* The epilogue, on a work-item's finished block of C (still in its cache):
 * C[i][j] = act(C[i][j] + bias[j]) (bias: has_bias; act: ACT_*), with the
 * arithmetic of dense.cl's bias_act_forward, so fused and unfused agree bit
 * for bit. */
inline void gemm_epilogue(__global float *C, int ldc, int rows, int cols, __global const float *bias, int has_bias,
                          int act)
{
    for (int i = 0; i < rows; i++) {
        __global float *cr = C + (size_t)i * ldc;
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            float8 v = vload8(0, cr + j);
            if (has_bias)
                v += vload8(0, bias + j);
            if (act == ACT_RELU)
                v = select((float8)0.0f, v, v > (float8)0.0f);
            else if (act != ACT_NONE)
                v = (float8)(act_apply(v.s0, act), act_apply(v.s1, act), act_apply(v.s2, act), act_apply(v.s3, act),
                             act_apply(v.s4, act), act_apply(v.s5, act), act_apply(v.s6, act), act_apply(v.s7, act));
            vstore8(v, 0, cr + j);
        }
        for (; j < cols; j++)
            cr[j] = act_apply(has_bias ? cr[j] + bias[j] : cr[j], act);
    }
}

/* One work-item: block (bm, bn) of the grid of mb x nb blocks of batch entry
 * get_global_id(1). kc: K block length; nc: B sub-block width (a multiple
 * of nr); Ap holds mb x kc floats (mb rounded up to MR), Bp kc x nc. */
inline void gemm_cpu_block(const int ta, const int tb, const int nr, int M, int N, int K, float alpha,
                           __global const float *A, ulong aoff, int lda, ulong astride, __global const float *B,
                           ulong boff, int ldb, ulong bstride, float beta, __global float *C, ulong coff, int ldc,
                           ulong cstride, int mb, int nb, int kc, int nc, int nblk_n, __local float *Ap,
                           __local float *Bp, __global const float *bias, int epi, const int im, int16 geo)
{
    int blk = get_global_id(0), bi = blk / nblk_n, bj = blk - bi * nblk_n;
    ulong batch = get_global_id(1);
    int i0 = bi * mb, j0 = bj * nb;
    if (i0 >= M || j0 >= N)
        return;
    int rows = min(mb, M - i0), cols = min(nb, N - j0);
    A += aoff + batch * astride;
    C += coff + batch * cstride;
    int r0 = 0, p0 = 0; /* im: B is col from (r0, p0) on */
    if (im) {
        ulong at = boff + batch * bstride;
        r0 = (int)(at / (ulong)ldb);
        p0 = (int)(at - (ulong)r0 * (ulong)ldb);
    } else {
        B += boff + batch * bstride;
    }
    /* K >= 1: src/blas.c runs K == 0 (C = beta C) as gemm_scale_c */
    for (int k0 = 0; k0 < K; k0 += kc) {
        int kb = min(kc, K - k0);
        gemm_pack_a(ta, A, lda, i0, rows, k0, kb, Ap);
        for (int jc = 0; jc < cols; jc += nc) {
            int ncols = min(nc, cols - jc);
            if (im)
                gemm_pack_b_im(tb, nr, B, geo, r0, p0, j0 + jc, ncols, k0, kb, Bp);
            else
                gemm_pack_b(tb, nr, B, ldb, j0 + jc, ncols, k0, kb, Bp);
            for (int q = 0; q * nr < ncols; q++) {
                __local const float *bq = Bp + (size_t)q * kb * nr;
                int cn = min(nr, ncols - q * nr);
                for (int p = 0; p * GEMM_MR < rows; p++) {
                    __global float *ct = C + (size_t)(i0 + p * GEMM_MR) * ldc + j0 + jc + q * nr;
                    int rn = min(GEMM_MR, rows - p * GEMM_MR);
                    if (nr == 32 && rn <= 2)
                        gemm_micro32_r2(kb, Ap + (size_t)p * kb * GEMM_MR, bq, ct, ldc, rn, cn, alpha, beta, k0 == 0);
                    else if (nr == 16)
                        gemm_micro16(kb, Ap + (size_t)p * kb * GEMM_MR, bq, ct, ldc, rn, cn, alpha, beta, k0 == 0);
                    else
                        gemm_micro32(kb, Ap + (size_t)p * kb * GEMM_MR, bq, ct, ldc, rn, cn, alpha, beta, k0 == 0);
                }
            }
        }
    }
    if (epi) /* bit 0: a bias per column; the rest: the activation */
        gemm_epilogue(C + (size_t)i0 * ldc + j0, ldc, rows, cols, bias + j0, epi & 1, epi >> 1);
}

/* gemm_cpu<NR>_<op(A)><op(B)>: n = plain, t = transposed; _im: B is the
 * implicit im2col matrix of x (geo: its geometry, see gemm_pack_b_im). */
#define GEMM_CPU_KERNEL(name, TA, TB, NR)                                                                          \
    __kernel void name(int M, int N, int K, float alpha, __global const float *A, ulong aoff, int lda,          \
                       ulong astride, __global const float *B, ulong boff, int ldb, ulong bstride, float beta,     \
                       __global float *C, ulong coff, int ldc, ulong cstride, int mb, int nb, int kc, int nc,      \
                       int nblk_n, __local float *Ap, __local float *Bp, __global const float *bias, int epi)      \
    {                                                                                                              \
        gemm_cpu_block(TA, TB, NR, M, N, K, alpha, A, aoff, lda, astride, B, boff, ldb, bstride, beta, C, coff,   \
                       ldc, cstride, mb, nb, kc, nc, nblk_n, Ap, Bp, bias, epi, 0, (int16)0);                      \
    }
#define GEMM_CPU_IM_KERNEL(name, TB, NR)                                                                           \
    __kernel void name(int M, int N, int K, float alpha, __global const float *A, ulong aoff, int lda,          \
                       ulong astride, __global const float *x, ulong boff, int ldb, ulong bstride, float beta,     \
                       __global float *C, ulong coff, int ldc, ulong cstride, int mb, int nb, int kc, int nc,      \
                       int nblk_n, __local float *Ap, __local float *Bp, __global const float *bias, int epi,      \
                       int16 geo)                                                                                  \
    {                                                                                                              \
        gemm_cpu_block(0, TB, NR, M, N, K, alpha, A, aoff, lda, astride, x, boff, ldb, bstride, beta, C, coff,    \
                       ldc, cstride, mb, nb, kc, nc, nblk_n, Ap, Bp, bias, epi, 1, geo);                           \
    }

GEMM_CPU_KERNEL(gemm_cpu16_nn, 0, 0, 16)
GEMM_CPU_KERNEL(gemm_cpu16_nt, 0, 1, 16)
GEMM_CPU_KERNEL(gemm_cpu16_tn, 1, 0, 16)
GEMM_CPU_KERNEL(gemm_cpu16_tt, 1, 1, 16)
GEMM_CPU_KERNEL(gemm_cpu32_nn, 0, 0, 32)
GEMM_CPU_KERNEL(gemm_cpu32_nt, 0, 1, 32)
GEMM_CPU_KERNEL(gemm_cpu32_tn, 1, 0, 32)
GEMM_CPU_KERNEL(gemm_cpu32_tt, 1, 1, 32)
GEMM_CPU_IM_KERNEL(gemm_cpu16_nn_im, 0, 16)
GEMM_CPU_IM_KERNEL(gemm_cpu16_nt_im, 1, 16)
GEMM_CPU_IM_KERNEL(gemm_cpu32_nn_im, 0, 32)
GEMM_CPU_IM_KERNEL(gemm_cpu32_nt_im, 1, 32)
