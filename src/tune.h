/* tune.h - CLBlast parameters tuned for the device (nnrun tune), stored in
 * the cache folder keyed by device and driver, applied whenever the device
 * is opened. Untuned devices run CLBlast's own defaults. */
#ifndef NN_TUNE_H
#define NN_TUNE_H

#include "blas.h"
#include "device.h"

/* Applies stored parameters, if any (silently ignores a missing or unusable
 * file); records what was applied in d->tuned. NNRUN_NO_TUNE=1 skips. */
void nn_tune_apply(nn_dev *d);

typedef struct nn_tune_opts {
    int candidates;      /* parameter sets to try (besides the defaults) */
    int reps;            /* timed repetitions per shape */
    uint64_t seed;
    int json, quiet;
} nn_tune_opts;

/* Times CLBlast's XgemmDirect on the shapes with sampled parameter sets,
 * verifies each against the default parameters' results, stores the fastest
 * (if it beats the defaults). */
int nn_tune_run(nn_dev *d, const nn_gemm_shape *shapes, size_t nshapes, const nn_tune_opts *o, nn_err *e);

#endif
