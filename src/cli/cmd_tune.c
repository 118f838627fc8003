/* nnrun tune [MODEL.json] - tune CLBlast's GEMM for the selected device on
 * the shapes the model uses (default: the W1 and LeNet workloads' shapes). */
#include <stdlib.h>
#include <string.h>

#include "../blas.h"
#include "../tune.h"
#include "cli.h"

int nn_cmd_tune(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"candidates", 1, "parameter sets to try (default 24)"},
        {"reps", 1, "timed repetitions of each GEMM (default 5)"},
        {"batch-size", 1, "batch size whose GEMM shapes are tuned (default: the model's)"},
        {"seed", 1, "seed of the candidate sampling (default 1)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring"},
        {"json", 0, "print one JSON object"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[8];
    int npos, r = nn_args_parse(argc, argv, opts, "tune", pos, 8, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        for (const nn_cmd *c = nn_cmds; c->name; c++)
            if (!strcmp(c->name, "tune"))
                nn_print_help(stdout, c, opts);
        return 0;
    }
    long cand = 24, reps = 5, seed = 1, batch = 0;
    if ((r = nn_arg_int(opts, "candidates", 1, 10000, &cand, e)) || (r = nn_arg_int(opts, "reps", 1, 1000, &reps, e)) ||
        (r = nn_arg_int(opts, "seed", 0, 0x7fffffffffffffffL, &seed, e)) ||
        (r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &batch, e)))
        return r;
    /* tune against CLBlast's own defaults, not previously stored parameters */
    setenv("NNRUN_NO_TUNE", "1", 1);
    const char *device = nn_arg(opts, "device")->value;
    nn_gemm_shape shapes[NN_MAX_GEMM_SHAPES * 4];
    size_t ns = 0;
    const char *defaults[] = {"models/fashion_mlp.json", "models/fashion_lenet.json"};
    int nmodels = npos ? npos : 2;
    for (int i = 0; i < nmodels; i++) {
        const char *model = npos ? pos[i] : defaults[i];
        size_t n = 0;
        if ((r = nn_bench_gemm_shapes(model, batch, device, shapes + ns, &n, e)))
            return npos ? r : nn_wrap(e, "nnrun tune without a model uses %s: ", model);
        ns += n;
    }
    if (ns == 0)
        return nn_fail(e, NN_EDATA, "the model uses no GEMM: nothing to tune");
    nn_dev d;
    if ((r = nn_dev_open(&d, device, 0, e)))
        return r;
    if ((r = nn_blas_open(&d, NN_GEMM_CLBLAST, e))) {
        nn_blas_close(&d);
        nn_dev_close(&d);
        return r;
    }
    int json = nn_arg(opts, "json")->set;
    if (!json) {
        printf("tuning the GEMMs on %s for %zu shapes (CLBlast's XgemmDirect parameters, then the backend per "
               "shape):\n", d.name, ns);
        for (size_t i = 0; i < ns; i++)
            printf("  %s%s %zux%zux%zu%s x%ld per step\n", shapes[i].ta ? "T" : "N", shapes[i].tb ? "T" : "N", shapes[i].m,
                   shapes[i].n, shapes[i].k, shapes[i].batch > 1 ? " (batched)" : "", shapes[i].count);
    }
    nn_tune_opts o = {.candidates = (int)cand, .reps = (int)reps, .seed = (uint64_t)seed, .json = json};
    r = nn_tune_run(&d, shapes, ns, &o, e);
    nn_blas_close(&d); /* its state is the BLAS module's, not the device's */
    nn_dev_close(&d);
    return r;
}
