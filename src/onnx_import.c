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
#include <strings.h>

#include <cjson/cJSON.h>

#include "modelbin.h"
#include "net.h"
#include "onnx.h"
#include "onnx.pb-c.h"
#include "util.h"

#define MAX_NODES 1000        /* each node re-validates the model built so far (quadratic) */
#define MAX_VALUES 200000
#define MAX_ELEMS (1L << 30)  /* values in one initializer */

/* V_LAYER: a layer's output (or the input); V_CONST: an initializer or
 * Constant; the rest are steps of patterns that become one layer:
 * V_NORM_SUB (input - mean), V_SHAPE (computed from Shape: only for zero
 * states), V_ZEROS (ConstantOfShape 0: an RNN's initial state), V_ROUND and
 * V_IDS (Round/Cast of token ids, for Gather), V_GELU (stage 1 to 4 of
 * x * 0.5 * (1 + erf(x / sqrt 2))), V_DENORM (x * std, before + mean),
 * V_ATT (a step of nnrun's decomposed attention, op_attention). */
enum { V_LAYER, V_CONST, V_NORM_SUB, V_SHAPE, V_ZEROS, V_ROUND, V_IDS, V_GELU, V_DENORM, V_ATT };

typedef struct val val;
struct val {
    const char *name;
    int kind;
    int layer;          /* V_LAYER: the producing layer, -1 = the network input */
    int tmajor;         /* V_LAYER: in [T, N, F] layout (after a Transpose) */
    int part;           /* V_LAYER of an LSTM/GRU: 1 = Y [T, 1, N, H], 2 = Y_h [1, N, H]; V_ATT: q, k, v */
    int stage;          /* V_GELU: 1 scaled, 2 erf, 3 erf + 1, 4 times x; V_ATT: see op_attention */
    const val *base;    /* V_GELU, V_DENORM: the layer value x */
    /* V_CONST (and V_NORM_SUB: the mean) */
    const char *cname;  /* initializer or node name, for messages */
    int nd;
    int64_t dims[8];
    size_t n;
    float *f;           /* owned */
    int64_t *i;         /* owned (integer tensors) */
};

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
    nn_modelbin c;
    int ct;             /* tensors allocated in c */
    int normalized;
    struct att {        /* the attention being read (op_attention) */
        int layer, T, D, heads, causal, pending, active;
    } att;
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
    int isf = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, isi = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (!isf && !isi)
        return TFAIL("data type %d is not supported (float32 weights and int64 shapes only)", m->file, what, nm, type);
    /* the data present must match the dimensions before anything is allocated */
    size_t es = isf ? 4 : 8, have = isf ? t->n_float_data : t->n_int64_data;
    int raw = t->has_raw_data && t->raw_data.len;
    if (raw ? t->raw_data.len != es * n : have != n)
        return TFAIL("%zu %s for dimensions holding %zu values", m->file, what, nm, raw ? t->raw_data.len : have,
                     raw ? "bytes of raw data" : isf ? "float values" : "int64 values", n);
    void *dst = malloc(es * (n ? n : 1));
    if (!dst)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    if (isf)
        v->f = dst;
    else
        v->i = dst;
    for (size_t i = 0; raw && i < n; i++) { /* little-endian, whatever the host */
        uint64_t u = 0;
        for (size_t b = es; b-- > 0;)
            u = u << 8 | t->raw_data.data[es * i + b];
        if (isf) {
            uint32_t u32 = (uint32_t)u;
            memcpy(&v->f[i], &u32, 4);
        } else {
            memcpy(&v->i[i], &u, 8);
        }
    }
    if (!raw)
        memcpy(dst, isf ? (const void *)t->float_data : (const void *)t->int64_data, es * n);
    return 0;
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
        node_fail(m, e, "input '%.200s' must be computed from the network input%s", v->name,
                  v->kind == V_CONST ? ", not a constant" : " (it is part of a pattern this node does not continue)");
        return NULL;
    }
    if (v && (v->tmajor || v->part)) {
        node_fail(m, e, "input '%.200s' is %s; only Transpose, Squeeze, Gather or LSTM/GRU may read it", v->name,
                  v->part ? "an LSTM/GRU's raw output" : "in time-major [T, N, F] layout");
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
        nn_modelbin_tensor *t = realloc(m->c.tensors, sizeof *t * (size_t)nc);
        if (!t)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        m->c.tensors = t;
        m->ct = nc;
    }
    nn_modelbin_tensor *t = &m->c.tensors[m->c.ntensors];
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
        return nn_fail(e, NN_ENOMEM, "out of memory");
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
        return nn_fail(e, NN_ENOMEM, "out of memory");
    nn_spec s;
    nn_net net;
    memset(&s, 0, sizeof s);
    memset(&net, 0, sizeof net);
    int r = nn_spec_parse(txt, strlen(txt), m->file, &s, e);
    if (!r)
        r = nn_net_build(&net, &s, &s.input, 0, e); /* the JSON names every size */
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
static cJSON *new_layer_out(im *m, const char *type, val **in, int nin, const char *out, nn_err *e)
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
        nn_fail(e, NN_ENOMEM, "out of memory");
        return NULL;
    }
    cJSON_AddStringToObject(L, "type", type);
    cJSON_AddStringToObject(L, "name", name);
    for (int i = 0; i < nin; i++)
        cJSON_AddItemToArray(ins, cJSON_CreateString(layer_name(m, in[i]->layer)));
    cJSON_AddItemToObject(L, "inputs", ins);
    cJSON_AddItemToArray(m->layers, L);
    m->nl++;
    val *o = add_val(m, out, e);
    if (!o)
        return NULL;
    o->kind = V_LAYER;
    o->layer = m->nl - 1;
    return L;
}

static cJSON *new_layer(im *m, const char *type, val **in, int nin, nn_err *e)
{
    return new_layer_out(m, type, in, nin, m->node->output[0], e);
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

static int op_arith(im *m, const char *op, nn_err *e);
static val *pattern_val(im *m, const val *x, int kind, nn_err *e);

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
        return nn_fail(e, NN_ENOMEM, "out of memory");
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
 * layer's output: the constant becomes its bias (MatMul + Add); the same
 * after an embedding without positions: they become its positions. */
static int fold_bias(im *m, val *x, val *b, nn_err *e)
{
    cJSON *L = x->layer >= 0 ? cJSON_GetArrayItem(m->layers, x->layer) : NULL;
    if (L && !strcmp(cJSON_GetObjectItem(L, "type")->valuestring, "embedding") &&
        !cJSON_GetObjectItem(L, "positional") && uses(m, x->name) == 1 && x->layer == m->nl - 1) {
        const nn_shape *s = shape_of(m, x);
        if (b->n != nn_shape_size(s))
            return node_fail(m, e, "the positions '%.200s' have %zu values for a [%d, %d] embedding", b->name, b->n,
                             s->d[0], s->d[1]);
        cJSON_AddTrueToObject(L, "positional");
        long pd[2] = {s->d[0], s->d[1]};
        int r = add_tensor(m, cJSON_GetObjectItem(L, "name")->valuestring, "position", 2, pd, b->f, e);
        return r ? r : alias(m, x, e);
    }
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
        return nn_fail(e, NN_ENOMEM, "out of memory");
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
            return nn_fail(e, NN_ENOMEM, "out of memory");
        memcpy(o->f, c->f, sizeof(float) * c->n);
        return 0;
    }
    size_t k = x->n > c->n ? x->n : c->n;
    m->c.mean = malloc(sizeof(float) * k);
    m->c.std = malloc(sizeof(float) * k);
    if (!m->c.mean || !m->c.std)
        return nn_fail(e, NN_ENOMEM, "out of memory");
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
    if (!strcmp(type, "add") && n == 2 && (in[0]->kind != V_LAYER || in[1]->kind != V_LAYER))
        return op_arith(m, "Add", e);
    for (int i = 0; i < n; i++) /* the shape computation of an RNN's zero state */
        if (in[i]->kind == V_SHAPE)
            return pattern_val(m, NULL, V_SHAPE, e) ? 0 : e->code;
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

/* ------------------------------------------- sequences and small patterns */

/* A new value of a pattern kind (same layer as x). */
static val *pattern_val(im *m, const val *x, int kind, nn_err *e)
{
    val *o = add_val(m, m->node->output[0], e);
    if (o) {
        o->kind = kind;
        o->layer = x ? x->layer : -1;
        o->base = x && x->kind != V_LAYER ? x->base : x;
    }
    return o;
}

/* A pattern's intermediate value must feed only the next step. */
static int single_use(im *m, const val *v, nn_err *e)
{
    return uses(m, v->name) == 1 ? 0
                                 : node_fail(m, e, "'%.200s' is read by more than one node; only the whole pattern "
                                                   "is supported", v->name);
}

static int is_scalar(const val *c, double want)
{
    return c->kind == V_CONST && c->f && c->n == 1 && fabs(c->f[0] - want) < 1e-6 * fabs(want);
}

/* Shape, Unsqueeze, Concat, Gather over the batch size: only to build zeros. */
static int op_shape(im *m, nn_err *e)
{
    val *x = input(m, 0, e);
    return x && pattern_val(m, NULL, V_SHAPE, e) ? 0 : e->code;
}

static int op_constant_of_shape(im *m, nn_err *e)
{
    val *x = input(m, 0, e);
    if (!x)
        return e->code;
    const Onnx__AttributeProto *a = attr(m->node, "value");
    val z;
    memset(&z, 0, sizeof z);
    int r = a && a->t ? decode(m, a->t, "value", &z, e) : 0;
    int zero = !r && (!a || (z.f && z.n == 1 && z.f[0] == 0) || (z.i && z.n == 1 && z.i[0] == 0));
    free(z.f);
    free(z.i);
    if (r)
        return r;
    if (x->kind != V_SHAPE || !zero)
        return node_fail(m, e, "supported only as the zero initial state of an LSTM/GRU");
    return pattern_val(m, NULL, V_ZEROS, e) ? 0 : e->code;
}

static int op_unsqueeze(im *m, nn_err *e)
{
    val *x = input(m, 0, e);
    if (x && x->kind != V_SHAPE)
        return node_fail(m, e, "supported only in the shape computation of an LSTM/GRU's zero state");
    return x && pattern_val(m, NULL, V_SHAPE, e) ? 0 : e->code;
}

/* Transpose [N, T, F] <-> [T, N, F] around an LSTM/GRU. */
static int op_transpose(im *m, nn_err *e)
{
    val *x = input(m, 0, e);
    if (!x)
        return e->code;
    const Onnx__AttributeProto *a = attr(m->node, "perm");
    int swap = a && a->n_ints == 3 && a->ints[0] == 1 && a->ints[1] == 0 && a->ints[2] == 2;
    if (x->kind != V_LAYER || x->part || !swap || shape_of(m, x)->nd != 2)
        return node_fail(m, e, "only a Transpose with perm [1, 0, 2] of a [batch, time, features] value (around an "
                               "LSTM/GRU) is supported");
    val *o = pattern_val(m, x, V_LAYER, e);
    if (o)
        o->tmajor = !x->tmajor;
    return o ? 0 : e->code;
}

/* Squeeze of Y (axis 1: [T, N, H]) or of Y_h (axis 0: [N, H]). */
static int op_squeeze(im *m, nn_err *e)
{
    val *x = input(m, 0, e);
    if (!x)
        return e->code;
    long axis = -99;
    const Onnx__AttributeProto *a = attr(m->node, "axes");
    if (has_input(m->node, 1)) {
        val *ax = const_input(m, 1, 0, e);
        if (!ax)
            return e->code;
        if (ax->n == 1)
            axis = (long)ax->i[0];
    } else if (a && a->n_ints == 1) {
        axis = (long)a->ints[0];
    }
    if (x->kind != V_LAYER || !((x->part == 1 && axis == 1) || (x->part == 2 && (axis == 0 || axis == -3))))
        return node_fail(m, e, "only a Squeeze of an LSTM/GRU's direction axis (Y: axis 1, Y_h: axis 0) is supported");
    val *o = pattern_val(m, x, V_LAYER, e);
    if (o)
        o->tmajor = x->part == 1;
    return o ? 0 : e->code;
}

static int op_embedding(im *m, val *w, val *ids, nn_err *e);

/* Gather: of Y_h at step 0 (the last state), of a shape, or embedding rows. */
static int op_gather(im *m, nn_err *e)
{
    val *x = input(m, 0, e), *k = x ? input(m, 1, e) : NULL;
    if (!k)
        return e->code;
    long axis;
    int r = attr_int(m, "axis", -8, 8, 0, &axis, e);
    if (r)
        return r;
    if (x->kind == V_SHAPE)
        return pattern_val(m, NULL, V_SHAPE, e) ? 0 : e->code;
    if (x->kind == V_CONST && x->f && x->nd == 2 && k->kind == V_IDS && axis == 0)
        return op_embedding(m, x, k, e);
    if (x->kind == V_LAYER && x->part == 2 && axis == 0 && k->kind == V_CONST && k->i && k->n == 1 &&
        (k->i[0] == 0 || k->i[0] == -1)) {
        val *o = pattern_val(m, x, V_LAYER, e);
        return o ? 0 : e->code;
    }
    return node_fail(m, e, "supported only as an embedding (Gather of a constant [vocabulary, dim] table at token ids "
                           "from Cast) or to take an LSTM/GRU's last state");
}

/* Round and Cast of the input's token ids (before Gather). */
static int op_cast(im *m, int round, nn_err *e)
{
    val *x = input(m, 0, e);
    if (!x)
        return e->code;
    long to = 0;
    int r = round ? 0 : attr_int(m, "to", 0, 64, 0, &to, e);
    if (r)
        return r;
    int ok = round ? x->kind == V_LAYER && !x->tmajor && !x->part
                   : (x->kind == V_ROUND || (x->kind == V_LAYER && !x->tmajor && !x->part)) &&
                         (to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
    if (!ok)
        return node_fail(m, e, "supported only on token ids (Round, then Cast to int64 or int32) before a Gather");
    return pattern_val(m, x, round ? V_ROUND : V_IDS, e) ? 0 : e->code;
}

static int op_embedding(im *m, val *w, val *ids, nn_err *e)
{
    val x = *ids; /* the ids' layer, as a layer value */
    x.kind = V_LAYER;
    x.base = NULL;
    val *px = &x;
    if (shape_of(m, px)->nd != 1)
        return node_fail(m, e, "token ids must be [batch, sequence_length]");
    cJSON *L = new_layer(m, "embedding", &px, 1, e);
    if (!L)
        return e->code;
    cJSON_AddNumberToObject(L, "input_dim", (double)w->dims[0]);
    cJSON_AddNumberToObject(L, "output_dim", (double)w->dims[1]);
    long wd[2] = {(long)w->dims[0], (long)w->dims[1]};
    int r = add_tensor(m, cJSON_GetObjectItem(L, "name")->valuestring, "weight", 2, wd, w->f, e);
    return r ? r : probe(m, e);
}

/* LSTM / GRU (forward, PyTorch's formulation) on a time-major value. */
static int op_rnn(im *m, int lstm, nn_err *e)
{
    const Onnx__NodeProto *n = m->node;
    val *x = input(m, 0, e), *w = x ? const_input(m, 1, 1, e) : NULL, *rw = w ? const_input(m, 2, 1, e) : NULL;
    val *b = NULL;
    if (!rw)
        return e->code;
    if (x->kind != V_LAYER || !x->tmajor || x->part)
        return node_fail(m, e, "the input must be [time, batch, features]: a Transpose (perm [1, 0, 2]) of a "
                               "[batch, time, features] value, or a previous LSTM/GRU's squeezed Y");
    if (has_input(n, 3) && !(b = const_input(m, 3, 1, e)))
        return e->code;
    if (has_input(n, 4))
        return node_fail(m, e, "sequence_lens is not supported (every sequence has the full length)");
    for (size_t k = 5; k < n->n_input; k++) {
        val *z = has_input(n, k) ? input(m, (int)k, e) : NULL;
        if (has_input(n, k) && !z)
            return e->code;
        if (z && (k == 7 || z->kind != V_ZEROS))
            return node_fail(m, e, "input %zu: only zero initial states (absent or ConstantOfShape 0) and no "
                                   "peepholes are supported", k);
    }
    long H, lbr, ifg, layout;
    double clip;
    int r;
    if ((r = attr_int(m, "hidden_size", 1, 65536, 0, &H, e)) ||
        (r = attr_int(m, "linear_before_reset", lstm ? 0 : 1, 1, lstm ? 0 : 1, &lbr, e)) ||
        (r = attr_int(m, "input_forget", 0, 0, 0, &ifg, e)) || (r = attr_int(m, "layout", 0, 0, 0, &layout, e)) ||
        (r = attr_float(m, "clip", 0, &clip, e)))
        return r;
    if (attr(n, "activations") || attr(n, "clip") ||
        (attr(n, "direction") && !attr_str_is(n, "direction", "forward")))
        return node_fail(m, e, "only the default activations, no clip and direction forward are supported");
    int K = lstm ? 4 : 3, F = shape_of(m, x)->d[1];
    if (w->nd != 3 || w->dims[0] != 1 || w->dims[1] != K * H || w->dims[2] != F || rw->nd != 3 || rw->dims[0] != 1 ||
        rw->dims[1] != K * H || rw->dims[2] != H || (b && b->n != (size_t)(2 * K * H)))
        return node_fail(m, e, "W must be [1, %ld, %d], R [1, %ld, %ld] and B [1, %ld] (hidden_size %ld, %d input "
                               "features)", K * H, F, K * H, H, 2 * K * H, H, F);
    int useY = n->n_output > 0 && n->output[0][0] && uses(m, n->output[0]);
    int useH = n->n_output > 1 && n->output[1][0] && uses(m, n->output[1]);
    if (n->n_output > 2 && n->output[2][0] && uses(m, n->output[2]))
        return node_fail(m, e, "Y_c (the last cell state) is used; nnrun's LSTM gives Y or Y_h");
    if (useY == useH)
        return node_fail(m, e, "exactly one of Y (the sequence) and Y_h (the last state) must be used");
    /* the layer reads the batch-major value the Transpose came from */
    val bx = *x;
    bx.tmajor = 0;
    val *pbx = &bx;
    cJSON *L = new_layer_out(m, lstm ? "lstm" : "gru", &pbx, 1, n->output[useY ? 0 : 1], e);
    if (!L)
        return e->code;
    m->v[m->nv - 1].part = useY ? 1 : 2;
    cJSON_AddNumberToObject(L, "units", (double)H);
    cJSON_AddBoolToObject(L, "return_sequences", useY);
    cJSON_AddBoolToObject(L, "use_bias", b != NULL);
    /* ONNX gate q (LSTM i,o,f,c; GRU z,r,h) is nnrun's block map[q] (i,f,g,o; r,z,n) */
    static const int lmap[4] = {0, 3, 1, 2}, gmap[3] = {1, 0, 2};
    const int *map = lstm ? lmap : gmap;
    size_t KH = (size_t)K * H;
    float *wi = malloc(sizeof(float) * KH * F), *wh = malloc(sizeof(float) * KH * H);
    float *bi = calloc(KH, sizeof(float)), *bh = calloc(KH, sizeof(float));
    if (!wi || !wh || !bi || !bh) {
        r = nn_fail(e, NN_ENOMEM, "out of memory");
        goto out;
    }
    for (int q = 0; q < K; q++)
        for (long h = 0; h < H; h++) {
            size_t src = (size_t)q * H + h, dst = (size_t)map[q] * H + h;
            for (int f = 0; f < F; f++)
                wi[(size_t)f * KH + dst] = w->f[src * F + f];
            for (long f = 0; f < H; f++)
                wh[(size_t)f * KH + dst] = rw->f[src * H + f];
            if (b) {
                bi[dst] = b->f[src] + (lstm ? b->f[KH + src] : 0); /* nnrun's LSTM has one bias */
                bh[dst] = b->f[KH + src];
            }
        }
    const char *ln = cJSON_GetObjectItem(L, "name")->valuestring;
    long di[2] = {F, (long)KH}, dh[2] = {H, (long)KH}, db[1] = {(long)KH};
    if (!(r = add_tensor(m, ln, "weight_ih", 2, di, wi, e)) && !(r = add_tensor(m, ln, "weight_hh", 2, dh, wh, e)) &&
        b)
        r = lstm ? add_tensor(m, ln, "bias", 1, db, bi, e)
                 : (r = add_tensor(m, ln, "bias_ih", 1, db, bi, e)) ? r : add_tensor(m, ln, "bias_hh", 1, db, bh, e);
    if (!r)
        r = probe(m, e);
out:
    free(wi);
    free(wh);
    free(bi);
    free(bh);
    return r;
}

/* Mul, Div, Add, Sub, Erf that are not a merge: the input normalisation,
 * GELU (x * 0.5 * (1 + erf(x / sqrt 2)), as PyTorch and nnrun export it),
 * denormalize (x * std + mean), a MatMul's bias, an embedding's positions. */
static int op_arith(im *m, const char *op, nn_err *e)
{
    val *a = input(m, 0, e), *b = a && strcmp(op, "Erf") ? input(m, 1, e) : NULL;
    if (!a || (strcmp(op, "Erf") && !b))
        return e->code;
    if (!strcmp(op, "Erf")) {
        if (a->kind != V_GELU || a->stage != 1)
            return node_fail(m, e, "Erf is supported only inside GELU (x * 0.5 * (1 + erf(x / sqrt 2)))");
        val *o = single_use(m, a, e) ? NULL : pattern_val(m, a, V_GELU, e);
        return o ? (o->stage = 2, 0) : e->code;
    }
    if (a->kind == V_NORM_SUB || (!strcmp(op, "Sub") && a->kind == V_LAYER && a->layer < 0))
        return op_normalize(m, op, e);
    int mul = !strcmp(op, "Mul"), add = !strcmp(op, "Add");
    if ((mul || add) && b->kind != V_CONST && a->kind == V_CONST) { /* constant first: swap */
        val *t = a;
        a = b;
        b = t;
    }
    val *o;
    if (a->kind == V_LAYER && !a->tmajor && !a->part &&
        ((mul && is_scalar(b, M_SQRT1_2)) || (!strcmp(op, "Div") && is_scalar(b, M_SQRT2)))) {
        if (!(o = pattern_val(m, a, V_GELU, e)))
            return e->code;
        o->stage = 1;
        return 0;
    }
    if (add && a->kind == V_GELU && a->stage == 2 && is_scalar(b, 1.0)) {
        if (single_use(m, a, e) || !(o = pattern_val(m, a, V_GELU, e)))
            return e->code;
        o->stage = 3;
        return 0;
    }
    if (mul && (a->kind == V_GELU || b->kind == V_GELU)) {
        val *g = a->kind == V_GELU ? a : b, *other = g == a ? b : a;
        if (g->stage == 3 && other->kind == V_LAYER && other->layer == g->base->layer && !other->tmajor &&
            !other->part) {
            if (single_use(m, g, e) || !(o = pattern_val(m, g, V_GELU, e)))
                return e->code;
            o->stage = 4;
            return 0;
        }
        if (g->stage == 4 && is_scalar(other, 0.5)) {
            if (single_use(m, g, e))
                return e->code;
            val *x = (val *)g->base;
            return new_layer(m, "gelu", &x, 1, e) ? probe(m, e) : e->code;
        }
    }
    if (mul && a->kind == V_LAYER && !a->tmajor && !a->part && b->kind == V_CONST && b->f &&
        b->n == (size_t)shape_of(m, a)->d[shape_of(m, a)->nd - 1]) {
        if (!(o = pattern_val(m, a, V_DENORM, e)))
            return e->code;
        o->f = malloc(sizeof(float) * b->n); /* the std */
        if (!o->f)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        memcpy(o->f, b->f, sizeof(float) * b->n);
        o->n = b->n;
        return 0;
    }
    if (add && a->kind == V_DENORM && b->kind == V_CONST && b->f && b->n == a->n) {
        if (single_use(m, a, e))
            return e->code;
        val *x = (val *)a->base;
        cJSON *L = new_layer(m, "denormalize", &x, 1, e);
        if (!L)
            return e->code;
        const char *ln = cJSON_GetObjectItem(L, "name")->valuestring;
        long d[1] = {(long)a->n};
        int r = add_tensor(m, ln, "mean", 1, d, b->f, e);
        if (!r)
            r = add_tensor(m, ln, "std", 1, d, a->f, e);
        return r ? r : probe(m, e);
    }
    if (add && a->kind == V_LAYER && b->kind == V_CONST && b->f)
        return fold_bias(m, a, b, e);
    return node_fail(m, e, "%s is supported only in the input normalisation, GELU, denormalize (x * std + mean), "
                           "a MatMul's bias or an embedding's positions", op);
}

/* ---------------------------------------------------------------- attention */

/* The attention nnrun export writes, read back step by step (stage):
 *   QKV = x W_qkv (+ b): imported as a dense layer, then Split into q, k, v (1)
 *   Reshape [0, T, heads, dh] (2), Transpose q, v [0, 2, 1, 3], k [0, 2, 3, 1] (3)
 *   MatMul q k (4), Mul 1/sqrt(dh) (5), Add of the causal mask (6), Softmax (7),
 *   MatMul with v (8), Transpose [0, 2, 1, 3] (9), Reshape [0, T, D] (10),
 *   MatMul W_out (11: the dense layer becomes an attention layer), Add b_out.
 * Each intermediate value must feed only the next step. */
static int att_fail(im *m, nn_err *e)
{
    return node_fail(m, e, "not the multi-head attention pattern nnrun export writes (Split, Reshape, Transpose, "
                           "MatMul, Mul, [Add mask], Softmax, MatMul, Transpose, Reshape, MatMul [, Add])");
}

static val *att_step(im *m, const val *from, int stage, nn_err *e)
{
    if (single_use(m, from, e))
        return NULL;
    val *o = add_val(m, m->node->output[0], e);
    if (o) {
        o->kind = V_ATT;
        o->stage = stage;
        o->part = from->part; /* q/k/v: 0/1/2 */
        o->layer = from->layer;
    }
    return o;
}

/* The int64 constant input k equals want[0..n). */
static int ints_are(im *m, int k, const int64_t *want, size_t n)
{
    const val *c = has_input(m->node, (size_t)k) ? find(m, m->node->input[k]) : NULL;
    if (!c || c->kind != V_CONST || !c->i || c->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (c->i[i] != want[i])
            return 0;
    return 1;
}

static int perm_is(const Onnx__NodeProto *n, const int64_t *p)
{
    const Onnx__AttributeProto *a = attr(n, "perm");
    return a && a->n_ints == 4 && !memcmp(a->ints, p, 4 * sizeof *p);
}

static int op_attention(im *m, const char *op, nn_err *e)
{
    const Onnx__NodeProto *n = m->node;
    struct att *A = &m->att;
    val *a = input(m, 0, e);
    if (!a)
        return e->code;
    if (!strcmp(op, "Split")) {
        cJSON *L = a->kind == V_LAYER && a->layer >= 0 ? cJSON_GetArrayItem(m->layers, a->layer) : NULL;
        const nn_shape *s = a->kind == V_LAYER ? shape_of(m, a) : NULL;
        long axis;
        int r = attr_int(m, "axis", -3, 2, 0, &axis, e);
        if (r)
            return r;
        if (!L || strcmp(cJSON_GetObjectItem(L, "type")->valuestring, "dense") || a->layer != m->nl - 1 ||
            s->nd != 2 || s->d[1] % 3 || (axis != -1 && axis != 2) || n->n_output != 3 || a->tmajor || a->part)
            return node_fail(m, e, "Split is supported only as the Q/K/V split of nnrun's attention");
        int64_t D = s->d[1] / 3, sp[3] = {D, D, D};
        if (has_input(n, 1) ? !ints_are(m, 1, sp, 3) : (attr(n, "split") && attr(n, "split")->n_ints != 3))
            return att_fail(m, e);
        if (single_use(m, a, e))
            return e->code;
        if (A->active)
            return node_fail(m, e, "a second attention starts before the first one ends");
        memset(A, 0, sizeof *A);
        A->active = 1;
        A->layer = a->layer;
        A->T = s->d[0];
        A->D = (int)D;
        for (int i = 0; i < 3; i++) {
            val *o = add_val(m, n->output[i], e);
            if (!o)
                return e->code;
            o->kind = V_ATT;
            o->stage = 1;
            o->part = i;
            o->layer = a->layer;
        }
        return 0;
    }
    if (a->kind != V_ATT)
        return att_fail(m, e);
    val *b = n->n_input > 1 ? input(m, 1, e) : NULL;
    if (n->n_input > 1 && !b)
        return e->code;
    int st = a->stage;
    val *o = NULL;
    if (!strcmp(op, "Reshape") && st == 1) {
        const val *c = has_input(n, 1) ? find(m, n->input[1]) : NULL;
        if (!c || c->kind != V_CONST || !c->i || c->n != 4 || c->i[0] != 0 || c->i[1] != A->T || c->i[2] < 1 ||
            c->i[3] < 1 || c->i[2] > A->D || c->i[3] > A->D || c->i[2] * c->i[3] != A->D ||
            (A->heads && A->heads != c->i[2]))
            return att_fail(m, e);
        A->heads = (int)c->i[2];
        o = att_step(m, a, 2, e);
    } else if (!strcmp(op, "Transpose") && st == 2) {
        static const int64_t pq[4] = {0, 2, 1, 3}, pk[4] = {0, 2, 3, 1};
        if (!perm_is(n, a->part == 1 ? pk : pq))
            return att_fail(m, e);
        o = att_step(m, a, 3, e);
    } else if (!strcmp(op, "MatMul") && st == 3 && a->part == 0 && b && b->kind == V_ATT && b->stage == 3 &&
               b->part == 1) {
        if (!single_use(m, b, e))
            o = att_step(m, a, 4, e);
    } else if (!strcmp(op, "Mul") && st == 4 && b && is_scalar(b, 1.0 / sqrt((double)(A->D / A->heads)))) {
        o = att_step(m, a, 5, e);
    } else if (!strcmp(op, "Add") && st == 5 && b && b->kind == V_CONST && b->f && b->n == (size_t)A->T * A->T) {
        for (int i = 0; i < A->T; i++)
            for (int j = 0; j < A->T; j++) {
                float v = b->f[(size_t)i * A->T + j];
                if (j > i ? v > -1e4f : v != 0)
                    return node_fail(m, e, "the attention mask must be causal: 0 on and below the diagonal, at "
                                           "most -1e4 above");
            }
        A->causal = 1;
        o = att_step(m, a, 6, e);
    } else if (!strcmp(op, "Softmax") && (st == 5 || st == 6)) {
        long axis;
        int r = attr_int(m, "axis", -4, 3, -1, &axis, e);
        if (r)
            return r;
        if (axis != -1 && axis != 3)
            return att_fail(m, e);
        o = att_step(m, a, 7, e);
    } else if (!strcmp(op, "MatMul") && st == 7 && b && b->kind == V_ATT && b->stage == 3 && b->part == 2) {
        if (!single_use(m, b, e))
            o = att_step(m, a, 8, e);
    } else if (!strcmp(op, "Transpose") && st == 8) {
        static const int64_t p[4] = {0, 2, 1, 3};
        if (!perm_is(n, p))
            return att_fail(m, e);
        o = att_step(m, a, 9, e);
    } else if (!strcmp(op, "Reshape") && st == 9) {
        int64_t sh[3] = {0, A->T, A->D};
        if (!ints_are(m, 1, sh, 3))
            return att_fail(m, e);
        o = att_step(m, a, 10, e);
    } else if (!strcmp(op, "MatMul") && st == 10 && b && b->kind == V_CONST && b->f && b->nd == 2 &&
               b->dims[0] == A->D && b->dims[1] == A->D && A->layer == m->nl - 1) {
        if (single_use(m, a, e))
            return e->code;
        /* the QKV dense layer becomes the attention layer */
        cJSON *D = cJSON_GetArrayItem(m->layers, A->layer);
        int bias = cJSON_IsTrue(cJSON_GetObjectItem(D, "use_bias"));
        char old[64];
        snprintf(old, sizeof old, "%s", cJSON_GetObjectItem(D, "name")->valuestring);
        cJSON_DeleteItemFromObject(D, "units");
        cJSON_ReplaceItemInObject(D, "type", cJSON_CreateString("attention"));
        cJSON_AddNumberToObject(D, "heads", A->heads);
        cJSON_AddBoolToObject(D, "causal", A->causal);
        for (int i = 0; i < m->c.ntensors; i++) { /* <old>.weight / .bias -> .weight_qkv / .bias_qkv */
            nn_modelbin_tensor *t = &m->c.tensors[i];
            size_t ol = strlen(old);
            if (strncmp(t->name, old, ol) || t->name[ol] != '.')
                continue;
            const char *p = t->name + ol + 1;
            if (strcmp(p, "weight") && strcmp(p, "bias"))
                continue;
            char *nn = malloc(ol + 16);
            if (!nn)
                return nn_fail(e, NN_ENOMEM, "out of memory");
            sprintf(nn, "%s.%s_qkv", old, p);
            free(t->name);
            t->name = nn;
        }
        long wd[2] = {A->D, A->D};
        int r = add_tensor(m, old, "weight_out", 2, wd, b->f, e);
        if (r)
            return r;
        if (bias) { /* the output bias follows */
            o = att_step(m, a, 11, e);
            A->pending = 1;
        } else {
            val *x = add_val(m, n->output[0], e);
            if (!x)
                return e->code;
            x->kind = V_LAYER;
            x->layer = A->layer;
            A->active = 0;
            return probe(m, e);
        }
    } else if (!strcmp(op, "Add") && st == 11 && b && b->kind == V_CONST && b->f && b->n == (size_t)A->D) {
        if (single_use(m, a, e))
            return e->code;
        cJSON *D = cJSON_GetArrayItem(m->layers, A->layer);
        long bd[1] = {A->D};
        int r = add_tensor(m, cJSON_GetObjectItem(D, "name")->valuestring, "bias_out", 1, bd, b->f, e);
        val *x = r ? NULL : add_val(m, n->output[0], e);
        if (!x)
            return e->code;
        x->kind = V_LAYER;
        x->layer = A->layer;
        A->pending = A->active = 0;
        return probe(m, e);
    } else {
        return att_fail(m, e);
    }
    return o ? 0 : e->code;
}

static int convert_node(im *m, nn_err *e)
{
    const Onnx__NodeProto *n = m->node;
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return node_fail(m, e, "operator domain '%.100s' is not supported", n->domain);
    int att = !strcmp(op, "Split");
    for (size_t i = 0; i < n->n_input && !att; i++) {
        const val *v = find(m, n->input[i]);
        att = v && v->kind == V_ATT;
    }
    if (att && n->n_output >= 1)
        return op_attention(m, op, e);
    if (!strcmp(op, "LSTM") || !strcmp(op, "GRU")) /* Y may be absent when Y_h is used */
        return op_rnn(m, op[0] == 'L', e);
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
    if (!strcmp(op, "Sub") || !strcmp(op, "Div") || !strcmp(op, "Mul") || !strcmp(op, "Erf"))
        return op_arith(m, op, e);
    if (!strcmp(op, "Transpose"))
        return op_transpose(m, e);
    if (!strcmp(op, "Squeeze"))
        return op_squeeze(m, e);
    if (!strcmp(op, "Gather"))
        return op_gather(m, e);
    if (!strcmp(op, "Round") || !strcmp(op, "Cast"))
        return op_cast(m, op[0] == 'R', e);
    if (!strcmp(op, "Shape"))
        return op_shape(m, e);
    if (!strcmp(op, "Unsqueeze"))
        return op_unsqueeze(m, e);
    if (!strcmp(op, "ConstantOfShape"))
        return op_constant_of_shape(m, e);
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
                           "Constant, Pad of nothing, LSTM, GRU (with Transpose, Squeeze, Gather and the zero state's "
                           "Shape/ConstantOfShape), Gather embeddings (after Round/Cast), Sub/Div/Mul/Add/Erf as "
                           "the input normalisation, GELU or denormalize, and Split/Reshape/Transpose/MatMul as nnrun's "
                           "attention)");
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
    if (k == 2 && os->nd != 1) /* cross-entropy also takes [batch, positions, classes] (text models) */
        return nn_fail(e, NN_EDATA, "%s: a binary model's output must be [batch, 1] (use --loss mse)", m->file);
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
            return nn_fail(e, NN_ENOMEM, "out of memory");
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
        return nn_fail(e, NN_ENOMEM, "out of memory");
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
    if (m->att.active)
        return nn_fail(e, NN_EDATA, "%s: an attention pattern (from its Split) does not end", m->file);
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
    nn_modelbin_tensor *t = (nn_modelbin_tensor *)nn_modelbin_find(&m->c, name);
    if (!t || t->length != p->n)
        return nn_fail(e, NN_ESOFTWARE, "%s: internal error: tensor %s does not match the model", m->file, name);
    t->ndim = p->shape.nd;
    for (int i = 0; i < p->shape.nd; i++)
        t->shape[i] = p->shape.d[i];
    return 0;
}

int nn_onnx_parse(const unsigned char *buf, size_t len, const char *name, const char *loss, nn_modelbin *c, nn_err *e)
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
        r = nn_fail(e, NN_ENOMEM, "out of memory");
    if (!r)
        r = nn_spec_parse(txt, strlen(txt), name, &s, e);
    if (!r)
        r = nn_net_build(&net, &s, &s.input, 0, e); /* the JSON names every size */
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
    nn_modelbin_free(&m.c);
    onnx__model_proto__free_unpacked(p, NULL);
    return r;
}

static int read_onnx(const char *in, const char *loss, nn_modelbin *c, nn_err *e)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    memset(c, 0, sizeof *c);
    int r = nn_read_file(in, (size_t)NN_ONNX_MAX_BYTES, &buf, &len, e);
    if (r)
        return r;
    r = nn_onnx_parse(buf, len, in, loss, c, e);
    free(buf);
    return r;
}

int nn_onnx_import(const char *in, const char *out, const char *loss, nn_err *e)
{
    nn_modelbin c;
    int r = read_onnx(in, loss, &c, e);
    if (!r)
        r = nn_modelbin_write(out, &c, e);
    nn_modelbin_free(&c);
    return r;
}

int nn_onnx_path(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && !strcasecmp(path + n - 5, ".onnx");
}

int nn_onnx_read(const char *path, nn_modelbin *c, nn_err *e) { return read_onnx(path, NULL, c, e); }
