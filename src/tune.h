/* tune.h - CLBlast parameters and per-shape GEMM backends tuned for the
 * device (nnrun tune), stored in the cache folder keyed by device and
 * driver, applied whenever a model opens the device. Untuned devices run
 * CLBlast's own defaults and the seam's per-device default backend. */
#ifndef NN_TUNE_H
#define NN_TUNE_H

#include "blas.h"
#include "device.h"

/* Applies stored parameters and per-shape choices, if any (silently ignores
 * a missing or unusable file) to the device's GEMM seam (nn_blas_open
 * first); NNRUN_NO_TUNE=1 skips. */
void nn_tune_apply(nn_dev *d);

typedef struct nn_tune_opts {
    int candidates;      /* parameter sets to try (besides the defaults) */
    int reps;            /* timed repetitions per shape */
    uint64_t seed;
    int json, quiet;
} nn_tune_opts;

/* Times CLBlast's XgemmDirect on the shapes with sampled parameter sets,
 * verifies each against the default parameters' results, stores the fastest
 * (if it beats the defaults); then times nnrun's own GEMM per shape and
 * stores each shape's winner. */
int nn_tune_run(nn_dev *d, const nn_gemm_shape *shapes, size_t nshapes, const nn_tune_opts *o, nn_err *e);

#endif
