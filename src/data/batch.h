/* batch.h - a dataset resident on the device, and batches gathered from it
 * by index (shuffling costs one small upload per epoch; normalisation is
 * applied by the gather kernel). */
#ifndef NN_BATCH_H
#define NN_BATCH_H

#include "../net.h"
#include "dataset.h"

typedef struct nn_devdata {
    size_t n, dim;
    int tdim;            /* 0: int labels; >0: float targets per sample */
    int ylen;            /* int labels per sample (>= 1) */
    int has_targets;
    cl_mem x;            /* n*dim floats */
    cl_mem y;            /* n ints (labels) or n*tdim floats */
    cl_mem idx;          /* n ints: the current order */
} nn_devdata;

/* Uploads the samples listed in `rows` (NULL: all, in order). */
int nn_devdata_upload(nn_dev *d, const nn_dataset *ds, const int *rows, size_t nrows, nn_devdata *out, nn_err *e);
/* Sets the sample order (a permutation of 0..n-1). */
int nn_devdata_order(nn_dev *d, nn_devdata *dd, const int *order, nn_err *e);
/* Gathers samples [start, start+n) of the current order into the net's input
 * (normalised) and into `target` (labels or targets; skipped when NULL). */
int nn_devdata_batch(nn_net *net, nn_devdata *dd, size_t start, int n, cl_mem target, nn_err *e);
void nn_devdata_free(nn_devdata *dd);

#endif
