/* train.c - the training loop. Per step: gather the batch on the device,
 * forward, loss (+ its gradient), backward, optimiser. Nothing is read back
 * inside an epoch except when the TTY progress bar is refreshed. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "model.h"
#include "optim.h"
#include "util.h"

/* Classes for the model from the training data and the JSON. */
static int setup_classes(nn_model *m, nn_dataset *ds, nn_err *e)
{
    nn_spec *s = &m->spec;
    if (m->task == NN_TASK_REGRESS) {
        m->tdim = ds->tdim;
        return 0;
    }
    int n = 0;
    char **src = NULL;
    if (s->nclasses) {
        n = s->nclasses;
        src = s->classes;
    } else if (ds->class_names) {
        n = ds->nclasses;
        src = ds->class_names;
    } else {
        n = ds->nclasses;
    }
    if (ds->y)
        for (size_t i = 0; i < ds->n; i++)
            if (ds->y[i] < 0 || ds->y[i] >= n)
                return nn_fail(e, NN_EDATA, "%s: data.classes names %d classes, but the training labels go up to %d",
                               s->file, n, ds->y[i]);
    m->classes = calloc((size_t)(n ? n : 1), sizeof *m->classes);
    if (!m->classes)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    m->nclasses = n;
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        m->classes[i] = nn_strdup(src ? src[i] : num);
        if (!m->classes[i])
            return nn_fail(e, NN_ESOFTWARE, "out of memory");
    }
    return 0;
}

/* Mean/std per channel (images) or per feature (CSV) over the training rows. */
static int auto_norm(nn_model *m, const nn_dataset *ds, const int *rows, size_t n, nn_err *e)
{
    size_t hw = (size_t)ds->h * (size_t)ds->w;
    int k = hw > 1 ? ds->c : (int)ds->dim;
    size_t per = hw > 1 ? hw : 1;
    double *sum = calloc((size_t)k, sizeof(double)), *sq = calloc((size_t)k, sizeof(double));
    m->mean = malloc(sizeof(float) * (size_t)k);
    m->std = malloc(sizeof(float) * (size_t)k);
    if (!sum || !sq || !m->mean || !m->std) {
        free(sum);
        free(sq);
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = ds->x + (size_t)rows[i] * ds->dim;
        for (size_t j = 0; j < ds->dim; j++) {
            size_t c = j / per;
            sum[c] += x[j];
            sq[c] += (double)x[j] * x[j];
        }
    }
    double cnt = (double)n * (double)per;
    for (int c = 0; c < k; c++) {
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

int nn_train_run(const nn_train_opts *o, nn_err *e)
{
    nn_model m;
    memset(&m, 0, sizeof m);
    nn_dataset train = {0}, test = {0};
    nn_devdata dtrain = {0}, dval = {0}, dtest = {0};
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
    if (o->log && !(log = fopen(o->log, "w"))) {
        r = nn_fail(e, NN_EIO, "%s: cannot open the metrics log for writing", o->log);
        goto done;
    }
    m.task = s->loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    if (s->nclasses) {
        m.classes = s->classes; /* for label mapping while loading; replaced below */
        m.nclasses = s->nclasses;
    }
    if ((r = nn_model_load_source(&m, &s->train_src, 0, &train, e)))
        goto done;
    m.classes = NULL;
    m.nclasses = 0;
    if (train.n == 0) {
        r = nn_fail(e, NN_EDATA, "%s: data.train holds no samples", s->file);
        goto done;
    }
    if ((r = setup_classes(&m, &train, e)))
        goto done;
    /* the input shape: given, or the data's */
    if (!s->has_input_shape) {
        s->input.nd = (train.h * train.w > 1) ? 3 : 1;
        if (s->input.nd == 3) {
            s->input.d[0] = train.c;
            s->input.d[1] = train.h;
            s->input.d[2] = train.w;
        } else
            s->input.d[0] = (int)train.dim;
        s->has_input_shape = 1;
    } else if (nn_shape_size(&s->input) != train.dim) {
        char b[64];
        r = nn_fail(e, NN_EDATA, "%s: input.shape %s holds %zu values, but data.train has %zu features per sample",
                    s->file, nn_shape_str(&s->input, b, sizeof b), nn_shape_size(&s->input), train.dim);
        goto done;
    }
    if ((r = nn_net_build(&m.net, s, e)))
        goto done;
    m.built = 1;
    if ((r = nn_loss_check(&m.net, m.nclasses, m.tdim, e)))
        goto done;
    if (s->has_test && (r = nn_model_load_source(&m, &s->test_src, 0, &test, e)))
        goto done;

    /* validation split: a seeded random subset */
    size_t n = train.n, nval = (size_t)((double)n * s->train.validation_split);
    if (s->train.validation_split > 0 && nval == 0)
        nval = 1;
    if (nval >= n) {
        r = nn_fail(e, NN_EDATA, "%s: train.validation_split leaves no training samples (%zu samples)", s->file, n);
        goto done;
    }
    size_t ntr = n - nval;
    perm = malloc(n * sizeof(int));
    order = malloc(n * sizeof(int));
    if (!perm || !order) {
        r = nn_fail(e, NN_ESOFTWARE, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (int)i;
    nn_rng rng;
    nn_rng_seed(&rng, s->train.seed ^ 0x5eed5eedULL);
    if (nval)
        nn_shuffle(&rng, perm, n);
    if (s->norm == NN_NORM_AUTO && (r = auto_norm(&m, &train, perm, ntr, e)))
        goto done;
    if (s->norm == NN_NORM_GIVEN) {
        m.nnorm = s->nnorm;
        m.mean = malloc(sizeof(float) * (size_t)s->nnorm);
        m.std = malloc(sizeof(float) * (size_t)s->nnorm);
        if (!m.mean || !m.std) {
            r = nn_fail(e, NN_ESOFTWARE, "out of memory");
            goto done;
        }
        memcpy(m.mean, s->mean, sizeof(float) * (size_t)s->nnorm);
        memcpy(m.std, s->std, sizeof(float) * (size_t)s->nnorm);
    }

    int B = s->train.batch_size;
    if ((r = nn_model_open_device(&m, o->device, B, 1, e)))
        goto done;
    nn_dev *d = &m.dev;
    nn_net *net = &m.net;
    if ((r = nn_net_init_params(net, s->train.seed, e)) || (r = nn_optim_init(&opt, d, &s->opt, net->nparams, e)))
        goto done;
    if ((r = nn_devdata_upload(d, &train, perm, ntr, &dtrain, e)))
        goto done;
    if (nval && (r = nn_devdata_upload(d, &train, perm + ntr, nval, &dval, e)))
        goto done;
    size_t tsz = m.tdim ? (size_t)m.tdim * sizeof(float) : sizeof(int);
    if ((r = nn_buf_alloc(d, (size_t)B * tsz, "the batch labels", &target, e)) ||
        (r = nn_buf_alloc(d, (size_t)B * 2 * sizeof(float), "the batch metrics", &metrics, e)) ||
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
            fprintf(out, ",\"train_samples\":%zu,\"validation_samples\":%zu,\"parameters\":%zu,\"epochs\":%d,"
                         "\"batch_size\":%d}\n",
                    ntr, nval, net->ntrainable, s->train.epochs, B);
        } else {
            fprintf(out, "training %s on %s: %zu train / %zu validation samples, %zu parameters\n", s->name, d->name,
                    ntr, nval, net->ntrainable);
        }
        fflush(out);
    }
    if (log)
        fprintf(log, "epoch,loss,%s,val_loss,val_%s,seconds,samples_per_s\n", mname, mname);

    for (size_t i = 0; i < ntr; i++)
        order[i] = (int)i;
    nn_rng_seed(&rng, s->train.seed ^ 0x0bde5eedULL);
    uint64_t step = 0;
    nn_run run = {.dev = d, .train = 1, .seed = s->train.seed};
    for (int ep = 1; ep <= s->train.epochs; ep++) {
        double t0 = nn_now(), last_bar = t0;
        if (s->train.shuffle)
            nn_shuffle(&rng, order, ntr);
        if ((r = nn_devdata_order(d, &dtrain, order, e)) || (r = nn_buf_zero(d, acc, 0, 4 * sizeof(float), e)))
            goto done;
        for (size_t st = 0; st < ntr; st += (size_t)B) {
            run.n = (int)(ntr - st < (size_t)B ? ntr - st : (size_t)B);
            run.step = step++;
            if ((r = nn_devdata_batch(net, &dtrain, st, run.n, target, e)) || (r = nn_net_forward(net, &run, e)) ||
                (r = nn_net_zero_grads(net, e)) || (r = nn_loss_run(net, &run, target, metrics, 1, e)) ||
                (r = nn_metrics_accum(d, metrics, run.n, acc, e)) || (r = nn_net_backward(net, &run, e)) ||
                (r = nn_optim_step(&opt, d, net->params, net->grads, s->opt.lr, e)))
                goto done;
            if (o->progress && nn_now() - last_bar > 0.25) {
                float h[4];
                if ((r = nn_buf_read(d, acc, 0, sizeof h, h, e)))
                    goto done;
                progress_bar(ep, s->train.epochs, st + (size_t)run.n, ntr, h[0] / h[2], h[1] / h[2], regress);
                last_bar = nn_now();
            }
        }
        float h[4];
        if ((r = nn_buf_read(d, acc, 0, sizeof h, h, e)))
            goto done;
        double secs = nn_now() - t0;
        double loss = h[0] / h[2], metric = h[1] / h[2];
        if (!isfinite(loss)) {
            if (o->progress)
                fprintf(stderr, "\r\033[K");
            r = nn_fail(e, NN_ENONFINITE,
                        "training diverged in epoch %d: the loss is %s (try a lower learning rate, e.g. --lr %g, "
                        "or normalised inputs: \"normalize\": \"auto\")",
                        ep, isnan(loss) ? "NaN" : "infinite", s->opt.lr / 10);
            goto done;
        }
        double vloss = NAN, vmetric = NAN;
        if (nval && (r = nn_model_evaluate(&m, &dval, &vloss, &vmetric, e)))
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
                }
                nn_json_num(out, "seconds", secs);
                nn_json_num(out, "samples_per_s", sps);
                fprintf(out, "}\n");
            } else {
                fprintf(out, "epoch %d/%d  loss %.4f  %s %.4f", ep, s->train.epochs, loss, regress ? "mae" : "acc",
                        metric);
                if (nval)
                    fprintf(out, "  val_loss %.4f  val_%s %.4f", vloss, regress ? "mae" : "acc", vmetric);
                fprintf(out, "  %.1fs  %.0f samples/s\n", secs, sps);
            }
            fflush(out);
        }
        if (log) {
            fprintf(log, "%d,%.6g,%.6g,%.6g,%.6g,%.3f,%.1f\n", ep, loss, metric, vloss, vmetric, secs, sps);
            fflush(log);
        }
    }
    if (s->has_test) {
        double tl, tm;
        if ((r = nn_devdata_upload(d, &test, NULL, 0, &dtest, e)) || (r = nn_model_evaluate(&m, &dtest, &tl, &tm, e)))
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
    if (log && fclose(log) != 0 && !r)
        r = nn_fail(e, NN_EIO, "%s: error writing the metrics log", o->log);
    nn_buf_free(&target);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    nn_optim_free(&opt);
    nn_devdata_free(&dtrain);
    nn_devdata_free(&dval);
    nn_devdata_free(&dtest);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    free(perm);
    free(order);
    nn_model_free(&m);
    return r;
}
