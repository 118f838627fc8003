/* test_modelbin.c - model.bin: round trip, corruption detection, hostile
 * headers, atomic writes. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "modelbin.h"
#include "tutil.h"
#include "util.h"

#define RUN(x) do { if (x) return 1; } while (0)

/* ------------------------------------------------------------ helpers */

/* A private folder under /tmp; removed (one level deep) by rm_tree. */
static int mk_tmpdir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/nnrun_ckpt_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[1024];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Number of leftover temp files (".<base>.tmp.XXXXXX") in `dir`. */
static int count_temps(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static int read_all(const char *path, unsigned char **buf, size_t *len)
{
    nn_err e = {0};
    return nn_read_file(path, (size_t)1 << 30, buf, len, &e);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *b, size_t len)
{
    put32(b + len - 4, (uint32_t)crc32(0, b, (uInt)(len - 4)));
}

static int is_zeroed(const nn_modelbin *c)
{
    static const nn_modelbin z;
    return memcmp(c, &z, sizeof z) == 0;
}

/* Storage for a sample model. */
typedef struct sample {
    nn_modelbin c;
    nn_modelbin_tensor t[4];
    float w0[6], w1[3], w2[2 * 3 * 2 * 2], w3[1];
    char *cls[3];
    float mean[3], std[3];
} sample;

/* Fills a model with 4 tensors (odd sizes so alignment padding is exercised),
 * 3 classes, normalization and an extra object. Nothing is heap-allocated. */
static void make_sample(sample *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 6; i++)
        s->w0[i] = (float)i * 0.25f - 0.6f;
    s->w1[0] = -0.0f;
    s->w1[1] = 1e-45f; /* denormal */
    s->w1[2] = 3.4028235e38f;
    for (int i = 0; i < 24; i++)
        s->w2[i] = sinf((float)i) * 1e-3f;
    s->w3[0] = 0.1f;
    static char n0[] = "dense1.w", n1[] = "dense1.b", n2[] = "conv.w", n3[] = "scale";
    s->t[0] = (nn_modelbin_tensor){n0, 2, {2, 3}, 6, s->w0};
    s->t[1] = (nn_modelbin_tensor){n1, 1, {3}, 3, s->w1};
    s->t[2] = (nn_modelbin_tensor){n2, 4, {2, 3, 2, 2}, 24, s->w2};
    s->t[3] = (nn_modelbin_tensor){n3, 1, {1}, 1, s->w3};
    static char c0[] = "cat", c1[] = "dog", c2[] = "caf\xc3\xa9 \"q\"\n";
    s->cls[0] = c0;
    s->cls[1] = c1;
    s->cls[2] = c2;
    s->mean[0] = 0.485f, s->mean[1] = 0.456f, s->mean[2] = -0.406f;
    s->std[0] = 0.229f, s->std[1] = 0.224f, s->std[2] = 1e-30f;
    static char model[] = "{ \"input\": [3, 2, 2], \"layers\": [{\"type\": \"dense\", \"units\": 3}], \"lr\": 0.1 }";
    static char extra[] = "{\"vocab\": [\"a\", \"b\"], \"n\": 2}";
    s->c.model_json = model;
    s->c.nclasses = 3;
    s->c.classes = s->cls;
    s->c.nnorm = 3;
    s->c.mean = s->mean;
    s->c.std = s->std;
    s->c.ntensors = 4;
    s->c.tensors = s->t;
    s->c.extra_json = extra;
}

/* Canonical (unformatted) form of a JSON text; caller frees. */
static char *canon(const char *json)
{
    size_t n = strlen(json);
    char *out = malloc(n + 1);
    size_t k = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = json[i];
        if (in_str) {
            out[k++] = ch;
            if (ch == '\\' && i + 1 < n)
                out[k++] = json[++i];
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
            out[k++] = ch;
        } else if (ch != ' ' && ch != '\n' && ch != '\t') {
            out[k++] = ch;
        }
    }
    out[k] = 0;
    return out;
}

/* Checks that `got` equals the sample exactly (floats bit for bit). */
static int same_as_sample(const nn_modelbin *got, const sample *s)
{
    char *m = canon(s->c.model_json);
    int eq = got->model_json && strcmp(got->model_json, m) == 0;
    free(m);
    CHECK(eq, "model_json %s", got->model_json ? got->model_json : "(null)");
    CHECK(got->nclasses == 3, "nclasses %d", got->nclasses);
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(got->classes[i], s->cls[i]) == 0, "class %d is %s", i, got->classes[i]);
    CHECK(got->nnorm == 3, "nnorm %d", got->nnorm);
    CHECK(memcmp(got->mean, s->mean, sizeof s->mean) == 0, "mean differs");
    CHECK(memcmp(got->std, s->std, sizeof s->std) == 0, "std differs");
    CHECK(got->ntensors == 4, "ntensors %d", got->ntensors);
    for (int i = 0; i < 4; i++) {
        const nn_modelbin_tensor *a = &got->tensors[i], *b = &s->t[i];
        CHECK(strcmp(a->name, b->name) == 0, "tensor %d name %s", i, a->name);
        CHECK(a->ndim == b->ndim && a->length == b->length, "tensor %s ndim/length", a->name);
        for (int k = 0; k < a->ndim; k++)
            CHECK(a->shape[k] == b->shape[k], "tensor %s shape[%d]", a->name, k);
        CHECK(memcmp(a->data, b->data, a->length * sizeof(float)) == 0, "tensor %s data differs", a->name);
    }
    CHECK(got->extra_json && strcmp(got->extra_json, "{\"vocab\":[\"a\",\"b\"],\"n\":2}") == 0, "extra_json %s",
          got->extra_json ? got->extra_json : "(null)");
    return 0;
}

/* Writes the sample to <dir>/model.bin and loads the bytes. */
static int sample_bytes(char *dir, size_t dn, char *path, size_t pn, unsigned char **buf, size_t *len)
{
    sample s;
    make_sample(&s);
    nn_err e = {0};
    CHECK(mk_tmpdir(dir, dn) == 0, "mkdtemp: %s", strerror(errno));
    snprintf(path, pn, "%s/model.bin", dir);
    CHECK(nn_modelbin_write(path, &s.c, &e) == 0, "write: %s", e.msg);
    CHECK(read_all(path, buf, len) == 0, "read back");
    return 0;
}

/* Builds a file from header text (single quotes become double quotes) and
 * data_bytes of float data, with a correct CRC. hlen_field overrides the
 * header length field unless it is UINT64_MAX. */
static unsigned char *craft(const char *hdr_sq, size_t data_bytes, uint64_t hlen_field, size_t *len)
{
    size_t h = strlen(hdr_sq), d = (24 + h + 63) / 64 * 64;
    *len = d + data_bytes + 4;
    unsigned char *b = calloc(1, *len);
    memcpy(b, "NNRUNBIN", 8);
    put32(b + 8, 1);
    put64(b + 16, hlen_field == UINT64_MAX ? h : hlen_field);
    for (size_t i = 0; i < h; i++)
        b[24 + i] = hdr_sq[i] == '\'' ? '"' : (unsigned char)hdr_sq[i];
    for (size_t i = 0; i + 4 <= data_bytes; i += 4) {
        float f = (float)i * 0.5f;
        memcpy(b + d + i, &f, 4); /* the test host is little-endian (x86/ARM) */
    }
    fix_crc(b, *len);
    return b;
}

/* Expects 65 with `frag` in the message. */
static int expect_bad(const char *hdr, size_t data_bytes, uint64_t hlen_field, const char *frag)
{
    size_t len;
    unsigned char *b = craft(hdr, data_bytes, hlen_field, &len);
    nn_modelbin c;
    nn_err e = {0};
    int rc = nn_modelbin_parse(b, len, "hostile.bin", &c, &e);
    free(b);
    int z = is_zeroed(&c);
    if (rc == 0)
        nn_modelbin_free(&c);
    CHECK(rc == 65, "header %s: rc %d (%s), expected 65 with \"%s\"", hdr, rc, e.msg, frag);
    CHECK(strstr(e.msg, frag) && strncmp(e.msg, "hostile.bin: ", 13) == 0,
          "header %s: message \"%s\" lacks \"%s\"", hdr, e.msg, frag);
    CHECK(z, "struct not zeroed after failure (%s)", hdr);
    return 0;
}

#define T0 "'tensors':[{'name':'w','shape':[2,3],'offset':0,'length':6}]"
#define HDR(model, cls, norm, tens, db) "{'model':" model ",'classes':" cls ",'normalize':" norm ",'tensors':" tens ",'data_bytes':" db "}"

/* ------------------------------------------------------------ tests */

TEST(modelbin_roundtrip)
{
    char dir[64], path[128];
    sample s;
    make_sample(&s);
    nn_err e = {0};
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.bin", dir);
    int rc = nn_modelbin_write(path, &s.c, &e);
    CHECK(rc == 0, "write: %d %s", rc, e.msg);
    nn_modelbin c;
    rc = nn_modelbin_read(path, &c, &e);
    CHECK(rc == 0, "read: %d %s", rc, e.msg);
    int bad = same_as_sample(&c, &s);
    const nn_modelbin_tensor *t = nn_modelbin_find(&c, "conv.w");
    CHECK(!bad, "round trip differs");
    CHECK(t && t->length == 24 && t->data[5] == s.w2[5], "find conv.w");
    CHECK(nn_modelbin_find(&c, "nope") == NULL && nn_modelbin_find(&c, NULL) == NULL, "find absent");

    /* Writing what was read gives the identical file. */
    char path2[160];
    snprintf(path2, sizeof path2, "%s/again.bin", dir);
    CHECK(nn_modelbin_write(path2, &c, &e) == 0, "rewrite: %s", e.msg);
    unsigned char *b1, *b2;
    size_t l1, l2;
    CHECK(read_all(path, &b1, &l1) == 0 && read_all(path2, &b2, &l2) == 0, "read bytes");
    int same = l1 == l2 && memcmp(b1, b2, l1) == 0;
    free(b1);
    free(b2);
    nn_modelbin_free(&c);
    CHECK(is_zeroed(&c), "free zeroes");
    nn_modelbin_free(&c); /* twice is fine */
    CHECK(same, "rewritten file differs");
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) != 0600, "mode stayed mkstemp's 0600 (%o)",
          (unsigned)(st.st_mode & 0777));
    CHECK(count_temps(dir) == 0, "temp files left");
    rm_tree(dir);
    return 0;
}

TEST(modelbin_nonfinite_and_minimal)
{
    char dir[64], path[128];
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/m.bin", dir);
    float v[4] = {NAN, INFINITY, -INFINITY, 1.0f};
    char name[] = "w";
    nn_modelbin_tensor t = {name, 1, {4}, 4, v};
    char model[] = "{}";
    nn_modelbin in = {0};
    in.model_json = model;
    in.ntensors = 1;
    in.tensors = &t;
    nn_err e = {0};
    CHECK(nn_modelbin_write(path, &in, &e) == 0, "write: %s", e.msg);
    nn_modelbin c;
    CHECK(nn_modelbin_read(path, &c, &e) == 0, "read: %s", e.msg);
    int ok = c.ntensors == 1 && memcmp(c.tensors[0].data, v, sizeof v) == 0 && c.nclasses == 0 &&
             !c.classes && c.nnorm == 0 && !c.mean && !c.std && !c.extra_json && strcmp(c.model_json, "{}") == 0;
    nn_modelbin_free(&c);
    CHECK(ok, "diverged model (NaN/Inf weights) must load unchanged");

    /* No tensors at all. */
    in.ntensors = 0;
    in.tensors = NULL;
    CHECK(nn_modelbin_write(path, &in, &e) == 0, "write empty: %s", e.msg);
    CHECK(nn_modelbin_read(path, &c, &e) == 0, "read empty: %s", e.msg);
    ok = c.ntensors == 0 && !c.tensors;
    nn_modelbin_free(&c);
    CHECK(ok, "empty model");
    rm_tree(dir);
    return 0;
}

TEST(modelbin_layout)
{
    char dir[64], path[128];
    unsigned char *b;
    size_t len;
    RUN(sample_bytes(dir, sizeof dir, path, sizeof path, &b, &len));
    rm_tree(dir);
    int ok = memcmp(b, "NNRUNBIN", 8) == 0 && b[8] == 1 && !b[9] && !b[10] && !b[11] && !b[12] && !b[13] &&
             !b[14] && !b[15];
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | b[16 + i];
    size_t d = (size_t)((24 + h + 63) / 64 * 64);
    ok = ok && d + 4 <= len;
    for (size_t i = 24 + (size_t)h; ok && i < d; i++)
        ok = b[i] == 0;
    uint32_t crc = (uint32_t)crc32(0, b, (uInt)(len - 4));
    ok = ok && b[len - 4] == (crc & 0xff) && b[len - 1] == crc >> 24;
    char *hdr = ok ? strndup((char *)b + 24, (size_t)h) : NULL;
    free(b);
    CHECK(ok && hdr, "fixed part / padding / CRC wrong");
    /* Offsets are 64-aligned: tensor sizes 24, 12, 96, 4 bytes -> 0, 64, 128, 256; data_bytes 260. */
    int lay = strstr(hdr, "\"offset\":0,") && strstr(hdr, "\"offset\":64,") && strstr(hdr, "\"offset\":128,") &&
              strstr(hdr, "\"offset\":256,") && strstr(hdr, "\"data_bytes\":260") &&
              strstr(hdr, "\"nnrun_version\":\"") && strstr(hdr, "\"extra\":{") && len == d + 260 + 4;
    CHECK(lay, "header %s", hdr);
    free(hdr);
    return 0;
}

TEST(modelbin_missing_file)
{
    nn_modelbin c;
    nn_err e = {0};
    int rc = nn_modelbin_read("/tmp/nnrun-no-such-dir/model.bin", &c, &e);
    CHECK(rc == 66, "rc %d", rc);
    CHECK(strstr(e.msg, "/tmp/nnrun-no-such-dir/model.bin"), "message %s", e.msg);
    CHECK(is_zeroed(&c), "not zeroed");
    nn_modelbin_free(&c);
    return 0;
}

/* Corrupting any single byte (several bit patterns) is detected with 65. */
TEST(modelbin_flip_every_byte)
{
    char dir[64], path[128];
    unsigned char *b;
    size_t len;
    RUN(sample_bytes(dir, sizeof dir, path, sizeof path, &b, &len));
    static const unsigned char masks[] = {0x01, 0x80, 0xff, 0x5a};
    unsigned char *m = malloc(len);
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(m, b, len);
            m[i] ^= masks[k];
            nn_modelbin c;
            nn_err e = {0};
            int rc = nn_modelbin_parse(m, len, "flip.bin", &c, &e);
            int z = is_zeroed(&c);
            if (rc == 0)
                nn_modelbin_free(&c);
            if (rc != 65 || !z || strncmp(e.msg, "flip.bin: ", 10) != 0) {
                free(m);
                free(b);
                rm_tree(dir);
                CHECK(0, "byte %zu ^ 0x%02x: rc %d zeroed %d (%s)", i, masks[k], rc, z, e.msg);
            }
        }
    /* And through the file API, with the path in the message. */
    memcpy(m, b, len);
    m[len / 2] ^= 0x10;
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(m, 1, len, f) == len && fclose(f) == 0, "rewrite file");
    nn_modelbin c;
    nn_err e = {0};
    int rc = nn_modelbin_read(path, &c, &e);
    free(m);
    free(b);
    rm_tree(dir);
    CHECK(rc == 65 && strstr(e.msg, path) && strstr(e.msg, "checksum mismatch: the file is corrupt"), "rc %d %s",
          rc, e.msg);
    return 0;
}

TEST(modelbin_truncate_every_length)
{
    char dir[64], path[128];
    unsigned char *b;
    size_t len;
    RUN(sample_bytes(dir, sizeof dir, path, sizeof path, &b, &len));
    rm_tree(dir);
    for (size_t n = 0; n < len; n++) {
        /* A fresh allocation of exactly n bytes so ASan catches any overread. */
        unsigned char *m = malloc(n ? n : 1);
        memcpy(m, b, n);
        nn_modelbin c;
        nn_err e = {0};
        int rc = nn_modelbin_parse(m, n, "cut.bin", &c, &e);
        free(m);
        int z = is_zeroed(&c);
        if (rc == 0)
            nn_modelbin_free(&c);
        if (rc != 65 || !z) {
            free(b);
            CHECK(0, "length %zu: rc %d (%s)", n, rc, e.msg);
        }
    }
    nn_modelbin c;
    nn_err e = {0};
    int rc = nn_modelbin_parse(b, 10, "cut.bin", &c, &e);
    CHECK(rc == 65 && strstr(e.msg, "truncated"), "10 bytes: %s", e.msg);
    rc = nn_modelbin_parse(b, len - 1, "cut.bin", &c, &e);
    free(b);
    CHECK(rc == 65 && strstr(e.msg, "checksum mismatch"), "len-1: %s", e.msg);
    CHECK(nn_modelbin_parse(NULL, 0, "cut.bin", &c, &e) == 65 && strstr(e.msg, "empty"), "empty: %s", e.msg);
    return 0;
}

TEST(modelbin_magic_and_version)
{
    char dir[64], path[128];
    unsigned char *b;
    size_t len;
    RUN(sample_bytes(dir, sizeof dir, path, sizeof path, &b, &len));
    rm_tree(dir);
    nn_modelbin c;
    nn_err e = {0};
    b[0] = 'X';
    int rc = nn_modelbin_parse(b, len, "m.bin", &c, &e);
    CHECK(rc == 65 && strcmp(e.msg, "m.bin: not an nnrun model file (bad magic)") == 0, "magic: %s", e.msg);
    rc = nn_modelbin_parse((const unsigned char *)"{\"a\":1}", 7, "m.json", &c, &e);
    CHECK(rc == 65 && strstr(e.msg, "bad magic"), "json file: %s", e.msg);
    b[0] = 'N';
    b[8] = 7;
    fix_crc(b, len);
    rc = nn_modelbin_parse(b, len, "m.bin", &c, &e);
    CHECK(rc == 65 && strstr(e.msg, "format version 7 is newer than this nnrun supports (1)"), "version: %s", e.msg);
    b[8] = 0;
    fix_crc(b, len);
    rc = nn_modelbin_parse(b, len, "m.bin", &c, &e);
    free(b);
    CHECK(rc == 65 && strstr(e.msg, "version 0"), "version 0: %s", e.msg);
    return 0;
}

TEST(modelbin_crafted_valid)
{
    /* The crafting helper itself must produce loadable files, or the hostile
     * cases below would prove nothing. Unknown keys are ignored. */
    size_t len;
    unsigned char *b = craft("{'model':{'layers':[]},'classes':['a','b'],'normalize':{'mean':[1,2],'std':[0.5,4]},"
                             "'tensors':[{'name':'w','shape':[2,3],'offset':0,'length':6,'future':1},"
                             "{'name':'b','shape':[2],'offset':24,'length':2}],"
                             "'data_bytes':32,'nnrun_version':'9.9','future_key':[1,{}]}",
                             32, UINT64_MAX, &len);
    nn_modelbin c;
    nn_err e = {0};
    int rc = nn_modelbin_parse(b, len, "ok.bin", &c, &e);
    free(b);
    CHECK(rc == 0, "rc %d %s", rc, e.msg);
    int ok = c.ntensors == 2 && c.tensors[0].data[1] == 2.0f && c.tensors[1].data[0] == 12.0f &&
             c.tensors[1].data[1] == 14.0f && c.nclasses == 2 && c.nnorm == 2 && c.std[1] == 4.0f &&
             strcmp(c.model_json, "{\"layers\":[]}") == 0 && !c.extra_json;
    nn_modelbin_free(&c);
    CHECK(ok, "contents");
    /* Extra may be any JSON value. */
    b = craft(HDR("{}", "[]", "null", "[]", "0") , 0, UINT64_MAX, &len);
    rc = nn_modelbin_parse(b, len, "ok.bin", &c, &e);
    free(b);
    nn_modelbin_free(&c);
    CHECK(rc == 0, "minimal: %s", e.msg);
    b = craft("{'model':{},'classes':[],'normalize':null,'tensors':[],'data_bytes':0,'extra':[1,'x',null]}", 0,
              UINT64_MAX, &len);
    rc = nn_modelbin_parse(b, len, "ok.bin", &c, &e);
    free(b);
    ok = rc == 0 && c.extra_json && strcmp(c.extra_json, "[1,\"x\",null]") == 0;
    nn_modelbin_free(&c);
    CHECK(ok, "extra array: %s", e.msg);
    return 0;
}

TEST(modelbin_hostile_sizes)
{
    const char *good = HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':0,'length':6}]", "24");
    RUN(expect_bad(good, 24, (uint64_t)1 << 40, "exceeds the limit"));
    RUN(expect_bad(good, 24, UINT64_MAX - 10, "exceeds the limit"));
    RUN(expect_bad(good, 24, 100000, "truncated"));
    RUN(expect_bad(good, 24, 10, "byte 34: the padding after the header is not zero")); /* length too short */
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':8,'length':6}]", "24"), 24,
                   UINT64_MAX, "beyond"));
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':9007199254740988,'length':6}]", "24"),
                   24, UINT64_MAX, "beyond"));
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[4294967296,4294967296,16],'offset':0,'length':0}]",
                       "24"), 24, UINT64_MAX, "overflows"));
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[4611686018427387904,4],'offset':0,'length':0}]", "24"),
                   24, UINT64_MAX, "shape[0]")); /* > 2^53: not an exact JSON integer */
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[1048576,1048576,4],'offset':0,'length':0}]", "24"),
                   24, UINT64_MAX, "length: 0 does not match the 4398046511104 elements")); /* 2^42 elements */
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':0,'length':5}]", "24"), 24, UINT64_MAX,
                   "tensors[0].length: 5 does not match the 6 elements"));
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':2,'length':6}]", "32"), 32, UINT64_MAX,
                   "tensors[0].offset: 2 is not a multiple of 4"));
    RUN(expect_bad(good, 28, UINT64_MAX, "data_bytes: says 24 but the file holds 28"));
    RUN(expect_bad(HDR("{}", "[]", "null", "[{'name':'w','shape':[2,3],'offset':0,'length':6}]", "1e400"), 24,
                   UINT64_MAX, "data_bytes: must be a non-negative integer"));
    return 0;
}

TEST(modelbin_hostile_types)
{
#define TENS(x) "[" x "]"
    struct { const char *hdr; const char *frag; } cases[] = {
        {"[1,2]", "header: must be a JSON object"},
        {"{'model':{}}", "required key \"classes\" is missing"},
        {"{'classes':[],'normalize':null,'tensors':[],'data_bytes':0}", "required key \"model\" is missing"},
        {HDR("[]", "[]", "null", "[]", "0"), "header model: must be a JSON object"},
        {HDR("'m'", "[]", "null", "[]", "0"), "header model: must be a JSON object"},
        {HDR("{}", "{}", "null", "[]", "0"), "header classes: must be an array"},
        {HDR("{}", "['a',3]", "null", "[]", "0"), "header classes[1]: must be a string"},
        {HDR("{}", "[]", "[]", "[]", "0"), "header normalize: must be null or"},
        {HDR("{}", "[]", "{'mean':[1]}", "[]", "0"), "required key \"std\" is missing"},
        {HDR("{}", "[]", "{'mean':[1,2],'std':[1]}", "[]", "0"), "mean has 2 values but std has 1"},
        {HDR("{}", "[]", "{'mean':[],'std':[]}", "[]", "0"), "empty"},
        {HDR("{}", "[]", "{'mean':[1],'std':[0]}", "[]", "0"), "normalize.std[0]: 0 must be > 0"},
        {HDR("{}", "[]", "{'mean':[1],'std':[-2]}", "[]", "0"), "must be > 0"},
        {HDR("{}", "[]", "{'mean':[1],'std':[1e-50]}", "[]", "0"), "must be > 0"},
        {HDR("{}", "[]", "{'mean':[1e300],'std':[1]}", "[]", "0"), "normalize.mean[0]: 1e+300 is not a finite"},
        {HDR("{}", "[]", "{'mean':['1'],'std':[1]}", "[]", "0"), "normalize.mean[0]: must be a number"},
        {HDR("{}", "[]", "{'mean':1,'std':[1]}", "[]", "0"), "normalize.mean: must be an array"},
        {HDR("{}", "[]", "null", "{}", "0"), "header tensors: must be an array"},
        {HDR("{}", "[]", "null", "[5]", "0"), "header tensors[0]: must be an object"},
        {HDR("{}", "[]", "null", TENS("{'name':7,'shape':[1],'offset':0,'length':1}"), "4"), "tensors[0].name: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'','shape':[1],'offset':0,'length':1}"), "4"), "tensors[0].name: must be"},
        {HDR("{}", "[]", "null", TENS("{'shape':[1],'offset':0,'length':1}"), "4"), "tensors[0]: required key \"name\""},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1],'offset':0}"), "4"), "required key \"length\""},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':1,'offset':0,'length':1}"), "4"), "tensors[0].shape: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[],'offset':0,'length':1}"), "4"), "has 0 dimensions"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1,1,1,1,1,1,1,1,1],'offset':0,'length':1}"), "4"),
         "has 9 dimensions"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[0],'offset':0,'length':0}"), "4"),
         "tensors[0].shape[0]: must be a positive integer"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[-1],'offset':0,'length':1}"), "4"), "shape[0]: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1.5],'offset':0,'length':1}"), "4"), "shape[0]: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':['1'],'offset':0,'length':1}"), "4"), "shape[0]: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1],'offset':-4,'length':1}"), "4"), "offset: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1],'offset':'0','length':1}"), "4"), "offset: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1],'offset':0,'length':true}"), "4"), "length: must be"},
        {HDR("{}", "[]", "null", TENS("{'name':'w','shape':[1],'offset':0,'length':1}, {'name':'w','shape':[1],'offset':0,'length':1}"),
             "4"), "duplicate tensor name \"w\""},
        {HDR("{}", "[]", "null", TENS("{'name':'w','name':'v','shape':[1],'offset':0,'length':1}"), "4"),
         "key \"name\" appears more than once"},
        {"{'model':{},'model':{},'classes':[],'normalize':null,'tensors':[],'data_bytes':0}", "key \"model\" appears"},
        {HDR("{}", "[]", "null", "[]", "'0'"), "data_bytes: must be"},
        {"{'model':{},'classes':[],'normalize':null,'tensors':[],'data_bytes':0,'nnrun_version':1}",
         "nnrun_version: must be a string"},
        {"{'model':{},'classes':[],'normalize':null,'tensors':[],'data_bytes':0} x", "not valid JSON"},
        {"{'model':{},'classes':[],'normalize':null,'tensors':[],'data_bytes':0", "not valid JSON"},
        {"", "not valid JSON"},
    };
#undef TENS
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *h = cases[i].hdr;
        size_t db = 0;
        const char *p = strstr(h, "'data_bytes':");
        if (p)
            db = strtoul(p + 13, NULL, 10);
        RUN(expect_bad(h, db, UINT64_MAX, cases[i].frag));
    }
    /* Deeply nested JSON in the model: rejected by cJSON's nesting limit, no stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 200);
    strcpy(deep, "{'model':{'x':");
    size_t k = strlen(deep);
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    strcpy(deep + k, "},'classes':[],'normalize':null,'tensors':[],'data_bytes':0}");
    int r = expect_bad(deep, 0, UINT64_MAX, "not valid JSON");
    free(deep);
    RUN(r);
    return 0;
}

TEST(modelbin_hostile_bytes)
{
    /* NUL inside the header and non-zero padding, both with a valid CRC. */
    size_t len;
    unsigned char *b = craft(HDR("{}", "[]", "null", "[]", "0"), 0, UINT64_MAX, &len);
    nn_modelbin c;
    nn_err e = {0};
    b[30] = 0;
    fix_crc(b, len);
    int rc = nn_modelbin_parse(b, len, "x.bin", &c, &e);
    CHECK(rc == 65 && strstr(e.msg, "byte 30: the header contains a NUL byte"), "NUL: %s", e.msg);
    free(b);
    b = craft(HDR("{}", "[]", "null", "[]", "0"), 0, UINT64_MAX, &len);
    b[len - 5] = 1; /* last padding byte (no data) */
    fix_crc(b, len);
    rc = nn_modelbin_parse(b, len, "x.bin", &c, &e);
    free(b);
    CHECK(rc == 65 && strstr(e.msg, "padding after the header is not zero"), "padding: %s", e.msg);
    /* Too many tensors (counted before anything is allocated per tensor). */
    size_t n = NN_MODELBIN_MAX_TENSORS + 1;
    char *h = malloc(n * 2 + 200);
    strcpy(h, "{'model':{},'classes':[],'normalize':null,'data_bytes':0,'tensors':[");
    size_t k = strlen(h);
    for (size_t i = 0; i < n; i++) {
        h[k++] = '0';
        h[k++] = ',';
    }
    strcpy(h + k - 1, "]}");
    int r = expect_bad(h, 0, UINT64_MAX, "exceed the limit of 100000");
    free(h);
    RUN(r);
    return 0;
}

/* With a recomputed CRC, mutated files reach the header validator: whatever
 * the mutation, parsing returns 0 or 65 and never misbehaves (ASan/UBSan). */
TEST(modelbin_fuzz_valid_crc)
{
    char dir[64], path[128];
    unsigned char *b;
    size_t len;
    RUN(sample_bytes(dir, sizeof dir, path, sizeof path, &b, &len));
    rm_tree(dir);
    unsigned char *m = malloc(len);
    nn_rng r;
    nn_rng_seed(&r, 42);
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b, len);
        if (it < (int)(len - 4)) {
            m[it] ^= 0x20; /* every byte once */
        } else {
            int nmut = 1 + (int)(nn_rng_next(&r) % 4);
            for (int j = 0; j < nmut; j++) {
                size_t at = (size_t)(nn_rng_next(&r) % (len - 4));
                uint64_t kind = nn_rng_next(&r) % 3;
                static const char pick[] = "0123456789-.e\"[]{},:x \\";
                m[at] = kind == 0 ? (unsigned char)nn_rng_next(&r)
                        : kind == 1 ? (unsigned char)pick[nn_rng_next(&r) % (sizeof pick - 1)]
                                    : (unsigned char)(m[at] ^ (1u << (nn_rng_next(&r) % 8)));
            }
        }
        fix_crc(m, len);
        nn_modelbin c;
        nn_err e = {0};
        int rc = nn_modelbin_parse(m, len, "fz.bin", &c, &e);
        if (rc == 0) {
            ok++;
            nn_modelbin_free(&c);
        } else if (rc == 65 && is_zeroed(&c) && strncmp(e.msg, "fz.bin: ", 8) == 0) {
            bad++;
        } else {
            free(m);
            free(b);
            CHECK(0, "iteration %d: rc %d (%s)", it, rc, e.msg);
        }
    }
    free(m);
    free(b);
    CHECK(ok > 0 && bad > 0, "ok %d bad %d", ok, bad);
    return 0;
}

TEST(modelbin_write_invalid_input)
{
    char dir[64], path[128];
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.bin", dir);
    sample s;
    nn_err e = {0};
    struct { const char *what; const char *frag; } cases[] = {
        {"zero-length", "zero length"},  {"bad model", "model_json is not a valid JSON object"},
        {"array model", "model_json"},   {"bad extra", "extra_json is not valid JSON"},
        {"dup", "duplicate tensor name \"dense1.w\""}, {"std0", "normalize.std[2]"},
        {"nan mean", "normalize.mean[0]"}, {"len", "does not match"}, {"ndim", "dimensions"},
        {"null data", "no data"}, {"no name", "no name"}, {"null model", "model_json is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_sample(&s);
        const char *w = cases[i].what;
        char badjson[] = "{\"a\":", arr[] = "[1]";
        if (!strcmp(w, "zero-length")) {
            s.t[1].shape[0] = 0;
            s.t[1].length = 0;
        } else if (!strcmp(w, "bad model")) {
            s.c.model_json = badjson;
        } else if (!strcmp(w, "array model")) {
            s.c.model_json = arr;
        } else if (!strcmp(w, "bad extra")) {
            s.c.extra_json = badjson;
        } else if (!strcmp(w, "dup")) {
            s.t[3].name = s.t[0].name;
        } else if (!strcmp(w, "std0")) {
            s.std[2] = 0;
        } else if (!strcmp(w, "nan mean")) {
            s.mean[0] = NAN;
        } else if (!strcmp(w, "len")) {
            s.t[2].length = 23;
        } else if (!strcmp(w, "ndim")) {
            s.t[0].ndim = 0;
        } else if (!strcmp(w, "null data")) {
            s.t[0].data = NULL;
        } else if (!strcmp(w, "no name")) {
            s.t[0].name = NULL;
        } else if (!strcmp(w, "null model")) {
            s.c.model_json = NULL;
        }
        int rc = nn_modelbin_write(path, &s.c, &e);
        CHECK(rc == 65 && strstr(e.msg, cases[i].frag) && strstr(e.msg, path), "%s: rc %d (%s)", w, rc, e.msg);
    }
    CHECK(access(path, F_OK) != 0, "nothing may be written");
    CHECK(count_temps(dir) == 0, "temp files left");
    rm_tree(dir);
    return 0;
}

TEST(modelbin_write_atomic)
{
    char dir[64], path[128], bad[160];
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.bin", dir);
    sample s;
    make_sample(&s);
    nn_err e = {0};

    /* Nonexistent folder: 74, naming the path. */
    snprintf(bad, sizeof bad, "%s/no/such/model.bin", dir);
    int rc = nn_modelbin_write(bad, &s.c, &e);
    CHECK(rc == 74 && strstr(e.msg, bad), "missing folder: rc %d (%s)", rc, e.msg);
    /* A folder as the path. */
    rc = nn_modelbin_write("/tmp/", &s.c, &e);
    CHECK(rc == 74, "folder path: rc %d (%s)", rc, e.msg);

    /* An existing good file survives failed writes byte for byte. */
    CHECK(nn_modelbin_write(path, &s.c, &e) == 0, "write: %s", e.msg);
    unsigned char *before, *after;
    size_t lb, la;
    CHECK(read_all(path, &before, &lb) == 0, "read");

    char badjson[] = "not json";
    s.c.model_json = badjson;
    rc = nn_modelbin_write(path, &s.c, &e);
    CHECK(rc == 65, "invalid model_json: rc %d", rc);
    make_sample(&s);

    /* Fail in the middle of writing the temp file: file-size limit (EFBIG). */
    static float big[100000];
    for (int i = 0; i < 100000; i++)
        big[i] = (float)i;
    char bigname[] = "big";
    nn_modelbin_tensor t = {bigname, 1, {100000}, 100000, big};
    nn_modelbin bigc = s.c;
    bigc.ntensors = 1;
    bigc.tensors = &t;
    struct rlimit old, lim;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    int limited = getrlimit(RLIMIT_FSIZE, &old) == 0;
    if (limited) {
        lim = old;
        lim.rlim_cur = 8192;
        limited = setrlimit(RLIMIT_FSIZE, &lim) == 0;
    }
    if (limited) {
        rc = nn_modelbin_write(path, &bigc, &e);
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, oldsig);
        CHECK(rc == 74 && strstr(e.msg, path) && strstr(e.msg, "File too large"), "EFBIG: rc %d (%s)", rc, e.msg);
    } else {
        signal(SIGXFSZ, oldsig);
    }

    /* Fail at the rename: a folder where the file should go. */
    char dpath[160];
    snprintf(dpath, sizeof dpath, "%s/sub", dir);
    CHECK(mkdir(dpath, 0755) == 0, "mkdir");
    rc = nn_modelbin_write(dpath, &s.c, &e);
    CHECK(rc == 74 && strstr(e.msg, dpath), "rename over folder: rc %d (%s)", rc, e.msg);
    struct stat st;
    CHECK(stat(dpath, &st) == 0 && S_ISDIR(st.st_mode), "folder replaced");

    CHECK(read_all(path, &after, &la) == 0, "read");
    int same = la == lb && memcmp(before, after, la) == 0;
    free(before);
    free(after);
    CHECK(same, "good file changed by a failed write");
    CHECK(count_temps(dir) == 0, "temp files left behind");

    /* A successful overwrite replaces the file. */
    s.w3[0] = 42.0f;
    CHECK(nn_modelbin_write(path, &s.c, &e) == 0, "overwrite: %s", e.msg);
    nn_modelbin c;
    CHECK(nn_modelbin_read(path, &c, &e) == 0, "read: %s", e.msg);
    int ok = nn_modelbin_find(&c, "scale") && nn_modelbin_find(&c, "scale")->data[0] == 42.0f;
    nn_modelbin_free(&c);
    CHECK(ok, "overwrite did not take");
    CHECK(count_temps(dir) == 0, "temp files left behind");
    rm_tree(dir);
    return 0;
}

TEST(modelbin_write_relative_path)
{
    char dir[64], cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    CHECK(chdir(dir) == 0, "chdir");
    sample s;
    make_sample(&s);
    nn_err e = {0};
    int rc = nn_modelbin_write("m.bin", &s.c, &e);
    nn_modelbin c;
    int rc2 = rc ? -1 : nn_modelbin_read("m.bin", &c, &e);
    int bad = rc2 == 0 ? same_as_sample(&c, &s) : 1;
    if (rc2 == 0)
        nn_modelbin_free(&c);
    int temps = count_temps(".");
    CHECK(chdir(cwd) == 0, "chdir back");
    rm_tree(dir);
    CHECK(rc == 0 && rc2 == 0 && !bad, "relative write/read: %d %d %s", rc, rc2, e.msg);
    CHECK(temps == 0, "temp files left");
    return 0;
}

TEST(modelbin_free_safe)
{
    nn_modelbin c;
    memset(&c, 0, sizeof c);
    nn_modelbin_free(&c);
    nn_modelbin_free(NULL);
    CHECK(is_zeroed(&c), "zeroed");
    CHECK(nn_modelbin_find(&c, "x") == NULL, "find on empty");
    /* A partially filled struct (as a caller building one might leave it). */
    c.model_json = nn_strdup("{}");
    c.ntensors = 3;
    c.tensors = calloc(3, sizeof *c.tensors);
    c.tensors[0].name = nn_strdup("a");
    c.nclasses = 2;
    c.classes = calloc(2, sizeof *c.classes);
    nn_modelbin_free(&c);
    CHECK(is_zeroed(&c), "zeroed after partial");
    return 0;
}

/* A writer killed between creating its temporary file and renaming it leaves
 * ".model.bin.tmp.PID.XXXXXX"; the next successful write removes those of dead
 * processes and keeps a live writer's (and unrelated files). */
TEST(modelbin_write_sweeps_stale_temps)
{
    char dir[64], path[128], p[256];
    sample s;
    make_sample(&s);
    nn_err e = {0};
    CHECK(mk_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.bin", dir);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CHECK(child > 0 && waitpid(child, NULL, 0) == child, "fork");
    /* the reaped child's PID is dead (unless reused within microseconds) */
    const char *names[4] = {"stale", "live", "other", "model2"};
    snprintf(p, sizeof p, "%s/.model.bin.tmp.%ld.Ab12Cd", dir, (long)child);
    CHECK(tu_write_file(p, "x", 1) == 0, "write %s", names[0]);
    snprintf(p, sizeof p, "%s/.model.bin.tmp.%ld.Xy34Zw", dir, (long)getppid());
    CHECK(tu_write_file(p, "x", 1) == 0, "write %s", names[1]);
    snprintf(p, sizeof p, "%s/.model.bin.tmp.notapid", dir);
    CHECK(tu_write_file(p, "x", 1) == 0, "write %s", names[2]);
    snprintf(p, sizeof p, "%s/.model2.bin.tmp.%ld.Ab12Cd", dir, (long)child);
    CHECK(tu_write_file(p, "x", 1) == 0, "write %s", names[3]);
    CHECK(count_temps(dir) == 4, "setup");
    int rc = nn_modelbin_write(path, &s.c, &e);
    CHECK(rc == 0, "write: %d %s", rc, e.msg);
    snprintf(p, sizeof p, "%s/.model.bin.tmp.%ld.Ab12Cd", dir, (long)child);
    CHECK(access(p, F_OK) != 0, "the dead writer's temp file is still there");
    snprintf(p, sizeof p, "%s/.model.bin.tmp.%ld.Xy34Zw", dir, (long)getppid());
    CHECK(access(p, F_OK) == 0, "a live process's temp file was removed");
    CHECK(count_temps(dir) == 3, "expected 3 temp files left, found %d", count_temps(dir));
    rm_tree(dir);
    return 0;
}
