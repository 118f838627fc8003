#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int nn_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nn_fail(e, NN_ENOINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return nn_fail(e, NN_ENOINPUT, "%s: not a regular file", path);
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return nn_fail(e, NN_ESOFTWARE, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                free(b);
                fclose(f);
                return nn_fail(e, NN_EDATA, "%s: file larger than the %zu-byte limit", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            unsigned char *nb = realloc(b, cap + 1);
            if (!nb) {
                free(b);
                fclose(f);
                return nn_fail(e, NN_ESOFTWARE, "%s: out of memory", path);
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(b);
                fclose(f);
                return nn_fail(e, NN_EIO, "%s: read error: %s", path, strerror(errno));
            }
            break;
        }
    }
    fclose(f);
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

char *nn_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *nn_path_join_dir(const char *base_file, const char *rel)
{
    if (!rel)
        return NULL;
    if (rel[0] == '/' || !base_file)
        return nn_strdup(rel);
    const char *slash = strrchr(base_file, '/');
    if (!slash)
        return nn_strdup(rel);
    size_t dl = (size_t)(slash - base_file) + 1, rl = strlen(rel);
    char *out = malloc(dl + rl + 1);
    if (!out)
        return NULL;
    memcpy(out, base_file, dl);
    memcpy(out + dl, rel, rl + 1);
    return out;
}

int nn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > (size_t)-1 / a)
        return -1;
    *out = a * b;
    return 0;
}

uint64_t nn_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void nn_rng_seed(nn_rng *r, uint64_t seed) { r->s = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL; }

uint64_t nn_rng_next(nn_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double nn_rng_uniform(nn_rng *r) { return (double)(nn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double nn_rng_normal(nn_rng *r)
{
    double u1 = nn_rng_uniform(r), u2 = nn_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void nn_shuffle(nn_rng *r, int *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(nn_rng_next(r) % i);
        int t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

double nn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void nn_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void nn_json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.6g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}
