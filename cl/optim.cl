/* optim.cl - optimisers over the whole parameter buffer (PyTorch semantics),
 * with gradient clipping applied as each update reads the gradient (the
 * gradient buffer itself is never modified). */

/* The gradient as the update sees it: clamped to [-cv, cv] when cv > 0
 * (torch.nn.utils.clip_grad_value_; a NaN stays NaN), then times s, the
 * clip_norm factor (1 without clip_norm: exact). */
inline float clip_grad(float g, float cv, float s)
{
    if (cv > 0.0f)
        g = g > cv ? cv : g < -cv ? -cv : g;
    return g * s;
}

/* The elements work-item i updates: [i*per, min(n, (i+1)*per)), one on GPUs,
 * a long run on CPU devices (src/optim.c, nn_elem_split), so that the loop
 * is a plain vectorisable C loop there; s: the clip_norm factor, clip[0]
 * when clip_norm is on, else 1 (read once per work-item). The arithmetic per
 * element is the same whatever the run length. */
#define OPT_RUN                                                                                                    \
    int i = get_global_id(0) * per, end = min(n, i + per);                                                         \
    const float s = use_norm ? clip[0] : 1.0f

/* SGD: g += wd*w; v = mu*v + g; w -= lr * (nesterov ? g + mu*v : v) */
__kernel void sgd_step(__global float *restrict w, __global const float *restrict g, __global float *restrict v, int n,
                       float lr, float mu, float wd, int nesterov, float cv, __global const float *restrict clip,
                       int use_norm, int per)
{
    OPT_RUN;
    for (; i < end; i++) {
        float gi = clip_grad(g[i], cv, s) + wd * w[i];
        if (mu != 0.0f) {
            float vi = mu * v[i] + gi;
            v[i] = vi;
            gi = nesterov ? gi + mu * vi : vi;
        }
        w[i] -= lr * gi;
    }
}

/* Adam (decoupled = 0: L2 added to the gradient) and AdamW (decoupled = 1:
 * w *= 1 - lr*wd). c1 = 1 - beta1^t, c2 = 1 - beta2^t. */
__kernel void adam_step(__global float *restrict w, __global const float *restrict g, __global float *restrict m,
                        __global float *restrict v, int n, float lr, float b1, float b2, float eps, float wd,
                        int decoupled, float c1, float c2, float cv, __global const float *restrict clip, int use_norm,
                        int per)
{
    OPT_RUN;
    for (; i < end; i++) {
        float wi = w[i], gi = clip_grad(g[i], cv, s);
        if (decoupled)
            wi *= 1.0f - lr * wd;
        else
            gi += wd * wi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - (lr / c1) * mi / (sqrt(vi) / sqrt(c2) + eps);
    }
}

/* RMSprop in torch.optim.RMSprop's order: g += wd*w; sq = alpha*sq + (1-alpha)*g^2;
 * centered: ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga^2) + eps, else
 * avg = sqrt(sq) + eps; momentum: buf = mu*buf + g/avg, w -= lr*buf; else
 * w -= lr * g/avg. sq, ga, buf: the square average, gradient average and
 * momentum buffers (ga / buf: any buffer when unused: never read then). */
__kernel void rmsprop_step(__global float *restrict w, __global const float *restrict g, __global float *restrict sq,
                           __global float *restrict ga, __global float *restrict buf, int n, float lr, float alpha,
                           float eps, float wd, float mu, int centered, float cv, __global const float *restrict clip,
                           int use_norm, int per)
{
    OPT_RUN;
    for (; i < end; i++) {
        float wi = w[i], gi = clip_grad(g[i], cv, s) + wd * wi;
        float si = alpha * sq[i] + (1.0f - alpha) * gi * gi;
        sq[i] = si;
        float avg;
        if (centered) {
            float ai = alpha * ga[i] + (1.0f - alpha) * gi;
            ga[i] = ai;
            avg = sqrt(si - ai * ai) + eps;
        } else {
            avg = sqrt(si) + eps;
        }
        if (mu > 0.0f) {
            float bi = mu * buf[i] + gi / avg;
            buf[i] = bi;
            w[i] = wi - lr * bi;
        } else {
            w[i] = wi - lr * (gi / avg);
        }
    }
}

/* ------------------------------------------------------ clip_norm */

/* The value-clipped gradient's square, vectorised (NaN stays NaN). */
inline float16 clip_sq16(float16 v, float cv)
{
    if (cv > 0.0f)
        v = select(clamp(v, -cv, cv), v, isnan(v));
    return v * v;
}

/* CPU shape: work-item i sums the squares of g[i*per .. min(n, (i+1)*per))
 * (per a multiple of 16) into part[i], in a fixed order. */
__kernel void grad_sumsq_chunks(__global const float *g, int n, int per, float cv, __global float *part)
{
    int i = get_global_id(0);
    int b = i * per, end = min(n, b + per);
    float16 acc = (float16)0.0f;
    for (; b + 16 <= end; b += 16)
        acc += clip_sq16(vload16(0, g + b), cv);
    float s = 0.0f;
    for (; b < end; b++) {
        float v = clip_grad(g[b], cv, 1.0f);
        s += v * v;
    }
    float8 h8 = acc.lo + acc.hi;
    float4 h4 = h8.lo + h8.hi;
    float2 h2 = h4.lo + h4.hi;
    part[i] = s + h2.x + h2.y;
}

/* GPU shape: work-groups stride over g (coalesced) and reduce in local
 * memory (a power-of-two work-group size); part[group] = its sum. */
__kernel void grad_sumsq_groups(__global const float *g, int n, float cv, __global float *part, __local float *sh)
{
    int l = get_local_id(0), ls = get_local_size(0);
    float s = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        float v = clip_grad(g[i], cv, 1.0f);
        s += v * v;
    }
    sh[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = ls / 2; k > 0; k >>= 1) {
        if (l < k)
            sh[l] += sh[l + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0)
        part[get_group_id(0)] = sh[0];
}

/* torch.nn.utils.clip_grad_norm_: norm = sqrt(sum of part[0..np)); the
 * factor min(max_norm / (norm + 1e-6), 1) into clip[0] (NaN stays NaN), the
 * norm into clip[1]. One work-item: np is small. */
__kernel void clip_norm_scale(__global const float *part, int np, float max_norm, __global float *clip)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f;
    for (int i = 0; i < np; i++)
        s += part[i];
    float norm = sqrt(s), c = max_norm / (norm + 1e-6f);
    clip[0] = c < 1.0f || isnan(c) ? c : 1.0f;
    clip[1] = norm;
}
