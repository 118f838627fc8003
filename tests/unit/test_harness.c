/* test_harness.c - layers through the generic harness (harness.h): each
 * layer is a reference in doubles and a table of cases. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"
#include "tutil.h"

/* ------------------------------------------- elementwise activation layers */

typedef struct act_ref {
    double (*f)(double), (*df)(double);
} act_ref;

static double relu(double v) { return v > 0 ? v : 0; }
static double drelu(double v) { return v > 0; }
static double sigm(double v) { return 1 / (1 + exp(-v)); }
static double dsigm(double v) { return sigm(v) * (1 - sigm(v)); }
static double dtanh(double v) { return 1 - tanh(v) * tanh(v); }

static void act_fwd(const tu_layer_case *c, const double *x, double *const *p, double *y, size_t n, size_t in,
                    size_t out)
{
    const act_ref *a = c->ctx;
    for (size_t i = 0; i < n * in; i++)
        y[i] = a->f(x[i]);
}

static void act_bwd(const tu_layer_case *c, const double *x, double *const *p, const double *dy, double *dx,
                    double *const *dp, size_t n, size_t in, size_t out)
{
    const act_ref *a = c->ctx;
    for (size_t i = 0; i < n * in; i++)
        dx[i] = dy[i] * a->df(x[i]);
}

TEST(harness_activation_layers)
{
    static const act_ref r = {relu, drelu}, s = {sigm, dsigm}, t = {tanh, dtanh};
    const tu_layer_case cs[] = {
        {"{\"type\":\"relu\"}", 3, {2, 3, 5}, 6, 4, act_fwd, act_bwd, &r, 0, 0},
        {"{\"type\":\"sigmoid\"}", 1, {13}, 7, 7, act_fwd, act_bwd, &s, -6, 6},
        {"{\"type\":\"tanh\"}", 2, {5, 3}, 9, 5, act_fwd, act_bwd, &t, -3, 3},
    };
    return tu_layer_check_all(cs, sizeof cs / sizeof *cs);
}

/* ------------------------------------------------------- softmax (unfused) */

static void softmax_fwd(const tu_layer_case *c, const double *x, double *const *p, double *y, size_t n, size_t in,
                        size_t out)
{
    size_t k = (size_t)c->shape[c->nd - 1];
    for (size_t r = 0; r < n * in / k; r++) {
        double m = x[r * k], s = 0;
        for (size_t j = 1; j < k; j++)
            m = fmax(m, x[r * k + j]);
        for (size_t j = 0; j < k; j++)
            s += y[r * k + j] = exp(x[r * k + j] - m);
        for (size_t j = 0; j < k; j++)
            y[r * k + j] /= s;
    }
}

static void softmax_bwd(const tu_layer_case *c, const double *x, double *const *p, const double *dy, double *dx,
                        double *const *dp, size_t n, size_t in, size_t out)
{
    size_t k = (size_t)c->shape[c->nd - 1];
    softmax_fwd(c, x, p, dx, n, in, out); /* dx holds y for now */
    for (size_t r = 0; r < n * in / k; r++) {
        double dot = 0;
        for (size_t j = 0; j < k; j++)
            dot += dx[r * k + j] * dy[r * k + j];
        for (size_t j = 0; j < k; j++)
            dx[r * k + j] *= dy[r * k + j] - dot;
    }
}

TEST(harness_softmax_unfused)
{
    /* with the mse loss the softmax's own backward runs (not fused with cross_entropy) */
    const tu_layer_case cs[] = {
        {"{\"type\":\"softmax\"}", 1, {10}, 5, 3, softmax_fwd, softmax_bwd, NULL, -3, 3},
        {"{\"type\":\"softmax\"}", 2, {4, 7}, 3, 3, softmax_fwd, softmax_bwd, NULL, -3, 3},
    };
    return tu_layer_check_all(cs, sizeof cs / sizeof *cs);
}

/* ------------------------------------------------- dense (weight [in, units], bias) */

static void dense_fwd(const tu_layer_case *c, const double *x, double *const *p, double *y, size_t n, size_t in,
                      size_t out)
{
    size_t k = (size_t)c->shape[c->nd - 1], rows = n * in / k, u = out / (in / k);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < u; j++) {
            double s = p[1] ? p[1][j] : 0;
            for (size_t i = 0; i < k; i++)
                s += x[r * k + i] * p[0][i * u + j];
            y[r * u + j] = tanh(s);
        }
}

static void dense_bwd(const tu_layer_case *c, const double *x, double *const *p, const double *dy, double *dx,
                      double *const *dp, size_t n, size_t in, size_t out)
{
    size_t k = (size_t)c->shape[c->nd - 1], rows = n * in / k, u = out / (in / k);
    double *y = tu_xmalloc(n * out * sizeof *y);
    dense_fwd(c, x, p, y, n, in, out);
    for (size_t i = 0; i < k * u; i++)
        dp[0][i] = 0;
    for (size_t j = 0; j < u; j++)
        dp[1][j] = 0;
    for (size_t i = 0; i < n * in; i++)
        dx[i] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < u; j++) {
            double g = dy[r * u + j] * (1 - y[r * u + j] * y[r * u + j]);
            dp[1][j] += g;
            for (size_t i = 0; i < k; i++) {
                dp[0][i * u + j] += x[r * k + i] * g;
                dx[r * k + i] += p[0][i * u + j] * g;
            }
        }
    free(y);
}

TEST(harness_dense_tanh)
{
    const tu_layer_case cs[] = {
        {"{\"type\":\"dense\",\"units\":6,\"activation\":\"tanh\"}", 1, {9}, 8, 5, dense_fwd, dense_bwd, NULL, 0, 0},
        {"{\"type\":\"dense\",\"units\":3,\"activation\":\"tanh\"}", 2, {4, 5}, 3, 2, dense_fwd, dense_bwd, NULL, 0, 0},
    };
    return tu_layer_check_all(cs, sizeof cs / sizeof *cs);
}
