/* test_netgrad.c - one whole-network gradient check on the device per layer
 * family: a small net of the family's layers (loss "mse", so no softmax
 * fusion), the scalar L = sum r . y for a fixed random r, the analytic
 * gradient of every parameter from the real backward pass (the output's
 * gradient set to r), against central differences of L computed by the
 * real forward pass (fp32 on the device) for a sample of every tensor's
 * values. The per-layer tests check each op against a reference; this
 * checks that the ops and the graph's wiring (which dx feeds which dy,
 * accumulation where a layer's output is used twice) compose into the
 * gradient of the whole net. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "tutil.h"

static nn_err E;

#define NG_H 1e-2        /* finite-difference step (fp32 forward passes) */
#define NG_TOL 2e-3      /* |numerical - analytic| / max(max |analytic| of the tensor, NG_FLOOR) */
#define NG_FLOOR 1e-2
#define NG_SAMPLES 6     /* values checked per tensor */

typedef struct ng_case {
    const char *family;
    const char *json;    /* the whole model JSON (loss mse) */
    int n;               /* batch */
    int ids;             /* > 0: the input holds token ids in [0, ids) */
} ng_case;

/* L = sum r . y over the output of n samples, by a forward pass. */
static int loss_of(nn_net *net, const nn_run *run, const double *r, double *y, size_t no, double *L)
{
    TRY(nn_net_forward(net, run, &E));
    TRY(tu_download(nn_net_out(net)->y, 0, y, no, &E));
    *L = tu_dot(r, y, no);
    return 0;
}

/* In families[] a residual add and a concat ("graph"): gradients from two
 * consumers of one output accumulate. */
static int ng_check(const ng_case *c)
{
    NEED_DEV(d);
    tu_net t;
    int rc = tu_net_make(&t, c->json, c->n, 1, &E);
    if (rc) {
        tu_net_free(&t);
        CHECK(0, "%s: building the net: %s", c->family, E.msg);
    }
    nn_net *net = &t.net;
    nn_layer *out = nn_net_out(net);
    size_t nin = (size_t)c->n * net->in_dim, no = (size_t)c->n * net->out_dim;
    ref_rng rng = {977 + (uint64_t)nin};
    TRY(nn_net_init_params(net, 5, &E));
    double *x = c->ids ? tu_xmalloc(nin * sizeof *x) : tu_rnd_vec_nz(&rng, nin, -1, 1, 1e-3);
    for (size_t i = 0; c->ids && i < nin; i++)
        x[i] = (double)(ref_rng_next(&rng) % (uint64_t)c->ids);
    TRY(tu_upload(net->x_in, 0, x, nin, &E));
    double *r = tu_rnd_vec_nz(&rng, no, -1, 1, 1e-3), *y = tu_xmalloc(no * sizeof *y);
    nn_run run = {d, c->n, 1, 11, 0};

    /* analytic: forward, dL/dy = r, backward */
    double L0;
    if (loss_of(net, &run, r, y, no, &L0))
        return 1;
    TRY(nn_net_zero_grads(net, &E));
    TRY(tu_upload(out->dy, 0, r, no, &E));
    TRY(nn_net_backward(net, &run, &E));

    int ntensors = 0;
    for (int li = 0; li < net->nl; li++)
        for (int k = 0; k < net->L[li].nparam; k++) {
            nn_param *P = &net->L[li].param[k];
            if (!P->trainable)
                continue;
            ntensors++;
            double *g = tu_xmalloc(P->n * sizeof *g), *w = tu_xmalloc(P->n * sizeof *w);
            TRY(tu_download(P->g, 0, g, P->n, &E));
            TRY(tu_download(P->w, 0, w, P->n, &E));
            double gmax = fmax(tu_max_abs(g, P->n), NG_FLOOR), worst = 0;
            size_t worst_i = 0;
            double worst_num = 0;
            for (int s = 0; s < NG_SAMPLES && (size_t)s < P->n; s++) {
                size_t i = P->n <= NG_SAMPLES ? (size_t)s : (size_t)(ref_rng_next(&rng) % P->n);
                double v = w[i], Lp, Lm;
                w[i] = v + NG_H;
                TRY(tu_upload(P->w, i, &w[i], 1, &E));
                if (loss_of(net, &run, r, y, no, &Lp))
                    return 1;
                w[i] = v - NG_H;
                TRY(tu_upload(P->w, i, &w[i], 1, &E));
                if (loss_of(net, &run, r, y, no, &Lm))
                    return 1;
                w[i] = v;
                TRY(tu_upload(P->w, i, &w[i], 1, &E));
                double num = (Lp - Lm) / (2 * NG_H), err = fabs(num - g[i]) / gmax;
                if (!(err <= worst)) {
                    worst = err;
                    worst_i = i;
                    worst_num = num;
                }
            }
            tu_note_err("netgrad", worst);
            CHECK(worst < NG_TOL, "%s: %s.%s[%zu]: analytic %.6g, numerical %.6g (rel err %.3g of max |grad| %.3g)",
                  c->family, net->L[li].name, P->name, worst_i, g[worst_i], worst_num, worst, gmax);
            free(g), free(w);
        }
    CHECK(ntensors > 0, "%s: no trainable parameters", c->family);
    free(x), free(r), free(y);
    tu_net_free(&t);
    return 0;
}

/* One small net per layer family. */
static const ng_case families[] = {
    {"dense", "{\"input\":{\"shape\":[7]},\"layers\":["
     "{\"type\":\"dense\",\"units\":6,\"activation\":\"tanh\"},"
     "{\"type\":\"dense\",\"units\":5,\"activation\":\"sigmoid\"},"
     "{\"type\":\"dense\",\"units\":3}],\"loss\":\"mse\"}", 4, 0},
    {"conv", "{\"input\":{\"shape\":[2,7,7]},\"layers\":["
     "{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,\"padding\":\"same\",\"activation\":\"tanh\"},"
     "{\"type\":\"batchnorm\"},"
     "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":2,\"stride\":2,\"groups\":1},"
     "{\"type\":\"avgpool\",\"pool\":2},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}],\"loss\":\"mse\"}", 3, 0},
    {"recurrent", "{\"input\":{\"shape\":[5,3]},\"layers\":["
     "{\"type\":\"lstm\",\"units\":4,\"return_sequences\":true},"
     "{\"type\":\"gru\",\"units\":3},"
     "{\"type\":\"dense\",\"units\":2}],\"loss\":\"mse\"}", 3, 0},
    {"transformer", "{\"input\":{\"shape\":[6]},\"layers\":["
     "{\"type\":\"embedding\",\"input_dim\":9,\"output_dim\":8,\"positional\":true},"
     "{\"type\":\"layernorm\"},"
     "{\"type\":\"attention\",\"heads\":2,\"causal\":true},"
     "{\"type\":\"gelu\"},"
     "{\"type\":\"dense\",\"units\":5}],\"loss\":\"mse\"}", 2, 9},
    {"graph", "{\"input\":{\"shape\":[6]},\"layers\":["
     "{\"type\":\"dense\",\"units\":6,\"activation\":\"tanh\",\"name\":\"a\"},"
     "{\"type\":\"dense\",\"units\":6,\"name\":\"b\"},"
     "{\"type\":\"elu\",\"name\":\"c\"},"
     "{\"type\":\"add\",\"inputs\":[\"a\",\"c\"],\"name\":\"s\"},"
     "{\"type\":\"leaky_relu\",\"alpha\":0.2,\"inputs\":[\"a\"],\"name\":\"l\"},"
     "{\"type\":\"concat\",\"inputs\":[\"s\",\"l\"]},"
     "{\"type\":\"dense\",\"units\":2}],\"loss\":\"mse\"}", 3, 0},
};

/* Each family its own test: a failure names it. */
TEST(netgrad_dense) { return ng_check(&families[0]); }
TEST(netgrad_conv) { return ng_check(&families[1]); }
TEST(netgrad_recurrent) { return ng_check(&families[2]); }
TEST(netgrad_transformer) { return ng_check(&families[3]); }
TEST(netgrad_graph) { return ng_check(&families[4]); }
