/* dist.c - MPI behind the small interface of dist.h (see there). */
#include "dist.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static nn_dist g = {.rank = 0, .size = 1, .local_rank = 0, .local_size = 1};
static float *g_host, *g_recv; /* all-reduce staging: padded gradient copy, the blocks received */
static size_t g_cap;           /* floats in each */

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < 0 || x > 1 << 24) ? dflt : (int)x;
}

int nn_dist_local_rank(void)
{
    return g.active ? g.local_rank : env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
}

static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK");
}

static int mpi_fail(nn_err *e, int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", rc);
    return nn_fail(e, NN_EIO, "rank %d: %s failed: %s", g.rank, what, s);
}

int nn_dist_init(int *argc, char ***argv, nn_err *e)
{
    if (g.active || !launched())
        return 0;
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return nn_fail(e, NN_EIO, "MPI_Init failed (code %d): is this nnrun started by Open MPI's mpirun?", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g.size);
    g.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    g.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    g.active = 1;
    return 0;
}

const nn_dist *nn_dist_get(void)
{
    return &g;
}

void nn_dist_finalize(void)
{
    free(g_host);
    free(g_recv);
    g_host = g_recv = NULL;
    g_cap = 0;
    if (g.active)
        MPI_Finalize();
    g.active = 0;
}

void nn_dist_abort(int code)
{
    if (g.active)
        MPI_Abort(MPI_COMM_WORLD, code);
}

void nn_dist_share_of(size_t m, int r, int n, size_t *lo, int *cnt)
{
    *lo = m * (size_t)r / (size_t)n;
    *cnt = (int)(m * (size_t)(r + 1) / (size_t)n - *lo);
}

void nn_dist_share(size_t m, size_t *lo, int *cnt)
{
    nn_dist_share_of(m, g.rank, g.size, lo, cnt);
}

int nn_dist_max_share(size_t m)
{
    return (int)((m + (size_t)g.size - 1) / (size_t)g.size);
}

/* The sum of v over ranks, in place: block k (of `blk` floats, v padded to
 * size*blk) goes to rank k, which adds the N copies in rank order; the
 * all-gather hands every rank every summed block. */
static int sum_blocks(float *v, float *recv, size_t blk, nn_err *e)
{
    int rc = MPI_Alltoall(v, (int)blk, MPI_FLOAT, recv, (int)blk, MPI_FLOAT, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
        return mpi_fail(e, rc, "MPI_Alltoall");
    float *mine = v + (size_t)g.rank * blk;
    for (size_t i = 0; i < blk; i++) {
        float s = recv[i];
        for (int k = 1; k < g.size; k++)
            s += recv[(size_t)k * blk + i];
        mine[i] = s;
    }
    rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, (int)blk, MPI_FLOAT, MPI_COMM_WORLD);
    return rc != MPI_SUCCESS ? mpi_fail(e, rc, "MPI_Allgather") : 0;
}

static int staging(size_t n, size_t *blk, nn_err *e)
{
    *blk = (n + (size_t)g.size - 1) / (size_t)g.size;
    if (*blk == 0)
        *blk = 1;
    if (*blk > (size_t)1 << 30)
        return nn_fail(e, NN_EDATA, "%zu floats are too many for one all-reduce", n);
    size_t need = *blk * (size_t)g.size;
    if (need > g_cap) {
        float *h = realloc(g_host, need * sizeof(float)), *r = h ? realloc(g_recv, need * sizeof(float)) : NULL;
        if (h)
            g_host = h;
        if (r)
            g_recv = r;
        if (!h || !r)
            return nn_oom(e, "for the all-reduce buffers (%zu floats)", need);
        g_cap = need;
    }
    memset(g_host + n, 0, (need - n) * sizeof(float));
    return 0;
}

int nn_dist_sum(float *v, size_t n, nn_err *e)
{
    if (!g.active || g.size == 1 || n == 0)
        return 0;
    size_t blk;
    int r = staging(n, &blk, e);
    if (r)
        return r;
    memcpy(g_host, v, n * sizeof(float));
    if ((r = sum_blocks(g_host, g_recv, blk, e)))
        return r;
    memcpy(v, g_host, n * sizeof(float));
    return 0;
}

int nn_dist_any(int flag, int *out, nn_err *e)
{
    *out = flag;
    if (!g.active || g.size == 1)
        return 0;
    int rc = MPI_Allreduce(&flag, out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return rc != MPI_SUCCESS ? mpi_fail(e, rc, "MPI_Allreduce") : 0;
}

int nn_dist_allreduce_grads(nn_dev *d, cl_mem grads, size_t n, nn_err *e)
{
    if (!g.active || g.size == 1 || n == 0)
        return 0;
    double t0 = nn_now();
    size_t blk;
    int r = staging(n, &blk, e);
    if (!r)
        r = nn_buf_read(d, grads, 0, n * sizeof(float), g_host, e); /* waits for the backward pass */
    double t1 = nn_now();
    if (!r)
        r = sum_blocks(g_host, g_recv, blk, e);
    /* non-blocking: the optimiser is enqueued behind it; g_host is next
     * touched after the next step's blocking read */
    if (!r)
        r = nn_buf_write(d, grads, 0, n * sizeof(float), g_host, 0, e);
    g.comm_s += nn_now() - t1;
    g.comm_calls++;
    (void)t0;
    return r;
}

int nn_dist_gather_text(const char *mine, char *lines, size_t len, nn_err *e)
{
    if (!g.active || g.size == 1) {
        if (lines)
            snprintf(lines, len, "%s", mine);
        return 0;
    }
    char *buf = calloc(1, len);
    if (!buf)
        return nn_oom(e, "for %zu bytes", len);
    snprintf(buf, len, "%s", mine);
    int rc = MPI_Gather(buf, (int)len, MPI_CHAR, lines, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    free(buf);
    return rc != MPI_SUCCESS ? mpi_fail(e, rc, "MPI_Gather") : 0;
}

int nn_dist_test_fail(unsigned long long step, nn_err *e)
{
    int who = env_int("NNRUN_TEST_FAIL_RANK", -1);
    if (who < 0 || who != g.rank || (unsigned long long)env_int("NNRUN_TEST_FAIL_STEP", 0) != step)
        return 0;
    return nn_fail(e, NN_EDATA, "NNRUN_TEST_FAIL_RANK=%d: failing at step %llu on purpose (a test hook)", who, step);
}

int nn_dist_check_same(nn_dev *d, cl_mem buf, size_t n, nn_err *e)
{
    if (!g.active || g.size == 1 || n == 0 || env_int("NNRUN_TEST_CHECK_SYNC", 0) != 1)
        return 0;
    unsigned char *h = malloc(n * sizeof(float));
    if (!h)
        return nn_oom(e, "for %zu floats", n);
    int r = nn_buf_read(d, buf, 0, n * sizeof(float), h, e);
    unsigned long long x = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; !r && i < n * sizeof(float); i++)
        x = (x ^ h[i]) * 1099511628211ULL;
    free(h);
    unsigned long long *all = r ? NULL : malloc((size_t)g.size * sizeof *all);
    if (!r && !all)
        return nn_oom(e, "for %d hashes", g.size);
    int rc = r ? MPI_SUCCESS : MPI_Allgather(&x, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    if (!r && rc != MPI_SUCCESS)
        r = mpi_fail(e, rc, "MPI_Allgather");
    for (int k = 1; !r && k < g.size; k++)
        if (all[k] != all[0])
            r = nn_fail(e, NN_ESOFTWARE, "NNRUN_TEST_CHECK_SYNC: rank %d's parameters differ from rank 0's", k);
    free(all);
    return r;
}
