/* tutil.h - the helpers the unit tests share, mostly the device tests
 * (test_conv.c, test_layers.c, test_norm.c, test_rnn.c, test_seq.c): random
 * host vectors, host doubles <-> device floats, error measures, finite
 * differences, nets built from JSON through the real path, and a small
 * training loop.
 *
 * Host values are doubles; the device holds floats. Every random value is
 * rounded to float when drawn, so the references see exactly what the device
 * sees. Allocations abort on failure and come back zeroed. */
#ifndef NN_TEST_TUTIL_H
#define NN_TEST_TUTIL_H

#include <stddef.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "net.h"
#include "ref.h"
#include "spec.h"

/* What buffers the op under test may not write are filled with. */
#define SENT 12345.0f

/* The first layer of most test nets: a placeholder (dropout of rate 0) whose
 * output buffer the test writes directly. It gives the layer under test a
 * real x and a real dx (the network input has no gradient buffer). */
#define PLACEHOLDER "{\"type\":\"dropout\",\"rate\":0},"

/* Runs an nnrun call that fills E, the including file's `static nn_err E`;
 * fails the test with its message. */
#define TRY(expr)                                                                       \
    do {                                                                                \
        memset(&E, 0, sizeof E);                                                        \
        int rc_ = (expr);                                                               \
        CHECK(rc_ == 0, "%s -> %d: %s", #expr, rc_, E.msg[0] ? E.msg : "(no message)"); \
    } while (0)

/* nn_dev *d = the shared test device; fails the test when there is none. */
#define NEED_DEV(d)            \
    nn_dev *d = nn_test_dev(); \
    CHECK(d, "cannot open an OpenCL device: %s", nn_test_dev_msg())

/* -------------------------------------------------------------- host data */

/* calloc that never returns NULL (aborts instead); 0 bytes gives a valid pointer. */
void *tu_xmalloc(size_t bytes);

/* n values uniform in [lo, hi), each rounded to float. */
double *tu_rnd_vec(ref_rng *r, size_t n, double lo, double hi);
/* The same, redrawing every value with |v| <= min_abs: min_abs 0 only keeps
 * exact zeros out, 1e-3 keeps every value at least 1e-3 away from 0. */
double *tu_rnd_vec_nz(ref_rng *r, size_t n, double lo, double hi, double min_abs);
/* A copy of v[0..n) (zeros when v is NULL). */
double *tu_dup_vec(const double *v, size_t n);
/* Floats f[0..n) as doubles (a malloc'd copy). */
double *tu_f2d(const float *f, size_t n);
/* Writes data[0..len) to path (created or truncated); 0 on success, -1 on any error. */
int tu_write_file(const char *path, const void *data, size_t len);

/* ---------------------------------------------------------------- measures */

/* max |v| over n values. */
double tu_max_abs(const double *v, size_t n);
/* sum a[i] b[i]. */
double tu_dot(const double *a, const double *b, size_t n);
/* max |a - b| / max(1e-6, max |b|); b is the reference. A NaN anywhere in
 * a - b gives INFINITY, so that no tolerance accepts it. */
double tu_rel_err(const double *a, const double *b, size_t n);
/* tu_rel_err of (device floats f - base) against ref; base may be NULL (0). */
double tu_rel_err_f(const float *f, const double *base, const double *ref, size_t n);

/* Finite differences: f(ctx) is a scalar function of the values v[0..n) (f
 * reads them through ctx); ana holds its analytic gradient. Returns
 * max |numerical - ana| / max(floor, max |ana|), the numerical gradient by
 * central differences with step 1e-5 (v is restored); NaN gives INFINITY. */
typedef double (*tu_fd_fn)(void *ctx);
double tu_fd_rel_err(tu_fd_fn f, void *ctx, double *v, size_t n, const double *ana, double floor);

/* ------------------------------------------------------- device buffers */

/* Host doubles v[0..n) -> device floats [off, off + n) of m (float offsets). */
int tu_upload(cl_mem m, size_t off, const double *v, size_t n, nn_err *e);
/* Device floats [off, off + n) of m -> host doubles v[0..n). */
int tu_download(cl_mem m, size_t off, double *v, size_t n, nn_err *e);
/* The first nf floats of m in a malloc'd array; NULL on error. */
float *tu_read_all(cl_mem m, size_t nf, nn_err *e);
/* Float offset of a sub-buffer in its parent. */
size_t tu_sub_off(cl_mem m);
/* First index in [0, n) where floats [off, off + n) of m no longer hold SENT;
 * -1 when all do, -2 when they cannot be read. */
long tu_sentinel_bad(cl_mem m, size_t off, size_t n, nn_err *e);
/* First index in [0, nf) outside [off, off + len) where a and b differ; -1 if none. */
long tu_changed_outside(const float *a, const float *b, size_t nf, size_t off, size_t len);

/* ------------------------------------------------------------------ nets */

/* A net built from JSON through the real path. */
typedef struct tu_net {
    nn_spec spec;
    nn_net net;
} tu_net;

/* nn_spec_parse -> nn_net_build -> (when max_batch > 0) nn_net_alloc on the
 * shared device. Free with tu_net_free whatever it returns. */
int tu_net_make(tu_net *t, const char *json, int max_batch, int training, nn_err *e);
/* The same with the data's vocabulary size (vocab > 0: "vocab" in layer keys). */
int tu_net_make_vocab(tu_net *t, const char *json, int max_batch, int training, int vocab, nn_err *e);
void tu_net_free(tu_net *t);
/* Parses and builds (no device); returns the error code, e the message. */
int tu_build_only(const char *json, int vocab, nn_err *e);
/* A test step: parsing and building json gives code 65 (NN_EDATA) with f1
 * and (unless NULL) f2 in the message. NN_TEST_VERBOSE=1 prints the message. */
int tu_expect_error(const char *json, const char *f1, const char *f2);

/* "d0,d1,..." of shape[0..nd) into buf. */
void tu_shape_json(char *buf, size_t n, const int *shape, int nd);
/* The product of shape[0..nd). */
size_t tu_prod(const int *shape, int nd);
/* The "activation" name of an nn_act code (linear .. elu); "?" if unknown. */
const char *tu_act_str(int act);

/* ---------------------------------------------------------------- reports */

/* Records err as the largest error seen for op (NaN wins); with
 * NN_TEST_VERBOSE=1 the table is printed to stderr at exit. */
void tu_note_err(const char *op, double err);

/* ----------------------------------------------------- training, timings */

/* Trains t on d (loss and optimizer from its JSON, parameters already set)
 * for `steps` steps on one batch: x (nx host values, the net input of n
 * samples) and n integer labels; every step forward, loss gradient, backward
 * and an optimizer step (run seed 9, step s). loss0 / loss1 get the mean loss
 * of an evaluation forward (no dropout) before the first and after the last
 * step, acc1 the mean metric (accuracy) after the last. */
int tu_train(nn_dev *d, tu_net *t, const double *x, size_t nx, const int *lab, int n, int steps, double *loss0,
             double *loss1, double *acc1, nn_err *e);

/* A test step for NN_TEST_BENCH runs: builds json for `batch` samples and
 * prints the mean forward and backward times of layer li over `reps` runs
 * after `warm` unmeasured ones. */
int tu_time_layer(const char *desc, const char *json, int li, int batch, int warm, int reps);

#endif
