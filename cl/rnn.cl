/* rnn.cl - the elementwise parts of lstm and gru (src/layers/rnn.c); every
 * product goes through CLBlast. All state lives in the layer's scratch
 * buffer `w` at float offsets given by the host (which checks that every
 * index fits in an int). Layouts, per sample s and time step t (rows s*T + t):
 *   lstm: G [n, T, 4H] pre-activations, turned into the gate activations
 *         i, f, g, o by the forward and into their gradients (w.r.t. the
 *         pre-activations) by the backward; C [n, T, H] cell states c_t;
 *         P [n, T, H] h_{t-1} (P[:, 0] = 0); DH, DC [n, H] backward carries.
 *   gru:  GI [n, T, 3H] input pre-activations -> r, z, n -> their gradients;
 *         GH [n, T, 3H] recurrent pre-activations (only the n part is kept,
 *         with its bias) -> gradients w.r.t. them; P as lstm; DH [n, H].
 * One work item per (sample, unit); t is a kernel argument (one launch per
 * step, between the recurrent GEMMs). */

inline float rnn_sigmoid(float v) { return 1.0f / (1.0f + exp(-v)); }

/* The gradient reaching h_t from the layer's output: dy [n, T, H] with
 * return_sequences, else dy [n, H] at the last step only. */
inline float rnn_dy(__global const float *dy, int s, int j, int T, int H, int t, int seq)
{
    if (seq)
        return dy[(s * T + t) * H + j];
    return t == T - 1 ? dy[s * H + j] : 0.0f;
}

inline void rnn_store_h(__global float *w, int poff, __global float *y, int s, int j, int T, int H, int t, int seq,
                        float h)
{
    __global float *p = w + poff + s * T * H;
    if (t == 0)
        p[j] = 0.0f;
    if (t + 1 < T)
        p[(t + 1) * H + j] = h;
    if (seq)
        y[(s * T + t) * H + j] = h;
    else if (t == T - 1)
        y[s * H + j] = h;
}

/* Step t of the lstm forward; G[:, t] already holds x_t W_ih + h_{t-1} W_hh. */
__kernel void lstm_step_fwd(__global float *w, int goff, int coff, int poff, __global const float *b, int has_bias,
                            __global float *y, int n, int T, int H, int t, int seq)
{
    int id = get_global_id(0);
    if (id >= n * H)
        return;
    int s = id / H, j = id - s * H;
    __global float *g = w + goff + (s * T + t) * 4 * H;
    float pi = g[j], pf = g[H + j], pg = g[2 * H + j], po = g[3 * H + j];
    if (has_bias) {
        pi += b[j];
        pf += b[H + j];
        pg += b[2 * H + j];
        po += b[3 * H + j];
    }
    float ig = rnn_sigmoid(pi), fg = rnn_sigmoid(pf), gg = tanh(pg), og = rnn_sigmoid(po);
    g[j] = ig;
    g[H + j] = fg;
    g[2 * H + j] = gg;
    g[3 * H + j] = og;
    __global float *c = w + coff + s * T * H;
    float cp = t > 0 ? c[(t - 1) * H + j] : 0.0f;
    float ct = fg * cp + ig * gg;
    c[t * H + j] = ct;
    rnn_store_h(w, poff, y, s, j, T, H, t, seq, og * tanh(ct));
}

/* Step t of the lstm backward (t = T-1 .. 0): G[:, t] becomes dG_t; the
 * carries DH (dh_t from step t+1, written by the GEMM dG_{t+1} W_hh^T) and
 * DC (dc_t from step t+1) are read when t < T-1; DC gets dc_{t-1}. */
__kernel void lstm_step_bwd(__global float *w, int goff, int coff, int dhoff, int dcoff, __global const float *dy,
                            int n, int T, int H, int t, int seq)
{
    int id = get_global_id(0);
    if (id >= n * H)
        return;
    int s = id / H, j = id - s * H;
    __global float *g = w + goff + (s * T + t) * 4 * H;
    float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
    __global const float *c = w + coff + s * T * H;
    float ct = c[t * H + j], cp = t > 0 ? c[(t - 1) * H + j] : 0.0f;
    float dh = rnn_dy(dy, s, j, T, H, t, seq), dc = 0.0f;
    if (t < T - 1) {
        dh += w[dhoff + s * H + j];
        dc = w[dcoff + s * H + j];
    }
    float tc = tanh(ct);
    dc += dh * og * (1.0f - tc * tc);
    w[dcoff + s * H + j] = dc * fg;
    g[j] = dc * gg * ig * (1.0f - ig);
    g[H + j] = dc * cp * fg * (1.0f - fg);
    g[2 * H + j] = dc * ig * (1.0f - gg * gg);
    g[3 * H + j] = dh * tc * og * (1.0f - og);
}

/* Step t of the gru forward; GI[:, t] holds x_t W_ih, GH[:, t] h_{t-1} W_hh
 * (not computed for t = 0, where h_{-1} = 0). */
__kernel void gru_step_fwd(__global float *w, int gioff, int ghoff, int poff, __global const float *bih,
                           __global const float *bhh, int has_bias, __global float *y, int n, int T, int H, int t,
                           int seq)
{
    int id = get_global_id(0);
    if (id >= n * H)
        return;
    int s = id / H, j = id - s * H;
    __global float *gi = w + gioff + (s * T + t) * 3 * H;
    __global float *gh = w + ghoff + (s * T + t) * 3 * H;
    float xr = gi[j], xz = gi[H + j], xn = gi[2 * H + j];
    float hr = 0.0f, hz = 0.0f, hn = 0.0f;
    if (t > 0) {
        hr = gh[j];
        hz = gh[H + j];
        hn = gh[2 * H + j];
    }
    if (has_bias) {
        xr += bih[j];
        xz += bih[H + j];
        xn += bih[2 * H + j];
        hr += bhh[j];
        hz += bhh[H + j];
        hn += bhh[2 * H + j];
    }
    float r = rnn_sigmoid(xr + hr), z = rnn_sigmoid(xz + hz), nv = tanh(xn + r * hn);
    float hp = t > 0 ? w[poff + (s * T + t) * H + j] : 0.0f;
    gi[j] = r;
    gi[H + j] = z;
    gi[2 * H + j] = nv;
    gh[2 * H + j] = hn;
    rnn_store_h(w, poff, y, s, j, T, H, t, seq, (1.0f - z) * nv + z * hp);
}

/* Step t of the gru backward (t = T-1 .. 0): GI[:, t] becomes the gradient
 * w.r.t. the input pre-activations, GH[:, t] w.r.t. the recurrent ones; DH
 * holds z_{t+1} dh_{t+1} + dGH_{t+1} W_hh^T when t < T-1 and gets z_t dh_t
 * (the host's GEMM then adds dGH_t W_hh^T). */
__kernel void gru_step_bwd(__global float *w, int gioff, int ghoff, int poff, int dhoff, __global const float *dy,
                           int n, int T, int H, int t, int seq)
{
    int id = get_global_id(0);
    if (id >= n * H)
        return;
    int s = id / H, j = id - s * H;
    __global float *gi = w + gioff + (s * T + t) * 3 * H;
    __global float *gh = w + ghoff + (s * T + t) * 3 * H;
    float r = gi[j], z = gi[H + j], nv = gi[2 * H + j], hn = gh[2 * H + j];
    float hp = t > 0 ? w[poff + (s * T + t) * H + j] : 0.0f;
    float dh = rnn_dy(dy, s, j, T, H, t, seq);
    if (t < T - 1)
        dh += w[dhoff + s * H + j];
    float dn = dh * (1.0f - z) * (1.0f - nv * nv);
    float dz = dh * (hp - nv) * z * (1.0f - z);
    float dr = dn * hn * r * (1.0f - r);
    gi[j] = dr;
    gi[H + j] = dz;
    gi[2 * H + j] = dn;
    gh[j] = dr;
    gh[H + j] = dz;
    gh[2 * H + j] = dn * r;
    w[dhoff + s * H + j] = dh * z;
}

/* db[j] = sum over rows of m[off + r*cols + j] (bias gradients). */
__kernel void rnn_colsum(__global const float *m, int off, int rows, int cols, __global float *db)
{
    int j = get_global_id(0);
    if (j >= cols)
        return;
    __global const float *p = m + off + j;
    float s = 0.0f;
    for (int r = 0; r < rows; r++)
        s += p[r * cols];
    db[j] = s;
}
