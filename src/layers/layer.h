/* layer.h - what every layer type provides, and the state each layer holds.
 *
 * A layer type is one file src/layers/NAME.c defining one nn_layer_type table
 * and one line in registry.h. The graph (net.c) calls, in order:
 *   parse    - read the type's own JSON keys (the common keys "type", "name",
 *              "inputs" are handled by spec.c; unknown keys are rejected from
 *              the table's `keys` list before parse is called);
 *   shape    - from in_shape[] set out_shape, declare parameters (param[],
 *              nparam: shape, init), per-sample FLOPs and scratch size;
 *   forward  - compute y from x[] for r->n samples (r->train selects dropout,
 *              batch statistics ...);
 *   backward - given dy, ACCUMULATE into dx[i] (+=; dx[i] may be NULL when no
 *              gradient is needed there) and OVERWRITE the parameter gradients.
 * Activations are [batch, per-sample shape] row-major floats on the device. */
#ifndef NN_LAYER_H
#define NN_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../device.h"
#include "../err.h"

#define NN_MAX_DIMS 4
#define NN_MAX_INPUTS 8
#define NN_MAX_PARAMS 6

typedef struct nn_shape {
    int nd;
    int d[NN_MAX_DIMS];
} nn_shape;

size_t nn_shape_size(const nn_shape *s);
/* "[1, 28, 28]" into buf; returns buf. */
const char *nn_shape_str(const nn_shape *s, char *buf, size_t n);

/* Fused activations (dense, conv ...) and standalone activation layers. */
typedef enum {
    NN_ACT_NONE = 0,
    NN_ACT_RELU = 1,
    NN_ACT_SIGMOID = 2,
    NN_ACT_TANH = 3,
    NN_ACT_LEAKY_RELU = 4,  /* fused: alpha 0.01; the standalone layer takes "alpha" */
    NN_ACT_ELU = 5,         /* fused: alpha 1.0; the standalone layer takes "alpha" */
    NN_ACT_GELU = 6,        /* exact erf form; standalone layer only (needs its input for the gradient) */
} nn_act;
/* Parses "relu" | "sigmoid" | "tanh" | "leaky_relu" | "elu" | "gelu" | "linear" | "none"; -1 if unknown. */
int nn_act_parse(const char *s);
const char *nn_act_name(int act);

typedef enum {
    NN_INIT_ZERO,
    NN_INIT_ONE,
    NN_INIT_HE,      /* normal, std sqrt(2 / fan_in) */
    NN_INIT_GLOROT,  /* uniform, limit sqrt(6 / (fan_in + fan_out)) */
    NN_INIT_LSTM_BIAS, /* zeros, except 1 for the forget gate: block [n/4, n/2) of [i, f, g, o] */
    NN_INIT_FAN_IN_UNIFORM, /* uniform, limit 1 / sqrt(fan_in): PyTorch's Linear/Conv default, weights and bias */
    NN_INIT_NORMAL,  /* standard normal N(0, 1): PyTorch's Embedding */
    NN_INIT_FAN_IN_UNIFORM2, /* the sum of two independent NN_INIT_FAN_IN_UNIFORM draws: PyTorch's
                              * LSTM bias b_ih + b_hh, kept as one bias here */
} nn_init;

typedef struct nn_param {
    char name[32];      /* "weight", "bias" ... (saved as "<layer>.<name>") */
    nn_shape shape;
    nn_init init;
    int fan_in, fan_out;
    int trainable;      /* 0: state saved in model.bin but not optimised */
    size_t n;           /* elements */
    size_t off;         /* float offset in the net's params (or state) buffer */
    cl_mem w, g;        /* sub-buffers: value and gradient (g NULL when not trainable) */
} nn_param;

typedef struct nn_layer nn_layer;

/* Per-call context of forward/backward. */
typedef struct nn_run {
    nn_dev *dev;
    int n;              /* samples in this batch (<= the net's max batch) */
    int train;          /* 1 while training: dropout active, batch statistics */
    uint64_t seed;      /* training seed (dropout masks) */
    uint64_t step;      /* optimisation step (dropout masks) */
    int n_global;       /* data-parallel: samples in the global batch, whose mean the loss is (0: n) */
} nn_run;

/* What a layer's output is, for the loss that reads it (the `output` hook). */
typedef enum {
    NN_OUT_VALUES = 0,  /* raw values: logits for a classification loss */
    NN_OUT_SOFTMAX = 1, /* probabilities over the last axis: cross_entropy fuses with the layer */
    NN_OUT_SIGMOID = 2, /* probabilities in (0, 1) each */
} nn_out_kind;

/* Optional slots (NULL: not needed) are marked "opt". */
typedef struct nn_layer_type {
    const char *name;
    const char *const *keys;    /* the type's own JSON keys, NULL-terminated (NULL: none) */
    int min_inputs, max_inputs;
    int alias;                  /* 1: output is the input buffer reshaped (flatten) */
    int (*parse)(nn_layer *L, const cJSON *j, const char *path, nn_err *e);     /* opt */
    int (*shape)(nn_layer *L, const char *path, nn_err *e);
    int (*forward)(nn_layer *L, const nn_run *r, nn_err *e);
    int (*backward)(nn_layer *L, const nn_run *r, nn_err *e);
    void (*destroy)(nn_layer *L);                                               /* opt */
    /* opt: what the output is (NULL: NN_OUT_VALUES). With cross_entropy a
     * last layer giving NN_OUT_SOFTMAX is fused with the loss (its backward
     * is skipped: the loss writes the gradient of its input). */
    nn_out_kind (*output)(const nn_layer *L);
    /* opt: where the layer may stand: `last` when it is the net's output,
     * `regression` when the loss is mse. A message "PATH (NAME): ..." when
     * not (the caller adds the file). */
    int (*check_place)(const nn_layer *L, int last, int regression, nn_err *e);
    /* opt: learns from the training targets before training starts: t holds
     * tdim floats per sample (NULL when the data has none), rows[0..n) are the
     * training samples. A message "PATH (NAME): ..." on failure. */
    int (*fit)(nn_layer *L, nn_dev *d, const float *t, int tdim, const int *rows, size_t n, nn_err *e);
} nn_layer_type;

/* L's output kind (its type's `output` hook, or NN_OUT_VALUES). */
nn_out_kind nn_layer_output(const nn_layer *L);

struct nn_layer {
    const nn_layer_type *type;
    char name[64];
    int index;
    char path[32];              /* "layers[3]" for messages */
    int nin;
    int in[NN_MAX_INPUTS];      /* producing layer index; -1 = the network input */
    nn_shape in_shape[NN_MAX_INPUTS], out_shape;
    cl_mem x[NN_MAX_INPUTS], dx[NN_MAX_INPUTS];
    cl_mem y, dy;
    nn_param param[NN_MAX_PARAMS];
    int nparam;
    double flops;               /* forward FLOPs per sample */
    size_t scratch;             /* floats per sample of scratch the layer needs */
    cl_mem work;                /* that scratch, max_batch * scratch floats */
    int act;                    /* fused activation, where the type has one */
    int vocab;                  /* the data's vocabulary size (text data), set before shape(); 0 = none */
    void *p;                    /* type-specific state (malloc'd; freed by destroy or free()) */
};

/* Helpers for the types. */
int nn_layer_get_int(const cJSON *j, const char *key, const char *path, int min, int max, int dflt,
                     int *out, nn_err *e);
int nn_layer_get_num(const cJSON *j, const char *key, const char *path, double min, double max,
                     double dflt, double *out, nn_err *e);
int nn_layer_get_bool(const cJSON *j, const char *key, const char *path, int dflt, int *out, nn_err *e);
/* An int or a [height, width] pair of ints in [min, max] into out[2];
 * dflt[] when missing (NULL: the key is required). */
int nn_layer_get_pair(const cJSON *j, const char *key, const char *path, int min, int max, const int dflt[2],
                      int out[2], nn_err *e);
/* "init": "he" | "glorot" | "torch" -> *out (NN_INIT_*), or -1 when absent. */
int nn_layer_get_init(const cJSON *j, const char *path, int *out, nn_err *e);
/* "init": "torch" only (layers whose default already is PyTorch's or that
 * have no other choice) -> *out NN_INIT_FAN_IN_UNIFORM, or -1 when absent. */
int nn_layer_get_init_torch(const cJSON *j, const char *path, int *out, nn_err *e);
/* The weight and bias initialisations of a dense/conv layer: `init` from
 * nn_layer_get_init (-1: He for relu, else Glorot; bias zero, or uniform for "torch"). */
void nn_layer_pick_init(int init, int act, nn_init *weight, nn_init *bias);
int nn_layer_get_act(const cJSON *j, const char *key, const char *path, int *out, nn_err *e);
/* An integer key that may also be the string "vocab" (stored as NN_VOCAB);
 * resolve it in shape() with nn_layer_vocab(). */
#define NN_VOCAB (-7)
int nn_layer_get_int_or_vocab(const cJSON *j, const char *key, const char *path, int min, int max, int dflt,
                              int *out, nn_err *e);
/* Resolves NN_VOCAB to L->vocab; 65 with a message when there is none. */
int nn_layer_vocab(nn_layer *L, const char *key, int *v, nn_err *e);
nn_param *nn_layer_add_param(nn_layer *L, const char *name, int nd, const int *dims, nn_init init,
                             int fan_in, int fan_out);

/* How a row-looping kernel (cl/conv.cl, cl/pool.cl) spreads `rows` rows of
 * work over work items, beside `other` independent items (its second range
 * dimension; 1 when it has none). The one place that shapes them per device:
 * on GPUs one row per item, as many items as rows, the local size left to the
 * implementation; on CPUs (PoCL compiles a work-group into a loop, so per-item
 * index math and short loops dominate) about eight items per compute unit in
 * all, each a long run of consecutive rows, with local size 1. */
typedef struct nn_rows {
    size_t items; /* work items along the rows: ceil(rows / per) */
    int per;      /* rows per work item (the kernels' `rows` argument) */
    size_t local; /* local size of the launch (0: the implementation's choice) */
} nn_rows;
nn_rows nn_row_split(const nn_dev *d, size_t rows, size_t other);
/* The same for elementwise kernels over n floats (a work item takes `per`
 * consecutive elements): one per item on GPUs; on CPUs runs of whole 16-float
 * blocks (the last run ends at n), so that vector loops start aligned. */
nn_rows nn_elem_split(const nn_dev *d, size_t n);

/* Elementwise activation kernels shared by the types (cl/activation.cl). */
int nn_act_forward(nn_dev *d, int act, cl_mem x, cl_mem y, size_t n, nn_err *e);
int nn_act_backward(nn_dev *d, int act, cl_mem y, cl_mem dy, cl_mem dx, size_t n, nn_err *e);

/* The registry: every type, and lookup by name. */
extern const nn_layer_type *const nn_layer_types[];
const nn_layer_type *nn_layer_find(const char *name);

#endif
