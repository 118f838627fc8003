/* optim.cl - optimisers over the whole parameter buffer (PyTorch semantics). */

/* SGD: g += wd*w; v = mu*v + g; w -= lr * (nesterov ? g + mu*v : v) */
__kernel void sgd_step(__global float *w, __global const float *g, __global float *v, int n, float lr, float mu,
                       float wd, int nesterov)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float gi = g[i] + wd * w[i];
    if (mu != 0.0f) {
        float vi = mu * v[i] + gi;
        v[i] = vi;
        gi = nesterov ? gi + mu * vi : vi;
    }
    w[i] -= lr * gi;
}

/* Adam (decoupled = 0: L2 added to the gradient) and AdamW (decoupled = 1:
 * w *= 1 - lr*wd). c1 = 1 - beta1^t, c2 = 1 - beta2^t. */
__kernel void adam_step(__global float *w, __global const float *g, __global float *m, __global float *v, int n,
                        float lr, float b1, float b2, float eps, float wd, int decoupled, float c1, float c2)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    float wi = w[i], gi = g[i];
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
