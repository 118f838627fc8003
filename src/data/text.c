/* text.c - byte-level language-model data. */
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "dataset.h"

/* Sequences of T (+1 for the shifted labels) from ids[0..len), written at
 * window index `at` of d. Returns how many. */
static size_t windows(const unsigned char *ids, size_t len, int T, nn_dataset *d, size_t at)
{
    size_t n = len > (size_t)T ? (len - 1) / (size_t)T : 0;
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            size_t p = i * (size_t)T + (size_t)t, q = (at + i) * (size_t)T + (size_t)t;
            d->x[q] = (float)ids[p];
            d->y[q] = ids[p + 1];
        }
    return n;
}

int nn_text_load(const nn_source *src, const int *vocab, int nvocab, double val_fraction, nn_dataset *train,
                 size_t *nval_windows, nn_err *e)
{
    memset(train, 0, sizeof *train);
    *nval_windows = 0;
    unsigned char *buf;
    size_t len;
    int r = nn_read_file(src->path, (size_t)NN_MAX_BYTES / 8, &buf, &len, e);
    if (r)
        return r;
    if (src->limit > 0 && (size_t)src->limit < len)
        len = (size_t)src->limit;
    int T = src->seq_len;
    if (len == 0) {
        free(buf);
        return nn_fail(e, NN_EDATA, "%s: the corpus is empty", src->path);
    }
    /* the vocabulary: given, or the sorted set of bytes present */
    int map[256], V = 0;
    for (int b = 0; b < 256; b++)
        map[b] = -1;
    if (vocab) {
        for (int i = 0; i < nvocab; i++) {
            if (vocab[i] < 0 || vocab[i] > 255 || map[vocab[i]] >= 0) {
                free(buf);
                return nn_fail(e, NN_EDATA, "the model's vocabulary is invalid (entry %d: %d is %s)", i, vocab[i],
                               vocab[i] < 0 || vocab[i] > 255 ? "not a byte value" : "repeated");
            }
            map[vocab[i]] = i;
        }
        V = nvocab;
        for (size_t i = 0; i < len; i++)
            if (map[buf[i]] < 0) {
                size_t line = 1;
                for (size_t k = 0; k < i; k++)
                    line += buf[k] == '\n';
                r = nn_fail(e, NN_EDATA, "%s:%zu: byte 0x%02x is not in the model's vocabulary", src->path, line, buf[i]);
                free(buf);
                return r;
            }
    } else {
        int seen[256] = {0};
        for (size_t i = 0; i < len; i++)
            seen[buf[i]] = 1;
        for (int b = 0; b < 256; b++)
            if (seen[b])
                map[b] = V++;
    }
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)map[buf[i]];
    size_t nval = (size_t)((double)len * val_fraction);
    size_t ntr = len - nval;
    if (ntr < (size_t)T + 1) {
        free(buf);
        return nn_fail(e, NN_EDATA,
                       "%s: %zu training bytes are too few for one sequence of %d (+1): use a longer corpus or a "
                       "smaller sequence_length",
                       src->path, ntr, T);
    }
    if (val_fraction > 0 && nval <= (size_t)T) {
        free(buf);
        return nn_fail(e, NN_EDATA, "%s: the validation part (%zu bytes) is shorter than one sequence of %d", src->path,
                       nval, T);
    }
    size_t cap = (ntr - 1) / (size_t)T + (nval > (size_t)T ? (nval - 1) / (size_t)T : 0);
    train->x = malloc((cap ? cap : 1) * (size_t)T * sizeof(float));
    train->y = malloc((cap ? cap : 1) * (size_t)T * sizeof(int));
    if (!train->x || !train->y) {
        free(buf);
        nn_dataset_free(train);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    size_t nt = windows(buf, ntr, T, train, 0);
    size_t nv = nval > (size_t)T ? windows(buf + ntr, nval, T, train, nt) : 0;
    free(buf);
    train->n = nt + nv;
    train->c = T;
    train->h = train->w = 1;
    train->dim = (size_t)T;
    train->task = NN_TASK_CLASSIFY;
    train->ylen = T;
    *nval_windows = nv;
    /* class names: the byte values, so model.bin stores the vocabulary */
    train->class_names = calloc((size_t)V, sizeof(char *));
    if (!train->class_names) {
        nn_dataset_free(train);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    train->nclasses = V;
    for (int b = 0; b < 256; b++) {
        if (map[b] < 0)
            continue;
        char num[16];
        snprintf(num, sizeof num, "%d", b);
        if (!(train->class_names[map[b]] = nn_strdup(num))) {
            nn_dataset_free(train);
            return nn_fail(e, NN_ENOMEM, "out of memory");
        }
    }
    return 0;
}
