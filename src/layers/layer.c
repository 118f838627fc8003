/* layer.c - the registry and helpers shared by the layer types. */
#include "layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"

#define DECLARE(id) extern const nn_layer_type nn_layer_##id;
NN_LAYER_LIST(DECLARE)
#undef DECLARE
#define ENTRY(id) &nn_layer_##id,
const nn_layer_type *const nn_layer_types[] = {NN_LAYER_LIST(ENTRY) NULL};
#undef ENTRY

const nn_layer_type *nn_layer_find(const char *name)
{
    for (int i = 0; nn_layer_types[i]; i++)
        if (strcmp(nn_layer_types[i]->name, name) == 0)
            return nn_layer_types[i];
    return NULL;
}

size_t nn_shape_size(const nn_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->nd; i++)
        n *= (size_t)s->d[i];
    return n;
}

const char *nn_shape_str(const nn_shape *s, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s->nd && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%d", i ? ", " : "", s->d[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

static const char *const act_names[] = {"none", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu"};

int nn_act_parse(const char *s)
{
    if (!strcmp(s, "linear"))
        return NN_ACT_NONE;
    for (int i = 0; i < (int)(sizeof act_names / sizeof *act_names); i++)
        if (!strcmp(s, act_names[i]))
            return i;
    return -1;
}

const char *nn_act_name(int act)
{
    return act >= 0 && act < (int)(sizeof act_names / sizeof *act_names) ? act_names[act] : "?";
}

int nn_layer_get_num(const cJSON *j, const char *key, const char *path, double min, double max,
                     double dflt, double *out, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) {
        if (isnan(dflt))
            return nn_fail(e, NN_EDATA, "%s.%s: required key is missing", path, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return nn_fail(e, NN_EDATA, "%s.%s: expected a number", path, key);
    if (v->valuedouble < min || v->valuedouble > max)
        return nn_fail(e, NN_EDATA, "%s.%s: %g is out of range [%g, %g]", path, key, v->valuedouble, min, max);
    *out = v->valuedouble;
    return 0;
}

int nn_layer_get_int(const cJSON *j, const char *key, const char *path, int min, int max, int dflt,
                     int *out, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) {
        if (dflt == INT32_MIN)
            return nn_fail(e, NN_EDATA, "%s.%s: required key is missing", path, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return nn_fail(e, NN_EDATA, "%s.%s: expected an integer", path, key);
    if (v->valuedouble < min || v->valuedouble > max)
        return nn_fail(e, NN_EDATA, "%s.%s: %g is out of range [%d, %d]", path, key, v->valuedouble, min, max);
    *out = (int)v->valuedouble;
    return 0;
}

nn_out_kind nn_layer_output(const nn_layer *L) { return L->type->output ? L->type->output(L) : NN_OUT_VALUES; }

int nn_layer_get_pair(const cJSON *j, const char *key, const char *path, int min, int max, const int dflt[2],
                      int out[2], nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) {
        if (!dflt)
            return nn_fail(e, NN_EDATA, "%s.%s: required key is missing", path, key);
        out[0] = dflt[0];
        out[1] = dflt[1];
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        int r = nn_layer_get_int(j, key, path, min, max, 0, &out[0], e);
        out[1] = out[0];
        return r;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return nn_fail(e, NN_EDATA, "%s.%s: expected an integer or a pair [height, width] of integers", path, key);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
            return nn_fail(e, NN_EDATA, "%s.%s[%d]: expected an integer", path, key, i);
        if (it->valuedouble < min || it->valuedouble > max)
            return nn_fail(e, NN_EDATA, "%s.%s[%d]: %g is out of range [%d, %d]", path, key, i, it->valuedouble,
                           min, max);
        out[i] = (int)it->valuedouble;
    }
    return 0;
}

int nn_layer_get_init(const cJSON *j, const char *path, int *out, nn_err *e)
{
    *out = -1;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "init");
    if (!in)
        return 0;
    static const char *const names[] = {"he", "glorot", "torch"};
    static const int vals[] = {NN_INIT_HE, NN_INIT_GLOROT, NN_INIT_FAN_IN_UNIFORM};
    for (int i = 0; i < 3; i++)
        if (cJSON_IsString(in) && !strcmp(in->valuestring, names[i])) {
            *out = vals[i];
            return 0;
        }
    return nn_fail(e, NN_EDATA, "%s.init: expected \"he\", \"glorot\" or \"torch\"", path);
}

int nn_layer_get_init_torch(const cJSON *j, const char *path, int *out, nn_err *e)
{
    *out = -1;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "init");
    if (!in)
        return 0;
    if (cJSON_IsString(in) && !strcmp(in->valuestring, "torch")) {
        *out = NN_INIT_FAN_IN_UNIFORM;
        return 0;
    }
    return nn_fail(e, NN_EDATA, "%s.init: expected \"torch\" (the only choice for this layer type)", path);
}

void nn_layer_pick_init(int init, int act, nn_init *weight, nn_init *bias)
{
    *weight = init >= 0 ? (nn_init)init : act == NN_ACT_RELU ? NN_INIT_HE : NN_INIT_GLOROT;
    *bias = *weight == NN_INIT_FAN_IN_UNIFORM ? NN_INIT_FAN_IN_UNIFORM : NN_INIT_ZERO;
}

int nn_layer_get_bool(const cJSON *j, const char *key, const char *path, int dflt, int *out, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return nn_fail(e, NN_EDATA, "%s.%s: expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int nn_layer_get_act(const cJSON *j, const char *key, const char *path, int *out, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NN_ACT_NONE;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return nn_fail(e, NN_EDATA, "%s.%s: expected a string such as \"relu\"", path, key);
    int a = nn_act_parse(v->valuestring);
    if (a < 0) {
        static const char *const known[] = {"relu", "sigmoid", "tanh", "leaky_relu", "elu",
                                            "gelu", "linear", "none", "softmax"};
        const char *s = nn_suggest(v->valuestring, known, sizeof known / sizeof *known);
        if (!strcmp(v->valuestring, "softmax"))
            return nn_fail(e, NN_EDATA,
                           "%s.%s: \"softmax\" is a layer of its own here: add {\"type\": \"softmax\"} after this one",
                           path, key);
        return nn_fail(e, NN_EDATA,
                       "%s.%s: unknown activation '%s'%s%s%s (known: relu, sigmoid, tanh, leaky_relu, elu, linear)",
                       path, key, v->valuestring, s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
    /* Fused activations get their derivative from the layer's OUTPUT; GELU's
     * derivative needs the pre-activation, which dense/conv do not keep. */
    if (a == NN_ACT_GELU)
        return nn_fail(e, NN_EDATA,
                       "%s.%s: \"gelu\" cannot be fused into this layer (its gradient needs the pre-activation): "
                       "use a separate {\"type\": \"gelu\"} layer after this one",
                       path, key);
    *out = a;
    return 0;
}

nn_param *nn_layer_add_param(nn_layer *L, const char *name, int nd, const int *dims, nn_init init,
                             int fan_in, int fan_out)
{
    nn_param *p = &L->param[L->nparam++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->shape.nd = nd;
    for (int i = 0; i < nd; i++)
        p->shape.d[i] = dims[i];
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->trainable = 1;
    p->n = nn_shape_size(&p->shape);
    return p;
}

nn_rows nn_row_split(const nn_dev *d, size_t rows, size_t other)
{
    nn_rows r = {rows, 1, 0};
    if (!(d->type & CL_DEVICE_TYPE_CPU) || rows == 0)
        return r;
    size_t want = 8 * (size_t)(d->units ? d->units : 1), runs = (want + other - 1) / (other ? other : 1);
    if (runs > rows)
        runs = rows;
    r.per = (int)((rows + runs - 1) / runs);
    r.items = (rows + (size_t)r.per - 1) / (size_t)r.per;
    r.local = 1;
    return r;
}

nn_rows nn_elem_split(const nn_dev *d, size_t n)
{
    if (!(d->type & CL_DEVICE_TYPE_CPU))
        return nn_row_split(d, n, 1);
    nn_rows r = nn_row_split(d, (n + 15) / 16, 1);
    r.per *= 16;
    return r;
}

int nn_act_forward(nn_dev *d, int act, cl_mem x, cl_mem y, size_t n, nn_err *e)
{
    nn_rows r = nn_elem_split(d, n);
    return nn_launch(d, "act_forward", r.items, r.local, e, 5, KMEM(x), KMEM(y), KINT(n), KINT(act), KINT(r.per));
}

int nn_act_backward(nn_dev *d, int act, cl_mem y, cl_mem dy, cl_mem dx, size_t n, nn_err *e)
{
    nn_rows r = nn_elem_split(d, n);
    return nn_launch(d, "act_backward_acc", r.items, r.local, e, 6, KMEM(y), KMEM(dy), KMEM(dx), KINT(n), KINT(act),
                     KINT(r.per));
}

int nn_layer_get_int_or_vocab(const cJSON *j, const char *key, const char *path, int min, int max, int dflt,
                              int *out, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "vocab"))
            return nn_fail(e, NN_EDATA, "%s.%s: expected an integer or \"vocab\" (the text data's vocabulary size)",
                           path, key);
        *out = NN_VOCAB;
        return 0;
    }
    return nn_layer_get_int(j, key, path, min, max, dflt, out, e);
}

int nn_layer_vocab(nn_layer *L, const char *key, int *v, nn_err *e)
{
    if (*v != NN_VOCAB)
        return 0;
    if (L->vocab <= 0)
        return nn_fail(e, NN_EDATA, "%s.%s: \"vocab\" needs text data (a source with \"format\": \"text\")", L->path,
                       key);
    *v = L->vocab;
    return 0;
}
