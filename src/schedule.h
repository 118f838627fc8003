/* schedule.h - learning-rate schedules and early stopping, per epoch, with
 * PyTorch's torch.optim.lr_scheduler semantics (scheduler.step() once after
 * every epoch) and Keras's EarlyStopping (docs/FORMATS.md, train.lr_schedule
 * and train.early_stopping). Plain host arithmetic on a few numbers: the
 * learning rate goes to the optimiser's kernels as an argument.
 *
 * Epochs here count from 0 (PyTorch's last_epoch): the lr of nnrun's epoch k
 * is nn_sched_lr(z, k - 1). */
#ifndef NN_SCHED_H
#define NN_SCHED_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"

#define NN_SCHED_MAX_MILESTONES 64

typedef enum {
    NN_SCHED_NONE = 0, /* no "lr_schedule": the optimiser's lr throughout */
    NN_SCHED_CONSTANT,
    NN_SCHED_STEP,
    NN_SCHED_MULTISTEP,
    NN_SCHED_EXPONENTIAL,
    NN_SCHED_COSINE,
    NN_SCHED_PLATEAU,
    NN_SCHED_COUNT
} nn_sched_kind;

/* What a plateau schedule or early stopping watches: the epoch's training
 * loss or metric, or the validation set's. */
typedef struct nn_monitor {
    char name[16];   /* "val_loss", "val_accuracy", "val_mae", "loss", "accuracy", "mae" */
    int val;         /* on the validation split */
    int metric;      /* accuracy or mae rather than the loss */
    int maximize;    /* accuracy: higher is better */
} nn_monitor;

typedef struct nn_sched_spec {
    nn_sched_kind kind;
    int step_size;                           /* step */
    double gamma;                            /* step, multistep, exponential */
    int nmilestones;                         /* multistep: strictly increasing epochs */
    int milestones[NN_SCHED_MAX_MILESTONES];
    int t_max;                               /* cosine; 0: epochs - warmup_epochs (at least 1) */
    double eta_min;                          /* cosine */
    nn_monitor monitor;                      /* plateau */
    double factor, threshold, min_lr;        /* plateau */
    int patience, cooldown, threshold_abs;   /* plateau */
    int warmup;                              /* warmup_epochs */
    double warmup_start;                     /* warmup_start_factor */
} nn_sched_spec;

typedef struct nn_stop_spec {
    int on;          /* "early_stopping" given */
    nn_monitor monitor;
    int patience;
    double min_delta;
    int restore;     /* restore_best_weights */
} nn_stop_spec;

/* The table of schedule types: name -> kind (NN_SCHED_NONE when unknown);
 * names in table order for messages ("step, multistep, ..."). */
nn_sched_kind nn_sched_kind_by_name(const char *name);
const char *nn_sched_name(nn_sched_kind k);
const char *const *nn_sched_names(int *n);

/* Fills a monitor from its name for a model whose metric is mae (regress)
 * or accuracy; -1 when the name is not one of the four that apply. */
int nn_monitor_set(nn_monitor *m, const char *name, int regress);

/* A schedule's state through a run. */
typedef struct nn_sched {
    nn_sched_spec s;
    double base;      /* the optimiser's lr (--lr overrides it) */
    int t_max;        /* cosine: resolved */
    /* plateau (ReduceLROnPlateau): */
    double lr;        /* current lr */
    double best;      /* best monitored value so far (+-inf: none yet) */
    int bad;          /* num_bad_epochs */
    int cooldown;     /* cooldown_counter */
} nn_sched;

void nn_sched_init(nn_sched *z, const nn_sched_spec *s, double base_lr, int epochs);
/* The learning rate of epoch `epoch` (from 0). */
double nn_sched_lr(const nn_sched *z, int epoch);
/* The monitored value at the end of epoch `epoch` (from 0): what plateau
 * learns from; the others ignore it. */
void nn_sched_observe(nn_sched *z, int epoch, double value);

/* Early stopping (Keras's EarlyStopping; epochs from 1 here). */
typedef struct nn_stopper {
    nn_stop_spec s;
    double best;      /* +-inf: none yet */
    int best_epoch;   /* 0: none yet */
    int wait;         /* epochs since the last improvement */
} nn_stopper;

void nn_stop_init(nn_stopper *st, const nn_stop_spec *s);
enum { NN_STOP_GO = 0, NN_STOP_IMPROVED = 1, NN_STOP_STOP = 2 };
/* The monitored value at the end of epoch `epoch` (from 1): NN_STOP_IMPROVED
 * (a new best: keep these weights), NN_STOP_STOP (patience exhausted) or
 * NN_STOP_GO. */
int nn_stop_observe(nn_stopper *st, int epoch, double value);

/* Checkpoint state: a JSON object's text (numbers printed to round-trip
 * exactly), and reading it back, each field checked; errors name
 * "header extra.resume.<key>.<field>" in `path`. */
int nn_sched_state_json(const nn_sched *z, char *buf, size_t n);
int nn_sched_state_load(nn_sched *z, const cJSON *o, const char *path, const char *key, nn_err *e);
int nn_stop_state_json(const nn_stopper *st, char *buf, size_t n);
int nn_stop_state_load(nn_stopper *st, const cJSON *o, const char *path, const char *key, int epochs, nn_err *e);

#endif
