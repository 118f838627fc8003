/* merge.cl - the graph layers add and concat. */

/* y = a + b */
__kernel void merge_add2(__global const float *a, __global const float *b, __global float *y, int n)
{
    int i = get_global_id(0);
    if (i < n)
        y[i] = a[i] + b[i];
}

/* y += x (add: further inputs forward, every input's dx backward) */
__kernel void merge_acc(__global float *y, __global const float *x, int n)
{
    int i = get_global_id(0);
    if (i < n)
        y[i] += x[i];
}

/* concat: src is [rows, bk], dst is [rows, bo]; dst[r, off + j] = src[r, j]. */
__kernel void concat_forward(__global const float *src, __global float *dst, int rows, int bk, int bo, int off)
{
    int i = get_global_id(0);
    if (i >= rows * bk)
        return;
    int r = i / bk, j = i - r * bk;
    dst[r * bo + off + j] = src[i];
}

/* dx[r, j] += dy[r, off + j] */
__kernel void concat_backward_acc(__global const float *dy, __global float *dx, int rows, int bk, int bo, int off)
{
    int i = get_global_id(0);
    if (i >= rows * bk)
        return;
    int r = i / bk, j = i - r * bk;
    dx[i] += dy[r * bo + off + j];
}
