/* modelbin.c - reads and writes model.bin (layout: modelbin.h, docs/FORMATS.md).
 *
 * Reading treats the file as hostile: every length is checked against the file
 * size before anything is allocated, the CRC-32 over the whole file is checked
 * before the header is parsed, and every header field is type-checked.
 * Writing is atomic: temp file in the same folder, fsync, rename, fsync folder. */
#include "modelbin.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"

#ifndef NNRUN_VERSION
#define NNRUN_VERSION "0.1.0"
#endif

/* Floats are stored as IEEE-754 binary32, little-endian. The byte order is
 * handled explicitly (get_u32/put_u32), so any host byte order works; the
 * float format itself must be binary32. */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
               "model.bin needs IEEE-754 binary32 floats");

#define CK_PREFIX 24u              /* magic + version + reserved + header length */
#define CK_ALIGN 64u               /* header padding and tensor alignment */
#define CK_MAX_JSON_INT ((uint64_t)1 << 53) /* larger integers are inexact in JSON (double) */

/* ---------------------------------------------------------------- bytes */

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* zlib's crc32 takes a 32-bit length: feed big buffers in pieces. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

static uint64_t round_up64(uint64_t x) { return (x + CK_ALIGN - 1) / CK_ALIGN * CK_ALIGN; }

/* ---------------------------------------------------------------- errors */

/* 65 with "<file>: <message>". */
__attribute__((format(printf, 3, 4)))
static int corrupt(nn_err *e, const char *file, const char *fmt, ...)
{
    char m[NN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return nn_fail(e, NN_EDATA, "%s: %s", file, m);
}

static int oom(nn_err *e, const char *file)
{
    return nn_oom(e, "for the header and tensors of %s", file);
}

/* ---------------------------------------------------------------- free/find */

void nn_modelbin_free(nn_modelbin *c)
{
    if (!c)
        return;
    free(c->model_json);
    if (c->classes)
        for (int i = 0; i < c->nclasses; i++)
            free(c->classes[i]);
    free(c->classes);
    free(c->mean);
    free(c->std);
    if (c->tensors)
        for (int i = 0; i < c->ntensors; i++) {
            free(c->tensors[i].name);
            free(c->tensors[i].data);
        }
    free(c->tensors);
    free(c->extra_json);
    memset(c, 0, sizeof *c);
}

const nn_modelbin_tensor *nn_modelbin_find(const nn_modelbin *c, const char *name)
{
    if (!c || !name || !c->tensors)
        return NULL;
    for (int i = 0; i < c->ntensors; i++)
        if (c->tensors[i].name && strcmp(c->tensors[i].name, name) == 0)
            return &c->tensors[i];
    return NULL;
}

/* 0: unique; 1: *dup is a repeated name; -1: out of memory. */
static int find_duplicate(const char *const *names, size_t n, const char **dup)
{
    size_t a, b;
    int r = nn_find_duplicate(names, n, &a, &b);
    if (r > 0)
        *dup = names[b];
    return r;
}

/* ---------------------------------------------------------------- reading */

/* The member `key` of `obj`, or NULL; *twice is set when the key repeats. */
static const cJSON *member(const cJSON *obj, const char *key, int *twice)
{
    const cJSON *found = NULL, *it;
    *twice = 0;
    cJSON_ArrayForEach(it, obj)
        if (it->string && strcmp(it->string, key) == 0) {
            if (found) {
                *twice = 1;
                return found;
            }
            found = it;
        }
    return found;
}

/* A non-negative integer that JSON represents exactly (<= 2^53). */
static int get_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > (double)CK_MAX_JSON_INT || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static size_t array_count(const cJSON *a)
{
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
        n++;
    return n;
}

/* Looks up a key of the header root or a tensor entry: 0 ok (maybe absent when
 * !required), else 65 set. `where` prefixes messages ("header", "header tensors[3]"). */
static int field(const cJSON *obj, const char *key, int required, const char *where,
                 const char *file, const cJSON **out, nn_err *e)
{
    int twice;
    *out = member(obj, key, &twice);
    if (twice)
        return corrupt(e, file, "%s: key \"%s\" appears more than once", where, key);
    if (!*out && required)
        return corrupt(e, file, "%s: required key \"%s\" is missing", where, key);
    return 0;
}

/* Reads normalize.mean / normalize.std into a new float array. */
static int read_norm_values(const cJSON *arr, const char *key, int is_std, size_t n,
                            const char *file, float **out, nn_err *e)
{
    float *v = malloc(n * sizeof *v);
    if (!v)
        return oom(e, file);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it)) {
            free(v);
            return corrupt(e, file, "header normalize.%s[%zu]: must be a number", key, i);
        }
        float f = (float)it->valuedouble;
        if (!isfinite(it->valuedouble) || !isfinite(f)) {
            free(v);
            return corrupt(e, file, "header normalize.%s[%zu]: %g is not a finite float32", key, i,
                           it->valuedouble);
        }
        if (is_std && !(f > 0)) {
            free(v);
            return corrupt(e, file, "header normalize.std[%zu]: %g must be > 0", i, it->valuedouble);
        }
        v[i++] = f;
    }
    *out = v;
    return 0;
}

static int read_normalize(const cJSON *norm, const char *file, nn_modelbin *c, nn_err *e)
{
    if (cJSON_IsNull(norm))
        return 0;
    if (!cJSON_IsObject(norm))
        return corrupt(e, file, "header normalize: must be null or {\"mean\": [numbers], \"std\": [numbers]}");
    const cJSON *mean, *std;
    int rc;
    if ((rc = field(norm, "mean", 1, "header normalize", file, &mean, e)) ||
        (rc = field(norm, "std", 1, "header normalize", file, &std, e)))
        return rc;
    if (!cJSON_IsArray(mean))
        return corrupt(e, file, "header normalize.mean: must be an array of numbers");
    if (!cJSON_IsArray(std))
        return corrupt(e, file, "header normalize.std: must be an array of numbers");
    size_t nm = array_count(mean), ns = array_count(std);
    if (nm != ns)
        return corrupt(e, file, "header normalize: mean has %zu values but std has %zu", nm, ns);
    if (nm == 0)
        return corrupt(e, file, "header normalize: mean and std are empty (use null for no normalization)");
    if (nm > INT_MAX)
        return corrupt(e, file, "header normalize: %zu values are too many", nm);
    if ((rc = read_norm_values(mean, "mean", 0, nm, file, &c->mean, e)) ||
        (rc = read_norm_values(std, "std", 1, nm, file, &c->std, e)))
        return rc;
    c->nnorm = (int)nm;
    return 0;
}

static int read_classes(const cJSON *cls, const char *file, nn_modelbin *c, nn_err *e)
{
    if (!cJSON_IsArray(cls))
        return corrupt(e, file, "header classes: must be an array of strings");
    size_t n = array_count(cls);
    if (n == 0)
        return 0;
    if (n > INT_MAX)
        return corrupt(e, file, "header classes: %zu names are too many", n);
    c->classes = calloc(n, sizeof *c->classes);
    if (!c->classes)
        return oom(e, file);
    c->nclasses = (int)n;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cls) {
        if (!cJSON_IsString(it))
            return corrupt(e, file, "header classes[%d]: must be a string", i);
        if (!(c->classes[i] = nn_strdup(it->valuestring)))
            return oom(e, file);
        i++;
    }
    return 0;
}

/* Validates one tensor entry; fills name/ndim/shape/length and *offset. */
static int read_tensor_entry(const cJSON *t, int i, uint64_t data_bytes, const char *file,
                             nn_modelbin_tensor *out, uint64_t *offset, nn_err *e)
{
    char where[64];
    snprintf(where, sizeof where, "header tensors[%d]", i);
    if (!cJSON_IsObject(t))
        return corrupt(e, file, "%s: must be an object {name, shape, offset, length}", where);
    const cJSON *name, *shape, *off, *len;
    int rc;
    if ((rc = field(t, "name", 1, where, file, &name, e)) ||
        (rc = field(t, "shape", 1, where, file, &shape, e)) ||
        (rc = field(t, "offset", 1, where, file, &off, e)) ||
        (rc = field(t, "length", 1, where, file, &len, e)))
        return rc;
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return corrupt(e, file, "%s.name: must be a non-empty string", where);

    if (!cJSON_IsArray(shape))
        return corrupt(e, file, "%s.shape: must be an array of 1 to %d positive integers", where,
                       NN_MODELBIN_MAX_DIMS);
    size_t nd = array_count(shape);
    if (nd < 1 || nd > NN_MODELBIN_MAX_DIMS)
        return corrupt(e, file, "%s.shape: has %zu dimensions, expected 1 to %d", where, nd,
                       NN_MODELBIN_MAX_DIMS);
    size_t prod = 1;
    int k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (get_uint(d, &v) || v < 1 || v > (uint64_t)LONG_MAX || v > SIZE_MAX)
            return corrupt(e, file, "%s.shape[%d]: must be a positive integer", where, k);
        out->shape[k++] = (long)v;
        if (nn_mul_size(prod, (size_t)v, &prod))
            return corrupt(e, file, "%s.shape: the element count overflows", where);
    }
    size_t bytes;
    if (nn_mul_size(prod, 4, &bytes))
        return corrupt(e, file, "%s.shape: the element count overflows", where);

    uint64_t length, o;
    if (get_uint(len, &length))
        return corrupt(e, file, "%s.length: must be a non-negative integer", where);
    if (length != (uint64_t)prod)
        return corrupt(e, file, "%s.length: %llu does not match the %zu elements of its shape", where,
                       (unsigned long long)length, prod);
    if (get_uint(off, &o))
        return corrupt(e, file, "%s.offset: must be a non-negative integer", where);
    if (o % 4 != 0)
        return corrupt(e, file, "%s.offset: %llu is not a multiple of 4", where, (unsigned long long)o);
    if (o > data_bytes || (uint64_t)bytes > data_bytes - o)
        return corrupt(e, file, "%s: bytes %llu..%llu lie beyond the %llu bytes of tensor data", where,
                       (unsigned long long)o, (unsigned long long)o + (unsigned long long)bytes,
                       (unsigned long long)data_bytes);
    if (!(out->name = nn_strdup(name->valuestring)))
        return oom(e, file);
    out->ndim = (int)nd;
    out->length = prod;
    *offset = o;
    return 0;
}

/* Validates the header and loads the tensors from `data` (data_bytes long). */
static int read_header(const cJSON *root, const unsigned char *data, uint64_t data_bytes,
                       const char *file, nn_modelbin *c, nn_err *e)
{
    if (!cJSON_IsObject(root))
        return corrupt(e, file, "header: must be a JSON object");
    const cJSON *model, *classes, *norm, *tensors, *db, *ver, *extra;
    int rc;
    if ((rc = field(root, "model", 1, "header", file, &model, e)) ||
        (rc = field(root, "classes", 1, "header", file, &classes, e)) ||
        (rc = field(root, "normalize", 1, "header", file, &norm, e)) ||
        (rc = field(root, "tensors", 1, "header", file, &tensors, e)) ||
        (rc = field(root, "data_bytes", 1, "header", file, &db, e)) ||
        (rc = field(root, "nnrun_version", 0, "header", file, &ver, e)) ||
        (rc = field(root, "extra", 0, "header", file, &extra, e)))
        return rc;

    uint64_t hdr_db;
    if (get_uint(db, &hdr_db))
        return corrupt(e, file, "header data_bytes: must be a non-negative integer");
    if (hdr_db != data_bytes)
        return corrupt(e, file, "header data_bytes: says %llu but the file holds %llu bytes of tensor data",
                       (unsigned long long)hdr_db, (unsigned long long)data_bytes);
    if (ver && !cJSON_IsString(ver))
        return corrupt(e, file, "header nnrun_version: must be a string");

    if (!cJSON_IsObject(model))
        return corrupt(e, file, "header model: must be a JSON object");
    if (!(c->model_json = cJSON_PrintUnformatted(model)))
        return oom(e, file);
    if ((rc = read_classes(classes, file, c, e)) || (rc = read_normalize(norm, file, c, e)))
        return rc;
    if (extra && !(c->extra_json = cJSON_PrintUnformatted(extra)))
        return oom(e, file);

    if (!cJSON_IsArray(tensors))
        return corrupt(e, file, "header tensors: must be an array of objects");
    size_t nt = array_count(tensors);
    if (nt > NN_MODELBIN_MAX_TENSORS)
        return corrupt(e, file, "header tensors: %zu tensors exceed the limit of %d", nt,
                       NN_MODELBIN_MAX_TENSORS);
    if (nt == 0)
        return data_bytes ? corrupt(e, file, "header data_bytes: %llu bytes of tensor data but no tensors",
                                    (unsigned long long)data_bytes)
                          : 0;
    c->tensors = calloc(nt, sizeof *c->tensors);
    uint64_t *offs = calloc(nt, sizeof *offs);
    const char **names = calloc(nt, sizeof *names);
    if (!c->tensors || !offs || !names) {
        free(offs);
        free(names);
        return oom(e, file);
    }
    c->ntensors = (int)nt;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        if ((rc = read_tensor_entry(t, i, data_bytes, file, &c->tensors[i], &offs[i], e)))
            goto out;
        names[i] = c->tensors[i].name;
        i++;
    }
    const char *dup = NULL;
    int d = find_duplicate(names, nt, &dup);
    if (d < 0) {
        rc = oom(e, file);
        goto out;
    }
    if (d > 0) {
        rc = corrupt(e, file, "header tensors: duplicate tensor name \"%s\"", dup);
        goto out;
    }
    /* Every range lies inside the data, and together they are no larger than
     * it (no overlaps can multiply the allocation): allocation is bounded by
     * the file size. */
    uint64_t total = 0, last = 0;
    for (i = 0; i < (int)nt; i++) {
        total += (uint64_t)c->tensors[i].length * 4;
        if (offs[i] + (uint64_t)c->tensors[i].length * 4 > last)
            last = offs[i] + (uint64_t)c->tensors[i].length * 4;
        if (total > data_bytes) {
            rc = corrupt(e, file, "header tensors: the tensors hold more bytes than the file's %llu bytes of data "
                                  "(overlapping tensors)",
                         (unsigned long long)data_bytes);
            goto out;
        }
    }
    if (last < data_bytes) {
        rc = corrupt(e, file, "header data_bytes: %llu bytes of tensor data, but the last tensor ends at byte %llu "
                              "(%llu bytes of trailing garbage)",
                     (unsigned long long)data_bytes, (unsigned long long)last,
                     (unsigned long long)(data_bytes - last));
        goto out;
    }
    for (i = 0; i < (int)nt; i++) {
        nn_modelbin_tensor *tt = &c->tensors[i];
        if (!(tt->data = malloc(tt->length * sizeof(float)))) {
            rc = oom(e, file);
            goto out;
        }
        const unsigned char *p = data + offs[i];
        for (size_t j = 0; j < tt->length; j++) {
            uint32_t u = get_u32(p + 4 * j);
            memcpy(&tt->data[j], &u, 4);
        }
    }
    rc = 0;
out:
    free(offs);
    free(names);
    return rc;
}

/* Magic, version and header length: as much of them as `len` bytes hold. */
static int check_prefix(const unsigned char *buf, size_t len, const char *file, nn_err *e)
{
    if (len == 0)
        return corrupt(e, file, "truncated: the file is empty");
    if (memcmp(buf, NN_MODELBIN_MAGIC, len < 8 ? len : 8) != 0)
        return corrupt(e, file, "not an nnrun model file (bad magic)");
    if (len >= 12) {
        uint32_t ver = get_u32(buf + 8);
        if (ver > NN_MODELBIN_VERSION)
            return corrupt(e, file, "format version %lu is newer than this nnrun supports (%d)",
                           (unsigned long)ver, NN_MODELBIN_VERSION);
        if (ver == 0)
            return corrupt(e, file, "byte 8: format version 0 is invalid");
    }
    if (len >= CK_PREFIX && get_u64(buf + 16) > (uint64_t)NN_MODELBIN_MAX_HEADER)
        return corrupt(e, file, "byte 16: header length %llu exceeds the limit of %ld bytes",
                       (unsigned long long)get_u64(buf + 16), (long)NN_MODELBIN_MAX_HEADER);
    return 0;
}

static int parse_impl(const unsigned char *buf, size_t len, const char *file, nn_modelbin *c, nn_err *e)
{
    int prc = check_prefix(buf, len, file, e);
    if (prc)
        return prc;
    if (len < CK_PREFIX + 4)
        return corrupt(e, file, "truncated: %zu bytes is shorter than the %u-byte fixed part", len,
                       CK_PREFIX + 4);
    uint64_t h = get_u64(buf + 16);
    uint64_t dstart = round_up64(CK_PREFIX + h);
    if (dstart + 4 > (uint64_t)len)
        return corrupt(e, file,
                       "truncated: the header length at byte 16 (%llu) puts the tensor data at byte %llu, "
                       "but the file has only %zu bytes",
                       (unsigned long long)h, (unsigned long long)dstart, len);
    uint32_t stored = get_u32(buf + len - 4), actual = crc_update(0, buf, len - 4);
    if (stored != actual)
        return corrupt(e, file,
                       "checksum mismatch: the file is corrupt (CRC-32 at byte %zu is %08lx, contents give %08lx)",
                       len - 4, (unsigned long)stored, (unsigned long)actual);
    for (uint64_t p = CK_PREFIX + h; p < dstart; p++)
        if (buf[p])
            return corrupt(e, file, "byte %llu: the padding after the header is not zero",
                           (unsigned long long)p);
    const char *hdr = (const char *)buf + CK_PREFIX;
    if (memchr(hdr, 0, (size_t)h))
        return corrupt(e, file, "byte %llu: the header contains a NUL byte",
                       (unsigned long long)((const char *)memchr(hdr, 0, (size_t)h) - (const char *)buf));
    char *text = malloc((size_t)h + 1);
    if (!text)
        return oom(e, file);
    memcpy(text, hdr, (size_t)h);
    text[h] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t at = end && end >= text && end <= text + h ? (size_t)(end - text) : 0;
        free(text);
        return corrupt(e, file, "byte %zu: the header is not valid JSON", CK_PREFIX + at);
    }
    free(text);
    int rc = read_header(root, buf + dstart, (uint64_t)len - 4 - dstart, file, c, e);
    cJSON_Delete(root);
    return rc;
}

int nn_modelbin_parse(const unsigned char *buf, size_t len, const char *name, nn_modelbin *c, nn_err *e)
{
    memset(c, 0, sizeof *c);
    if (!name)
        name = "model.bin";
    if (!buf)
        len = 0;
    int rc = parse_impl(buf, len, name, c, e);
    if (rc)
        nn_modelbin_free(c);
    return rc;
}

int nn_modelbin_read(const char *path, nn_modelbin *c, nn_err *e)
{
    memset(c, 0, sizeof *c);
    int fd;
    uint64_t size;
    int rc = nn_open_input(path, &fd, &size, e);
    if (rc)
        return rc;
    /* The fixed part first: a file that is no model.bin (or a sparse one) is
     * refused before the rest is read. */
    unsigned char head[CK_PREFIX];
    ssize_t hn = pread(fd, head, sizeof head, 0);
    if (hn < 0)
        rc = nn_fail(e, NN_EIO, "%s: read error: %s", path, strerror(errno));
    else
        rc = check_prefix(head, (size_t)hn, path, e);
    unsigned char *buf = NULL;
    size_t len;
    if (!rc)
        rc = nn_read_fd(fd, path, size, (size_t)NN_MODELBIN_MAX_BYTES, 0, &buf, &len, e);
    close(fd);
    if (rc)
        return rc;
    rc = nn_modelbin_parse(buf, len, path, c, e);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- resume */

/* A resume field: an integer in [lo, hi], checked before any conversion. */
static int resume_int(const cJSON *o, const char *key, double lo, double hi, const char *path, double *v, nn_err *e)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x))
        return corrupt(e, path, "header extra.resume.%s: required integer is missing", key);
    double d = x->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return corrupt(e, path, "header extra.resume.%s: %.15g is not an integer from %.0f to %.0f", key, d, lo, hi);
    *v = d;
    return 0;
}

int nn_modelbin_resume(const nn_modelbin *c, const char *path, int epochs, size_t ntr, int batch_size, nn_resume *out,
                       nn_err *e)
{
    memset(out, 0, sizeof *out);
    cJSON *x = c->extra_json ? cJSON_Parse(c->extra_json) : NULL;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(x, "resume");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rs, "acc");
    /* a crafted epoch of 1e9 replayed that many shuffles; 1e300 overflowed
     * the int it went into */
    const size_t B = batch_size > 0 ? (size_t)batch_size : 1;
    const double nb = (double)((ntr + B - 1) / B), big = 9007199254740992.0; /* 2^53 */
    double ep, bt, st, ot, n, fmt = 1;
    int r = 0;
    if (!cJSON_IsObject(rs)) {
        r = corrupt(e, path, "not a training checkpoint (no resume state); a model.bin cannot be resumed");
    } else if (cJSON_GetObjectItemCaseSensitive(rs, "format") &&
               (r = resume_int(rs, "format", 1, NN_RESUME_FORMAT, path, &fmt, e))) {
    } else if ((r = resume_int(rs, "train_samples", 0, big, path, &n, e))) {
    } else if ((size_t)n != ntr) {
        r = corrupt(e, path, "the checkpoint was taken with %zu training samples, the data now has %zu", (size_t)n,
                    ntr);
    } else if ((r = resume_int(rs, "epoch", 1, (double)(epochs > 0 ? epochs : 0) + 1, path, &ep, e)) ||
               (r = resume_int(rs, "batch", 0, nb, path, &bt, e)) || (r = resume_int(rs, "step", 0, big, path, &st, e)) ||
               (r = resume_int(rs, "optimizer_steps", 0, big, path, &ot, e))) {
    } else if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) {
        r = corrupt(e, path, "header extra.resume.acc: expected 3 numbers");
    } else {
        int i = 0;
        for (const cJSON *v = a->child; !r && v; v = v->next, i++)
            if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= FLT_MAX))
                r = corrupt(e, path, "header extra.resume.acc[%d]: not a finite float", i);
            else
                out->acc[i] = (float)v->valuedouble;
    }
    /* weights and optimiser state: finite, Adam's second moment >= 0 */
    for (int i = 0; !r && i < c->ntensors; i++) {
        const nn_modelbin_tensor *t = &c->tensors[i];
        const int second = !strcmp(t->name, "optimizer.m2");
        for (size_t j = 0; j < t->length; j++)
            if (!isfinite(t->data[j]) || (second && t->data[j] < 0)) {
                r = corrupt(e, path, "tensor '%s'[%zu] is %g: %s", t->name, j, (double)t->data[j],
                            second ? "must be finite and >= 0" : "must be finite");
                break;
            }
    }
    if (!r) {
        out->format = (int)fmt;
        out->epoch = (int)ep;
        out->batch = (size_t)bt;
        out->step = (uint64_t)st;
        out->optimizer_steps = (long)ot;
        out->train_samples = (size_t)n;
    }
    cJSON_Delete(x);
    return r;
}

/* ---------------------------------------------------------------- writing */

/* cJSON helpers: 0 ok, -1 out of memory (the item is freed either way on failure). */
static int add_item(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    if (!(key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item))) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

static int add_num(cJSON *obj, const char *key, double v) { return add_item(obj, key, cJSON_CreateNumber(v)); }

/* Validates `c` and builds the header text; fills tensor offsets (relative to
 * the data start) and the data size. 0, 65 (invalid content) or 70. */
static int build_header(const char *path, const nn_modelbin *c, uint64_t *offs, uint64_t *data_bytes,
                        char **out, nn_err *e)
{
    int rc = 0;
    cJSON *root = NULL, *model = NULL, *extra = NULL;
    const char **names = NULL;
#define BAD(...) do { rc = corrupt(e, path, __VA_ARGS__); goto done; } while (0)
#define OOM() do { rc = oom(e, path); goto done; } while (0)

    if (!c->model_json)
        BAD("cannot write: model_json is missing");
    model = cJSON_ParseWithOpts(c->model_json, NULL, 1);
    if (!model || !cJSON_IsObject(model))
        BAD("cannot write: model_json is not a valid JSON object");
    if (c->extra_json && !(extra = cJSON_ParseWithOpts(c->extra_json, NULL, 1)))
        BAD("cannot write: extra_json is not valid JSON");
    if (c->nclasses < 0 || (c->nclasses > 0 && !c->classes))
        BAD("cannot write: bad class list (nclasses %d)", c->nclasses);
    for (int i = 0; i < c->nclasses; i++)
        if (!c->classes[i])
            BAD("cannot write: classes[%d] is NULL", i);
    if (c->nnorm < 0 || (c->nnorm > 0 && (!c->mean || !c->std)))
        BAD("cannot write: bad normalization (nnorm %d)", c->nnorm);
    for (int i = 0; i < c->nnorm; i++) {
        if (!isfinite(c->mean[i]))
            BAD("cannot write: normalize.mean[%d] is not finite", i);
        if (!isfinite(c->std[i]) || !(c->std[i] > 0))
            BAD("cannot write: normalize.std[%d] is %g, must be finite and > 0", i, (double)c->std[i]);
    }
    if (c->ntensors < 0 || c->ntensors > NN_MODELBIN_MAX_TENSORS || (c->ntensors > 0 && !c->tensors))
        BAD("cannot write: bad tensor count %d (limit %d)", c->ntensors, NN_MODELBIN_MAX_TENSORS);

    uint64_t pos = 0;
    for (int i = 0; i < c->ntensors; i++) {
        const nn_modelbin_tensor *t = &c->tensors[i];
        if (!t->name || !t->name[0])
            BAD("cannot write: tensors[%d] has no name", i);
        if (t->ndim < 1 || t->ndim > NN_MODELBIN_MAX_DIMS)
            BAD("cannot write: tensor \"%s\" has %d dimensions, expected 1 to %d", t->name, t->ndim,
                NN_MODELBIN_MAX_DIMS);
        size_t prod = 1;
        for (int k = 0; k < t->ndim; k++) {
            if (t->shape[k] < 0 || (uint64_t)t->shape[k] > CK_MAX_JSON_INT)
                BAD("cannot write: tensor \"%s\" shape[%d] is %ld", t->name, k, t->shape[k]);
            if (nn_mul_size(prod, (size_t)t->shape[k], &prod))
                BAD("cannot write: tensor \"%s\": the element count overflows", t->name);
        }
        if (t->length == 0 || prod == 0)
            BAD("cannot write: tensor \"%s\" has zero length (not allowed)", t->name);
        if (prod != t->length)
            BAD("cannot write: tensor \"%s\" length %zu does not match the %zu elements of its shape",
                t->name, t->length, prod);
        if (!t->data)
            BAD("cannot write: tensor \"%s\" has no data", t->name);
        if ((uint64_t)prod > CK_MAX_JSON_INT / 8 || pos > CK_MAX_JSON_INT / 2)
            BAD("cannot write: tensor \"%s\" is too large", t->name);
        pos = round_up64(pos);
        offs[i] = pos;
        pos += (uint64_t)prod * 4;
    }
    *data_bytes = pos;
    if (c->ntensors > 0) {
        if (!(names = malloc((size_t)c->ntensors * sizeof *names)))
            OOM();
        for (int i = 0; i < c->ntensors; i++)
            names[i] = c->tensors[i].name;
        const char *dup = NULL;
        int d = find_duplicate(names, (size_t)c->ntensors, &dup);
        if (d < 0)
            OOM();
        if (d > 0)
            BAD("cannot write: duplicate tensor name \"%s\"", dup);
    }

    if (!(root = cJSON_CreateObject()))
        OOM();
    cJSON *m = model;
    model = NULL; /* owned by root from here on (add_item frees it on failure) */
    if (add_item(root, "model", m))
        OOM();
    cJSON *cls = cJSON_CreateArray();
    if (add_item(root, "classes", cls))
        OOM();
    for (int i = 0; i < c->nclasses; i++)
        if (add_item(cls, NULL, cJSON_CreateString(c->classes[i])))
            OOM();
    if (c->nnorm == 0) {
        if (add_item(root, "normalize", cJSON_CreateNull()))
            OOM();
    } else {
        cJSON *norm = cJSON_CreateObject(), *mean = cJSON_CreateArray(), *std = cJSON_CreateArray();
        if (add_item(root, "normalize", norm)) {
            cJSON_Delete(mean);
            cJSON_Delete(std);
            OOM();
        }
        if (add_item(norm, "mean", mean)) {
            cJSON_Delete(std);
            OOM();
        }
        if (add_item(norm, "std", std))
            OOM();
        for (int i = 0; i < c->nnorm; i++)
            if (add_num(mean, NULL, c->mean[i]) || add_num(std, NULL, c->std[i]))
                OOM();
    }
    cJSON *tens = cJSON_CreateArray();
    if (add_item(root, "tensors", tens))
        OOM();
    for (int i = 0; i < c->ntensors; i++) {
        const nn_modelbin_tensor *t = &c->tensors[i];
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        if (add_item(tens, NULL, o)) {
            cJSON_Delete(shape);
            OOM();
        }
        if (add_item(o, "name", cJSON_CreateString(t->name))) {
            cJSON_Delete(shape);
            OOM();
        }
        if (add_item(o, "shape", shape))
            OOM();
        for (int k = 0; k < t->ndim; k++)
            if (add_num(shape, NULL, (double)t->shape[k]))
                OOM();
        if (add_num(o, "offset", (double)offs[i]) || add_num(o, "length", (double)t->length))
            OOM();
    }
    if (add_num(root, "data_bytes", (double)pos) ||
        add_item(root, "nnrun_version", cJSON_CreateString(NNRUN_VERSION)))
        OOM();
    if (extra) {
        cJSON *x = extra;
        extra = NULL;
        if (add_item(root, "extra", x))
            OOM();
    }
    if (!(*out = cJSON_PrintUnformatted(root)))
        OOM();
    if (strlen(*out) > (size_t)NN_MODELBIN_MAX_HEADER) {
        free(*out);
        *out = NULL;
        BAD("cannot write: the header would exceed the limit of %ld bytes", (long)NN_MODELBIN_MAX_HEADER);
    }
done:
#undef BAD
#undef OOM
    cJSON_Delete(model);
    cJSON_Delete(extra);
    cJSON_Delete(root);
    free(names);
    return rc;
}

/* Buffered writer that keeps the running CRC. */
typedef struct wbuf {
    int fd;
    int err;          /* errno of the first failure, 0 if none */
    uint32_t crc;
    size_t n;
    unsigned char buf[1 << 16];
} wbuf;

static int wflush(wbuf *w)
{
    size_t off = 0;
    while (!w->err && off < w->n) {
        ssize_t k = write(w->fd, w->buf + off, w->n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            w->err = k < 0 ? errno : EIO;
        else
            off += (size_t)k;
    }
    w->n = 0;
    return w->err ? -1 : 0;
}

/* Appends n bytes (NULL = zeros), adding them to the CRC when `crc`. */
static int wput(wbuf *w, const void *p, size_t n, int crc)
{
    const unsigned char *s = p;
    while (n > 0 && !w->err) {
        if (w->n == sizeof w->buf && wflush(w))
            break;
        size_t k = sizeof w->buf - w->n;
        if (k > n)
            k = n;
        if (s) {
            memcpy(w->buf + w->n, s, k);
            s += k;
        } else {
            memset(w->buf + w->n, 0, k);
        }
        if (crc)
            w->crc = crc_update(w->crc, w->buf + w->n, k);
        w->n += k;
        n -= k;
    }
    return w->err ? -1 : 0;
}

static int wfloats(wbuf *w, const float *v, size_t n)
{
    unsigned char tmp[4096];
    while (n > 0 && !w->err) {
        size_t k = n > sizeof tmp / 4 ? sizeof tmp / 4 : n;
        for (size_t j = 0; j < k; j++) {
            uint32_t u;
            memcpy(&u, &v[j], 4);
            put_u32(tmp + 4 * j, u);
        }
        wput(w, tmp, 4 * k, 1);
        v += k;
        n -= k;
    }
    return w->err ? -1 : 0;
}

/* Mode for a new file: that of the file being replaced, else 0666 & ~umask
 * (read from /proc, since umask() itself is not thread-safe), else 0644. */
static mode_t new_file_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 07777;
    mode_t mode = 0644;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        unsigned mask;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &mask) == 1) {
                mode = 0666 & ~(mode_t)mask;
                break;
            }
        fclose(f);
    }
    return mode;
}

static int write_body(wbuf *w, const char *hdr, size_t hlen, const nn_modelbin *c, const uint64_t *offs)
{
    unsigned char pre[CK_PREFIX];
    memcpy(pre, NN_MODELBIN_MAGIC, 8);
    put_u32(pre + 8, NN_MODELBIN_VERSION);
    put_u32(pre + 12, 0);
    put_u64(pre + 16, hlen);
    wput(w, pre, sizeof pre, 1);
    wput(w, hdr, hlen, 1);
    uint64_t pos = CK_PREFIX + hlen, dstart = round_up64(pos);
    wput(w, NULL, (size_t)(dstart - pos), 1);
    pos = 0;
    for (int i = 0; i < c->ntensors; i++) {
        wput(w, NULL, (size_t)(offs[i] - pos), 1);
        wfloats(w, c->tensors[i].data, c->tensors[i].length);
        pos = offs[i] + (uint64_t)c->tensors[i].length * 4;
    }
    unsigned char crc[4];
    put_u32(crc, w->crc);
    wput(w, crc, 4, 0);
    wflush(w);
    return w->err ? -1 : 0;
}

/* Removes ".BASE.tmp.PID.XXXXXX" files in dir whose process no longer exists:
 * what a writer killed between creating its temporary file and renaming it
 * (kill -9, power loss) left behind. A live writer's file is kept (a reused
 * PID at worst keeps a stale file; it never deletes a live one's unless the
 * PID was reused, and then that writer's rename fails cleanly). Best effort:
 * errors are ignored. */
static void sweep_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) || strncmp(n + 1 + bl, ".tmp.", 5))
            continue;
        char *endp;
        errno = 0;
        long pid = strtol(n + 1 + bl + 5, &endp, 10);
        if (errno || endp == n + 1 + bl + 5 || *endp != '.' || strlen(endp) != 7 || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to judge) */
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, n) < sizeof p)
            unlink(p);
    }
    closedir(d);
}

int nn_modelbin_write(const char *path, const nn_modelbin *c, nn_err *e)
{
    if (!path || !path[0])
        return nn_fail(e, NN_EIO, "cannot write model: empty path");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return nn_fail(e, NN_EIO, "%s: cannot write: the path names a folder, not a file", path);
    int crc0 = nn_check_output(path, NULL, e);
    if (crc0)
        return crc0;

    uint64_t *offs = calloc(c->ntensors > 0 ? (size_t)c->ntensors : 1, sizeof *offs);
    if (!offs)
        return oom(e, path);
    char *hdr = NULL, *tmp = NULL, *dir = NULL;
    wbuf *w = NULL;
    int fd = -1, rc;
    uint64_t data_bytes = 0;
    if ((rc = build_header(path, c, offs, &data_bytes, &hdr, e)))
        goto done;

    size_t dirlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
    tmp = malloc(dirlen + blen + 48);
    dir = malloc(dirlen + 2);
    w = malloc(sizeof *w);
    if (!tmp || !dir || !w) {
        rc = oom(e, path);
        goto done;
    }
    if (slash) {
        memcpy(dir, path, dirlen);
        dir[dirlen] = 0;
        if (dirlen == 0)
            strcpy(dir, "/");
        memcpy(tmp, path, dirlen + 1); /* includes the slash */
        sprintf(tmp + dirlen + 1, ".%s.tmp.%ld.XXXXXX", base, (long)getpid());
    } else {
        strcpy(dir, ".");
        sprintf(tmp, ".%s.tmp.%ld.XXXXXX", base, (long)getpid());
    }
    mode_t mode = new_file_mode(path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = nn_fail(e, NN_EIO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        tmp[0] = 0; /* nothing to unlink */
        goto done;
    }
    if (fchmod(fd, mode) != 0) {
        rc = nn_fail(e, NN_EIO, "%s: cannot set permissions of %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    w->fd = fd;
    w->err = 0;
    w->crc = 0;
    w->n = 0;
    if (write_body(w, hdr, strlen(hdr), c, offs)) {
        rc = nn_fail(e, NN_EIO, "%s: writing %s failed: %s", path, tmp, strerror(w->err));
        goto done;
    }
    if (fsync(fd) != 0) {
        rc = nn_fail(e, NN_EIO, "%s: syncing %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        rc = nn_fail(e, NN_EIO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = nn_fail(e, NN_EIO, "%s: cannot replace it with %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    tmp[0] = 0; /* renamed: nothing left to clean up */
    sweep_stale_temps(dir, base);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = nn_fail(e, NN_EIO, "%s: written, but opening its folder %s to sync it failed: %s", path, dir,
                     strerror(errno));
        goto done;
    }
    if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP) {
        rc = nn_fail(e, NN_EIO, "%s: written, but syncing its folder %s failed: %s", path, dir,
                     strerror(errno));
        close(dfd);
        goto done;
    }
    close(dfd);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (rc && tmp && tmp[0])
        unlink(tmp);
    free(w);
    free(tmp);
    free(dir);
    free(hdr);
    free(offs);
    return rc;
}
