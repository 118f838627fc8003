/* idx.c - the IDX (MNIST-style) loader (nn_idx_load).
 *
 * Files may be gzip-compressed or raw (zlib's gzread reads raw files as is).
 * Header: two zero bytes, a type byte (0x08 ubyte, 0x0D big-endian float32;
 * other types are rejected), a dimension count, then that many big-endian
 * u32 dimensions; the first is the sample count.
 *  - images: 2..4 dims. [n,d] -> c=1,h=1,w=d; [n,h,w] -> c=1; [n,h,w,c] ->
 *    moved to channel-major (c,h,w). ubyte is scaled by 1/255, float32 is
 *    taken as is (NaN/Inf rejected).
 *  - labels: 1 dim, ubyte, as many as images; nclasses = max label + 1.
 *
 * Hostile headers: the dimensions are checked against the limits in
 * dataset.h before anything is allocated; a raw file's size is checked
 * against what its header declares before the data is read; for gzip the
 * output grows as data actually arrives (at most doubling), so a small file
 * declaring gigabytes fails with "truncated" without allocating them.
 * Bytes after the declared data are an error ("trailing bytes") unless
 * src->limit stops reading early (then the rest is never read). */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../util.h"

typedef struct {
    const char *path;
    gzFile g;
    int type; /* 0x08 or 0x0D */
    int ndim;
    size_t dims[4];
    size_t n;     /* dims[0] */
    size_t per;   /* values per sample */
    size_t esize; /* bytes per value */
    size_t hdr;   /* header bytes */
    long long fsize;
    int direct; /* raw (not gzip) */
} idxf;

static const char *type_name(int t)
{
    switch (t) {
    case 0x08: return "ubyte";
    case 0x09: return "sbyte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

/* Reads up to want bytes; *got says how many arrived. Returns 0, or 65 on a
 * gzip data error (truncation is not an error here: got < want). */
static int read_full(idxf *f, void *buf, size_t want, size_t *got, nn_err *e)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < want) {
        size_t chunk = want - *got;
        if (chunk > (1u << 30))
            chunk = 1u << 30;
        int r = gzread(f->g, p + *got, (unsigned)chunk);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f->g, &zerr);
            if (zerr == Z_ERRNO)
                return nn_fail(e, NN_ENOINPUT, "%s: read error: %s", f->path, strerror(errno));
            if (zerr == Z_MEM_ERROR)
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", f->path);
            /* zlib prefixes its message with the path given to gzopen */
            size_t pl = strlen(f->path);
            if (!strncmp(msg, f->path, pl) && msg[pl] == ':')
                msg += pl + (msg[pl + 1] == ' ' ? 2 : 1);
            return nn_fail(e, NN_EDATA, "%s: corrupt gzip data: %s", f->path, msg);
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static int open_idx(idxf *f, const char *path, const char *what, nn_err *e)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd;
    uint64_t size;
    int rc = nn_open_input(path, &fd, &size, e);
    if (rc)
        return rc;
    f->fsize = (long long)size;
    errno = 0;
    f->g = gzdopen(fd, "rb");
    if (!f->g) {
        close(fd);
        return nn_oom(e, "opening %s", path);
    }
    gzbuffer(f->g, 1u << 18);
    unsigned char h[16];
    size_t got;
    rc = read_full(f, h, 4, &got, e);
    if (rc)
        return rc;
    if (got < 4)
        return nn_fail(e, NN_EDATA, "%s: too short for an IDX header (%zu bytes)", path, got);
    if (h[0] != 0 || h[1] != 0)
        return nn_fail(e, NN_EDATA,
                       "%s: bad magic %02x %02x %02x %02x: not an IDX file (expected 00 00 type ndim)",
                       path, h[0], h[1], h[2], h[3]);
    f->type = h[2];
    f->ndim = h[3];
    if (f->type != 0x08 && f->type != 0x0D)
        return nn_fail(e, NN_EDATA,
                       "%s: unsupported IDX type 0x%02X (%s); nnrun reads 0x08 (ubyte) and 0x0D (float32)",
                       path, f->type, type_name(f->type));
    f->esize = f->type == 0x08 ? 1 : 4;
    int is_labels = strcmp(what, "labels") == 0;
    if (is_labels ? f->ndim != 1 : (f->ndim < 2 || f->ndim > 4))
        return nn_fail(e, NN_EDATA, "%s: %s file has %d dimensions, expected %s", path, what,
                       f->ndim, is_labels ? "1" : "2 to 4");
    if (is_labels && f->type != 0x08)
        return nn_fail(e, NN_EDATA, "%s: labels must be ubyte (0x08), not %s", path,
                       type_name(f->type));
    rc = read_full(f, h, 4 * (size_t)f->ndim, &got, e);
    if (rc)
        return rc;
    if (got < 4 * (size_t)f->ndim)
        return nn_fail(e, NN_EDATA, "%s: truncated IDX header", path);
    f->hdr = 4 + 4 * (size_t)f->ndim;
    f->direct = gzdirect(f->g);
    f->per = 1;
    for (int i = 0; i < f->ndim; i++) {
        f->dims[i] = (size_t)h[4 * i] << 24 | (size_t)h[4 * i + 1] << 16 |
                     (size_t)h[4 * i + 2] << 8 | (size_t)h[4 * i + 3];
        if (f->dims[i] == 0)
            return nn_fail(e, NN_EDATA, "%s: dimension %d is 0", path, i);
        if (i > 0) {
            if (f->dims[i] > (size_t)NN_MAX_FEATURES ||
                nn_mul_size(f->per, f->dims[i], &f->per) || f->per > (size_t)NN_MAX_FEATURES)
                return nn_fail(e, NN_EDATA, "%s: samples of more than %ld values", path,
                               (long)NN_MAX_FEATURES);
        }
    }
    f->n = f->dims[0];
    if (f->n > (size_t)NN_MAX_SAMPLES)
        return nn_fail(e, NN_EDATA, "%s: header declares %zu samples, more than the limit of %ld",
                       path, f->n, (long)NN_MAX_SAMPLES);
    return 0;
}

static void close_idx(idxf *f)
{
    if (f->g)
        gzclose(f->g);
    f->g = NULL;
}

/* Raw files: the size must hold what is read (and, when all is read, no more). */
static int check_raw_size(idxf *f, size_t nuse, const char *what, nn_err *e)
{
    if (!f->direct)
        return 0;
    size_t need = nuse * f->per * f->esize; /* checked against limits by the caller */
    long long have = f->fsize - (long long)f->hdr;
    if (have < 0)
        have = 0;
    if ((unsigned long long)have < need)
        return nn_fail(e, NN_EDATA, "%s: truncated: expected %zu bytes of %s data, got %lld",
                       f->path, need, what, have);
    size_t all = f->n * f->per * f->esize;
    if (nuse == f->n && (unsigned long long)have > all)
        return nn_fail(e, NN_EDATA, "%s: %llu trailing bytes after the %zu samples the header declares",
                       f->path, (unsigned long long)have - all, f->n);
    return 0;
}

/* gzip: after all declared data was read, anything more is an error. */
static int check_trailing(idxf *f, nn_err *e)
{
    unsigned char b[4096];
    size_t got, total = 0;
    for (;;) {
        int rc = read_full(f, b, sizeof b, &got, e);
        if (rc)
            return rc;
        total += got;
        if (got < sizeof b || total >= (1u << 20))
            break;
    }
    if (total)
        return nn_fail(e, NN_EDATA, "%s: %s%zu trailing bytes after the %zu samples the header declares",
                       f->path, total >= (1u << 20) ? "at least " : "", total, f->n);
    return 0;
}

static int load_images(idxf *f, size_t nuse, nn_dataset *out, nn_err *e)
{
    size_t total, bytes;
    if (nn_mul_size(nuse, f->per, &total) || nn_mul_size(total, sizeof(float), &bytes) ||
        bytes > (size_t)NN_MAX_BYTES)
        return nn_fail(e, NN_EDATA, "%s: %zu samples of %zu values exceed the %ld-byte limit",
                       f->path, nuse, f->per, (long)NN_MAX_BYTES);
    int rc = check_raw_size(f, nuse, "pixel", e);
    if (rc)
        return rc;
    size_t sbytes = f->per * f->esize;
    size_t batch = ((size_t)1 << 20) / sbytes;
    if (batch == 0)
        batch = 1;
    if (batch > nuse)
        batch = nuse;
    unsigned char *stage = malloc(batch * sbytes);
    /* raw: size verified, allocate all; gzip: start with ~64 MiB and grow */
    size_t cap = nuse;
    if (!f->direct) {
        size_t start = ((size_t)64 << 20) / (f->per * sizeof(float));
        if (start < batch)
            start = batch;
        if (start < cap)
            cap = start;
    }
    float *x = malloc(cap * f->per * sizeof *x);
    if (!stage || !x) {
        free(stage);
        free(x);
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", f->path);
    }
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;
    int hwc = f->ndim == 4;
    size_t H = f->ndim >= 3 ? f->dims[1] : 1, W = f->ndim >= 3 ? f->dims[2] : f->dims[1];
    size_t C = hwc ? f->dims[3] : 1, HW = H * W;
    size_t done = 0;
    while (done < nuse) {
        size_t k = nuse - done < batch ? nuse - done : batch, got;
        if ((rc = read_full(f, stage, k * sbytes, &got, e)))
            goto fail;
        if (got < k * sbytes) {
            rc = nn_fail(e, NN_EDATA, "%s: truncated: expected %zu bytes of pixel data, got %zu",
                         f->path, nuse * sbytes, done * sbytes + got);
            goto fail;
        }
        if (done + k > cap) {
            size_t nc = cap * 2 < done + k ? done + k : cap * 2;
            if (nc > nuse)
                nc = nuse;
            float *nx = realloc(x, nc * f->per * sizeof *nx);
            if (!nx) {
                rc = nn_fail(e, NN_ENOMEM, "%s: out of memory", f->path);
                goto fail;
            }
            x = nx;
            cap = nc;
        }
        for (size_t s = 0; s < k; s++) {
            const unsigned char *in = stage + s * sbytes;
            float *o = x + (done + s) * f->per;
            if (f->type == 0x08) {
                if (!hwc) {
                    for (size_t i = 0; i < f->per; i++)
                        o[i] = lut[in[i]];
                } else {
                    for (size_t p = 0; p < HW; p++)
                        for (size_t ch = 0; ch < C; ch++)
                            o[ch * HW + p] = lut[in[p * C + ch]];
                }
            } else {
                for (size_t i = 0; i < f->per; i++) {
                    const unsigned char *b = in + 4 * i;
                    uint32_t u = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                 (uint32_t)b[2] << 8 | (uint32_t)b[3];
                    float v;
                    memcpy(&v, &u, sizeof v);
                    if (!isfinite(v)) {
                        rc = nn_fail(e, NN_EDATA, "%s: sample %zu, value %zu is not finite", f->path,
                                     done + s, i);
                        goto fail;
                    }
                    size_t oi = hwc ? (i % C) * HW + i / C : i;
                    o[oi] = v;
                }
            }
        }
        done += k;
    }
    if (nuse == f->n && !f->direct && (rc = check_trailing(f, e)))
        goto fail;
    free(stage);
    out->n = nuse;
    out->c = (int)C;
    out->h = (int)H;
    out->w = (int)W;
    out->dim = f->per;
    out->x = x;
    return 0;
fail:
    free(stage);
    free(x);
    return rc;
}

static int load_labels(idxf *f, size_t nuse, nn_dataset *out, nn_err *e)
{
    int rc = check_raw_size(f, nuse, "label", e);
    if (rc)
        return rc;
    unsigned char *b = malloc(nuse ? nuse : 1);
    int *y = malloc(nuse * sizeof *y);
    if (!b || !y) {
        free(b);
        free(y);
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", f->path);
    }
    size_t got;
    if ((rc = read_full(f, b, nuse, &got, e)))
        goto fail;
    if (got < nuse) {
        rc = nn_fail(e, NN_EDATA, "%s: truncated: expected %zu bytes of label data, got %zu",
                     f->path, nuse, got);
        goto fail;
    }
    if (nuse == f->n && !f->direct && (rc = check_trailing(f, e)))
        goto fail;
    int max = 0;
    for (size_t i = 0; i < nuse; i++) {
        y[i] = b[i];
        if (b[i] > max)
            max = b[i];
    }
    free(b);
    out->y = y;
    out->nclasses = max + 1;
    return 0;
fail:
    free(b);
    free(y);
    return rc;
}

int nn_idx_load(const nn_source *src, nn_dataset *out, nn_err *e)
{
    memset(out, 0, sizeof *out);
    if (!src || !src->images)
        return nn_fail(e, NN_EDATA, "%s: idx source has no images file",
                       src && src->json_path ? src->json_path : "data");
    idxf im, lb;
    memset(&lb, 0, sizeof lb);
    int rc = open_idx(&im, src->images, "images", e);
    if (rc)
        goto done;
    if (src->labels) {
        if ((rc = open_idx(&lb, src->labels, "labels", e)))
            goto done;
        if (lb.n != im.n) {
            rc = nn_fail(e, NN_EDATA, "%s has %zu labels but %s has %zu images", src->labels, lb.n,
                         src->images, im.n);
            goto done;
        }
    }
    size_t nuse = im.n;
    if (src->limit > 0 && (size_t)src->limit < nuse)
        nuse = (size_t)src->limit;
    out->task = NN_TASK_CLASSIFY;
    if ((rc = load_images(&im, nuse, out, e)))
        goto done;
    if (src->labels && (rc = load_labels(&lb, nuse, out, e)))
        goto done;
done:
    close_idx(&im);
    close_idx(&lb);
    if (rc)
        nn_dataset_free(out);
    return rc;
}
