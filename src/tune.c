/* tune.c - a small CLBlast tuner built on CLBlastOverrideParameters: sample
 * XgemmDirect parameter sets that satisfy CLBlast's constraints, verify each
 * against the default parameters' results (a tuned set can compute wrong
 * results on some drivers), time the GEMM shapes the model uses, keep the
 * fastest. Stored as text: "XgemmDirect NAME VALUE ..." lines. */
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

#define NPARAM 10
static const char *const names[NPARAM] = {"WGD", "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                          "KWID", "VWMD", "VWND", "PADA", "PADB"};

static int tune_path(const nn_dev *d, char *out, size_t n)
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
    snprintf(out, n, "%s/clblast-%016llx.tune", dir, (unsigned long long)h);
    return 0;
}

static int override(nn_dev *d, const size_t *v)
{
    return CLBlastOverrideParameters(d->device, "XgemmDirect", CLBlastPrecisionSingle, NPARAM, (const char **)names,
                                     v) == CLBlastSuccess
               ? 0
               : -1;
}

void nn_tune_apply(nn_dev *d)
{
    d->tuned[0] = 0;
    const char *skip = getenv("NNRUN_NO_TUNE");
    char path[4096];
    if ((skip && *skip && strcmp(skip, "0")) || tune_path(d, path, sizeof path))
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char kernel[64];
    size_t v[NPARAM];
    int ok = fscanf(f, "%63s", kernel) == 1 && !strcmp(kernel, "XgemmDirect");
    for (int i = 0; ok && i < NPARAM; i++) {
        char nm[32];
        unsigned long x;
        ok = fscanf(f, "%31s %lu", nm, &x) == 2 && !strcmp(nm, names[i]) && x > 0 && x <= 256;
        v[i] = x;
    }
    fclose(f);
    if (ok && override(d, v) == 0)
        snprintf(d->tuned, sizeof d->tuned, "XgemmDirect WGD=%zu MDIMCD=%zu NDIMCD=%zu MDIMAD=%zu NDIMBD=%zu KWID=%zu "
                 "VWMD=%zu VWND=%zu", v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

static int valid(const size_t *v)
{
    size_t WGD = v[0], MC = v[1], NC = v[2], MA = v[3], NB = v[4], KW = v[5], VM = v[6], VN = v[7];
    return WGD % KW == 0 && WGD % (MC * VM) == 0 && WGD % (NC * VN) == 0 && WGD % (MA * VM) == 0 &&
           WGD % (NB * VN) == 0 && WGD % ((MC * NC) / MA) == 0 && WGD % ((MC * NC) / NB) == 0 && (MC * NC) % MA == 0 &&
           (MC * NC) % NB == 0;
}

typedef struct bufs {
    cl_mem a, b, c;
    float *ref, *got;
    size_t csize;
} bufs;

/* Runs every shape once (checking against the reference when ref != NULL),
 * then `reps` times; returns the weighted seconds, or -1 when a run fails or
 * its result is wrong. */
static double time_shapes(nn_dev *d, const nn_gemm_shape *sh, size_t ns, bufs *bf, int reps, int check, nn_err *e)
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
            if (!bf[s].ref[0] && !bf[s].ref[1] && check == 2) {
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
        total += (nn_now() - t0) / reps * (double)g->count;
    }
    return total;
}

int nn_tune_run(nn_dev *d, const nn_gemm_shape *sh, size_t ns, const nn_tune_opts *o, nn_err *e)
{
    char path[4096];
    if (tune_path(d, path, sizeof path))
        return nn_fail(e, NN_EIO, "no cache folder to store the tuned parameters in (set XDG_CACHE_HOME or HOME)");
    bufs *bf = calloc(ns, sizeof *bf);
    if (!bf)
        return nn_fail(e, NN_ESOFTWARE, "out of memory");
    int r = 0;
    double flops = 0;
    nn_rng rng;
    nn_rng_seed(&rng, o->seed);
    for (size_t s = 0; s < ns && !r; s++) {
        const nn_gemm_shape *g = &sh[s];
        size_t na = g->m * g->k * g->batch, nb = g->k * g->n * g->batch, nc = g->m * g->n * g->batch;
        flops += 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch * (double)g->count;
        float *h = malloc(sizeof(float) * (na > nb ? na : nb));
        bf[s].ref = calloc(nc, sizeof(float));
        bf[s].got = malloc(nc * sizeof(float));
        bf[s].csize = nc;
        if (!h || !bf[s].ref || !bf[s].got) {
            free(h);
            r = nn_fail(e, NN_ESOFTWARE, "out of memory");
            break;
        }
        for (size_t i = 0; i < na; i++)
            h[i] = (float)(nn_rng_uniform(&rng) * 2 - 1);
        r = nn_buf_alloc(d, na * 4, "tuning A", &bf[s].a, e) || nn_buf_write(d, bf[s].a, 0, na * 4, h, 1, e);
        for (size_t i = 0; !r && i < nb; i++)
            h[i] = (float)(nn_rng_uniform(&rng) * 2 - 1);
        if (!r)
            r = nn_buf_alloc(d, nb * 4, "tuning B", &bf[s].b, e) || nn_buf_write(d, bf[s].b, 0, nb * 4, h, 1, e);
        if (!r)
            r = nn_buf_alloc(d, nc * 4, "tuning C", &bf[s].c, e);
        free(h);
        if (r && !e->code)
            r = nn_fail(e, NN_ENODEV, "cannot allocate the tuning buffers");
    }
    double base = r ? -1 : time_shapes(d, sh, ns, bf, o->reps, 2, e);
    if (!r && base < 0)
        r = nn_fail(e, NN_ESOFTWARE, "CLBlast failed with its default parameters on these shapes");
    if (!r && !o->quiet && !o->json)
        printf("defaults: %.2f ms per step of GEMMs (%.1f GFLOP/s)\n", base * 1e3, flops / base / 1e9);
    /* candidates: PLATFORM-tested good set first, then random valid ones */
    static const size_t seeded[NPARAM] = {32, 16, 16, 16, 16, 2, 1, 2, 1, 1};
    static const size_t choices[NPARAM][4] = {{8, 16, 32, 64}, {8, 16, 32, 0}, {8, 16, 32, 0}, {8, 16, 32, 0}, {8, 16, 32, 0},
                                             {2, 8, 16, 0},    {1, 2, 4, 8},   {1, 2, 4, 8},   {0, 1, 0, 0},   {0, 1, 0, 0}};
    size_t best[NPARAM];
    double best_t = base;
    int have_best = 0, tried = 0, failed = 0;
    for (int c = 0; !r && c < o->candidates; c++) {
        size_t v[NPARAM];
        if (c == 0)
            memcpy(v, seeded, sizeof v);
        else {
            int guard = 0;
            do {
                for (int i = 0; i < NPARAM; i++) {
                    int nchoice = 0;
                    while (nchoice < 4 && (choices[i][nchoice] || (i >= 8 && nchoice < 2)))
                        nchoice++;
                    v[i] = choices[i][nn_rng_next(&rng) % (uint64_t)nchoice];
                }
            } while (!valid(v) && ++guard < 10000);
            if (!valid(v))
                continue;
        }
        if (v[1] * v[2] > d->max_wg)
            continue;
        if (override(d, v)) {
            failed++;
            continue;
        }
        tried++;
        double t = time_shapes(d, sh, ns, bf, o->reps, 1, e);
        if (t < 0) {
            failed++;
            if (!o->quiet && !o->json)
                printf("  candidate %2d rejected (failed or computed wrong results)\n", c);
            continue;
        }
        if (!o->quiet && !o->json)
            printf("  candidate %2d WGD=%zu MDIMCD=%zu NDIMCD=%zu MDIMAD=%zu NDIMBD=%zu KWID=%zu VWMD=%zu VWND=%zu PAD=%zu/%zu:"
                   " %.2f ms (%.2fx)\n",
                   c, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], t * 1e3, base / t);
        if (t < best_t) {
            best_t = t;
            memcpy(best, v, sizeof best);
            have_best = 1;
        }
    }
    if (!r) {
        int store = have_best && best_t < base * 0.97;
        if (store) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", path);
            char *sl = strrchr(dir, '/');
            if (sl) {
                *sl = 0;
                mkdir(dir, 0755);
            }
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
            FILE *f = fopen(tmp, "w");
            int ok = f != NULL;
            if (ok) {
                fprintf(f, "XgemmDirect");
                for (int i = 0; i < NPARAM; i++)
                    fprintf(f, " %s %zu", names[i], best[i]);
                fprintf(f, "\n");
                ok = fclose(f) == 0 && rename(tmp, path) == 0;
            }
            if (!ok) {
                unlink(tmp);
                r = nn_fail(e, NN_EIO, "%s: cannot write the tuned parameters", path);
            }
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
                printf("}\n");
            } else if (!o->quiet) {
                if (store)
                    printf("best: %.2f ms (%.2fx the defaults, %.1f GFLOP/s); stored in %s\n", best_t * 1e3, base / best_t,
                           flops / best_t / 1e9, path);
                else
                    printf("no candidate beat the defaults by 3%% (%d tried, %d rejected); nothing stored\n", tried,
                           failed);
            }
        }
    }
    for (size_t s = 0; s < ns; s++) {
        nn_buf_free(&bf[s].a);
        nn_buf_free(&bf[s].b);
        nn_buf_free(&bf[s].c);
        free(bf[s].ref);
        free(bf[s].got);
    }
    free(bf);
    return r;
}
