#include "device.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "util.h"
#include "version.h"

const char *nn_cl_strerror(cl_int st)
{
    switch (st) {
#define C(x) case x: return #x;
        C(CL_SUCCESS) C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE) C(CL_COMPILER_NOT_AVAILABLE)
        C(CL_MEM_OBJECT_ALLOCATION_FAILURE) C(CL_OUT_OF_RESOURCES) C(CL_OUT_OF_HOST_MEMORY)
        C(CL_PROFILING_INFO_NOT_AVAILABLE) C(CL_MEM_COPY_OVERLAP) C(CL_BUILD_PROGRAM_FAILURE)
        C(CL_MISALIGNED_SUB_BUFFER_OFFSET) C(CL_INVALID_VALUE) C(CL_INVALID_DEVICE_TYPE)
        C(CL_INVALID_PLATFORM) C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT) C(CL_INVALID_QUEUE_PROPERTIES)
        C(CL_INVALID_COMMAND_QUEUE) C(CL_INVALID_MEM_OBJECT) C(CL_INVALID_BINARY) C(CL_INVALID_BUILD_OPTIONS)
        C(CL_INVALID_PROGRAM) C(CL_INVALID_PROGRAM_EXECUTABLE) C(CL_INVALID_KERNEL_NAME)
        C(CL_INVALID_KERNEL) C(CL_INVALID_ARG_INDEX) C(CL_INVALID_ARG_VALUE) C(CL_INVALID_ARG_SIZE)
        C(CL_INVALID_KERNEL_ARGS) C(CL_INVALID_WORK_DIMENSION) C(CL_INVALID_WORK_GROUP_SIZE)
        C(CL_INVALID_WORK_ITEM_SIZE) C(CL_INVALID_GLOBAL_OFFSET) C(CL_INVALID_EVENT_WAIT_LIST)
        C(CL_INVALID_OPERATION) C(CL_INVALID_BUFFER_SIZE) C(CL_INVALID_GLOBAL_WORK_SIZE)
       
#undef C
    default:
        return "CL_UNKNOWN_ERROR";
    }
}

int nn_cl_fail(nn_err *e, cl_int st, const char *what)
{
    int code = NN_ESOFTWARE;
    const char *hint = "";
    if (st == CL_MEM_OBJECT_ALLOCATION_FAILURE || st == CL_OUT_OF_RESOURCES ||
        st == CL_OUT_OF_HOST_MEMORY || st == CL_INVALID_BUFFER_SIZE) {
        code = NN_ENODEV;
        hint = " (the device ran out of memory: try a smaller --batch-size)";
    }
    return nn_fail(e, code, "OpenCL: %s failed: %s (%d)%s", what, nn_cl_strerror(st), (int)st, hint);
}

/* ---------------------------------------------------------------- listing */

static void info_str(cl_device_id dv, cl_device_info what, char *out, size_t n)
{
    out[0] = 0;
    if (clGetDeviceInfo(dv, what, n - 1, out, NULL) != CL_SUCCESS)
        out[0] = 0;
    out[n - 1] = 0;
    /* trim trailing spaces some drivers leave */
    size_t l = strlen(out);
    while (l && isspace((unsigned char)out[l - 1]))
        out[--l] = 0;
}

/* 1 when `dir` is a folder nnrun can write or could be created: no existing
 * component is anything but a folder, and the deepest existing one is writable. */
static int folder_usable(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return 0;
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0)
            return S_ISDIR(st.st_mode) && access(p, W_OK | X_OK) == 0;
        if (errno != ENOENT)
            return 0; /* ENOTDIR: a component is a file */
        char *sl = strrchr(p, '/');
        if (!sl)
            return access(".", W_OK | X_OK) == 0;
        if (sl == p) {
            p[1] = 0;
            continue;
        }
        *sl = 0;
    }
}

/* PoCL keeps compiled kernels under $POCL_CACHE_DIR (else $XDG_CACHE_HOME/pocl,
 * else ~/.cache/pocl) and fails to build anything, or to list its device at
 * all, when that path cannot be a folder. A cache is an optimisation: move it
 * to a private folder in /tmp with one warning, before any OpenCL call. */
static void pocl_cache_check(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    char dir[4096];
    const char *var = "POCL_CACHE_DIR", *val = getenv(var), *x;
    if (val)
        snprintf(dir, sizeof dir, "%s", val); /* set but empty: PoCL asserts */
    else if ((x = getenv("XDG_CACHE_HOME")) && *x)
        snprintf(dir, sizeof dir, "%s/pocl", (var = "XDG_CACHE_HOME", val = x));
    else if ((x = getenv("HOME")) && *x)
        snprintf(dir, sizeof dir, "%s/.cache/pocl", (var = "HOME", val = x));
    else
        return;
    if (dir[0] && folder_usable(dir))
        return;
    char alt[64];
    snprintf(alt, sizeof alt, "/tmp/nnrun-pocl-%ld", (long)getuid());
    mkdir(alt, 0700);
    struct stat st;
    if (lstat(alt, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
        return;
    setenv("POCL_CACHE_DIR", alt, 1);
    nn_warn("%s=%s: %s is not a usable folder; PoCL's kernel cache goes to %s", var, val, dir[0] ? dir : "''", alt);
}

int nn_dev_list(nn_dev_info *out, int max, int *n, nn_err *e)
{
    *n = 0;
    pocl_cache_check();
    cl_uint np = 0;
    cl_platform_id plats[16];
    cl_int st = clGetPlatformIDs(16, plats, &np);
    if (st != CL_SUCCESS || np == 0)
        return nn_fail(e, NN_ENODEV,
                       "no OpenCL platform found (install an OpenCL driver, e.g. "
                       "'apt-get install pocl-opencl-icd', or set OCL_ICD_VENDORS)");
    if (np > 16)
        np = 16;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        cl_device_id devs[32];
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 32, devs, &nd) != CL_SUCCESS)
            continue;
        if (nd > 32)
            nd = 32;
        char pname[256] = "";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
        for (cl_uint i = 0; i < nd && *n < max; i++) {
            nn_dev_info *di = &out[*n];
            memset(di, 0, sizeof *di);
            di->index = *n;
            di->platform = plats[p];
            di->device = devs[i];
            snprintf(di->platform_name, sizeof di->platform_name, "%s", pname);
            info_str(devs[i], CL_DEVICE_NAME, di->name, sizeof di->name);
            info_str(devs[i], CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
            info_str(devs[i], CL_DEVICE_VERSION, di->version, sizeof di->version);
            info_str(devs[i], CL_DRIVER_VERSION, di->driver, sizeof di->driver);
            clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
            clGetDeviceInfo(devs[i], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem, &di->global_mem, NULL);
            clGetDeviceInfo(devs[i], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units,
                            &di->compute_units, NULL);
            (*n)++;
        }
    }
    if (*n == 0)
        return nn_fail(e, NN_ENODEV, "no OpenCL device found on %u platform(s)", np);
    return 0;
}

static int icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, nl) == 0)
            return 1;
    return nl == 0;
}

int nn_dev_select(const char *sel, nn_dev_info *out, nn_err *e)
{
    nn_dev_info all[64];
    int n, r = nn_dev_list(all, 64, &n, e);
    if (r)
        return r;
    const char *src = "--device";
    if (!sel || !*sel) {
        sel = getenv("NNRUN_DEVICE");
        src = "NNRUN_DEVICE";
    }
    if (!sel || !*sel) {
        /* a GPU; under mpirun the local rank's (rank k on a host takes its
         * GPU k modulo their number: dist.h) */
        int ngpu = 0, want = nn_dist_local_rank();
        for (int i = 0; i < n; i++)
            ngpu += (all[i].type & CL_DEVICE_TYPE_GPU) != 0;
        for (int i = 0, k = 0; i < n && ngpu; i++)
            if ((all[i].type & CL_DEVICE_TYPE_GPU) && k++ == want % ngpu) {
                *out = all[i];
                return 0;
            }
        *out = all[0];
        return 0;
    }
    char *end;
    long idx = strtol(sel, &end, 10);
    if (*end == 0 && end != sel) {
        if (idx < 0 || idx >= n)
            return nn_fail(e, NN_ENODEV, "%s %s: no such device (there are %d; see 'nnrun devices')", src,
                           sel, n);
        *out = all[idx];
        return 0;
    }
    cl_device_type want = 0;
    if (!strcasecmp(sel, "gpu"))
        want = CL_DEVICE_TYPE_GPU;
    else if (!strcasecmp(sel, "cpu"))
        want = CL_DEVICE_TYPE_CPU;
    for (int i = 0; i < n; i++) {
        if (want ? (all[i].type & want) != 0
                 : (icontains(all[i].name, sel) || icontains(all[i].platform_name, sel) ||
                    icontains(all[i].vendor, sel))) {
            *out = all[i];
            return 0;
        }
    }
    return nn_fail(e, NN_ENODEV, "%s '%s': no matching OpenCL device (see 'nnrun devices')", src, sel);
}

/* ---------------------------------------------------------------- program */

static const char *cache_dir(char *buf, size_t n)
{
    const char *x = getenv("NNRUN_CACHE_DIR");
    if (x && *x) {
        snprintf(buf, n, "%s", x);
        return buf;
    }
    x = getenv("XDG_CACHE_HOME");
    if (x && *x && x[0] == '/') {
        snprintf(buf, n, "%s/nnrun", x);
        return buf;
    }
    x = getenv("HOME");
    if (x && *x) {
        snprintf(buf, n, "%s/.cache/nnrun", x);
        return buf;
    }
    return NULL;
}

static void mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static char *assemble_source(const nn_dev *d, size_t *len)
{
    /* Header of #defines, then common.cl, then every other file in table order. */
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "/* nnrun " NNRUN_VERSION " */\n#define NN_GPU %d\n#define NN_CPU_DEVICE %d\n",
                      (d->type & CL_DEVICE_TYPE_GPU) ? 1 : 0, (d->type & CL_DEVICE_TYPE_CPU) ? 1 : 0);
    size_t total = (size_t)hl + 1;
    for (const nn_cl_source *s = nn_cl_sources; s->name; s++)
        total += s->len + 64;
    char *src = malloc(total);
    if (!src)
        return NULL;
    size_t o = 0;
    memcpy(src, head, (size_t)hl);
    o += (size_t)hl;
    for (int pass = 0; pass < 2; pass++)
        for (const nn_cl_source *s = nn_cl_sources; s->name; s++) {
            int is_common = strcmp(s->name, "common.cl") == 0;
            if (pass == 0 ? !is_common : is_common)
                continue;
            o += (size_t)sprintf(src + o, "\n#line 1 /* %s */\n", s->name);
            memcpy(src + o, s->text, s->len);
            o += s->len;
        }
    src[o] = 0;
    *len = o;
    return src;
}

static int build_log(nn_dev *d, cl_program p, nn_err *e, cl_int st)
{
    size_t n = 0;
    clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = malloc(n + 1);
    if (log) {
        clGetProgramBuildInfo(p, d->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        log[n] = 0;
    }
    nn_fail(e, NN_ESOFTWARE, "building the OpenCL program for %s failed (%s):\n%.1500s", d->name,
            nn_cl_strerror(st), log ? log : "(no log)");
    free(log);
    return e->code;
}

/* A cache entry: "NNRUNKC1", the binary's length and its FNV-1a hash (u64
 * LE each), then the binary the driver returned. */
#define KC_MAGIC "NNRUNKC1"
#define KC_HEAD 24
static uint64_t kc_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static void kc_put(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int build_program(nn_dev *d, nn_err *e)
{
    const char *opts = "-cl-std=CL1.2";
    size_t slen;
    char *src = assemble_source(d, &slen);
    if (!src)
        return nn_fail(e, NN_ENOMEM, "out of memory assembling kernels");
    uint64_t h = NN_FNV_INIT;
    h = nn_fnv1a(h, src, slen);
    h = nn_fnv1a(h, opts, strlen(opts));
    h = nn_fnv1a(h, d->platform_name, strlen(d->platform_name));
    h = nn_fnv1a(h, d->name, strlen(d->name));
    h = nn_fnv1a(h, d->version, strlen(d->version));
    h = nn_fnv1a(h, d->driver, strlen(d->driver));
    h = nn_fnv1a(h, NNRUN_VERSION, strlen(NNRUN_VERSION));

    char dir[3500], path[4096];
    const char *cdir = cache_dir(dir, sizeof dir);
    const int use_cache = cdir && !getenv("NNRUN_NO_CACHE");
    if (use_cache)
        snprintf(path, sizeof path, "%s/%016llx.nnkc", cdir, (unsigned long long)h);

    cl_int st;
    if (use_cache) {
        unsigned char *bin;
        size_t blen;
        nn_err ignore = {0};
        if (nn_read_file(path, (size_t)1 << 30, &bin, &blen, &ignore) == 0) {
            /* verified before the driver sees it: a truncated or bit-flipped
             * entry made PoCL assert or crash */
            const unsigned char *bp = bin + KC_HEAD;
            size_t plen = blen >= KC_HEAD ? blen - KC_HEAD : 0;
            if (blen < KC_HEAD || memcmp(bin, KC_MAGIC, 8) || kc_u64(bin + 8) != (uint64_t)plen || plen == 0 ||
                kc_u64(bin + 16) != nn_fnv1a(NN_FNV_INIT, bp, plen)) {
                unlink(path); /* rotten: rebuild silently */
                free(bin);
                bin = NULL;
            }
            cl_int bst;
            cl_program p = bin ? clCreateProgramWithBinary(d->ctx, 1, &d->device, &plen, &bp, &bst, &st) : NULL;
            if (bin && st == CL_SUCCESS && bst == CL_SUCCESS &&
                clBuildProgram(p, 1, &d->device, opts, NULL, NULL) == CL_SUCCESS) {
                d->prog = p;
                d->from_cache = 1;
                free(bin);
                free(src);
                return 0;
            }
            if (p)
                clReleaseProgram(p);
            free(bin); /* a stale or broken entry: rebuild silently */
        }
    }
    const char *sp = src;
    cl_program p = clCreateProgramWithSource(d->ctx, 1, &sp, &slen, &st);
    free(src);
    if (st != CL_SUCCESS)
        return nn_cl_fail(e, st, "clCreateProgramWithSource");
    st = clBuildProgram(p, 1, &d->device, opts, NULL, NULL);
    if (st != CL_SUCCESS) {
        build_log(d, p, e, st);
        clReleaseProgram(p);
        return e->code;
    }
    d->prog = p;
    if (use_cache) {
        size_t blen = 0;
        if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof blen, &blen, NULL) == CL_SUCCESS && blen) {
            unsigned char *bin = malloc(blen);
            unsigned char *bins[1] = {bin};
            if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
                mkdir_p(cdir);
                char tmp[4200];
                snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
                FILE *f = fopen(tmp, "wb");
                if (f) {
                    unsigned char head[KC_HEAD];
                    memcpy(head, KC_MAGIC, 8);
                    kc_put(head + 8, (uint64_t)blen);
                    kc_put(head + 16, nn_fnv1a(NN_FNV_INIT, bin, blen));
                    int ok = fwrite(head, 1, KC_HEAD, f) == KC_HEAD && fwrite(bin, 1, blen, f) == blen;
                    ok &= fclose(f) == 0;
                    if (!ok || rename(tmp, path) != 0)
                        unlink(tmp); /* the cache is an optimisation: failures are silent */
                }
            }
            free(bin);
        }
    }
    return 0;
}

int nn_dev_open(nn_dev *d, const char *sel, int profiling, nn_err *e)
{
    memset(d, 0, sizeof *d);
    nn_dev_info di;
    int r = nn_dev_select(sel, &di, e);
    if (r)
        return r;
    d->platform = di.platform;
    d->device = di.device;
    d->index = di.index;
    d->type = di.type;
    d->global_mem = di.global_mem;
    snprintf(d->name, sizeof d->name, "%s", di.name);
    snprintf(d->vendor, sizeof d->vendor, "%s", di.vendor);
    snprintf(d->version, sizeof d->version, "%s", di.version);
    snprintf(d->driver, sizeof d->driver, "%s", di.driver);
    snprintf(d->platform_name, sizeof d->platform_name, "%s", di.platform_name);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
    if (clGetDeviceInfo(d->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->units, &d->units, NULL) != CL_SUCCESS ||
        d->units == 0)
        d->units = 1;
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc, NULL);
    cl_uint bits = 1024;
    clGetDeviceInfo(d->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof bits, &bits, NULL);
    d->align = bits / 8 < 256 ? 256 : bits / 8;

    cl_int st;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform, 0};
    d->ctx = clCreateContext(props, 1, &d->device, NULL, NULL, &st);
    if (st != CL_SUCCESS) {
        nn_cl_fail(e, st, "clCreateContext");
        e->code = NN_ENODEV;
        return e->code;
    }
    d->profiling = profiling;
    d->q = clCreateCommandQueue(d->ctx, d->device, profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &st);
    if (st != CL_SUCCESS) {
        nn_cl_fail(e, st, "clCreateCommandQueue");
        nn_dev_close(d);
        e->code = NN_ENODEV;
        return e->code;
    }
    r = build_program(d, e);
    if (r) {
        nn_dev_close(d);
        return r;
    }
    return 0;
}

cl_event *nn_prof_slot(nn_dev *d, const char *name, double flops)
{
    if (!d->prof_on)
        return NULL;
    if (d->prof_n == d->prof_cap) {
        size_t nc = d->prof_cap ? d->prof_cap * 2 : 1024;
        cl_event *ne = realloc(d->prof_ev, nc * sizeof *ne);
        if (!ne)
            return NULL;
        d->prof_ev = ne;
        double *nf = realloc(d->prof_flops, nc * sizeof *nf);
        if (!nf)
            return NULL;
        d->prof_flops = nf;
        const char **nm = realloc(d->prof_name, nc * sizeof *nm);
        if (!nm)
            return NULL;
        d->prof_name = nm;
        d->prof_cap = nc;
    }
    d->prof_ev[d->prof_n] = NULL;
    d->prof_flops[d->prof_n] = flops;
    d->prof_name[d->prof_n] = name;
    return &d->prof_ev[d->prof_n++];
}

double nn_prof_time(nn_dev *d, size_t i)
{
    cl_ulong a = 0, b = 0;
    if (i >= d->prof_n || !d->prof_ev[i] ||
        clGetEventProfilingInfo(d->prof_ev[i], CL_PROFILING_COMMAND_START, sizeof a, &a, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(d->prof_ev[i], CL_PROFILING_COMMAND_END, sizeof b, &b, NULL) != CL_SUCCESS)
        return -1;
    return (double)(b - a) * 1e-9;
}

double nn_prof_sum(nn_dev *d, size_t from, size_t to, double *gemm_s, double *gemm_flops)
{
    double t = 0;
    for (size_t i = from; i < to && i < d->prof_n; i++) {
        double s = nn_prof_time(d, i);
        if (s < 0)
            continue;
        t += s;
        if (d->prof_flops[i] > 0) {
            if (gemm_s)
                *gemm_s += s;
            if (gemm_flops)
                *gemm_flops += d->prof_flops[i];
        }
    }
    return t;
}

void nn_prof_clear(nn_dev *d)
{
    for (size_t i = 0; i < d->prof_n; i++)
        if (d->prof_ev[i])
            clReleaseEvent(d->prof_ev[i]);
    d->prof_n = 0;
}

void nn_dev_close(nn_dev *d)
{
    nn_prof_clear(d);
    free(d->prof_ev);
    free(d->prof_flops);
    free(d->prof_name);
    d->prof_ev = NULL;
    d->prof_flops = NULL;
    d->prof_name = NULL;
    d->prof_cap = 0;
    for (int i = 0; i < d->nkernels; i++)
        clReleaseKernel(d->kernels[i].k);
    d->nkernels = 0;
    if (d->prog)
        clReleaseProgram(d->prog);
    if (d->q)
        clReleaseCommandQueue(d->q);
    if (d->ctx)
        clReleaseContext(d->ctx);
    d->prog = NULL;
    d->q = NULL;
    d->ctx = NULL;
}

int nn_dev_kernel(nn_dev *d, const char *name, cl_kernel *k, nn_err *e)
{
    for (int i = 0; i < d->nkernels; i++)
        if (strcmp(d->kernels[i].name, name) == 0) {
            *k = d->kernels[i].k;
            return 0;
        }
    if (d->nkernels == (int)(sizeof d->kernels / sizeof d->kernels[0]))
        return nn_fail(e, NN_ESOFTWARE, "too many kernels (raise nn_dev.kernels)");
    cl_int st;
    cl_kernel kk = clCreateKernel(d->prog, name, &st);
    if (st != CL_SUCCESS) {
        nn_fail(e, NN_ESOFTWARE, "OpenCL: kernel '%s': %s", name, nn_cl_strerror(st));
        return e->code;
    }
    snprintf(d->kernels[d->nkernels].name, sizeof d->kernels[0].name, "%s", name);
    d->kernels[d->nkernels++].k = kk;
    *k = kk;
    return 0;
}

static int launch_v(nn_dev *d, const char *name, int dims, const size_t *n, const size_t *l, double flops,
                    nn_err *e, int nargs, va_list ap)
{
    cl_kernel k;
    int r = nn_dev_kernel(d, name, &k, e);
    if (r)
        return r;
    for (int i = 0; i < nargs; i++) {
        nn_karg a = va_arg(ap, nn_karg);
        cl_int st = clSetKernelArg(k, (cl_uint)i, a.size, a.ptr);
        if (st != CL_SUCCESS)
            return nn_fail(e, NN_ESOFTWARE, "OpenCL: kernel '%s' argument %d: %s", name, i, nn_cl_strerror(st));
    }
    size_t g[2], lo[2];
    int have_local = 1;
    for (int i = 0; i < dims; i++) {
        if (n[i] == 0)
            return 0; /* nothing to do */
        lo[i] = l[i];
        if (!l[i])
            have_local = 0;
        g[i] = l[i] ? (n[i] + l[i] - 1) / l[i] * l[i] : n[i];
    }
    cl_int st = clEnqueueNDRangeKernel(d->q, k, (cl_uint)dims, NULL, g, have_local ? lo : NULL, 0, NULL,
                                       nn_prof_slot(d, name, flops));
    if (st != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "launching kernel '%s'", name);
        return nn_cl_fail(e, st, what);
    }
    return 0;
}

int nn_launch(nn_dev *d, const char *name, size_t n, size_t local, nn_err *e, int nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    int r = launch_v(d, name, 1, &n, &local, 0, e, nargs, ap);
    va_end(ap);
    return r;
}

static int launch2_v(nn_dev *d, const char *name, size_t n0, size_t n1, size_t l0, size_t l1, double flops,
                     nn_err *e, int nargs, va_list ap)
{
    size_t n[2] = {n0, n1}, l[2] = {l0, l1};
    if (!l0 || !l1)
        l[0] = l[1] = 0;
    return launch_v(d, name, 2, n, l, flops, e, nargs, ap);
}

int nn_launch2(nn_dev *d, const char *name, size_t n0, size_t n1, size_t l0, size_t l1, nn_err *e,
               int nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    int r = launch2_v(d, name, n0, n1, l0, l1, 0, e, nargs, ap);
    va_end(ap);
    return r;
}

int nn_launch2f(nn_dev *d, const char *name, size_t n0, size_t n1, size_t l0, size_t l1, double flops, nn_err *e,
                int nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    int r = launch2_v(d, name, n0, n1, l0, l1, flops, e, nargs, ap);
    va_end(ap);
    return r;
}

/* ---------------------------------------------------------------- buffers */

size_t nn_dev_align(const nn_dev *d, size_t bytes)
{
    size_t a = d->align ? d->align : 256;
    return (bytes + a - 1) / a * a;
}

int nn_buf_alloc(nn_dev *d, size_t bytes, const char *what, cl_mem *out, nn_err *e)
{
    *out = NULL;
    if (bytes == 0)
        bytes = 4;
    /* a data set is uploaded whole: a smaller batch does not help it */
    const char *hint = strstr(what, "dataset") ? "use \"limit\" in the data source, fewer samples, or a device with "
                                                 "more memory"
                                               : "try a smaller --batch-size";
    if (d->max_alloc && bytes > d->max_alloc)
        return nn_fail(e, NN_ENODEV, "%s needs %.1f MiB in one buffer, more than %s allows (%.1f MiB): %s", what,
                       bytes / 1048576.0, d->name, d->max_alloc / 1048576.0, hint);
    cl_int st;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &st);
    if (st != CL_SUCCESS)
        return nn_fail(e, NN_ENODEV, "cannot allocate %.1f MiB on %s for %s (%s): %s", bytes / 1048576.0, d->name,
                       what, nn_cl_strerror(st), hint);
    /* Touch it so that lazy allocators fail here, not in the middle of a step. */
    float zero = 0;
    st = clEnqueueFillBuffer(d->q, m, &zero, sizeof zero, 0, bytes / 4 * 4, 0, NULL, NULL);
    if (st != CL_SUCCESS) {
        clReleaseMemObject(m);
        return nn_fail(e, NN_ENODEV, "cannot allocate %.1f MiB on %s for %s (%s): %s", bytes / 1048576.0, d->name,
                       what, nn_cl_strerror(st), hint);
    }
    *out = m;
    return 0;
}

int nn_buf_sub(nn_dev *d, cl_mem parent, size_t off, size_t bytes, cl_mem *out, nn_err *e)
{
    cl_buffer_region reg = {off, bytes ? bytes : 4};
    cl_int st;
    *out = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &reg, &st);
    if (st != CL_SUCCESS)
        return nn_cl_fail(e, st, "clCreateSubBuffer");
    return 0;
}

int nn_buf_write(nn_dev *d, cl_mem m, size_t off, size_t bytes, const void *src, int blocking, nn_err *e)
{
    if (!bytes)
        return 0;
    cl_int st = clEnqueueWriteBuffer(d->q, m, blocking ? CL_TRUE : CL_FALSE, off, bytes, src, 0, NULL, NULL);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "writing a device buffer");
}

int nn_buf_read(nn_dev *d, cl_mem m, size_t off, size_t bytes, void *dst, nn_err *e)
{
    if (!bytes)
        return 0;
    cl_int st = clEnqueueReadBuffer(d->q, m, CL_TRUE, off, bytes, dst, 0, NULL, NULL);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "reading a device buffer");
}

int nn_buf_read_async(nn_dev *d, cl_mem m, size_t off, size_t bytes, void *dst, cl_event *ev, nn_err *e)
{
    cl_int st = clEnqueueReadBuffer(d->q, m, CL_FALSE, off, bytes, dst, 0, NULL, ev);
    if (st == CL_SUCCESS)
        st = clFlush(d->q);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "reading a device buffer");
}

int nn_event_done(cl_event ev, int *done, nn_err *e)
{
    cl_int status;
    cl_int st = clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
    if (st != CL_SUCCESS)
        return nn_cl_fail(e, st, "waiting for a device read");
    if (status < 0)
        return nn_cl_fail(e, status, "a device read");
    *done = status == CL_COMPLETE;
    return 0;
}

int nn_buf_fill(nn_dev *d, cl_mem m, size_t off, size_t nfloats, float v, nn_err *e)
{
    if (!nfloats)
        return 0;
    cl_int st = clEnqueueFillBuffer(d->q, m, &v, sizeof v, off, nfloats * sizeof(float), 0, NULL, NULL);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "filling a device buffer");
}

int nn_buf_copy(nn_dev *d, cl_mem src, cl_mem dst, size_t bytes, nn_err *e)
{
    if (!bytes)
        return 0;
    cl_int st = clEnqueueCopyBuffer(d->q, src, dst, 0, 0, bytes, 0, NULL, NULL);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "copying a device buffer");
}

int nn_buf_zero(nn_dev *d, cl_mem m, size_t off, size_t bytes, nn_err *e)
{
    return nn_buf_fill(d, m, off, bytes / sizeof(float), 0.0f, e);
}

void nn_buf_free(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

int nn_dev_finish(nn_dev *d, nn_err *e)
{
    cl_int st = clFinish(d->q);
    return st == CL_SUCCESS ? 0 : nn_cl_fail(e, st, "clFinish");
}
