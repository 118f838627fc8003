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
#include "dist.h"
#include "modelbin.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"
#include "plot.h"
#include "util.h"

#define LOG_HEAD "epoch,loss," /* how the metrics log begins: nnrun overwrites only such a file */

/* Fails early (before hours of training) when the output's folder is not
 * a writable directory; the atomic write itself happens at the end. */
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

int nn_train_step(nn_model *m, nn_optim *opt, nn_feed *f, size_t start, const nn_run *run, const nn_loss_bufs *lb,
                  const nn_augment *aug, nn_err *e)
{
    nn_net *net = &m->net;
    int r;
    if ((r = nn_feed_batch(f, net, start, run->n, lb->target, aug, run->seed, run->step, e)))
        return r;
    if (run->n == 0) { /* data-parallel: this rank's share of a short last batch is empty */
        if ((r = nn_buf_zero(&m->dev, net->grads, 0, net->nparams * sizeof(float), e)))
            return r;
    } else if ((r = nn_net_forward(net, run, e)) || (r = nn_net_zero_grads(net, e)) ||
               (r = nn_loss_run(net, run, lb->target, lb->metrics, 1, e)) ||
               (r = nn_metrics_accum(&m->dev, lb->metrics, run->n * (int)nn_loss_rows(net), lb->acc, e)) ||
               (r = nn_net_backward_hooked(net, run, nn_dist_grads_ready, net, e)))
        return r;
    /* data-parallel: the ranks' gradients summed, the last layers' already
     * under way while the first ones computed (a no-op for one process) */
    if ((r = nn_dist_reduce_grads(net, e)) ||
        (r = nn_optim_step(opt, &m->dev, net->params, net->grads, opt->lr, e)))
        return r;
    return 0;
}

/* ------------------------------------------------------- checkpoints */

/* What a run carries from epoch to epoch besides the weights and the
 * optimiser: the lr schedule, early stopping and its best weights (copies
 * of the parameter and state buffers; NULL without restore_best_weights). */
typedef struct epoch_state {
    nn_sched sched;
    nn_stopper stop;
    cl_mem best_params, best_state;
} epoch_state;

/* A checkpoint is a model.bin with the optimiser state (and early
 * stopping's best weights) as extra tensors and the loop position, the
 * schedule's and early stopping's state in "extra": {"resume": {...}}. */
static int save_resume(nn_model *m, nn_optim *opt, const epoch_state *es, const char *path, cl_mem acc, int epoch,
                       size_t batch, uint64_t step, size_t ntr, nn_err *e)
{
    float h[4] = {0};
    int r = acc ? nn_buf_read(&m->dev, acc, 0, sizeof h, h, e) : 0;
    if (!r && acc) /* data-parallel: the epoch's sums so far, over all ranks; rank 0 writes */
        r = nn_dist_sum(h, 3, e);
    if (r || nn_dist_get()->rank > 0)
        return r;
    char extra[1024], zs[256] = "", ss[256] = "";
    if (m->spec.train.sched.kind)
        nn_sched_state_json(&es->sched, zs, sizeof zs);
    if (m->spec.train.stop.on)
        nn_stop_state_json(&es->stop, ss, sizeof ss);
    snprintf(extra, sizeof extra,
             "{\"resume\":{\"format\":%d,\"epoch\":%d,\"batch\":%zu,\"step\":%llu,\"optimizer_steps\":%ld,"
             "\"train_samples\":%zu,\"acc\":[%.9g,%.9g,%.9g]%s%s%s%s}}",
             NN_RESUME_FORMAT, epoch, batch, (unsigned long long)step, opt->t, ntr, h[0], h[1], h[2],
             zs[0] ? ",\"schedule\":" : "", zs, ss[0] ? ",\"early_stopping\":" : "", ss);
    nn_extra_tensor more[5];
    const char *names[3];
    cl_mem bufs[3];
    int nmore = nn_optim_state(opt, names, bufs);
    for (int i = 0; i < nmore; i++)
        more[i] = (nn_extra_tensor){names[i], bufs[i], opt->n};
    if (es->best_params)
        more[nmore++] = (nn_extra_tensor){"early_stopping.params", es->best_params, m->net.nparams};
    if (es->best_state)
        more[nmore++] = (nn_extra_tensor){"early_stopping.state", es->best_state, m->net.nstate};
    r = nn_model_save_state(m, path, extra, more, nmore, e);
    return r ? nn_wrap(e, "writing the checkpoint: ") : 0;
}

/* The checkpoint's train.KEY must be the run's: schedule and early-stopping
 * state only make sense for the settings that produced them. */
static int same_train_key(const cJSON *saved, const nn_spec *s, const char *key, const char *path, nn_err *e)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(saved, "train"), key);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s->root, "train"), key);
    if ((a || b) && !(a && b && cJSON_Compare(a, b, 1)))
        return nn_fail(e, NN_EDATA, "%s: the checkpoint's train.%s differs from %s's (resume with the settings it was "
                                    "taken with)",
                       path, key, s->file);
    return 0;
}

/* Flat device buffers from a checkpoint's extra tensors (each n floats). */
static int load_bufs(nn_model *m, const nn_modelbin *c, const char *path, const char *const *names, const cl_mem *bufs,
                     const size_t *n, int k, const char *hint, nn_err *e)
{
    for (int i = 0; i < k; i++) {
        if (!bufs[i])
            continue;
        const nn_modelbin_tensor *t = nn_modelbin_find(c, names[i]);
        if (!t || t->length != n[i])
            return nn_fail(e, NN_EDATA, "%s: '%s' is missing or has the wrong size (%s)", path, names[i], hint);
        int r = nn_buf_write(&m->dev, bufs[i], 0, n[i] * sizeof(float), t->data, 1, e);
        if (r)
            return r;
    }
    return 0;
}

/* Schedule and early-stopping state: format 1 checkpoints predate them and
 * resume only runs that use neither. */
static int load_epoch_state(nn_model *m, const nn_modelbin *c, const nn_resume *rs, epoch_state *es, const char *path,
                            nn_err *e)
{
    const nn_train_spec *ts = &m->spec.train;
    if (!ts->sched.kind && !ts->stop.on)
        return 0;
    if (rs->format < 2)
        return nn_fail(e, NN_EDATA, "%s: checkpoint format %d holds no learning-rate schedule or early-stopping "
                                    "state; it resumes only runs without train.lr_schedule and train.early_stopping",
                       path, rs->format);
    cJSON *x = cJSON_Parse(c->extra_json);
    const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(x, "resume");
    int r = 0;
    if (ts->sched.kind)
        r = nn_sched_state_load(&es->sched, cJSON_GetObjectItemCaseSensitive(r0, "schedule"), path, "schedule", e);
    if (!r && ts->stop.on)
        r = nn_stop_state_load(&es->stop, cJSON_GetObjectItemCaseSensitive(r0, "early_stopping"), path,
                               "early_stopping", ts->epochs, e);
    cJSON_Delete(x);
    const char *names[2] = {"early_stopping.params", "early_stopping.state"};
    const cl_mem bufs[2] = {es->best_params, es->best_state};
    const size_t n[2] = {m->net.nparams, m->net.nstate};
    return r ? r : load_bufs(m, c, path, names, bufs, n, 2, "early stopping's best weights", e);
}

static int load_resume(nn_model *m, nn_optim *opt, epoch_state *es, const char *path, size_t ntr, int *epoch,
                       size_t *batch, uint64_t *step, float acc[4], nn_err *e)
{
    nn_modelbin c;
    int r = nn_modelbin_read(path, &c, e);
    if (r)
        return r;
    nn_resume rs;
    cJSON *saved = cJSON_Parse(c.model_json);
    /* the type the checkpoint's optimiser state belongs to (always stored) */
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(saved, "optimizer"), "type");
    const char *saved_opt = cJSON_IsString(so) ? so->valuestring : nn_opt_name(m->spec.opt.type);
    if ((r = nn_modelbin_resume(&c, path, m->spec.train.epochs, ntr, m->spec.train.batch_size, &rs, e))) {
    } else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(saved, "layers"),
                              cJSON_GetObjectItemCaseSensitive(m->spec.root, "layers"), 1)) {
        r = nn_fail(e, NN_EDATA, "%s: the checkpoint's layers differ from %s's", path, m->spec.file);
    } else if (strcmp(saved_opt, nn_opt_name(m->spec.opt.type))) {
        r = nn_fail(e, NN_EDATA, "%s: the checkpoint was taken with the %s optimizer, %s uses %s", path, saved_opt,
                    m->spec.file, nn_opt_name(m->spec.opt.type));
    } else if ((r = same_train_key(saved, &m->spec, "lr_schedule", path, e)) ||
               (r = same_train_key(saved, &m->spec, "early_stopping", path, e))) {
    } else {
        const char *names[3];
        cl_mem bufs[3];
        size_t n[3] = {opt->n, opt->n, opt->n};
        int nst = nn_optim_state(opt, names, bufs);
        if (!(r = nn_model_place_params(m, &c, path, e)) &&
            !(r = load_bufs(m, &c, path, names, bufs, n, nst, "the optimiser state; another optimizer?", e)))
            r = load_epoch_state(m, &c, &rs, es, path, e);
        if (!r) {
            *epoch = rs.epoch;
            *batch = rs.batch;
            *step = rs.step;
            opt->t = rs.optimizer_steps;
            for (int i = 0; i < 3; i++) /* data-parallel: the sums so far count once, on rank 0 */
                acc[i] = nn_dist_get()->rank == 0 ? rs.acc[i] : 0;
        }
    }
    cJSON_Delete(saved);
    nn_modelbin_free(&c);
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

/* ------------------------------------------------------------ the run */

/* One training run's state, through its stages: prepare, run_epochs, finish. */
typedef struct trainer {
    const nn_train_opts *o;
    nn_model m;
    nn_data train, test;
    nn_feed ftrain, fval, ftest;
    nn_optim opt;
    nn_loss_bufs lb;          /* labels, metrics, metric sums */
    int *perm, *order;        /* perm: [training rows | validation rows]; order: this epoch's */
    size_t ntr, nval;
    int B;
    int regress, tokens;
    const char *mname;        /* "accuracy" or "mae" */
    FILE *log, *out;
    nn_plot plot;             /* --plot: the epochs so far */
    char ckpt_path[4096];
    epoch_state es;           /* lr schedule, early stopping */
    int last_epoch;           /* the last epoch trained (early stopping may end the run before train.epochs) */
    int stopped;              /* early stopping ended the run */
} trainer;

/* What the run reports: one printer for text, JSON lines and the CSV log. */
typedef enum { EV_START, EV_EPOCH, EV_STOP, EV_TEST, EV_SAVED } event_kind;
typedef struct event {
    event_kind kind;
    int epoch;
    double loss, metric, vloss, vmetric, secs, sps; /* EV_EPOCH; loss, metric for EV_TEST */
    double lr;                                      /* EV_EPOCH */
    size_t samples;                                 /* EV_TEST */
    int stopped, restored;                          /* EV_STOP: early stopping ended the run; best weights restored */
} event;

static int emit(trainer *t, const event *ev, nn_err *e)
{
    const nn_train_opts *o = t->o;
    const nn_spec *s = &t->m.spec;
    FILE *out = t->out;
    const char *short_name = t->regress ? "mae" : "acc";
    if (ev->kind == EV_EPOCH && o->progress)
        fprintf(stderr, "\r\033[K");
    if (!o->quiet) {
        switch (ev->kind) {
        case EV_START:
            if (o->json) {
                fprintf(out, "{\"event\":\"start\",\"model\":");
                nn_json_str(out, s->name);
                fprintf(out, ",\"device\":");
                nn_json_str(out, t->m.dev.name);
                fprintf(out, ",\"gemm\":");
                nn_json_str(out, nn_blas_describe(&t->m.dev));
                fprintf(out, ",\"train_samples\":%zu,\"validation_samples\":%zu,\"parameters\":%zu,\"epochs\":%d,"
                             "\"batch_size\":%d}\n",
                        t->ntr, t->nval, t->m.net.ntrainable, s->train.epochs, t->B);
            } else {
                fprintf(out, "training %s on %s: %zu train / %zu validation samples, %zu parameters\n", s->name,
                        t->m.dev.name, t->ntr, t->nval, t->m.net.ntrainable);
            }
            fflush(out);
            break;
        case EV_EPOCH:
            if (o->json) {
                fprintf(out, "{\"event\":\"epoch\",\"epoch\":%d,\"epochs\":%d", ev->epoch, s->train.epochs);
                nn_json_num(out, "loss", ev->loss);
                nn_json_num(out, t->mname, ev->metric);
                if (t->nval) {
                    nn_json_num(out, "val_loss", ev->vloss);
                    nn_json_num(out, t->regress ? "val_mae" : "val_accuracy", ev->vmetric);
                    if (t->tokens)
                        nn_json_num(out, "val_bits_per_char", ev->vloss / M_LN2);
                }
                if (s->train.sched.kind)
                    nn_json_num(out, "lr", ev->lr);
                nn_json_num(out, "seconds", ev->secs);
                nn_json_num(out, "samples_per_s", ev->sps);
                fprintf(out, "}\n");
            } else {
                fprintf(out, "epoch %d/%d  loss %.4f  %s %.4f", ev->epoch, s->train.epochs, ev->loss, short_name,
                        ev->metric);
                if (t->nval)
                    fprintf(out, "  val_loss %.4f  val_%s %.4f", ev->vloss, short_name, ev->vmetric);
                if (t->nval && t->tokens)
                    fprintf(out, "  val_bpc %.3f", ev->vloss / M_LN2);
                if (s->train.sched.kind)
                    fprintf(out, "  lr %.4g", ev->lr);
                fprintf(out, "  %.1fs  %.0f samples/s\n", ev->secs, ev->sps);
            }
            fflush(out);
            break;
        case EV_STOP: {
            const nn_stopper *st = &t->es.stop;
            const char *mon = st->s.monitor.name;
            if (o->json) {
                fprintf(out, "{\"event\":\"early_stopping\",\"stopped\":%s,\"epoch\":%d,\"monitor\":",
                        ev->stopped ? "true" : "false", ev->epoch);
                nn_json_str(out, mon);
                fprintf(out, ",\"patience\":%d,\"wait\":%d,\"best_epoch\":%d", st->s.patience, st->wait,
                        st->best_epoch);
                nn_json_num(out, "best", st->best);
                fprintf(out, ",\"restored\":%s}\n", ev->restored ? "true" : "false");
            } else {
                if (ev->stopped)
                    fprintf(out, "early stopping after epoch %d: %s has not improved for %d epoch%s; ", ev->epoch, mon,
                            st->wait, st->wait == 1 ? "" : "s");
                if (ev->restored)
                    fprintf(out, "restoring the weights of epoch %d (%s %.4f)%s\n", st->best_epoch, mon, st->best,
                            ev->stopped ? "" : ", the best epoch");
                else if (st->best_epoch)
                    fprintf(out, "keeping the last weights (the best: epoch %d, %s %.4f)\n", st->best_epoch, mon,
                            st->best);
                else
                    fprintf(out, "keeping the last weights (%s never had a value)\n", mon);
            }
            fflush(out);
            break;
        }
        case EV_TEST:
            if (o->json) {
                fprintf(out, "{\"event\":\"test\",\"samples\":%zu", ev->samples);
                nn_json_num(out, "loss", ev->loss);
                nn_json_num(out, t->mname, ev->metric);
                fprintf(out, "}\n");
            } else
                fprintf(out, "test  loss %.4f  %s %.4f  (%zu samples)\n", ev->loss, short_name, ev->metric,
                        ev->samples);
            break;
        case EV_SAVED:
            if (o->json) {
                fprintf(out, "{\"event\":\"saved\",\"path\":");
                nn_json_str(out, s->output);
                fprintf(out, "}\n");
            } else
                fprintf(out, "saved %s\n", s->output);
            break;
        }
    }
    /* the metrics log: opened last (after the start line), every write checked */
    if (o->log && ev->kind == EV_START) {
        if (!(t->log = fopen(o->log, "w")))
            return nn_fail(e, NN_EIO, "%s: cannot open the metrics log for writing: %s", o->log, strerror(errno));
        if (fprintf(t->log, LOG_HEAD "%s,val_loss,val_%s,seconds,samples_per_s%s\n", t->mname, t->mname,
                    s->train.sched.kind ? ",lr" : "") < 0 ||
            fflush(t->log) != 0)
            return nn_fail(e, NN_EIO, "%s: writing the metrics log failed: %s", o->log, strerror(errno));
    }
    if (t->log && ev->kind == EV_EPOCH &&
        (fprintf(t->log, "%d,%.6g,%.6g,%.6g,%.6g,%.3f,%.1f", ev->epoch, ev->loss, ev->metric, ev->vloss, ev->vmetric,
                 ev->secs, ev->sps) < 0 ||
         (s->train.sched.kind && fprintf(t->log, ",%.9g", ev->lr) < 0) || fputc('\n', t->log) == EOF ||
         fflush(t->log) != 0))
        return nn_fail(e, NN_EIO, "%s: writing the metrics log failed: %s", o->log, strerror(errno));
    if (o->plot && ev->kind == EV_EPOCH)
        return nn_plot_epoch(&t->plot, o->plot, ev->epoch, ev->loss, ev->metric, ev->vloss, ev->vmetric, e);
    return 0;
}

/* The spec with the command line's overrides, the data, what the model
 * derives from it, the validation split, the device, parameters, feeds and
 * batch buffers. */
static int prepare(trainer *t, nn_err *e)
{
    const nn_train_opts *o = t->o;
    nn_model *m = &t->m;
    int r;
    if ((r = nn_spec_load(o->model_path, &m->spec, e)))
        return r;
    nn_spec *s = &m->spec;
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
    if (!s->has_train)
        return nn_fail(e, NN_EDATA, "%s: data.train: required for training (a source such as {\"format\": \"csv\", ...})",
                       s->file);
    /* outputs are checked now and opened last: a failed run truncates nothing */
    if ((r = check_output_dir(s->output, e)) || (r = nn_check_output(s->output, NULL, e)) ||
        (o->checkpoint && (r = nn_check_output(o->checkpoint, NULL, e))) ||
        (o->log && ((r = check_output_dir(o->log, e)) || (r = nn_check_output(o->log, LOG_HEAD, e)))) ||
        (o->plot && ((r = check_output_dir(o->plot, e)) || (r = nn_check_output(o->plot, NN_PNG_MAGIC, e)))))
        return r;
    m->task = s->loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    t->regress = m->task == NN_TASK_REGRESS;
    t->mname = t->regress ? "mae" : "accuracy";
    t->plot.metric = t->mname;
    t->tokens = nn_source_is(&s->train_src, NN_FMT_TOKENS);
    size_t tok_nval = 0;
    if ((r = nn_model_open_train(m, s->train.validation_split, &t->train, &tok_nval, e)))
        return r;
    if (t->train.n == 0)
        return nn_fail(e, NN_EDATA, "%s: data.train holds no samples", s->file);
    if ((r = nn_model_derive(m, &t->train, e)) ||
        (r = nn_loss_check(&m->net, m->nclasses, m->tdim, t->train.ds.ylen, e)))
        return r;
    if (s->has_test && (r = nn_model_open_data(m, &s->test_src, &t->test, e)))
        return r;

    /* validation split: a seeded random subset; by position (the last
     * samples) for token data and time series, whose neighbours overlap */
    const int by_position = t->tokens || s->train_src.window > 0;
    size_t n = t->train.n, nval = t->tokens ? tok_nval : (size_t)((double)n * s->train.validation_split);
    if (!t->tokens && s->train.validation_split > 0 && nval == 0)
        nval = 1;
    if (nval >= n)
        return nn_fail(e, NN_EDATA, "%s: train.validation_split leaves no training samples (%zu samples)", s->file, n);
    size_t ntr = n - nval;
    t->ntr = ntr;
    t->nval = nval;
    t->perm = malloc(n * sizeof(int));
    t->order = malloc(n * sizeof(int));
    if (!t->perm || !t->order)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        t->perm[i] = (int)i;
    nn_rng rng;
    nn_rng_seed(&rng, s->train.seed ^ 0x5eed5eedULL);
    if (nval && !by_position)
        nn_shuffle(&rng, t->perm, n);
    if ((r = nn_model_derive_norm(m, &t->train, t->perm, ntr, e)))
        return r;

    if ((size_t)s->train.batch_size > ntr) /* one batch of everything; never allocate for samples that do not exist */
        s->train.batch_size = (int)ntr;
    t->B = s->train.batch_size;
    /* data-parallel: the device holds one rank's share of a batch */
    if ((r = nn_model_open_device(m, o->device, nn_dist_max_share((size_t)t->B), 1, e)))
        return r;
    nn_dev *d = &m->dev;
    nn_net *net = &m->net;
    if ((r = nn_net_init_params(net, s->train.seed, e)) || (r = nn_optim_init(&t->opt, d, &s->opt, net->nparams, e)))
        return r;
    nn_sched_init(&t->es.sched, &s->train.sched, s->opt.lr, s->train.epochs);
    nn_stop_init(&t->es.stop, &s->train.stop);
    if (s->train.stop.on && s->train.stop.restore) { /* zeros until the first improvement: checkpoints stay finite */
        const size_t np = net->nparams * sizeof(float), ns = net->nstate * sizeof(float);
        if ((r = nn_buf_alloc(d, np, "early stopping's best weights", &t->es.best_params, e)) ||
            (r = nn_buf_zero(d, t->es.best_params, 0, np, e)))
            return r;
        if (ns && ((r = nn_buf_alloc(d, ns, "early stopping's best layer state", &t->es.best_state, e)) ||
                   (r = nn_buf_zero(d, t->es.best_state, 0, ns, e))))
            return r;
    }
    for (int i = 0; i < net->nl; i++) /* layers that learn from the training targets (denormalize: their scale) */
        if (net->L[i].type->fit &&
            (r = net->L[i].type->fit(&net->L[i], d, t->train.ds.t, t->train.ds.tdim, t->perm, ntr, e)))
            return nn_wrap(e, "%s: ", s->file);
    if ((r = nn_model_feed(m, &t->train, t->perm, ntr, &t->ftrain, e)))
        return r;
    nn_feed_shard(&t->ftrain, t->B);
    if (nval && (r = nn_model_feed(m, &t->train, t->perm + ntr, nval, &t->fval, e)))
        return r;
    if ((r = nn_loss_bufs_alloc(d, net, net->max_batch, m->tdim, &t->lb, e)))
        return r;
    if (o->checkpoint)
        snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s", o->checkpoint);
    else
        snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s.ckpt", s->output);
    return 0;
}

/* The value a monitor watches, from an epoch's event. */
static double monitored(const nn_monitor *mon, const event *ev)
{
    return mon->val ? (mon->metric ? ev->vmetric : ev->vloss) : (mon->metric ? ev->metric : ev->loss);
}

/* After an epoch: the schedule learns the monitored value (plateau), early
 * stopping keeps a copy of improved weights and says whether to stop. */
static int end_of_epoch(trainer *t, const event *ev, int *verdict, nn_err *e)
{
    const nn_train_spec *ts = &t->m.spec.train;
    epoch_state *es = &t->es;
    nn_net *net = &t->m.net;
    if (ts->sched.kind)
        nn_sched_observe(&es->sched, ev->epoch - 1, monitored(&ts->sched.monitor, ev));
    if (!ts->stop.on)
        return 0;
    *verdict = nn_stop_observe(&es->stop, ev->epoch, monitored(&ts->stop.monitor, ev));
    int r = 0;
    if (*verdict == NN_STOP_IMPROVED && es->best_params &&
        !(r = nn_buf_copy(&t->m.dev, net->params, es->best_params, net->nparams * sizeof(float), e)) && es->best_state)
        r = nn_buf_copy(&t->m.dev, net->state, es->best_state, net->nstate * sizeof(float), e);
    return r;
}

/* The end of training with early stopping: the best epoch's weights back
 * (before the test set and model.bin), said once. */
static int restore_best(trainer *t, nn_err *e)
{
    const nn_train_spec *ts = &t->m.spec.train;
    epoch_state *es = &t->es;
    nn_net *net = &t->m.net;
    if (!ts->stop.on || t->last_epoch < 1)
        return 0;
    const int stopped = t->stopped;
    const int restore = es->best_params && es->stop.best_epoch > 0 && es->stop.best_epoch != t->last_epoch;
    int r;
    if (restore && ((r = nn_buf_copy(&t->m.dev, es->best_params, net->params, net->nparams * sizeof(float), e)) ||
                    (es->best_state &&
                     (r = nn_buf_copy(&t->m.dev, es->best_state, net->state, net->nstate * sizeof(float), e)))))
        return r;
    if (!stopped && !restore)
        return 0;
    return emit(t, &(event){.kind = EV_STOP, .epoch = t->last_epoch, .stopped = stopped, .restored = restore}, e);
}

/* The epochs (from a checkpoint's position with --resume), with progress,
 * divergence checks, validation and checkpoints. */
static int run_epochs(trainer *t, nn_err *e)
{
    const nn_train_opts *o = t->o;
    nn_model *m = &t->m;
    const nn_spec *s = &m->spec;
    nn_dev *d = &m->dev;
    const size_t ntr = t->ntr, B = (size_t)t->B;
    const char *ckpt_path = t->ckpt_path;
    int r;
    /* resume: the loop position, optimiser state and weights of a checkpoint */
    int start_ep = 1;
    size_t start_batch = 0;
    uint64_t step = 0;
    float acc0[4] = {0};
    if (o->resume && (r = load_resume(m, &t->opt, &t->es, o->resume, ntr, &start_ep, &start_batch, &step, acc0, e)))
        return r;
    t->last_epoch = start_ep - 1;

    const nn_augment aug = {.flip = s->train_src.aug_flip, .shift = s->train_src.aug_crop + s->train_src.aug_translate};
    for (size_t i = 0; i < ntr; i++)
        t->order[i] = (int)i;
    nn_rng rng;
    nn_rng_seed(&rng, s->train.seed ^ 0x0bde5eedULL);
    /* the order of epoch k is the k-th reshuffle: replay the ones skipped */
    for (int ep = 1; ep < start_ep && s->train.shuffle; ep++)
        nn_shuffle(&rng, t->order, ntr);
    nn_run run = {.dev = d, .train = 1, .seed = s->train.seed};
    const size_t nbatches = (ntr + B - 1) / B;
    for (int ep = start_ep; ep <= s->train.epochs; ep++) {
        double t0 = nn_now(), last_bar = t0;
        size_t b0 = ep == start_ep ? start_batch : 0;
        const double lr = nn_sched_lr(&t->es.sched, ep - 1);
        t->opt.lr = (float)lr;
        if (s->train.shuffle)
            nn_shuffle(&rng, t->order, ntr);
        if ((r = nn_feed_begin(&t->ftrain, d, t->order, b0 * B, e)) ||
            (r = nn_buf_write(d, t->lb.acc, 0, sizeof acc0, b0 ? acc0 : (float[4]){0}, 1, e)))
            return r;
        for (size_t bi = b0; bi < nbatches; bi++) {
            size_t st = bi * B, lo;
            run.n_global = (int)(ntr - st < B ? ntr - st : B);
            nn_dist_share((size_t)run.n_global, &lo, &run.n); /* data-parallel: this rank's share */
            run.step = step++;
            int interrupted;
            if ((r = nn_dist_test_fail(run.step, e)) ||
                (r = nn_train_step(m, &t->opt, &t->ftrain, st + lo, &run, &t->lb, &aug, e)) ||
                (r = nn_dist_check_same(d, m->net.params, m->net.nparams, e)) ||
                (r = nn_dist_any(o->stop && *o->stop, &interrupted, e))) /* every rank stops at the same step */
                return r;
            int due = o->ckpt_every > 0 && !o->ckpt_epochs && step % (uint64_t)o->ckpt_every == 0;
            if (interrupted || due) {
                if ((r = save_resume(m, &t->opt, &t->es, ckpt_path, t->lb.acc, ep, bi + 1, step, ntr, e)))
                    return r;
                if (interrupted) {
                    nn_feed_end(&t->ftrain);
                    if (o->progress)
                        fprintf(stderr, "\r\033[K");
                    return nn_fail(e, NN_EINTR,
                                   "interrupted in epoch %d after step %llu; checkpoint written to %s (continue with "
                                   "'nnrun train %s --resume %s')",
                                   ep, (unsigned long long)step, ckpt_path, o->model_path, ckpt_path);
                }
            }
            if ((o->progress && nn_now() - last_bar > 0.25) || step % 200 == 0) {
                float h[4];
                if ((r = nn_buf_read(d, t->lb.acc, 0, sizeof h, h, e)))
                    return r;
                if (!isfinite(h[0]))
                    return diverged(m, &run, ep, h[0], o, e);
                if (o->progress) {
                    progress_bar(ep, s->train.epochs, st + (size_t)run.n_global, ntr, h[0] / h[2], h[1] / h[2],
                                 t->regress);
                    last_bar = nn_now();
                }
            }
        }
        nn_feed_end(&t->ftrain);
        float h[4];
        int stop;
        if ((r = nn_buf_read(d, t->lb.acc, 0, sizeof h, h, e)) || (r = nn_dist_sum(h, 3, e)) ||
            (r = nn_dist_any(o->stop && *o->stop, &stop, e)))
            return r;
        event ev = {.kind = EV_EPOCH, .epoch = ep, .secs = nn_now() - t0, .vloss = NAN, .vmetric = NAN, .lr = lr};
        ev.loss = h[0] / h[2];
        ev.metric = h[1] / h[2];
        if (!isfinite(ev.loss))
            return diverged(m, &run, ep, ev.loss, o, e);
        if (t->nval && (r = nn_model_evaluate(m, &t->fval, &ev.vloss, &ev.vmetric, e)))
            return r;
        ev.sps = ev.secs > 0 ? (double)ntr / ev.secs : 0;
        if ((r = emit(t, &ev, e)))
            return r;
        t->last_epoch = ep;
        int verdict = 0;
        if ((r = end_of_epoch(t, &ev, &verdict, e)))
            return r;
        if (verdict == NN_STOP_STOP) { /* no checkpoint: the run is over */
            t->stopped = 1;
            return 0;
        }
        if ((o->ckpt_epochs && o->ckpt_every > 0 && ep % o->ckpt_every == 0) || stop) {
            if ((r = save_resume(m, &t->opt, &t->es, ckpt_path, NULL, ep + 1, 0, step, ntr, e)))
                return r;
            if (stop)
                return nn_fail(e, NN_EINTR,
                               "interrupted after epoch %d; checkpoint written to %s (continue with 'nnrun train %s "
                               "--resume %s')",
                               ep, ckpt_path, o->model_path, ckpt_path);
        }
    }
    return 0;
}

/* The test set, then model.bin. */
static int finish(trainer *t, nn_err *e)
{
    nn_model *m = &t->m;
    int r;
    if ((r = restore_best(t, e)))
        return r;
    if (m->spec.has_test) {
        event ev = {.kind = EV_TEST, .samples = t->test.n};
        if ((r = nn_model_feed(m, &t->test, NULL, 0, &t->ftest, e)) ||
            (r = nn_model_evaluate(m, &t->ftest, &ev.loss, &ev.metric, e)))
            return r;
        if ((r = emit(t, &ev, e)))
            return r;
    }
    if (nn_dist_get()->rank > 0) /* data-parallel: rank 0 writes */
        return 0;
    if ((r = nn_model_save(m, m->spec.output, e)))
        return r;
    return emit(t, &(event){.kind = EV_SAVED}, e);
}

/* Data-parallel: which rank runs where, one line per rank (rank 0 prints). */
static int say_where(trainer *t, nn_err *e)
{
    const nn_dist *dist = nn_dist_get();
    if (!dist->active)
        return 0;
    enum { LEN = 384 };
    char mine[LEN], host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(mine, sizeof mine, "rank %d of %d on %s: %s", dist->rank, dist->size, host, t->m.dev.name);
    char *all = dist->rank == 0 ? calloc((size_t)dist->size, LEN) : NULL;
    if (dist->rank == 0 && !all)
        return nn_oom(e, "for %d ranks' names", dist->size);
    int r = nn_dist_gather_text(mine, all, LEN, e);
    for (int i = 0; !r && all && i < dist->size && !t->o->quiet; i++) {
        if (t->o->json) {
            fprintf(t->out, "{\"event\":\"rank\",\"rank\":%d,\"where\":", i);
            nn_json_str(t->out, all + (size_t)i * LEN);
            fprintf(t->out, "}\n");
        } else
            fprintf(t->out, "%s\n", all + (size_t)i * LEN);
    }
    free(all);
    return r;
}

int nn_train_run(const nn_train_opts *o, nn_err *e)
{
    trainer t;
    memset(&t, 0, sizeof t);
    /* data-parallel: rank 0 alone reports and writes the metrics log and plot */
    nn_train_opts ro = *o;
    if (nn_dist_get()->rank > 0) {
        ro.log = NULL;
        ro.plot = NULL;
        ro.quiet = 1;
        ro.progress = 0;
    }
    o = &ro;
    t.o = o;
    t.out = stdout;
    int r = prepare(&t, e);
    if (!r)
        r = say_where(&t, e);
    if (!r)
        r = emit(&t, &(event){.kind = EV_START}, e);
    if (!r)
        r = run_epochs(&t, e);
    if (o->plot && t.plot.n) { /* the whole run; also when it stopped early (interrupted, diverged) */
        nn_err pe = {0};
        int pr = nn_plot_write(&t.plot, o->plot, r ? &pe : e);
        if (!r)
            r = pr;
    }
    if (!r)
        r = finish(&t, e);
    if (t.log && (ferror(t.log) | fclose(t.log)) != 0 && !r)
        r = nn_fail(e, NN_EIO, "%s: error writing the metrics log", o->log);
    nn_loss_bufs_free(&t.lb);
    nn_optim_free(&t.opt);
    nn_buf_free(&t.es.best_params);
    nn_buf_free(&t.es.best_state);
    nn_feed_free(&t.ftrain);
    nn_feed_free(&t.fval);
    nn_feed_free(&t.ftest);
    nn_data_free(&t.train);
    nn_data_free(&t.test);
    nn_plot_free(&t.plot);
    free(t.perm);
    free(t.order);
    nn_model_free(&t.m);
    return r;
}
