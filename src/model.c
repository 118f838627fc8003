#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "checkpoint.h"
#include "loss.h"
#include "tune.h"
#include "util.h"

int nn_model_open_device(nn_model *m, const char *device, int max_batch, int training, nn_err *e)
{
    int r = nn_dev_open(&m->dev, device, m->profiling, e);
    if (r)
        return r;
    m->dev_open = 1;
    if ((r = nn_blas_open(&m->dev, NN_GEMM_AUTO, e)))
        return r;
    nn_tune_apply(&m->dev);
    r = nn_net_alloc(&m->net, &m->dev, max_batch, training, e);
    if (!r && m->nnorm && (r = nn_net_set_norm(&m->net, m->mean, m->std, m->nnorm, e)))
        nn_wrap(e, "%s: input.normalize: ", m->spec.file ? m->spec.file : "model");
    return r;
}

void nn_model_label_opts(const nn_model *m, nn_label_opts *lo)
{
    memset(lo, 0, sizeof *lo);
    lo->task = m->task;
    lo->class_names = m->classes;
    lo->nclasses = m->nclasses;
    lo->by_index = m->spec.nclasses > 0; /* names given in the JSON: integer labels index them */
}

int nn_model_load_source(const nn_model *m, const nn_source *src, int labels_optional, nn_dataset *ds, nn_err *e)
{
    int r;
    memset(ds, 0, sizeof *ds);
    if (!strcmp(src->format, "idx")) {
        r = nn_idx_load(src, ds, e);
        if (!r && m->task != NN_TASK_CLASSIFY)
            r = nn_fail(e, NN_EDATA, "%s: IDX labels are classes, but the loss is mse", src->images);
        if (!r && ds->y && m->nclasses)
            for (size_t i = 0; i < ds->n; i++)
                if (ds->y[i] >= m->nclasses) {
                    r = nn_fail(e, NN_EDATA, "%s: label %d of sample %zu is not one of the model's %d classes",
                                src->labels, ds->y[i], i, m->nclasses);
                    break;
                }
    } else {
        nn_label_opts lo;
        nn_model_label_opts(m, &lo);
        lo.labels_optional = labels_optional;
        r = nn_csv_load(src, &lo, ds, e);
    }
    if (r)
        return r;
    if (m->built && ds->dim != m->net.in_dim) {
        char b[64];
        const char *f = src->path ? src->path : src->images;
        r = nn_fail(e, NN_EDATA, "%s: %zu features per sample, but the model's input shape %s needs %zu", f, ds->dim,
                    nn_shape_str(&m->net.in_shape, b, sizeof b), m->net.in_dim);
        nn_dataset_free(ds);
    }
    return r;
}

/* --------------------------------------------------------- model.bin I/O */

typedef struct collect {
    nn_ckpt *c;
    nn_dev *dev;
} collect;

static int collect_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    collect *cc = ctx;
    nn_ckpt_tensor *t = &cc->c->tensors[cc->c->ntensors];
    size_t nl = strlen(L->name) + strlen(p->name) + 2;
    t->name = malloc(nl);
    t->data = malloc(p->n * sizeof(float));
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    snprintf(t->name, nl, "%s.%s", L->name, p->name);
    t->ndim = p->shape.nd;
    for (int i = 0; i < p->shape.nd; i++)
        t->shape[i] = p->shape.d[i];
    t->length = p->n;
    cc->c->ntensors++;
    return nn_buf_read(cc->dev, p->w, 0, p->n * sizeof(float), t->data, e);
}

static int count_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    (*(int *)ctx)++;
    return 0;
}

int nn_model_save_state(nn_model *m, const char *path, const char *extra_json, const nn_extra_tensor *more,
                        int nmore, nn_err *e)
{
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    int np = 0;
    nn_net_each_param(&m->net, count_param, &np, e);
    c.tensors = calloc((size_t)(np + nmore + 1), sizeof *c.tensors);
    c.model_json = nn_spec_canonical(&m->spec, e);
    int r = 0;
    if (!c.tensors || !c.model_json)
        r = e->code ? e->code : nn_fail(e, NN_ENOMEM, "out of memory");
    collect cc = {&c, &m->dev};
    if (!r)
        r = nn_net_each_param(&m->net, collect_param, &cc, e);
    for (int i = 0; !r && i < nmore; i++) {
        nn_ckpt_tensor *t = &c.tensors[c.ntensors];
        t->name = nn_strdup(more[i].name);
        t->data = malloc(more[i].n * sizeof(float));
        if (!t->name || !t->data) {
            free(t->name);
            free(t->data);
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            break;
        }
        t->ndim = 1;
        t->shape[0] = (long)more[i].n;
        t->length = more[i].n;
        c.ntensors++;
        r = nn_buf_read(&m->dev, more[i].buf, 0, more[i].n * sizeof(float), t->data, e);
    }
    if (!r) {
        c.nclasses = m->nclasses;
        c.classes = m->classes;
        c.nnorm = m->nnorm;
        c.mean = m->mean;
        c.std = m->std;
        c.extra_json = (char *)extra_json;
        r = nn_ckpt_write(path, &c, e);
        c.classes = NULL; /* borrowed */
        c.nclasses = 0;
        c.mean = c.std = NULL;
        c.nnorm = 0;
        c.extra_json = NULL;
    }
    nn_ckpt_free(&c);
    return r;
}

int nn_model_save(nn_model *m, const char *path, nn_err *e) { return nn_model_save_state(m, path, NULL, NULL, 0, e); }

int nn_model_place_params(nn_model *m, const nn_ckpt *c, const char *path, nn_err *e);

typedef struct place {
    const nn_ckpt *c;
    const char *path;
    nn_dev *dev;
} place;

static int place_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    place *pl = ctx;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, p->name);
    const nn_ckpt_tensor *t = nn_ckpt_find(pl->c, name);
    if (!t)
        return nn_fail(e, NN_EDATA, "%s: tensor '%s' is missing", pl->path, name);
    int same = t->ndim == p->shape.nd && t->length == p->n;
    for (int i = 0; same && i < t->ndim; i++)
        same = t->shape[i] == p->shape.d[i];
    if (!same) {
        char b[64];
        return nn_fail(e, NN_EDATA, "%s: tensor '%s' has %zu values, but the model needs shape %s", pl->path, name,
                       t->length, nn_shape_str(&p->shape, b, sizeof b));
    }
    return nn_buf_write(pl->dev, p->w, 0, p->n * sizeof(float), t->data, 1, e);
}

int nn_model_place_params(nn_model *m, const nn_ckpt *c, const char *path, nn_err *e)
{
    place pl = {c, path, &m->dev};
    return nn_net_each_param(&m->net, place_param, &pl, e);
}

int nn_model_load(const char *path, const char *device, int max_batch, nn_model *m, nn_err *e)
{
    memset(m, 0, sizeof *m);
    nn_ckpt c;
    int r = nn_ckpt_read(path, &c, e);
    if (r)
        return r;
    r = nn_spec_parse(c.model_json, strlen(c.model_json), path, &m->spec, e);
    if (r) {
        nn_wrap(e, "the model JSON stored in ");
        goto out;
    }
    if (!m->spec.has_input_shape) {
        r = nn_fail(e, NN_EDATA, "%s: the stored model has no input shape", path);
        goto out;
    }
    if (m->spec.has_train && !strcmp(m->spec.train_src.format, "text"))
        m->spec.vocab = c.nclasses; /* the stored vocabulary sizes "vocab" layers */
    if ((r = nn_net_build(&m->net, &m->spec, e)))
        goto out;
    m->built = 1;
    m->task = m->spec.loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    m->tdim = m->task == NN_TASK_REGRESS ? (int)m->net.out_dim : 0;
    m->nclasses = c.nclasses;
    m->classes = c.classes;
    c.classes = NULL;
    c.nclasses = 0;
    m->nnorm = c.nnorm;
    m->mean = c.mean;
    m->std = c.std;
    c.mean = c.std = NULL;
    c.nnorm = 0;
    if (m->task == NN_TASK_CLASSIFY &&
        (m->spec.loss == NN_LOSS_CE ? (size_t)m->nclasses * nn_loss_rows(&m->net) != m->net.out_dim
                                    : m->nclasses != 2)) {
        r = nn_fail(e, NN_EDATA, "%s: %d class names stored for a model with %zu outputs", path, m->nclasses,
                    m->net.out_dim);
        goto out;
    }
    if ((r = nn_model_open_device(m, device, max_batch, 0, e)))
        goto out;
    r = nn_model_place_params(m, &c, path, e);
out:
    nn_ckpt_free(&c);
    return r;
}

/* ------------------------------------------------------ evaluate, predict */

int nn_model_open_data(const nn_model *m, const nn_source *src, nn_data *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    int r;
    if (!strcmp(src->format, "text")) {
        /* a text source evaluated or predicted with a trained model: its vocabulary */
        int *vocab = m->nclasses ? malloc(sizeof(int) * (size_t)m->nclasses) : NULL;
        for (int i = 0; vocab && i < m->nclasses; i++)
            vocab[i] = atoi(m->classes[i]);
        size_t nv;
        r = nn_text_load(src, vocab, m->nclasses, 0, &out->ds, &nv, e);
        free(vocab);
        if (r)
            return r;
        out->n = out->ds.n;
        out->nclasses = out->ds.nclasses;
        out->class_names = out->ds.class_names;
        return 0;
    }
    if (strcmp(src->format, "images") && strcmp(src->format, "list")) {
        if ((r = nn_model_load_source(m, src, 0, &out->ds, e)))
            return r;
        out->n = out->ds.n;
        out->nclasses = out->ds.nclasses;
        out->class_names = out->ds.class_names;
        return 0;
    }
    const nn_spec *s = &m->spec;
    if (!s->has_input_shape || s->input.nd != 3)
        return nn_fail(e, NN_EDATA, "%s: %s: image data needs \"input\": {\"shape\": [channels, height, width]} "
                                    "(e.g. [3, 32, 32]): images are converted and resized to it",
                       s->file, src->json_path ? src->json_path : "data");
    nn_label_opts lo;
    nn_model_label_opts(m, &lo);
    const nn_label_opts *lop = lo.class_names ? &lo : NULL;
    r = !strcmp(src->format, "images") ? nn_imgset_folder(src->path, lop, src->limit, &out->set, e)
                                       : nn_imgset_list(src->path, lop, src->limit, &out->set, e);
    if (r)
        return r;
    out->n = out->set.n;
    out->nclasses = out->set.nclasses;
    out->class_names = out->set.class_names;
    int c = s->input.d[0], h = s->input.d[1], w = s->input.d[2];
    double limit = 1073741824.0;
    const char *env = getenv("NNRUN_RESIDENT_MAX");
    if (env && *env)
        limit = strtod(env, NULL);
    double bytes = (double)out->set.n * c * h * w * sizeof(float);
    if (bytes > limit) {
        out->streamed = 1;
        return 0;
    }
    r = nn_imgset_decode(&out->set, NULL, 0, c, h, w, &out->ds, e);
    if (r)
        nn_data_free(out);
    return r;
}

int nn_model_feed(nn_model *m, nn_data *data, const int *rows, size_t nrows, nn_feed *f, nn_err *e)
{
    if (!data->streamed)
        return nn_feed_resident(f, &m->dev, &data->ds, rows, nrows, e);
    const nn_shape *is = &m->spec.input;
    return nn_feed_stream(f, &m->dev, &data->set, rows, nrows, m->net.max_batch, is->d[0], is->d[1], is->d[2], e);
}

void nn_data_free(nn_data *d)
{
    nn_dataset_free(&d->ds);
    nn_imgset_free(&d->set);
    memset(d, 0, sizeof *d);
}

int nn_model_evaluate(nn_model *m, nn_feed *f, double *loss, double *metric, nn_err *e)
{
    nn_net *net = &m->net;
    nn_dev *d = &m->dev;
    int B = net->max_batch;
    cl_mem target = NULL, metrics = NULL, acc = NULL;
    size_t tsz = nn_loss_target_bytes(net, m->tdim), rows = nn_loss_rows(net);
    int r = nn_buf_alloc(d, (size_t)B * tsz, "the batch labels", &target, e);
    if (!r)
        r = nn_buf_alloc(d, (size_t)B * rows * 2 * sizeof(float), "the batch metrics", &metrics, e);
    if (!r)
        r = nn_buf_alloc(d, 4 * sizeof(float), "the metric sums", &acc, e);
    if (!r)
        r = nn_feed_begin(f, d, NULL, 0, e);
    nn_run run = {.dev = d, .train = 0};
    for (size_t s = 0; !r && s < f->n; s += (size_t)B) {
        run.n = (int)(f->n - s < (size_t)B ? f->n - s : (size_t)B);
        r = nn_feed_batch(f, net, s, run.n, target, NULL, 0, 0, e);
        if (!r)
            r = nn_net_forward(net, &run, e);
        if (!r)
            r = nn_loss_run(net, &run, target, metrics, 0, e);
        if (!r)
            r = nn_metrics_accum(d, metrics, run.n * (int)rows, acc, e);
    }
    nn_feed_end(f);
    float h[4] = {0};
    if (!r)
        r = nn_buf_read(d, acc, 0, sizeof h, h, e);
    if (!r) {
        *loss = h[2] > 0 ? h[0] / h[2] : NAN;
        *metric = h[2] > 0 ? h[1] / h[2] : NAN;
    }
    nn_buf_free(&target);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    return r;
}

int nn_model_predict(nn_model *m, nn_devdata *dd, size_t start, int n, float *out, nn_err *e)
{
    nn_net *net = &m->net;
    nn_layer *o = nn_net_out(net);
    nn_run run = {.dev = &m->dev, .n = n, .train = 0};
    int r = nn_devdata_batch(net, dd, start, n, NULL, e);
    if (!r)
        r = nn_net_forward(net, &run, e);
    if (r)
        return r;
    cl_mem res = o->y;
    cl_mem tmp = NULL;
    if (m->task == NN_TASK_CLASSIFY && nn_loss_from_logits(net)) {
        /* the net ends in logits: report probabilities */
        size_t cnt = (size_t)n * net->out_dim;
        r = nn_buf_alloc(&m->dev, cnt * sizeof(float), "the probabilities", &tmp, e);
        if (!r && m->spec.loss == NN_LOSS_CE)
            r = nn_launch(&m->dev, "softmax_forward", (size_t)n, 0, e, 4, KMEM(o->y), KMEM(tmp), KINT(n),
                          KINT(net->out_dim));
        else if (!r)
            r = nn_act_forward(&m->dev, NN_ACT_SIGMOID, o->y, tmp, cnt, e);
        res = tmp;
    }
    if (!r)
        r = nn_buf_read(&m->dev, res, 0, (size_t)n * net->out_dim * sizeof(float), out, e);
    nn_buf_free(&tmp);
    return r;
}

void nn_model_free(nn_model *m)
{
    nn_net_free(&m->net);
    if (m->dev_open) {
        nn_blas_close(&m->dev);
        nn_dev_close(&m->dev);
    }
    nn_spec_free(&m->spec);
    for (int i = 0; i < m->nclasses; i++)
        free(m->classes[i]);
    free(m->classes);
    free(m->mean);
    free(m->std);
    memset(m, 0, sizeof *m);
}
