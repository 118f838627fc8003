/* dataset.c - freeing datasets and sources, image path detection. */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util.h"

void nn_dataset_free(nn_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->t);
    if (d->class_names) {
        for (int i = 0; i < d->nclasses; i++)
            free(d->class_names[i]);
        free(d->class_names);
    }
    memset(d, 0, sizeof *d);
}

/* Frees path, images, labels and all 16 label_name slots (so a zero-initialised
 * source with names set beyond nlabels does not leak); json_path is not owned. */
void nn_source_free(nn_source *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->images);
    free(s->labels);
    for (size_t i = 0; i < sizeof s->label_name / sizeof s->label_name[0]; i++)
        free(s->label_name[i]);
    if (s->feat_name)
        for (int i = 0; i < s->nfeat_cols; i++)
            free(s->feat_name[i]);
    free(s->feat_name);
    free(s->feat_index);
    memset(s, 0, sizeof *s);
}

int nn_source_copy_csv(nn_source *to, const nn_source *from, nn_err *e)
{
    to->header = from->header;
    to->nlabels = from->nlabels;
    for (int i = 0; i < from->nlabels; i++) {
        to->label_index[i] = from->label_index[i];
        if (from->label_name[i] && !(to->label_name[i] = nn_strdup(from->label_name[i])))
            return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    to->window = from->window;
    to->horizon = from->horizon;
    to->stride = from->stride;
    if (from->nfeat_cols > 0) {
        to->feat_name = calloc((size_t)from->nfeat_cols, sizeof *to->feat_name);
        to->feat_index = calloc((size_t)from->nfeat_cols, sizeof *to->feat_index);
        if (!to->feat_name || !to->feat_index)
            return nn_fail(e, NN_ENOMEM, "out of memory");
        to->nfeat_cols = from->nfeat_cols;
        for (int i = 0; i < from->nfeat_cols; i++) {
            to->feat_index[i] = from->feat_index[i];
            if (from->feat_name[i] && !(to->feat_name[i] = nn_strdup(from->feat_name[i])))
                return nn_fail(e, NN_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int nn_is_image_path(const char *path)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "pnm",
                                      "pgm", "ppm", "psd", "hdr", "pic"};
    if (!path)
        return 0;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0)
            return 1;
    return 0;
}
