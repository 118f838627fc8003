/* format.c - the table of data formats (format.h). */
#include "format.h"

#include <stdio.h>
#include <string.h>

#include "../util.h"

static int load_csv(const nn_source *src, const nn_load_opts *o, nn_dataset *out, nn_err *e)
{
    return nn_csv_load(src, &o->labels, out, e);
}

/* IDX labels are class indices: a classifier's, within its classes. */
static int load_idx(const nn_source *src, const nn_load_opts *o, nn_dataset *out, nn_err *e)
{
    int r = nn_idx_load(src, out, e);
    if (!r && o->labels.task != NN_TASK_CLASSIFY)
        r = nn_fail(e, NN_EDATA, "%s: IDX labels are classes, but the loss is mse", src->images);
    if (!r && out->y && o->labels.nclasses)
        for (size_t i = 0; i < out->n; i++)
            if (out->y[i] >= o->labels.nclasses) {
                r = nn_fail(e, NN_EDATA, "%s: label %d of sample %zu is not one of the model's %d classes",
                            src->labels, out->y[i], i, o->labels.nclasses);
                break;
            }
    return r;
}

static int load_text(const nn_source *src, const nn_load_opts *o, nn_dataset *out, nn_err *e)
{
    size_t nv = 0;
    int r = nn_text_load(src, o->vocab, o->nvocab, o->val_fraction, out, &nv, e);
    if (o->nval)
        *o->nval = nv;
    return r;
}

/* Image sets map onto given class names only (otherwise they derive them). */
static int scan_folder(const nn_source *src, const nn_label_opts *lo, nn_imgset *out, nn_err *e)
{
    return nn_imgset_folder(src->path, lo && lo->class_names ? lo : NULL, src->limit, out, e);
}

static int scan_list(const nn_source *src, const nn_label_opts *lo, nn_imgset *out, nn_err *e)
{
    return nn_imgset_list(src->path, lo && lo->class_names ? lo : NULL, src->limit, out, e);
}

static const char *const csv_keys[] = {"format", "path",   "label",  "target", "features", "window",
                                       "horizon", "stride", "header", "limit",  NULL};
static const char *const idx_keys[] = {"format", "images", "labels", "limit", "augment", NULL};
static const char *const image_keys[] = {"format", "path", "limit", "augment", NULL};
static const char *const text_keys[] = {"format", "path", "sequence_length", "limit", NULL};

/* Sorted by name (the order of messages listing them). */
const nn_format nn_formats[] = {
#define PATH "path", offsetof(nn_source, path)
#define IMAGES "images", offsetof(nn_source, images)
    {"csv", csv_keys, PATH, NN_FMT_CSV_FILE, load_csv, NULL, nn_source_copy_csv},
    {"idx", idx_keys, IMAGES, NN_FMT_PAIRED, load_idx, NULL, NULL},
    {"images", image_keys, PATH, NN_FMT_FOLDER, NULL, scan_folder, NULL},
    {"list", image_keys, PATH, NN_FMT_CSV_FILE, NULL, scan_list, NULL},
    {"text", text_keys, PATH, NN_FMT_TOKENS, load_text, NULL, NULL},
#undef PATH
#undef IMAGES
};
const int nn_nformats = (int)(sizeof nn_formats / sizeof nn_formats[0]);

const nn_format *nn_format_find(const char *name)
{
    for (int i = 0; name && i < nn_nformats; i++)
        if (!strcmp(nn_formats[i].name, name))
            return &nn_formats[i];
    return NULL;
}

const nn_format *nn_format_of(const nn_source *src) { return src ? nn_format_find(src->format) : NULL; }

const nn_format *nn_format_with(unsigned flags)
{
    for (int i = 0; i < nn_nformats; i++)
        if ((nn_formats[i].flags & flags) == flags)
            return &nn_formats[i];
    return NULL;
}

int nn_source_is(const nn_source *src, unsigned flags)
{
    const nn_format *f = nn_format_of(src);
    return f && (f->flags & flags) == flags;
}

const char *nn_format_names(char *buf, size_t n, const char *quote, const char *sep, const char *last)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < nn_nformats && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s%s%s", i == 0 ? "" : i == nn_nformats - 1 ? last : sep, quote,
                               nn_formats[i].name, quote);
    return buf;
}

int nn_source_like(nn_source *to, const nn_format *fmt, const char *path, const nn_source *train,
                   const char *json_path, nn_err *e)
{
    memset(to, 0, sizeof *to);
    snprintf(to->format, sizeof to->format, "%s", fmt->name);
    to->header = -1;
    to->json_path = json_path;
    if (!(to->path = nn_strdup(path)))
        return nn_fail(e, NN_ENOMEM, "out of memory");
    if (train && nn_format_of(train) == fmt && fmt->copy_for_eval)
        return fmt->copy_for_eval(to, train, e);
    return 0;
}
