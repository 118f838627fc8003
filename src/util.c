#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *nn_file_kind(unsigned mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a folder";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

int nn_open_input(const char *path, int *fd, uint64_t *size, nn_err *e)
{
    *fd = -1;
    if (size)
        *size = 0;
    /* O_NONBLOCK: opening a FIFO with no writer (or a tty, a device) must not
     * block; the file is refused below unless it is regular. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0)
        return nn_fail(e, errno == ENOMEM ? NN_ENOMEM : NN_ENOINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return nn_fail(e, NN_ENOINPUT, "%s: cannot open: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return nn_fail(e, NN_ENOINPUT, "%s: is %s, not a regular file", path, nn_file_kind(st.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl == -1 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) == -1) {
        int err = errno;
        close(f);
        return nn_fail(e, NN_ENOINPUT, "%s: cannot open: %s", path, strerror(err));
    }
    *fd = f;
    if (size)
        *size = (uint64_t)st.st_size;
    return 0;
}

int nn_fopen_input(const char *path, FILE **out, uint64_t *size, nn_err *e)
{
    *out = NULL;
    int fd;
    int r = nn_open_input(path, &fd, size, e);
    if (r)
        return r;
    if (!(*out = fdopen(fd, "rb"))) {
        close(fd);
        return nn_oom(e, "opening %s", path);
    }
    return 0;
}

int nn_read_fd(int fd, const char *path, uint64_t size, size_t max_bytes, int text, unsigned char **buf, size_t *len,
               nn_err *e)
{
    *buf = NULL;
    *len = 0;
    if (size > (uint64_t)max_bytes)
        return nn_fail(e, NN_EDATA, "%s: the file is %llu bytes, larger than the limit of %zu bytes", path,
                       (unsigned long long)size, max_bytes);
    /* st_size is a hint (procfs says 0, a file may grow): read until EOF, never past max_bytes */
    size_t cap = size + 1 > (1 << 16) ? (size_t)size + 1 : (1 << 16), n = 0;
    if (cap > max_bytes)
        cap = max_bytes;
    unsigned char *b = malloc(cap + 1);
    if (!b)
        return nn_oom(e, "reading %s (%zu bytes)", path, cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                unsigned char c;
                ssize_t more;
                while ((more = read(fd, &c, 1)) < 0 && errno == EINTR)
                    ;
                if (more == 0)
                    break;
                free(b);
                return nn_fail(e, NN_EDATA, "%s: file larger than the %zu-byte limit", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            unsigned char *nb = realloc(b, cap + 1);
            if (!nb) {
                free(b);
                return nn_oom(e, "reading %s (%zu bytes)", path, cap + 1);
            }
            b = nb;
        }
        /* reads grow with what was read (64 KiB first): a binary file is
         * refused at its first NUL before much of it is touched */
        size_t want = cap - n, step = n > (1u << 16) ? n : (1u << 16);
        want = want > step ? step : want;
        ssize_t got = read(fd, b + n, want > (1u << 30) ? (1u << 30) : want);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            free(b);
            return nn_fail(e, err == EISDIR ? NN_ENOINPUT : NN_EIO, "%s: read error: %s", path, strerror(err));
        }
        if (got == 0)
            break;
        if (text) {
            const unsigned char *z = memchr(b + n, 0, (size_t)got);
            if (z) {
                size_t at = (size_t)(z - b);
                free(b);
                return nn_fail(e, NN_EDATA, "%s: byte %zu: a NUL byte: this is a binary file, not text", path, at);
            }
        }
        n += (size_t)got;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

static int read_file(const char *path, size_t max_bytes, int text, unsigned char **buf, size_t *len, nn_err *e)
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int r = nn_open_input(path, &fd, &size, e);
    if (r)
        return r;
    r = nn_read_fd(fd, path, size, max_bytes, text, buf, len, e);
    close(fd);
    return r;
}

int nn_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e)
{
    return read_file(path, max_bytes, 0, buf, len, e);
}

int nn_read_text_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e)
{
    return read_file(path, max_bytes, 1, buf, len, e);
}

int nn_file_has_prefix(const char *path, const char *prefix)
{
    size_t pl = strlen(prefix);
    char head[64];
    int fd;
    nn_err ignore = {0};
    ssize_t got = -1;
    if (pl < sizeof head && nn_open_input(path, &fd, NULL, &ignore) == 0) {
        got = pread(fd, head, pl, 0);
        close(fd);
    }
    return got == (ssize_t)pl && memcmp(head, prefix, pl) == 0;
}

int nn_check_output(const char *path, const char *own_prefix, nn_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0; /* a new path (a missing folder is reported when writing) */
    if (!S_ISREG(st.st_mode))
        return nn_fail(e, NN_EIO, "%s: is %s; refusing to replace anything but a regular file", path,
                       nn_file_kind(st.st_mode));
    if (!own_prefix || st.st_size == 0)
        return 0;
    if (!nn_file_has_prefix(path, own_prefix))
        return nn_fail(e, NN_EIO, "%s: exists and is not a file nnrun wrote; refusing to overwrite it (remove it or "
                                  "choose another path)",
                       path);
    return 0;
}

typedef struct name_at {
    const char *s;
    size_t i;
} name_at;

static int cmp_name_at(const void *a, const void *b)
{
    const name_at *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

int nn_find_duplicate(const char *const *names, size_t n, size_t *first, size_t *second)
{
    if (n < 2)
        return 0;
    name_at *v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = (name_at){names[i], i};
    qsort(v, n, sizeof *v, cmp_name_at);
    int found = 0;
    for (size_t k = 1; k < n; k++)
        if (!strcmp(v[k - 1].s, v[k].s) && (k < 2 || strcmp(v[k - 2].s, v[k].s)) && (!found || v[k].i < *second)) {
            *first = v[k - 1].i; /* the group's first and second occurrences */
            *second = v[k].i;
            found = 1;
        }
    free(v);
    return found;
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
