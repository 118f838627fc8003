/* blas.cl - helpers of the GEMM seam (src/blas.c). */

/* Split-K GEMM: c[m, n] (row-major, leading dimension ldc, from offset coff)
 * = beta * c + the sum of `slices` partial products p[slices][m][n], added in
 * slice order (deterministic). beta == 0 never reads c (BLAS semantics). */
__kernel void splitk_reduce(__global const float *p, int slices, int m, int n, float beta, __global float *c,
                            int coff, int ldc)
{
    int i = get_global_id(0);
    if (i >= m * n)
        return;
    int r = i / n, col = i - r * n;
    size_t mn = (size_t)m * (size_t)n;
    float s = 0.0f;
    for (int j = 0; j < slices; j++)
        s += p[(size_t)j * mn + (size_t)i];
    __global float *cp = c + coff + (size_t)r * (size_t)ldc + (size_t)col;
    *cp = beta == 0.0f ? s : beta * *cp + s;
}

/* A GEMM with k = 0: C[b][i][j] = beta * C (0 when beta == 0, C never read),
 * over m*n items x batch. */
__kernel void gemm_scale_c(__global float *c, ulong coff, int ldc, ulong cstride, int m, int n, float beta)
{
    int i = get_global_id(0);
    if (i >= m * n)
        return;
    int r = i / n, col = i - r * n;
    __global float *cp = c + coff + get_global_id(1) * cstride + (size_t)r * (size_t)ldc + (size_t)col;
    *cp = beta == 0.0f ? 0.0f : beta * *cp;
}

/* The GEMM epilogue as a kernel (src/blas.c, where the implementation cannot
 * fuse it): c[i][j] = act(c[i][j] + bias[j]) over m*n items; the arithmetic
 * of gemm.cl's gemm_epilogue. */
__kernel void gemm_bias_act(__global float *c, ulong coff, int ldc, int m, int n, __global const float *bias,
                            int has_bias, int act)
{
    int i = get_global_id(0);
    if (i >= m * n)
        return;
    int r = i / n, col = i - r * n;
    __global float *cp = c + coff + (size_t)r * (size_t)ldc + (size_t)col;
    float v = *cp;
    if (has_bias)
        v += bias[col];
    *cp = act_apply(v, act);
}
