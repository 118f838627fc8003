#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "dist.h"
#include "modelbin.h"
#include "loss.h"
#include "onnx.h"
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
    /* the model's classes once derived; before that, the names the JSON gives */
    lo->class_names = m->classes ? m->classes : m->spec.classes;
    lo->nclasses = m->classes ? m->nclasses : m->spec.nclasses;
    lo->by_index = m->spec.nclasses > 0; /* names given in the JSON: integer labels index them */
}

/* A trained model's vocabulary (token data): its class names are the byte values. */
static int *model_vocab(const nn_model *m)
{
    int *vocab = m->nclasses ? malloc(sizeof(int) * (size_t)m->nclasses) : NULL;
    for (int i = 0; vocab && i < m->nclasses; i++)
        vocab[i] = atoi(m->classes[i]);
    return vocab;
}

int nn_model_load_source(const nn_model *m, const nn_source *src, int labels_optional, nn_dataset *ds, nn_err *e)
{
    memset(ds, 0, sizeof *ds);
    const nn_format *f = nn_format_of(src);
    if (!f || !f->load)
        return nn_fail(e, NN_ESOFTWARE, "%s: format '%s' is not loaded into memory", src->json_path ? src->json_path : "data",
                       src->format);
    nn_load_opts o;
    memset(&o, 0, sizeof o);
    nn_model_label_opts(m, &o.labels);
    o.labels.labels_optional = labels_optional;
    int *vocab = NULL;
    if ((f->flags & NN_FMT_TOKENS) && m->classes) {
        /* a token source evaluated or predicted with a trained model: its vocabulary */
        o.vocab = vocab = model_vocab(m);
        o.nvocab = m->nclasses;
    }
    int r = f->load(src, &o, ds, e);
    free(vocab);
    if (r)
        return r;
    if (m->built && ds->dim != m->net.in_dim) {
        char b[64];
        const char *fn = src->path ? src->path : src->images;
        r = nn_fail(e, NN_EDATA, "%s: %zu features per sample, but the model's input shape %s needs %zu", fn, ds->dim,
                    nn_shape_str(&m->net.in_shape, b, sizeof b), m->net.in_dim);
        nn_dataset_free(ds);
    }
    return r;
}

/* --------------------------------------------------------- model.bin I/O */

typedef struct collect {
    nn_modelbin *c;
    nn_dev *dev;
} collect;

static int collect_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    collect *cc = ctx;
    nn_modelbin_tensor *t = &cc->c->tensors[cc->c->ntensors];
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
    nn_modelbin c;
    memset(&c, 0, sizeof c);
    int np = 0;
    nn_net_each_param(&m->net, count_param, &np, e);
    c.tensors = calloc((size_t)(np + nmore + 1), sizeof *c.tensors);
    c.model_json = nn_spec_canonical(&m->spec, &m->input, e);
    int r = 0;
    if (!c.tensors || !c.model_json)
        r = e->code ? e->code : nn_fail(e, NN_ENOMEM, "out of memory");
    collect cc = {&c, &m->dev};
    if (!r)
        r = nn_net_each_param(&m->net, collect_param, &cc, e);
    for (int i = 0; !r && i < nmore; i++) {
        nn_modelbin_tensor *t = &c.tensors[c.ntensors];
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
        r = nn_modelbin_write(path, &c, e);
        c.classes = NULL; /* borrowed */
        c.nclasses = 0;
        c.mean = c.std = NULL;
        c.nnorm = 0;
        c.extra_json = NULL;
    }
    nn_modelbin_free(&c);
    return r;
}

int nn_model_save(nn_model *m, const char *path, nn_err *e) { return nn_model_save_state(m, path, NULL, NULL, 0, e); }

int nn_model_place_params(nn_model *m, const nn_modelbin *c, const char *path, nn_err *e);

typedef struct place {
    const nn_modelbin *c;
    const char *path;
    nn_dev *dev;
} place;

static int place_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    place *pl = ctx;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, p->name);
    const nn_modelbin_tensor *t = nn_modelbin_find(pl->c, name);
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

int nn_model_place_params(nn_model *m, const nn_modelbin *c, const char *path, nn_err *e)
{
    place pl = {c, path, &m->dev};
    return nn_net_each_param(&m->net, place_param, &pl, e);
}

int nn_model_stored_vocab(const nn_spec *s, int nclasses)
{
    return s->has_train && nn_source_is(&s->train_src, NN_FMT_TOKENS) ? nclasses : 0;
}

int nn_model_load(const char *path, const char *device, int max_batch, nn_model *m, nn_err *e)
{
    memset(m, 0, sizeof *m);
    nn_modelbin c;
    int r = nn_onnx_path(path) ? nn_onnx_read(path, &c, e) : nn_modelbin_read(path, &c, e);
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
    m->input = m->spec.input; /* the shape used in training, stored as input.shape */
    m->vocab = nn_model_stored_vocab(&m->spec, c.nclasses);
    if ((r = nn_net_build(&m->net, &m->spec, &m->input, m->vocab, e)))
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
    nn_modelbin_free(&c);
    return r;
}

/* ------------------------------------------------------ evaluate, predict */

int nn_model_open_data(const nn_model *m, const nn_source *src, nn_data *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    const nn_format *f = nn_format_of(src);
    int r;
    if (f && !f->scan) {
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
    if ((r = f->scan(src, &lo, &out->set, e)))
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

int nn_model_open_train(const nn_model *m, double val_fraction, nn_data *out, size_t *nval, nn_err *e)
{
    const nn_source *src = &m->spec.train_src;
    *nval = 0;
    if (!nn_source_is(src, NN_FMT_TOKENS))
        return nn_model_open_data(m, src, out, e);
    /* validation by position: the corpus' last windows */
    memset(out, 0, sizeof *out);
    nn_load_opts o;
    memset(&o, 0, sizeof o);
    nn_model_label_opts(m, &o.labels);
    o.val_fraction = val_fraction;
    o.nval = nval;
    int r = nn_format_of(src)->load(src, &o, &out->ds, e);
    out->n = out->ds.n;
    out->nclasses = out->ds.nclasses;
    out->class_names = out->ds.class_names;
    return r;
}

/* Classes for the model from the training data and the JSON. */
static int derive_classes(nn_model *m, const nn_data *data, nn_err *e)
{
    nn_spec *s = &m->spec;
    if (m->task == NN_TASK_REGRESS) {
        m->tdim = data->ds.tdim;
        return 0;
    }
    int n = 0;
    char **src = NULL;
    if (s->nclasses) {
        n = s->nclasses;
        src = s->classes;
    } else {
        n = data->nclasses;
        src = data->class_names;
    }
    const int *y = data->streamed ? data->set.labels : data->ds.y;
    if (y)
        for (size_t i = 0; i < data->n; i++)
            if (y[i] < 0 || y[i] >= n)
                return nn_fail(e, NN_EDATA, "%s: data.classes names %d classes, but the training labels go up to %d",
                               s->file, n, y[i]);
    m->classes = calloc((size_t)(n ? n : 1), sizeof *m->classes);
    if (!m->classes)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    m->nclasses = n;
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        m->classes[i] = nn_strdup(src ? src[i] : num);
        if (!m->classes[i])
            return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    return 0;
}

/* The input shape: given (checked against resident data), or the data's. */
static int derive_input(nn_model *m, const nn_data *train, nn_err *e)
{
    const nn_spec *s = &m->spec;
    nn_shape *in = &m->input;
    if (s->has_input_shape) {
        *in = s->input;
        if (train && !train->streamed && nn_shape_size(in) != train->ds.dim) {
            char b[64];
            return nn_fail(e, NN_EDATA, "%s: input.shape %s holds %zu values, but data.train has %zu features per sample",
                           s->file, nn_shape_str(in, b, sizeof b), nn_shape_size(in), train->ds.dim);
        }
        return 0;
    }
    if (!train)
        return nn_fail(e, NN_EDATA, "%s: input.shape is needed for synthetic data (or pass --data)", s->file);
    const nn_dataset *ds = &train->ds;
    memset(in, 0, sizeof *in);
    in->nd = ds->seq_f > 0 ? 2 : (ds->h * ds->w > 1) ? 3 : 1;
    if (in->nd == 2) { /* time-series windows: [steps, features] */
        in->d[0] = (int)(ds->dim / (size_t)ds->seq_f);
        in->d[1] = ds->seq_f;
    } else if (in->nd == 3) {
        in->d[0] = ds->c;
        in->d[1] = ds->h;
        in->d[2] = ds->w;
    } else
        in->d[0] = (int)ds->dim;
    return 0;
}

int nn_model_derive(nn_model *m, const nn_data *train, nn_err *e)
{
    int r;
    m->task = m->spec.loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    if (train && (r = derive_classes(m, train, e)))
        return r;
    if ((r = derive_input(m, train, e)))
        return r;
    m->vocab = train && m->spec.has_train && nn_source_is(&m->spec.train_src, NN_FMT_TOKENS) ? train->ds.nclasses : 0;
    if ((r = nn_net_build(&m->net, &m->spec, &m->input, m->vocab, e)))
        return r;
    m->built = 1;
    return 0;
}

/* Mean/std per channel (images) or per feature (CSV) over the training rows.
 * Time-series windows ([T, F]) get one mean/std per feature F over all time
 * steps, stored repeated for each step (dim values). */
static int auto_norm(nn_model *m, const nn_dataset *ds, const int *rows, size_t n, nn_err *e)
{
    size_t hw = (size_t)ds->h * (size_t)ds->w;
    int k = hw > 1 ? ds->c : (int)ds->dim;
    size_t per = hw > 1 ? hw : 1;
    size_t F = ds->seq_f > 0 ? (size_t)ds->seq_f : 0;
    double *sum = calloc((size_t)k, sizeof(double)), *sq = calloc((size_t)k, sizeof(double));
    m->mean = malloc(sizeof(float) * (size_t)k);
    m->std = malloc(sizeof(float) * (size_t)k);
    if (!sum || !sq || !m->mean || !m->std) {
        free(sum);
        free(sq);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = ds->x + (size_t)rows[i] * ds->dim;
        for (size_t j = 0; j < ds->dim; j++) {
            size_t c = F ? j % F : j / per;
            sum[c] += x[j];
            sq[c] += (double)x[j] * x[j];
        }
    }
    double cnt = (double)n * (double)per;
    if (F)
        cnt = (double)n * (double)(ds->dim / F); /* every step of every window */
    for (int c = 0; c < k; c++) {
        if (F && (size_t)c >= F) {
            m->mean[c] = m->mean[(size_t)c % F];
            m->std[c] = m->std[(size_t)c % F];
            continue;
        }
        double mu = cnt > 0 ? sum[c] / cnt : 0, var = cnt > 0 ? sq[c] / cnt - mu * mu : 1;
        double sd = var > 1e-12 ? sqrt(var) : 1.0;
        m->mean[c] = (float)mu;
        m->std[c] = (float)sd;
    }
    m->nnorm = k;
    free(sum);
    free(sq);
    return 0;
}

int nn_model_derive_norm(nn_model *m, const nn_data *train, const int *rows, size_t n, nn_err *e)
{
    const nn_spec *s = &m->spec;
    int r = 0;
    if (s->norm == NN_NORM_AUTO && !nn_source_is(&s->train_src, NN_FMT_TOKENS)) { /* token ids are not normalised */
        if (!train->streamed)
            return auto_norm(m, &train->ds, rows, n, e);
        /* streamed images: statistics of up to 2000 training images */
        size_t k = n < 2000 ? n : 2000;
        nn_dataset sample;
        r = nn_imgset_decode(&train->set, rows, k, m->input.d[0], m->input.d[1], m->input.d[2], &sample, e);
        if (!r) {
            int *ident = malloc(k * sizeof(int));
            for (size_t i = 0; ident && i < k; i++)
                ident[i] = (int)i;
            r = ident ? auto_norm(m, &sample, ident, k, e) : nn_fail(e, NN_ENOMEM, "out of memory");
            free(ident);
            nn_dataset_free(&sample);
        }
        return r;
    }
    if (s->norm == NN_NORM_GIVEN) {
        m->nnorm = s->nnorm;
        m->mean = malloc(sizeof(float) * (size_t)s->nnorm);
        m->std = malloc(sizeof(float) * (size_t)s->nnorm);
        if (!m->mean || !m->std)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        memcpy(m->mean, s->mean, sizeof(float) * (size_t)s->nnorm);
        memcpy(m->std, s->std, sizeof(float) * (size_t)s->nnorm);
    }
    return 0;
}

int nn_model_feed(nn_model *m, nn_data *data, const int *rows, size_t nrows, nn_feed *f, nn_err *e)
{
    if (!data->streamed)
        return nn_feed_resident(f, &m->dev, &data->ds, rows, nrows, e);
    const nn_shape *is = &m->input;
    return nn_feed_stream(f, &m->dev, &data->set, rows, nrows, m->net.max_batch, is->d[0], is->d[1], is->d[2], e);
}

void nn_data_free(nn_data *d)
{
    nn_dataset_free(&d->ds);
    nn_imgset_free(&d->set);
    memset(d, 0, sizeof *d);
}

int nn_model_confusion_size(const nn_model *m)
{
    if (m->task != NN_TASK_CLASSIFY || nn_loss_rows(&m->net) != 1 || m->nclasses < 2)
        return 0;
    return m->nclasses * (m->nclasses + 1);
}

int nn_model_evaluate_ex(nn_model *m, nn_feed *f, double *loss, double *metric, long *conf, nn_err *e)
{
    nn_net *net = &m->net;
    nn_dev *d = &m->dev;
    int B = net->max_batch;
    nn_loss_bufs lb = {0};
    size_t rows = nn_loss_rows(net);
    const int csize = conf ? nn_model_confusion_size(m) : 0;
    if (conf && !csize)
        return nn_fail(e, NN_EUSAGE, "a confusion matrix needs a classifier with one label per sample");
    /* the counts: int on the device (zeroed here), long on the host */
    int *hc = csize ? calloc((size_t)csize, sizeof *hc) : NULL;
    cl_mem dconf = NULL;
    if (csize && !hc)
        return nn_fail(e, NN_ENOMEM, "out of memory (the confusion matrix)");
    int r = nn_loss_bufs_alloc(d, net, B, m->tdim, &lb, e);
    if (!r && csize && !(r = nn_buf_alloc(d, (size_t)csize * sizeof(int), "the confusion matrix", &dconf, e)))
        r = nn_buf_write(d, dconf, 0, (size_t)csize * sizeof(int), hc, 1, e);
    cl_mem target = lb.target, metrics = lb.metrics, acc = lb.acc;
    const int kout = m->spec.loss == NN_LOSS_BCE ? 1 : (int)net->out_dim;
    /* data-parallel (dist.h): each rank evaluates its share of every global
     * batch of B * ranks samples; the sums are reduced */
    size_t gB = (size_t)B * (size_t)nn_dist_get()->size;
    nn_feed_shard(f, (int)gB);
    if (!r)
        r = nn_feed_begin(f, d, NULL, 0, e);
    nn_run run = {.dev = d, .train = 0};
    for (size_t s = 0; !r && s < f->n; s += gB) {
        size_t lo;
        nn_dist_share(f->n - s < gB ? f->n - s : gB, &lo, &run.n);
        r = nn_feed_batch(f, net, s + lo, run.n, target, NULL, 0, 0, e);
        if (!r && run.n > 0)
            r = nn_net_forward(net, &run, e);
        if (!r && run.n > 0)
            r = nn_loss_run(net, &run, target, metrics, 0, e);
        if (!r && run.n > 0)
            r = nn_metrics_accum(d, metrics, run.n * (int)rows, acc, e);
        if (!r && csize)
            r = nn_launch(d, "confusion_accum", (size_t)run.n, 0, e, 6, KMEM(nn_net_out(net)->y), KMEM(target),
                          KINT(run.n), KINT(kout), KINT(nn_loss_from_logits(net)), KMEM(dconf));
    }
    nn_feed_end(f);
    float h[4] = {0};
    if (!r)
        r = nn_buf_read(d, acc, 0, sizeof h, h, e);
    if (!r && csize)
        r = nn_buf_read(d, dconf, 0, (size_t)csize * sizeof(int), hc, e);
    if (!r)
        r = nn_dist_sum(h, 3, e);
    /* the ranks' confusion counts (exact in a float up to 2^24 per cell) */
    float *fc = csize && nn_dist_get()->size > 1 ? malloc((size_t)csize * sizeof *fc) : NULL;
    if (!r && fc) {
        for (int i = 0; i < csize; i++)
            fc[i] = (float)hc[i];
        if (!(r = nn_dist_sum(fc, (size_t)csize, e)))
            for (int i = 0; i < csize; i++)
                hc[i] = (int)fc[i];
    } else if (!r && csize && nn_dist_get()->size > 1)
        r = nn_fail(e, NN_ENOMEM, "out of memory (the confusion matrix)");
    free(fc);
    if (!r) {
        *loss = h[2] > 0 ? h[0] / h[2] : NAN;
        *metric = h[2] > 0 ? h[1] / h[2] : NAN;
        for (int i = 0; i < csize; i++)
            conf[i] = hc[i];
    }
    nn_buf_free(&dconf);
    free(hc);
    nn_loss_bufs_free(&lb);
    return r;
}

int nn_model_evaluate(nn_model *m, nn_feed *f, double *loss, double *metric, nn_err *e)
{
    return nn_model_evaluate_ex(m, f, loss, metric, NULL, e);
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
