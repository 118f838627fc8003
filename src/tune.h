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

/* The tune files' parsers, device-independent (nn_tune_apply; fuzzing).
 * CLBlast parameters ("XGEMM_MIN_INDIRECT_SIZE T KERNEL NAME V ..."): 0 when
 * they parse and suit a device with max_wg work-items per group and
 * local_mem bytes of local memory (0: unknown), with their description in
 * out; -1 with the reason in out. */
int nn_tune_check_params(const char *text, size_t max_wg, unsigned long long local_mem, char *out, size_t n);
/* Per-shape choices (a magic line, then "ta tb m n k batch backend kc
 * per_unit" lines): 0 with *n entries (at most max), -1 when any line is bad. */
int nn_tune_parse_choices(const char *text, nn_gemm_shape *sh, int *be, nn_native_knobs *kn, size_t max, size_t *n);

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
