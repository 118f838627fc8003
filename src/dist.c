/* dist.c - MPI behind the small interface of dist.h (see there). */
#include "dist.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"
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

static void plan_free(void);

void nn_dist_finalize(void)
{
    plan_free();
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

/* ------------------------------------------------ overlapped buckets */

typedef struct bucket {
    size_t off, n;      /* floats of the gradient buffer */
    size_t blk;         /* floats per rank's block (n padded to size * blk) */
    int trigger;        /* the layer whose backward completes it */
    float *host, *recv; /* size * blk floats each */
    cl_event ev;        /* its read-back */
    MPI_Request a, b;   /* its all-to-all and all-gather */
} bucket;

static struct {
    const nn_net *net;  /* the net the plan is for */
    bucket *b;
    int nb;
    int nread;          /* buckets whose read is enqueued this step */
    float *mem;
} R;

static void plan_free(void)
{
    for (int k = 0; k < R.nb; k++)
        if (R.b[k].ev)
            clReleaseEvent(R.b[k].ev);
    free(R.b);
    free(R.mem);
    memset(&R, 0, sizeof R);
}

/* Buckets from the last layer down: a layer's gradients start at the
 * lowest offset of its trainable parameters, which grows with the layer
 * index (else: one bucket). */
static int plan(const nn_net *net, nn_err *e)
{
    if (R.net == net)
        return 0;
    plan_free();
    long kb = env_int("NNRUN_BUCKET_KB", 512);
    size_t want = kb > 0 ? (size_t)kb * 256 : net->nparams; /* floats */
    size_t *lo = malloc(sizeof(size_t) * (size_t)(net->nl + 1));
    R.b = calloc((size_t)net->nl + 1, sizeof *R.b);
    if (!lo || !R.b) {
        free(lo);
        return nn_oom(e, "for the all-reduce plan");
    }
    int monotonic = 1, lowest = -1;
    size_t prev = 0;
    for (int i = 0; i < net->nl; i++) {
        const nn_layer *L = &net->L[i];
        lo[i] = (size_t)-1;
        for (int p = 0; p < L->nparam; p++)
            if (L->param[p].trainable && L->param[p].off < lo[i])
                lo[i] = L->param[p].off;
        if (lo[i] == (size_t)-1)
            continue;
        if (lowest < 0)
            lowest = i;
        monotonic &= lo[i] >= prev;
        prev = lo[i];
    }
    size_t end = net->nparams;
    for (int i = net->nl - 1; monotonic && i > lowest; i--)
        if (lo[i] != (size_t)-1 && end - lo[i] >= want) {
            R.b[R.nb++] = (bucket){.off = lo[i], .n = end - lo[i], .trigger = i};
            end = lo[i];
        }
    if (end > 0)
        R.b[R.nb++] = (bucket){.off = 0, .n = end, .trigger = lowest};
    free(lo);
    size_t total = 0;
    for (int k = 0; k < R.nb; k++) {
        R.b[k].blk = (R.b[k].n + (size_t)g.size - 1) / (size_t)g.size;
        if (R.b[k].blk > (size_t)1 << 30)
            return nn_fail(e, NN_EDATA, "%zu floats are too many for one all-reduce", R.b[k].n);
        total += 2 * R.b[k].blk * (size_t)g.size;
    }
    if (!(R.mem = calloc(total ? total : 1, sizeof(float))))
        return nn_oom(e, "for the all-reduce buffers (%zu floats)", total);
    float *p = R.mem;
    for (int k = 0; k < R.nb; k++) {
        R.b[k].host = p;
        R.b[k].recv = p + R.b[k].blk * (size_t)g.size;
        p += 2 * R.b[k].blk * (size_t)g.size;
        R.b[k].a = R.b[k].b = MPI_REQUEST_NULL;
    }
    R.net = net;
    return 0;
}

static int read_bucket(nn_net *net, bucket *b, nn_err *e)
{
    R.nread++;
    return nn_buf_read_async(net->dev, net->grads, b->off * sizeof(float), b->n * sizeof(float), b->host, &b->ev, e);
}

int nn_dist_grads_ready(void *ctx, int layer, nn_err *e)
{
    nn_net *net = ctx;
    if (!g.active || g.size == 1 || net->nparams == 0)
        return 0;
    int r = plan(net, e);
    /* buckets are read in order: this layer completes the next one */
    if (!r && R.nread < R.nb && R.b[R.nread].trigger == layer)
        r = read_bucket(net, &R.b[R.nread], e);
    return r;
}

/* Lets MPI progress the collectives under way, briefly. */
static int progress(nn_err *e)
{
    for (int k = 0; k < R.nb; k++) {
        int done, rc = MPI_SUCCESS;
        if (R.b[k].a != MPI_REQUEST_NULL)
            rc = MPI_Test(&R.b[k].a, &done, MPI_STATUS_IGNORE);
        if (rc == MPI_SUCCESS && R.b[k].b != MPI_REQUEST_NULL)
            rc = MPI_Test(&R.b[k].b, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(e, rc, "MPI_Test");
    }
    nanosleep(&(struct timespec){0, 20000}, NULL);
    return 0;
}

static int wait_read(bucket *b, nn_err *e)
{
    int done = 0, r;
    while (!(r = nn_event_done(b->ev, &done, e)) && !done && !(r = progress(e)))
        ;
    clReleaseEvent(b->ev);
    b->ev = NULL;
    return r;
}

static int wait_req(MPI_Request *q, nn_err *e)
{
    int done = 0, rc;
    while ((rc = MPI_Test(q, &done, MPI_STATUS_IGNORE)) == MPI_SUCCESS && !done)
        nanosleep(&(struct timespec){0, 20000}, NULL);
    return rc != MPI_SUCCESS ? mpi_fail(e, rc, "MPI_Test") : 0;
}

/* Block k's sum: the N copies of this rank's block, in rank order. */
static void sum_block(bucket *b)
{
    float *mine = b->host + (size_t)g.rank * b->blk;
    for (size_t i = 0; i < b->blk; i++) {
        float v = b->recv[i];
        for (int k = 1; k < g.size; k++)
            v += b->recv[(size_t)k * b->blk + i];
        mine[i] = v;
    }
}

/* Every rank starts the collectives in the same order: A0, A1, G0, A2,
 * G1, ..., G(K-1) (A: all-to-all, G: all-gather of bucket k). */
int nn_dist_reduce_grads(nn_net *net, nn_err *e)
{
    if (!g.active || g.size == 1 || net->nparams == 0)
        return 0;
    int r = plan(net, e);
    while (!r && R.nread < R.nb) /* no hook ran (an empty share), or NNRUN_BUCKET_KB=0 */
        r = read_bucket(net, &R.b[R.nread], e);
    double t0 = 0, t_bwd = 0;
    for (int k = 0; !r && k <= R.nb; k++) {
        if (k < R.nb) {
            bucket *b = &R.b[k];
            if ((r = wait_read(b, e)))
                break;
            double now = nn_now();
            if (k == 0)
                t0 = now;
            if (k == R.nb - 1)
                t_bwd = now;
            int rc = MPI_Ialltoall(b->host, (int)b->blk, MPI_FLOAT, b->recv, (int)b->blk, MPI_FLOAT, MPI_COMM_WORLD,
                                   &b->a);
            if (rc != MPI_SUCCESS) {
                r = mpi_fail(e, rc, "MPI_Ialltoall");
                break;
            }
        }
        if (k > 0) {
            bucket *p = &R.b[k - 1];
            if ((r = wait_req(&p->a, e)))
                break;
            sum_block(p);
            int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, p->host, (int)p->blk, MPI_FLOAT,
                                    MPI_COMM_WORLD, &p->b);
            if (rc != MPI_SUCCESS)
                r = mpi_fail(e, rc, "MPI_Iallgather");
        }
    }
    for (int k = 0; !r && k < R.nb; k++) {
        bucket *b = &R.b[k];
        if (!(r = wait_req(&b->b, e))) /* non-blocking write: b->host stays as it is until the next step's read */
            r = nn_buf_write(net->dev, net->grads, b->off * sizeof(float), b->n * sizeof(float), b->host, 0, e);
    }
    R.nread = 0;
    double t1 = nn_now();
    g.comm_s += t1 - t0;
    g.exposed_s += t1 - t_bwd;
    g.comm_calls++;
    return r;
}
