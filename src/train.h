/* train.h - `nnrun train`: load data, build, train, evaluate, save. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

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
    int json, quiet, progress;
} nn_train_opts;

int nn_train_run(const nn_train_opts *o, nn_err *e);

#endif
