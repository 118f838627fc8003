/* loss.cl - losses, fused with their output activation, and metrics.
 * Each writes per-sample [loss, metric] into `metrics` (metric: 1 if the
 * prediction is right for classification, mean |error| for regression) and,
 * when want_grad, the gradient (already divided by the batch size). */

/* Cross-entropy over k classes. from_logits = 0: `out` holds softmax
 * probabilities and the gradient written is the one with respect to the
 * softmax's INPUT (p - target): softmax + cross-entropy fused.
 * from_logits = 1: `out` holds logits; log-softmax computed stably here.
 * ls: label smoothing (PyTorch's CrossEntropyLoss(label_smoothing=ls)): the
 * target is (1 - ls) * onehot + ls / k, the loss -sum_j target_j log p_j. */
__kernel void ce_loss(__global const float *out, __global const int *labels, int n, int k, int from_logits,
                      __global float *grad, int want_grad, float scale, __global float *metrics, float ls)
{
    int r = get_global_id(0);
    if (r >= n)
        return;
    __global const float *o = out + (size_t)r * k;
    int y = labels[r];
    int am = 0, bad = isnan(o[0]);
    float mv = o[0];
    for (int j = 1; j < k; j++) {
        bad |= isnan(o[j]);
        if (o[j] > mv) {
            mv = o[j];
            am = j;
        }
    }
    float loss, on = 1.0f - ls, off = ls / (float)k; /* the target's weights */
    if (from_logits) {
        float s = 0.0f;
        for (int j = 0; j < k; j++)
            s += exp(o[j] - mv);
        float lsm = log(s);
        loss = -(o[y] - mv - lsm);
        if (ls != 0.0f) {
            float all = 0.0f; /* -sum_j log p_j */
            for (int j = 0; j < k; j++)
                all -= o[j] - mv - lsm;
            loss = on * loss + off * all;
        }
        if (want_grad)
            for (int j = 0; j < k; j++)
                grad[(size_t)r * k + j] = (exp(o[j] - mv - lsm) - (j == y ? on : 0.0f) - off) * scale;
    } else {
        loss = -log(fmax(o[y], 1e-30f)); /* fmax would hide a NaN: set below */
        if (ls != 0.0f) {
            float all = 0.0f;
            for (int j = 0; j < k; j++)
                all -= log(fmax(o[j], 1e-30f));
            loss = on * loss + off * all;
        }
        if (want_grad)
            for (int j = 0; j < k; j++)
                grad[(size_t)r * k + j] = (o[j] - (j == y ? on : 0.0f) - off) * scale;
    }
    /* NaN outputs are a NaN loss (training stops, no eval gate passes) and
     * no correct prediction, not class 0 with a clamped loss */
    metrics[2 * r] = bad ? NAN : loss;
    metrics[2 * r + 1] = !bad && am == y ? 1.0f : 0.0f;
}

/* Binary cross-entropy on one output per sample; labels are 0 or 1.
 * from_logits = 0: `out` is a probability (after a sigmoid) and the gradient
 * is with respect to it (clamped as Keras does); 1: `out` is a logit. */
__kernel void bce_loss(__global const float *out, __global const int *labels, int n, int from_logits,
                       __global float *grad, int want_grad, float scale, __global float *metrics)
{
    int r = get_global_id(0);
    if (r >= n)
        return;
    float t = labels[r] ? 1.0f : 0.0f;
    float o = out[r], p, loss, g;
    if (from_logits) {
        p = 1.0f / (1.0f + exp(-o));
        loss = fmax(o, 0.0f) - o * t + log1p(exp(-fabs(o)));
        g = p - t;
    } else {
        p = clamp(o, 1e-7f, 1.0f - 1e-7f);
        loss = -(t * log(p) + (1.0f - t) * log(1.0f - p));
        g = (p - t) / (p * (1.0f - p));
    }
    if (want_grad)
        grad[r] = g * scale;
    metrics[2 * r] = isnan(o) ? NAN : loss;
    metrics[2 * r + 1] = !isnan(o) && ((p >= 0.5f) == (t >= 0.5f)) ? 1.0f : 0.0f;
}

/* Mean squared error over k outputs per sample; metric = mean |error|.
 * The gradient is that of the mean over all n*k elements (scale = 1/(n*k)). */
__kernel void mse_loss(__global const float *out, __global const float *target, int n, int k,
                       __global float *grad, int want_grad, float scale, __global float *metrics)
{
    int r = get_global_id(0);
    if (r >= n)
        return;
    float se = 0.0f, ae = 0.0f;
    for (int j = 0; j < k; j++) {
        float d = out[(size_t)r * k + j] - target[(size_t)r * k + j];
        se += d * d;
        ae += fabs(d);
        if (want_grad)
            grad[(size_t)r * k + j] = 2.0f * d * scale;
    }
    metrics[2 * r] = se / k;
    metrics[2 * r + 1] = ae / k;
}

/* acc[0] += sum loss, acc[1] += sum metric, acc[2] += n. One work-group;
 * the order of additions is fixed, so results are reproducible. */
__kernel void metrics_accum(__global const float *metrics, int n, __global float *acc, __local float *s0,
                            __local float *s1)
{
    int l = get_local_id(0), ls = get_local_size(0);
    float a = 0.0f, b = 0.0f;
    for (int r = l; r < n; r += ls) {
        a += metrics[2 * r];
        b += metrics[2 * r + 1];
    }
    s0[l] = a;
    s1[l] = b;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ls / 2; s > 0; s >>= 1) {
        if (l < s) {
            s0[l] += s0[l + s];
            s1[l] += s1[l + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) {
        acc[0] += s0[0];
        acc[1] += s1[0];
        acc[2] += (float)n;
    }
}

/* nnrun eval's confusion matrix: counts each sample's (true class,
 * prediction) into conf, K rows of K + 1 columns (K classes; the last column:
 * no prediction, the outputs being NaN, as ce_loss/bce_loss count no correct
 * one). k > 1: the argmax of k outputs (K = k); k == 1: one binary output,
 * a probability (class 1 from 0.5) or a logit (from 0), K = 2. Integer
 * atomics: the counts do not depend on the order of the work-items. */
__kernel void confusion_accum(__global const float *out, __global const int *labels, int n, int k, int from_logits,
                              __global int *conf)
{
    int r = get_global_id(0);
    if (r >= n)
        return;
    int K = k > 1 ? k : 2, y = k > 1 ? labels[r] : (labels[r] ? 1 : 0), pred;
    if (y < 0 || y >= K)
        return;
    if (k == 1) {
        float o = out[r];
        pred = isnan(o) ? K : o >= (from_logits ? 0.0f : 0.5f) ? 1 : 0;
    } else {
        __global const float *o = out + (size_t)r * k;
        int bad = isnan(o[0]);
        float mv = o[0];
        pred = 0;
        for (int j = 1; j < k; j++) {
            bad |= isnan(o[j]);
            if (o[j] > mv) {
                mv = o[j];
                pred = j;
            }
        }
        if (bad)
            pred = K;
    }
    atomic_inc(conf + y * (K + 1) + pred);
}
