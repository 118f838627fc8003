/* spec.c - model JSON -> nn_spec, with errors naming the JSON path. */
#include "spec.h"

#include <limits.h>
#include <stdarg.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/format.h"
#include "util.h"

#define MAX_JSON_BYTES (16u << 20)

/* "file: path: " prefix for messages */
#define FAIL(e, s, path, ...) spec_fail(e, s, path, __VA_ARGS__)

static int spec_fail(nn_err *e, const nn_spec *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int spec_fail(nn_err *e, const nn_spec *s, const char *path, const char *fmt, ...)
{
    char msg[NN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_fail(e, NN_EDATA, "%s: %s%s%s", s->file ? s->file : "model", path, *path ? ": " : "", msg);
}

/* Rejects keys not in `allowed`, with a did-you-mean hint. */
static int check_keys(const cJSON *obj, const char *const *allowed, const char *const *more, const char *path,
                      const nn_spec *s, nn_err *e)
{
    const char *all[64];
    size_t n = 0;
    for (const char *const *a = allowed; a && *a && n < 64; a++)
        all[n++] = *a;
    for (const char *const *a = more; a && *a && n < 64; a++)
        all[n++] = *a;
    for (const cJSON *it = obj->child; it; it = it->next) {
        size_t i;
        for (i = 0; i < n; i++)
            if (!strcmp(it->string, all[i]))
                break;
        if (i < n)
            continue;
        const char *sug = nn_suggest(it->string, all, n);
        char known[1024] = "";
        size_t o = 0;
        for (i = 0; i < n && o < sizeof known; i++)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", all[i]);
        if (sug)
            return FAIL(e, s, path, "unknown key '%s' (did you mean '%s'?)", it->string, sug);
        return FAIL(e, s, path, "unknown key '%s' (known keys: %s)", it->string, known);
    }
    /* duplicate keys: cJSON keeps both; the second would be silently ignored */
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                return FAIL(e, s, path, "key '%s' appears twice", a->string);
    return 0;
}

static int get_obj(const cJSON *parent, const char *key, const char *path, const nn_spec *s, nn_err *e,
                   const cJSON **out)
{
    *out = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (*out && !cJSON_IsObject(*out)) {
        char p[256];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
        return FAIL(e, s, p, "expected an object");
    }
    return 0;
}

static int get_num(const cJSON *o, const char *key, const char *path, const nn_spec *s, double lo, double hi,
                   int integer, double *val, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0; /* keep default */
    char p[256];
    snprintf(p, sizeof p, "%s.%s", path, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return FAIL(e, s, p, "expected a number");
    if (integer && v->valuedouble != floor(v->valuedouble))
        return FAIL(e, s, p, "expected an integer, got %g", v->valuedouble);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return FAIL(e, s, p, "%g is out of range [%g, %g]", v->valuedouble, lo, hi);
    *val = v->valuedouble;
    return 0;
}

static int get_str(const cJSON *o, const char *key, const char *path, const nn_spec *s, const char **val,
                   nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        char p[256];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
        return FAIL(e, s, p, "expected a non-empty string");
    }
    *val = v->valuestring;
    return 0;
}

/* ------------------------------------------------------------------ input */

static int parse_floats(const cJSON *a, const char *path, const nn_spec *s, float **out, int *n, int positive,
                        nn_err *e)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > (1 << 24))
        return FAIL(e, s, path, "expected a non-empty array of numbers");
    int k = cJSON_GetArraySize(a), i = 0;
    float *v = malloc(sizeof(float) * (size_t)k);
    if (!v)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (const cJSON *it = a->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || (positive && it->valuedouble <= 0)) {
            free(v);
            char p[256];
            snprintf(p, sizeof p, "%s[%d]", path, i);
            return FAIL(e, s, p, positive ? "expected a positive number" : "expected a number");
        }
        /* stored as float32 in model.bin: it must survive the conversion */
        double d = fabs(it->valuedouble);
        if (d > FLT_MAX || (positive && d < FLT_MIN)) {
            free(v);
            char p[256];
            snprintf(p, sizeof p, "%s[%d]", path, i);
            return FAIL(e, s, p, "%g does not fit a float32 (%s %g)", it->valuedouble,
                        d > FLT_MAX ? "largest" : "smallest normal", d > FLT_MAX ? FLT_MAX : FLT_MIN);
        }
        v[i] = (float)it->valuedouble;
    }
    *out = v;
    *n = k;
    return 0;
}

static int parse_input(const cJSON *root, nn_spec *s, nn_err *e)
{
    const cJSON *in;
    int r = get_obj(root, "input", "", s, e, &in);
    if (r)
        return r;
    if (!in)
        return 0;
    static const char *const keys[] = {"shape", "normalize", NULL};
    if ((r = check_keys(in, keys, NULL, "input", s, e)))
        return r;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(in, "shape");
    if (sh) {
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) < 1 || cJSON_GetArraySize(sh) > 3)
            return FAIL(e, s, "input.shape", "expected an array of 1 to 3 positive integers, e.g. [1, 28, 28] or [4]");
        int i = 0;
        size_t total = 1;
        for (const cJSON *it = sh->child; it; it = it->next, i++) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > (1 << 24) ||
                it->valuedouble != floor(it->valuedouble)) {
                char p[64];
                snprintf(p, sizeof p, "input.shape[%d]", i);
                return FAIL(e, s, p, "expected a positive integer");
            }
            s->input.d[i] = (int)it->valuedouble;
            total *= (size_t)s->input.d[i];
        }
        if (total > (size_t)NN_MAX_FEATURES)
            return FAIL(e, s, "input.shape", "%zu features per sample exceed the limit of %ld", total,
                        (long)NN_MAX_FEATURES);
        s->input.nd = i;
        s->has_input_shape = 1;
    }
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(in, "normalize");
    if (!nz || cJSON_IsNull(nz) || (cJSON_IsString(nz) && !strcmp(nz->valuestring, "none")) || cJSON_IsFalse(nz)) {
        s->norm = NN_NORM_NONE;
    } else if (cJSON_IsString(nz) && !strcmp(nz->valuestring, "auto")) {
        s->norm = NN_NORM_AUTO;
    } else if (cJSON_IsObject(nz)) {
        static const char *const nkeys[] = {"mean", "std", NULL};
        if ((r = check_keys(nz, nkeys, NULL, "input.normalize", s, e)))
            return r;
        int nm = 0, ns = 0;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(nz, "mean"), *sd = cJSON_GetObjectItemCaseSensitive(nz, "std");
        if (!m || !sd)
            return FAIL(e, s, "input.normalize", "needs both \"mean\" and \"std\" arrays");
        if ((r = parse_floats(m, "input.normalize.mean", s, &s->mean, &nm, 0, e)))
            return r;
        if ((r = parse_floats(sd, "input.normalize.std", s, &s->std, &ns, 1, e)))
            return r;
        if (nm != ns)
            return FAIL(e, s, "input.normalize", "mean has %d values but std has %d", nm, ns);
        s->nnorm = nm;
        s->norm = NN_NORM_GIVEN;
    } else {
        return FAIL(e, s, "input.normalize", "expected \"auto\", \"none\" or {\"mean\": [...], \"std\": [...]}");
    }
    return 0;
}

/* ----------------------------------------------------------------- layers */

static const char *const common_layer_keys[] = {"type", "name", "inputs", NULL};

static int parse_layers(const cJSON *root, nn_spec *s, nn_err *e)
{
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (!ls)
        return FAIL(e, s, "layers", "required key is missing (an array of layer objects)");
    if (!cJSON_IsArray(ls) || cJSON_GetArraySize(ls) < 1)
        return FAIL(e, s, "layers", "expected a non-empty array of layer objects");
    int n = cJSON_GetArraySize(ls);
    if (n > 10000)
        return FAIL(e, s, "layers", "%d layers exceed the limit of 10000", n);
    s->layers = calloc((size_t)n, sizeof *s->layers);
    if (!s->layers)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    int counts[64] = {0};
    int i = 0;
    for (const cJSON *lj = ls->child; lj; lj = lj->next, i++) {
        nn_layer *L = &s->layers[i];
        s->nlayers = i + 1;
        L->index = i;
        snprintf(L->path, sizeof L->path, "layers[%d]", i);
        if (!cJSON_IsObject(lj))
            return FAIL(e, s, L->path, "expected an object such as {\"type\": \"dense\", \"units\": 10}");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(lj, "type");
        char tp[64];
        snprintf(tp, sizeof tp, "%s.type", L->path);
        if (!t)
            return FAIL(e, s, tp, "required key is missing");
        if (!cJSON_IsString(t))
            return FAIL(e, s, tp, "expected a string");
        L->type = nn_layer_find(t->valuestring);
        if (!L->type) {
            const char *names[64];
            size_t k = 0;
            char known[1024] = "";
            size_t o = 0;
            for (; nn_layer_types[k] && k < 64; k++) {
                names[k] = nn_layer_types[k]->name;
                o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", k ? ", " : "", names[k]);
            }
            const char *sug = nn_suggest(t->valuestring, names, k);
            if (sug)
                return FAIL(e, s, tp, "unknown layer type '%s' (did you mean '%s'?)", t->valuestring, sug);
            return FAIL(e, s, tp, "unknown layer type '%s' (known: %s)", t->valuestring, known);
        }
        int r = check_keys(lj, common_layer_keys, L->type->keys, L->path, s, e);
        if (r)
            return r;
        /* name: given, or <type>_<k> counting per type from 1 (Keras style) */
        int ti = 0;
        while (nn_layer_types[ti] != L->type)
            ti++;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(lj, "name");
        if (nm) {
            if (!cJSON_IsString(nm) || !nm->valuestring[0] || strlen(nm->valuestring) >= sizeof L->name ||
                strpbrk(nm->valuestring, " \t\n\"\\"))
                return FAIL(e, s, L->path, "name: expected a short string without spaces or quotes");
            if (!strcmp(nm->valuestring, "input")) /* it would shadow the network input in "inputs" */
                return FAIL(e, s, L->path, "name: 'input' is reserved for the network input");
            snprintf(L->name, sizeof L->name, "%s", nm->valuestring);
        } else {
            snprintf(L->name, sizeof L->name, "%s_%d", L->type->name, ++counts[ti < 64 ? ti : 63]);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(s->layers[j].name, L->name))
                return FAIL(e, s, L->path, "name '%s' is already used by layers[%d]", L->name, j);
        /* inputs: names of earlier layers ("input" = the network input); default: the previous layer */
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(lj, "inputs");
        if (!ins) {
            L->nin = 1;
            L->in[0] = i - 1;
        } else {
            char ip[64];
            snprintf(ip, sizeof ip, "%s.inputs", L->path);
            if (cJSON_IsString(ins)) {
                /* accept a single name for convenience */
            } else if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) < 1) {
                return FAIL(e, s, ip, "expected an array of layer names");
            }
            int k = 0;
            const cJSON *it = cJSON_IsString(ins) ? ins : ins->child;
            for (; it; it = cJSON_IsString(ins) ? NULL : it->next, k++) {
                if (k >= NN_MAX_INPUTS)
                    return FAIL(e, s, ip, "more than %d inputs", NN_MAX_INPUTS);
                if (!cJSON_IsString(it))
                    return FAIL(e, s, ip, "expected layer names (strings)");
                int found = -2;
                if (!strcmp(it->valuestring, "input"))
                    found = -1;
                for (int j = 0; j < i && found == -2; j++)
                    if (!strcmp(s->layers[j].name, it->valuestring))
                        found = j;
                if (found == -2) {
                    int later = 0;
                    for (const cJSON *o = lj->next; o; o = o->next) {
                        const cJSON *on = cJSON_GetObjectItemCaseSensitive(o, "name");
                        if (cJSON_IsString(on) && !strcmp(on->valuestring, it->valuestring))
                            later = 1;
                    }
                    return FAIL(e, s, ip, later ? "'%s' is defined later; a layer may only take inputs from layers before it"
                                                : "no earlier layer is named '%s'",
                                it->valuestring);
                }
                L->in[k] = found;
            }
            L->nin = k;
        }
        if (L->nin < L->type->min_inputs || L->nin > L->type->max_inputs)
            return FAIL(e, s, L->path, "a %s layer takes %d to %d inputs, not %d", L->type->name,
                        L->type->min_inputs, L->type->max_inputs, L->nin);
        if (L->type->parse && (r = L->type->parse(L, lj, L->path, e))) {
            /* the type's message starts with the path; add the file */
            return nn_wrap(e, "%s: ", s->file ? s->file : "model");
        }
    }
    return 0;
}

/* ------------------------------------------------------ loss, optimizer */

/* "loss": a name, or {"type": name, "label_smoothing": eps} (cross_entropy
 * only; PyTorch's CrossEntropyLoss(label_smoothing=eps)). */
static int parse_loss(const cJSON *root, nn_spec *s, nn_err *e)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "loss");
    s->loss = NN_LOSS_CE;
    s->label_smoothing = 0;
    if (!l)
        return 0;
    const cJSON *name = l;
    const char *path = "loss";
    if (cJSON_IsObject(l)) {
        static const char *const keys[] = {"type", "label_smoothing", NULL};
        int r = check_keys(l, keys, NULL, "loss", s, e);
        if (r)
            return r;
        name = cJSON_GetObjectItemCaseSensitive(l, "type");
        path = "loss.type";
        if (!name)
            return FAIL(e, s, path, "required: \"cross_entropy\", \"binary_cross_entropy\" or \"mse\"");
    }
    if (!cJSON_IsString(name))
        return FAIL(e, s, path,
                    "expected a string: \"cross_entropy\", \"binary_cross_entropy\" or \"mse\"%s",
                    name == l ? " (or an object with \"type\")" : "");
    static const struct { const char *name; nn_loss_kind k; } names[] = {
        {"cross_entropy", NN_LOSS_CE},
        {"categorical_crossentropy", NN_LOSS_CE},
        {"sparse_categorical_crossentropy", NN_LOSS_CE},
        {"binary_cross_entropy", NN_LOSS_BCE},
        {"binary_crossentropy", NN_LOSS_BCE},
        {"mse", NN_LOSS_MSE},
        {"mean_squared_error", NN_LOSS_MSE},
    };
    const char *known[8];
    size_t i;
    for (i = 0; i < sizeof names / sizeof *names; i++) {
        known[i] = names[i].name;
        if (!strcmp(name->valuestring, names[i].name))
            break;
    }
    if (i == sizeof names / sizeof *names) {
        const char *sug = nn_suggest(name->valuestring, known, sizeof names / sizeof *names);
        return FAIL(e, s, path, "unknown loss '%s'%s%s%s (known: cross_entropy, binary_cross_entropy, mse)",
                    name->valuestring, sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    s->loss = names[i].k;
    if (!cJSON_GetObjectItemCaseSensitive(l, "label_smoothing"))
        return 0;
    if (s->loss != NN_LOSS_CE)
        return FAIL(e, s, "loss.label_smoothing", "only cross_entropy supports label smoothing, not %s",
                    nn_loss_name(s->loss));
    double v = 0;
    int r = get_num(l, "label_smoothing", "loss", s, 0, 1, 0, &v, e);
    s->label_smoothing = (float)v;
    return r;
}

/* A float key of the optimizer object within [lo, hi]; *dst keeps its default when absent. */
static int opt_num(const cJSON *oj, const char *key, const nn_spec *s, double lo, double hi, float *dst, nn_err *e)
{
    double v = *dst;
    int r = get_num(oj, key, "optimizer", s, lo, hi, 0, &v, e);
    *dst = (float)v;
    return r;
}

static int opt_bool(const cJSON *oj, const char *key, const nn_spec *s, int *dst, nn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(oj, key);
    if (v && !cJSON_IsBool(v)) {
        char p[64];
        snprintf(p, sizeof p, "optimizer.%s", key);
        return FAIL(e, s, p, "expected true or false");
    }
    *dst = v && cJSON_IsTrue(v);
    return 0;
}

static int parse_optimizer(const cJSON *root, nn_spec *s, nn_err *e)
{
    nn_opt_spec *o = &s->opt;
    memset(o, 0, sizeof *o);
    o->type = NN_OPT_SGD;
    o->lr = 0.01f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->alpha = 0.99f;
    const cJSON *oj = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
    if (!oj)
        return 0;
    const char *type = NULL;
    if (cJSON_IsString(oj))
        type = oj->valuestring;
    else if (cJSON_IsObject(oj)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(oj, "type");
        if (!t || !cJSON_IsString(t))
            return FAIL(e, s, "optimizer.type", "required: \"sgd\", \"adam\", \"adamw\" or \"rmsprop\"");
        type = t->valuestring;
    } else
        return FAIL(e, s, "optimizer", "expected \"sgd\", \"adam\", \"adamw\", \"rmsprop\" or an object with \"type\"");
    static const char *const types[] = {"sgd", "adam", "adamw", "rmsprop"};
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(type, types[i]))
            k = i;
    if (k < 0) {
        const char *sug = nn_suggest(type, types, 4);
        return FAIL(e, s, cJSON_IsString(oj) ? "optimizer" : "optimizer.type",
                    "unknown optimizer '%s'%s%s%s (known: sgd, adam, adamw, rmsprop)", type,
                    sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    o->type = (nn_opt_kind)k;
    if (k == NN_OPT_ADAM || k == NN_OPT_ADAMW)
        o->lr = 0.001f;
    if (k == NN_OPT_ADAMW)
        o->weight_decay = 0.01f;
    if (!cJSON_IsObject(oj))
        return 0;
    /* every optimizer: lr, weight_decay and gradient clipping */
    static const char *const common[] = {"type", "lr", "weight_decay", "clip_norm", "clip_value", NULL};
    static const char *const sgd_keys[] = {"momentum", "nesterov", NULL};
    static const char *const adam_keys[] = {"beta1", "beta2", "eps", NULL};
    static const char *const rms_keys[] = {"alpha", "eps", "momentum", "centered", NULL};
    const char *const *own = k == NN_OPT_SGD ? sgd_keys : k == NN_OPT_RMSPROP ? rms_keys : adam_keys;
    int r;
    if ((r = check_keys(oj, common, own, "optimizer", s, e)) || (r = opt_num(oj, "lr", s, 1e-12, 100, &o->lr, e)) ||
        (r = opt_num(oj, "weight_decay", s, 0, 10, &o->weight_decay, e)) ||
        (r = opt_num(oj, "clip_norm", s, 1e-12, 1e12, &o->clip_norm, e)) ||
        (r = opt_num(oj, "clip_value", s, 1e-12, 1e12, &o->clip_value, e)))
        return r;
    if (k == NN_OPT_SGD) {
        if ((r = opt_num(oj, "momentum", s, 0, 0.9999, &o->momentum, e)) ||
            (r = opt_bool(oj, "nesterov", s, &o->nesterov, e)))
            return r;
        if (o->nesterov && o->momentum == 0)
            return FAIL(e, s, "optimizer.nesterov", "needs a non-zero \"momentum\"");
    } else if (k == NN_OPT_RMSPROP) {
        if ((r = opt_num(oj, "alpha", s, 0, 0.999999, &o->alpha, e)) ||
            (r = opt_num(oj, "eps", s, 1e-30, 1, &o->eps, e)) ||
            (r = opt_num(oj, "momentum", s, 0, 0.9999, &o->momentum, e)) ||
            (r = opt_bool(oj, "centered", s, &o->centered, e)))
            return r;
    } else {
        if ((r = opt_num(oj, "beta1", s, 0, 0.99999, &o->beta1, e)) ||
            (r = opt_num(oj, "beta2", s, 0, 0.9999999, &o->beta2, e)) ||
            (r = opt_num(oj, "eps", s, 1e-30, 1, &o->eps, e)))
            return r;
    }
    return 0;
}

/* A number in (0, hi] (hi_open: (0, hi)); absent keeps *val. */
static int get_pos(const cJSON *o, const char *key, const char *path, const nn_spec *s, double hi, int hi_open,
                   double *val, nn_err *e)
{
    double v = NAN;
    int r = get_num(o, key, path, s, -INFINITY, INFINITY, 0, &v, e);
    if (r || isnan(v))
        return r;
    if (!(v > 0 && (hi_open ? v < hi : v <= hi))) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s", path, key);
        return FAIL(e, s, p, "must be in (0, %g%s, got %g", hi, hi_open ? ")" : "]", v);
    }
    *val = v;
    return 0;
}

/* An integer in [lo, hi]; absent keeps *val. */
static int get_int(const cJSON *o, const char *key, const char *path, const nn_spec *s, int lo, int hi, int *val,
                   nn_err *e)
{
    double v = *val;
    int r = get_num(o, key, path, s, lo, hi, 1, &v, e);
    if (!r)
        *val = (int)v;
    return r;
}

/* "monitor": one of loss/accuracy (mae for mse models), val_ in front for
 * the validation split, which must then exist. */
static int parse_monitor(const cJSON *o, const char *path, const nn_spec *s, nn_monitor *m, nn_err *e)
{
    const char *name = "val_loss";
    char p[256];
    snprintf(p, sizeof p, "%s.monitor", path);
    int r = get_str(o, "monitor", path, s, &name, e);
    if (r)
        return r;
    const int regress = s->loss == NN_LOSS_MSE;
    if (nn_monitor_set(m, name, regress))
        return FAIL(e, s, p, "unknown value '%s' (known: val_loss, val_%s, loss, %s)", name,
                    regress ? "mae" : "accuracy", regress ? "mae" : "accuracy");
    if (m->val && s->train.validation_split <= 0)
        return FAIL(e, s, p, "'%s' needs a validation split: set train.validation_split (e.g. 0.1) or monitor '%s'",
                    name, name + 4);
    return 0;
}

static int parse_lr_schedule(const cJSON *tj, nn_spec *s, nn_err *e)
{
    nn_sched_spec *z = &s->train.sched;
    memset(z, 0, sizeof *z);
    z->gamma = 0.1;
    z->factor = 0.1;
    z->patience = 10;
    z->threshold = 1e-4;
    z->warmup_start = 1.0 / 3;
    const cJSON *j;
    int r = get_obj(tj, "lr_schedule", "train", s, e, &j);
    if (r || !j)
        return r;
    const char *const P = "train.lr_schedule";
    int nn;
    const char *const *known = nn_sched_names(&nn);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return FAIL(e, s, "train.lr_schedule.type", "required: one of step, multistep, exponential, cosine, plateau, "
                                                    "constant");
    if (!(z->kind = nn_sched_kind_by_name(t->valuestring))) {
        const char *sug = nn_suggest(t->valuestring, known, (size_t)nn);
        return FAIL(e, s, "train.lr_schedule.type", "unknown schedule '%s'%s%s%s (known: step, multistep, exponential, "
                                                    "cosine, plateau, constant)",
                    t->valuestring, sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    static const char *const common[] = {"type", "warmup_epochs", "warmup_start_factor", NULL};
    static const char *const own[NN_SCHED_COUNT][8] = {
        [NN_SCHED_STEP] = {"step_size", "gamma"},
        [NN_SCHED_MULTISTEP] = {"milestones", "gamma"},
        [NN_SCHED_EXPONENTIAL] = {"gamma"},
        [NN_SCHED_COSINE] = {"t_max", "eta_min"},
        [NN_SCHED_PLATEAU] = {"monitor", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr"},
    };
    if ((r = check_keys(j, common, own[z->kind], P, s, e)) ||
        (r = get_int(j, "warmup_epochs", P, s, 0, 1000000, &z->warmup, e)) ||
        (r = get_pos(j, "warmup_start_factor", P, s, 1, 0, &z->warmup_start, e)))
        return r;
    if (!z->warmup && cJSON_GetObjectItemCaseSensitive(j, "warmup_start_factor"))
        return FAIL(e, s, "train.lr_schedule.warmup_start_factor",
                    "needs \"warmup_epochs\" (the epochs of the warmup)");
    /* the type's own keys; the required ones first */
    const char *need = z->kind == NN_SCHED_STEP ? "step_size" : z->kind == NN_SCHED_MULTISTEP ? "milestones"
                                                            : z->kind == NN_SCHED_EXPONENTIAL ? "gamma" : NULL;
    if (need && !cJSON_GetObjectItemCaseSensitive(j, need))
        return FAIL(e, s, P, "a '%s' schedule needs \"%s\"", t->valuestring, need);
    if ((r = get_int(j, "step_size", P, s, 1, 1000000, &z->step_size, e)) ||
        (r = get_pos(j, "gamma", P, s, 1, 0, &z->gamma, e)) ||
        (r = get_int(j, "t_max", P, s, 1, 1000000, &z->t_max, e)) ||
        (r = get_num(j, "eta_min", P, s, 0, 100, 0, &z->eta_min, e)) ||
        (r = get_pos(j, "factor", P, s, 1, 1, &z->factor, e)) ||
        (r = get_int(j, "patience", P, s, 0, 1000000, &z->patience, e)) ||
        (r = get_num(j, "threshold", P, s, 0, 1e6, 0, &z->threshold, e)) ||
        (r = get_int(j, "cooldown", P, s, 0, 1000000, &z->cooldown, e)) ||
        (r = get_num(j, "min_lr", P, s, 0, 100, 0, &z->min_lr, e)))
        return r;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "milestones");
    if (ms) {
        if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) < 1 || cJSON_GetArraySize(ms) > NN_SCHED_MAX_MILESTONES)
            return FAIL(e, s, "train.lr_schedule.milestones", "expected an array of 1 to %d epochs",
                        NN_SCHED_MAX_MILESTONES);
        int i = 0;
        for (const cJSON *m = ms->child; m; m = m->next, i++) {
            char p[64];
            snprintf(p, sizeof p, "train.lr_schedule.milestones[%d]", i);
            if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) || m->valuedouble < 1 ||
                m->valuedouble > 1000000)
                return FAIL(e, s, p, "expected an integer from 1 to 1000000");
            if (i && m->valuedouble <= z->milestones[i - 1])
                return FAIL(e, s, p, "%d is not after the milestone before it (%d): milestones must increase",
                            (int)m->valuedouble, z->milestones[i - 1]);
            z->milestones[i] = (int)m->valuedouble;
        }
        z->nmilestones = i;
    }
    const char *mode = "rel";
    if ((r = get_str(j, "threshold_mode", P, s, &mode, e)))
        return r;
    if (strcmp(mode, "rel") && strcmp(mode, "abs"))
        return FAIL(e, s, "train.lr_schedule.threshold_mode", "expected \"rel\" or \"abs\", got '%s'", mode);
    z->threshold_abs = !strcmp(mode, "abs");
    if (z->kind == NN_SCHED_PLATEAU && (r = parse_monitor(j, P, s, &z->monitor, e)))
        return r;
    return 0;
}

static int parse_early_stopping(const cJSON *tj, nn_spec *s, nn_err *e)
{
    nn_stop_spec *st = &s->train.stop;
    memset(st, 0, sizeof *st);
    st->restore = 1;
    const cJSON *j;
    int r = get_obj(tj, "early_stopping", "train", s, e, &j);
    if (r || !j)
        return r;
    const char *const P = "train.early_stopping";
    static const char *const keys[] = {"monitor", "patience", "min_delta", "restore_best_weights", NULL};
    if ((r = check_keys(j, keys, NULL, P, s, e)) || (r = parse_monitor(j, P, s, &st->monitor, e)) ||
        (r = get_int(j, "patience", P, s, 0, 1000000, &st->patience, e)) ||
        (r = get_num(j, "min_delta", P, s, 0, 1e6, 0, &st->min_delta, e)))
        return r;
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(j, "restore_best_weights");
    if (rb && !cJSON_IsBool(rb))
        return FAIL(e, s, "train.early_stopping.restore_best_weights", "expected true or false");
    if (rb)
        st->restore = cJSON_IsTrue(rb);
    st->on = 1;
    return 0;
}

static int parse_train(const cJSON *root, nn_spec *s, nn_err *e)
{
    nn_train_spec *t = &s->train;
    t->epochs = 10;
    t->batch_size = 32;
    t->seed = 1;
    t->validation_split = 0;
    t->shuffle = 1;
    const cJSON *tj;
    int r = get_obj(root, "train", "", s, e, &tj);
    if (r || !tj)
        return r;
    static const char *const keys[] = {"epochs",  "batch_size",  "seed",          "validation_split",
                                       "shuffle", "lr_schedule", "early_stopping", NULL};
    if ((r = check_keys(tj, keys, NULL, "train", s, e)))
        return r;
    double v = t->epochs;
    if ((r = get_num(tj, "epochs", "train", s, 0, 1e6, 1, &v, e)))
        return r;
    t->epochs = (int)v;
    v = t->batch_size;
    if ((r = get_num(tj, "batch_size", "train", s, 1, 1 << 20, 1, &v, e)))
        return r;
    t->batch_size = (int)v;
    v = (double)t->seed;
    if ((r = get_num(tj, "seed", "train", s, 0, 9007199254740991.0, 1, &v, e)))
        return r;
    t->seed = (uint64_t)v;
    v = t->validation_split;
    if ((r = get_num(tj, "validation_split", "train", s, 0, 0.9, 0, &v, e)))
        return r;
    t->validation_split = (float)v;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(tj, "shuffle");
    if (sh && !cJSON_IsBool(sh))
        return FAIL(e, s, "train.shuffle", "expected true or false");
    if (sh)
        t->shuffle = cJSON_IsTrue(sh);
    if ((r = parse_lr_schedule(tj, s, e)))
        return r;
    return parse_early_stopping(tj, s, e);
}

/* ------------------------------------------------------------------- data */

static int has_key(const char *const *keys, const char *key)
{
    for (; *keys; keys++)
        if (!strcmp(*keys, key))
            return 1;
    return 0;
}

static int take_path(const cJSON *o, const char *key, const char *path, nn_spec *s, char **out, int required,
                     nn_err *e)
{
    const char *v = NULL;
    int r = get_str(o, key, path, s, &v, e);
    if (r)
        return r;
    if (!v) {
        if (!required)
            return 0;
        char p[256];
        snprintf(p, sizeof p, "%s.%s", path, key);
        return FAIL(e, s, p, "required key is missing");
    }
    *out = nn_path_join_dir(s->file, v);
    return *out ? 0 : nn_fail(e, NN_ENOMEM, "out of memory");
}

/* A column or a list of columns: names (strings) or 0-based indices. */
static int parse_columns(const cJSON *j, const char *jp, const nn_spec *s, int max, char **names, int *idx, int *n,
                         nn_err *e)
{
    if (cJSON_IsArray(j) && (cJSON_GetArraySize(j) < 1 || cJSON_GetArraySize(j) > max))
        return FAIL(e, s, jp, "expected 1 to %d columns", max);
    int i = 0;
    for (const cJSON *one = cJSON_IsArray(j) ? j->child : j; one; one = cJSON_IsArray(j) ? one->next : NULL, i++) {
        char ip[160];
        if (cJSON_IsArray(j))
            snprintf(ip, sizeof ip, "%s[%d]", jp, i);
        else
            snprintf(ip, sizeof ip, "%s", jp);
        if (cJSON_IsString(one) && one->valuestring[0]) {
            if (!(names[i] = nn_strdup(one->valuestring)))
                return nn_fail(e, NN_ENOMEM, "out of memory");
            idx[i] = -1;
        } else if (cJSON_IsNumber(one) && one->valuedouble >= 0 && one->valuedouble < 1e6 &&
                   one->valuedouble == floor(one->valuedouble)) {
            idx[i] = (int)one->valuedouble;
        } else
            return FAIL(e, s, ip, "expected a column name or a 0-based column index");
        *n = i + 1;
    }
    return 0;
}

static int parse_source(const cJSON *sj, const char *path, nn_spec *s, nn_source *src, nn_err *e)
{
    memset(src, 0, sizeof *src);
    src->header = -1;
    src->json_path = path;
    if (!cJSON_IsObject(sj))
        return FAIL(e, s, path, "expected an object such as {\"format\": \"csv\", \"path\": \"data.csv\", \"label\": \"y\"}");
    const char *fmt = NULL;
    int r = get_str(sj, "format", path, s, &fmt, e);
    if (r)
        return r;
    if (!fmt) {
        char p[128];
        snprintf(p, sizeof p, "%s.format", path);
        char known[256];
        return FAIL(e, s, p, "required key is missing (%s)", nn_format_names(known, sizeof known, "\"", ", ", " or "));
    }
    const nn_format *ff = nn_format_find(fmt);
    if (!ff) {
        char p[128], known[256];
        snprintf(p, sizeof p, "%s.format", path);
        const char *names[32];
        for (int i = 0; i < nn_nformats && i < 32; i++)
            names[i] = nn_formats[i].name;
        const char *sug = nn_suggest(fmt, names, nn_nformats < 32 ? nn_nformats : 32);
        return FAIL(e, s, p, "unknown format '%s'%s%s%s (known: %s)", fmt, sug ? " (did you mean '" : "",
                    sug ? sug : "", sug ? "'?)" : "", nn_format_names(known, sizeof known, "", ", ", ", "));
    }
    snprintf(src->format, sizeof src->format, "%s", fmt);
    double lim = 0;
    /* the format's keys decide what is read */
    if ((r = check_keys(sj, ff->keys, NULL, path, s, e)))
        return r;
    if ((r = take_path(sj, ff->path_key, path, s, (char **)((char *)src + ff->path_field), 1, e)))
        return r;
    if (has_key(ff->keys, "labels") && (r = take_path(sj, "labels", path, s, &src->labels, 0, e)))
        return r;
    if (has_key(ff->keys, "sequence_length")) {
        double T = 0;
        char tp[128];
        snprintf(tp, sizeof tp, "%s.sequence_length", path);
        if (!cJSON_GetObjectItemCaseSensitive(sj, "sequence_length"))
            return FAIL(e, s, tp, "required key is missing (characters per training sequence, e.g. 128)");
        if ((r = get_num(sj, "sequence_length", path, s, 1, 65536, 1, &T, e)))
            return r;
        src->seq_len = (int)T;
    }
    if (has_key(ff->keys, "label")) { /* label/target columns, features, header, time-series windows */
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(sj, "header");
        if (h && !cJSON_IsBool(h)) {
            char p[128];
            snprintf(p, sizeof p, "%s.header", path);
            return FAIL(e, s, p, "expected true or false");
        }
        if (h)
            src->header = cJSON_IsTrue(h);
        const cJSON *win = cJSON_GetObjectItemCaseSensitive(sj, "window");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(sj, "label");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(sj, "target");
        char lp[128];
        if (win) {
            double v = 0;
            if ((r = get_num(sj, "window", path, s, 1, 65536, 1, &v, e)))
                return r;
            src->window = (int)v;
            v = 1;
            if ((r = get_num(sj, "horizon", path, s, 0, 65536, 1, &v, e)))
                return r;
            src->horizon = (int)v;
            v = 1;
            if ((r = get_num(sj, "stride", path, s, 1, 65536, 1, &v, e)))
                return r;
            src->stride = (int)v;
            snprintf(lp, sizeof lp, "%s.label", path);
            if (lb)
                return FAIL(e, s, lp, "a time series (window) names its predicted column(s) with \"target\", not \"label\"");
            snprintf(lp, sizeof lp, "%s.target", path);
            if (!tg)
                return FAIL(e, s, lp, "required key is missing (the column the windows predict, e.g. \"target\": \"temp\")");
            lb = tg;
        } else {
            static const char *const wkeys[] = {"target", "horizon", "stride"};
            for (int i = 0; i < 3; i++)
                if (cJSON_GetObjectItemCaseSensitive(sj, wkeys[i])) {
                    snprintf(lp, sizeof lp, "%s.%s", path, wkeys[i]);
                    return FAIL(e, s, lp, "only for time series: add \"window\" (rows per sample)%s",
                                i == 0 ? ", or name the column with \"label\" for one sample per row" : "");
                }
            snprintf(lp, sizeof lp, "%s.label", path);
            if (!lb)
                return FAIL(e, s, lp, "required key is missing (the label column's name or index)");
        }
        if ((r = parse_columns(lb, lp, s, 16, src->label_name, src->label_index, &src->nlabels, e)))
            return r;
        const cJSON *fj = cJSON_GetObjectItemCaseSensitive(sj, "features");
        if (fj) {
            char fp[128];
            snprintf(fp, sizeof fp, "%s.features", path);
            int nf = cJSON_IsArray(fj) ? cJSON_GetArraySize(fj) : 1;
            if (nf < 1 || nf > 4096)
                return FAIL(e, s, fp, "expected 1 to 4096 feature columns");
            src->feat_name = calloc((size_t)nf, sizeof *src->feat_name);
            src->feat_index = calloc((size_t)nf, sizeof *src->feat_index);
            if (!src->feat_name || !src->feat_index)
                return nn_fail(e, NN_ENOMEM, "out of memory");
            if ((r = parse_columns(fj, fp, s, nf, src->feat_name, src->feat_index, &src->nfeat_cols, e)))
                return r;
        }
    }
    const cJSON *aug = cJSON_GetObjectItemCaseSensitive(sj, "augment");
    if (aug) {
        char ap[128];
        snprintf(ap, sizeof ap, "%s.augment", path);
        if (!cJSON_IsObject(aug))
            return FAIL(e, s, ap, "expected an object such as {\"flip_horizontal\": true, \"crop_padding\": 4}");
        static const char *const akeys[] = {"flip_horizontal", "crop_padding", "translate", NULL};
        if ((r = check_keys(aug, akeys, NULL, ap, s, e)))
            return r;
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(aug, "flip_horizontal");
        if (fl && !cJSON_IsBool(fl))
            return FAIL(e, s, ap, "flip_horizontal: expected true or false");
        src->aug_flip = fl && cJSON_IsTrue(fl);
        double v = 0;
        if ((r = get_num(aug, "crop_padding", ap, s, 0, 64, 1, &v, e)))
            return r;
        src->aug_crop = (int)v;
        v = 0;
        if ((r = get_num(aug, "translate", ap, s, 0, 64, 1, &v, e)))
            return r;
        src->aug_translate = (int)v;
    }
    if ((r = get_num(sj, "limit", path, s, 1, (double)NN_MAX_SAMPLES, 1, &lim, e)))
        return r;
    src->limit = (long)lim;
    return 0;
}

static int parse_data(const cJSON *root, nn_spec *s, nn_err *e)
{
    const cJSON *d;
    int r = get_obj(root, "data", "", s, e, &d);
    if (r || !d)
        return r;
    static const char *const keys[] = {"train", "test", "classes", NULL};
    if ((r = check_keys(d, keys, NULL, "data", s, e)))
        return r;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "train");
    if (t) {
        if ((r = parse_source(t, "data.train", s, &s->train_src, e)))
            return r;
        s->has_train = 1;
    }
    t = cJSON_GetObjectItemCaseSensitive(d, "test");
    if (t) {
        if ((r = parse_source(t, "data.test", s, &s->test_src, e)))
            return r;
        s->has_test = 1;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "classes");
    if (c) {
        if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) < 1 || cJSON_GetArraySize(c) > NN_MAX_CLASSES)
            return FAIL(e, s, "data.classes", "expected a non-empty array of class names");
        int n = cJSON_GetArraySize(c), i = 0;
        s->classes = calloc((size_t)n, sizeof *s->classes);
        if (!s->classes)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        for (const cJSON *it = c->child; it; it = it->next, i++) {
            char p[64];
            snprintf(p, sizeof p, "data.classes[%d]", i);
            if (!cJSON_IsString(it) || !it->valuestring[0])
                return FAIL(e, s, p, "expected a non-empty string");
            if (!(s->classes[i] = nn_strdup(it->valuestring)))
                return nn_oom(e, "for data.classes[%d]", i);
            s->nclasses = i + 1;
        }
        size_t a, b; /* sorted, not every pair: 65536 names took 10-34 s */
        int dup = nn_find_duplicate((const char *const *)s->classes, (size_t)n, &a, &b);
        if (dup < 0)
            return nn_oom(e, "checking %d class names", n);
        if (dup > 0) {
            char p[64];
            snprintf(p, sizeof p, "data.classes[%zu]", b);
            return FAIL(e, s, p, "'%s' is already data.classes[%zu]", s->classes[b], a);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- main */

static void json_position(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else
            (*col)++;
    }
}

/* 1: the text ends inside a string; 2: with '{' or '[' still open; 0: neither. */
static int json_truncated(const char *text, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"')
            in_str = 1;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
    }
    return in_str ? 1 : depth > 0 ? 2 : 0;
}

/* 1 with the JSON path of the first number that overflowed to +-inf in
 * parsing (1e400): anywhere in the model, whatever reads it later. */
static int nonfinite_number(const cJSON *x, char *path, size_t n)
{
    size_t l = strlen(path);
    int i = 0;
    for (const cJSON *c = x->child; c; c = c->next, i++) {
        if (cJSON_IsArray(x))
            snprintf(path + l, n - l, "[%d]", i);
        else
            snprintf(path + l, n - l, "%s%s", l ? "." : "", c->string ? c->string : "?");
        if ((cJSON_IsNumber(c) && !isfinite(c->valuedouble)) || nonfinite_number(c, path, n))
            return 1;
        path[l] = 0;
    }
    return 0;
}

int nn_spec_parse(const char *text, size_t len, const char *file, nn_spec *s, nn_err *e)
{
    memset(s, 0, sizeof *s);
    s->file = nn_strdup(file ? file : "model");
    const char *end = NULL;
    s->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!s->root) {
        const char *at = cJSON_GetErrorPtr();
        if (!at || at < text || at > text + len)
            at = end ? end : text;
        int line, col;
        json_position(text, at, &line, &col);
        char near[24] = "";
        size_t k = 0;
        for (const char *p = at; p < text + len && *p && *p != '\n' && k < sizeof near - 1; p++)
            near[k++] = (*p >= 32 && *p < 127) ? *p : '?';
        near[k] = 0;
        int depth = 0, in_str = 0;
        for (const char *p = text; p < at; p++) {
            if (in_str)
                in_str = *p == '\\' ? (p++, 1) : *p != '"';
            else if (*p == '"')
                in_str = 1;
            else
                depth += (*p == '[' || *p == '{') - (*p == ']' || *p == '}');
        }
        if (depth >= CJSON_NESTING_LIMIT)
            return nn_fail(e, NN_EDATA, "%s:%d:%d: JSON nested deeper than %d levels", s->file, line, col,
                           CJSON_NESTING_LIMIT);
        if (json_truncated(text, len)) {
            json_position(text, text + len, &line, &col);
            return nn_fail(e, NN_EDATA, "%s:%d:%d: malformed JSON: unexpected end of file (an unclosed %s)", s->file,
                           line, col, json_truncated(text, len) == 1 ? "string" : "'{' or '['");
        }
        return nn_fail(e, NN_EDATA, "%s:%d:%d: malformed JSON%s%s%s", s->file, line, col,
                       k ? " near '" : " (unexpected end of file)", near, k ? "'" : "");
    }
    char npath[512] = "";
    if (nonfinite_number(s->root, npath, sizeof npath))
        return FAIL(e, s, npath, "a number beyond the range of a double (about 1.8e308)");
    /* a \u0000 escape would cut the C string it decodes to, silently */
    for (const char *p = text; p + 5 < text + len && p < end; p++) {
        if (*p != '\\')
            continue;
        if (p[1] == 'u' && !memcmp(p + 2, "0000", 4)) {
            int line, col;
            json_position(text, p, &line, &col);
            return nn_fail(e, NN_EDATA, "%s:%d:%d: a NUL character (\\u0000) in a string is not allowed", s->file,
                           line, col);
        }
        p++; /* the escaped character */
    }
    if (!cJSON_IsObject(s->root))
        return FAIL(e, s, "", "the model must be a JSON object");
    static const char *const keys[] = {"name", "description", "input", "layers", "loss", "optimizer",
                                       "train", "data", "output", NULL};
    int r = check_keys(s->root, keys, NULL, "", s, e);
    if (r)
        return r;
    const char *nm = NULL;
    if ((r = get_str(s->root, "name", "", s, &nm, e)))
        return r;
    snprintf(s->name, sizeof s->name, "%s", nm ? nm : "model");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(s->root, "description");
    if (desc && !cJSON_IsString(desc))
        return FAIL(e, s, "description", "expected a string");
    if ((r = parse_input(s->root, s, e)) || (r = parse_layers(s->root, s, e)) || (r = parse_loss(s->root, s, e)) ||
        (r = parse_optimizer(s->root, s, e)) || (r = parse_train(s->root, s, e)) || (r = parse_data(s->root, s, e)))
        return r;
    const char *out = NULL;
    if ((r = get_str(s->root, "output", "", s, &out, e)))
        return r;
    if (out)
        s->output = nn_strdup(out);
    else {
        /* default: <json basename>.bin in the current directory */
        const char *b = strrchr(s->file, '/');
        b = b ? b + 1 : s->file;
        size_t bl = strlen(b);
        if (bl > 5 && !strcmp(b + bl - 5, ".json"))
            bl -= 5;
        s->output = malloc(bl + 5);
        if (s->output)
            snprintf(s->output, bl + 5, "%.*s.bin", (int)bl, b);
    }
    return 0;
}

int nn_spec_load(const char *file, nn_spec *s, nn_err *e)
{
    unsigned char *buf;
    size_t len;
    memset(s, 0, sizeof *s);
    int r = nn_read_text_file(file, MAX_JSON_BYTES, &buf, &len, e);
    if (r)
        return r;
    r = nn_spec_parse((const char *)buf, len, file, s, e);
    free(buf);
    return r;
}

void nn_spec_free(nn_spec *s)
{
    for (int i = 0; i < s->nlayers; i++) {
        nn_layer *L = &s->layers[i];
        if (L->type && L->type->destroy)
            L->type->destroy(L);
        free(L->p);
    }
    free(s->layers);
    for (int i = 0; i < s->nclasses; i++)
        free(s->classes[i]);
    free(s->classes);
    nn_source_free(&s->train_src);
    nn_source_free(&s->test_src);
    free(s->mean);
    free(s->std);
    free(s->output);
    free(s->file);
    cJSON_Delete(s->root);
    memset(s, 0, sizeof *s);
}

static void set_abs(cJSON *obj, const char *key, const char *resolved)
{
    if (!obj || !resolved || !cJSON_GetObjectItemCaseSensitive(obj, key))
        return;
    char *abs = realpath(resolved, NULL);
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(abs ? abs : resolved));
    free(abs);
}

char *nn_spec_canonical(const nn_spec *s, const nn_shape *input, nn_err *e)
{
    cJSON *c = cJSON_Duplicate(s->root, 1);
    if (!c) {
        nn_fail(e, NN_ENOMEM, "out of memory");
        return NULL;
    }
    cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "data");
    const nn_source *srcs[2] = {&s->train_src, &s->test_src};
    const char *names[2] = {"train", "test"};
    for (int i = 0; i < 2 && d; i++) {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(d, names[i]);
        set_abs(o, "path", srcs[i]->path);
        set_abs(o, "images", srcs[i]->images);
        set_abs(o, "labels", srcs[i]->labels);
    }
    /* the effective training settings (after command-line overrides) */
    cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "train");
    if (!t) {
        t = cJSON_CreateObject();
        cJSON_AddItemToObject(c, "train", t);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(t, "epochs");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "batch_size");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "seed");
    cJSON_AddNumberToObject(t, "epochs", s->train.epochs);
    cJSON_AddNumberToObject(t, "batch_size", s->train.batch_size);
    cJSON_AddNumberToObject(t, "seed", (double)s->train.seed);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(c, "optimizer");
    if (cJSON_IsObject(o)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "lr");
        cJSON_AddNumberToObject(o, "lr", s->opt.lr);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "optimizer");
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", nn_opt_name(s->opt.type));
        cJSON_AddNumberToObject(o, "lr", s->opt.lr);
        cJSON_AddItemToObject(c, "optimizer", o);
    }
    /* the input shape actually used (it may have come from the data) */
    if (!input && s->has_input_shape)
        input = &s->input;
    if (input) {
        cJSON *in = cJSON_GetObjectItemCaseSensitive(c, "input");
        if (!in) {
            in = cJSON_CreateObject();
            cJSON_AddItemToObject(c, "input", in);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(in, "shape");
        cJSON_AddItemToObject(in, "shape", cJSON_CreateIntArray(input->d, input->nd));
    }
    char *txt = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!txt)
        nn_fail(e, NN_ENOMEM, "out of memory");
    return txt;
}

const char *nn_loss_name(nn_loss_kind k)
{
    return k == NN_LOSS_CE ? "cross_entropy" : k == NN_LOSS_BCE ? "binary_cross_entropy" : "mse";
}

const char *nn_opt_name(nn_opt_kind k)
{
    return k == NN_OPT_SGD ? "sgd" : k == NN_OPT_ADAM ? "adam" : k == NN_OPT_ADAMW ? "adamw" : "rmsprop";
}
