/* embedding.cl - token (+ position) embedding (src/layers/embedding.c).
 * ids [rows] (floats, rows = n*T), weight [V, D], position [T, D],
 * y / dy [rows, D]. The host checks that every index fits in an int. */

/* The id at x rounded to the nearest integer, or -1 outside [0, V) / NaN. */
inline int emb_id(float x, int V)
{
    if (!(x > -0.5f && x < (float)V - 0.5f))
        return -1;
    return (int)(x + 0.5f);
}

/* y[r, j] = weight[id_r, j] (0 for an invalid id) + position[r % T, j].
 * Global (D, rows). */
__kernel void emb_forward(__global const float *ids, __global const float *w, __global const float *pos,
                          int has_pos, __global float *y, int rows, int T, int V, int D)
{
    int j = get_global_id(0), r = get_global_id(1);
    if (j >= D || r >= rows)
        return;
    int id = emb_id(ids[r], V);
    float v = id >= 0 ? w[id * D + j] : 0.0f;
    if (has_pos)
        v += pos[(r % T) * D + j];
    y[r * D + j] = v;
}

/* dW[v, j] = sum of dy[r, j] over the rows r whose id is v, for j in
 * [c*chunk, min(D, (c+1)*chunk)); rows in order, no atomics. Global
 * (ceil(D / chunk), V). */
__kernel void emb_weight_grad(__global const float *ids, __global const float *dy, __global float *dw, int rows,
                              int V, int D, int chunk)
{
    int c = get_global_id(0), v = get_global_id(1);
    int j0 = c * chunk;
    if (j0 >= D || v >= V)
        return;
    int j1 = min(D, j0 + chunk);
    __global float *dst = dw + v * D;
    for (int j = j0; j < j1; j++)
        dst[j] = 0.0f;
    for (int r = 0; r < rows; r++) {
        if (emb_id(ids[r], V) != v)
            continue;
        __global const float *src = dy + r * D;
        for (int j = j0; j < j1; j++)
            dst[j] += src[j];
    }
}

/* dpos[t, j] = sum over the n samples of dy[s, t, j]. Global T*D. */
__kernel void emb_pos_grad(__global const float *dy, __global float *dpos, int n, int T, int D)
{
    int i = get_global_id(0);
    if (i >= T * D)
        return;
    float s = 0.0f;
    for (int b = 0; b < n; b++)
        s += dy[b * T * D + i];
    dpos[i] = s;
}
