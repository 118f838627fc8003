/* ref.c - double-precision reference implementations (see ref.h). Written
 * for clarity, straight from the definitions; nothing here is shared with
 * the device code. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>

double ref_act(double v, int act)
{
    switch (act) {
    case REF_ACT_RELU: return v > 0 ? v : 0;
    case REF_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case REF_ACT_TANH: return tanh(v);
    default: return v;
    }
}

double ref_act_grad_from_y(double y, int act)
{
    switch (act) {
    case REF_ACT_RELU: return y > 0 ? 1.0 : 0.0;
    case REF_ACT_SIGMOID: return y * (1.0 - y);
    case REF_ACT_TANH: return 1.0 - y * y;
    default: return 1.0;
    }
}

void ref_act_forward(const double *x, double *y, size_t n, int act)
{
    for (size_t i = 0; i < n; i++)
        y[i] = ref_act(x[i], act);
}

void ref_act_backward(const double *y, const double *dy, double *dx, size_t n, int act)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * ref_act_grad_from_y(y[i], act);
}

void ref_dense_forward(const double *x, const double *W, const double *b, size_t rows, size_t in, size_t units,
                       int act, double *y)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < units; j++) {
            double s = b ? b[j] : 0.0;
            for (size_t i = 0; i < in; i++)
                s += x[r * in + i] * W[i * units + j];
            y[r * units + j] = ref_act(s, act);
        }
}

void ref_dense_backward(const double *x, const double *W, const double *y, const double *dy, size_t rows,
                        size_t in, size_t units, int act, double *dx, double *dW, double *db)
{
    size_t nz = rows * units;
    double *dz = malloc((nz > 0 ? nz : 1) * sizeof *dz);
    if (!dz)
        abort();
    for (size_t k = 0; k < rows * units; k++)
        dz[k] = dy[k] * ref_act_grad_from_y(y[k], act);
    if (dx)
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < in; i++) {
                double s = 0;
                for (size_t j = 0; j < units; j++)
                    s += dz[r * units + j] * W[i * units + j];
                dx[r * in + i] += s;
            }
    for (size_t i = 0; i < in; i++)
        for (size_t j = 0; j < units; j++) {
            double s = 0;
            for (size_t r = 0; r < rows; r++)
                s += x[r * in + i] * dz[r * units + j];
            dW[i * units + j] = s;
        }
    if (db)
        for (size_t j = 0; j < units; j++) {
            double s = 0;
            for (size_t r = 0; r < rows; r++)
                s += dz[r * units + j];
            db[j] = s;
        }
    free(dz);
}

void ref_softmax_forward(const double *x, double *y, size_t rows, size_t k)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * k;
        double *yr = y + r * k;
        double m = xr[0], s = 0;
        for (size_t j = 1; j < k; j++)
            if (xr[j] > m)
                m = xr[j];
        for (size_t j = 0; j < k; j++)
            s += yr[j] = exp(xr[j] - m);
        for (size_t j = 0; j < k; j++)
            yr[j] /= s;
    }
}

void ref_softmax_backward(const double *y, const double *dy, double *dx, size_t rows, size_t k)
{
    for (size_t r = 0; r < rows; r++) {
        size_t o = r * k;
        double dot = 0;
        for (size_t j = 0; j < k; j++)
            dot += dy[o + j] * y[o + j];
        for (size_t j = 0; j < k; j++)
            dx[o + j] += y[o + j] * (dy[o + j] - dot);
    }
}

static size_t argmax(const double *v, size_t k)
{
    size_t a = 0;
    for (size_t j = 1; j < k; j++)
        if (v[j] > v[a])
            a = j;
    return a;
}

void ref_ce_probs(const double *p, const int *labels, size_t n, size_t k, double *grad, double *metrics)
{
    for (size_t r = 0; r < n; r++) {
        const double *pr = p + r * k;
        size_t y = (size_t)labels[r];
        metrics[2 * r] = -log(pr[y] > 1e-30 ? pr[y] : 1e-30);
        metrics[2 * r + 1] = argmax(pr, k) == y ? 1.0 : 0.0;
        if (grad)
            for (size_t j = 0; j < k; j++)
                grad[r * k + j] = (pr[j] - (j == y ? 1.0 : 0.0)) / (double)n;
    }
}

void ref_ce_logits(const double *z, const int *labels, size_t n, size_t k, double *grad, double *metrics)
{
    for (size_t r = 0; r < n; r++) {
        const double *zr = z + r * k;
        size_t y = (size_t)labels[r];
        double m = zr[argmax(zr, k)], s = 0;
        for (size_t j = 0; j < k; j++)
            s += exp(zr[j] - m);
        double lse = m + log(s);
        metrics[2 * r] = lse - zr[y];
        metrics[2 * r + 1] = argmax(zr, k) == y ? 1.0 : 0.0;
        if (grad)
            for (size_t j = 0; j < k; j++)
                grad[r * k + j] = (exp(zr[j] - lse) - (j == y ? 1.0 : 0.0)) / (double)n;
    }
}

void ref_bce_probs(const double *o, const int *labels, size_t n, double *grad, double *metrics)
{
    /* the clamp bounds as fp32 holds them (1 - 1e-7 rounds to 1 - 2^-23), as
     * the kernel (and Keras in float32) clamps */
    const double lo = (float)1e-7, hi = (float)(1.0 - 1e-7);
    for (size_t r = 0; r < n; r++) {
        double t = labels[r] ? 1.0 : 0.0;
        double p = o[r] < lo ? lo : o[r] > hi ? hi : o[r];
        metrics[2 * r] = -(t * log(p) + (1 - t) * log(1 - p));
        metrics[2 * r + 1] = ((p >= 0.5) == (t >= 0.5)) ? 1.0 : 0.0;
        if (grad)
            grad[r] = (p - t) / (p * (1 - p)) / (double)n;
    }
}

void ref_bce_logits(const double *z, const int *labels, size_t n, double *grad, double *metrics)
{
    for (size_t r = 0; r < n; r++) {
        double t = labels[r] ? 1.0 : 0.0, x = z[r];
        double p = 1.0 / (1.0 + exp(-x));
        /* -(t log p + (1-t) log(1-p)) = softplus(x) - t x, computed stably */
        metrics[2 * r] = (x > 0 ? x : 0) - t * x + log1p(exp(-fabs(x)));
        metrics[2 * r + 1] = ((p >= 0.5) == (t >= 0.5)) ? 1.0 : 0.0;
        if (grad)
            grad[r] = (p - t) / (double)n;
    }
}

void ref_mse(const double *o, const double *t, size_t n, size_t k, double *grad, double *metrics)
{
    for (size_t r = 0; r < n; r++) {
        double se = 0, ae = 0;
        for (size_t j = 0; j < k; j++) {
            double d = o[r * k + j] - t[r * k + j];
            se += d * d;
            ae += fabs(d);
            if (grad)
                grad[r * k + j] = 2.0 * d / ((double)n * (double)k);
        }
        metrics[2 * r] = se / (double)k;
        metrics[2 * r + 1] = ae / (double)k;
    }
}

void ref_metrics_accum(const double *metrics, size_t n, double *acc)
{
    for (size_t r = 0; r < n; r++) {
        acc[0] += metrics[2 * r];
        acc[1] += metrics[2 * r + 1];
    }
    acc[2] += (double)n;
}

void ref_sgd_step(double *w, const double *g, double *v, size_t n, double lr, double mu, double wd, int nesterov)
{
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + wd * w[i];
        if (mu != 0) {
            v[i] = mu * v[i] + gi;
            gi = nesterov ? gi + mu * v[i] : v[i];
        }
        w[i] -= lr * gi;
    }
}

void ref_adam_step(double *w, const double *g, double *m, double *v, size_t n, double lr, double b1, double b2,
                   double eps, double wd, int decoupled, long t)
{
    double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i];
        if (decoupled)
            w[i] *= 1 - lr * wd;
        else
            gi += wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] -= (lr / c1) * m[i] / (sqrt(v[i]) / sqrt(c2) + eps);
    }
}

void ref_gather_rows(const double *src, const int *idx, size_t start, size_t n, size_t dim, const double *norm,
                     double *dst)
{
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < dim; j++) {
            double v = src[(size_t)idx[start + r] * dim + j];
            if (norm)
                v = (v - norm[j]) * norm[dim + j];
            dst[r * dim + j] = v;
        }
}

double ref_max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > m || d != d)
            m = d;
    }
    return m;
}

double ref_rel_err(const double *a, const double *b, size_t n, double floor)
{
    double mb = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(b[i]) > mb)
            mb = fabs(b[i]);
    return ref_max_abs_diff(a, b, n) / (mb > floor ? mb : floor);
}

void ref_rng_seed(ref_rng *r, unsigned long long seed) { r->s = seed; }

unsigned long long ref_rng_next(ref_rng *r)
{
    unsigned long long z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double ref_rng_uniform(ref_rng *r) { return (double)(ref_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double ref_rng_range(ref_rng *r, double lo, double hi) { return lo + (hi - lo) * ref_rng_uniform(r); }

void ref_fill_uniform(ref_rng *r, double *v, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = ref_rng_range(r, lo, hi);
}
