/* feed.h - where training and evaluation batches come from. Either a dataset
 * resident on the device (gathered by index: shuffling is one small upload
 * per epoch), or images streamed from disk by the prefetch thread through a
 * one-batch staging area on the device. Both normalise, and augment while
 * training, in the same gather kernel. */
#ifndef NN_FEED_H
#define NN_FEED_H

#include "../net.h"
#include "batch.h"
#include "imgset.h"

typedef struct nn_augment {
    int flip;        /* random horizontal flips */
    int shift;       /* random shifts of up to this many pixels (crop_padding + translate) */
} nn_augment;

typedef struct nn_feed {
    size_t n;                /* samples */
    int streaming;
    nn_devdata dd;           /* resident: the whole set; streaming: one staging batch */
    /* streaming */
    const nn_imgset *set;
    int *rows;               /* this feed's rows of set (owned) */
    int *order;              /* current epoch's order of 0..n-1 (owned) */
    nn_prefetch *pf;
    int B, c, h, w;
    int gB;                  /* data-parallel: the global batch a pass is cut into (0: B); see nn_feed_shard */
} nn_feed;

/* Resident: rows of ds (NULL = all) uploaded once. */
int nn_feed_resident(nn_feed *f, nn_dev *d, const nn_dataset *ds, const int *rows, size_t nrows, nn_err *e);
/* Streaming: rows of set (NULL = all), decoded to c x h x w, B per batch. */
int nn_feed_stream(nn_feed *f, nn_dev *d, const nn_imgset *set, const int *rows, size_t nrows, int B, int c, int h,
                   int w, nn_err *e);
/* Starts a pass over the samples in `order` (a permutation of 0..n-1; NULL:
 * in order) from position `from` (a resumed epoch). Batches must then be
 * taken in sequence, starting at `from`. */
int nn_feed_begin(nn_feed *f, nn_dev *d, const int *order, size_t from, nn_err *e);
/* Puts samples [start, start+n) of the pass into the net's input and `target`
 * (NULL: none). aug/step: augmentation (NULL: none) and its random stream. */
int nn_feed_batch(nn_feed *f, nn_net *net, size_t start, int n, cl_mem target, const nn_augment *aug,
                  uint64_t seed, uint64_t step, nn_err *e);
/* Data-parallel passes (dist.h): the pass is cut into global batches of
 * gbatch samples, of which this rank takes its share (nn_dist_share); the
 * caller passes each share's start and size to nn_feed_batch (a share may
 * be empty: nn_feed_batch with n = 0 does nothing but keep in step).
 * A streaming feed then decodes only this rank's samples. */
void nn_feed_shard(nn_feed *f, int gbatch);
/* Ends the pass (stops the prefetch thread). */
void nn_feed_end(nn_feed *f);
void nn_feed_free(nn_feed *f);

#endif
