/* train.h - `nnrun train`: load data, build, train, evaluate, save. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <signal.h>

#include "device.h"
#include "err.h"

typedef struct nn_train_opts {
    const char *model_path;
    int epochs;          /* -1: from the JSON */
    int batch_size;      /* 0: from the JSON */
    double lr;           /* 0: from the JSON */
    long long seed;      /* -1: from the JSON */
    const char *output;  /* NULL: from the JSON */
    const char *device;  /* NULL: $NNRUN_DEVICE or the default */
    const char *log;     /* per-epoch metrics CSV, or NULL */
    const char *plot;    /* the training curves as a PNG (plot.h), or NULL */
    int json, quiet, progress;
    const char *resume;      /* checkpoint to continue from, or NULL */
    const char *checkpoint;  /* where checkpoints go (default: <output>.ckpt) */
    long ckpt_every;         /* write one every N steps (or epochs); 0: only when interrupted */
    int ckpt_epochs;         /* ckpt_every counts epochs */
    volatile sig_atomic_t *stop; /* set (by a signal handler): stop after the current step */
} nn_train_opts;

int nn_train_run(const nn_train_opts *o, nn_err *e);

/* One optimisation step on samples [start, start + run->n) of the feed's
 * pass: gather (+ augmentation), forward, loss and its gradient, metric
 * sums into acc, backward, optimiser. Enqueues only; nothing waits. */
struct nn_model;
struct nn_optim;
struct nn_feed;
struct nn_augment;
struct nn_run;
struct nn_loss_bufs;
int nn_train_step(struct nn_model *m, struct nn_optim *opt, struct nn_feed *f, size_t start, const struct nn_run *run,
                  const struct nn_loss_bufs *lb, const struct nn_augment *aug, nn_err *e);

#endif
