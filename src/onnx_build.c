/* onnx_build.c - an arena-backed builder of ONNX graph structs (onnx_build.h). */
#include "onnx_build.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 8

static int grow(void ***a, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void **p = realloc(*a, c * sizeof *p);
        if (!p)
            return -1;
        *a = p;
        *cap = c;
    }
    (*a)[(*n)++] = item;
    return 0;
}

void *ox_alloc(ox_graph *g, size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p || grow(&g->mem, &g->nmem, &g->cmem, p)) {
        free(p);
        g->oom = 1;
        return NULL;
    }
    return p;
}

char *ox_str(ox_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ox_alloc(g, (size_t)k + 1);
    if (!s)
        return (char *)"";
    va_start(ap, fmt);
    vsnprintf(s, (size_t)k + 1, fmt, ap);
    va_end(ap);
    return s;
}

Onnx__NodeProto *ox_node(ox_graph *g, const char *op, const char *name, int nin, const char *const *in, int nout,
                         const char *const *out)
{
    Onnx__NodeProto *n = ox_alloc(g, sizeof *n);
    char **ins = ox_alloc(g, sizeof(char *) * (size_t)(nin + 1));
    char **outs = ox_alloc(g, sizeof(char *) * (size_t)(nout + 1));
    Onnx__AttributeProto **at = ox_alloc(g, sizeof *at * MAX_ATTRS);
    if (!n || !ins || !outs || !at) {
        static Onnx__NodeProto dummy;
        onnx__node_proto__init(&dummy);
        return &dummy; /* g->oom is set: nothing is packed */
    }
    onnx__node_proto__init(n);
    for (int i = 0; i < nin; i++)
        ins[i] = ox_str(g, "%s", in[i]);
    for (int i = 0; i < nout; i++)
        outs[i] = ox_str(g, "%s", out[i]);
    n->n_input = (size_t)nin;
    n->input = ins;
    n->n_output = (size_t)nout;
    n->output = outs;
    n->op_type = ox_str(g, "%s", op);
    n->name = ox_str(g, "%s", name);
    n->attribute = at;
    if (grow((void ***)&g->nodes, &g->nnodes, &g->cnodes, n))
        g->oom = 1;
    return n;
}

Onnx__NodeProto *ox_op1(ox_graph *g, const char *op, const char *name, const char *x, const char *y)
{
    return ox_node(g, op, name, 1, &x, 1, &y);
}

Onnx__NodeProto *ox_op2(ox_graph *g, const char *op, const char *name, const char *a, const char *b, const char *y)
{
    const char *in[2] = {a, b};
    return ox_node(g, op, name, 2, in, 1, &y);
}

static Onnx__AttributeProto *attr(ox_graph *g, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType t)
{
    if (n->n_attribute >= MAX_ATTRS || !n->attribute) {
        g->oom = 1;
        return NULL;
    }
    Onnx__AttributeProto *a = ox_alloc(g, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = ox_str(g, "%s", name);
    a->has_type = 1;
    a->type = t;
    n->attribute[n->n_attribute++] = a;
    return a;
}

void ox_attr_int(ox_graph *g, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
}

void ox_attr_ints(ox_graph *g, Onnx__NodeProto *n, const char *name, int k, const int64_t *v)
{
    Onnx__AttributeProto *a = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = ox_alloc(g, sizeof *c * (size_t)k);
    if (a && c) {
        memcpy(c, v, sizeof *c * (size_t)k);
        a->n_ints = (size_t)k;
        a->ints = c;
    }
}

void ox_attr_float(ox_graph *g, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
}

static Onnx__TensorProto *tensor(ox_graph *g, const char *name, int nd, const int64_t *dims, int type)
{
    Onnx__TensorProto *t = ox_alloc(g, sizeof *t);
    int64_t *d = ox_alloc(g, sizeof *d * (size_t)(nd + 1));
    if (!t || !d)
        return NULL;
    onnx__tensor_proto__init(t);
    memcpy(d, dims, sizeof *d * (size_t)nd);
    t->n_dims = (size_t)nd;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = ox_str(g, "%s", name);
    if (grow((void ***)&g->inits, &g->ninits, &g->cinits, t))
        g->oom = 1;
    return t;
}

static size_t count(int nd, const int64_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)dims[i];
    return n;
}

/* An initializer of n = prod(dims) float or int64 values (es bytes each). */
static const char *init_data(ox_graph *g, const char *name, int nd, const int64_t *dims, int type, const void *data,
                             size_t es)
{
    Onnx__TensorProto *t = tensor(g, name, nd, dims, type);
    size_t n = count(nd, dims);
    void *c = ox_alloc(g, es * n);
    if (t && c) {
        memcpy(c, data, es * n);
        if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            t->n_float_data = n;
            t->float_data = c;
        } else {
            t->n_int64_data = n;
            t->int64_data = c;
        }
    }
    return name;
}

const char *ox_init_f(ox_graph *g, const char *name, int nd, const int64_t *dims, const float *data)
{
    return init_data(g, name, nd, dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, data, sizeof *data);
}

const char *ox_init_i64(ox_graph *g, const char *name, int nd, const int64_t *dims, const int64_t *data)
{
    return init_data(g, name, nd, dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, data, sizeof *data);
}

Onnx__ValueInfoProto *ox_value_info(ox_graph *g, const char *name, int nd, const int *d)
{
    Onnx__ValueInfoProto *v = ox_alloc(g, sizeof *v);
    Onnx__TypeProto *tp = ox_alloc(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox_alloc(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ox_alloc(g, sizeof *dims * (size_t)(nd + 1));
    if (!v || !tp || !tt || !sh || !dims)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i <= nd; i++) {
        Onnx__TensorShapeProto__Dimension *dm = ox_alloc(g, sizeof *dm);
        if (!dm)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dm);
        if (i == 0) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = ox_str(g, "N");
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = d[i - 1];
        }
        dims[i] = dm;
    }
    sh->n_dim = (size_t)nd + 1;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = ox_str(g, "%s", name);
    v->type = tp;
    return v;
}

void ox_free(ox_graph *g)
{
    for (size_t i = 0; i < g->nmem; i++)
        free(g->mem[i]);
    free(g->mem);
    free(g->nodes);
    free(g->inits);
    memset(g, 0, sizeof *g);
}
