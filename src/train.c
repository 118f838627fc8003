/* train.c - the training loop. Per step: gather the batch on the device,
 * forward, loss (+ its gradient), backward, optimiser. Nothing is read back
 * inside an epoch except when the TTY progress bar is refreshed. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas.h"
#include "checkpoint.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "util.h"

/* Fails early (before hours of training) when the output's folder is not
 * a writable directory; the atomic write itself happens at the end. */
#define LOG_HEAD "epoch,loss," /* how the metrics log begins: nnrun overwrites only such a file */

static int check_output_dir(const char *out, nn_err *e)
{
    char dir[4096];
    const char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == out)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return nn_fail(e, NN_EIO, "%s: the output folder '%s' does not exist", out, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return nn_fail(e, NN_EIO, "%s: the output folder '%s' is not writable: %s", out, dir, strerror(errno));
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return nn_fail(e, NN_EIO, "%s: is a folder; --output needs a file name", out);
    return 0;
}

/* Classes for the model from the training data and the JSON. */
static int setup_classes(nn_model *m, nn_data *data, nn_err *e)
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

static void progress_bar(int epoch, int epochs, size_t done, size_t total, double loss, double metric, int regress)
{
    int w = 24, fill = total ? (int)((double)done / (double)total * w) : w;
    char bar[32];
    for (int i = 0; i < w; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %zu/%zu  loss %.4f  %s %.4f \033[K", epoch, epochs, bar, done, total, loss,
            regress ? "mae" : "acc", metric);
    fflush(stderr);
}

int nn_train_step(nn_model *m, nn_optim *opt, nn_feed *f, size_t start, const nn_run *run, cl_mem target,
                  cl_mem metrics, cl_mem acc, const nn_augment *aug, nn_err *e)
{
    nn_net *net = &m->net;
    int r;
    if ((r = nn_feed_batch(f, net, start, run->n, target, aug, run->seed, run->step, e)) ||
        (r = nn_net_forward(net, run, e)) || (r = nn_net_zero_grads(net, e)) ||
        (r = nn_loss_run(net, run, target, metrics, 1, e)) || (r = nn_metrics_accum(&m->dev, metrics, run->n * (int)nn_loss_rows(net), acc, e)) ||
        (r = nn_net_backward(net, run, e)) || (r = nn_optim_step(opt, &m->dev, net->params, net->grads, m->spec.opt.lr, e)))
        return r;
    return 0;
}

/* ------------------------------------------------------- checkpoints */

/* A checkpoint is a model.bin with the optimiser state as extra tensors and
 * the loop position in "extra": {"resume": {...}}. */
static int save_resume(nn_model *m, nn_optim *opt, const char *path, cl_mem acc, int epoch, size_t batch,
                       uint64_t step, size_t ntr, nn_err *e)
{
    float h[4] = {0};
    int r = acc ? nn_buf_read(&m->dev, acc, 0, sizeof h, h, e) : 0;
    if (r)
        return r;
    char extra[512];
    snprintf(extra, sizeof extra,
             "{\"resume\":{\"epoch\":%d,\"batch\":%zu,\"step\":%llu,\"optimizer_steps\":%ld,"
             "\"train_samples\":%zu,\"acc\":[%.9g,%.9g,%.9g]}}",
             epoch, batch, (unsigned long long)step, opt->t, ntr, h[0], h[1], h[2]);
    nn_extra_tensor more[2];
    int nmore = 0;
    if (opt->m1)
        more[nmore++] = (nn_extra_tensor){"optimizer.m1", opt->m1, opt->n};
    if (opt->m2)
        more[nmore++] = (nn_extra_tensor){"optimizer.m2", opt->m2, opt->n};
    r = nn_model_save_state(m, path, extra, more, nmore, e);
    return r ? nn_wrap(e, "writing the checkpoint: ") : 0;
}

static int load_resume(nn_model *m, nn_optim *opt, const char *path, size_t ntr, int *epoch, size_t *batch,
                       uint64_t *step, float acc[4], nn_err *e)
{
    nn_ckpt c;
    int r = nn_ckpt_read(path, &c, e);
    if (r)
        return r;
    nn_resume rs;
    cJSON *saved = cJSON_Parse(c.model_json);
    if ((r = nn_ckpt_resume(&c, path, m->spec.train.epochs, ntr, m->spec.train.batch_size, &rs, e))) {
    } else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(saved, "layers"),
                              cJSON_GetObjectItemCaseSensitive(m->spec.root, "layers"), 1)) {
        r = nn_fail(e, NN_EDATA, "%s: the checkpoint's layers differ from %s's", path, m->spec.file);
    } else {
        r = nn_model_place_params(m, &c, path, e);
        const char *names[2] = {"optimizer.m1", "optimizer.m2"};
        cl_mem bufs[2] = {opt->m1, opt->m2};
        for (int i = 0; !r && i < 2; i++) {
            if (!bufs[i])
                continue;
            const nn_ckpt_tensor *t = nn_ckpt_find(&c, names[i]);
            if (!t || t->length != opt->n)
                r = nn_fail(e, NN_EDATA, "%s: optimiser state '%s' is missing or has the wrong size (another optimizer?)",
                            path, names[i]);
            else
                r = nn_buf_write(&m->dev, bufs[i], 0, opt->n * sizeof(float), t->data, 1, e);
        }
        if (!r) {
            *epoch = rs.epoch;
            *batch = rs.batch;
            *step = rs.step;
            opt->t = rs.optimizer_steps;
            for (int i = 0; i < 3; i++)
                acc[i] = rs.acc[i];
        }
    }
    cJSON_Delete(saved);
    nn_ckpt_free(&c);
    return r;
}

/* The loss went NaN/Inf: name the first layer whose output (for the last
 * batch) or parameters are not finite. */
static int diverged(nn_model *m, const nn_run *run, int ep, double loss, const nn_train_opts *o, nn_err *e)
{
    nn_net *net = &m->net;
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    char where[256] = "";
    for (int i = 0; i < net->nl && !where[0]; i++) {
        nn_layer *L = &net->L[i];
        for (int p = 0; p < L->nparam && !where[0]; p++) {
            size_t cnt = L->param[p].n;
            float *h = malloc(cnt * sizeof(float));
            if (h && !nn_buf_read(&m->dev, L->param[p].w, 0, cnt * sizeof(float), h, e))
                for (size_t k = 0; k < cnt; k++)
                    if (!isfinite(h[k])) {
                        snprintf(where, sizeof where, "; %s (%s) has non-finite parameters ('%s') first", L->path,
                                 L->name, L->param[p].name);
                        break;
                    }
            free(h);
        }
        if (where[0] || L->type->alias)
            continue;
        size_t cnt = (size_t)run->n * nn_shape_size(&L->out_shape);
        float *h = malloc(cnt * sizeof(float));
        if (h && !nn_buf_read(&m->dev, L->y, 0, cnt * sizeof(float), h, e))
            for (size_t k = 0; k < cnt; k++)
                if (!isfinite(h[k])) {
                    snprintf(where, sizeof where, "; %s (%s) is the first layer with a non-finite output", L->path,
                             L->name);
                    break;
                }
        free(h);
    }
    if (!where[0] && !isnan(loss))
        snprintf(where, sizeof where,
                 "; every layer's parameters and outputs are finite, so the loss itself overflowed the float "
                 "range: the outputs are far from the targets (scale large targets down)");
    return nn_fail(e, NN_ENONFINITE,
                   "training diverged in epoch %d: the loss is %s%s (try a lower learning rate, e.g. --lr %g, "
                   "or normalised inputs: \"normalize\": \"auto\")",
                   ep, isnan(loss) ? "NaN" : "infinite", where, m->spec.opt.lr / 10);
}

int nn_train_run(const nn_train_opts *o, nn_err *e)
{
    nn_model m;
    memset(&m, 0, sizeof m);
    nn_data train = {0}, test = {0};
    nn_feed ftrain = {0}, fval = {0}, ftest = {0};
    nn_optim opt = {0};
    cl_mem target = NULL, metrics = NULL, acc = NULL;
    int *perm = NULL, *order = NULL;
    FILE *log = NULL;
    FILE *out = stdout;
    int r;

    if ((r = nn_spec_load(o->model_path, &m.spec, e)))
        goto done;
    nn_spec *s = &m.spec;
    if (o->epochs >= 0)
        s->train.epochs = o->epochs;
    if (o->batch_size > 0)
        s->train.batch_size = o->batch_size;
    if (o->lr > 0)
        s->opt.lr = (float)o->lr;
    if (o->seed >= 0)
        s->train.seed = (uint64_t)o->seed;
    if (o->output) {
        free(s->output);
        s->output = nn_strdup(o->output);
    }
    if (!s->has_train) {
        r = nn_fail(e, NN_EDATA, "%s: data.train: required for training (a source such as {\"format\": \"csv\", ...})",
                    s->file);
        goto done;
    }
    /* outputs are checked now and opened last: a failed run truncates nothing */
    if ((r = check_output_dir(s->output, e)) || (r = nn_check_output(s->output, NULL, e)) ||
        (o->checkpoint && (r = nn_check_output(o->checkpoint, NULL, e))) ||
        (o->log && ((r = check_output_dir(o->log, e)) || (r = nn_check_output(o->log, LOG_HEAD, e)))))
        goto done;
    m.task = s->loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    if (s->nclasses) {
        m.classes = s->classes; /* for label mapping while loading; replaced below */
        m.nclasses = s->nclasses;
    }
    const int is_text = !strcmp(s->train_src.format, "text");
    size_t text_nval = 0;
    if (is_text) {
        /* validation by position: the corpus' last windows */
        r = nn_text_load(&s->train_src, NULL, 0, s->train.validation_split, &train.ds, &text_nval, e);
        train.n = train.ds.n;
        train.nclasses = train.ds.nclasses;
        train.class_names = train.ds.class_names;
        s->vocab = train.ds.nclasses;
    } else
        r = nn_model_open_data(&m, &s->train_src, &train, e);
    m.classes = NULL; /* borrowed from the spec while loading */
    m.nclasses = 0;
    if (r)
        goto done;
    if (train.n == 0) {
        r = nn_fail(e, NN_EDATA, "%s: data.train holds no samples", s->file);
        goto done;
    }
    if ((r = setup_classes(&m, &train, e)))
        goto done;
    /* the input shape: given, or the data's */
    if (!s->has_input_shape) {
        const nn_dataset *ds = &train.ds;
        s->input.nd = ds->seq_f > 0 ? 2 : (ds->h * ds->w > 1) ? 3 : 1;
        if (s->input.nd == 2) { /* time-series windows: [steps, features] */
            s->input.d[0] = (int)(ds->dim / (size_t)ds->seq_f);
            s->input.d[1] = ds->seq_f;
        } else if (s->input.nd == 3) {
            s->input.d[0] = ds->c;
            s->input.d[1] = ds->h;
            s->input.d[2] = ds->w;
        } else
            s->input.d[0] = (int)ds->dim;
        s->has_input_shape = 1;
    } else if (!train.streamed && nn_shape_size(&s->input) != train.ds.dim) {
        char b[64];
        r = nn_fail(e, NN_EDATA, "%s: input.shape %s holds %zu values, but data.train has %zu features per sample",
                    s->file, nn_shape_str(&s->input, b, sizeof b), nn_shape_size(&s->input), train.ds.dim);
        goto done;
    }
    if ((r = nn_net_build(&m.net, s, e)))
        goto done;
    m.built = 1;
    if ((r = nn_loss_check(&m.net, m.nclasses, m.tdim, train.ds.ylen, e)))
        goto done;
    if (s->has_test && (r = nn_model_open_data(&m, &s->test_src, &test, e)))
        goto done;

    /* validation split: a seeded random subset; by position (the last
     * samples) for text and time series, whose neighbours overlap */
    const int by_position = is_text || s->train_src.window > 0;
    size_t n = train.n, nval = is_text ? text_nval : (size_t)((double)n * s->train.validation_split);
    if (!is_text && s->train.validation_split > 0 && nval == 0)
        nval = 1;
    if (nval >= n) {
        r = nn_fail(e, NN_EDATA, "%s: train.validation_split leaves no training samples (%zu samples)", s->file, n);
        goto done;
    }
    size_t ntr = n - nval;
    perm = malloc(n * sizeof(int));
    order = malloc(n * sizeof(int));
    if (!perm || !order) {
        r = nn_fail(e, NN_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (int)i;
    nn_rng rng;
    nn_rng_seed(&rng, s->train.seed ^ 0x5eed5eedULL);
    if (nval && !by_position)
        nn_shuffle(&rng, perm, n);
    if (s->norm == NN_NORM_AUTO && !is_text) { /* token ids are not normalised */
        if (!train.streamed)
            r = auto_norm(&m, &train.ds, perm, ntr, e);
        else {
            /* streamed images: statistics of up to 2000 training images */
            size_t k = ntr < 2000 ? ntr : 2000;
            nn_dataset sample;
            r = nn_imgset_decode(&train.set, perm, k, s->input.d[0], s->input.d[1], s->input.d[2], &sample, e);
            if (!r) {
                int *ident = malloc(k * sizeof(int));
                for (size_t i = 0; ident && i < k; i++)
                    ident[i] = (int)i;
                r = ident ? auto_norm(&m, &sample, ident, k, e) : nn_fail(e, NN_ENOMEM, "out of memory");
                free(ident);
                nn_dataset_free(&sample);
            }
        }
        if (r)
            goto done;
    }
    if (s->norm == NN_NORM_GIVEN) {
        m.nnorm = s->nnorm;
        m.mean = malloc(sizeof(float) * (size_t)s->nnorm);
        m.std = malloc(sizeof(float) * (size_t)s->nnorm);
        if (!m.mean || !m.std) {
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(m.mean, s->mean, sizeof(float) * (size_t)s->nnorm);
        memcpy(m.std, s->std, sizeof(float) * (size_t)s->nnorm);
    }

    if ((size_t)s->train.batch_size > ntr) /* one batch of everything; never allocate for samples that do not exist */
        s->train.batch_size = (int)ntr;
    int B = s->train.batch_size;
    if ((r = nn_model_open_device(&m, o->device, B, 1, e)))
        goto done;
    nn_dev *d = &m.dev;
    nn_net *net = &m.net;
    if ((r = nn_net_init_params(net, s->train.seed, e)) || (r = nn_optim_init(&opt, d, &s->opt, net->nparams, e)))
        goto done;
    for (int i = 0; i < net->nl; i++) /* a denormalize output learns the training targets' scale */
        if (!strcmp(net->L[i].type->name, "denormalize")) {
            if (!train.ds.t) {
                r = nn_fail(e, NN_EDATA, "%s: %s (denormalize): the training data has no regression targets", s->file,
                            net->L[i].path);
                goto done;
            }
            if ((r = nn_denormalize_adapt(&net->L[i], d, train.ds.t, train.ds.tdim, perm, ntr, e)))
                goto done;
        }
    if ((r = nn_model_feed(&m, &train, perm, ntr, &ftrain, e)))
        goto done;
    if (nval && (r = nn_model_feed(&m, &train, perm + ntr, nval, &fval, e)))
        goto done;
    const nn_augment aug = {.flip = s->train_src.aug_flip, .shift = s->train_src.aug_crop + s->train_src.aug_translate};
    size_t tsz = nn_loss_target_bytes(&m.net, m.tdim), rows = nn_loss_rows(&m.net);
    if ((r = nn_buf_alloc(d, (size_t)B * tsz, "the batch labels", &target, e)) ||
        (r = nn_buf_alloc(d, (size_t)B * rows * 2 * sizeof(float), "the batch metrics", &metrics, e)) ||
        (r = nn_buf_alloc(d, 4 * sizeof(float), "the metric sums", &acc, e)))
        goto done;

    const int regress = m.task == NN_TASK_REGRESS;
    const char *mname = regress ? "mae" : "accuracy";
    if (!o->quiet) {
        if (o->json) {
            fprintf(out, "{\"event\":\"start\",\"model\":");
            nn_json_str(out, s->name);
            fprintf(out, ",\"device\":");
            nn_json_str(out, d->name);
            fprintf(out, ",\"gemm\":");
            nn_json_str(out, nn_blas_describe(d));
            fprintf(out, ",\"train_samples\":%zu,\"validation_samples\":%zu,\"parameters\":%zu,\"epochs\":%d,"
                         "\"batch_size\":%d}\n",
                    ntr, nval, net->ntrainable, s->train.epochs, B);
        } else {
            fprintf(out, "training %s on %s: %zu train / %zu validation samples, %zu parameters\n", s->name, d->name,
                    ntr, nval, net->ntrainable);
        }
        fflush(out);
    }
    if (o->log && !(log = fopen(o->log, "w"))) {
        r = nn_fail(e, NN_EIO, "%s: cannot open the metrics log for writing: %s", o->log, strerror(errno));
        goto done;
    }
    if (log && (fprintf(log, LOG_HEAD "%s,val_loss,val_%s,seconds,samples_per_s\n", mname, mname) < 0 ||
                fflush(log) != 0)) {
        r = nn_fail(e, NN_EIO, "%s: writing the metrics log failed: %s", o->log, strerror(errno));
        goto done;
    }

    /* resume: the loop position, optimiser state and weights of a checkpoint */
    int start_ep = 1;
    size_t start_batch = 0;
    uint64_t step = 0;
    float acc0[4] = {0};
    if (o->resume && (r = load_resume(&m, &opt, o->resume, ntr, &start_ep, &start_batch, &step, acc0, e)))
        goto done;
    const char *ckpt_path = o->checkpoint;
    char ckpt_default[4096];
    if (!ckpt_path) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", s->output);
        ckpt_path = ckpt_default;
    }

    for (size_t i = 0; i < ntr; i++)
        order[i] = (int)i;
    nn_rng_seed(&rng, s->train.seed ^ 0x0bde5eedULL);
    /* the order of epoch k is the k-th reshuffle: replay the ones skipped */
    for (int ep = 1; ep < start_ep && s->train.shuffle; ep++)
        nn_shuffle(&rng, order, ntr);
    nn_run run = {.dev = d, .train = 1, .seed = s->train.seed};
    const size_t nbatches = (ntr + (size_t)B - 1) / (size_t)B;
    for (int ep = start_ep; ep <= s->train.epochs; ep++) {
        double t0 = nn_now(), last_bar = t0;
        size_t b0 = ep == start_ep ? start_batch : 0;
        if (s->train.shuffle)
            nn_shuffle(&rng, order, ntr);
        if ((r = nn_feed_begin(&ftrain, d, order, b0 * (size_t)B, e)) ||
            (r = nn_buf_write(d, acc, 0, sizeof acc0, b0 ? acc0 : (float[4]){0}, 1, e)))
            goto done;
        for (size_t bi = b0; bi < nbatches; bi++) {
            size_t st = bi * (size_t)B;
            run.n = (int)(ntr - st < (size_t)B ? ntr - st : (size_t)B);
            run.step = step++;
            if ((r = nn_train_step(&m, &opt, &ftrain, st, &run, target, metrics, acc, &aug, e)))
                goto done;
            int interrupted = o->stop && *o->stop;
            int due = o->ckpt_every > 0 && !o->ckpt_epochs && step % (uint64_t)o->ckpt_every == 0;
            if (interrupted || due) {
                if ((r = save_resume(&m, &opt, ckpt_path, acc, ep, bi + 1, step, ntr, e)))
                    goto done;
                if (interrupted) {
                    nn_feed_end(&ftrain);
                    if (o->progress)
                        fprintf(stderr, "\r\033[K");
                    r = nn_fail(e, NN_EINTR,
                                "interrupted in epoch %d after step %llu; checkpoint written to %s (continue with "
                                "'nnrun train %s --resume %s')",
                                ep, (unsigned long long)step, ckpt_path, o->model_path, ckpt_path);
                    goto done;
                }
            }
            if ((o->progress && nn_now() - last_bar > 0.25) || step % 200 == 0) {
                float h[4];
                if ((r = nn_buf_read(d, acc, 0, sizeof h, h, e)))
                    goto done;
                if (!isfinite(h[0])) {
                    r = diverged(&m, &run, ep, h[0], o, e);
                    goto done;
                }
                if (o->progress) {
                    progress_bar(ep, s->train.epochs, st + (size_t)run.n, ntr, h[0] / h[2], h[1] / h[2], regress);
                    last_bar = nn_now();
                }
            }
        }
        nn_feed_end(&ftrain);
        float h[4];
        if ((r = nn_buf_read(d, acc, 0, sizeof h, h, e)))
            goto done;
        double secs = nn_now() - t0;
        double loss = h[0] / h[2], metric = h[1] / h[2];
        if (!isfinite(loss)) {
            r = diverged(&m, &run, ep, loss, o, e);
            goto done;
        }
        double vloss = NAN, vmetric = NAN;
        if (nval && (r = nn_model_evaluate(&m, &fval, &vloss, &vmetric, e)))
            goto done;
        double sps = secs > 0 ? (double)ntr / secs : 0;
        if (o->progress)
            fprintf(stderr, "\r\033[K");
        if (!o->quiet) {
            if (o->json) {
                fprintf(out, "{\"event\":\"epoch\",\"epoch\":%d,\"epochs\":%d", ep, s->train.epochs);
                nn_json_num(out, "loss", loss);
                nn_json_num(out, mname, metric);
                if (nval) {
                    nn_json_num(out, "val_loss", vloss);
                    nn_json_num(out, regress ? "val_mae" : "val_accuracy", vmetric);
                    if (is_text)
                        nn_json_num(out, "val_bits_per_char", vloss / M_LN2);
                }
                nn_json_num(out, "seconds", secs);
                nn_json_num(out, "samples_per_s", sps);
                fprintf(out, "}\n");
            } else {
                fprintf(out, "epoch %d/%d  loss %.4f  %s %.4f", ep, s->train.epochs, loss, regress ? "mae" : "acc",
                        metric);
                if (nval)
                    fprintf(out, "  val_loss %.4f  val_%s %.4f", vloss, regress ? "mae" : "acc", vmetric);
                if (nval && is_text)
                    fprintf(out, "  val_bpc %.3f", vloss / M_LN2);
                fprintf(out, "  %.1fs  %.0f samples/s\n", secs, sps);
            }
            fflush(out);
        }
        if (log) {
            if (fprintf(log, "%d,%.6g,%.6g,%.6g,%.6g,%.3f,%.1f\n", ep, loss, metric, vloss, vmetric, secs, sps) < 0 ||
                fflush(log) != 0) {
                r = nn_fail(e, NN_EIO, "%s: writing the metrics log failed: %s", o->log, strerror(errno));
                goto done;
            }
        }
        if ((o->ckpt_epochs && o->ckpt_every > 0 && ep % o->ckpt_every == 0) || (o->stop && *o->stop)) {
            if ((r = save_resume(&m, &opt, ckpt_path, NULL, ep + 1, 0, step, ntr, e)))
                goto done;
            if (o->stop && *o->stop) {
                r = nn_fail(e, NN_EINTR,
                            "interrupted after epoch %d; checkpoint written to %s (continue with 'nnrun train %s "
                            "--resume %s')",
                            ep, ckpt_path, o->model_path, ckpt_path);
                goto done;
            }
        }
    }
    if (s->has_test) {
        double tl, tm;
        if ((r = nn_model_feed(&m, &test, NULL, 0, &ftest, e)) || (r = nn_model_evaluate(&m, &ftest, &tl, &tm, e)))
            goto done;
        if (!o->quiet) {
            if (o->json) {
                fprintf(out, "{\"event\":\"test\",\"samples\":%zu", test.n);
                nn_json_num(out, "loss", tl);
                nn_json_num(out, mname, tm);
                fprintf(out, "}\n");
            } else
                fprintf(out, "test  loss %.4f  %s %.4f  (%zu samples)\n", tl, regress ? "mae" : "acc", tm, test.n);
        }
    }
    if ((r = nn_model_save(&m, s->output, e)))
        goto done;
    if (!o->quiet) {
        if (o->json) {
            fprintf(out, "{\"event\":\"saved\",\"path\":");
            nn_json_str(out, s->output);
            fprintf(out, "}\n");
        } else
            fprintf(out, "saved %s\n", s->output);
    }
done:
    if (log && (ferror(log) | fclose(log)) != 0 && !r)
        r = nn_fail(e, NN_EIO, "%s: error writing the metrics log", o->log);
    nn_buf_free(&target);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    nn_optim_free(&opt);
    nn_feed_free(&ftrain);
    nn_feed_free(&fval);
    nn_feed_free(&ftest);
    nn_data_free(&train);
    nn_data_free(&test);
    free(perm);
    free(order);
    nn_model_free(&m);
    return r;
}
