/* test_data.c - the dataset loaders: CSV, IDX, images. Fixtures are written
 * to a mkdtemp folder that is removed at exit. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image_write.h>

#include "check.h"
#include "data/dataset.h"
#include "tutil.h"
#include "util.h"

/* ------------------------------------------------------------ temp files */

static char g_dir[512];

static void rm_dir(void)
{
    if (!g_dir[0])
        return;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *de;
        char p[1100];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", g_dir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(g_dir);
    g_dir[0] = 0;
}

/* Full path of `name` in the temp folder (buf of 1024). */
static const char *tpath(const char *name, char *buf)
{
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/nnrun_data_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) {
            snprintf(g_dir, sizeof g_dir, "/tmp/nnrun_data_XXXXXX");
            if (!mkdtemp(g_dir))
                abort();
        }
        atexit(rm_dir);
    }
    snprintf(buf, 1024, "%s/%s", g_dir, name);
    return buf;
}

static int write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    if (!g)
        return -1;
    int w = len ? gzwrite(g, data, (unsigned)len) : 0;
    return (gzclose(g) == Z_OK && (size_t)w == len) ? 0 : -1;
}

/* ------------------------------------------------------------ CSV helpers */

typedef struct {
    int header;       /* -1, 0, 1 */
    const char *name; /* label by name ... */
    const char *name2;/* second label (regression) */
    int index;        /* ... or by index (when name is NULL); -1: no label */
    long limit;
    int window, horizon, stride; /* time-series windows (window 0: one sample per row) */
    const char *features;        /* comma-separated feature columns: names, or #N for index N */
} csv_opts;

static int load_csv(const char *text, csv_opts o, const nn_label_opts *lo, nn_dataset *d,
                    nn_err *e)
{
    char p[1024];
    tpath("t.csv", p);
    if (tu_write_file(p, text, strlen(text)))
        return -1;
    nn_source s;
    memset(&s, 0, sizeof s);
    snprintf(s.format, sizeof s.format, "csv");
    s.path = nn_strdup(p);
    s.header = o.header;
    s.limit = o.limit;
    if (o.name) {
        s.label_name[s.nlabels++] = nn_strdup(o.name);
        if (o.name2)
            s.label_name[s.nlabels++] = nn_strdup(o.name2);
    } else if (o.index >= 0) {
        s.label_index[s.nlabels++] = o.index;
    }
    s.window = o.window;
    s.horizon = o.horizon;
    s.stride = o.stride ? o.stride : 1;
    if (o.features) {
        s.feat_name = calloc(16, sizeof *s.feat_name);
        s.feat_index = calloc(16, sizeof *s.feat_index);
        for (const char *f = o.features; *f && s.nfeat_cols < 16;) {
            size_t l = strcspn(f, ",");
            char b[64];
            snprintf(b, sizeof b, "%.*s", (int)l, f);
            if (b[0] == '#')
                s.feat_index[s.nfeat_cols++] = atoi(b + 1);
            else
                s.feat_name[s.nfeat_cols++] = nn_strdup(b);
            f += l + (f[l] == ',');
        }
    }
    s.json_path = "data.train";
    e->code = 0;
    e->msg[0] = 0;
    int rc = nn_csv_load(&s, lo, d, e);
    nn_source_free(&s);
    return rc;
}

static const nn_label_opts CLS = {NN_TASK_CLASSIFY, NULL, 0, 0, 0};
static const nn_label_opts REG = {NN_TASK_REGRESS, NULL, 0, 0, 0};

static int feq(float a, float b) { return fabsf(a - b) <= 1e-6f * (1.0f + fabsf(b)); }

#define EXPECT_ERR(rc, e, want, frag)                                                     \
    CHECK((rc) == (want) && strstr((e).msg, (frag)), "rc %d (want %d), msg '%s' lacks '%s'", \
          (rc), (want), (e).msg, (frag))

/* ------------------------------------------------------------ CSV tests */

TEST(data_csv_header_string_labels)
{
    nn_dataset d;
    nn_err e;
    int rc = load_csv("sepal,petal,species\n"
                      "1,2,setosa\n3,4.5,virginica\n5,6,setosa\n7,-8e1,versicolor\n",
                      (csv_opts){-1, "species", NULL, -1, 0}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 4 && d.c == 2 && d.h == 1 && d.w == 1 && d.dim == 2, "shape n=%zu c=%d", d.n, d.c);
    CHECK(d.task == NN_TASK_CLASSIFY && d.y && !d.t, "task/y/t");
    CHECK(d.nclasses == 3, "nclasses %d", d.nclasses);
    CHECK(!strcmp(d.class_names[0], "setosa") && !strcmp(d.class_names[1], "versicolor") &&
              !strcmp(d.class_names[2], "virginica"),
          "class order");
    int want[] = {0, 2, 0, 1};
    for (int i = 0; i < 4; i++)
        CHECK(d.y[i] == want[i], "y[%d]=%d", i, d.y[i]);
    float wx[] = {1, 2, 3, 4.5f, 5, 6, 7, -80};
    for (int i = 0; i < 8; i++)
        CHECK(feq(d.x[i], wx[i]), "x[%d]=%g", i, d.x[i]);
    nn_dataset_free(&d);
    CHECK(d.x == NULL && d.n == 0 && d.class_names == NULL, "free zeroes");
    return 0;
}

TEST(data_csv_int_labels_numeric_order)
{
    nn_dataset d;
    nn_err e;
    int rc = load_csv("x,label\n0.5,10\n1.5,2\n2.5,0\n3.5,2\n4.5,-1\n",
                      (csv_opts){-1, "label", NULL, -1, 0}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.nclasses == 4, "nclasses %d", d.nclasses);
    const char *names[] = {"-1", "0", "2", "10"};
    for (int i = 0; i < 4; i++)
        CHECK(!strcmp(d.class_names[i], names[i]), "name %d '%s'", i, d.class_names[i]);
    int want[] = {3, 2, 1, 2, 0};
    for (int i = 0; i < 5; i++)
        CHECK(d.y[i] == want[i], "y[%d]=%d", i, d.y[i]);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_csv_label_by_index)
{
    nn_dataset d;
    nn_err e;
    /* headerless, label in the first column */
    int rc = load_csv("1,2,3\n0,4,5\n1,6,7\n", (csv_opts){-1, NULL, NULL, 0, 0}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 3 && d.c == 2, "n=%zu c=%d", d.n, d.c);
    CHECK(d.y[0] == 1 && d.y[1] == 0 && d.y[2] == 1 && d.nclasses == 2, "y");
    CHECK(d.x[0] == 2 && d.x[1] == 3 && d.x[4] == 6 && d.x[5] == 7, "x");
    nn_dataset_free(&d);
    /* with a header, label in the middle */
    rc = load_csv("a,lab,b\n1,x,2\n3,y,4\n", (csv_opts){-1, NULL, NULL, 1, 0}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 2 && d.c == 2 && d.x[2] == 3 && d.x[3] == 4 && d.y[1] == 1, "header+index");
    nn_dataset_free(&d);
    return 0;
}

TEST(data_csv_given_class_names)
{
    char *names[] = {"cat", "dog", "7"};
    nn_label_opts lo = {NN_TASK_CLASSIFY, names, 3, 1, 0};
    nn_dataset d;
    nn_err e;
    int rc = load_csv("f,l\n1,0\n2,2\n3,1\n", (csv_opts){-1, "l", NULL, -1, 0}, &lo, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.y[0] == 0 && d.y[1] == 2 && d.y[2] == 1, "by index");
    CHECK(d.nclasses == 3 && d.class_names && d.class_names != names &&
              !strcmp(d.class_names[1], "dog"),
          "names copied");
    nn_dataset_free(&d);
    rc = load_csv("f,l\n1,0\n2,3\n", (csv_opts){-1, "l", NULL, -1, 0}, &lo, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3:2: label '3' is not a class index in 0..2");
    /* by name; an integer label matches by its decimal text */
    lo.by_index = 0;
    rc = load_csv("f,l\n1,dog\n2,cat\n3,07\n", (csv_opts){-1, "l", NULL, -1, 0}, &lo, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.y[0] == 1 && d.y[1] == 0 && d.y[2] == 2, "by name %d %d %d", d.y[0], d.y[1], d.y[2]);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_csv_regression_two_targets)
{
    nn_dataset d;
    nn_err e;
    int rc = load_csv("a,y1,b,y2\n1,10,2,20\n3,30,4,40\n5,50,6,60\n",
                      (csv_opts){1, "y2", "y1", -1, 0}, &REG, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.task == NN_TASK_REGRESS && d.t && !d.y && d.tdim == 2 && d.nclasses == 0, "task");
    CHECK(d.n == 3 && d.c == 2, "shape");
    CHECK(d.t[0] == 20 && d.t[1] == 10 && d.t[4] == 60 && d.t[5] == 50, "t order follows labels");
    CHECK(d.x[0] == 1 && d.x[1] == 2 && d.x[5] == 6, "x");
    nn_dataset_free(&d);
    rc = load_csv("a,y\n1,2\n3,big\n", (csv_opts){1, "y", NULL, -1, 0}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3:2: column 'y': 'big' is not a number");
    return 0;
}

TEST(data_csv_feature_columns)
{
    nn_dataset d;
    nn_err e;
    /* a date column that is not a number is skipped, never parsed; order as listed */
    int rc = load_csv("date,a,b,y\n2020-01-01,1,2,0\n\"2020-01-02\",3,4,1\n2020-01-03,5,6,0\n",
                      (csv_opts){-1, "y", NULL, -1, 0, .features = "b,a"}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 3 && d.dim == 2 && d.seq_f == 0, "n %zu dim %zu", d.n, d.dim);
    CHECK(d.x[0] == 2 && d.x[1] == 1 && d.x[2] == 4 && d.x[5] == 5, "x follows the listed order");
    CHECK(d.y[1] == 1, "labels");
    nn_dataset_free(&d);
    rc = load_csv("1,2,3\n4,5,6\n", (csv_opts){0, NULL, NULL, 2, 0, .features = "#1"}, &REG, &d, &e);
    CHECK(rc == 0 && d.dim == 1 && d.x[0] == 2 && d.x[1] == 5 && d.t[1] == 6, "by index: rc %d %s", rc, e.msg);
    nn_dataset_free(&d);
    rc = load_csv("date,a,y\n1,2,3\n", (csv_opts){-1, "y", NULL, -1, 0, .features = "aa"}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: feature column 'aa' not found in the header (columns: date, a, y); did you mean 'a'?");
    rc = load_csv("a,y\n1,2\n", (csv_opts){-1, "y", NULL, -1, 0, .features = "a,y"}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: column 2 is the label; it cannot also be a feature");
    rc = load_csv("a,y\n1,2\n", (csv_opts){-1, "y", NULL, -1, 0, .features = "a,#0"}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: column 1 is listed twice in the features");
    rc = load_csv("a,y\n1,2\n", (csv_opts){-1, "y", NULL, -1, 0, .features = "#5"}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: feature column index 5 is out of range: the file has 2 columns");
    rc = load_csv("1,2\n3,4\n", (csv_opts){0, NULL, NULL, 1, 0, .features = "a"}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "feature column 'a' is given by name but the file has no header row");
    return 0;
}

TEST(data_csv_time_series_windows)
{
    nn_dataset d;
    nn_err e;
    /* rows t = 0..9: x = t, y = 10 t */
    char text[512] = "date,x,y\n";
    for (int t = 0; t < 10; t++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "d%d,%d,%d\n", t, t, 10 * t);
    int rc = load_csv(text, (csv_opts){-1, "y", NULL, -1, 0, 3, 1, 1, "x,y"}, &REG, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    /* windows start at 0..6 (the target 1 row after the window: rows 3..9) */
    CHECK(d.n == 7 && d.dim == 6 && d.seq_f == 2 && d.tdim == 1, "n %zu dim %zu seq_f %d", d.n, d.dim, d.seq_f);
    for (size_t k = 0; k < d.n; k++) {
        for (int s = 0; s < 3; s++) {
            CHECK(d.x[k * 6 + (size_t)s * 2] == (float)(k + (size_t)s), "x of window %zu step %d", k, s);
            CHECK(d.x[k * 6 + (size_t)s * 2 + 1] == (float)(10 * (k + (size_t)s)), "y feature of window %zu", k);
        }
        CHECK(d.t[k] == (float)(10 * (k + 3)), "target of window %zu is %g", k, d.t[k]);
    }
    nn_dataset_free(&d);
    /* stride 2, horizon 2, limit 2: windows at rows 0 and 2, targets rows 3+1 and 5+1 */
    rc = load_csv(text, (csv_opts){-1, "y", NULL, -1, 2, 3, 2, 2, "x"}, &REG, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.dim == 3 && d.seq_f == 1, "rc %d n %zu: %s", rc, d.n, e.msg);
    CHECK(d.x[3] == 2 && d.t[0] == 40 && d.t[1] == 60, "stride/horizon: x %g t %g %g", d.x[3], d.t[0], d.t[1]);
    nn_dataset_free(&d);
    /* horizon 0 (predict the window's last row), default features: every column (date is not a number) */
    rc = load_csv("x,y\n1,2\n3,4\n5,6\n", (csv_opts){-1, "y", NULL, -1, 0, 2, 0, 1, NULL}, &REG, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.dim == 4 && d.t[0] == 4 && d.t[1] == 6 && d.x[3] == 4, "horizon 0: rc %d %s",
          rc, e.msg);
    nn_dataset_free(&d);
    /* forecasting (labels optional): every window, the last one included; no targets */
    nn_label_opts fo = REG;
    fo.labels_optional = 1;
    rc = load_csv(text, (csv_opts){-1, "y", NULL, -1, 0, 3, 1, 1, "x,y"}, &fo, &d, &e);
    CHECK(rc == 0 && d.n == 8 && !d.t && d.x[7 * 6 + 4] == 9, "forecast: rc %d n %zu: %s", rc, d.n, e.msg);
    nn_dataset_free(&d);
    rc = load_csv("x,y\n1,2\n3,4\n", (csv_opts){-1, "y", NULL, -1, 0, 2, 1, 1, NULL}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: 2 data rows, too few for one window of 2 rows and a target 1 row later");
    rc = load_csv(text, (csv_opts){-1, "y", NULL, -1, 0, 3, 1, 1, NULL}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "data.train: time-series windows predict numbers (regression)");
    rc = load_csv(text, (csv_opts){-1, "y", NULL, -1, 0, 3, 1, 1, NULL}, &REG, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:2:1: column 'date': 'd0' is not a number");
    return 0;
}

TEST(data_csv_quotes_crlf_bom)
{
    nn_dataset d;
    nn_err e;
    const char *text = "\xEF\xBB\xBF\"f,1\" , \"f\"\"2\",  label \r\n"
                       " \"1.5\" , 2 ,\"a,b\"\r\n"
                       "\r\n   \r\n"
                       "3,\t4\t,\"x\"\"y\"\r\n"
                       "5,6,\"multi\nline\"";
    int rc = load_csv(text, (csv_opts){-1, "label", NULL, -1, 0}, &CLS, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 3 && d.c == 2, "n=%zu c=%d", d.n, d.c);
    CHECK(d.x[0] == 1.5f && d.x[1] == 2 && d.x[2] == 3 && d.x[3] == 4 && d.x[5] == 6, "x");
    CHECK(d.nclasses == 3, "nclasses %d", d.nclasses);
    CHECK(!strcmp(d.class_names[0], "a,b") && !strcmp(d.class_names[1], "multi\nline") &&
              !strcmp(d.class_names[2], "x\"y"),
          "names '%s' '%s' '%s'", d.class_names[0], d.class_names[1], d.class_names[2]);
    CHECK(d.y[0] == 0 && d.y[1] == 2 && d.y[2] == 1, "y");
    nn_dataset_free(&d);
    /* quoted header names are matched unquoted; errors after a multi-line field name its line */
    rc = load_csv("\"a\"\"b\",c\n\"x\ny\",1\n2,3\n", (csv_opts){1, "a\"b", NULL, -1, 0}, &CLS, &d,
                  &e);
    CHECK(rc == 0 && d.n == 2 && !strcmp(d.class_names[1], "x\ny"), "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    rc = load_csv("a,b\n\"x\ny\",1\n2,z\n", (csv_opts){1, "a", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:4:2: column 'b': 'z' is not a number");
    return 0;
}

TEST(data_csv_header_detection)
{
    nn_dataset d;
    nn_err e;
    /* string labels in both rows: no header */
    int rc = load_csv("5.1,3.5,setosa\n4.9,3.0,versicolor\n", (csv_opts){-1, NULL, NULL, 2, 0},
                      &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 2, "rc %d n %zu: %s", rc, d.n, e.msg);
    nn_dataset_free(&d);
    /* names over numbers: header */
    rc = load_csv("x,y,species\n5.1,3.5,setosa\n", (csv_opts){-1, NULL, NULL, 2, 0}, &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 1 && d.x[0] == 5.1f, "rc %d n %zu: %s", rc, d.n, e.msg);
    nn_dataset_free(&d);
    /* numeric-looking header found by the label name */
    rc = load_csv("0,1,label\n5,6,cat\n7,8,dog\n", (csv_opts){-1, "label", NULL, -1, 0}, &CLS, &d,
                  &e);
    CHECK(rc == 0 && d.n == 2 && d.x[0] == 5, "rc %d n %zu: %s", rc, d.n, e.msg);
    nn_dataset_free(&d);
    /* all numeric: no header; header 0 forces data; leading blank lines */
    rc = load_csv("\n\n1,2\n3,4\n", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.c == 2 && !d.y && d.x[0] == 1, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    rc = load_csv("a,b\n3,4\n", (csv_opts){0, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:1:1: 'a' is not a number");
    /* header 1 forces a header even over numbers */
    rc = load_csv("1,2\n3,4\n", (csv_opts){1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 1 && d.x[0] == 3, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_csv_limit_and_no_labels)
{
    nn_dataset d;
    nn_err e;
    int rc = load_csv("a,l\n1,x\n2,y\n3,z\n4,w\n", (csv_opts){-1, "l", NULL, -1, 2}, &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.nclasses == 2 && d.x[1] == 2, "rc %d n %zu: %s", rc, d.n, e.msg);
    nn_dataset_free(&d);
    /* the limit stops before a bad row */
    rc = load_csv("1,2\n3,4\n5,oops\n", (csv_opts){-1, NULL, NULL, -1, 2}, &CLS, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.c == 2 && !d.y && !d.t && d.nclasses == 0, "rc %d: %s", rc,
          e.msg);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_csv_labels_optional)
{
    nn_label_opts lo = CLS;
    lo.labels_optional = 1;
    nn_dataset d;
    nn_err e;
    /* header without the label column: features only */
    int rc = load_csv("a,b\n1,2\n3,4\n", (csv_opts){-1, "species", NULL, -1, 0}, &lo, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.c == 2 && !d.y && !d.t, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    /* label present: loaded */
    rc = load_csv("a,b,species\n1,2,x\n3,4,y\n", (csv_opts){-1, "species", NULL, -1, 0}, &lo, &d,
                  &e);
    CHECK(rc == 0 && d.c == 2 && d.y && d.y[1] == 1, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    /* headerless, label index just past the last column: features only */
    rc = load_csv("1,2\n3,4\n", (csv_opts){-1, NULL, NULL, 2, 0}, &lo, &d, &e);
    CHECK(rc == 0 && d.c == 2 && !d.y, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    /* regression, neither target present */
    nn_label_opts rlo = REG;
    rlo.labels_optional = 1;
    rc = load_csv("a,b\n1,2\n", (csv_opts){1, "y1", "y2", -1, 0}, &rlo, &d, &e);
    CHECK(rc == 0 && d.c == 2 && !d.t && d.tdim == 0, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    /* one of two targets missing is still an error */
    rc = load_csv("a,y1\n1,2\n", (csv_opts){1, "y1", "y2", -1, 0}, &rlo, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "label column 'y2' not found");
    return 0;
}

TEST(data_csv_numbers_match_strtod)
{
    const char *ok[] = {"0",    "-0.5",  "1e-5",   "3.14159265358979",  "123456789012345678901234",
                        "0.1",  "+2",    "1E3",    ".5",                "5.",
                        "1e-45", "3.4e38", "0.000000000000000000000000001234", "9007199254740993",
                        "1.00000005960464477539062500001", "-7e-3", "00012", "2.5e+2"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "%s\n", ok[i]);
        nn_dataset d;
        nn_err e;
        int rc = load_csv(text, (csv_opts){0, NULL, NULL, -1, 0}, &CLS, &d, &e);
        CHECK(rc == 0, "'%s': rc %d: %s", ok[i], rc, e.msg);
        float want = (float)strtod(ok[i], NULL);
        CHECK(d.x[0] == want, "'%s' -> %.9g, strtod %.9g", ok[i], d.x[0], want);
        nn_dataset_free(&d);
    }
    const char *bad[] = {"0x10", "1e", "e5", "--1", "1.2.3", "inf", "nan", "-", ".", "1 2",
                         "1e5x", "Infinity"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128], frag[64];
        snprintf(text, sizeof text, "%s\n", bad[i]);
        snprintf(frag, sizeof frag, "t.csv:1:1: '%s' is not a number", bad[i]);
        nn_dataset d;
        nn_err e;
        int rc = load_csv(text, (csv_opts){0, NULL, NULL, -1, 0}, &CLS, &d, &e);
        EXPECT_ERR(rc, e, NN_EDATA, frag);
    }
    nn_dataset d;
    nn_err e;
    int rc = load_csv("1e39\n", (csv_opts){0, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:1:1: '1e39' is out of range for a float");
    rc = load_csv("a,b\n1,2\n3, \n", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3:2: column 'b': empty field, expected a number");
    return 0;
}

TEST(data_csv_errors)
{
    nn_dataset d;
    nn_err e;
    nn_source s;
    memset(&s, 0, sizeof s);
    s.path = nn_strdup("/nonexistent/iris.csv");
    s.header = -1;
    int rc = nn_csv_load(&s, &CLS, &d, &e);
    nn_source_free(&s);
    EXPECT_ERR(rc, e, NN_ENOINPUT, "/nonexistent/iris.csv: cannot open");

    rc = load_csv("sepal_length,petal_width,species\n1,2,a\n3,abc,b\n",
                  (csv_opts){-1, "species", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3:2: column 'petal_width': 'abc' is not a number");

    rc = load_csv("a,b,c\n1,2,x\n3,4\n", (csv_opts){-1, "c", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3: row has 2 columns, expected 3 (as in the header, line 1)");
    rc = load_csv("1,2,x\n3,4,y,5\n", (csv_opts){-1, NULL, NULL, 2, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:2: row has 4 columns, expected 3 (as in line 1)");

    rc = load_csv("sepal,petal,species\n1,2,x\n", (csv_opts){-1, "specis", NULL, -1, 0}, &CLS, &d,
                  &e);
    EXPECT_ERR(rc, e, NN_EDATA, "label column 'specis' not found in the header");
    CHECK(strstr(e.msg, "sepal, petal, species") && strstr(e.msg, "did you mean 'species'?"),
          "msg: %s", e.msg);
    rc = load_csv("1,2,x\n3,4,y\n", (csv_opts){-1, "species", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "no header row");
    rc = load_csv("1,2,x\n", (csv_opts){-1, NULL, NULL, 3, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "label column index 3 is out of range: the file has 3 columns");

    rc = load_csv("", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: empty file");
    rc = load_csv("\xEF\xBB\xBF\r\n  \n\n", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: empty file");
    rc = load_csv("a,b,label\n", (csv_opts){-1, "label", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv: no data rows (only a header)");
    rc = load_csv("label\ncat\n", (csv_opts){-1, "label", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "no feature columns");

    char *names[] = {"cat", "dog", "bird"};
    nn_label_opts lo = {NN_TASK_CLASSIFY, names, 3, 0, 0};
    rc = load_csv("f,l\n1,cat\n2,dgo\n", (csv_opts){-1, "l", NULL, -1, 0}, &lo, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:3:2: unknown class 'dgo' (known classes: cat, dog, bird)");
    CHECK(strstr(e.msg, "did you mean 'dog'?"), "msg: %s", e.msg);
    rc = load_csv("f,l\n1,\n", (csv_opts){-1, "l", NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:2:2: empty label");

    rc = load_csv("a,b\n1,\"2\n3,4\n", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:2:2: unterminated quoted field");
    rc = load_csv("a,b\n1,\"2\"x\n", (csv_opts){-1, NULL, NULL, -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "t.csv:2:2: unexpected 'x' after the closing quote");
    rc = load_csv("a,b\n1,2\n", (csv_opts){-1, "a", "b", -1, 0}, &CLS, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "classification takes exactly one label column");
    CHECK(d.x == NULL && d.n == 0, "out zeroed on error");
    return 0;
}

/* ------------------------------------------------------------ IDX */

/* Builds an IDX file in memory: header + payload (+ extra trailing bytes). */
static unsigned char *idx_build(int type, int ndim, const uint32_t *dims, const void *payload,
                                size_t plen, size_t extra, size_t *len)
{
    size_t hl = 4 + 4 * (size_t)ndim;
    unsigned char *b = calloc(1, hl + plen + extra + 1);
    if (!b)
        return NULL;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (plen)
        memcpy(b + hl, payload, plen);
    memset(b + hl + plen, 0x5a, extra);
    *len = hl + plen + extra;
    return b;
}

static int idx_write(const char *name, int gz, int type, int ndim, const uint32_t *dims,
                     const void *payload, size_t plen, size_t extra, char *path)
{
    size_t len;
    unsigned char *b = idx_build(type, ndim, dims, payload, plen, extra, &len);
    if (!b)
        return -1;
    tpath(name, path);
    int rc = gz ? write_gz(path, b, len) : tu_write_file(path, b, len);
    free(b);
    return rc;
}

static int idx_load(const char *images, const char *labels, long limit, nn_dataset *d, nn_err *e)
{
    nn_source s;
    memset(&s, 0, sizeof s);
    s.images = nn_strdup(images);
    s.labels = nn_strdup(labels);
    s.limit = limit;
    e->msg[0] = 0;
    int rc = nn_idx_load(&s, d, e);
    nn_source_free(&s);
    return rc;
}

TEST(data_idx_roundtrip_raw_and_gzip)
{
    unsigned char px[3 * 2 * 2] = {0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25};
    unsigned char lab[3] = {4, 0, 2};
    uint32_t di[3] = {3, 2, 2}, dl[1] = {3};
    for (int gz = 0; gz < 2; gz++) {
        char ip[1024], lp[1024];
        CHECK(idx_write(gz ? "i.gz" : "i.raw", gz, 0x08, 3, di, px, sizeof px, 0, ip) == 0, "write");
        CHECK(idx_write(gz ? "l.gz" : "l.raw", gz, 0x08, 1, dl, lab, sizeof lab, 0, lp) == 0, "write");
        nn_dataset d;
        nn_err e;
        int rc = idx_load(ip, lp, 0, &d, &e);
        CHECK(rc == 0, "gz=%d rc %d: %s", gz, rc, e.msg);
        CHECK(d.n == 3 && d.c == 1 && d.h == 2 && d.w == 2 && d.dim == 4, "shape");
        for (int i = 0; i < 12; i++)
            CHECK(d.x[i] == (float)px[i] / 255.0f, "x[%d]=%g", i, d.x[i]);
        CHECK(d.task == NN_TASK_CLASSIFY && d.y[0] == 4 && d.y[1] == 0 && d.y[2] == 2, "y");
        CHECK(d.nclasses == 5 && !d.class_names, "nclasses %d", d.nclasses);
        nn_dataset_free(&d);
        /* images only */
        rc = idx_load(ip, NULL, 0, &d, &e);
        CHECK(rc == 0 && d.n == 3 && !d.y, "rc %d: %s", rc, e.msg);
        nn_dataset_free(&d);
    }
    return 0;
}

static void put_be_float(unsigned char *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    b[0] = (unsigned char)(u >> 24);
    b[1] = (unsigned char)(u >> 16);
    b[2] = (unsigned char)(u >> 8);
    b[3] = (unsigned char)u;
}

TEST(data_idx_float32_and_ndim2)
{
    float v[6] = {-1.5f, 0, 2.25f, 1e30f, -3, 0.125f};
    unsigned char b[24];
    for (int i = 0; i < 6; i++)
        put_be_float(b + 4 * i, v[i]);
    uint32_t dims[2] = {2, 3};
    char ip[1024];
    CHECK(idx_write("f.idx", 1, 0x0D, 2, dims, b, sizeof b, 0, ip) == 0, "write");
    nn_dataset d;
    nn_err e;
    int rc = idx_load(ip, NULL, 0, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 2 && d.c == 1 && d.h == 1 && d.w == 3 && d.dim == 3, "shape");
    for (int i = 0; i < 6; i++)
        CHECK(d.x[i] == v[i], "x[%d]", i);
    nn_dataset_free(&d);
    put_be_float(b + 16, NAN);
    CHECK(idx_write("f.idx", 1, 0x0D, 2, dims, b, sizeof b, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "sample 1, value 1 is not finite");
    return 0;
}

TEST(data_idx_ndim4_channels_first)
{
    /* 2 samples of h=2, w=3, c=2; value = 100*s + 10*ch + pixel */
    unsigned char px[2 * 2 * 3 * 2];
    for (int s = 0; s < 2; s++)
        for (int p = 0; p < 6; p++)
            for (int ch = 0; ch < 2; ch++)
                px[s * 12 + p * 2 + ch] = (unsigned char)(100 * s + 10 * ch + p);
    uint32_t dims[4] = {2, 2, 3, 2};
    char ip[1024];
    CHECK(idx_write("c.idx", 0, 0x08, 4, dims, px, sizeof px, 0, ip) == 0, "write");
    nn_dataset d;
    nn_err e;
    int rc = idx_load(ip, NULL, 0, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.c == 2 && d.h == 2 && d.w == 3 && d.dim == 12, "shape c%d h%d w%d", d.c, d.h, d.w);
    for (int s = 0; s < 2; s++)
        for (int ch = 0; ch < 2; ch++)
            for (int p = 0; p < 6; p++)
                CHECK(d.x[s * 12 + ch * 6 + p] == (float)(100 * s + 10 * ch + p) / 255.0f,
                      "s%d ch%d p%d", s, ch, p);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_idx_errors)
{
    unsigned char px[12] = {0};
    uint32_t di[3] = {3, 2, 2}, dl[1] = {4};
    char ip[1024], lp[1024];
    nn_dataset d;
    nn_err e;
    int rc = idx_load("/nonexistent/x-idx3-ubyte.gz", NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_ENOINPUT, "/nonexistent/x-idx3-ubyte.gz: cannot open");
    for (int gz = 0; gz < 2; gz++) {
        /* truncated: 5 of 12 bytes */
        CHECK(idx_write("t.idx", gz, 0x08, 3, di, px, 5, 0, ip) == 0, "write");
        rc = idx_load(ip, NULL, 0, &d, &e);
        EXPECT_ERR(rc, e, NN_EDATA, "truncated: expected 12 bytes of pixel data, got 5");
        /* trailing bytes */
        CHECK(idx_write("t.idx", gz, 0x08, 3, di, px, 12, 3, ip) == 0, "write");
        rc = idx_load(ip, NULL, 0, &d, &e);
        EXPECT_ERR(rc, e, NN_EDATA, "3 trailing bytes after the 3 samples");
        /* ... which a limit never reads */
        rc = idx_load(ip, NULL, 2, &d, &e);
        CHECK(rc == 0 && d.n == 2, "limit: rc %d: %s", rc, e.msg);
        nn_dataset_free(&d);
    }
    /* bad magic, bad type, bad ndim */
    CHECK(tu_write_file(tpath("m.idx", ip), "\x1f\x00\x08\x03zzzz", 8) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "bad magic 1f 00 08 03: not an IDX file");
    CHECK(idx_write("m.idx", 0, 0x0C, 3, di, px, 12, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "unsupported IDX type 0x0C (int32)");
    CHECK(idx_write("m.idx", 0, 0x08, 1, di, px, 3, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "images file has 1 dimensions, expected 2 to 4");
    CHECK(tu_write_file(ip, "\0\0", 2) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "too short for an IDX header");
    /* label count mismatch names both files */
    CHECK(idx_write("i.idx", 0, 0x08, 3, di, px, 12, 0, ip) == 0, "write");
    CHECK(idx_write("l.idx", 1, 0x08, 1, dl, px, 4, 0, lp) == 0, "write");
    rc = idx_load(ip, lp, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "l.idx has 4 labels but ");
    CHECK(strstr(e.msg, "i.idx has 3 images"), "msg: %s", e.msg);
    uint32_t dl2[2] = {3, 1};
    CHECK(idx_write("l.idx", 1, 0x08, 2, dl2, px, 3, 0, lp) == 0, "write");
    rc = idx_load(ip, lp, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "labels file has 2 dimensions, expected 1");
    /* corrupt gzip stream */
    CHECK(idx_write("i.gz", 1, 0x08, 3, di, px, 12, 0, ip) == 0, "write");
    {
        unsigned char *buf;
        size_t len;
        CHECK(nn_read_file(ip, 1 << 20, &buf, &len, &e) == 0, "read");
        for (size_t i = 10; i < len - 8; i++)
            buf[i] ^= 0xA5;
        CHECK(tu_write_file(ip, buf, len) == 0, "write");
        free(buf);
    }
    rc = idx_load(ip, NULL, 0, &d, &e);
    CHECK(rc == NN_EDATA, "corrupt gzip: rc %d: %s", rc, e.msg);
    CHECK(d.x == NULL && d.n == 0, "out zeroed on error");
    return 0;
}

TEST(data_idx_hostile_header)
{
    char ip[1024];
    nn_dataset d;
    nn_err e;
    /* ~4 GB of pixels declared (within limits), 10 bytes present */
    uint32_t dims[3] = {1000000, 64, 64};
    unsigned char px[10] = {0};
    for (int gz = 0; gz < 2; gz++) {
        CHECK(idx_write("h.idx", gz, 0x08, 3, dims, px, sizeof px, 0, ip) == 0, "write");
        clock_t t0 = clock();
        int rc = idx_load(ip, NULL, 0, &d, &e);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        EXPECT_ERR(rc, e, NN_EDATA, "truncated: expected 4096000000 bytes of pixel data, got 10");
        CHECK(secs < 1.0, "took %.2f s", secs);
    }
    /* beyond the limits */
    uint32_t many[3] = {0xFFFFFFFFu, 28, 28};
    CHECK(idx_write("h.idx", 1, 0x08, 3, many, px, 10, 0, ip) == 0, "write");
    int rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "header declares 4294967295 samples, more than the limit");
    uint32_t wide[4] = {1, 65536, 65536, 65536};
    CHECK(idx_write("h.idx", 1, 0x08, 4, wide, px, 10, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "samples of more than 16777216 values");
    uint32_t big[3] = {100000000, 64, 64}; /* 1.6 TB of floats */
    CHECK(idx_write("h.idx", 1, 0x08, 3, big, px, 10, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "exceed the 17179869184-byte limit");
    uint32_t zero[3] = {3, 0, 2};
    CHECK(idx_write("h.idx", 0, 0x08, 3, zero, px, 0, 0, ip) == 0, "write");
    rc = idx_load(ip, NULL, 0, &d, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "dimension 1 is 0");
    return 0;
}

TEST(data_idx_limit)
{
    unsigned char px[5 * 4], lab[5] = {1, 2, 3, 4, 9};
    for (int i = 0; i < 20; i++)
        px[i] = (unsigned char)(i * 10);
    uint32_t di[2] = {5, 4}, dl[1] = {5};
    char ip[1024], lp[1024];
    CHECK(idx_write("i.gz", 1, 0x08, 2, di, px, sizeof px, 0, ip) == 0, "write");
    CHECK(idx_write("l.gz", 1, 0x08, 1, dl, lab, sizeof lab, 0, lp) == 0, "write");
    nn_dataset d;
    nn_err e;
    int rc = idx_load(ip, lp, 2, &d, &e);
    CHECK(rc == 0 && d.n == 2 && d.dim == 4, "rc %d: %s", rc, e.msg);
    CHECK(d.x[7] == 70.0f / 255.0f && d.y[1] == 2 && d.nclasses == 3, "values");
    nn_dataset_free(&d);
    rc = idx_load(ip, lp, 99, &d, &e);
    CHECK(rc == 0 && d.n == 5 && d.nclasses == 10, "rc %d: %s", rc, e.msg);
    nn_dataset_free(&d);
    return 0;
}

TEST(data_idx_fashion_mnist)
{
    const char *ip = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *lp = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0)
        SKIP("Fashion-MNIST is not installed (%s; package dataset-fashion-mnist)", ip);
    nn_dataset d;
    nn_err e;
    int rc = idx_load(ip, lp, 0, &d, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(d.n == 10000 && d.c == 1 && d.h == 28 && d.w == 28 && d.nclasses == 10, "shape");
    CHECK(d.y[0] == 9 && d.y[1] == 2, "first labels %d %d", d.y[0], d.y[1]);
    float mx = 0;
    for (size_t i = 0; i < d.n * d.dim; i++)
        mx = d.x[i] > mx ? d.x[i] : mx;
    CHECK(mx == 1.0f, "max pixel %g", mx);
    nn_dataset_free(&d);
    return 0;
}

/* ------------------------------------------------------------ images */

static int png_file(const char *name, int w, int h, int comp, const unsigned char *px, char *path)
{
    tpath(name, path);
    return stbi_write_png(path, w, h, comp, px, w * comp) ? 0 : -1;
}

TEST(data_image_gray_to_rgb)
{
    unsigned char g[4 * 3];
    for (int i = 0; i < 12; i++)
        g[i] = (unsigned char)(i * 20);
    char p[1024];
    CHECK(png_file("g.png", 4, 3, 1, g, p) == 0, "write png");
    float out[3 * 3 * 4];
    nn_err e;
    int rc = nn_image_load(p, 3, 3, 4, out, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 12; i++)
            CHECK(out[ch * 12 + i] == (float)g[i] / 255.0f, "ch%d px%d = %g", ch, i,
                  out[ch * 12 + i]);
    /* same from memory, one channel */
    unsigned char *buf;
    size_t len;
    CHECK(nn_read_file(p, 1 << 20, &buf, &len, &e) == 0, "read");
    rc = nn_image_decode(buf, len, "g.png", 1, 3, 4, out, &e);
    free(buf);
    CHECK(rc == 0 && out[5] == 100.0f / 255.0f, "rc %d: %s", rc, e.msg);
    return 0;
}

TEST(data_image_rgb_to_gray_and_rgba)
{
    /* 2x1: pure red, pure white */
    unsigned char px[6] = {255, 0, 0, 255, 255, 255};
    char p[1024];
    CHECK(png_file("rgb.png", 2, 1, 3, px, p) == 0, "write png");
    float out[8];
    nn_err e;
    int rc = nn_image_load(p, 1, 1, 2, out, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    CHECK(out[0] > 0.25f && out[0] < 0.35f && out[1] == 1.0f, "luma %g %g", out[0], out[1]);
    rc = nn_image_load(p, 4, 1, 2, out, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    /* CHW: R plane, G plane, B plane, A plane */
    CHECK(out[0] == 1 && out[1] == 1 && out[2] == 0 && out[3] == 1 && out[4] == 0 &&
              out[5] == 1 && out[6] == 1 && out[7] == 1,
          "rgba planes");
    return 0;
}

TEST(data_image_resize)
{
    /* constant colour survives any resize; a left-to-right ramp stays increasing */
    unsigned char px[16 * 8 * 3];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++) {
            px[(y * 16 + x) * 3 + 0] = 200;
            px[(y * 16 + x) * 3 + 1] = (unsigned char)(x * 16);
            px[(y * 16 + x) * 3 + 2] = 7;
        }
    char p[1024];
    CHECK(png_file("big.png", 16, 8, 3, px, p) == 0, "write png");
    float out[3 * 4 * 5];
    nn_err e;
    int rc = nn_image_load(p, 3, 4, 5, out, &e);
    CHECK(rc == 0, "rc %d: %s", rc, e.msg);
    for (int i = 0; i < 20; i++) {
        CHECK(out[i] == 200.0f / 255.0f && out[40 + i] == 7.0f / 255.0f, "constant planes at %d", i);
        if (i % 5)
            CHECK(out[20 + i] > out[20 + i - 1], "ramp at %d", i);
    }
    float up[3 * 20 * 40];
    rc = nn_image_load(p, 3, 20, 40, up, &e);
    CHECK(rc == 0 && up[0] == 200.0f / 255.0f && up[20 * 40 + 39] > up[20 * 40], "upsample: %s",
          e.msg);
    return 0;
}

TEST(data_image_errors)
{
    float out[16];
    nn_err e;
    unsigned char junk[64];
    for (int i = 0; i < 64; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    int rc = nn_image_decode(junk, sizeof junk, "photo.jpg", 1, 4, 4, out, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "photo.jpg: cannot decode image: ");
    rc = nn_image_decode(junk, 0, "photo.jpg", 1, 4, 4, out, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "photo.jpg: cannot decode image: empty file");
    rc = nn_image_load("/nonexistent/photo.jpg", 1, 4, 4, out, &e);
    EXPECT_ERR(rc, e, NN_ENOINPUT, "/nonexistent/photo.jpg: cannot open");
    /* a header declaring 20000 x 20000 pixels is refused before decoding */
    const char *pgm = "P5\n20000 20000\n255\n\x01\x02\x03";
    rc = nn_image_decode((const unsigned char *)pgm, strlen(pgm), "huge.pgm", 1, 4, 4, out, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "huge.pgm: image is 20000x20000 pixels; the limit is");
    /* a truncated PNG */
    unsigned char g[64] = {0};
    char p[1024];
    CHECK(png_file("t.png", 8, 8, 1, g, p) == 0, "write png");
    unsigned char *buf;
    size_t len;
    CHECK(nn_read_file(p, 1 << 20, &buf, &len, &e) == 0, "read");
    rc = nn_image_decode(buf, len / 2, "t.png", 1, 4, 4, out, &e);
    free(buf);
    EXPECT_ERR(rc, e, NN_EDATA, "t.png: cannot decode image: ");
    rc = nn_image_decode(junk, sizeof junk, "x.png", 5, 4, 4, out, &e);
    EXPECT_ERR(rc, e, NN_EDATA, "channels must be 1..4");
    return 0;
}

TEST(data_is_image_path)
{
    CHECK(nn_is_image_path("a/b.PNG") && nn_is_image_path("x.jpeg") && nn_is_image_path("x.Jpg") &&
              nn_is_image_path("d.dir/x.pgm") && nn_is_image_path("h.hdr"),
          "images");
    CHECK(!nn_is_image_path("x.csv") && !nn_is_image_path("png") && !nn_is_image_path("x.png/y") &&
              !nn_is_image_path(".png") && !nn_is_image_path("x.") && !nn_is_image_path(NULL) &&
              !nn_is_image_path("x.pngx"),
          "non-images");
    return 0;
}

TEST(data_free_functions)
{
    nn_dataset d;
    memset(&d, 0, sizeof d);
    nn_dataset_free(&d);
    nn_dataset_free(NULL);
    d.x = malloc(4);
    d.nclasses = 2;
    d.class_names = calloc(2, sizeof(char *));
    d.class_names[0] = nn_strdup("a");
    d.class_names[1] = nn_strdup("b");
    nn_dataset_free(&d);
    CHECK(!d.x && !d.class_names && d.nclasses == 0, "dataset zeroed");
    nn_source s;
    memset(&s, 0, sizeof s);
    s.path = nn_strdup("p");
    s.images = nn_strdup("i");
    s.labels = nn_strdup("l");
    s.label_name[0] = nn_strdup("n0");
    s.label_name[3] = nn_strdup("n3");
    s.nlabels = 1;
    s.json_path = "data.train";
    nn_source_free(&s);
    CHECK(!s.path && !s.label_name[3] && !s.json_path && s.nlabels == 0, "source zeroed");
    nn_source_free(NULL);
    return 0;
}

/* nn_find_duplicate: the earliest second occurrence and its first one, as a
 * pairwise scan would report them, in O(n log n). */
TEST(util_find_duplicate)
{
    const char *a[] = {"x", "b", "c", "b", "x", "c"};
    size_t f = 99, s = 99;
    CHECK(nn_find_duplicate(a, 6, &f, &s) == 1 && f == 1 && s == 3, "got %d %zu %zu", nn_find_duplicate(a, 6, &f, &s), f, s);
    const char *b[] = {"q", "r", "s"};
    CHECK(nn_find_duplicate(b, 3, &f, &s) == 0, "unique names");
    CHECK(nn_find_duplicate(b, 0, &f, &s) == 0 && nn_find_duplicate(b, 1, &f, &s) == 0, "0 and 1 names");
    const char *c[] = {"m", "z", "m", "m"};
    CHECK(nn_find_duplicate(c, 4, &f, &s) == 1 && f == 0 && s == 2, "three of a kind: %zu %zu", f, s);
    return 0;
}
