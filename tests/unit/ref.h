/* ref.h - plain-C, double-precision reference implementations of every op
 * nnrun runs on the device (the kernels of cl/ and the CLBlast GEMMs of the layers). The
 * unit tests (test_layers.c) compare the kernels against these, and check
 * these against finite differences. Layouts match the device: row-major,
 * [rows, features] with the op applied over the last axis. */
#ifndef NN_TEST_REF_H
#define NN_TEST_REF_H

#include <stddef.h>

/* Activation codes: the same numbers as nn_act (src/layers/layer.h). */
enum { REF_ACT_NONE = 0, REF_ACT_RELU = 1, REF_ACT_SIGMOID = 2, REF_ACT_TANH = 3 };

double ref_act(double v, int act);
/* act'(x) expressed through y = act(x), as the kernels do. */
double ref_act_grad_from_y(double y, int act);

/* y[n] = act(x[n]) */
void ref_act_forward(const double *x, double *y, size_t n, int act);
/* dx[n] += dy * act'(y) */
void ref_act_backward(const double *y, const double *dy, double *dx, size_t n, int act);

/* y[rows, units] = act(x[rows, in] W[in, units] + b[units]); b may be NULL. */
void ref_dense_forward(const double *x, const double *W, const double *b, size_t rows, size_t in, size_t units,
                       int act, double *y);
/* With dz = dy * act'(y): dx[rows, in] += dz W^T (dx may be NULL),
 * dW[in, units] = x^T dz, db[units] = column sums of dz (db may be NULL). */
void ref_dense_backward(const double *x, const double *W, const double *y, const double *dy, size_t rows,
                        size_t in, size_t units, int act, double *dx, double *dW, double *db);

/* Softmax over rows of k. */
void ref_softmax_forward(const double *x, double *y, size_t rows, size_t k);
/* dx += y * (dy - sum_j dy_j y_j), per row. */
void ref_softmax_backward(const double *y, const double *dy, double *dx, size_t rows, size_t k);

/* Losses. Each writes per-sample [loss, metric] into metrics[2n] and, when
 * grad is not NULL, the gradient of the MEAN loss (sum of per-sample losses
 * divided by n) as the kernels define it. */

/* Cross-entropy on probabilities p[n, k] (after a softmax): loss -log p[y]
 * (p floored at 1e-30); grad is with respect to the softmax INPUT, (p - onehot)/n.
 * Metric: 1 when argmax p (first maximum) equals the label. */
void ref_ce_probs(const double *p, const int *labels, size_t n, size_t k, double *grad, double *metrics);
/* Cross-entropy on logits z[n, k]: loss -log softmax(z)[y]; grad (softmax(z) - onehot)/n. */
void ref_ce_logits(const double *z, const int *labels, size_t n, size_t k, double *grad, double *metrics);
/* Binary cross-entropy on probabilities o[n] (clamped to [1e-7, 1 - 1e-7] as fp32 rounds them):
 * grad with respect to o, (p - t) / (p (1 - p)) / n. Metric: (p >= 0.5) == t. */
void ref_bce_probs(const double *o, const int *labels, size_t n, double *grad, double *metrics);
/* Binary cross-entropy on logits z[n]: loss softplus form; grad (sigmoid(z) - t)/n. */
void ref_bce_logits(const double *z, const int *labels, size_t n, double *grad, double *metrics);
/* Mean squared error: per-sample loss sum_j (o - t)^2 / k; grad 2 (o - t) / (n k);
 * metric: mean |o - t| over the k outputs. */
void ref_mse(const double *o, const double *t, size_t n, size_t k, double *grad, double *metrics);
/* acc[0] += sum loss, acc[1] += sum metric, acc[2] += n. */
void ref_metrics_accum(const double *metrics, size_t n, double *acc);

/* Optimisers, PyTorch semantics, one step over n values.
 * SGD: g' = g + wd w; with mu != 0: v = mu v + g' (v starts at 0), step = nesterov ? g' + mu v : v;
 * w -= lr * step. */
void ref_sgd_step(double *w, const double *g, double *v, size_t n, double lr, double mu, double wd, int nesterov);
/* Adam (decoupled = 0: g' = g + wd w) / AdamW (decoupled = 1: w *= 1 - lr wd);
 * m = b1 m + (1-b1) g', v = b2 v + (1-b2) g'^2, w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * t counts from 1. */
void ref_adam_step(double *w, const double *g, double *m, double *v, size_t n, double lr, double b1, double b2,
                   double eps, double wd, int decoupled, long t);

/* dst[r, j] = (src[idx[start + r], j] - mean[j]) * inv_std[j] for r < n
 * (norm NULL: no normalisation; else norm = [mean[dim] | inv_std[dim]]). */
void ref_gather_rows(const double *src, const int *idx, size_t start, size_t n, size_t dim, const double *norm,
                     double *dst);

/* Comparison helpers. max |a - b| over n values; and that divided by
 * max(floor, max |b|) (b is the reference). */
double ref_max_abs_diff(const double *a, const double *b, size_t n);
double ref_rel_err(const double *a, const double *b, size_t n, double floor);

/* Deterministic test RNG (splitmix64): uniform [0,1) and [lo, hi). */
typedef struct ref_rng {
    unsigned long long s;
} ref_rng;
void ref_rng_seed(ref_rng *r, unsigned long long seed);
unsigned long long ref_rng_next(ref_rng *r);
double ref_rng_uniform(ref_rng *r);
double ref_rng_range(ref_rng *r, double lo, double hi);
void ref_fill_uniform(ref_rng *r, double *v, size_t n, double lo, double hi);

#endif
