/* blas.c - the GEMM seam (see blas.h): split-K and shape recording above a
 * table of implementations, one policy function (gemm_choose) between. */
#include "blas.h"

#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHAPE_CHOICES 64

/* Parameters of one native launch (cl/gemm.cl). */
typedef struct native_plan {
    int nr;              /* register tile width: 16 (AVX2) or 32 (AVX-512) */
    int mb, nb;          /* C block of one work-item (mb a multiple of 6, nb of nr) */
    int kc, nc;          /* K block, B sub-block width */
    int nblk_m, nblk_n;  /* blocks per matrix */
} native_plan;

struct nn_blas {
    nn_gemm_backend forced;      /* NNRUN_GEMM or the caller; NN_GEMM_AUTO: the policy decides */
    nn_gemm_backend dflt;        /* the policy's default for this device */
    int splitk_off;              /* NNRUN_NO_SPLITK=1 */
    cl_mem splitk;               /* split-K partial sums (grown on demand) */
    size_t splitk_bytes;
    long splitk_count;
    /* native kernel: device facts and the knobs the cost model uses */
    int native_ok;               /* the local memory holds a block of mb_max rows' panels */
    int nr, mb_max;
    nn_native_knobs knobs;       /* where no shape choice applies */
    cl_ulong local_mem;
    /* recording (nnrun tune, bench) */
    nn_gemm_shape *rec;
    size_t nrec, rec_cap;
    int recording;
    /* per-shape winners from nnrun tune */
    nn_gemm_shape choice_shape[MAX_SHAPE_CHOICES];
    nn_gemm_backend choice[MAX_SHAPE_CHOICES];
    nn_native_knobs choice_knobs[MAX_SHAPE_CHOICES];
    int nchoices;
    int im2col_off;              /* NNRUN_GEMM_NATIVE="im=0": convolutions write their col */
    char tuned[256];             /* CLBlast parameters applied by tune.c, "" if none */
    char describe[512];
};

/* Everything one GEMM call needs, batched or not. */
typedef struct gemm_args {
    int ta, tb;
    size_t m, n, k, batch;
    float alpha, beta;
    cl_mem a, b, c;
    size_t aoff, lda, astride, boff, ldb, bstride, coff, ldc, cstride;
    cl_mem bias;  /* the epilogue (nn_gemm_bias_act; batch 1): C = act(C + bias[col]) */
    int epi;      /* 0: none; else bit 0: bias, the rest: the activation */
    const nn_im2col *bim; /* B is this im2col matrix (native only; ta = 0); b is unused */
} gemm_args;

/* ------------------------------------------------------------------ CLBlast */

static int blas_fail(nn_err *e, CLBlastStatusCode st, const char *what, size_t m, size_t n, size_t k)
{
    if (st == CLBlastTempBufferAllocFailure || st == CLBlastOpenCLOutOfResources ||
        st == CLBlastInsufficientMemoryTemp)
        return nn_fail(e, NN_ENODEV, "CLBlast %s %zux%zux%zu: the device ran out of memory (status %d): "
                       "try a smaller --batch-size", what, m, n, k, (int)st);
    return nn_fail(e, NN_ESOFTWARE, "CLBlast %s %zux%zux%zu failed with status %d", what, m, n, k, (int)st);
}

static int clblast_usable(const nn_dev *d) { return 1; }

static int clblast_gemm(nn_dev *d, const gemm_args *g, nn_err *e)
{
    CLBlastTranspose ta = g->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = g->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch;
    CLBlastStatusCode st;
    if (g->batch == 1)
        st = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->aoff, g->lda, g->b,
                          g->boff, g->ldb, g->beta, g->c, g->coff, g->ldc, &d->q, nn_prof_slot(d, "GEMM", flops));
    else
        st = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->aoff,
                                        g->lda, g->astride, g->b, g->boff, g->ldb, g->bstride, g->beta, g->c,
                                        g->coff, g->ldc, g->cstride, g->batch, &d->q,
                                        nn_prof_slot(d, "batched GEMM", flops));
    return st == CLBlastSuccess ? 0 : blas_fail(e, st, g->batch == 1 ? "GEMM" : "batched GEMM", g->m, g->n, g->k);
}

/* ------------------------------------------------------------------- native */

#define NATIVE_MR 6
#define NATIVE_KC 256        /* K block: op(A) panels of a block stay in L2, a B micro-panel in L1 */
#define NATIVE_MB_MAX 96     /* rows of C per work-item at most (16 micro-panels) */
#define NATIVE_NC_PANELS 4   /* B sub-block: 4 micro-panels (64 or 128 columns) */
_Static_assert(32 * NATIVE_NC_PANELS <= 128, "a B sub-block must fit cl/gemm.cl's GEMM_IM_MAXC tables");
#define NATIVE_PER_UNIT 2    /* work-items per compute unit the cost model aims for (2 beat 3 and 4;
                                1 won some shapes, lost others: see native_plan_for) */
#define NATIVE_ONE_PER_UNIT 0.92 /* ... 1 when the model predicts at most this share of the time */

static size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

static size_t native_local_bytes(int nr, int mb, int kc)
{
    size_t mbr = cdiv((size_t)mb, NATIVE_MR) * NATIVE_MR;
    return ((size_t)mbr * kc + (size_t)kc * nr * NATIVE_NC_PANELS) * sizeof(float);
}

/* The cost model. C is cut into nbm x nbn blocks of whole micro-tiles, one
 * per work-item. Each block packs its rows of op(A) and its columns of
 * op(B) once per K block, so the packing moves K (N nbm + M nbn) floats in
 * all: cutting N costs M per cut, cutting M costs N. The model picks, among
 * the cuts that give at least per_unit blocks per compute unit (over the
 * batch; fewer when the matrix has fewer micro-tiles) and keep a block's
 * rows within mb_max, the one with the least time:
 *   (padded flops / balance + PACK_FLOPS x packed floats) / units,
 * where balance = blocks / (units x rounds) is the share of the cores busy
 * and a packed float costs about as much as PACK_FLOPS flops. */
#define PACK_FLOPS 32.0

/* The cut with the least modelled time among those giving at least
 * per_unit blocks per compute unit; its time. */
static double native_cut(const struct nn_blas *b, size_t units, const gemm_args *g, size_t per_unit, size_t *nbm_out,
                         size_t *nbn_out)
{
    int nr = b->nr;
    size_t tm = cdiv(g->m, NATIVE_MR), tn = cdiv(g->n, (size_t)nr);
    size_t want = per_unit * units, most = tm * tn * g->batch;
    if (want > most)
        want = most;
    size_t min_bm = cdiv(tm, (size_t)b->mb_max / NATIVE_MR);
    double best = -1;
    size_t nbm = min_bm, nbn = 1;
    for (size_t im = min_bm; im <= tm; im++) {
        size_t bm = cdiv(tm, im);
        if (im > min_bm && cdiv(tm, im - 1) == bm)
            continue; /* the same block height as a smaller cut */
        for (size_t in = 1; in <= tn; in++) {
            size_t bn = cdiv(tn, in);
            if (in > 1 && cdiv(tn, in - 1) == bn)
                continue;
            size_t count = cdiv(tm, bm) * cdiv(tn, bn) * g->batch;
            if (count < want)
                continue;
            size_t rounds = cdiv(count, units);
            double balance = (double)count / (double)(units * rounds);
            double flops = 2.0 * (double)(bm * NATIVE_MR) * (double)(bn * (size_t)nr) * (double)g->k * (double)count;
            double packed = (double)g->k * (double)g->batch *
                            ((double)g->n * (double)cdiv(tm, bm) + (double)g->m * (double)cdiv(tn, bn));
            double t = flops / balance + PACK_FLOPS * packed;
            if (best < 0 || t < best) {
                best = t;
                nbm = cdiv(tm, bm);
                nbn = cdiv(tn, bn);
            }
            if (count >= want * 4)
                break; /* finer cuts of N only add packing */
        }
    }
    *nbm_out = nbm;
    *nbn_out = nbn;
    return best;
}

/* kn.per_unit 0 (the default): NATIVE_PER_UNIT blocks per compute unit,
 * which leave a core's share to the other when the machine is busy, or one
 * per unit where the model says that saves enough packing: long products
 * with few columns, such as LeNet's conv2 weight gradient (64x800x12544,
 * B^T: 1 x 2 blocks instead of 1 x 4; alternating processes, 6 pairs:
 * 135.7 -> 149.5 GFLOP/s), not the W1 shapes (0.96-1.00 of the time). */
static void native_plan_for(const struct nn_blas *b, const nn_dev *d, const gemm_args *g, nn_native_knobs kn,
                            native_plan *p)
{
    int nr = b->nr;
    size_t units = d->units ? d->units : 1, nbm, nbn;
    if (kn.per_unit) {
        native_cut(b, units, g, (size_t)kn.per_unit, &nbm, &nbn);
    } else {
        double t = native_cut(b, units, g, NATIVE_PER_UNIT, &nbm, &nbn);
        size_t m1, n1;
        if (native_cut(b, units, g, 1, &m1, &n1) < NATIVE_ONE_PER_UNIT * t)
            nbm = m1, nbn = n1;
    }
    size_t tm = cdiv(g->m, NATIVE_MR), tn = cdiv(g->n, (size_t)nr);
    size_t bm = cdiv(tm, nbm), bn = cdiv(tn, nbn);
    p->nr = nr;
    p->mb = (int)(bm * NATIVE_MR);
    p->nb = (int)(bn * (size_t)nr);
    p->nc = nr * NATIVE_NC_PANELS;
    /* equal K blocks of at most kc, a multiple of 8 */
    size_t nk = cdiv(g->k ? g->k : 1, (size_t)kn.kc), kc = cdiv(cdiv(g->k ? g->k : 1, nk), 8) * 8;
    p->kc = (int)kc;
    p->nblk_m = (int)cdiv(g->m, (size_t)p->mb);
    p->nblk_n = (int)cdiv(g->n, (size_t)p->nb);
}

/* The distances between x's samples and channels (nn_im2col's xs, xc, or
 * NCHW's), and the floats x spans: one past its last element. */
static size_t im2col_extent(const nn_im2col *v, size_t *xs, size_t *xc)
{
    size_t hw = (size_t)v->H * (size_t)v->W;
    *xc = v->xc ? (size_t)v->xc : hw;
    *xs = v->xs ? (size_t)v->xs : (size_t)v->C * hw;
    return (size_t)(v->n - 1) * *xs + (size_t)(v->C - 1) * *xc + hw;
}

static int native_usable(const nn_dev *d);
static const nn_native_knobs *knobs_for(const struct nn_blas *b, const gemm_args *g);

static int native_gemm(nn_dev *d, const gemm_args *g, nn_err *e)
{
    static const char *const names[2][2][2] = {
        {{"gemm_cpu16_nn", "gemm_cpu16_nt"}, {"gemm_cpu16_tn", "gemm_cpu16_tt"}},
        {{"gemm_cpu32_nn", "gemm_cpu32_nt"}, {"gemm_cpu32_tn", "gemm_cpu32_tt"}},
    };
    static const char *const names_im[2][2] = {{"gemm_cpu16_nn_im", "gemm_cpu16_nt_im"},
                                               {"gemm_cpu32_nn_im", "gemm_cpu32_nt_im"}};
    native_plan p;
    native_plan_for(d->blas, d, g, *knobs_for(d->blas, g), &p);
    size_t abytes = cdiv((size_t)p.mb, NATIVE_MR) * NATIVE_MR * (size_t)p.kc * sizeof(float);
    size_t bbytes = (size_t)p.kc * (size_t)p.nc * sizeof(float);
    double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch;
    if (g->bim) {
        const nn_im2col *v = g->bim;
        size_t xs, xc, xlen = im2col_extent(v, &xs, &xc); /* each fits an int (check_args) */
        cl_int16 geo = {{v->C, v->H, v->W, v->kh, v->kw, v->sh, v->sw, v->ph, v->pw, v->dh, v->dw, v->OH, v->OW,
                          (cl_int)xlen, (cl_int)xs, (cl_int)xc}};
        return nn_launch2f(d, names_im[p.nr == 32][g->tb], (size_t)p.nblk_m * (size_t)p.nblk_n, g->batch, 1, 1,
                           flops, e, 27, KINT(g->m), KINT(g->n), KINT(g->k), KFLT(g->alpha), KMEM(g->a),
                           KULONG(g->aoff), KINT(g->lda), KULONG(g->astride), KMEM(v->x), KULONG(g->boff),
                           KINT(g->ldb), KULONG(g->bstride), KFLT(g->beta), KMEM(g->c), KULONG(g->coff),
                           KINT(g->ldc), KULONG(g->cstride), KINT(p.mb), KINT(p.nb), KINT(p.kc), KINT(p.nc),
                           KINT(p.nblk_n), KLOCAL(abytes), KLOCAL(bbytes), KMEM(g->bias ? g->bias : g->c),
                           KINT(g->epi), ((nn_karg){sizeof geo, &geo}));
    }
    return nn_launch2f(d, names[p.nr == 32][g->ta][g->tb], (size_t)p.nblk_m * (size_t)p.nblk_n, g->batch, 1, 1,
                       flops, e, 26, KINT(g->m), KINT(g->n), KINT(g->k), KFLT(g->alpha), KMEM(g->a),
                       KULONG(g->aoff), KINT(g->lda), KULONG(g->astride), KMEM(g->b), KULONG(g->boff), KINT(g->ldb),
                       KULONG(g->bstride), KFLT(g->beta), KMEM(g->c), KULONG(g->coff), KINT(g->ldc),
                       KULONG(g->cstride), KINT(p.mb), KINT(p.nb), KINT(p.kc), KINT(p.nc), KINT(p.nblk_n),
                       KLOCAL(abytes), KLOCAL(bbytes), KMEM(g->bias ? g->bias : g->c), KINT(g->epi));
}

/* ------------------------------------------------------- the table, policy */

typedef struct gemm_impl {
    const char *name, *what;
    int (*usable)(const nn_dev *d);
    int (*gemm)(nn_dev *d, const gemm_args *g, nn_err *e);
    int epilogue; /* gemm applies g->epi itself; else dispatch adds a kernel */
} gemm_impl;

static const gemm_impl impls[NN_GEMM_NBACKENDS] = {
    [NN_GEMM_CLBLAST] = {"clblast", "CLBlast", clblast_usable, clblast_gemm, 0},
    [NN_GEMM_NATIVE] = {"native", "nnrun's CPU-shaped OpenCL GEMM", native_usable, native_gemm, 1},
};

static int native_usable(const nn_dev *d) { return d->blas && d->blas->native_ok; }

const char *nn_blas_backend_name(nn_gemm_backend b)
{
    return b >= 0 && b < NN_GEMM_NBACKENDS ? impls[b].name : "auto";
}

int nn_blas_backend_parse(const char *s)
{
    if (!strcmp(s, "auto"))
        return NN_GEMM_AUTO;
    for (int i = 0; i < NN_GEMM_NBACKENDS; i++)
        if (!strcmp(s, impls[i].name))
            return i;
    return -2;
}

int nn_blas_usable(nn_dev *d, nn_gemm_backend b) { return b >= 0 && b < NN_GEMM_NBACKENDS && impls[b].usable(d); }

/* The one place that decides which implementation runs a GEMM: a forced
 * backend (NNRUN_GEMM, --gemm), else the winner nnrun tune measured for this
 * shape on this device, else the device type's default: the CPU-shaped
 * kernel on CPU devices (8-13x CLBlast's GPU-shaped kernels there), CLBlast
 * on GPUs and accelerators. */
static int tuned_choice(const struct nn_blas *b, const gemm_args *g)
{
    for (int i = 0; i < b->nchoices; i++) {
        const nn_gemm_shape *s = &b->choice_shape[i];
        if (s->ta == g->ta && s->tb == g->tb && s->m == g->m && s->n == g->n && s->k == g->k && s->batch == g->batch)
            return i;
    }
    return -1;
}

static nn_gemm_backend gemm_choose(const struct nn_blas *b, const gemm_args *g)
{
    if (g->bim) /* only the native kernel reads an implicit operand (nn_blas_im2col_ok) */
        return NN_GEMM_NATIVE;
    if (b->forced != NN_GEMM_AUTO)
        return b->forced;
    int i = tuned_choice(b, g);
    return i >= 0 ? b->choice[i] : b->dflt;
}

/* The native kernel's knobs for a shape: tuned ones where tune measured it. */
static const nn_native_knobs *knobs_for(const struct nn_blas *b, const gemm_args *g)
{
    int i = tuned_choice(b, g);
    return i >= 0 && b->choice[i] == NN_GEMM_NATIVE ? &b->choice_knobs[i] : &b->knobs;
}

nn_gemm_backend nn_blas_choice(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, size_t batch)
{
    gemm_args g = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = batch};
    return gemm_choose(d->blas, &g);
}

int nn_blas_open(nn_dev *d, nn_gemm_backend force, nn_err *e)
{
    struct nn_blas *b = calloc(1, sizeof *b);
    if (!b)
        return nn_fail(e, NN_ENOMEM, "out of memory for the BLAS state");
    const char *ns = getenv("NNRUN_NO_SPLITK");
    b->splitk_off = ns && *ns && strcmp(ns, "0") != 0;
    cl_uint vw = 8;
    if (clGetDeviceInfo(d->device, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof vw, &vw, NULL) != CL_SUCCESS)
        vw = 8;
    if (clGetDeviceInfo(d->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof b->local_mem, &b->local_mem, NULL) != CL_SUCCESS)
        b->local_mem = 0;
    b->nr = vw >= 16 ? 32 : 16;
    b->knobs = (nn_native_knobs){NATIVE_KC, 0}; /* per_unit 0: native_plan_for decides */
    b->mb_max = NATIVE_MB_MAX;
    /* experiments and tuning: NNRUN_GEMM_NATIVE="nr=16,kc=128,mb=48,per_unit=8" */
    const char *knobs = getenv("NNRUN_GEMM_NATIVE");
    if (knobs) {
        int v;
        const char *p;
        if ((p = strstr(knobs, "nr=")) && sscanf(p + 3, "%d", &v) == 1 && (v == 16 || v == 32))
            b->nr = v;
        if ((p = strstr(knobs, "kc=")) && sscanf(p + 3, "%d", &v) == 1 && v >= 8 && v <= 4096)
            b->knobs.kc = v / 8 * 8; /* the plan's K blocks are multiples of 8 */
        if ((p = strstr(knobs, "mb=")) && sscanf(p + 3, "%d", &v) == 1 && v >= 6 && v <= 1024)
            b->mb_max = v / NATIVE_MR * NATIVE_MR;
        if ((p = strstr(knobs, "per_unit=")) && sscanf(p + 9, "%d", &v) == 1 && v >= 1 && v <= 256)
            b->knobs.per_unit = v;
        if ((p = strstr(knobs, "im=")) && sscanf(p + 3, "%d", &v) == 1)
            b->im2col_off = !v;
    }
    /* shrink the K block until a block's panels fit the local memory */
    while (b->knobs.kc > 32 && native_local_bytes(b->nr, b->mb_max, b->knobs.kc) > b->local_mem)
        b->knobs.kc /= 2;
    b->native_ok = native_local_bytes(b->nr, b->mb_max, b->knobs.kc) <= b->local_mem;
    b->dflt = (d->type & CL_DEVICE_TYPE_CPU) && b->native_ok ? NN_GEMM_NATIVE : NN_GEMM_CLBLAST;
    b->forced = NN_GEMM_AUTO;
    if (force == NN_GEMM_AUTO) {
        const char *env = getenv("NNRUN_GEMM");
        if (env && *env) {
            int v = nn_blas_backend_parse(env);
            if (v == -2) {
                free(b);
                return nn_fail(e, NN_EUSAGE, "NNRUN_GEMM=%s: expected clblast, native or auto", env);
            }
            force = (nn_gemm_backend)v;
        }
    }
    d->blas = b;
    if (force != NN_GEMM_AUTO) {
        if (!impls[force].usable(d)) {
            unsigned long long kib = (unsigned long long)(b->local_mem / 1024);
            d->blas = NULL;
            free(b);
            return nn_fail(e, NN_ENODEV, "the %s GEMM cannot run on %s (%llu KiB of local memory)", impls[force].name,
                           d->name, kib);
        }
        b->forced = force;
    }
    return 0;
}

void nn_blas_close(nn_dev *d)
{
    struct nn_blas *b = d->blas;
    if (!b)
        return;
    if (b->splitk)
        clReleaseMemObject(b->splitk);
    free(b);
    d->blas = NULL;
}

int nn_blas_im2col_ok(nn_dev *d)
{
    const struct nn_blas *b = d->blas;
    nn_gemm_backend w = b ? (b->forced != NN_GEMM_AUTO ? b->forced : b->dflt) : NN_GEMM_CLBLAST;
    return w == NN_GEMM_NATIVE && b->native_ok && !b->im2col_off;
}

const char *nn_blas_describe(nn_dev *d)
{
    struct nn_blas *b = d->blas;
    if (!b)
        return "none";
    nn_gemm_backend w = b->forced != NN_GEMM_AUTO ? b->forced : b->dflt;
    int o = snprintf(b->describe, sizeof b->describe, "%s%s", impls[w].name,
                     b->forced != NN_GEMM_AUTO ? " (forced)" : "");
    if (w == NN_GEMM_NATIVE && o > 0 && (size_t)o < sizeof b->describe)
        o += snprintf(b->describe + o, sizeof b->describe - (size_t)o, ", %dx%d tile, K blocks of %d", NATIVE_MR,
                      b->nr, b->knobs.kc);
    if (b->nchoices && o > 0 && (size_t)o < sizeof b->describe)
        o += snprintf(b->describe + o, sizeof b->describe - (size_t)o, ", %d tuned shapes", b->nchoices);
    if (b->tuned[0] && o > 0 && (size_t)o < sizeof b->describe)
        snprintf(b->describe + o, sizeof b->describe - (size_t)o, "; CLBlast tuned:%s", b->tuned);
    return b->describe;
}

/* Knobs in range, kc the default where 0 (per_unit 0 stays: the plan's
 * choice); -1 when out of range or when a block's panels would not fit the
 * local memory. */
static int knobs_fix(const struct nn_blas *b, nn_native_knobs *k)
{
    if (!k->kc)
        k->kc = b->knobs.kc;
    if (k->kc < 8 || k->kc > 4096 || k->kc % 8 || k->per_unit < 0 || k->per_unit > 256 ||
        native_local_bytes(b->nr, b->mb_max, k->kc) > b->local_mem)
        return -1;
    return 0;
}

int nn_blas_set_shape_choice(nn_dev *d, const nn_gemm_shape *s, nn_gemm_backend w, nn_native_knobs k)
{
    struct nn_blas *b = d->blas;
    if (!b || w < 0 || w >= NN_GEMM_NBACKENDS || !impls[w].usable(d) || b->nchoices == MAX_SHAPE_CHOICES ||
        knobs_fix(b, &k))
        return -1;
    b->choice_shape[b->nchoices] = *s;
    b->choice_knobs[b->nchoices] = k;
    b->choice[b->nchoices++] = w;
    return 0;
}

nn_native_knobs nn_blas_native_knobs(nn_dev *d, nn_native_knobs k)
{
    nn_native_knobs old = d->blas->knobs;
    if (!knobs_fix(d->blas, &k))
        d->blas->knobs = k;
    return old;
}

nn_gemm_backend nn_blas_force(nn_dev *d, nn_gemm_backend w)
{
    nn_gemm_backend old = d->blas->forced;
    d->blas->forced = w;
    return old;
}

int nn_blas_splitk_off(nn_dev *d, int off)
{
    int old = d->blas->splitk_off;
    d->blas->splitk_off = off;
    return old;
}

long nn_blas_splitk_count(nn_dev *d) { return d->blas->splitk_count; }

void nn_blas_set_tuned(nn_dev *d, const char *desc)
{
    if (d->blas)
        snprintf(d->blas->tuned, sizeof d->blas->tuned, "%s", desc ? desc : "");
}

void nn_blas_record_start(nn_dev *d, nn_gemm_shape *out, size_t cap)
{
    struct nn_blas *b = d->blas;
    b->rec = out;
    b->rec_cap = cap;
    b->nrec = 0;
    b->recording = 1;
}

size_t nn_blas_record_stop(nn_dev *d)
{
    struct nn_blas *b = d->blas;
    b->recording = 0;
    b->rec = NULL;
    return b->nrec;
}

static void record(struct nn_blas *b, const gemm_args *g)
{
    if (!b->recording)
        return;
    for (size_t i = 0; i < b->nrec; i++) {
        nn_gemm_shape *s = &b->rec[i];
        if (s->ta == g->ta && s->tb == g->tb && s->m == g->m && s->n == g->n && s->k == g->k && s->batch == g->batch) {
            s->count++;
            return;
        }
    }
    if (b->nrec < b->rec_cap)
        b->rec[b->nrec++] = (nn_gemm_shape){g->ta, g->tb, g->m, g->n, g->k, g->batch, 1};
}

/* Every dimension, leading dimension and element index reaches the kernels
 * as an int or through CLBlast's size_t: refuse what the native kernel's int
 * arithmetic cannot hold (no layer of nnrun gets near it). */
static int check_args(const nn_dev *d, const gemm_args *g, nn_err *e)
{
    const size_t lim = 0x7fffffff;
    if (g->m > lim || g->n > lim || g->k > lim || g->lda > lim || g->ldb > lim || g->ldc > lim || g->batch > lim)
        return nn_fail(e, NN_EDATA, "GEMM %zux%zux%zu (x%zu): a dimension exceeds 2^31-1", g->m, g->n, g->k,
                       g->batch);
    if (g->bim) {
        const nn_im2col *v = g->bim;
        size_t rows = (size_t)v->C * v->kh * v->kw, cols = (size_t)v->n * v->OH * v->OW;
        size_t kk = g->k ? g->k : 1, last = g->boff + (g->batch - 1) * g->bstride +
                                             (g->tb ? (g->n - 1) * g->ldb + kk - 1 : (kk - 1) * g->ldb + g->n - 1);
        size_t xs, xc, xlen = im2col_extent(v, &xs, &xc);
        if (g->ta || !native_usable(d) || g->ldb != cols || rows > lim || cols > lim || last >= rows * cols ||
            xlen > lim)
            return nn_fail(e, NN_ESOFTWARE, "GEMM %zux%zux%zu on an im2col operand: not a view this device's GEMM "
                           "reads (ta %d, ldb %zu of %zu, the last element %zu of %zu)", g->m, g->n, g->k, g->ta,
                           g->ldb, cols, last, rows * cols);
    }
    return 0;
}

/* The epilogue as a kernel of its own, for implementations (and paths:
 * k = 0, split-K) that cannot fuse it. */
static int epilogue_kernel(nn_dev *d, const gemm_args *g, nn_err *e)
{
    return nn_launch(d, "gemm_bias_act", g->m * g->n, 0, e, 8, KMEM(g->c), KULONG(g->coff), KINT(g->ldc), KINT(g->m),
                     KINT(g->n), KMEM(g->bias ? g->bias : g->c), KINT(g->epi & 1), KINT(g->epi >> 1));
}

static int dispatch(nn_dev *d, const gemm_args *g, nn_err *e)
{
    if (!d->blas)
        return nn_fail(e, NN_ESOFTWARE, "GEMM on %s before nn_blas_open", d->name);
    int r = check_args(d, g, e);
    if (r)
        return r;
    record(d->blas, g);
    if (g->k == 0) { /* no products: C = beta C, the same for every backend (CLBlast refuses k = 0) */
        r = nn_launch2(d, "gemm_scale_c", g->m * g->n, g->batch, 0, 0, e, 7, KMEM(g->c), KULONG(g->coff),
                       KINT(g->ldc), KULONG(g->cstride), KINT(g->m), KINT(g->n), KFLT(g->beta));
        return r || !g->epi ? r : epilogue_kernel(d, g, e);
    }
    const gemm_impl *im = &impls[gemm_choose(d->blas, g)];
    if (!g->epi || im->epilogue)
        return im->gemm(d, g, e);
    gemm_args plain = *g;
    plain.epi = 0;
    return (r = im->gemm(d, &plain, e)) ? r : epilogue_kernel(d, g, e);
}

/* Split-K: a GEMM whose output is a few tiles but whose inner dimension is
 * long (a convolution's weight gradient sums over batch x positions: 32x25
 * outputs over 36,864 terms in LeNet's first layer) runs as one or two
 * work-groups: one core of a CPU, a sliver of a GPU. It is cut into S chunks
 * along k, computed as one strided-batched GEMM into partial sums, and summed
 * in a fixed order by a kernel, so results stay deterministic. Returns the
 * number of chunks, or 0 for "do not split". */
#define SPLITK_TILE 32     /* the output tile one work-group computes, about */
#define SPLITK_MIN_K 2048  /* shorter sums are not worth a second launch */
#define SPLITK_CHUNK 512   /* no chunk shorter than this */
#define SPLITK_PER_UNIT 4  /* aim for this many work-groups per compute unit */

#define SPLITK_NATIVE_RATIO 16 /* native: split when k >= this x (m + n) */

/* Split when the output gives fewer than two work-groups per compute unit (a
 * 2-core CPU: at most 3 tiles; a 132-SM GPU: up to 263), into enough chunks
 * for SPLITK_PER_UNIT per unit. The native kernel also splits a long, thin
 * product (k >= SPLITK_NATIVE_RATIO (m + n): convolutions' weight
 * gradients): it finds its parallelism by cutting C into blocks, and every
 * cut packs the other operand's long panels again; SPLITK_PER_UNIT chunks
 * per unit pack each once (fashion_resnet's weight gradients: 91 -> 76 ms
 * a step, fashion_cnn_bn's 46 -> 36, interleaved). */
static size_t splitk_chunks(const nn_dev *d, const gemm_args *g)
{
    size_t m = g->m, n = g->n, k = g->k;
    if (d->blas->splitk_off || k < SPLITK_MIN_K)
        return 0;
    size_t tiles = cdiv(m, SPLITK_TILE) * cdiv(n, SPLITK_TILE);
    size_t want = (size_t)SPLITK_PER_UNIT * (d->units ? d->units : 1);
    if (gemm_choose(d->blas, g) == NN_GEMM_NATIVE && k >= SPLITK_NATIVE_RATIO * (m + n))
        tiles = 1;
    else if (2 * tiles >= want)
        return 0;
    size_t s = want / tiles, most = k / SPLITK_CHUNK;
    if (s > most)
        s = most;
    return s >= 2 ? s : 0;
}

static int gemm_splitk(nn_dev *d, const gemm_args *g, size_t s, nn_err *e)
{
    struct nn_blas *bl = d->blas;
    size_t m = g->m, n = g->n, k = g->k;
    size_t kc = cdiv(k, s), full = k / kc, rem = k - full * kc, slices = full + (rem > 0);
    size_t bytes = slices * m * n * sizeof(float);
    if (bytes > bl->splitk_bytes) {
        if (bl->splitk)
            clReleaseMemObject(bl->splitk);
        bl->splitk = NULL;
        bl->splitk_bytes = 0;
        int r = nn_buf_alloc(d, bytes, "the split-K GEMM partial sums", &bl->splitk, e);
        if (r)
            return r;
        bl->splitk_bytes = bytes;
    }
    bl->splitk_count++;
    /* chunk j of op(A) is columns [j kc, (j+1) kc); of op(B) rows [j kc, (j+1) kc) */
    gemm_args p = *g;
    p.k = kc;
    p.astride = g->ta ? kc * g->lda : kc;
    p.bstride = g->tb ? kc : kc * g->ldb;
    p.beta = 0.0f;
    p.c = bl->splitk;
    p.epi = 0;
    p.coff = 0;
    p.ldc = n;
    p.cstride = m * n;
    p.batch = full;
    int r = dispatch(d, &p, e);
    if (!r && rem) {
        p.aoff = g->aoff + full * p.astride;
        p.boff = g->boff + full * p.bstride;
        p.coff = full * m * n;
        p.k = rem;
        p.batch = 1;
        r = dispatch(d, &p, e);
    }
    if (!r)
        r = nn_launch(d, "splitk_reduce", m * n, 0, e, 8, KMEM(bl->splitk), KINT(slices), KINT(m), KINT(n),
                      KFLT(g->beta), KMEM(g->c), KINT(g->coff), KINT(g->ldc));
    return r || !g->epi ? r : epilogue_kernel(d, g, e);
}

int nn_gemm_bias_act(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                     cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
                     float beta, cl_mem c, size_t coff, size_t ldc, cl_mem bias, int act, nn_err *e)
{
    if (!m || !n)
        return 0;
    gemm_args g = {ta, tb, m, n, k, 1, alpha, beta, a, b, c, aoff, lda, 0, boff, ldb, 0, coff, ldc, 0, bias,
                   (bias != NULL) | act << 1};
    if (!d->blas)
        return dispatch(d, &g, e);
    size_t s = splitk_chunks(d, &g);
    return s ? gemm_splitk(d, &g, s, e) : dispatch(d, &g, e);
}

int nn_gemm(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
            cl_mem a, size_t aoff, size_t lda, cl_mem b, size_t boff, size_t ldb,
            float beta, cl_mem c, size_t coff, size_t ldc, nn_err *e)
{
    return nn_gemm_bias_act(d, ta, tb, m, n, k, alpha, a, aoff, lda, b, boff, ldb, beta, c, coff, ldc, NULL, 0, e);
}

int nn_gemm_strided(nn_dev *d, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                    cl_mem a, size_t aoff, size_t lda, size_t astride,
                    cl_mem b, size_t boff, size_t ldb, size_t bstride, float beta,
                    cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e)
{
    if (!m || !n || !batch)
        return 0;
    gemm_args g = {ta, tb, m, n, k, batch, alpha, beta, a, b, c, aoff, lda, astride, boff, ldb, bstride, coff, ldc,
                   cstride};
    return dispatch(d, &g, e);
}

int nn_gemm_im2col(nn_dev *d, int tb, size_t m, size_t n, size_t k, float alpha,
                   cl_mem a, size_t aoff, size_t lda, size_t astride,
                   const nn_im2col *b, size_t boff, size_t bstride, float beta,
                   cl_mem c, size_t coff, size_t ldc, size_t cstride, size_t batch, nn_err *e)
{
    if (!m || !n || !batch)
        return 0;
    size_t ldb = (size_t)b->n * (size_t)b->OH * (size_t)b->OW;
    gemm_args g = {0, tb, m, n, k, batch, alpha, beta, a, NULL, c, aoff, lda, astride, boff, ldb, bstride, coff, ldc,
                   cstride, NULL, 0, b};
    size_t s = batch == 1 && d->blas ? splitk_chunks(d, &g) : 0;
    return s ? gemm_splitk(d, &g, s, e) : dispatch(d, &g, e);
}
