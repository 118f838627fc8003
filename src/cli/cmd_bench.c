/* nnrun bench MODEL.json - training throughput, inference latency and
 * throughput, per-layer device times (OpenCL profiling events) and the GEMM
 * rate achieved, on synthetic data of the model's shape (or its own data). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
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
static int profiled_step(nn_model *m, nn_optim *opt, nn_feed *f, nn_run *run, cl_mem target, cl_mem metrics,
                         cl_mem acc, layer_time *lt, double *step_s, double *gemm_s, double *gemm_flops,
                         kernel_time *kt, int *nkt, nn_err *e)
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
    int r = nn_feed_batch(f, net, 0, run->n, target, NULL, 0, 0, e);
    for (int i = 0; !r && i < net->nl; i++) {
        fmark[i] = d->prof_n;
        r = net->L[i].type->forward(&net->L[i], run, e);
    }
    fmark[net->nl] = d->prof_n;
    if (!r)
        r = nn_net_zero_grads(net, e);
    if (!r)
        r = nn_loss_run(net, run, target, metrics, 1, e);
    if (!r)
        r = nn_metrics_accum(d, metrics, run->n * (int)nn_loss_rows(net), acc, e);
    for (int i = net->nl - 1; !r && i >= 0; i--) {
        bmark[i + 1] = d->prof_n;
        if (!(i == net->nl - 1 && net->fused_softmax))
            r = net->L[i].type->backward(&net->L[i], run, e);
    }
    bmark[0] = d->prof_n;
    size_t end_bwd = d->prof_n;
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
        (void)end_bwd;
        *step_s += nn_prof_sum(d, 0, d->prof_n, gemm_s, gemm_flops);
        kernel_times_add(d, kt, nkt);
    }
    nn_prof_clear(d);
    free(fmark);
    free(bmark);
    return r;
}

/* nnrun tune's hook: when set, bench stops after the warm-up, records the
 * GEMM shapes of one training step into it and returns. */
static nn_gemm_shape *record_into;
static size_t *record_n;

int nn_bench_gemm_shapes(int argc, char **argv, nn_gemm_shape *out, size_t *n, nn_err *e)
{
    record_into = out;
    record_n = n;
    *n = 0;
    int r = nn_cmd_bench(argc, argv, e);
    record_into = NULL;
    record_n = NULL;
    return r;
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
    long steps = 50, IB = 256, B = 0;
    if ((r = nn_arg_int(opts, "steps", 1, 1000000, &steps, e)) || (r = nn_arg_int(opts, "infer-batch", 1, 1 << 16, &IB, e)) ||
        (r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &B, e)))
        return r;
    int json = nn_arg(opts, "json")->set;
    nn_model m;
    memset(&m, 0, sizeof m);
    nn_data data = {0};
    nn_feed feed = {0}, ifeed = {0};
    nn_optim opt = {0};
    cl_mem target = NULL, metrics = NULL, acc = NULL;
    layer_time *lt = NULL;
    kernel_time *kt = NULL, *ikt = NULL; /* per-kernel times: training steps, batch-1 predictions */
    int nikt = 0;
    double infer_dev = 0;
    double *lat = NULL;
    float *probs = NULL;
    if ((r = nn_spec_load(pos[0], &m.spec, e)))
        goto out;
    nn_spec *s = &m.spec;
    if (!B)
        B = s->train.batch_size;
    if (B < IB && 0)
        B = IB;
    m.task = s->loss == NN_LOSS_MSE ? NN_TASK_REGRESS : NN_TASK_CLASSIFY;
    int use_data = nn_arg(opts, "data")->set;
    if (s->has_train && !strcmp(s->train_src.format, "text")) {
        /* text: the vocabulary sizes "vocab" layers; the corpus is the data */
        size_t nv;
        if ((r = nn_text_load(&s->train_src, NULL, 0, 0, &data.ds, &nv, e)))
            goto out;
        s->vocab = data.ds.nclasses;
        data.n = data.ds.n;
        data.nclasses = data.ds.nclasses;
        use_data = 1;
        if (!s->has_input_shape) {
            s->input.nd = 1;
            s->input.d[0] = (int)data.ds.dim;
            s->has_input_shape = 1;
        }
    } else if (use_data) {
        if (!s->has_train) {
            r = nn_fail(e, NN_EUSAGE, "%s: --data needs data.train", s->file);
            goto out;
        }
        if ((r = nn_model_open_data(&m, &s->train_src, &data, e)))
            goto out;
        if (!s->has_input_shape) {
            const nn_dataset *ds = &data.ds;
            s->input.nd = ds->h * ds->w > 1 ? 3 : 1;
            s->input.d[0] = s->input.nd == 3 ? ds->c : (int)ds->dim;
            s->input.d[1] = ds->h;
            s->input.d[2] = ds->w;
            s->has_input_shape = 1;
        }
    } else if (!s->has_input_shape) {
        r = nn_fail(e, NN_EDATA, "%s: input.shape is needed for synthetic data (or pass --data)", s->file);
        goto out;
    }
    if ((r = nn_net_build(&m.net, s, e)))
        goto out;
    m.built = 1;
    nn_net *net = &m.net;
    int k = (int)net->out_dim;
    m.tdim = m.task == NN_TASK_REGRESS ? k : 0;
    long maxb = B > IB ? B : IB;
    m.profiling = 1;
    if ((r = nn_model_open_device(&m, nn_arg(opts, "device")->value, (int)maxb, 1, e)))
        goto out;
    nn_dev *d = &m.dev;
    if ((r = nn_net_init_params(net, s->train.seed, e)) || (r = nn_optim_init(&opt, d, &s->opt, net->nparams, e)))
        goto out;
    if (!use_data) {
        /* synthetic: uniform inputs, random labels of the model's shape */
        nn_dataset *ds = &data.ds;
        ds->n = (size_t)maxb * 4;
        ds->dim = net->in_dim;
        ds->c = net->in_shape.nd == 3 ? net->in_shape.d[0] : (int)net->in_dim;
        ds->h = net->in_shape.nd == 3 ? net->in_shape.d[1] : 1;
        ds->w = net->in_shape.nd == 3 ? net->in_shape.d[2] : 1;
        ds->x = malloc(ds->n * ds->dim * sizeof(float));
        if (m.task == NN_TASK_REGRESS) {
            ds->task = NN_TASK_REGRESS;
            ds->tdim = k;
            ds->t = malloc(ds->n * (size_t)k * sizeof(float));
        } else
            ds->y = malloc(ds->n * sizeof(int));
        if (!ds->x || (!ds->t && !ds->y)) {
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            goto out;
        }
        nn_rng rng;
        nn_rng_seed(&rng, 7);
        for (size_t i = 0; i < ds->n * ds->dim; i++)
            ds->x[i] = (float)nn_rng_uniform(&rng);
        int ncls = s->loss == NN_LOSS_BCE ? 2 : k;
        for (size_t i = 0; i < ds->n; i++) {
            if (ds->t)
                for (int j = 0; j < k; j++)
                    ds->t[i * (size_t)k + (size_t)j] = (float)nn_rng_uniform(&rng);
            else
                ds->y[i] = (int)(nn_rng_next(&rng) % (uint64_t)ncls);
        }
        data.n = ds->n;
    }
    size_t tsz = nn_loss_target_bytes(&m.net, m.tdim), rows = nn_loss_rows(&m.net);
    if ((r = nn_model_feed(&m, &data, NULL, 0, &feed, e)) ||
        (r = nn_buf_alloc(d, (size_t)maxb * tsz, "the batch labels", &target, e)) ||
        (r = nn_buf_alloc(d, (size_t)maxb * rows * 2 * sizeof(float), "the batch metrics", &metrics, e)) ||
        (r = nn_buf_alloc(d, 4 * sizeof(float), "the metric sums", &acc, e)))
        goto out;
    if (data.n < (size_t)B) {
        r = nn_fail(e, NN_EDATA, "%s: the data has %zu samples, fewer than one batch of %ld", s->file, data.n, B);
        goto out;
    }
    size_t nb = data.n / (size_t)B;
    nn_run run = {.dev = d, .n = (int)B, .train = 1, .seed = s->train.seed};
    /* warm-up: compiles every kernel and GEMM variant */
    if ((r = nn_feed_begin(&feed, d, NULL, 0, e)))
        goto out;
    size_t bi = 0;
    for (int i = 0; i < 3 && !r; i++, bi++) {
        if (feed.streaming && bi == nb) {
            nn_feed_end(&feed);
            r = nn_feed_begin(&feed, d, NULL, 0, e);
            bi = 0;
        }
        run.step = (uint64_t)i;
        r = nn_train_step(&m, &opt, &feed, (bi % nb) * (size_t)B, &run, target, metrics, acc, NULL, e);
    }
    if (!r)
        r = nn_dev_finish(d, e);
    if (r)
        goto out;
    if (record_into) {
        nn_blas_record_start(d, record_into, NN_MAX_GEMM_SHAPES);
        if (feed.streaming) {
            nn_feed_end(&feed);
            r = nn_feed_begin(&feed, d, NULL, 0, e);
            bi = 0;
        }
        run.step = 3;
        if (!r)
            r = nn_train_step(&m, &opt, &feed, (bi % nb) * (size_t)B, &run, target, metrics, acc, NULL, e);
        *record_n = nn_blas_record_stop(d);
        goto out;
    }
    /* timed steps */
    double t0 = nn_now();
    for (long i = 0; i < steps && !r; i++, bi++) {
        if (bi % nb == 0 && feed.streaming) {
            nn_feed_end(&feed);
            if ((r = nn_feed_begin(&feed, d, NULL, 0, e)))
                break;
        }
        run.step = (uint64_t)(i + 3);
        r = nn_train_step(&m, &opt, &feed, (bi % nb) * (size_t)B, &run, target, metrics, acc, NULL, e);
    }
    if (!r)
        r = nn_dev_finish(d, e);
    double train_s = nn_now() - t0;
    nn_feed_end(&feed);
    if (r)
        goto out;
    double train_sps = (double)steps * (double)B / train_s;
    /* profiled steps: per-layer (and per-kernel) device times and the GEMM rate, their mean */
    lt = calloc((size_t)net->nl, sizeof *lt);
    kt = calloc(MAX_KERNEL_NAMES, sizeof *kt);
    double step_dev = 0, gemm_s = 0, gemm_flops = 0;
    int nkt = 0;
    if (!lt || !kt) {
        r = nn_fail(e, NN_ENOMEM, "out of memory");
        goto out;
    }
    if (!feed.streaming) {
        for (int i = 0; i < PROFILED_STEPS; i++)
            if ((r = nn_feed_begin(&feed, d, NULL, 0, e)) ||
                (r = profiled_step(&m, &opt, &feed, &run, target, metrics, acc, lt, &step_dev, &gemm_s, &gemm_flops,
                                   kt, &nkt, e)))
                goto out;
        for (int i = 0; i < net->nl; i++) {
            lt[i].fwd /= PROFILED_STEPS;
            lt[i].bwd /= PROFILED_STEPS;
        }
        step_dev /= PROFILED_STEPS;
        gemm_s /= PROFILED_STEPS;
        gemm_flops /= PROFILED_STEPS;
        qsort(kt, (size_t)nkt, sizeof *kt, cmp_kernel_time);
    }
    const int show_kernels = nn_arg(opts, "kernels")->set;
    /* inference: batch-1 latency end to end (upload, forward, read back) */
    if ((r = nn_devdata_upload(d, &data.ds, NULL, 0, &ifeed.dd, e)))
        goto out;
    int lat_n = 200;
    lat = malloc(sizeof(double) * (size_t)lat_n);
    probs = malloc(sizeof(float) * (size_t)maxb * net->out_dim);
    if (!lat || !probs) {
        r = nn_fail(e, NN_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = -10; i < lat_n && !r; i++) {
        double a = nn_now();
        r = nn_model_predict(&m, &ifeed.dd, (size_t)(i < 0 ? 0 : i) % data.ds.n, 1, probs, e);
        if (i >= 0)
            lat[i] = nn_now() - a;
    }
    if (r)
        goto out;
    qsort(lat, (size_t)lat_n, sizeof *lat, cmpd);
    double p50 = lat[lat_n / 2], p99 = lat[(lat_n * 99) / 100];
    /* --kernels: the kernels of batch-1 inference, PROFILED_STEPS predictions */
    if (nn_arg(opts, "kernels")->set) {
        if (!(ikt = calloc(MAX_KERNEL_NAMES, sizeof *ikt))) {
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < PROFILED_STEPS && !r; i++) {
            nn_prof_clear(d);
            d->prof_on = 1;
            r = nn_model_predict(&m, &ifeed.dd, 0, 1, probs, e);
            d->prof_on = 0;
            if (!r) {
                infer_dev += nn_prof_sum(d, 0, d->prof_n, NULL, NULL) / PROFILED_STEPS;
                kernel_times_add(d, ikt, &nikt);
            }
            nn_prof_clear(d);
        }
        if (r)
            goto out;
        qsort(ikt, (size_t)nikt, sizeof *ikt, cmp_kernel_time);
    }
    /* inference throughput at batch IB */
    int reps = 10;
    if ((r = nn_model_predict(&m, &ifeed.dd, 0, (int)IB, probs, e)))
        goto out;
    t0 = nn_now();
    for (int i = 0; i < reps && !r; i++)
        r = nn_model_predict(&m, &ifeed.dd, 0, (int)IB, probs, e);
    double infer_ips = (double)reps * (double)IB / (nn_now() - t0);
    if (r)
        goto out;
    double gflops = gemm_s > 0 ? gemm_flops / gemm_s / 1e9 : 0;
    if (json) {
        printf("{\"model\":");
        nn_json_str(stdout, s->name);
        printf(",\"device\":");
        nn_json_str(stdout, d->name);
        printf(",\"gemm\":");
        nn_json_str(stdout, nn_blas_describe(d));
        printf(",\"batch_size\":%ld,\"steps\":%ld", B, steps);
        nn_json_num(stdout, "train_samples_per_s", train_sps);
        nn_json_num(stdout, "infer_batch1_p50_ms", p50 * 1e3);
        nn_json_num(stdout, "infer_batch1_p99_ms", p99 * 1e3);
        printf(",\"infer_batch\":%ld", IB);
        nn_json_num(stdout, "infer_samples_per_s", infer_ips);
        nn_json_num(stdout, "gemm_gflops", gflops);
        nn_json_num(stdout, "step_device_ms", step_dev * 1e3);
        printf(",\"layers\":[");
        for (int i = 0; i < net->nl; i++) {
            printf("%s{\"name\":", i ? "," : "");
            nn_json_str(stdout, net->L[i].name);
            nn_json_num(stdout, "forward_ms", lt[i].fwd * 1e3);
            nn_json_num(stdout, "backward_ms", lt[i].bwd * 1e3);
            printf("}");
        }
        printf("]");
        if (show_kernels)
            print_kernel_times(kt, nkt, 1, "kernels", NULL);
        if (ikt) {
            nn_json_num(stdout, "infer_batch1_device_ms", infer_dev * 1e3);
            print_kernel_times(ikt, nikt, 1, "infer_kernels", NULL);
        }
        printf("}\n");
    } else {
        printf("bench %s on %s (batch %ld, %ld steps%s)\n", s->name, d->name, B, steps, use_data ? "" : ", synthetic data");
        printf("  GEMM backend: %s\n", nn_blas_describe(d));
        printf("  training    %.0f samples/s (%.2f ms/step)\n", train_sps, train_s / (double)steps * 1e3);
        printf("  inference   batch 1: p50 %.3f ms  p99 %.3f ms;  batch %ld: %.0f samples/s\n", p50 * 1e3, p99 * 1e3, IB,
               infer_ips);
        if (gemm_s > 0)
            printf("  GEMM        %.1f GFLOP/s achieved (%.0f%% of the profiled step's device time)\n", gflops,
                   step_dev > 0 ? 100 * gemm_s / step_dev : 0);
        if (step_dev > 0) {
            printf("  %-20s %12s %12s   (device time, mean of %d profiled steps)\n", "layer", "forward ms",
                   "backward ms", PROFILED_STEPS);
            for (int i = 0; i < net->nl; i++)
                printf("  %-20s %12.3f %12.3f\n", net->L[i].name, lt[i].fwd * 1e3, lt[i].bwd * 1e3);
            if (show_kernels)
                print_kernel_times(kt, nkt, 0, NULL, "per training step");
        }
        if (ikt) {
            char per[96];
            snprintf(per, sizeof per, "per batch-1 prediction: %.3f ms of device time", infer_dev * 1e3);
            print_kernel_times(ikt, nikt, 0, NULL, per);
        }
    }
out:
    free(lt);
    free(kt);
    free(ikt);
    free(lat);
    free(probs);
    nn_buf_free(&target);
    nn_buf_free(&metrics);
    nn_buf_free(&acc);
    nn_optim_free(&opt);
    nn_feed_free(&feed);
    nn_devdata_free(&ifeed.dd);
    nn_data_free(&data);
    nn_model_free(&m);
    return r;
}
