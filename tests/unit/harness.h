/* harness.h - the generic layer test (ggml's test-backend-ops idea: one
 * harness, one small case per layer). A case is the layer's JSON, an input
 * shape, a batch and a plain-C reference in doubles; tu_layer_check then
 *
 *   - builds {"input": ..., "layers": [PLACEHOLDER, LAYER], "loss": "mse"}
 *     through the real path (spec -> net -> device buffers),
 *   - fills the parameters and the input with random values (never zeros),
 *   - runs forward for n of maxb samples: y against the reference, and the
 *     rows past n (filled with sentinels) untouched,
 *   - runs backward with a random dy and random values already in dx: dx
 *     must grow by J^T dy (layers ACCUMULATE into dx), the parameter
 *     gradients must equal the reference's (they are OVERWRITTEN), rows past
 *     n of dx untouched,
 *   - checks the reference's backward against central differences of its
 *     forward (in double), so a wrong reference cannot pass.
 *
 * A new layer's test is its reference (forward and backward, ~20 lines) and
 * a TEST with a table of cases (~10 lines): see test_harness.c. */
#ifndef NN_TEST_HARNESS_H
#define NN_TEST_HARNESS_H

#include <stddef.h>

typedef struct tu_layer_case tu_layer_case;

/* y[n * out] from x[n * in] and the parameters p[k] (in the layer's order). */
typedef void (*tu_ref_forward)(const tu_layer_case *c, const double *x, double *const *p, double *y, size_t n,
                               size_t in, size_t out);
/* dx[n * in] = J^T dy (overwritten) and dp[k] = the parameter gradients
 * (overwritten; dp[k] NULL for a non-trainable parameter). */
typedef void (*tu_ref_backward)(const tu_layer_case *c, const double *x, double *const *p, const double *dy,
                                double *dx, double *const *dp, size_t n, size_t in, size_t out);

struct tu_layer_case {
    const char *layer;        /* the layer's JSON object, e.g. "{\"type\":\"tanh\"}" */
    int nd, shape[4];         /* per-sample input shape */
    int maxb, n;              /* batch the net is allocated for, batch run (n <= maxb) */
    tu_ref_forward forward;
    tu_ref_backward backward;
    const void *ctx;          /* for the references */
    double lo, hi;            /* input values in [lo, hi) (both 0: [-2, 2)) */
};

/* 0 when every check passes; otherwise 1 with the failure noted (nn_test_note). */
int tu_layer_check(const tu_layer_case *c);
/* The same for cs[0..n), stopping at the first failure. */
int tu_layer_check_all(const tu_layer_case *cs, size_t n);

#endif
