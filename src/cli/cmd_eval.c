#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "../data/format.h"
#include "../model.h"
#include "../util.h"
#include "cli.h"

/* The source to evaluate on: --data (with the training source's CSV
 * settings, or --labels for IDX), else the model's data.test. */
static int pick_source(nn_model *m, nn_opt *opts, nn_source *src, int *owned, nn_err *e)
{
    const char *data = nn_arg(opts, "data")->value, *labels = nn_arg(opts, "labels")->value;
    *owned = 0;
    if (!data) {
        if (labels)
            return nn_fail(e, NN_EUSAGE, "nnrun eval: --labels needs --data IMAGES");
        if (!m->spec.has_test)
            return nn_fail(e, NN_EUSAGE, "%s: the model has no data.test; give --data FILE",
                           m->spec.file);
        *src = m->spec.test_src;
        return 0;
    }
    memset(src, 0, sizeof *src);
    const nn_source *tr = m->spec.has_train ? &m->spec.train_src : NULL;
    const nn_format *tf = nn_format_of(tr);
    size_t l = strlen(data);
    int is_csv = l > 4 && !strcasecmp(data + l - 4, ".csv");
    struct stat st;
    const nn_format *f;
    if (!labels && stat(data, &st) == 0 && S_ISDIR(st.st_mode))
        f = nn_format_with(NN_FMT_FOLDER); /* a folder of class folders */
    else if (!labels && is_csv && tf && (tf->flags & NN_FMT_CSV_FILE))
        f = tf; /* a .csv read as the training data was (a CSV, or an image list) */
    else if (labels || (!is_csv && tf && (tf->flags & NN_FMT_PAIRED))) {
        if (!labels)
            return nn_fail(e, NN_EUSAGE, "nnrun eval: IDX data needs --labels LABELS as well as --data IMAGES");
        f = nn_format_with(NN_FMT_PAIRED);
        snprintf(src->format, sizeof src->format, "%s", f->name);
        src->images = nn_strdup(data);
        src->labels = nn_strdup(labels);
        src->json_path = "--data";
        *owned = 1;
        return 0;
    } else {
        if (!tf || !tf->copy_for_eval) {
            *owned = 1;
            return nn_fail(e, NN_EUSAGE,
                           "nnrun eval: --data %s: eval cannot read this file as the model's training data (format "
                           "'%s') was read; give a folder of class folders, a .csv file, or IDX --data IMAGES --labels "
                           "LABELS, or leave out --data to use the model's data.test",
                           data, tf ? tf->name : "none recorded");
        }
        f = tf; /* any other file: read with the training source's settings */
    }
    *owned = 1;
    return nn_source_like(src, f, data, tr, "--data", e);
}

int nn_cmd_eval(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"data", 1, "evaluate on this CSV file, image folder (one sub-folder per class), or IDX images (with --labels) instead of the model's data.test"},
        {"labels", 1, "IDX labels file to go with --data"},
        {"min-accuracy", 1, "exit 1 when accuracy is below this (0..1)"},
        {"max-loss", 1, "exit 1 when the mean loss is above this"},
        {"batch-size", 1, "samples per forward pass (default 256)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring"},
        {"json", 0, "print one JSON object"},
        {"quiet", 0, "print nothing (a failed gate too): the exit code tells; errors still go to stderr"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[2];
    int npos, r = nn_args_parse(argc, argv, opts, "eval", pos, 2, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        nn_print_help(stdout, &nn_cmds[1], opts);
        return 0;
    }
    if (npos != 1)
        return nn_fail(e, NN_EUSAGE, "nnrun eval: expected one MODEL.bin (see 'nnrun eval --help')");
    long B = 256;
    double min_acc = -1, max_loss = -1;
    if ((r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &B, e)) ||
        (r = nn_arg_num(opts, "min-accuracy", 0, 1, &min_acc, e)) ||
        (r = nn_arg_num(opts, "max-loss", 0, 1e30, &max_loss, e)))
        return r;
    nn_model m;
    nn_source src;
    nn_data ds = {0};
    nn_feed fd = {0};
    int owned = 0;
    memset(&src, 0, sizeof src);
    if ((r = nn_model_load(pos[0], nn_arg(opts, "device")->value, (int)B, &m, e)))
        goto out;
    if (min_acc >= 0 && m.task == NN_TASK_REGRESS) {
        r = nn_fail(e, NN_EUSAGE, "nnrun eval: --min-accuracy needs a classifier; this model is a regression (use --max-loss)");
        goto out;
    }
    if ((r = pick_source(&m, opts, &src, &owned, e)) || (r = nn_model_open_data(&m, &src, &ds, e)))
        goto out;
    if (ds.n == 0) {
        r = nn_fail(e, NN_EDATA, "%s: no samples to evaluate", src.path ? src.path : src.images);
        goto out;
    }
    double loss, metric;
    if ((r = nn_model_feed(&m, &ds, NULL, 0, &fd, e)) || (r = nn_model_evaluate(&m, &fd, &loss, &metric, e)))
        goto out;
    int regress = m.task == NN_TASK_REGRESS;
    /* NaN outputs still "predict" class 0 and can reach an accuracy: no gate passes them */
    const int gated = min_acc >= 0 || max_loss >= 0, nonfinite = gated && !isfinite(loss);
    int pass = !nonfinite && !(min_acc >= 0 && !(metric >= min_acc)) && !(max_loss >= 0 && !(loss <= max_loss));
    if (!nn_arg(opts, "quiet")->set) {
        if (nn_arg(opts, "json")->set) {
            printf("{\"samples\":%zu", ds.n);
            nn_json_num(stdout, "loss", loss);
            nn_json_num(stdout, regress ? "mae" : "accuracy", metric);
            printf(",\"passed\":%s}\n", pass ? "true" : "false");
        } else {
            printf("%s %.4f  loss %.4f  samples %zu\n", regress ? "mae" : "accuracy", metric, loss, ds.n);
        }
    }
    if (!pass && nn_arg(opts, "quiet")->set) {
        e->msg[0] = 0; /* --quiet: the exit code alone tells */
        r = e->code = NN_EGATE;
    } else if (!pass) {
        if (nonfinite)
            r = nn_fail(e, NN_EGATE, "the loss is %g: the model's outputs are not finite, so no gate passes", loss);
        else if (min_acc >= 0 && !(metric >= min_acc))
            r = nn_fail(e, NN_EGATE, "accuracy %.4f is below --min-accuracy %g", metric, min_acc);
        else
            r = nn_fail(e, NN_EGATE, "loss %.4f is above --max-loss %g", loss, max_loss);
    }
out:
    if (owned)
        nn_source_free(&src);
    nn_feed_free(&fd);
    nn_data_free(&ds);
    nn_model_free(&m);
    return r;
}
