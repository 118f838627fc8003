/* dataset.c - freeing datasets and sources, image path detection. */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    memset(s, 0, sizeof *s);
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
