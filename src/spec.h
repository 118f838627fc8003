/* spec.h - the model JSON, parsed and validated (docs/FORMATS.md).
 * Every error names the file and the JSON path: "m.json: layers[3].units: ...". */
#ifndef NN_SPEC_H
#define NN_SPEC_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "data/dataset.h"
#include "err.h"
#include "layers/layer.h"
#include "schedule.h"

typedef enum { NN_LOSS_CE = 0, NN_LOSS_BCE = 1, NN_LOSS_MSE = 2 } nn_loss_kind;
typedef enum { NN_OPT_SGD = 0, NN_OPT_ADAM = 1, NN_OPT_ADAMW = 2, NN_OPT_RMSPROP = 3 } nn_opt_kind;
typedef enum { NN_NORM_NONE = 0, NN_NORM_AUTO = 1, NN_NORM_GIVEN = 2 } nn_norm_mode;

typedef struct nn_opt_spec {
    nn_opt_kind type;
    float lr, momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    float alpha;      /* rmsprop: smoothing constant of the squared-gradient average */
    int centered;     /* rmsprop: divide by the estimated variance (grad_avg kept) */
    float clip_value; /* > 0: each gradient element clamped to [-clip_value, clip_value] first */
    float clip_norm;  /* > 0: then all gradients scaled so their global L2 norm is at most this */
} nn_opt_spec;

typedef struct nn_train_spec {
    int epochs, batch_size;
    uint64_t seed;
    float validation_split;
    int shuffle;
    nn_sched_spec sched;      /* train.lr_schedule (kind NN_SCHED_NONE when absent) */
    nn_stop_spec stop;        /* train.early_stopping */
} nn_train_spec;

/* The model JSON as the user wrote it (plus command-line overrides of the
 * training settings). What the data decides (input shape, vocabulary,
 * classes, normalisation) lives in the model (model.h), not here. */
typedef struct nn_spec {
    cJSON *root;              /* the parsed JSON (owned) */
    char *file;               /* where it came from, for messages and relative paths */
    char name[128];
    int has_input_shape;
    nn_shape input;           /* per-sample input shape, e.g. [1, 28, 28] or [4] */
    nn_norm_mode norm;
    int nnorm;                /* NN_NORM_GIVEN / loaded: number of mean/std values */
    float *mean, *std;
    int nlayers;
    nn_layer *layers;
    nn_loss_kind loss;
    float label_smoothing;    /* cross_entropy: target (1 - ls) * onehot + ls / classes */
    nn_opt_spec opt;
    nn_train_spec train;
    int has_train, has_test;
    nn_source train_src, test_src;
    int nclasses;             /* data.classes, 0 when not given */
    char **classes;
    char *output;             /* output path (relative to the current directory) */
} nn_spec;

/* Parses and validates `text` (len bytes) read from `file`. Layer types parse
 * their own keys here, so every error carries its JSON path. No shapes yet. */
int nn_spec_parse(const char *text, size_t len, const char *file, nn_spec *s, nn_err *e);
/* Reads `file` then parses it (66 when missing). */
int nn_spec_load(const char *file, nn_spec *s, nn_err *e);
void nn_spec_free(nn_spec *s);

/* The model JSON to store in model.bin: the parsed JSON with data paths made
 * absolute, the effective training settings written back and `input` (the
 * shape used, perhaps from the data; NULL: as given) as input.shape.
 * malloc'd text. */
char *nn_spec_canonical(const nn_spec *s, const nn_shape *input, nn_err *e);

const char *nn_loss_name(nn_loss_kind k);
const char *nn_opt_name(nn_opt_kind k);

#endif
