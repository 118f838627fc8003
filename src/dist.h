/* dist.h - data-parallel training over MPI (Open MPI's mpirun). The one
 * module that knows about MPI: rank, size and local rank; the collectives
 * training needs. A plain `nnrun` (no launcher in the environment) never
 * initialises MPI, and every call below is then a cheap no-op for one
 * process, so callers need no #ifdefs and no "if distributed" branches.
 *
 * Determinism: every sum is computed in one fixed order (rank 0, 1, ...,
 * N-1) by exactly one rank and then copied to all (all-to-all of blocks, a
 * local sum, all-gather), so every rank holds bit-identical results and a
 * rerun with the same N repeats them bit for bit. */
#ifndef NN_DIST_H
#define NN_DIST_H

#include <stddef.h>

#include "device.h"
#include "err.h"

typedef struct nn_dist {
    int active;               /* 1 when launched by mpirun and MPI is initialised */
    int rank, size;           /* in MPI_COMM_WORLD; 0 and 1 for a plain run */
    int local_rank, local_size; /* on this host (OMPI_COMM_WORLD_LOCAL_*) */
    double comm_s;            /* seconds spent in gradient all-reduces (first message to last) */
    double exposed_s;         /* the part of comm_s after the backward pass had finished */
    long comm_calls;
} nn_dist;

/* Initialises MPI when the environment says mpirun started this process
 * (OMPI_COMM_WORLD_SIZE or PMIX_RANK set); otherwise does nothing. */
int nn_dist_init(int *argc, char ***argv, nn_err *e);
const nn_dist *nn_dist_get(void);
/* The local rank from the launcher's environment (0 without one), usable
 * before nn_dist_init: device selection. */
int nn_dist_local_rank(void);
/* Ends MPI normally (all ranks). */
void nn_dist_finalize(void);
/* Ends the whole job with `code` (MPI_Abort): from main only, after this
 * rank's error message is printed. Returns when MPI is not active. */
void nn_dist_abort(int code);

/* Rank r of N's share of a global batch of m samples: [*lo, *lo + *cnt) =
 * [m*r/N, m*(r+1)/N) (possibly empty; the shares tile [0, m), their sizes
 * differ by at most one). nn_dist_share: this rank's. */
void nn_dist_share_of(size_t m, int r, int n, size_t *lo, int *cnt);
void nn_dist_share(size_t m, size_t *lo, int *cnt);
/* The most samples any rank takes of a global batch of m. */
int nn_dist_max_share(size_t m);

/* In-place sum of n floats over all ranks, bit-identical everywhere. */
int nn_dist_sum(float *v, size_t n, nn_err *e);
/* Logical OR of a flag over all ranks (agreeing to stop at the same step). */
int nn_dist_any(int flag, int *out, nn_err *e);
/* The overlapped all-reduce of a training net's gradient buffer, in
 * buckets of about NNRUN_BUCKET_KB kilobytes (default 512; 0: one piece
 * after the whole backward pass) of consecutive layers' gradients. Pass
 * nn_dist_grads_ready as the backward hook (ctx: the net): once the last
 * layers' gradients fill a bucket, it enqueues the bucket's read-back while
 * earlier layers still compute; nn_dist_reduce_grads, after the backward
 * pass is enqueued, all-reduces the buckets as their reads complete (each
 * element summed in rank order by one rank, as nn_dist_sum does, so the
 * bucket size never changes a result) and writes them back. Time spent is
 * added to comm_s, the part after the backward pass ended to exposed_s.
 * No-ops for one process. */
int nn_dist_grads_ready(void *net, int layer, nn_err *e);
struct nn_net;
int nn_dist_reduce_grads(struct nn_net *net, nn_err *e);

/* Gathers one line of text per rank on rank 0: lines[r] (each of `len`
 * bytes) filled on rank 0 only; other ranks pass lines = NULL. */
int nn_dist_gather_text(const char *mine, char *lines, size_t len, nn_err *e);

/* Test hook: NNRUN_TEST_FAIL_RANK=R (and NNRUN_TEST_FAIL_STEP=S, default 0)
 * makes rank R fail with exit code 65 at training step S, so the tests can
 * check that one rank's error ends the whole job. */
int nn_dist_test_fail(unsigned long long step, nn_err *e);

/* Test hook: with NNRUN_TEST_CHECK_SYNC=1 under mpirun, reads the n floats
 * of `buf` (the parameters, after a step) and fails (70) unless every rank
 * holds the same bytes (a 64-bit hash of them, compared on all ranks). */
int nn_dist_check_same(nn_dev *d, cl_mem buf, size_t n, nn_err *e);

#endif
