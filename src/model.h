/* model.h - a trained (or training) model: spec, net on a device, class
 * names, normalisation. Shared by train, eval, infer; load/save model.bin. */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include "data/batch.h"
#include "data/feed.h"
#include "data/format.h"
#include "data/imgset.h"
#include "net.h"
#include "spec.h"

typedef struct nn_model {
    nn_spec spec;         /* the user's model JSON */
    nn_shape input;       /* the input shape used: the spec's, or the training data's (nn_model_derive) */
    int vocab;            /* token data (text): the vocabulary size that sizes "vocab" layers; else 0 */
    nn_net net;
    nn_dev dev;
    int dev_open, built;
    int profiling;        /* open the queue with profiling (nnrun bench) */
    nn_task task;
    int tdim;             /* regression: outputs per sample */
    int nclasses;
    char **classes;       /* nclasses names (owned) */
    int nnorm;
    float *mean, *std;    /* nnorm values each (owned), or NULL */
} nn_model;

/* Opens the device (`device`: see nn_dev_select) and allocates the net. */
int nn_model_open_device(nn_model *m, const char *device, int max_batch, int training, nn_err *e);

/* The vocabulary size of a stored model's "vocab" layers: its class count
 * when it was trained on token data (text), else 0. */
int nn_model_stored_vocab(const nn_spec *s, int nclasses);

/* Loads model.bin: validates, builds the net, uploads the tensors. */
int nn_model_load(const char *path, const char *device, int max_batch, nn_model *m, nn_err *e);
/* Writes model.bin atomically. */
int nn_model_save(nn_model *m, const char *path, nn_err *e);
/* Same, plus an "extra" JSON object and flat device buffers as extra
 * tensors (a training checkpoint: optimiser state and the loop position). */
typedef struct nn_extra_tensor {
    const char *name;
    cl_mem buf;
    size_t n;
} nn_extra_tensor;
int nn_model_save_state(nn_model *m, const char *path, const char *extra_json, const nn_extra_tensor *more,
                        int nmore, nn_err *e);
/* Uploads the tensors of a read model.bin into the net's parameters. */
struct nn_modelbin;
int nn_model_place_params(nn_model *m, const struct nn_modelbin *c, const char *path, nn_err *e);

/* Label options that map a source's labels onto this model's classes. */
void nn_model_label_opts(const nn_model *m, nn_label_opts *lo);

/* Loads a source whose format loads into memory (csv, idx, text) for this
 * model, checking its shape once the net is built. */
int nn_model_load_source(const nn_model *m, const nn_source *src, int labels_optional, nn_dataset *ds, nn_err *e);

/* Any source: CSV/IDX are loaded; image folders/lists are scanned and, when
 * their decoded size is at most NNRUN_RESIDENT_MAX bytes (default 1 GiB),
 * decoded into `ds` too; otherwise they will be streamed. */
typedef struct nn_data {
    nn_dataset ds;
    nn_imgset set;
    int streamed;        /* 1: images decoded batch by batch from `set` */
    size_t n;
    int nclasses;
    char **class_names;  /* borrowed from ds or set */
} nn_data;
/* The image shape to decode to is the model's input shape (m->spec.input). */
int nn_model_open_data(const nn_model *m, const nn_source *src, nn_data *out, nn_err *e);
/* data.train for training or bench: token data (text) splits off the last
 * val_fraction of the corpus by position and says how many samples that is
 * in *nval; other formats as nn_model_open_data (*nval = 0). */
int nn_model_open_train(const nn_model *m, double val_fraction, nn_data *out, size_t *nval, nn_err *e);

/* What the model takes from its training data, decided here for train and
 * bench alike (the spec stays as the user wrote it): the input shape (given,
 * and then checked against the data, or the data's: [features], [channels,
 * height, width], or [steps, features] for time-series windows), the
 * vocabulary of token data, the classes (data.classes, or the data's) or the
 * regression width; then builds the net. `train` NULL: synthetic data (the
 * spec must give input.shape). */
int nn_model_derive(nn_model *m, const nn_data *train, nn_err *e);

/* The input normalisation: "auto" -> mean/std over the training rows (per
 * channel for images, per feature otherwise; time-series windows per feature
 * over every step; streamed images from up to 2000 of them; never token ids),
 * given values -> copied from the spec. */
int nn_model_derive_norm(nn_model *m, const nn_data *train, const int *rows, size_t n, nn_err *e);

/* A feed over rows (NULL: all) of the data, batches of the net's max batch. */
int nn_model_feed(nn_model *m, nn_data *data, const int *rows, size_t nrows, nn_feed *f, nn_err *e);
void nn_data_free(nn_data *d);

/* Mean loss and mean metric (accuracy, or MAE for regression) over a feed. */
int nn_model_evaluate(nn_model *m, nn_feed *f, double *loss, double *metric, nn_err *e);
/* The same, and the confusion matrix counted on the device in the same pass:
 * conf[true * (K + 1) + predicted], K = m->nclasses rows of K + 1 columns,
 * the last for samples whose outputs are NaN (no prediction). Only for a
 * classifier with one label per sample: nn_model_confusion_size (K * (K + 1))
 * says how many counts, 0 when the model has no such matrix (regression,
 * text models with one label per position). */
int nn_model_confusion_size(const nn_model *m);
int nn_model_evaluate_ex(nn_model *m, nn_feed *f, double *loss, double *metric, long *conf, nn_err *e);

/* Runs the net on samples [start, start+n) of dd and reads back n*out_dim
 * probabilities (classification) or values (regression) into out. */
int nn_model_predict(nn_model *m, nn_devdata *dd, size_t start, int n, float *out, nn_err *e);

void nn_model_free(nn_model *m);

#endif
