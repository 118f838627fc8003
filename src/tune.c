/* tune.c - nnrun tune, in two steps:
 * 1. a small CLBlast tuner built on CLBlastOverrideParameters: sample
 *    XgemmDirect parameter sets that satisfy CLBlast's constraints, verify
 *    each against the default parameters' results (a tuned set can compute
 *    wrong results on some drivers), time the GEMM shapes the model uses,
 *    keep the fastest. Only the direct kernel (XgemmDirect) is searched; see
 *    sample(). Stored as one text line in clblast-HASH.tune:
 *    "XGEMM_MIN_INDIRECT_SIZE T KERNEL NAME VALUE ...".
 * 2. per shape, nnrun's own GEMM over a few knob sets (K block, work-items
 *    per unit), verified the same way, against CLBlast as step 1 left it;
 *    the winner of every shape goes to gemm-HASH.choice, which the seam's
 *    policy (src/blas.c) consults before its per-device default. */
#include "tune.h"

#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "version.h"

/* A candidate: which GEMM path (CLBlast's routine threshold) and that
 * kernel's parameters. */
#define MAXP 16
typedef struct cand {
    size_t threshold;           /* XGEMM_MIN_INDIRECT_SIZE: m*n*k at or above it goes indirect */
    const char *kernel;         /* "XgemmDirect" or "Xgemm" */
    int np;
    size_t v[MAXP];
} cand;

static const char *const direct_names[] = {"WGD", "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                           "KWID", "VWMD", "VWND", "PADA", "PADB"};
static const char *const xgemm_names[] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                                          "NDIMC", "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"};
#define NDIRECT 10
#define NXGEMM 16
#define NO_INDIRECT ((size_t)1 << 62)

static const char *const *names_of(const cand *c) { return !strcmp(c->kernel, "Xgemm") ? xgemm_names : direct_names; }

/* The tuning file of the device and driver: "<cache>/<kind>-<hash>.<ext>"
 * (kind "clblast", ext "tune": CLBlast's parameters; kind "gemm", ext
 * "choice": the per-shape backend winners). */
static int tune_path(const nn_dev *d, const char *kind, const char *ext, char *out, size_t n)
{
    char dir[3500];
    const char *x = getenv("NNRUN_CACHE_DIR");
    if (x && *x)
        snprintf(dir, sizeof dir, "%s", x);
    else if ((x = getenv("XDG_CACHE_HOME")) && x[0] == '/')
        snprintf(dir, sizeof dir, "%s/nnrun", x);
    else if ((x = getenv("HOME")) && *x)
        snprintf(dir, sizeof dir, "%s/.cache/nnrun", x);
    else
        return -1;
    uint64_t h = NN_FNV_INIT;
    h = nn_fnv1a(h, d->platform_name, strlen(d->platform_name));
    h = nn_fnv1a(h, d->name, strlen(d->name));
    h = nn_fnv1a(h, d->version, strlen(d->version));
    h = nn_fnv1a(h, d->driver, strlen(d->driver));
    snprintf(out, n, "%s/%s-%016llx.%s", dir, kind, (unsigned long long)h, ext);
    return 0;
}

static int override(nn_dev *d, const cand *c)
{
    /* Only indirect candidates override the routine's threshold: overriding
     * "GemmRoutine" at all (any value) made a transformer stop learning on
     * PoCL while every verified GEMM still matched (see nn_tune_apply). */
    const char *rn[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
    size_t rv[1] = {c->threshold};
    if (c->threshold != NO_INDIRECT &&
        CLBlastOverrideParameters(d->device, "GemmRoutine", CLBlastPrecisionSingle, 1, rn, rv) != CLBlastSuccess)
        return -1;
    return CLBlastOverrideParameters(d->device, c->kernel, CLBlastPrecisionSingle, (size_t)c->np,
                                     (const char **)names_of(c), c->v) == CLBlastSuccess
               ? 0
               : -1;
}

static void describe(const cand *c, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "%s", c->kernel);
    const char *const *nm = names_of(c);
    for (int i = 0; i < c->np && o < n; i++)
        o += (size_t)snprintf(out + o, n - o, " %s=%zu", nm[i], c->v[i]);
    if (c->threshold != NO_INDIRECT && o < n)
        snprintf(out + o, n - o, " (indirect from m*n*k >= %zu)", c->threshold);
}

/* Writes a tuning file atomically (a temporary file renamed over it),
 * creating the cache folder it goes in (one level); -1 on any failure. */
static int write_text(const char *path, const char *text)
{
    char dir[4096], tmp[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl) {
        *sl = 0;
        mkdir(dir, 0755);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (ok) {
        ok = fputs(text, f) >= 0;
        ok &= fclose(f) == 0;
        ok = ok && rename(tmp, path) == 0;
    }
    if (!ok)
        unlink(tmp);
    return ok ? 0 : -1;
}

/* A cache file's text (malloc'd), or NULL when it is missing, not a regular
 * file (a FIFO there must not block nnrun), binary or larger than 1 MiB. */
static char *read_cache_file(const char *path)
{
    unsigned char *buf;
    size_t len;
    nn_err ignore = {0};
    return nn_read_text_file(path, (size_t)1 << 20, &buf, &len, &ignore) ? NULL : (char *)buf;
}

static int valid(const cand *c, size_t max_wg);

/* Parses a tune file's text into *c and checks it for a device with max_wg
 * work-items per group and `local` bytes of local memory (0: unknown): each
 * parameter in the range CLBlast's kernels accept, the kernel's constraints,
 * the work-group size and local memory. NULL when usable, else why not. */
static const char *parse_params(const char *text, size_t max_wg, unsigned long long local, cand *c, char *why,
                                size_t wn)
{
    char kernel[32], word[32];
    unsigned long long thr;
    int used = 0;
    if (sscanf(text, "%31s %llu %31s%n", word, &thr, kernel, &used) != 3 || strcmp(word, "XGEMM_MIN_INDIRECT_SIZE") ||
        (strcmp(kernel, "XgemmDirect") && strcmp(kernel, "Xgemm")))
        return "it does not parse";
    const int xg = !strcmp(kernel, "Xgemm");
    c->kernel = xg ? "Xgemm" : "XgemmDirect";
    c->np = xg ? NXGEMM : NDIRECT;
    c->threshold = (size_t)thr;
    const char *const *nm = names_of(c);
    for (int i = 0; i < c->np; i++) {
        char name[32];
        unsigned long x;
        text += used;
        if (sscanf(text, "%31s %lu%n", name, &x, &used) != 2 || strcmp(name, nm[i]))
            return "it does not parse";
        c->v[i] = x;
    }
    for (int i = 0; i < c->np; i++) {
        int flag = xg ? (i == 0 || (i >= 10 && i <= 13)) : i >= 8; /* GEMMK, SA, SB, STRM, STRN; PADA, PADB */
        size_t lo = flag ? 0 : 1, hi = flag ? 1 : 256;
        if ((xg && i == 0 && c->v[i] != 0) || (xg && i == 1 && c->v[i] != 1) || c->v[i] < lo || c->v[i] > hi) {
            snprintf(why, wn, "%s=%zu is out of range", nm[i], c->v[i]);
            return why;
        }
    }
    if (!valid(c, max_wg ? max_wg : 1)) {
        snprintf(why, wn, "the parameters break the kernel's constraints or the device's work-group size %zu", max_wg);
        return why;
    }
    const size_t *v = c->v;
    size_t need = xg ? ((v[10] ? v[2] * v[6] : 0) + (v[11] ? v[2] * v[9] : 0)) * 4
                     : (v[0] * (v[0] + v[8]) + v[0] * (v[0] + v[9])) * 4;
    if (local && need > local) {
        snprintf(why, wn, "the parameters need %zu bytes of local memory, the device has %llu", need, local);
        return why;
    }
    return NULL;
}

int nn_tune_check_params(const char *text, size_t max_wg, unsigned long long local_mem, char *out, size_t n)
{
    cand c;
    char why[160];
    const char *bad = parse_params(text, max_wg, local_mem, &c, why, sizeof why);
    if (bad)
        snprintf(out, n, "%s", bad);
    else
        describe(&c, out, n);
    return bad ? -1 : 0;
}

#define CHOICE_MAGIC "NNRUN_GEMM_CHOICE 1"

int nn_tune_parse_choices(const char *text, nn_gemm_shape *sh, int *be, nn_native_knobs *kn, size_t max, size_t *n)
{
    *n = 0;
    size_t ml = strlen(CHOICE_MAGIC "\n");
    if (strncmp(text, CHOICE_MAGIC "\n", ml))
        return -1;
    for (const char *line = text + ml; *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        char buf[256];
        int ta, tb, kc, pu;
        unsigned long m, nn, k, batch;
        char name[32];
        if (ll >= sizeof buf || *n == max)
            return -1;
        memcpy(buf, line, ll);
        buf[ll] = 0;
        if (sscanf(buf, "%d %d %lu %lu %lu %lu %31s %d %d", &ta, &tb, &m, &nn, &k, &batch, name, &kc, &pu) != 9 ||
            (ta | tb) & ~1 || (be[*n] = nn_blas_backend_parse(name)) < 0)
            return -1;
        sh[*n] = (nn_gemm_shape){ta, tb, m, nn, k, batch, 1};
        kn[(*n)++] = (nn_native_knobs){kc, pu};
        line += ll + (eol ? 1 : 0);
    }
    return 0;
}

/* The per-shape winners of the last nnrun tune: after a magic line, one line
 * per shape "ta tb m n k batch backend kc per_unit". A file that does not
 * parse is ignored whole. */
static void apply_choices(nn_dev *d)
{
    char path[4096];
    if (tune_path(d, "gemm", "choice", path, sizeof path))
        return;
    char *text = read_cache_file(path);
    if (!text)
        return;
    nn_gemm_shape sh[NN_MAX_GEMM_SHAPES * 4];
    int be[NN_MAX_GEMM_SHAPES * 4];
    nn_native_knobs kn[NN_MAX_GEMM_SHAPES * 4];
    size_t n = 0;
    int ok = nn_tune_parse_choices(text, sh, be, kn, sizeof sh / sizeof *sh, &n) == 0;
    free(text);
    for (size_t i = 0; ok && i < n; i++)
        nn_blas_set_shape_choice(d, &sh[i], (nn_gemm_backend)be[i], kn[i]);
}

void nn_tune_apply(nn_dev *d)
{
    nn_blas_set_tuned(d, "");
    const char *skip = getenv("NNRUN_NO_TUNE");
    char path[4096];
    if ((skip && *skip && strcmp(skip, "0")) || tune_path(d, "clblast", "tune", path, sizeof path))
        return;
    apply_choices(d);
    char *text = read_cache_file(path);
    if (!text)
        return;
    cl_ulong local = 0;
    if (clGetDeviceInfo(d->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL) != CL_SUCCESS)
        local = 0;
    cand c;
    char why[160];
    const char *bad = parse_params(text, d->max_wg, (unsigned long long)local, &c, why, sizeof why);
    free(text);
    if (bad) {
        nn_warn("%s: ignored, %s (run 'nnrun tune' again to replace it)", path, bad);
        return;
    }
    if (override(d, &c) == 0) {
        char desc[256];
        describe(&c, desc, sizeof desc);
        nn_blas_set_tuned(d, desc);
    }
}

static int valid(const cand *c, size_t max_wg)
{
    const size_t *v = c->v;
    if (!strcmp(c->kernel, "XgemmDirect")) {
        size_t WGD = v[0], MC = v[1], NC = v[2], MA = v[3], NB = v[4], KW = v[5], VM = v[6], VN = v[7];
        return MC * NC <= max_wg && WGD % KW == 0 && WGD % (MC * VM) == 0 && WGD % (NC * VN) == 0 &&
               WGD % (MA * VM) == 0 && WGD % (NB * VN) == 0 && (MC * NC) % MA == 0 && (MC * NC) % NB == 0 &&
               WGD % ((MC * NC) / MA) == 0 && WGD % ((MC * NC) / NB) == 0;
    }
    /* Xgemm (GEMMK 0, KREG 1): the constraints of CLBlast's tuner */
    size_t KWG = v[2], KWI = v[3], MA = v[4], MC = v[5], MWG = v[6], NB = v[7], NC = v[8], NWG = v[9], VM = v[14],
           VN = v[15];
    return MC * NC <= max_wg && KWG % KWI == 0 && MWG % (MC * VM) == 0 && NWG % (NC * VN) == 0 &&
           MWG % (MA * VM) == 0 && NWG % (NB * VN) == 0 && (MC * NC) % MA == 0 && (MC * NC) % NB == 0 &&
           KWG % ((MC * NC) / MA) == 0 && KWG % ((MC * NC) / NB) == 0;
}

/* A random candidate of either kind satisfying the constraints. */
static int sample(nn_rng *rng, cand *c, size_t max_wg)
{
    static const size_t dch[NDIRECT][4] = {{8, 16, 32, 64}, {8, 16, 32, 0}, {8, 16, 32, 0}, {8, 16, 32, 0},
                                           {8, 16, 32, 0},  {2, 8, 16, 0},  {1, 2, 4, 8},  {1, 2, 4, 8},
                                           {1, 0, 0, 0},    {1, 0, 0, 0}};
    static const size_t xch[NXGEMM][4] = {{0, 0, 0, 0}, {1, 0, 0, 0},     {16, 32, 0, 0},  {2, 8, 0, 0},
                                          {8, 16, 32, 0}, {8, 16, 32, 0}, {16, 32, 64, 128}, {8, 16, 32, 0},
                                          {8, 16, 32, 0}, {16, 32, 64, 128}, {0, 1, 0, 0},  {0, 1, 0, 0},
                                          {0, 1, 0, 0},   {0, 1, 0, 0},   {1, 2, 4, 8},    {1, 2, 4, 8}};
    static const size_t thresholds[3] = {1, 1000000, 16777216};
    /* Direct kernel only: the indirect path needs a "GemmRoutine" override,
     * and with that override applied (any value) a character-level
     * transformer on PoCL stopped learning while every verified GEMM matched
     * the defaults. The Xgemm code stays for a later, better-verified try. */
    int xg = 0;
    c->kernel = xg ? "Xgemm" : "XgemmDirect";
    c->np = xg ? NXGEMM : NDIRECT;
    c->threshold = xg ? thresholds[nn_rng_next(rng) % 3] : NO_INDIRECT;
    for (int guard = 0; guard < 20000; guard++) {
        for (int i = 0; i < c->np; i++) {
            const size_t *ch = xg ? xch[i] : dch[i];
            int n = 1;
            while (n < 4 && ch[n])
                n++;
            if (xg && (i == 10 || i == 11 || i == 12 || i == 13))
                n = 2; /* SA, SB, STRM, STRN: 0 or 1 */
            c->v[i] = ch[nn_rng_next(rng) % (uint64_t)n];
        }
        if (valid(c, max_wg))
            return 0;
    }
    return -1;
}

typedef struct bufs {
    cl_mem a, b, c;
    float *ref, *got;
    size_t csize;
} bufs;

/* Runs every shape once (checking against the reference when ref != NULL),
 * then `reps` times; returns the weighted seconds, or -1 when a run fails or
 * its result is wrong. */
static double time_shapes(nn_dev *d, const nn_gemm_shape *sh, size_t ns, bufs *bf, int reps, int check, double *each,
                          nn_err *e)
{
    double total = 0;
    for (size_t s = 0; s < ns; s++) {
        const nn_gemm_shape *g = &sh[s];
        size_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
        size_t sa = g->m * g->k, sb = g->k * g->n, sc = g->m * g->n;
        nn_err ig = {0};
        int r = g->batch > 1 ? nn_gemm_strided(d, g->ta, g->tb, g->m, g->n, g->k, 1.0f, bf[s].a, 0, lda, sa, bf[s].b, 0,
                                               ldb, sb, 0.0f, bf[s].c, 0, g->n, sc, g->batch, &ig)
                             : nn_gemm(d, g->ta, g->tb, g->m, g->n, g->k, 1.0f, bf[s].a, 0, lda, bf[s].b, 0, ldb, 0.0f,
                                       bf[s].c, 0, g->n, &ig);
        if (r || nn_dev_finish(d, &ig))
            return -1;
        if (check) {
            if (nn_buf_read(d, bf[s].c, 0, bf[s].csize * sizeof(float), bf[s].got, e))
                return -1;
            if (check == 2) {
                memcpy(bf[s].ref, bf[s].got, bf[s].csize * sizeof(float)); /* defaults: the reference */
            } else {
                double mx = 0, err = 0;
                for (size_t i = 0; i < bf[s].csize; i++) {
                    mx = fmax(mx, fabs(bf[s].ref[i]));
                    err = fmax(err, fabs((double)bf[s].got[i] - bf[s].ref[i]));
                    if (!isfinite(bf[s].got[i]))
                        return -1;
                }
                if (err > 1e-4 * (mx > 1e-6 ? mx : 1e-6))
                    return -1;
            }
        }
        if (reps <= 0)
            continue; /* verification only */
        double t0 = nn_now();
        for (int i = 0; i < reps; i++) {
            r = g->batch > 1 ? nn_gemm_strided(d, g->ta, g->tb, g->m, g->n, g->k, 1.0f, bf[s].a, 0, lda, sa, bf[s].b, 0,
                                               ldb, sb, 0.0f, bf[s].c, 0, g->n, sc, g->batch, &ig)
                             : nn_gemm(d, g->ta, g->tb, g->m, g->n, g->k, 1.0f, bf[s].a, 0, lda, bf[s].b, 0, ldb, 0.0f,
                                       bf[s].c, 0, g->n, &ig);
            if (r)
                return -1;
        }
        if (nn_dev_finish(d, &ig))
            return -1;
        double t = (nn_now() - t0) / reps * (double)g->count;
        if (each)
            each[s] = t;
        total += t;
    }
    return total;
}

/* Random A and B, a C, and room for the reference result, per shape. */
static int setup_bufs(nn_dev *d, const nn_gemm_shape *sh, size_t ns, nn_rng *rng, bufs **out, nn_err *e)
{
    bufs *bf = calloc(ns ? ns : 1, sizeof *bf);
    *out = bf;
    if (!bf)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    int r = 0;
    for (size_t s = 0; s < ns && !r; s++) {
        const nn_gemm_shape *g = &sh[s];
        size_t na = g->m * g->k * g->batch, nb = g->k * g->n * g->batch, nc = g->m * g->n * g->batch;
        float *h = malloc(sizeof(float) * (na > nb ? na : nb));
        bf[s].ref = calloc(nc, sizeof(float));
        bf[s].got = malloc(nc * sizeof(float));
        bf[s].csize = nc;
        if (!h || !bf[s].ref || !bf[s].got) {
            free(h);
            return nn_fail(e, NN_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < na; i++)
            h[i] = (float)(nn_rng_uniform(rng) * 2 - 1);
        r = nn_buf_alloc(d, na * 4, "tuning A", &bf[s].a, e) || nn_buf_write(d, bf[s].a, 0, na * 4, h, 1, e);
        for (size_t i = 0; !r && i < nb; i++)
            h[i] = (float)(nn_rng_uniform(rng) * 2 - 1);
        if (!r)
            r = nn_buf_alloc(d, nb * 4, "tuning B", &bf[s].b, e) || nn_buf_write(d, bf[s].b, 0, nb * 4, h, 1, e);
        if (!r)
            r = nn_buf_alloc(d, nc * 4, "tuning C", &bf[s].c, e);
        free(h);
        if (r && !e->code)
            r = nn_fail(e, NN_ENODEV, "cannot allocate the tuning buffers");
    }
    return r;
}

static void free_bufs(bufs *bf, size_t ns)
{
    for (size_t s = 0; bf && s < ns; s++) {
        nn_buf_free(&bf[s].a);
        nn_buf_free(&bf[s].b);
        nn_buf_free(&bf[s].c);
        free(bf[s].ref);
        free(bf[s].got);
    }
    free(bf);
}

/* Shapes every candidate must compute correctly before it is timed: a
 * parameter set is global to the device, so it must be right for every GEMM
 * any model makes, not only the tuned model's (all transpose combinations,
 * odd and degenerate sizes, strided batches as attention uses). */
static size_t verify_shapes(nn_gemm_shape *v)
{
    static const size_t sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 64, 24}, {65, 31, 128}, {128, 96, 64},
                                      {64, 24, 64}, {100, 10, 300}};
    size_t n = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
                v[n++] = (nn_gemm_shape){ta, tb, sizes[i][0], sizes[i][1], sizes[i][2], 1, 1};
            v[n++] = (nn_gemm_shape){ta, tb, 64, 64, 24, 6, 1};
            v[n++] = (nn_gemm_shape){ta, tb, 64, 24, 64, 6, 1};
            v[n++] = (nn_gemm_shape){ta, tb, 7, 5, 3, 4, 1};
        }
    return n;
}

/* The native kernel's knob sets tune tries per shape. */
static const nn_native_knobs native_cands[] = {{256, 4}, {256, 2}, {256, 1}, {256, 8}, {128, 4},
                                               {128, 2}, {384, 4}, {384, 2}, {512, 2}};

/* Per shape: nnrun's own GEMM (when the device can run it) over its knob
 * sets, each verified on the verification shapes and on the shape against
 * CLBlast's default results, against CLBlast's time clb_each[s]; writes the
 * winners to the choice file atomically (removes it when native cannot run). */
static int tune_backends(nn_dev *d, const nn_gemm_shape *sh, size_t ns, bufs *bf, const nn_gemm_shape *vsh, size_t nv,
                         bufs *vbf, const double *clb_each, const nn_tune_opts *o, int *nnative, double *chosen_t,
                         nn_err *e)
{
    char path[4096];
    if (tune_path(d, "gemm", "choice", path, sizeof path))
        return nn_fail(e, NN_EIO, "no cache folder to store the tuned parameters in (set XDG_CACHE_HOME or HOME)");
    int ncand = (int)(sizeof native_cands / sizeof *native_cands);
    int *win = calloc(ns ? ns : 1, sizeof(int)); /* -1: CLBlast, else the knob set */
    double *best = calloc(ns ? ns : 1, sizeof(double));
    if (!win || !best) {
        free(win);
        free(best);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    for (size_t s = 0; s < ns; s++) {
        win[s] = -1;
        best[s] = clb_each[s];
    }
    if (nn_blas_usable(d, NN_GEMM_NATIVE)) {
        nn_gemm_backend was = nn_blas_force(d, NN_GEMM_NATIVE);
        for (int c = 0; c < ncand; c++) {
            nn_native_knobs old = nn_blas_native_knobs(d, native_cands[c]);
            int ok = time_shapes(d, vsh, nv, vbf, 0, 1, NULL, e) >= 0;
            for (size_t s = 0; ok && s < ns; s++) {
                double t = time_shapes(d, sh + s, 1, bf + s, o->reps, 1, NULL, e);
                if (t >= 0 && t < best[s]) {
                    best[s] = t;
                    win[s] = c;
                }
            }
            if (!ok && !o->quiet && !o->json)
                printf("  native kc=%d per_unit=%d rejected (failed or computed wrong results)\n", native_cands[c].kc,
                       native_cands[c].per_unit);
            nn_blas_native_knobs(d, old);
        }
        nn_blas_force(d, was);
    }
    *nnative = 0;
    *chosen_t = 0;
    for (size_t s = 0; s < ns; s++) {
        *nnative += win[s] >= 0;
        *chosen_t += best[s];
        if (!o->quiet && !o->json)
            printf("  %s%s %zux%zux%zu%s: %s %.3f ms per step (CLBlast %.3f ms)\n", sh[s].ta ? "T" : "N",
                   sh[s].tb ? "T" : "N", sh[s].m, sh[s].n, sh[s].k, sh[s].batch > 1 ? " (batched)" : "",
                   win[s] >= 0 ? "native" : "clblast", best[s] * 1e3, clb_each[s] * 1e3);
    }
    int r = 0;
    if (nn_blas_usable(d, NN_GEMM_NATIVE)) {
        size_t cap = 64 + ns * 128, len = 0;
        char *text = malloc(cap);
        if (!text)
            r = nn_fail(e, NN_ENOMEM, "out of memory");
        else
            len += (size_t)snprintf(text, cap, CHOICE_MAGIC "\n");
        for (size_t s = 0; !r && s < ns && len < cap; s++) {
            nn_native_knobs k = win[s] >= 0 ? native_cands[win[s]] : (nn_native_knobs){0, 0};
            len += (size_t)snprintf(text + len, cap - len, "%d %d %zu %zu %zu %zu %s %d %d\n", sh[s].ta, sh[s].tb, sh[s].m,
                                  sh[s].n, sh[s].k, sh[s].batch, win[s] >= 0 ? "native" : "clblast", k.kc, k.per_unit);
        }
        if (!r && write_text(path, text))
            r = nn_fail(e, NN_EIO, "%s: cannot write the per-shape GEMM choices", path);
        free(text);
    } else
        unlink(path);
    free(win);
    free(best);
    return r;
}

int nn_tune_run(nn_dev *d, const nn_gemm_shape *sh, size_t ns, const nn_tune_opts *o, nn_err *e)
{
    char path[4096];
    if (tune_path(d, "clblast", "tune", path, sizeof path))
        return nn_fail(e, NN_EIO, "no cache folder to store the tuned parameters in (set XDG_CACHE_HOME or HOME)");
    nn_rng rng;
    nn_rng_seed(&rng, o->seed);
    double flops = 0;
    for (size_t s = 0; s < ns; s++)
        flops += 2.0 * (double)sh[s].m * (double)sh[s].n * (double)sh[s].k * (double)sh[s].batch * (double)sh[s].count;
    nn_gemm_shape vsh[64];
    size_t nv = verify_shapes(vsh);
    bufs *bf = NULL, *vbf = NULL;
    int r = setup_bufs(d, sh, ns, &rng, &bf, e);
    if (!r)
        r = setup_bufs(d, vsh, nv, &rng, &vbf, e);
    /* the defaults' results are the references */
    double *base_each = calloc(ns ? ns : 1, sizeof(double)), *cand_each = calloc(ns ? ns : 1, sizeof(double));
    double *best_each = calloc(ns ? ns : 1, sizeof(double));
    if (!base_each || !cand_each || !best_each)
        r = nn_fail(e, NN_ENOMEM, "out of memory");
    if (!r && time_shapes(d, vsh, nv, vbf, 0, 2, NULL, e) < 0)
        r = nn_fail(e, NN_ESOFTWARE, "CLBlast failed with its default parameters on the verification shapes");
    double base = r ? -1 : time_shapes(d, sh, ns, bf, o->reps, 2, base_each, e);
    if (!r && base < 0)
        r = nn_fail(e, NN_ESOFTWARE, "CLBlast failed with its default parameters on these shapes");
    if (!r && !o->quiet && !o->json)
        printf("defaults: %.2f ms per step of GEMMs (%.1f GFLOP/s)\n", base * 1e3, flops / base / 1e9);
    /* candidates: the XgemmDirect set PLATFORM.md measured well first, then
     * random valid ones of both kinds */
    cand best, c;
    double best_t = base;
    int have_best = 0, tried = 0, failed = 0;
    for (int k = 0; !r && k < o->candidates; k++) {
        if (k == 0) {
            c = (cand){NO_INDIRECT, "XgemmDirect", NDIRECT, {32, 16, 16, 16, 16, 2, 1, 2, 1, 1}};
            if (!valid(&c, d->max_wg))
                continue;
        } else if (sample(&rng, &c, d->max_wg))
            continue;
        char desc[512];
        describe(&c, desc, sizeof desc);
        if (override(d, &c)) {
            failed++;
            continue;
        }
        tried++;
        double t = time_shapes(d, vsh, nv, vbf, 0, 1, NULL, e) < 0 ? -1
                                                                   : time_shapes(d, sh, ns, bf, o->reps, 1, cand_each, e);
        if (t < 0) {
            failed++;
            if (!o->quiet && !o->json)
                printf("  candidate %2d rejected (failed or computed wrong results): %s\n", k, desc);
            continue;
        }
        if (!o->quiet && !o->json)
            printf("  candidate %2d %.2f ms (%.2fx): %s\n", k, t * 1e3, base / t, desc);
        if (t < best_t) {
            best_t = t;
            best = c;
            have_best = 1;
            memcpy(best_each, cand_each, ns * sizeof(double));
        }
    }
    /* then nnrun's own GEMM, per shape, over its knobs: the winner of each
     * shape (CLBlast as stored, or native with its best knobs) is stored */
    int store = !r && have_best && best_t < base * 0.97;
    const double *clb_each = store ? best_each : base_each;
    int nnative = 0;
    double chosen_t = 0;
    if (!r)
        r = tune_backends(d, sh, ns, bf, vsh, nv, vbf, clb_each, o, &nnative, &chosen_t, e);
    if (!r) {
        if (store) {
            char text[1024];
            size_t len = (size_t)snprintf(text, sizeof text, "XGEMM_MIN_INDIRECT_SIZE %zu %s", best.threshold,
                                          best.kernel);
            for (int i = 0; i < best.np && len < sizeof text; i++)
                len += (size_t)snprintf(text + len, sizeof text - len, " %s %zu", names_of(&best)[i], best.v[i]);
            if (len < sizeof text)
                snprintf(text + len, sizeof text - len, "\n");
            if (write_text(path, text))
                r = nn_fail(e, NN_EIO, "%s: cannot write the tuned parameters", path);
        }
        if (!r) {
            if (o->json) {
                printf("{\"device\":");
                nn_json_str(stdout, d->name);
                printf(",\"shapes\":%zu,\"candidates_tried\":%d,\"rejected\":%d", ns, tried, failed);
                nn_json_num(stdout, "default_ms", base * 1e3);
                nn_json_num(stdout, "best_ms", best_t * 1e3);
                nn_json_num(stdout, "speedup", base / best_t);
                nn_json_num(stdout, "best_gflops", flops / best_t / 1e9);
                printf(",\"stored\":%s,\"path\":", store ? "true" : "false");
                nn_json_str(stdout, path);
                printf(",\"native_shapes\":%d", nnative);
                nn_json_num(stdout, "chosen_ms", chosen_t * 1e3);
                nn_json_num(stdout, "chosen_gflops", chosen_t > 0 ? flops / chosen_t / 1e9 : 0);
                printf("}\n");
            } else if (!o->quiet) {
                if (store) {
                    char desc[512];
                    describe(&best, desc, sizeof desc);
                    printf("best: %.2f ms (%.2fx the defaults, %.1f GFLOP/s): %s\nstored in %s\n", best_t * 1e3,
                           base / best_t, flops / best_t / 1e9, desc, path);
                }
                else
                    printf("no candidate beat the defaults by 3%% (%d tried, %d rejected); nothing stored\n", tried,
                           failed);
                printf("per shape: nnrun's GEMM wins %d of %zu shapes; the chosen backends take %.2f ms per step "
                       "(%.1f GFLOP/s)\n", nnative, ns, chosen_t * 1e3, chosen_t > 0 ? flops / chosen_t / 1e9 : 0);
            }
        }
    }
    free_bufs(bf, ns);
    free_bufs(vbf, nv);
    free(base_each);
    free(cand_each);
    free(best_each);
    return r;
}
