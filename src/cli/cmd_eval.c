#include <math.h>
#include <stdlib.h>
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

/* ------------------------------------------------- the per-class report */

/* sklearn's classification_report (zero_division=0) from the confusion
 * matrix conf (K rows of K + 1 columns: the last counts samples with no
 * prediction, NaN outputs: in their class's support, no class's prediction). */
typedef struct class_row {
    const char *name;
    double p, r, f1;
    long support;
} class_row;
typedef struct class_report {
    int n;             /* the classes listed: those in the data or the predictions, as sklearn lists them */
    int *cls;          /* their indices */
    class_row *row;    /* their rows */
    class_row macro, weighted;
    double accuracy;
    long total, none;  /* samples; samples with no prediction */
    char (*num)[16];   /* class names for models without names */
} class_report;

static void report_free(class_report *c)
{
    free(c->cls);
    free(c->row);
    free(c->num);
}

static int class_report_of(const nn_model *m, const long *conf, class_report *c, nn_err *e)
{
    const int K = m->nclasses;
    memset(c, 0, sizeof *c);
    c->cls = malloc((size_t)K * sizeof *c->cls);
    c->row = malloc((size_t)K * sizeof *c->row);
    c->num = malloc((size_t)K * sizeof *c->num);
    if (!c->cls || !c->row || !c->num)
        return nn_fail(e, NN_ENOMEM, "out of memory (the per-class report)");
    long tp_all = 0;
    for (int i = 0; i < K; i++) {
        long support = 0, predicted = 0, tp = conf[(size_t)i * (K + 1) + i];
        for (int j = 0; j <= K; j++)
            support += conf[(size_t)i * (K + 1) + j];
        for (int j = 0; j < K; j++)
            predicted += conf[(size_t)j * (K + 1) + i];
        c->total += support;
        c->none += conf[(size_t)i * (K + 1) + K];
        tp_all += tp;
        if (!support && !predicted)
            continue;
        snprintf(c->num[i], sizeof c->num[i], "%d", i);
        class_row *r = &c->row[c->n];
        r->name = m->classes && m->classes[i] ? m->classes[i] : c->num[i];
        r->p = predicted ? (double)tp / (double)predicted : 0;
        r->r = support ? (double)tp / (double)support : 0;
        r->f1 = r->p + r->r > 0 ? 2 * r->p * r->r / (r->p + r->r) : 0;
        r->support = support;
        c->cls[c->n++] = i;
    }
    c->macro.name = "macro avg";
    c->weighted.name = "weighted avg";
    for (int k = 0; k < c->n; k++) {
        const class_row *r = &c->row[k];
        double w = c->total ? (double)r->support / (double)c->total : 0;
        c->macro.p += r->p / c->n;
        c->macro.r += r->r / c->n;
        c->macro.f1 += r->f1 / c->n;
        c->weighted.p += r->p * w;
        c->weighted.r += r->r * w;
        c->weighted.f1 += r->f1 * w;
    }
    c->macro.support = c->weighted.support = c->total;
    c->accuracy = c->total ? (double)tp_all / (double)c->total : 0;
    return 0;
}

#define MATRIX_TEXT_MAX 50 /* classes; more would not fit a terminal */

/* sklearn's layout (digits=4): names right-aligned, columns 9 wide; then
 * the confusion matrix, rows the true class, columns the predicted one. */
static int report_text(const class_report *c, const long *conf, int K, nn_err *e)
{
    int width = 12; /* len("weighted avg") */
    for (int k = 0; k < c->n; k++)
        if ((int)strlen(c->row[k].name) > width)
            width = (int)strlen(c->row[k].name);
    printf("\n%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score", "support");
    for (int k = 0; k < c->n; k++)
        printf("%*s  %9.4f %9.4f %9.4f %9ld\n", width, c->row[k].name, c->row[k].p, c->row[k].r, c->row[k].f1,
               c->row[k].support);
    printf("\n%*s  %9s %9s %9.4f %9ld\n", width, "accuracy", "", "", c->accuracy, c->total);
    for (const class_row *r = &c->macro; r; r = r == &c->macro ? &c->weighted : NULL)
        printf("%*s  %9.4f %9.4f %9.4f %9ld\n", width, r->name, r->p, r->r, r->f1, r->support);

    if (c->n > MATRIX_TEXT_MAX) {
        printf("\nconfusion matrix: %d classes, too many to print here (it is in --json)\n", c->n);
        return 0;
    }
    /* the no-prediction column only when there are such samples */
    const int cols = c->n + (c->none > 0);
    const char *none = "(no prediction)";
    int *cw = malloc((size_t)cols * sizeof *cw), nw = 0;
    if (!cw)
        return nn_fail(e, NN_ENOMEM, "out of memory (the confusion matrix)");
    for (int k = 0; k < c->n; k++)
        if ((int)strlen(c->row[k].name) > nw)
            nw = (int)strlen(c->row[k].name);
    for (int k = 0; k < cols; k++) {
        int w = (int)strlen(k < c->n ? c->row[k].name : none);
        for (int i = 0; i < c->n; i++) {
            char b[32];
            int dw = snprintf(b, sizeof b, "%ld", conf[(size_t)c->cls[i] * (K + 1) + (k < c->n ? c->cls[k] : K)]);
            w = dw > w ? dw : w;
        }
        cw[k] = w;
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%*s", nw, "");
    for (int k = 0; k < cols; k++)
        printf("  %*s", cw[k], k < c->n ? c->row[k].name : none);
    printf("\n");
    for (int i = 0; i < c->n; i++) {
        printf("%*s", nw, c->row[i].name);
        for (int k = 0; k < cols; k++)
            printf("  %*ld", cw[k], conf[(size_t)c->cls[i] * (K + 1) + (k < c->n ? c->cls[k] : K)]);
        printf("\n");
    }
    free(cw);
    return 0;
}

static void json_prf(const class_row *r)
{
    printf("{\"precision\":%.6g,\"recall\":%.6g,\"f1-score\":%.6g,\"support\":%ld}", r->p, r->r, r->f1, r->support);
}

/* The same as JSON keys: "report" as sklearn's output_dict=True gives it,
 * "labels" (the listed classes, in order) and "confusion_matrix" (rows: true
 * class), "no_prediction" (samples with NaN outputs, in no column). */
static void report_json(const class_report *c, const long *conf, int K)
{
    printf(",\"report\":{");
    for (int k = 0; k < c->n; k++) {
        nn_json_str(stdout, c->row[k].name);
        printf(":");
        json_prf(&c->row[k]);
        printf(",");
    }
    printf("\"accuracy\":%.6g,\"macro avg\":", c->accuracy);
    json_prf(&c->macro);
    printf(",\"weighted avg\":");
    json_prf(&c->weighted);
    printf("},\"labels\":[");
    for (int k = 0; k < c->n; k++) {
        printf(k ? "," : "");
        nn_json_str(stdout, c->row[k].name);
    }
    printf("],\"confusion_matrix\":[");
    for (int i = 0; i < c->n; i++) {
        printf(i ? ",[" : "[");
        for (int k = 0; k < c->n; k++)
            printf(k ? ",%ld" : "%ld", conf[(size_t)c->cls[i] * (K + 1) + c->cls[k]]);
        printf("]");
    }
    printf("],\"no_prediction\":%ld", c->none);
}

int nn_cmd_eval(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"data", 1, "evaluate on this CSV file, image folder (one sub-folder per class), or IDX images (with --labels) instead of the model's data.test (or give it after MODEL.bin)"},
        {"labels", 1, "IDX labels file to go with --data"},
        {"min-accuracy", 1, "exit 1 when accuracy is below this (0..1)"},
        {"max-loss", 1, "exit 1 when the mean loss is above this"},
        {"batch-size", 1, "samples per forward pass (default 256)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring"},
        {"json", 0, "print one JSON object (classifiers: with the per-class report and the confusion matrix)"},
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
    if (npos < 1)
        return nn_fail(e, NN_EUSAGE, "nnrun eval: expected one MODEL.bin (see 'nnrun eval --help')");
    if (npos == 2) { /* nnrun eval model.bin test.csv: the same as --data test.csv */
        nn_opt *d = nn_arg(opts, "data");
        if (d->set)
            return nn_fail(e, NN_EUSAGE, "nnrun eval: the data is given twice ('%s' and --data %s); give one", pos[1],
                           d->value);
        d->value = pos[1];
        d->set = 1;
    }
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
    long *conf = NULL;
    class_report rep = {0};
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
    /* classifiers: the confusion matrix too, counted in the same pass */
    const int csize = nn_arg(opts, "quiet")->set ? 0 : nn_model_confusion_size(&m);
    if (csize && !(conf = calloc((size_t)csize, sizeof *conf))) {
        r = nn_fail(e, NN_ENOMEM, "out of memory (the confusion matrix)");
        goto out;
    }
    if ((r = nn_model_feed(&m, &ds, NULL, 0, &fd, e)) || (r = nn_model_evaluate_ex(&m, &fd, &loss, &metric, conf, e)) ||
        (conf && (r = class_report_of(&m, conf, &rep, e))))
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
            printf(",\"passed\":%s", pass ? "true" : "false");
            if (conf)
                report_json(&rep, conf, m.nclasses);
            printf("}\n");
        } else {
            printf("%s %.4f  loss %.4f  samples %zu\n", regress ? "mae" : "accuracy", metric, loss, ds.n);
            if (conf && (r = report_text(&rep, conf, m.nclasses, e)))
                goto out;
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
    report_free(&rep);
    free(conf);
    if (owned)
        nn_source_free(&src);
    nn_feed_free(&fd);
    nn_data_free(&ds);
    nn_model_free(&m);
    return r;
}
