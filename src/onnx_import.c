/* onnx_import.c - ONNX -> model.bin (docs/FORMATS.md, "ONNX import").
 *
 * The file is parsed by protoc-c's generated unpacker (a truncated or
 * corrupt file fails there). Nodes are read in their order; a node that
 * uses a value no earlier node (or initializer, or the graph input)
 * produced is refused, which also refuses cycles. Each node becomes an
 * nnrun layer (or nothing: Dropout, Identity, a Flatten of a flat value,
 * the input normalisation, a bias folded into the MatMul before it);
 * after each layer the model JSON built so far is parsed and its graph
 * built by nnrun's own code (src/spec.c, src/net.c), so every shape rule
 * and limit is nnrun's, and errors name the node. Initializers become the
 * layers' tensors, transposed or reordered into nnrun's layouts.
 * Any other operator: "node 'NAME' (OP): operator not supported", 65. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "net.h"
#include "onnx.h"
#include "onnx.pb-c.h"
#include "util.h"

#define MAX_NODES 2000        /* each node re-validates the model built so far */
#define MAX_VALUES 200000
#define MAX_ELEMS (1L << 30)  /* values in one initializer */

enum { V_LAYER, V_CONST, V_NORM_SUB };

typedef struct val {
    const char *name;
    int kind;
    int layer;          /* V_LAYER: the producing layer, -1 = the network input */
    /* V_CONST (and V_NORM_SUB: the mean) */
    const char *cname;  /* initializer or node name, for messages */
    int nd;
    int64_t dims[8];
    size_t n;
    float *f;           /* owned */
    int64_t *i;         /* owned (integer tensors) */
} val;

typedef struct im {
    const char *file;
    val *v;
    size_t nv;
    size_t *hash;       /* open addressing: index + 1 into v, 0 = empty */
    size_t hcap;
    const Onnx__GraphProto *g;
    const Onnx__NodeProto *node;
    int nodeidx;
    cJSON *root, *layers;
    int nl;
    nn_shape *shape;    /* out shape per layer (from nnrun's own build) */
    nn_shape in_shape;
    nn_ckpt c;
    int ct;             /* tensors allocated in c */
    int normalized;
} im;

/* ------------------------------------------------------------ messages */

static int node_fail(im *m, nn_err *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int node_fail(im *m, nn_err *e, const char *fmt, ...)
{
    char msg[NN_ERR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = m->node;
    if (!n)
        return nn_fail(e, NN_EDATA, "%s: %s", m->file, msg);
    if (n->name && n->name[0])
        return nn_fail(e, NN_EDATA, "%s: node '%.200s' (%.100s): %s", m->file, n->name, n->op_type ? n->op_type : "?",
                       msg);
    return nn_fail(e, NN_EDATA, "%s: node %d (%.100s): %s", m->file, m->nodeidx, n->op_type ? n->op_type : "?", msg);
}

/* ---------------------------------------------------------------- values */

static size_t hname(const char *s) { return (size_t)nn_fnv1a(NN_FNV_INIT, s, strlen(s)); }

static val *find(im *m, const char *name)
{
    if (!name || !m->hcap)
        return NULL;
    for (size_t h = hname(name) & (m->hcap - 1);; h = (h + 1) & (m->hcap - 1)) {
        size_t k = m->hash[h];
        if (!k)
            return NULL;
        if (!strcmp(m->v[k - 1].name, name))
            return &m->v[k - 1];
    }
}

/* A new value named `name` (NULL when the name is taken: an error). */
static val *add_val(im *m, const char *name, nn_err *e)
{
    if (!name || !name[0]) {
        node_fail(m, e, "a value without a name");
        return NULL;
    }
    if (find(m, name)) {
        node_fail(m, e, "value '%.200s' is produced twice", name);
        return NULL;
    }
    if (m->nv >= MAX_VALUES) {
        node_fail(m, e, "more than %d values", MAX_VALUES);
        return NULL;
    }
    val *v = &m->v[m->nv++];
    memset(v, 0, sizeof *v);
    v->name = name;
    for (size_t h = hname(name) & (m->hcap - 1);; h = (h + 1) & (m->hcap - 1))
        if (!m->hash[h]) {
            m->hash[h] = m->nv;
            break;
        }
    return v;
}

/* Decodes a float or int64 tensor into v (dims checked against the data). */
static int decode(im *m, const Onnx__TensorProto *t, const char *what, val *v, nn_err *e)
{
    const char *nm = t->name && t->name[0] ? t->name : "?";
#define TFAIL(...) nn_fail(e, NN_EDATA, "%s: %s '%.200s': " __VA_ARGS__)
    if (t->n_dims > 8)
        return TFAIL("%zu dimensions (at most 8)", m->file, what, nm, t->n_dims);
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > MAX_ELEMS || (n *= (size_t)t->dims[i]) > (size_t)MAX_ELEMS)
            return TFAIL("dimensions too large or negative (at most %ld values)", m->file, what, nm, MAX_ELEMS);
        v->dims[i] = t->dims[i];
    }
    v->nd = (int)t->n_dims;
    v->n = n;
    v->cname = nm;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return TFAIL("data in an external file is not supported", m->file, what, nm);
    int type = t->has_data_type ? t->data_type : 0;
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        if (!(v->f = malloc(sizeof(float) * (n ? n : 1))))
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
        if (t->has_raw_data && t->raw_data.len) {
            if (t->raw_data.len != 4 * n)
                return TFAIL("%zu bytes of data for %zu float values", m->file, what, nm, t->raw_data.len, n);
            for (size_t i = 0; i < n; i++) { /* little-endian, whatever the host */
                const uint8_t *p = t->raw_data.data + 4 * i;
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                memcpy(&v->f[i], &u, 4);
            }
        } else if (t->n_float_data == n) {
            memcpy(v->f, t->float_data, sizeof(float) * n);
        } else {
            return TFAIL("%zu float values for dimensions holding %zu", m->file, what, nm, t->n_float_data, n);
        }
        return 0;
    }
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
        if (!(v->i = malloc(sizeof(int64_t) * (n ? n : 1))))
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
        if (t->has_raw_data && t->raw_data.len) {
            if (t->raw_data.len != 8 * n)
                return TFAIL("%zu bytes of data for %zu int64 values", m->file, what, nm, t->raw_data.len, n);
            for (size_t i = 0; i < n; i++) {
                uint64_t u = 0;
                for (int b = 7; b >= 0; b--)
                    u = u << 8 | t->raw_data.data[8 * i + (size_t)b];
                memcpy(&v->i[i], &u, 8);
            }
        } else if (t->n_int64_data == n) {
            memcpy(v->i, t->int64_data, sizeof(int64_t) * n);
        } else {
            return TFAIL("%zu int64 values for dimensions holding %zu", m->file, what, nm, t->n_int64_data, n);
        }
        return 0;
    }
    return TFAIL("data type %d is not supported (float32 weights and int64 shapes only)", m->file, what, nm, type);
#undef TFAIL
}

/* Input k of the current node: must exist (else: a cycle or a missing value). */
static val *input(im *m, int k, nn_err *e)
{
    const Onnx__NodeProto *n = m->node;
    if ((size_t)k >= n->n_input || !n->input[k][0]) {
        node_fail(m, e, "input %d is missing", k);
        return NULL;
    }
    val *v = find(m, n->input[k]);
    if (!v)
        node_fail(m, e, "input '%.200s' is not produced by any earlier node, initializer or graph input (the graph "
                        "is not in topological order, or has a cycle)", n->input[k]);
    return v;
}

static int has_input(const Onnx__NodeProto *n, size_t k) { return k < n->n_input && n->input[k][0]; }

static val *layer_input(im *m, int k, nn_err *e)
{
    val *v = input(m, k, e);
    if (v && v->kind != V_LAYER) {
        node_fail(m, e, "input '%.200s' must be computed from the network input, not a constant", v->name);
        return NULL;
    }
    return v;
}

static val *const_input(im *m, int k, int want_float, nn_err *e)
{
    val *v = input(m, k, e);
    if (v && (v->kind != V_CONST || (want_float ? !v->f : !v->i))) {
        node_fail(m, e, "input '%.200s' must be a constant (an initializer) of type %s", v->name,
                  want_float ? "float" : "int64");
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------ attributes */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int attr_int(im *m, const char *name, long lo, long hi, long dflt, long *out, nn_err *e)
{
    const Onnx__AttributeProto *a = attr(m->node, name);
    *out = dflt;
    if (!a)
        return 0;
    if (!a->has_i)
        return node_fail(m, e, "attribute '%s' must be an integer", name);
    if (a->i < lo || a->i > hi)
        return node_fail(m, e, "attribute %s = %lld is not supported (%ld to %ld)", name, (long long)a->i, lo, hi);
    *out = (long)a->i;
    return 0;
}

static int attr_float(im *m, const char *name, double dflt, double *out, nn_err *e)
{
    const Onnx__AttributeProto *a = attr(m->node, name);
    *out = dflt;
    if (!a)
        return 0;
    if (!a->has_f || !isfinite(a->f))
        return node_fail(m, e, "attribute '%s' must be a finite float", name);
    *out = a->f;
    return 0;
}

/* An INTS attribute of exactly k values in [lo, hi], or dflt for each when absent. */
static int attr_ints(im *m, const char *name, int k, long lo, long hi, long dflt, long *out, nn_err *e)
{
    const Onnx__AttributeProto *a = attr(m->node, name);
    for (int i = 0; i < k; i++)
        out[i] = dflt;
    if (!a)
        return 0;
    if (a->n_ints != (size_t)k)
        return node_fail(m, e, "attribute '%s' must hold %d integers (2-D only)", name, k);
    for (int i = 0; i < k; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return node_fail(m, e, "attribute %s[%d] = %lld is not supported (%ld to %ld)", name, i,
                             (long long)a->ints[i], lo, hi);
        out[i] = (long)a->ints[i];
    }
    return 0;
}

static int attr_str_is(const Onnx__NodeProto *n, const char *name, const char *s)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_s && a->s.len == strlen(s) && !memcmp(a->s.data, s, a->s.len);
}


/* How many node inputs and graph outputs read the value `name`. */
static int uses(const im *m, const char *name)
{
    int k = 0;
    for (size_t i = 0; i < m->g->n_node; i++)
        for (size_t j = 0; j < m->g->node[i]->n_input; j++)
            k += !strcmp(m->g->node[i]->input[j], name);
    for (size_t i = 0; i < m->g->n_output; i++)
        k += m->g->output[i]->name && !strcmp(m->g->output[i]->name, name);
    return k;
}

/* Outputs beyond the first must be unused (absent, empty or never read). */
static int only_first_output(im *m, nn_err *e)
{
    for (size_t i = 1; i < m->node->n_output; i++)
        if (m->node->output[i][0] && uses(m, m->node->output[i]))
            return node_fail(m, e, "output %zu ('%.200s') is used; only the first output is supported", i,
                             m->node->output[i]);
    return 0;
}

/* ----------------------------------------------------- layers and tensors */

/* A tensor "<layer>.<p>" of n values (copied), shape dims. */
static int add_tensor(im *m, const char *layer, const char *p, int nd, const long *dims, const float *data, nn_err *e)
{
    if (m->c.ntensors == m->ct) {
        int nc = m->ct ? 2 * m->ct : 64;
        nn_ckpt_tensor *t = realloc(m->c.tensors, sizeof *t * (size_t)nc);
        if (!t)
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
        m->c.tensors = t;
        m->ct = nc;
    }
    nn_ckpt_tensor *t = &m->c.tensors[m->c.ntensors];
    memset(t, 0, sizeof *t);
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)(t->shape[i] = dims[i]);
    t->ndim = nd;
    t->length = n;
    size_t nl = strlen(layer) + strlen(p) + 2;
    t->name = malloc(nl);
    t->data = malloc(sizeof(float) * n);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    }
    snprintf(t->name, nl, "%s.%s", layer, p);
    memcpy(t->data, data, sizeof(float) * n);
    m->c.ntensors++;
    return 0;
}

/* Builds the model JSON so far with nnrun's own parser and graph builder:
 * the shapes of every layer, and nnrun's errors for anything it refuses. */
static int probe(im *m, nn_err *e)
{
    char *txt = cJSON_PrintUnformatted(m->root);
    if (!txt)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    memset(&net, 0, sizeof net);
    int r = nn_spec_parse(txt, strlen(txt), m->file, &s, e);
    if (!r)
        r = nn_net_build(&net, &s, e);
    if (!r)
        m->shape[m->nl - 1] = net.L[m->nl - 1].out_shape;
    nn_net_free(&net);
    nn_spec_free(&s);
    free(txt);
    if (r && m->node) {
        char msg[NN_ERR_MAX];
        size_t fl = strlen(m->file);
        /* nnrun's message starts with the file name: keep what follows */
        snprintf(msg, sizeof msg, "%s", strncmp(e->msg, m->file, fl) || strncmp(e->msg + fl, ": ", 2) ? e->msg
                                                                                                         : e->msg + fl + 2);
        node_fail(m, e, "as an nnrun %s layer: %s", cJSON_GetObjectItem(cJSON_GetArrayItem(m->layers, m->nl - 1),
                                                                       "type")->valuestring, msg);
    }
    return r;
}

static const char *layer_name(const im *m, int i)
{
    return i < 0 ? "input" : cJSON_GetObjectItem(cJSON_GetArrayItem(m->layers, i), "name")->valuestring;
}

/* A new layer object of `type` reading the values in[0..nin), named after the
 * node (made unique and acceptable to nnrun); its output is the node's first
 * output. Returns the JSON object to complete (NULL: error set). */
static cJSON *new_layer(im *m, const char *type, val **in, int nin, nn_err *e)
{
    if (m->nl >= MAX_NODES) {
        node_fail(m, e, "more than %d layers", MAX_NODES);
        return NULL;
    }
    char base[48], name[64];
    const char *nn = m->node->name && m->node->name[0] ? m->node->name : type;
    size_t k = 0;
    for (const char *p = nn; *p && k < sizeof base - 1; p++)
        base[k++] = (*p > ' ' && *p < 127 && *p != '"' && *p != '\\') ? *p : '_';
    base[k] = 0;
    snprintf(name, sizeof name, "%s", base);
    for (int u = 2;; u++) {
        int taken = !strcmp(name, "input");
        for (int i = 0; i < m->nl && !taken; i++)
            taken = !strcmp(layer_name(m, i), name);
        if (!taken)
            break;
        snprintf(name, sizeof name, "%s_%d", base, u);
    }
    cJSON *L = cJSON_CreateObject(), *ins = cJSON_CreateArray();
    if (!L || !ins) {
        cJSON_Delete(L);
        cJSON_Delete(ins);
        nn_fail(e, NN_ESOFTWARE, "out of memory");
        return NULL;
    }
    cJSON_AddStringToObject(L, "type", type);
    cJSON_AddStringToObject(L, "name", name);
    for (int i = 0; i < nin; i++)
        cJSON_AddItemToArray(ins, cJSON_CreateString(layer_name(m, in[i]->layer)));
    cJSON_AddItemToObject(L, "inputs", ins);
    cJSON_AddItemToArray(m->layers, L);
    m->nl++;
    val *o = add_val(m, m->node->output[0], e);
    if (!o)
        return NULL;
    o->kind = V_LAYER;
    o->layer = m->nl - 1;
    return L;
}

/* The value a node passes through unchanged (Dropout, Identity, Flatten of a flat value). */
static int alias(im *m, val *x, nn_err *e)
{
    int layer = x->layer;
    val *o = add_val(m, m->node->output[0], e);
    if (!o)
        return e->code;
    o->kind = V_LAYER;
    o->layer = layer;
    return 0;
}

static const nn_shape *shape_of(const im *m, const val *x) { return x->layer < 0 ? &m->in_shape : &m->shape[x->layer]; }

static cJSON *pair(long a, long b)
{
    int v[2] = {(int)a, (int)b};
    return cJSON_CreateIntArray(v, 2);
}

/* ----------------------------------------------------------- operators */

static int op_gemm(im *m, int matmul, nn_err *e)
{
    val *x = layer_input(m, 0, e), *w = x ? const_input(m, 1, 1, e) : NULL, *b = NULL;
    if (!w)
        return e->code;
    long ta = 0, tb = 0;
    double alpha = 1, beta = 1;
    int r = 0;
    if (!matmul && ((r = attr_int(m, "transA", 0, 0, 0, &ta, e)) || (r = attr_int(m, "transB", 0, 1, 0, &tb, e)) ||
                    (r = attr_float(m, "alpha", 1, &alpha, e)) || (r = attr_float(m, "beta", 1, &beta, e))))
        return r;
    if (alpha != 1 || beta != 1)
        return node_fail(m, e, "alpha and beta other than 1 are not supported");
    if (w->nd != 2)
        return node_fail(m, e, "the weight '%.200s' must be 2-D", w->name);
    const nn_shape *s = shape_of(m, x);
    long in = tb ? w->dims[1] : w->dims[0], out = tb ? w->dims[0] : w->dims[1];
    if (s->d[s->nd - 1] != in || (!matmul && s->nd != 1))
        return node_fail(m, e, "the weight '%.200s' is [%lld, %lld] but the input's last axis has %d values%s",
                         w->name, (long long)w->dims[0], (long long)w->dims[1], s->d[s->nd - 1],
                         !matmul && s->nd != 1 ? " (Gemm needs a flat input)" : "");
    if (!matmul && has_input(m->node, 2) && !(b = const_input(m, 2, 1, e)))
        return e->code;
    if (b && b->n != (size_t)out)
        return node_fail(m, e, "the bias '%.200s' has %zu values for %ld outputs (broadcast biases are not supported)",
                         b->name, b->n, out);
    cJSON *L = new_layer(m, "dense", &x, 1, e);
    if (!L)
        return e->code;
    cJSON_AddNumberToObject(L, "units", (double)out);
    cJSON_AddBoolToObject(L, "use_bias", b != NULL);
    float *t = malloc(sizeof(float) * w->n);
    if (!t)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    for (long i = 0; i < in; i++) /* nnrun: [in, out] */
        for (long o = 0; o < out; o++)
            t[i * out + o] = tb ? w->f[o * in + i] : w->f[i * out + o];
    const char *ln = cJSON_GetObjectItem(L, "name")->valuestring;
    long wd[2] = {in, out}, bd[1] = {out};
    r = add_tensor(m, ln, "weight", 2, wd, t, e);
    free(t);
    if (!r && b)
        r = add_tensor(m, ln, "bias", 1, bd, b->f, e);
    return r ? r : probe(m, e);
}

/* Add(dense without bias, constant) where only this Add reads the dense
 * layer's output: the constant becomes its bias (MatMul + Add). */
static int fold_bias(im *m, val *x, val *b, nn_err *e)
{
    cJSON *L = x->layer >= 0 ? cJSON_GetArrayItem(m->layers, x->layer) : NULL;
    if (!L || strcmp(cJSON_GetObjectItem(L, "type")->valuestring, "dense") ||
        cJSON_IsTrue(cJSON_GetObjectItem(L, "use_bias")) || uses(m, x->name) != 1 || x->layer != m->nl - 1)
        return node_fail(m, e, "adding a constant is supported only as the bias of the MatMul before it");
    long units = (long)cJSON_GetObjectItem(L, "units")->valuedouble;
    if (b->n != (size_t)units)
        return node_fail(m, e, "the bias '%.200s' has %zu values for %ld units", b->name, b->n, units);
    cJSON_ReplaceItemInObject(L, "use_bias", cJSON_CreateTrue());
    long bd[1] = {units};
    int r = add_tensor(m, cJSON_GetObjectItem(L, "name")->valuestring, "bias", 1, bd, b->f, e);
    return r ? r : alias(m, x, e);
}

static int op_conv(im *m, nn_err *e)
{
    val *x = layer_input(m, 0, e), *w = x ? const_input(m, 1, 1, e) : NULL, *b = NULL;
    if (!w)
        return e->code;
    if (has_input(m->node, 2) && !(b = const_input(m, 2, 1, e)))
        return e->code;
    if (w->nd != 4)
        return node_fail(m, e, "only 2-D convolutions are supported (weight '%.200s' has %d dimensions)", w->name,
                         w->nd);
    long ks[2], st[2], dl[2], pads[4], group;
    int r;
    if ((r = attr_ints(m, "kernel_shape", 2, 1, 4096, 0, ks, e)) || (r = attr_ints(m, "strides", 2, 1, 4096, 1, st, e)) ||
        (r = attr_ints(m, "dilations", 2, 1, 4096, 1, dl, e)) || (r = attr_ints(m, "pads", 4, 0, 4096, 0, pads, e)) ||
        (r = attr_int(m, "group", 1, 65536, 1, &group, e)))
        return r;
    if ((ks[0] && ks[0] != w->dims[2]) || (ks[1] && ks[1] != w->dims[3]))
        return node_fail(m, e, "kernel_shape does not match the weight '%.200s'", w->name);
    int same = attr_str_is(m->node, "auto_pad", "SAME_UPPER");
    if (attr(m->node, "auto_pad") && !same && !attr_str_is(m->node, "auto_pad", "NOTSET") &&
        !attr_str_is(m->node, "auto_pad", "VALID"))
        return node_fail(m, e, "auto_pad other than NOTSET, VALID or SAME_UPPER is not supported");
    if (pads[0] != pads[2] || pads[1] != pads[3])
        return node_fail(m, e, "asymmetric pads [%ld, %ld, %ld, %ld] are not supported", pads[0], pads[1], pads[2],
                         pads[3]);
    if (b && b->n != (size_t)w->dims[0])
        return node_fail(m, e, "the bias '%.200s' has %zu values for %lld filters", b->name, b->n,
                         (long long)w->dims[0]);
    cJSON *L = new_layer(m, "conv2d", &x, 1, e);
    if (!L)
        return e->code;
    cJSON_AddNumberToObject(L, "filters", (double)w->dims[0]);
    cJSON_AddItemToObject(L, "kernel", pair(w->dims[2], w->dims[3]));
    cJSON_AddItemToObject(L, "stride", pair(st[0], st[1]));
    if (same)
        cJSON_AddStringToObject(L, "padding", "same");
    else
        cJSON_AddItemToObject(L, "padding", pair(pads[0], pads[1]));
    cJSON_AddItemToObject(L, "dilation", pair(dl[0], dl[1]));
    cJSON_AddNumberToObject(L, "groups", (double)group);
    cJSON_AddBoolToObject(L, "use_bias", b != NULL);
    const char *ln = cJSON_GetObjectItem(L, "name")->valuestring;
    long wd[4] = {(long)w->dims[0], (long)w->dims[1], (long)w->dims[2], (long)w->dims[3]}, bd[1] = {wd[0]};
    if ((r = add_tensor(m, ln, "weight", 4, wd, w->f, e)) || (b && (r = add_tensor(m, ln, "bias", 1, bd, b->f, e))))
        return r;
    if ((r = probe(m, e)))
        return r;
    /* nnrun derives the weight's C/groups from the input: check it agrees */
    const nn_shape *s = shape_of(m, x);
    if (s->d[0] / group != w->dims[1])
        return node_fail(m, e, "the weight '%.200s' has %lld input channels per group, the input %d channels in %ld "
                               "groups", w->name, (long long)w->dims[1], s->d[0], group);
    return 0;
}

static int op_pool(im *m, int max, nn_err *e)
{
    val *x = layer_input(m, 0, e);
    if (!x)
        return e->code;
    long ks[2], st[2], dl[2], pads[4], ceil_mode, cip, so;
    int r;
    if ((r = attr_ints(m, "kernel_shape", 2, 1, 4096, 0, ks, e)) || (r = attr_ints(m, "strides", 2, 1, 4096, 1, st, e)) ||
        (r = attr_ints(m, "dilations", 2, 1, 1, 1, dl, e)) || (r = attr_ints(m, "pads", 4, 0, 4096, 0, pads, e)) ||
        (r = attr_int(m, "ceil_mode", 0, 0, 0, &ceil_mode, e)) || (r = attr_int(m, "storage_order", 0, 0, 0, &so, e)) ||
        (r = attr_int(m, "count_include_pad", 0, 1, 0, &cip, e)) || (r = only_first_output(m, e)))
        return r;
    if (!ks[0])
        return node_fail(m, e, "kernel_shape is required");
    if (attr(m->node, "auto_pad") && !attr_str_is(m->node, "auto_pad", "NOTSET") &&
        !attr_str_is(m->node, "auto_pad", "VALID"))
        return node_fail(m, e, "auto_pad other than NOTSET or VALID is not supported");
    if (pads[0] != pads[2] || pads[1] != pads[3])
        return node_fail(m, e, "asymmetric pads are not supported");
    if (!max && cip && (pads[0] || pads[1]))
        return node_fail(m, e, "count_include_pad = 1 with padding is not supported (nnrun leaves padding out of "
                               "the average)");
    cJSON *L = new_layer(m, max ? "maxpool" : "avgpool", &x, 1, e);
    if (!L)
        return e->code;
    cJSON_AddItemToObject(L, "pool", pair(ks[0], ks[1]));
    cJSON_AddItemToObject(L, "stride", pair(st[0], st[1]));
    cJSON_AddItemToObject(L, "padding", pair(pads[0], pads[1]));
    return probe(m, e);
}

/* BatchNormalization, LayerNormalization */
static int op_norm(im *m, int layer, nn_err *e)
{
    val *x = layer_input(m, 0, e);
    if (!x)
        return e->code;
    const nn_shape *s = shape_of(m, x);
    long C = layer ? s->d[s->nd - 1] : s->d[0], axis, tm;
    double eps;
    int r;
    if ((r = attr_float(m, "epsilon", 1e-5, &eps, e)) || (r = only_first_output(m, e)))
        return r;
    if (layer) {
        if ((r = attr_int(m, "axis", -8, 8, -1, &axis, e)))
            return r;
        if (axis != -1 && axis != s->nd)
            return node_fail(m, e, "only normalisation over the last axis is supported (axis %ld)", axis);
    } else if ((r = attr_int(m, "training_mode", 0, 0, 0, &tm, e))) {
        return r;
    }
    static const char *const bn[4] = {"weight", "bias", "running_mean", "running_var"};
    val *p[4] = {NULL};
    int np = layer ? 2 : 4;
    for (int i = 0; i < np; i++) {
        if (layer && i == 1 && !has_input(m->node, 2))
            continue; /* LayerNormalization's bias is optional */
        if (!(p[i] = const_input(m, i + 1, 1, e)))
            return e->code;
        if (p[i]->n != (size_t)C)
            return node_fail(m, e, "'%.200s' has %zu values for %ld channels", p[i]->name, p[i]->n, C);
    }
    if (!(eps >= 1e-12 && eps <= 1.0))
        return node_fail(m, e, "epsilon %g is outside nnrun's range [1e-12, 1]", eps);
    cJSON *L = new_layer(m, layer ? "layernorm" : "batchnorm", &x, 1, e);
    if (!L)
        return e->code;
    cJSON_AddNumberToObject(L, "eps", eps);
    const char *ln = cJSON_GetObjectItem(L, "name")->valuestring;
    float *zero = calloc((size_t)C, sizeof(float));
    if (!zero)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    for (int i = 0; i < np && !r; i++)
        r = add_tensor(m, ln, bn[i], 1, &C, p[i] ? p[i]->f : zero, e);
    free(zero);
    return r ? r : probe(m, e);
}

/* Sub/Div/Mul on the graph input: nnrun's input normalisation
 * (x - mean) / std, with a mean and std of 1, channel or feature size. */
static int op_normalize(im *m, const char *op, nn_err *e)
{
    val *x = input(m, 0, e), *c = x ? const_input(m, 1, 1, e) : NULL;
    if (!c)
        return e->code;
    size_t dim = nn_shape_size(&m->in_shape);
    int ok = c->n == 1 || c->n == dim || (m->in_shape.nd == 3 && c->n == (size_t)m->in_shape.d[0] && c->nd >= 3 &&
                                          c->dims[c->nd - 1] == 1 && c->dims[c->nd - 2] == 1);
    int sub = !strcmp(op, "Sub");
    if (!ok || (sub && !(x->kind == V_LAYER && x->layer < 0 && !m->normalized && !m->nl)) ||
        (!sub && x->kind != V_NORM_SUB))
        return node_fail(m, e, "%s is supported only as the input normalisation (x - mean) / std or "
                               "(x - mean) * (1 / std) applied first to the graph input", op);
    if (!sub && c->n != x->n && x->n != 1 && c->n != 1)
        return node_fail(m, e, "the mean has %zu values but the scale %zu", x->n, c->n);
    val *o = add_val(m, m->node->output[0], e);
    if (!o)
        return e->code;
    if (sub) {
        o->kind = V_NORM_SUB;
        o->layer = -1;
        o->n = c->n;
        o->f = malloc(sizeof(float) * c->n);
        if (!o->f)
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
        memcpy(o->f, c->f, sizeof(float) * c->n);
        return 0;
    }
    size_t k = x->n > c->n ? x->n : c->n;
    m->c.mean = malloc(sizeof(float) * k);
    m->c.std = malloc(sizeof(float) * k);
    if (!m->c.mean || !m->c.std)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    for (size_t i = 0; i < k; i++) {
        float s = c->f[c->n == 1 ? 0 : i];
        m->c.mean[i] = x->f[x->n == 1 ? 0 : i];
        m->c.std[i] = strcmp(op, "Div") ? 1.0f / s : s;
        if (!isfinite(m->c.std[i]) || m->c.std[i] <= 0 || !isfinite(m->c.mean[i]))
            return node_fail(m, e, "the normalisation's std must be positive and finite");
    }
    m->c.nnorm = (int)k;
    m->normalized = 1;
    o->kind = V_LAYER;
    o->layer = -1;
    return 0;
}

static int op_simple(im *m, const char *type, nn_err *e)
{
    val *x = layer_input(m, 0, e);
    if (!x)
        return e->code;
    int r = only_first_output(m, e);
    if (r)
        return r;
    double alpha = 0;
    if (!strcmp(type, "leaky_relu") || !strcmp(type, "elu")) {
        if ((r = attr_float(m, "alpha", type[0] == 'l' ? 0.01 : 1.0, &alpha, e)))
            return r;
    }
    if (!strcmp(type, "softmax")) {
        long axis;
        const nn_shape *s = shape_of(m, x);
        if ((r = attr_int(m, "axis", -8, 8, -1, &axis, e)))
            return r;
        if (axis != -1 && axis != s->nd)
            return node_fail(m, e, "only a softmax over the last axis is supported (axis %ld)", axis);
    }
    if (!strcmp(type, "flatten")) {
        long axis;
        if ((r = attr_int(m, "axis", -8, 8, 1, &axis, e)))
            return r;
        if (axis != 1)
            return node_fail(m, e, "only Flatten with axis 1 (keeping the batch axis) is supported");
        if (shape_of(m, x)->nd == 1)
            return alias(m, x, e);
    }
    cJSON *L = new_layer(m, type, &x, 1, e);
    if (!L)
        return e->code;
    if (!strcmp(type, "leaky_relu") || !strcmp(type, "elu"))
        cJSON_AddNumberToObject(L, "alpha", alpha);
    return probe(m, e);
}

/* Reshape to [batch, features]: a flatten. */
static int op_reshape(im *m, nn_err *e)
{
    val *x = layer_input(m, 0, e), *s = x ? const_input(m, 1, 0, e) : NULL;
    if (!s)
        return e->code;
    long long total = (long long)nn_shape_size(shape_of(m, x));
    if (s->n != 2 || s->i[0] < -1 || !(s->i[1] == -1 || s->i[1] == total))
        return node_fail(m, e, "only a reshape to [batch, %lld] (a flatten) is supported", total);
    if (shape_of(m, x)->nd == 1)
        return alias(m, x, e);
    return new_layer(m, "flatten", &x, 1, e) ? probe(m, e) : e->code;
}

/* Add, Sum, Concat of layer outputs (Add of a constant: a MatMul's bias). */
static int op_merge(im *m, const char *type, nn_err *e)
{
    val *in[NN_MAX_INPUTS];
    int n = (int)m->node->n_input;
    if (n < 1 || n > NN_MAX_INPUTS)
        return node_fail(m, e, "%d inputs (1 to %d supported)", n, NN_MAX_INPUTS);
    for (int i = 0; i < n; i++)
        if (!(in[i] = input(m, i, e)))
            return e->code;
    if (!strcmp(type, "add") && n == 2 && (in[0]->kind == V_CONST || in[1]->kind == V_CONST)) {
        val *c = in[0]->kind == V_CONST ? in[0] : in[1], *x = c == in[0] ? in[1] : in[0];
        if (x->kind != V_LAYER || !c->f)
            return node_fail(m, e, "adding two constants is not supported");
        return fold_bias(m, x, c, e);
    }
    for (int i = 0; i < n; i++)
        if (!(in[i] = layer_input(m, i, e)))
            return e->code;
    if (n == 1)
        return alias(m, in[0], e);
    long axis = 0;
    int r;
    if (!strcmp(type, "concat")) {
        if ((r = attr_int(m, "axis", -4, 4, 1, &axis, e)))
            return r;
        if (axis == 0)
            return node_fail(m, e, "concatenation along the batch axis is not supported");
    }
    cJSON *L = new_layer(m, type, in, n, e);
    if (!L)
        return e->code;
    if (!strcmp(type, "concat"))
        cJSON_AddNumberToObject(L, "axis", (double)(axis > 0 ? axis - 1 : axis));
    return probe(m, e);
}

static int op_constant(im *m, nn_err *e)
{
    const Onnx__AttributeProto *a = attr(m->node, "value");
    if (!a || !a->t || m->node->n_attribute != 1)
        return node_fail(m, e, "only a Constant with a 'value' tensor is supported");
    val *o = add_val(m, m->node->output[0], e);
    if (!o)
        return e->code;
    o->kind = V_CONST;
    int r = decode(m, a->t, "constant", o, e);
    o->cname = o->name;
    return r;
}

static int convert_node(im *m, nn_err *e)
{
    const Onnx__NodeProto *n = m->node;
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return node_fail(m, e, "operator domain '%.100s' is not supported", n->domain);
    if (n->n_output < 1 || !n->output[0][0])
        return node_fail(m, e, "the node has no output");
    static const struct { const char *op, *type; } simple[] = {
        {"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"LeakyRelu", "leaky_relu"}, {"Elu", "elu"},
        {"Softmax", "softmax"}, {"Flatten", "flatten"}, {"GlobalAveragePool", "global_avgpool"},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (!strcmp(op, simple[i].op))
            return op_simple(m, simple[i].type, e);
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        return op_gemm(m, op[0] == 'M', e);
    if (!strcmp(op, "Conv"))
        return op_conv(m, e);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return op_pool(m, op[0] == 'M', e);
    if (!strcmp(op, "BatchNormalization") || !strcmp(op, "LayerNormalization"))
        return op_norm(m, op[0] == 'L', e);
    if (!strcmp(op, "Add") || !strcmp(op, "Sum"))
        return op_merge(m, "add", e);
    if (!strcmp(op, "Concat"))
        return op_merge(m, "concat", e);
    if (!strcmp(op, "Reshape"))
        return op_reshape(m, e);
    if (!strcmp(op, "Sub") || !strcmp(op, "Div") || !strcmp(op, "Mul"))
        return op_normalize(m, op, e);
    if (!strcmp(op, "Constant"))
        return op_constant(m, e);
    if (!strcmp(op, "Pad")) { /* torch exports AvgPool2d with a Pad of zeros before it */
        val *x = layer_input(m, 0, e), *p = x ? const_input(m, 1, 0, e) : NULL;
        if (!p)
            return e->code;
        for (size_t i = 0; i < p->n; i++)
            if (p->i[i])
                return node_fail(m, e, "only a Pad of zeros (no padding) is supported; pad in the Conv or pool");
        return alias(m, x, e);
    }
    if (!strcmp(op, "Dropout") || !strcmp(op, "Identity")) {
        val *x = layer_input(m, 0, e);
        int r = x ? only_first_output(m, e) : e->code;
        return r ? r : alias(m, x, e);
    }
    return node_fail(m, e, "operator not supported by nnrun import (supported: Gemm, MatMul, Conv, MaxPool, "
                           "AveragePool, GlobalAveragePool, BatchNormalization, LayerNormalization, Relu, Sigmoid, "
                           "Tanh, LeakyRelu, Elu, Softmax, Flatten, Reshape, Add, Sum, Concat, Dropout, Identity, "
                           "Constant, Pad of nothing, and Sub/Div/Mul as the input normalisation)");
}

/* ------------------------------------------------------------------ model */

static const char *meta(const Onnx__ModelProto *p, const char *key)
{
    for (size_t i = 0; i < p->n_metadata_props; i++)
        if (p->metadata_props[i]->key && !strcmp(p->metadata_props[i]->key, key))
            return p->metadata_props[i]->value;
    return NULL;
}

/* The graph input: one float tensor [batch, d1..dk], k = 1..3, known dims. */
static int graph_input(im *m, nn_err *e)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < m->g->n_input; i++) {
        const char *nm = m->g->input[i]->name;
        if (!nm || find(m, nm))
            continue; /* an initializer listed as an input (older exporters) */
        if (in)
            return nn_fail(e, NN_EDATA, "%s: the graph has several inputs ('%.200s', '%.200s'); nnrun models have one",
                           m->file, in->name, nm);
        in = m->g->input[i];
    }
    if (!in)
        return nn_fail(e, NN_EDATA, "%s: the graph has no input", m->file);
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->has_elem_type ||
        tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !tp->tensor_type->shape)
        return nn_fail(e, NN_EDATA, "%s: input '%.200s': expected a float tensor with a shape", m->file, in->name);
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (sh->n_dim < 2 || sh->n_dim > 4)
        return nn_fail(e, NN_EDATA, "%s: input '%.200s': %zu dimensions; nnrun takes [batch, features], [batch, "
                                    "time, features] or [batch, channels, height, width]", m->file, in->name,
                       sh->n_dim);
    size_t total = 1;
    m->in_shape.nd = (int)sh->n_dim - 1;
    for (size_t i = 1; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value < 1 ||
            d->dim_value > (1 << 24) || (total *= (size_t)d->dim_value) > (size_t)(1 << 24))
            return nn_fail(e, NN_EDATA, "%s: input '%.200s': dimension %zu must be a known size (1 to 2^24 values "
                                        "per sample)", m->file, in->name, i);
        m->in_shape.d[i - 1] = (int)d->dim_value;
    }
    val *v = add_val(m, in->name, e);
    if (!v)
        return e->code;
    v->kind = V_LAYER;
    v->layer = -1;
    return 0;
}

/* Loss and class names: from nnrun's metadata when present, else a
 * softmax/logits model is a classifier and a one-unit sigmoid binary. */
static int finish(im *m, const Onnx__ModelProto *p, const char *loss_opt, nn_err *e)
{
    const cJSON *last = cJSON_GetArrayItem(m->layers, m->nl - 1);
    const char *type = cJSON_GetObjectItem(last, "type")->valuestring;
    const nn_shape *os = &m->shape[m->nl - 1];
    int units = os->d[os->nd - 1];
    const char *loss = loss_opt ? loss_opt : meta(p, "loss");
    if (!loss)
        loss = units == 1 && !strcmp(type, "sigmoid") ? "binary_cross_entropy" : "cross_entropy";
    if (strcmp(loss, "cross_entropy") && strcmp(loss, "binary_cross_entropy") && strcmp(loss, "mse"))
        return nn_fail(e, NN_EDATA, "%s: metadata loss '%.100s' is not one nnrun knows", m->file, loss);
    if (!strcmp(loss, "binary_cross_entropy") && units != 1)
        return nn_fail(e, NN_EDATA, "%s: a binary model needs one output unit; this one has %d", m->file, units);
    cJSON_AddStringToObject(m->root, "loss", loss);
    int k = !strcmp(loss, "mse") ? 0 : !strcmp(loss, "cross_entropy") ? units : 2;
    if (k && os->nd != 1)
        return nn_fail(e, NN_EDATA, "%s: a classifier's output must be [batch, classes] (use --loss mse)", m->file);
    const char *cm = meta(p, "classes");
    cJSON *cl = cm ? cJSON_Parse(cm) : NULL;
    int named = cl && cJSON_IsArray(cl) && cJSON_GetArraySize(cl) == k;
    m->c.classes = k ? calloc((size_t)k, sizeof(char *)) : NULL;
    for (int i = 0; i < k; i++) {
        const cJSON *it = named ? cJSON_GetArrayItem(cl, i) : NULL;
        char num[24];
        snprintf(num, sizeof num, "%d", i);
        if (m->c.classes)
            m->c.classes[i] = nn_strdup(cJSON_IsString(it) ? it->valuestring : num);
        if (!m->c.classes || !m->c.classes[i]) {
            cJSON_Delete(cl);
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
        }
        m->c.nclasses = i + 1;
    }
    cJSON_Delete(cl);
    return 0;
}

static int convert(im *m, const Onnx__ModelProto *p, const char *loss_opt, nn_err *e)
{
    const Onnx__GraphProto *g = p->graph;
    if (!g)
        return nn_fail(e, NN_EDATA, "%s: not an ONNX model (no graph)", m->file);
    m->g = g;
    for (size_t i = 0; i < p->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = p->opset_import[i];
        if ((!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) && o->has_version &&
            (o->version < 7 || o->version > 21))
            return nn_fail(e, NN_EDATA, "%s: opset %lld is not supported (7 to 21)", m->file, (long long)o->version);
    }
    if (g->n_node > MAX_NODES)
        return nn_fail(e, NN_EDATA, "%s: %zu nodes exceed nnrun's limit of %d", m->file, g->n_node, MAX_NODES);
    if (g->n_initializer > MAX_VALUES / 2)
        return nn_fail(e, NN_EDATA, "%s: %zu initializers exceed nnrun's limit of %d", m->file, g->n_initializer,
                       MAX_VALUES / 2);
    size_t nvals = g->n_initializer + g->n_input + 1;
    for (size_t i = 0; i < g->n_node; i++)
        nvals += g->node[i]->n_output;
    if (nvals > MAX_VALUES)
        return nn_fail(e, NN_EDATA, "%s: %zu values exceed nnrun's limit of %d", m->file, nvals, MAX_VALUES);
    for (m->hcap = 64; m->hcap < 2 * nvals; m->hcap *= 2)
        ;
    m->v = calloc(nvals, sizeof *m->v);
    m->hash = calloc(m->hcap, sizeof *m->hash);
    m->shape = calloc(g->n_node + 1, sizeof *m->shape);
    m->root = cJSON_CreateObject();
    m->layers = cJSON_CreateArray();
    if (!m->root || (m->layers && !cJSON_AddItemToObject(m->root, "layers", m->layers))) {
        cJSON_Delete(m->layers);
        m->layers = NULL;
    }
    if (!m->v || !m->hash || !m->shape || !m->root || !m->layers)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    int r;
    for (size_t i = 0; i < g->n_initializer; i++) {
        val *v = add_val(m, g->initializer[i]->name, e);
        if (!v)
            return nn_wrap(e, "initializer %zu: ", i);
        v->kind = V_CONST;
        if ((r = decode(m, g->initializer[i], "initializer", v, e)))
            return r;
    }
    if ((r = graph_input(m, e)))
        return r;
    cJSON_AddStringToObject(m->root, "name", g->name && g->name[0] ? g->name : "onnx");
    cJSON *in = cJSON_AddObjectToObject(m->root, "input");
    int d[NN_MAX_DIMS];
    for (int i = 0; i < m->in_shape.nd; i++)
        d[i] = m->in_shape.d[i];
    cJSON_AddItemToObject(in, "shape", cJSON_CreateIntArray(d, m->in_shape.nd));
    cJSON_AddStringToObject(m->root, "loss", "mse"); /* while probing; set by finish() */
    for (size_t i = 0; i < g->n_node; i++) {
        m->node = g->node[i];
        m->nodeidx = (int)i;
        if ((r = convert_node(m, e)))
            return r;
    }
    m->node = NULL;
    if (g->n_output != 1 || !g->output[0]->name)
        return nn_fail(e, NN_EDATA, "%s: the graph has %zu outputs; nnrun models have one", m->file, g->n_output);
    const val *o = find(m, g->output[0]->name);
    if (!o || o->kind != V_LAYER || o->layer < 0)
        return nn_fail(e, NN_EDATA, "%s: output '%.200s' is not computed by any layer", m->file, g->output[0]->name);
    if (o->layer != m->nl - 1)
        return nn_fail(e, NN_EDATA, "%s: output '%.200s' is not computed by the last node (nodes after it are unused)",
                       m->file, g->output[0]->name);
    cJSON_DeleteItemFromObject(m->root, "loss");
    if ((r = finish(m, p, loss_opt, e)))
        return r;
    if (m->normalized) {
        cJSON *nz = cJSON_AddObjectToObject(in, "normalize");
        cJSON_AddItemToObject(nz, "mean", cJSON_CreateFloatArray(m->c.mean, m->c.nnorm));
        cJSON_AddItemToObject(nz, "std", cJSON_CreateFloatArray(m->c.std, m->c.nnorm));
    }
    return 0;
}

/* The tensors must be exactly the net's parameters: checks every one. */
static int check_params(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    im *m = ctx;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, p->name);
    nn_ckpt_tensor *t = (nn_ckpt_tensor *)nn_ckpt_find(&m->c, name);
    if (!t || t->length != p->n)
        return nn_fail(e, NN_ESOFTWARE, "%s: internal error: tensor %s does not match the model", m->file, name);
    t->ndim = p->shape.nd;
    for (int i = 0; i < p->shape.nd; i++)
        t->shape[i] = p->shape.d[i];
    return 0;
}

int nn_onnx_parse(const unsigned char *buf, size_t len, const char *name, const char *loss, nn_ckpt *c, nn_err *e)
{
    memset(c, 0, sizeof *c);
    Onnx__ModelProto *p = onnx__model_proto__unpack(NULL, len, buf);
    if (!p)
        return nn_fail(e, NN_EDATA, "%s: not a valid ONNX model (the protobuf does not parse: truncated, corrupt or "
                                    "not ONNX)", name);
    im m;
    memset(&m, 0, sizeof m);
    m.file = name;
    int r = convert(&m, p, loss, e);
    char *txt = NULL;
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    memset(&net, 0, sizeof net);
    if (!r && !(txt = cJSON_PrintUnformatted(m.root)))
        r = nn_fail(e, NN_ESOFTWARE, "out of memory");
    if (!r)
        r = nn_spec_parse(txt, strlen(txt), name, &s, e);
    if (!r)
        r = nn_net_build(&net, &s, e);
    if (!r)
        r = nn_net_each_param(&net, check_params, &m, e);
    if (!r) {
        *c = m.c; /* the tensors, classes and normalisation move to the caller */
        c->model_json = txt;
        txt = NULL;
        memset(&m.c, 0, sizeof m.c);
    }
    nn_net_free(&net);
    nn_spec_free(&s);
    free(txt);
    for (size_t i = 0; i < m.nv; i++) {
        free(m.v[i].f);
        free(m.v[i].i);
    }
    free(m.v);
    free(m.hash);
    free(m.shape);
    cJSON_Delete(m.root);
    nn_ckpt_free(&m.c);
    onnx__model_proto__free_unpacked(p, NULL);
    return r;
}

int nn_onnx_import(const char *in, const char *out, const char *loss, nn_err *e)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int r = nn_read_file(in, (size_t)NN_ONNX_MAX_BYTES, &buf, &len, e);
    if (r)
        return r;
    nn_ckpt c;
    r = nn_onnx_parse(buf, len, in, loss, &c, e);
    free(buf);
    if (!r)
        r = nn_ckpt_write(out, &c, e);
    nn_ckpt_free(&c);
    return r;
}
