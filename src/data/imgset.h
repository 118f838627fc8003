/* imgset.h - image datasets that live on disk: a folder with one sub-folder
 * per class, or a CSV list of `path,label` lines. Small sets are decoded once
 * into an nn_dataset (kept on the device); large ones are streamed: a
 * background thread decodes batches into a ring of three host buffers, so
 * memory stays flat however many images there are. */
#ifndef NN_IMGSET_H
#define NN_IMGSET_H

#include "dataset.h"

typedef struct nn_imgset {
    size_t n;
    char **paths;        /* n file paths */
    int *labels;         /* n class indices */
    int nclasses;
    char **class_names;  /* nclasses names (owned) */
    const char *origin;  /* the folder or list file, for messages (not owned) */
} nn_imgset;

/* Scans `dir`: classes = sub-folder names (sorted), images = the files in
 * each that stb reads (sorted). With lo->class_names, folders map onto them. */
int nn_imgset_folder(const char *dir, const nn_label_opts *lo, long limit, nn_imgset *out, nn_err *e);
/* Reads a CSV list of `path,label` (header optional; relative paths are
 * resolved against the list's folder). Labels as for CSV sources. */
int nn_imgset_list(const char *csv, const nn_label_opts *lo, long limit, nn_imgset *out, nn_err *e);
void nn_imgset_free(nn_imgset *s);

/* Decodes rows (NULL: all) into a dataset of c x h x w images. */
int nn_imgset_decode(const nn_imgset *s, const int *rows, size_t nrows, int c, int h, int w, nn_dataset *out,
                     nn_err *e);

/* Background decoding of batches in a given order. */
typedef struct nn_prefetch nn_prefetch;
/* Decodes images rows[order[0]], rows[order[1]] ... in batches of B; with
 * nranks > 1 only share `rank` of each batch of m samples, its samples
 * [m*rank/nranks, m*(rank+1)/nranks) (data-parallel training: dist.h). */
int nn_prefetch_start(nn_prefetch **pf, const nn_imgset *s, const int *rows, const int *order, size_t n, int B,
                      int rank, int nranks, int c, int h, int w, nn_err *e);
/* Waits for the next batch: x (n*c*h*w floats) and y (n labels). The buffers
 * stay valid until the following call. 0 batches left: *n = 0. */
int nn_prefetch_next(nn_prefetch *pf, const float **x, const int **y, int *n, nn_err *e);
void nn_prefetch_stop(nn_prefetch *pf);

#endif
