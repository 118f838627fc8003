/* fuzz_csv.c - libFuzzer target: the CSV loader (nn_csv_load).
 *
 * The input is the CSV file itself (so the seeds are plain CSV files). It is
 * written to a memory-backed file and loaded with several source/label
 * settings, covering what train, eval and infer ask for:
 *   - classification, label by name ("species", header detected);
 *   - classification, label by index with given class names (by index and
 *     by name), header row forced, a row limit;
 *   - regression with two label columns (a name and an index);
 *   - regression by index, no header, labels optional (infer on rows);
 *   - features only (no label column);
 *   - a time series (windows, horizon, stride, feature columns) and its forecast.
 * Checked beyond memory safety: failures return 65/66/71 with a message;
 * a loaded dataset is consistent (finite features, labels in range). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz_common.h"

static fuzz_file file;

static void check(int ok, const char *what, int cfg, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_csv: invariant violated (config %d): %s (code %d, message '%s')\n", cfg, what,
                e->code, e->msg);
        abort();
    }
}

static void load(int cfg, const nn_source *src, const nn_label_opts *lo)
{
    nn_dataset d;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_csv_load(src, lo, &d, &e);
    if (fuzz_verbose())
        fprintf(stderr, "csv[%d]: %d n=%zu dim=%zu %s\n", cfg, r, r ? 0 : d.n, r ? 0 : d.dim, r ? e.msg : "");
    if (r) {
        check(r == 65 || r == 66 || r == 71, "failed with a code other than 65/66/71", cfg, &e);
        check(e.msg[0] != 0, "failed without a message", cfg, &e);
        nn_dataset_free(&d); /* callers free after a failure too */
        return;
    }
    check(d.n >= 1 && d.x != NULL && d.dim >= 1 && d.dim == (size_t)d.c * d.h * d.w, "inconsistent shape", cfg, &e);
    check(src->limit <= 0 || d.n <= (size_t)src->limit, "more rows than the limit", cfg, &e);
    if (src->window > 0)
        check(d.seq_f >= 1 && d.dim == (size_t)src->window * (size_t)d.seq_f, "window shape", cfg, &e);
    for (size_t i = 0; i < d.n * d.dim; i++)
        check(isfinite(d.x[i]), "a feature that is not finite", cfg, &e);
    if (d.y) {
        check(d.task == NN_TASK_CLASSIFY && d.nclasses >= 1, "labels without classes", cfg, &e);
        for (size_t i = 0; i < d.n; i++)
            check(d.y[i] >= 0 && d.y[i] < d.nclasses, "a class index out of range", cfg, &e);
        if (lo && lo->class_names)
            check(d.nclasses == lo->nclasses, "class count differs from the given names", cfg, &e);
    }
    if (d.t) {
        check(d.task == NN_TASK_REGRESS && d.tdim >= 1, "targets without tdim", cfg, &e);
        for (size_t i = 0; i < d.n * (size_t)d.tdim; i++)
            check(isfinite(d.t[i]), "a target that is not finite", cfg, &e);
    }
    if (d.class_names)
        for (int i = 0; i < d.nclasses; i++)
            check(d.class_names[i] != NULL, "a NULL class name", cfg, &e);
    nn_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_file_init(&file, "fuzz.csv");
    fuzz_file_set(&file, data, size);
    static char *iris[] = {"setosa", "versicolor", "virginica"};
    static char *nums[] = {"0", "1", "2", "3"};
    nn_source src;
    nn_label_opts lo;

    /* 0: classification, label by name, header detected */
    memset(&src, 0, sizeof src);
    src.path = file.path;
    src.json_path = "data.train";
    src.header = -1;
    src.nlabels = 1;
    src.label_name[0] = "species";
    src.label_index[0] = -1;
    memset(&lo, 0, sizeof lo);
    lo.task = NN_TASK_CLASSIFY;
    load(0, &src, &lo);

    /* 1: classification, label by index (last iris column), class names given, header row, limit */
    src.header = 1;
    src.label_name[0] = NULL;
    src.label_index[0] = 4;
    src.limit = 3;
    lo.class_names = iris;
    lo.nclasses = 3;
    load(1, &src, &lo);

    /* 2: integer labels mapped by index onto given names, header detected, labels optional */
    src.header = -1;
    src.label_index[0] = 0;
    src.limit = 0;
    lo.class_names = nums;
    lo.nclasses = 4;
    lo.by_index = 1;
    lo.labels_optional = 1;
    load(2, &src, &lo);

    /* 3: regression, two label columns (by name and by index), header detected */
    memset(&lo, 0, sizeof lo);
    lo.task = NN_TASK_REGRESS;
    src.nlabels = 2;
    src.label_name[0] = "y";
    src.label_index[0] = -1;
    src.label_name[1] = NULL;
    src.label_index[1] = 1;
    load(3, &src, &lo);

    /* 4: regression by index, no header, labels optional */
    src.nlabels = 1;
    src.header = 0;
    src.label_name[0] = NULL;
    src.label_index[0] = 2;
    lo.labels_optional = 1;
    load(4, &src, &lo);

    /* 5: features only, default label options */
    src.nlabels = 0;
    src.header = -1;
    load(5, &src, NULL);

    /* 6: a time series: feature columns by name and index (one unparsed), windows of 3 rows,
     * the target 2 rows later, stride 2 */
    static char *fnames[] = {"x", NULL};
    static int fidx[] = {-1, 1};
    memset(&lo, 0, sizeof lo);
    lo.task = NN_TASK_REGRESS;
    src.nlabels = 1;
    src.label_name[0] = "y";
    src.label_index[0] = -1;
    src.nfeat_cols = 2;
    src.feat_name = fnames;
    src.feat_index = fidx;
    src.window = 3;
    src.horizon = 2;
    src.stride = 2;
    load(6, &src, &lo);

    /* 7: forecasting on the same series (targets ignored: every window), a window limit */
    lo.labels_optional = 1;
    src.limit = 5;
    load(7, &src, &lo);
    return 0;
}
