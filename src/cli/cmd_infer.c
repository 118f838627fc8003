/* nnrun infer MODEL.bin INPUT... - images (files or folders) and CSV files. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model.h"
#include "../util.h"
#include "cli.h"

typedef struct ictx {
    nn_model *m;
    int top, json;
    float *probs;
} ictx;

/* Prints one prediction: `label` is the input's name, `row` >= 1 for CSV rows. */
static void print_one(ictx *c, const char *label, long row, const float *p)
{
    nn_model *m = c->m;
    int k = (int)m->net.out_dim;
    if (c->json) {
        printf("{\"input\":");
        nn_json_str(stdout, label);
        if (row > 0)
            printf(",\"row\":%ld", row);
    } else {
        if (row > 0)
            printf("%s:%ld", label, row);
        else
            printf("%s", label);
    }
    if (m->task == NN_TASK_REGRESS) {
        if (c->json) {
            printf(",\"values\":[");
            for (int j = 0; j < k; j++)
                printf("%s%.6g", j ? "," : "", p[j]);
            printf("]}\n");
        } else {
            for (int j = 0; j < k; j++)
                printf("  %.6g", p[j]);
            printf("\n");
        }
        return;
    }
    /* class probabilities: k outputs (softmax) or one (sigmoid: p of class 1) */
    int nc = m->nclasses;
    float pr[NN_MAX_CLASSES > 1024 ? 1024 : NN_MAX_CLASSES];
    int idx[1024];
    float *pp = nc <= 1024 ? pr : malloc(sizeof(float) * (size_t)nc);
    int *ii = nc <= 1024 ? idx : malloc(sizeof(int) * (size_t)nc);
    if (!pp || !ii) {
        printf("\n");
        return;
    }
    for (int j = 0; j < nc; j++) {
        pp[j] = k == 1 ? (j == 1 ? p[0] : 1.0f - p[0]) : p[j];
        ii[j] = j;
    }
    int top = c->top < nc ? c->top : nc;
    for (int a = 0; a < top; a++) /* partial selection sort: top is small */
        for (int b = a + 1; b < nc; b++)
            if (pp[ii[b]] > pp[ii[a]] || (pp[ii[b]] == pp[ii[a]] && ii[b] < ii[a])) {
                int t = ii[a];
                ii[a] = ii[b];
                ii[b] = t;
            }
    if (c->json) {
        printf(",\"predictions\":[");
        for (int a = 0; a < top; a++) {
            printf("%s{\"label\":", a ? "," : "");
            nn_json_str(stdout, m->classes[ii[a]]);
            printf(",\"index\":%d,\"probability\":%.6g}", ii[a], pp[ii[a]]);
        }
        printf("]}\n");
    } else {
        for (int a = 0; a < top; a++)
            printf("  %s %.4f", m->classes[ii[a]], pp[ii[a]]);
        printf("\n");
    }
    if (pp != pr)
        free(pp);
    if (ii != idx)
        free(ii);
}

/* Runs the rows of ds (already loaded) in batches and prints each. */
static int run_dataset(ictx *c, nn_dataset *ds, char **names, const char *csvname, nn_err *e)
{
    nn_devdata dd;
    int r = nn_devdata_upload(&c->m->dev, ds, NULL, 0, &dd, e);
    int B = c->m->net.max_batch, k = (int)c->m->net.out_dim;
    for (size_t s = 0; !r && s < ds->n; s += (size_t)B) {
        int n = (int)(ds->n - s < (size_t)B ? ds->n - s : (size_t)B);
        r = nn_model_predict(c->m, &dd, s, n, c->probs, e);
        for (int i = 0; !r && i < n; i++)
            print_one(c, names ? names[s + (size_t)i] : csvname, names ? 0 : (long)(s + (size_t)i + 1),
                      c->probs + (size_t)i * (size_t)k);
    }
    fflush(stdout);
    nn_devdata_free(&dd);
    return r;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Expands folders into their image files (sorted); other paths pass through. */
static int expand(char **in, int nin, char ***out, int *nout, nn_err *e)
{
    int cap = nin + 16, n = 0;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    if (!v)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (int i = 0; i < nin; i++) {
        struct stat st;
        if (stat(in[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(in[i]);
            if (!d) {
                for (int j = 0; j < n; j++)
                    free(v[j]);
                free(v);
                return nn_fail(e, NN_ENOINPUT, "%s: cannot open the folder", in[i]);
            }
            int first = n;
            struct dirent *de;
            while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !nn_is_image_path(de->d_name))
                    continue;
                if (n == cap) {
                    cap *= 2;
                    char **nv = realloc(v, sizeof(char *) * (size_t)cap);
                    if (!nv)
                        break;
                    v = nv;
                }
                size_t l = strlen(in[i]) + strlen(de->d_name) + 2;
                v[n] = malloc(l);
                if (v[n])
                    snprintf(v[n++], l, "%s/%s", in[i], de->d_name);
            }
            closedir(d);
            qsort(v + first, (size_t)(n - first), sizeof *v, cmpstr);
        } else {
            if (n == cap) {
                cap *= 2;
                char **nv = realloc(v, sizeof(char *) * (size_t)cap);
                if (!nv)
                    break;
                v = nv;
            }
            v[n++] = nn_strdup(in[i]);
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

static int is_csv(const char *p)
{
    size_t l = strlen(p);
    return (l > 4 && !strcasecmp(p + l - 4, ".csv")) || (l > 4 && !strcasecmp(p + l - 4, ".txt"));
}

int nn_cmd_infer(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"top", 1, "print the K most likely classes (default 1)"},
        {"batch-size", 1, "inputs per forward pass (default 64)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring"},
        {"json", 0, "print one JSON object per input"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char **pos = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!pos)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    int npos, r = nn_args_parse(argc, argv, opts, "infer", pos, argc, &npos, e);
    if (r) {
        free(pos);
        return r;
    }
    if (nn_arg(opts, "help")->set) {
        free(pos);
        nn_print_help(stdout, &nn_cmds[2], opts);
        return 0;
    }
    long top = 1, B = 64;
    if (npos < 2)
        r = nn_fail(e, NN_EUSAGE, "nnrun infer: expected MODEL.bin and at least one input (see 'nnrun infer --help')");
    if (!r)
        r = nn_arg_int(opts, "top", 1, NN_MAX_CLASSES, &top, e);
    if (!r)
        r = nn_arg_int(opts, "batch-size", 1, 1 << 16, &B, e);
    if (r) {
        free(pos);
        return r;
    }
    char **inputs = NULL;
    int nin = 0;
    nn_model m;
    memset(&m, 0, sizeof m);
    ictx c = {.m = &m, .top = (int)top, .json = nn_arg(opts, "json")->set};
    if ((r = expand(pos + 1, npos - 1, &inputs, &nin, e)))
        goto out;
    if (nin == 0) {
        r = nn_fail(e, NN_ENOINPUT, "nnrun infer: no image files in the given folder(s)");
        goto out;
    }
    if ((r = nn_model_load(pos[0], nn_arg(opts, "device")->value, (int)B, &m, e)))
        goto out;
    c.probs = malloc(sizeof(float) * (size_t)B * m.net.out_dim);
    if (!c.probs) {
        r = nn_fail(e, NN_ENOMEM, "out of memory");
        goto out;
    }
    const nn_shape *is = &m.net.in_shape;
    for (int i = 0; !r && i < nin;) {
        if (is_csv(inputs[i])) {
            nn_source src;
            const nn_source *tr = m.spec.has_train ? &m.spec.train_src : NULL;
            nn_dataset ds = {0};
            /* read as the training data was when that was a CSV */
            r = nn_source_like(&src, nn_format_find("csv"), inputs[i], tr, "input", e);
            if (!r)
                r = nn_model_load_source(&m, &src, 1, &ds, e);
            if (!r)
                r = run_dataset(&c, &ds, NULL, inputs[i], e);
            nn_dataset_free(&ds);
            nn_source_free(&src);
            i++;
            continue;
        }
        /* a run of images, decoded a batch at a time */
        if (is->nd != 3) {
            r = nn_fail(e, NN_EUSAGE, "%s: this model takes %zu features per sample, not images: give a CSV file",
                        inputs[i], m.net.in_dim);
            break;
        }
        nn_dataset ds = {0};
        int n = 0;
        ds.x = malloc(sizeof(float) * (size_t)B * m.net.in_dim);
        if (!ds.x) {
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            break;
        }
        while (i + n < nin && n < B && !is_csv(inputs[i + n])) {
            r = nn_image_load(inputs[i + n], is->d[0], is->d[1], is->d[2], ds.x + (size_t)n * m.net.in_dim, e);
            if (r)
                break;
            n++;
        }
        if (!r) {
            ds.n = (size_t)n;
            ds.dim = m.net.in_dim;
            ds.c = is->d[0];
            ds.h = is->d[1];
            ds.w = is->d[2];
            r = run_dataset(&c, &ds, inputs + i, NULL, e);
        }
        nn_dataset_free(&ds);
        i += n;
    }
out:
    for (int i = 0; i < nin; i++)
        free(inputs[i]);
    free(inputs);
    free(pos);
    free(c.probs);
    nn_model_free(&m);
    return r;
}
