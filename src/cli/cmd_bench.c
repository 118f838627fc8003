/* nnrun bench MODEL.json - training throughput, inference latency and
 * throughput, per-layer device times (OpenCL profiling events) and the GEMM
 * rate achieved, on synthetic data of the model's shape (or its own data). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
#include "../dist.h"
#include "../loss.h"
#include "../model.h"
#include "../optim.h"
#include "../train.h"
#include "../tune.h"
#include "../util.h"
#include "cli.h"

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct layer_time {
    double fwd, bwd;
} layer_time;

/* Device time per kernel name over the profiled steps (--kernels). */
typedef struct kernel_time {
    const char *name;
    long count;
    double s;
    int gemm;          /* a GEMM (CLBlast's or the native kernel) */
} kernel_time;
#define MAX_KERNEL_NAMES 128
#define PROFILED_STEPS 5

static void kernel_times_add(nn_dev *d, kernel_time *kt, int *nkt)
{
    for (size_t i = 0; i < d->prof_n; i++) {
        double t = nn_prof_time(d, i);
        const char *nm = d->prof_name[i] ? d->prof_name[i] : "?";
        if (t < 0)
            continue;
        int j = 0;
        while (j < *nkt && strcmp(kt[j].name, nm))
            j++;
        if (j == *nkt) {
            if (*nkt == MAX_KERNEL_NAMES)
                continue;
            kt[(*nkt)++] = (kernel_time){nm, 0, 0, d->prof_flops[i] > 0};
        }
        kt[j].count++;
        kt[j].s += t;
    }
}

/* The per-kernel table (means over PROFILED_STEPS): a JSON array member
 * ',"key":[...]', or text rows under a header naming `per`. */
static void print_kernel_times(const kernel_time *kt, int n, int json, const char *key, const char *per)
{
    if (json)
        printf(",\"%s\":[", key);
    else
        printf("  %-28s %6s %10s   (%s)\n", "kernel", "calls", "ms", per);
    for (int i = 0; i < n; i++) {
        long calls = (long)(kt[i].count / PROFILED_STEPS);
        double ms = kt[i].s / PROFILED_STEPS * 1e3;
        if (!json) {
            printf("  %-28s %6ld %10.3f\n", kt[i].name, calls, ms);
            continue;
        }
        printf("%s{\"name\":", i ? "," : "");
        nn_json_str(stdout, kt[i].name);
        printf(",\"count\":%ld,\"gemm\":%s", calls, kt[i].gemm ? "true" : "false");
        nn_json_num(stdout, "ms", ms);
        printf("}");
    }
    if (json)
        printf("]");
}

static int cmp_kernel_time(const void *a, const void *b)
{
    const kernel_time *x = a, *y = b;
    return x->s < y->s ? 1 : x->s > y->s ? -1 : strcmp(x->name, y->name);
}

/* One training step layer by layer, recording each layer's events; adds its
 * times to lt, step_s, gemm_s/gemm_flops and the per-kernel table. */
static int profiled_step(nn_model *m, nn_optim *opt, nn_feed *f, nn_run *run, const nn_loss_bufs *lb, layer_time *lt,
                         double *step_s, double *gemm_s, double *gemm_flops, kernel_time *kt, int *nkt, nn_err *e)
{
    nn_net *net = &m->net;
    nn_dev *d = &m->dev;
    size_t *fmark = calloc((size_t)net->nl + 1, sizeof(size_t)), *bmark = calloc((size_t)net->nl + 1, sizeof(size_t));
    if (!fmark || !bmark) {
        free(fmark);
        free(bmark);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    nn_prof_clear(d);
    d->prof_on = 1;
    int r = nn_feed_batch(f, net, 0, run->n, lb->target, NULL, 0, 0, e);
    for (int i = 0; !r && i < net->nl; i++) {
        fmark[i] = d->prof_n;
        r = net->L[i].type->forward(&net->L[i], run, e);
    }
    fmark[net->nl] = d->prof_n;
    if (!r)
        r = nn_net_zero_grads(net, e);
    if (!r)
        r = nn_loss_run(net, run, lb->target, lb->metrics, 1, e);
    if (!r)
        r = nn_metrics_accum(d, lb->metrics, run->n * (int)nn_loss_rows(net), lb->acc, e);
    for (int i = net->nl - 1; !r && i >= 0; i--) {
        bmark[i + 1] = d->prof_n;
        if (!(i == net->nl - 1 && net->fused_softmax))
            r = net->L[i].type->backward(&net->L[i], run, e);
    }
    bmark[0] = d->prof_n;
    if (!r)
        r = nn_optim_step(opt, d, net->params, net->grads, m->spec.opt.lr, e);
    d->prof_on = 0;
    if (!r)
        r = nn_dev_finish(d, e);
    if (!r) {
        for (int i = 0; i < net->nl; i++)
            lt[i].fwd += nn_prof_sum(d, fmark[i], fmark[i + 1], NULL, NULL);
        /* layer i's backward events lie in [bmark[i+1], bmark[i]) */
        for (int i = net->nl - 1; i >= 0; i--)
            lt[i].bwd += nn_prof_sum(d, bmark[i + 1], bmark[i], NULL, NULL);
        *step_s += nn_prof_sum(d, 0, d->prof_n, gemm_s, gemm_flops);
        kernel_times_add(d, kt, nkt);
    }
    nn_prof_clear(d);
    free(fmark);
    free(bmark);
    return r;
}

/* What to bench (the command line, or nnrun tune's request). */
typedef struct bench_opts {
    const char *model, *device;
    long B, IB, steps;            /* B 0: train.batch_size */
    int use_data, json, kernels;
    nn_gemm_shape *record;        /* nnrun tune: record one training step's GEMM shapes here after the */
    size_t *nrecord;              /* warm-up, then stop (nothing printed) */
} bench_opts;

/* One bench run's state and results, through its stages: prepare,
 * train_steps, infer_steps, report. */
typedef struct bench {
    const bench_opts *o;
    long B;
    int use_data;                 /* the model's data (--data, or token data), not synthetic */
    nn_model m;
    nn_data data;
    nn_feed feed, ifeed;
    nn_optim opt;
    nn_loss_bufs lb;              /* labels, metrics, metric sums */
    layer_time *lt;
    kernel_time *kt, *ikt;        /* per-kernel times: training steps, batch-1 predictions */
    int nkt, nikt;
    double *lat;
    float *probs;
    /* results */
    double comm_s, exposed_s; /* under mpirun: seconds of gradient all-reduce in the timed steps, and
                                 the part of it after the backward pass */
    double train_s, train_sps, step_dev, gemm_s, gemm_flops, infer_dev, p50, p99, infer_ips;
} bench;

/* Synthetic data of the model's shape: uniform inputs, random labels. */
static int synthetic_data(bench *b, long maxb, nn_err *e)
{
    nn_model *m = &b->m;
    nn_net *net = &m->net;
    int k = (int)net->out_dim;
    nn_dataset *ds = &b->data.ds;
    ds->n = (size_t)maxb * 4;
    ds->dim = net->in_dim;
    ds->c = net->in_shape.nd == 3 ? net->in_shape.d[0] : (int)net->in_dim;
    ds->h = net->in_shape.nd == 3 ? net->in_shape.d[1] : 1;
    ds->w = net->in_shape.nd == 3 ? net->in_shape.d[2] : 1;
    ds->x = malloc(ds->n * ds->dim * sizeof(float));
    if (m->task == NN_TASK_REGRESS) {
        ds->task = NN_TASK_REGRESS;
        ds->tdim = k;
        ds->t = malloc(ds->n * (size_t)k * sizeof(float));
    } else
        ds->y = malloc(ds->n * sizeof(int));
    if (!ds->x || (!ds->t && !ds->y))
        return nn_fail(e, NN_ENOMEM, "out of memory");
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    for (size_t i = 0; i < ds->n * ds->dim; i++)
        ds->x[i] = (float)nn_rng_uniform(&rng);
    int ncls = m->spec.loss == NN_LOSS_BCE ? 2 : k;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->t)
            for (int j = 0; j < k; j++)
                ds->t[i * (size_t)k + (size_t)j] = (float)nn_rng_uniform(&rng);
        else
            ds->y[i] = (int)(nn_rng_next(&rng) % (uint64_t)ncls);
    }
    b->data.n = ds->n;
    return 0;
}

/* The model (its shape from the spec or, with data, as training derives
 * it), the device, parameters, the data and the batch buffers. */
static int prepare(bench *b, nn_err *e)
{
    const bench_opts *o = b->o;
    nn_model *m = &b->m;
    int r;
    if ((r = nn_spec_load(o->model, &m->spec, e)))
        return r;
    nn_spec *s = &m->spec;
    b->B = o->B ? o->B : s->train.batch_size;
    m->task = s->loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    /* token data (text): the corpus is the data (it sizes "vocab" layers) */
    int use_data = b->use_data = o->use_data || (s->has_train && nn_source_is(&s->train_src, NN_FMT_TOKENS));
    if (use_data) {
        size_t nval;
        if (!s->has_train)
            return nn_fail(e, NN_EUSAGE, "%s: --data needs data.train", s->file);
        if ((r = nn_model_open_train(m, 0, &b->data, &nval, e)))
            return r;
    }
    if ((r = nn_model_derive(m, use_data ? &b->data : NULL, e)))
        return r;
    nn_net *net = &m->net;
    m->tdim = m->task == NN_TASK_REGRESS ? (int)net->out_dim : 0;
    long maxb = b->B > o->IB ? b->B : o->IB;
    m->profiling = 1;
    if ((r = nn_model_open_device(m, o->device, (int)maxb, 1, e)))
        return r;
    nn_dev *d = &m->dev;
    if ((r = nn_net_init_params(net, s->train.seed, e)) || (r = nn_optim_init(&b->opt, d, &s->opt, net->nparams, e)))
        return r;
    if (!use_data && (r = synthetic_data(b, maxb, e)))
        return r;
    if ((r = nn_model_feed(m, &b->data, NULL, 0, &b->feed, e)) ||
        (r = nn_loss_bufs_alloc(d, net, (int)maxb, m->tdim, &b->lb, e)))
        return r;
    if (b->data.n < (size_t)b->B)
        return nn_fail(e, NN_EDATA, "%s: the data has %zu samples, fewer than one batch of %ld", s->file, b->data.n,
                       b->B);
    return 0;
}

/* Warm-up (or, for tune, one recorded step), timed steps, profiled steps. */
static int train_steps(bench *b, nn_err *e)
{
    const bench_opts *o = b->o;
    nn_model *m = &b->m;
    nn_net *net = &m->net;
    nn_dev *d = &m->dev;
    nn_feed *feed = &b->feed;
    const long B = b->B;
    size_t nb = b->data.n / (size_t)B;
    /* under mpirun every rank runs a batch of B (the global batch is B x ranks) */
    nn_run run = {.dev = d, .n = (int)B, .train = 1, .seed = m->spec.train.seed,
                  .n_global = (int)B * nn_dist_get()->size};
    /* warm-up: compiles every kernel and GEMM variant */
    int r = nn_feed_begin(feed, d, NULL, 0, e);
    if (r)
        return r;
    size_t bi = 0;
    for (int i = 0; i < 3 && !r; i++, bi++) {
        if (feed->streaming && bi == nb) {
            nn_feed_end(feed);
            r = nn_feed_begin(feed, d, NULL, 0, e);
            bi = 0;
        }
        run.step = (uint64_t)i;
        r = nn_train_step(m, &b->opt, feed, (bi % nb) * (size_t)B, &run, &b->lb, NULL, e);
    }
    if (!r)
        r = nn_dev_finish(d, e);
    if (r)
        return r;
    if (o->record) {
        nn_blas_record_start(d, o->record, NN_MAX_GEMM_SHAPES);
        if (feed->streaming) {
            nn_feed_end(feed);
            r = nn_feed_begin(feed, d, NULL, 0, e);
            bi = 0;
        }
        run.step = 3;
        if (!r)
            r = nn_train_step(m, &b->opt, feed, (bi % nb) * (size_t)B, &run, &b->lb, NULL, e);
        *o->nrecord = nn_blas_record_stop(d);
        return r;
    }
    /* timed steps */
    double t0 = nn_now(), c0 = nn_dist_get()->comm_s, x0 = nn_dist_get()->exposed_s;
    for (long i = 0; i < o->steps && !r; i++, bi++) {
        if (bi % nb == 0 && feed->streaming) {
            nn_feed_end(feed);
            if ((r = nn_feed_begin(feed, d, NULL, 0, e)))
                break;
        }
        run.step = (uint64_t)(i + 3);
        r = nn_train_step(m, &b->opt, feed, (bi % nb) * (size_t)B, &run, &b->lb, NULL, e);
    }
    if (!r)
        r = nn_dev_finish(d, e);
    b->train_s = nn_now() - t0;
    b->comm_s = nn_dist_get()->comm_s - c0;
    b->exposed_s = nn_dist_get()->exposed_s - x0;
    nn_feed_end(feed);
    if (r)
        return r;
    b->train_sps = (double)o->steps * (double)B * nn_dist_get()->size / b->train_s; /* all ranks */
    /* profiled steps: per-layer (and per-kernel) device times and the GEMM rate, their mean */
    b->lt = calloc((size_t)net->nl, sizeof *b->lt);
    b->kt = calloc(MAX_KERNEL_NAMES, sizeof *b->kt);
    if (!b->lt || !b->kt)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    if (!feed->streaming) {
        for (int i = 0; i < PROFILED_STEPS; i++)
            if ((r = nn_feed_begin(feed, d, NULL, 0, e)) ||
                (r = profiled_step(m, &b->opt, feed, &run, &b->lb, b->lt, &b->step_dev,
                                   &b->gemm_s, &b->gemm_flops, b->kt, &b->nkt, e)))
                return r;
        for (int i = 0; i < net->nl; i++) {
            b->lt[i].fwd /= PROFILED_STEPS;
            b->lt[i].bwd /= PROFILED_STEPS;
        }
        b->step_dev /= PROFILED_STEPS;
        b->gemm_s /= PROFILED_STEPS;
        b->gemm_flops /= PROFILED_STEPS;
        qsort(b->kt, (size_t)b->nkt, sizeof *b->kt, cmp_kernel_time);
    }
    return 0;
}

/* Batch-1 latency end to end (upload, forward, read back), its kernels
 * (--kernels), and throughput at batch IB. */
static int infer_steps(bench *b, nn_err *e)
{
    const bench_opts *o = b->o;
    nn_model *m = &b->m;
    nn_dev *d = &m->dev;
    long maxb = b->B > o->IB ? b->B : o->IB;
    int r = nn_devdata_upload(d, &b->data.ds, NULL, 0, &b->ifeed.dd, e);
    if (r)
        return r;
    int lat_n = 200;
    b->lat = malloc(sizeof(double) * (size_t)lat_n);
    b->probs = malloc(sizeof(float) * (size_t)maxb * m->net.out_dim);
    if (!b->lat || !b->probs)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (int i = -10; i < lat_n && !r; i++) {
        double a = nn_now();
        r = nn_model_predict(m, &b->ifeed.dd, (size_t)(i < 0 ? 0 : i) % b->data.ds.n, 1, b->probs, e);
        if (i >= 0)
            b->lat[i] = nn_now() - a;
    }
    if (r)
        return r;
    qsort(b->lat, (size_t)lat_n, sizeof *b->lat, cmpd);
    b->p50 = b->lat[lat_n / 2];
    b->p99 = b->lat[(lat_n * 99) / 100];
    /* --kernels: the kernels of batch-1 inference, PROFILED_STEPS predictions */
    if (o->kernels) {
        if (!(b->ikt = calloc(MAX_KERNEL_NAMES, sizeof *b->ikt)))
            return nn_fail(e, NN_ENOMEM, "out of memory");
        for (int i = 0; i < PROFILED_STEPS && !r; i++) {
            nn_prof_clear(d);
            d->prof_on = 1;
            r = nn_model_predict(m, &b->ifeed.dd, 0, 1, b->probs, e);
            d->prof_on = 0;
            if (!r) {
                b->infer_dev += nn_prof_sum(d, 0, d->prof_n, NULL, NULL) / PROFILED_STEPS;
                kernel_times_add(d, b->ikt, &b->nikt);
            }
            nn_prof_clear(d);
        }
        if (r)
            return r;
        qsort(b->ikt, (size_t)b->nikt, sizeof *b->ikt, cmp_kernel_time);
    }
    /* inference throughput at batch IB */
    int reps = 10;
    if ((r = nn_model_predict(m, &b->ifeed.dd, 0, (int)o->IB, b->probs, e)))
        return r;
    double t0 = nn_now();
    for (int i = 0; i < reps && !r; i++)
        r = nn_model_predict(m, &b->ifeed.dd, 0, (int)o->IB, b->probs, e);
    b->infer_ips = (double)reps * (double)o->IB / (nn_now() - t0);
    return r;
}

static void report(bench *b)
{
    const bench_opts *o = b->o;
    const nn_spec *s = &b->m.spec;
    const nn_net *net = &b->m.net;
    nn_dev *d = &b->m.dev;
    const layer_time *lt = b->lt;
    double gflops = b->gemm_s > 0 ? b->gemm_flops / b->gemm_s / 1e9 : 0;
    if (o->json) {
        printf("{\"model\":");
        nn_json_str(stdout, s->name);
        printf(",\"device\":");
        nn_json_str(stdout, d->name);
        printf(",\"gemm\":");
        nn_json_str(stdout, nn_blas_describe(d));
        printf(",\"batch_size\":%ld,\"steps\":%ld", b->B, o->steps);
        nn_json_num(stdout, "train_samples_per_s", b->train_sps);
        if (nn_dist_get()->size > 1) {
            double st = b->train_s / (double)o->steps, c = b->comm_s / (double)o->steps,
                   x = b->exposed_s / (double)o->steps;
            printf(",\"ranks\":%d", nn_dist_get()->size);
            nn_json_num(stdout, "compute_ms_per_step", (st - x) * 1e3);
            nn_json_num(stdout, "allreduce_ms_per_step", c * 1e3);
            nn_json_num(stdout, "allreduce_exposed_ms_per_step", x * 1e3);
        }
        nn_json_num(stdout, "infer_batch1_p50_ms", b->p50 * 1e3);
        nn_json_num(stdout, "infer_batch1_p99_ms", b->p99 * 1e3);
        printf(",\"infer_batch\":%ld", o->IB);
        nn_json_num(stdout, "infer_samples_per_s", b->infer_ips);
        nn_json_num(stdout, "gemm_gflops", gflops);
        nn_json_num(stdout, "step_device_ms", b->step_dev * 1e3);
        printf(",\"layers\":[");
        for (int i = 0; i < net->nl; i++) {
            printf("%s{\"name\":", i ? "," : "");
            nn_json_str(stdout, net->L[i].name);
            nn_json_num(stdout, "forward_ms", lt[i].fwd * 1e3);
            nn_json_num(stdout, "backward_ms", lt[i].bwd * 1e3);
            printf("}");
        }
        printf("]");
        if (o->kernels)
            print_kernel_times(b->kt, b->nkt, 1, "kernels", NULL);
        if (b->ikt) {
            nn_json_num(stdout, "infer_batch1_device_ms", b->infer_dev * 1e3);
            print_kernel_times(b->ikt, b->nikt, 1, "infer_kernels", NULL);
        }
        printf("}\n");
        return;
    }
    printf("bench %s on %s (batch %ld, %ld steps%s)\n", s->name, d->name, b->B, o->steps,
           b->use_data ? "" : ", synthetic data");
    printf("  GEMM backend: %s\n", nn_blas_describe(d));
    printf("  training    %.0f samples/s (%.2f ms/step)\n", b->train_sps, b->train_s / (double)o->steps * 1e3);
    if (nn_dist_get()->size > 1) {
        /* all-reduce: from its first message to its last; exposed: the part
         * after the backward pass had finished; compute: the rest of a step */
        double st = b->train_s / (double)o->steps, c = b->comm_s / (double)o->steps,
               x = b->exposed_s / (double)o->steps;
        printf("  ranks       %d (batch %ld each): compute %.2f ms/step, all-reduce %.2f ms/step "
               "(%.2f ms of it not hidden behind compute)\n",
               nn_dist_get()->size, b->B, (st - x) * 1e3, c * 1e3, x * 1e3);
    }
    printf("  inference   batch 1: p50 %.3f ms  p99 %.3f ms;  batch %ld: %.0f samples/s\n", b->p50 * 1e3,
           b->p99 * 1e3, o->IB, b->infer_ips);
    if (b->gemm_s > 0)
        printf("  GEMM        %.1f GFLOP/s achieved (%.0f%% of the profiled step's device time)\n", gflops,
               b->step_dev > 0 ? 100 * b->gemm_s / b->step_dev : 0);
    if (b->step_dev > 0) {
        printf("  %-20s %12s %12s   (device time, mean of %d profiled steps)\n", "layer", "forward ms", "backward ms",
               PROFILED_STEPS);
        for (int i = 0; i < net->nl; i++)
            printf("  %-20s %12.3f %12.3f\n", net->L[i].name, lt[i].fwd * 1e3, lt[i].bwd * 1e3);
        if (o->kernels)
            print_kernel_times(b->kt, b->nkt, 0, NULL, "per training step");
    }
    if (b->ikt) {
        char per[96];
        snprintf(per, sizeof per, "per batch-1 prediction: %.3f ms of device time", b->infer_dev * 1e3);
        print_kernel_times(b->ikt, b->nikt, 0, NULL, per);
    }
}

static int bench_run(const bench_opts *o, nn_err *e)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.o = o;
    int r = prepare(&b, e);
    if (!r)
        r = train_steps(&b, e);
    if (!r && !o->record && !(r = infer_steps(&b, e)))
        report(&b);
    free(b.lt);
    free(b.kt);
    free(b.ikt);
    free(b.lat);
    free(b.probs);
    nn_loss_bufs_free(&b.lb);
    nn_optim_free(&b.opt);
    nn_feed_free(&b.feed);
    nn_devdata_free(&b.ifeed.dd);
    nn_data_free(&b.data);
    nn_model_free(&b.m);
    return r;
}

int nn_bench_gemm_shapes(const char *model, long batch, const char *device, nn_gemm_shape *out, size_t *n, nn_err *e)
{
    *n = 0;
    bench_opts o = {.model = model, .device = device, .B = batch, .IB = 256, .steps = 50, .record = out, .nrecord = n};
    return bench_run(&o, e);
}

int nn_cmd_bench(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"batch-size", 1, "training batch size (default: train.batch_size)"},
        {"steps", 1, "timed training steps (default 50)"},
        {"infer-batch", 1, "batch size of the inference throughput test (default 256)"},
        {"data", 0, "use the model's training data instead of synthetic data"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring"},
        {"gemm", 0, "instead of a model: time every GEMM implementation on the W1/W2 benchmark shapes"},
        {"kernels", 0, "also print the device time of every kernel (summed by name) in the profiled training steps and batch-1 predictions"},
        {"json", 0, "print one JSON object"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[2];
    int npos, r = nn_args_parse(argc, argv, opts, "bench", pos, 2, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        for (const nn_cmd *c = nn_cmds; c->name; c++)
            if (!strcmp(c->name, "bench"))
                nn_print_help(stdout, c, opts);
        return 0;
    }
    if (nn_arg(opts, "gemm")->set) {
        if (npos)
            return nn_fail(e, NN_EUSAGE, "nnrun bench --gemm takes no MODEL.json (see 'nnrun bench --help')");
        return nn_bench_gemm(nn_arg(opts, "device")->value, nn_arg(opts, "json")->set, e);
    }
    if (npos != 1)
        return nn_fail(e, NN_EUSAGE, "nnrun bench: expected one MODEL.json (see 'nnrun bench --help')");
    bench_opts o = {.model = pos[0], .steps = 50, .IB = 256, .B = 0};
    if ((r = nn_arg_int(opts, "steps", 1, 1000000, &o.steps, e)) ||
        (r = nn_arg_int(opts, "infer-batch", 1, 1 << 16, &o.IB, e)) ||
        (r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &o.B, e)))
        return r;
    o.device = nn_arg(opts, "device")->value;
    o.json = nn_arg(opts, "json")->set;
    o.use_data = nn_arg(opts, "data")->set;
    o.kernels = nn_arg(opts, "kernels")->set;
    return bench_run(&o, e);
}
