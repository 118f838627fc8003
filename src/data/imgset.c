#include "imgset.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../dist.h"
#include "../util.h"

void nn_imgset_free(nn_imgset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->paths[i]);
    free(s->paths);
    free(s->labels);
    for (int i = 0; i < s->nclasses; i++)
        free(s->class_names[i]);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* integer labels in numeric order (equal values compare equal, "07" == "7") */
static int cmpnum(const void *a, const void *b)
{
    long x = strtol(*(char *const *)a, NULL, 10), y = strtol(*(char *const *)b, NULL, 10);
    return x < y ? -1 : x > y;
}

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static int sv_push(strvec *s, char *str)
{
    if (!str)
        return -1;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) {
            free(str);
            return -1;
        }
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = str;
    return 0;
}

static void sv_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static char *join(const char *a, const char *b)
{
    size_t l = strlen(a) + strlen(b) + 2;
    char *p = malloc(l);
    if (p)
        snprintf(p, l, "%s%s%s", a, (*a && a[strlen(a) - 1] == '/') ? "" : "/", b);
    return p;
}

static int list_dir(const char *dir, int want_dirs, strvec *out, nn_err *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return nn_fail(e, NN_ENOINPUT, "%s: cannot open the folder", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *full = join(dir, de->d_name);
        struct stat st;
        int ok = full && stat(full, &st) == 0;
        free(full);
        if (!ok)
            continue;
        if (want_dirs ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) && nn_is_image_path(de->d_name)))
            if (sv_push(out, nn_strdup(de->d_name))) {
                closedir(d);
                return nn_fail(e, NN_ENOMEM, "out of memory");
            }
    }
    closedir(d);
    if (out->n > 1) /* an empty folder leaves v NULL: qsort(NULL, 0) is undefined (UBSan) */
        qsort(out->v, out->n, sizeof *out->v, cmpstr);
    return 0;
}

/* index of `name` in the known classes, or -1 */
static int class_index(const nn_label_opts *lo, const char *name)
{
    for (int i = 0; i < lo->nclasses; i++)
        if (!strcmp(lo->class_names[i], name))
            return i;
    return -1;
}

static int set_classes(nn_imgset *out, char **names, int n, nn_err *e)
{
    out->class_names = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!out->class_names)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    out->nclasses = n;
    for (int i = 0; i < n; i++)
        if (!(out->class_names[i] = nn_strdup(names[i])))
            return nn_fail(e, NN_ENOMEM, "out of memory");
    return 0;
}

int nn_imgset_folder(const char *dir, const nn_label_opts *lo, long limit, nn_imgset *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    out->origin = dir;
    strvec classes = {0}, files = {0};
    int r = list_dir(dir, 1, &classes, e);
    if (r)
        return r;
    if (classes.n == 0) {
        sv_free(&classes);
        return nn_fail(e, NN_EDATA, "%s: no class sub-folders (expected %s/CLASS/IMAGE.png)", dir, dir);
    }
    if (classes.n > NN_MAX_CLASSES) {
        sv_free(&classes);
        return nn_fail(e, NN_EDATA, "%s: %zu class folders exceed the limit of %d", dir, classes.n, NN_MAX_CLASSES);
    }
    strvec paths = {0};
    size_t lcap = 0;
    int *labels = NULL;
    for (size_t c = 0; !r && c < classes.n; c++) {
        int label = (int)c;
        if (lo && lo->class_names) {
            label = class_index(lo, classes.v[c]);
            if (label < 0) {
                const char *sug = nn_suggest(classes.v[c], (const char *const *)lo->class_names, (size_t)lo->nclasses);
                r = nn_fail(e, NN_EDATA, "%s: folder '%s' is not one of the model's %d classes%s%s%s", dir,
                            classes.v[c], lo->nclasses, sug ? " (did you mean '" : "", sug ? sug : "",
                            sug ? "'?)" : "");
                break;
            }
        }
        char *sub = join(dir, classes.v[c]);
        if (!sub) {
            r = nn_fail(e, NN_ENOMEM, "out of memory");
            break;
        }
        r = list_dir(sub, 0, &files, e);
        for (size_t f = 0; !r && f < files.n; f++) {
            if (limit > 0 && paths.n >= (size_t)limit)
                break;
            if (paths.n >= (size_t)NN_MAX_SAMPLES) {
                r = nn_fail(e, NN_EDATA, "%s: more than %ld images", dir, (long)NN_MAX_SAMPLES);
                break;
            }
            if (paths.n == lcap) {
                lcap = lcap ? lcap * 2 : 1024;
                int *nl = realloc(labels, lcap * sizeof *nl);
                if (!nl) {
                    r = nn_fail(e, NN_ENOMEM, "out of memory");
                    break;
                }
                labels = nl;
            }
            labels[paths.n] = label;
            if (sv_push(&paths, join(sub, files.v[f])))
                r = nn_fail(e, NN_ENOMEM, "out of memory");
        }
        sv_free(&files);
        free(sub);
    }
    if (!r && paths.n == 0)
        r = nn_fail(e, NN_EDATA, "%s: no image files (PNG, JPEG, BMP, GIF, TGA, PNM ...) in its class folders", dir);
    if (!r) {
        if (lo && lo->class_names)
            r = set_classes(out, lo->class_names, lo->nclasses, e);
        else
            r = set_classes(out, classes.v, (int)classes.n, e);
    }
    sv_free(&classes);
    out->paths = paths.v;
    out->n = paths.n;
    out->labels = labels;
    if (r)
        nn_imgset_free(out);
    return r;
}

/* ------------------------------------------------------------------ list */

/* Splits one CSV line into at most 2 fields (quotes allowed). */
static int split2(char *line, char **f0, char **f1)
{
    char *fields[3] = {0};
    int nf = 0;
    char *p = line;
    while (nf < 3) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            start = w = p;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else
                    *w++ = *p++;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',')
                return -1;
        } else {
            while (*p && *p != ',')
                *w++ = *p++;
            while (w > start && (w[-1] == ' ' || w[-1] == '\t'))
                w--;
        }
        char *next = *p == ',' ? p + 1 : NULL;
        *w = 0;
        fields[nf++] = start;
        if (!next)
            break;
        p = next;
    }
    if (nf != 2)
        return -1;
    *f0 = fields[0];
    *f1 = fields[1];
    return 0;
}

static int is_int(const char *s, long *v)
{
    char *end;
    if (!*s)
        return 0;
    long x = strtol(s, &end, 10);
    if (*end)
        return 0;
    *v = x;
    return 1;
}

int nn_imgset_list(const char *csv, const nn_label_opts *lo, long limit, nn_imgset *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    out->origin = csv;
    unsigned char *buf;
    size_t len;
    int r = nn_read_text_file(csv, (size_t)NN_MAX_BYTES, &buf, &len, e);
    if (r)
        return r;
    strvec paths = {0}, labs = {0};
    char *p = (char *)buf;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3;
    long line = 0;
    char *end = (char *)buf + len;
    while (!r && p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *next = eol ? eol + 1 : end;
        size_t l = (size_t)((eol ? eol : end) - p);
        line++;
        if (memchr(p, 0, l)) {
            r = nn_fail(e, NN_EDATA, "%s:%ld: unexpected NUL byte", csv, line);
            break;
        }
        p[l] = 0; /* the '\n', or the terminator nn_read_file appends */
        if (l && p[l - 1] == '\r')
            p[l - 1] = 0;
        if (!*p) {
            p = next;
            continue;
        }
        char *f0, *f1;
        if (split2(p, &f0, &f1)) {
            r = nn_fail(e, NN_EDATA, "%s:%ld: expected two fields, path,label", csv, line);
            break;
        }
        if (line == 1 && !nn_is_image_path(f0) &&
            (!strcasecmp(f0, "path") || !strcasecmp(f0, "file") || !strcasecmp(f0, "filename") ||
             !strcasecmp(f0, "image"))) {
            p = next;
            continue; /* header */
        }
        if (!*f0 || !*f1) {
            r = nn_fail(e, NN_EDATA, "%s:%ld: empty %s", csv, line, *f0 ? "label" : "path");
            break;
        }
        if (limit > 0 && paths.n >= (size_t)limit)
            break;
        if (sv_push(&paths, nn_path_join_dir(csv, f0)) || sv_push(&labs, nn_strdup(f1)))
            r = nn_fail(e, NN_ENOMEM, "out of memory");
        p = next;
    }
    free(buf);
    if (!r && paths.n == 0)
        r = nn_fail(e, NN_EDATA, "%s: no `path,label` lines", csv);
    int *labels = r ? NULL : malloc(paths.n * sizeof(int));
    if (!r && !labels)
        r = nn_fail(e, NN_ENOMEM, "out of memory");
    if (!r && lo && lo->class_names) {
        for (size_t i = 0; !r && i < labs.n; i++) {
            long v;
            int k = class_index(lo, labs.v[i]);
            if (k < 0 && lo->by_index && is_int(labs.v[i], &v) && v >= 0 && v < lo->nclasses)
                k = (int)v;
            if (k < 0)
                r = nn_fail(e, NN_EDATA, "%s: label '%s' of %s is not one of the model's %d classes", csv, labs.v[i],
                            paths.v[i], lo->nclasses);
            else
                labels[i] = k;
        }
        if (!r)
            r = set_classes(out, lo->class_names, lo->nclasses, e);
    } else if (!r) {
        /* classes: sorted distinct labels (numeric order when all are integers) */
        int all_int = 1;
        long v;
        for (size_t i = 0; i < labs.n && all_int; i++)
            all_int = is_int(labs.v[i], &v);
        /* distinct labels by sorting (n log n: a list may hold millions of lines) */
        char **sorted = malloc((labs.n ? labs.n : 1) * sizeof(char *));
        if (!sorted)
            r = nn_fail(e, NN_ENOMEM, "out of memory");
        if (!r) {
            if (labs.n)
                memcpy(sorted, labs.v, labs.n * sizeof(char *));
            qsort(sorted, labs.n, sizeof(char *), all_int ? cmpnum : cmpstr);
            size_t nd = 0;
            for (size_t i = 0; i < labs.n; i++)
                if (nd == 0 || (all_int ? cmpnum : cmpstr)(&sorted[nd - 1], &sorted[i]) != 0)
                    sorted[nd++] = sorted[i];
            if (nd > NN_MAX_CLASSES)
                r = nn_fail(e, NN_EDATA, "%s: more than %d distinct labels", csv, NN_MAX_CLASSES);
            for (size_t i = 0; !r && i < labs.n; i++) {
                char **hit = bsearch(&labs.v[i], sorted, nd, sizeof(char *), all_int ? cmpnum : cmpstr);
                labels[i] = (int)(hit - sorted);
            }
            if (!r)
                r = set_classes(out, sorted, (int)nd, e);
        }
        free(sorted);
    }
    sv_free(&labs);
    out->paths = paths.v;
    out->n = paths.n;
    out->labels = labels;
    if (r)
        nn_imgset_free(out);
    return r;
}

int nn_imgset_decode(const nn_imgset *s, const int *rows, size_t nrows, int c, int h, int w, nn_dataset *out,
                     nn_err *e)
{
    memset(out, 0, sizeof *out);
    size_t n = rows ? nrows : s->n, dim = (size_t)c * h * w, bytes;
    if (nn_mul_size(n, dim * sizeof(float), &bytes) || bytes > (size_t)NN_MAX_BYTES)
        return nn_fail(e, NN_EDATA, "%s: %zu images of %dx%dx%d are too many to decode at once", s->origin, n, c, h, w);
    out->x = malloc(bytes ? bytes : 4);
    out->y = malloc((n ? n : 1) * sizeof(int));
    if (!out->x || !out->y) {
        nn_dataset_free(out);
        return nn_fail(e, NN_ENOMEM, "out of memory decoding %s", s->origin);
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = rows ? (size_t)rows[i] : i;
        int r = nn_image_load(s->paths[k], c, h, w, out->x + i * dim, e);
        if (r) {
            nn_dataset_free(out);
            return r;
        }
        out->y[i] = s->labels[k];
    }
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->dim = dim;
    out->task = NN_TASK_CLASSIFY;
    out->nclasses = s->nclasses;
    return 0;
}

/* -------------------------------------------------------------- prefetch */

#define SLOTS 3

struct nn_prefetch {
    const nn_imgset *set;
    const int *rows;
    int *order;
    size_t n;
    int B, c, h, w;
    int rank, nranks, cap;  /* this rank's share of each batch; cap: the most samples a slot holds */
    size_t dim;
    float *x[SLOTS];
    int *y[SLOTS];
    int count[SLOTS];       /* samples in the slot */
    int ready[SLOTS];       /* filled by the worker; cleared when the consumer is done with it */
    size_t produced, consumed; /* batches */
    size_t nbatches;
    int stop, failed, held;
    nn_err err;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker(void *arg)
{
    nn_prefetch *pf = arg;
    for (size_t b = 0; b < pf->nbatches; b++) {
        int slot = (int)(b % SLOTS);
        pthread_mutex_lock(&pf->mu);
        while (!pf->stop && pf->ready[slot])
            pthread_cond_wait(&pf->cv, &pf->mu);
        int stop = pf->stop;
        pthread_mutex_unlock(&pf->mu);
        if (stop)
            break;
        size_t start = b * (size_t)pf->B;
        size_t all = pf->n - start < (size_t)pf->B ? pf->n - start : (size_t)pf->B, lo;
        int m;
        nn_dist_share_of(all, pf->rank, pf->nranks, &lo, &m);
        start += lo;
        nn_err e = {0};
        int r = 0;
        for (int i = 0; i < m && !r; i++) {
            size_t k = (size_t)pf->rows[pf->order[start + (size_t)i]];
            r = nn_image_load(pf->set->paths[k], pf->c, pf->h, pf->w, pf->x[slot] + (size_t)i * pf->dim, &e);
            pf->y[slot][i] = pf->set->labels[k];
        }
        pthread_mutex_lock(&pf->mu);
        if (r) {
            pf->failed = 1;
            pf->err = e;
        }
        pf->count[slot] = m;
        pf->ready[slot] = 1;
        pf->produced++;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        if (r)
            break;
    }
    return NULL;
}

int nn_prefetch_start(nn_prefetch **out, const nn_imgset *s, const int *rows, const int *order, size_t n, int B,
                      int rank, int nranks, int c, int h, int w, nn_err *e)
{
    *out = NULL;
    nn_prefetch *pf = calloc(1, sizeof *pf);
    if (!pf)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    pf->set = s;
    pf->rows = rows;
    pf->n = n;
    pf->B = B;
    pf->rank = nranks > 1 ? rank : 0;
    pf->nranks = nranks > 1 ? nranks : 1;
    pf->cap = (B + pf->nranks - 1) / pf->nranks;
    pf->c = c;
    pf->h = h;
    pf->w = w;
    pf->dim = (size_t)c * h * w;
    pf->nbatches = (n + (size_t)B - 1) / (size_t)B;
    pf->order = malloc((n ? n : 1) * sizeof(int));
    int ok = pf->order != NULL;
    for (int i = 0; i < SLOTS && ok; i++) {
        pf->x[i] = malloc((size_t)pf->cap * pf->dim * sizeof(float));
        pf->y[i] = malloc((size_t)pf->cap * sizeof(int));
        ok = pf->x[i] && pf->y[i];
    }
    if (!ok) {
        nn_prefetch_stop(pf);
        return nn_fail(e, NN_ENOMEM, "out of memory for the image prefetch buffers");
    }
    for (size_t i = 0; i < n; i++)
        pf->order[i] = order ? order[i] : (int)i;
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    if (pthread_create(&pf->th, NULL, worker, pf) != 0) {
        pthread_mutex_destroy(&pf->mu);
        pthread_cond_destroy(&pf->cv);
        pf->th = 0;
        free(pf->order);
        for (int i = 0; i < SLOTS; i++) {
            free(pf->x[i]);
            free(pf->y[i]);
        }
        free(pf);
        return nn_fail(e, NN_ESOFTWARE, "cannot start the image decoding thread");
    }
    *out = pf;
    return 0;
}

int nn_prefetch_next(nn_prefetch *pf, const float **x, const int **y, int *n, nn_err *e)
{
    pthread_mutex_lock(&pf->mu);
    if (pf->held) {
        /* release the slot handed out last time */
        pf->ready[(pf->consumed - 1) % SLOTS] = 0;
        pf->held = 0;
        pthread_cond_broadcast(&pf->cv);
    }
    if (pf->consumed == pf->nbatches) {
        pthread_mutex_unlock(&pf->mu);
        *n = 0;
        return 0;
    }
    int slot = (int)(pf->consumed % SLOTS);
    while (!pf->ready[slot])
        pthread_cond_wait(&pf->cv, &pf->mu);
    if (pf->failed && pf->produced == pf->consumed + 1) {
        *e = pf->err;
        pthread_mutex_unlock(&pf->mu);
        return e->code;
    }
    *x = pf->x[slot];
    *y = pf->y[slot];
    *n = pf->count[slot];
    pf->consumed++;
    pf->held = 1;
    pthread_mutex_unlock(&pf->mu);
    return 0;
}

void nn_prefetch_stop(nn_prefetch *pf)
{
    if (!pf)
        return;
    if (pf->th) {
        pthread_mutex_lock(&pf->mu);
        pf->stop = 1;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        pthread_join(pf->th, NULL);
        pthread_mutex_destroy(&pf->mu);
        pthread_cond_destroy(&pf->cv);
    }
    free(pf->order);
    for (int i = 0; i < SLOTS; i++) {
        free(pf->x[i]);
        free(pf->y[i]);
    }
    free(pf);
}
