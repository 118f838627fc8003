/* onnx_build.h - building an ONNX graph with protoc-c's generated structs
 * (build/onnx/onnx.pb-c.h). Every allocation goes into one arena owned by
 * the builder and freed at once with ox_free(); an allocation failure is
 * sticky (g->oom) and checked once before packing. */
#ifndef NN_ONNX_BUILD_H
#define NN_ONNX_BUILD_H

#include <stdint.h>

#include "onnx.pb-c.h"

typedef struct ox_graph {
    void **mem;
    size_t nmem, cmem;
    Onnx__NodeProto **nodes;
    size_t nnodes, cnodes;
    Onnx__TensorProto **inits;
    size_t ninits, cinits;
    int oom;
} ox_graph;

void *ox_alloc(ox_graph *g, size_t n);         /* zeroed, owned by the arena */
char *ox_str(ox_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A node with nin inputs and nout outputs (an output "" is unused). */
Onnx__NodeProto *ox_node(ox_graph *g, const char *op, const char *name, int nin, const char *const *in, int nout,
                         const char *const *out);
/* One-output shorthands: ox_op1("Relu", name, x, y), ox_op2("Add", name, a, b, y). */
Onnx__NodeProto *ox_op1(ox_graph *g, const char *op, const char *name, const char *x, const char *y);
Onnx__NodeProto *ox_op2(ox_graph *g, const char *op, const char *name, const char *a, const char *b, const char *y);
void ox_attr_int(ox_graph *g, Onnx__NodeProto *n, const char *name, int64_t v);
void ox_attr_ints(ox_graph *g, Onnx__NodeProto *n, const char *name, int k, const int64_t *v);
void ox_attr_float(ox_graph *g, Onnx__NodeProto *n, const char *name, float v);
/* Initializers (float data copied; returns the name). */
const char *ox_init_f(ox_graph *g, const char *name, int nd, const int64_t *dims, const float *data);
const char *ox_init_i64(ox_graph *g, const char *name, int nd, const int64_t *dims, const int64_t *data);
/* A float value info [N, d...] with a symbolic batch dimension "N". */
Onnx__ValueInfoProto *ox_value_info(ox_graph *g, const char *name, int nd, const int *d);
void ox_free(ox_graph *g);

#endif
