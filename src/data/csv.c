/* csv.c - the CSV loader (nn_csv_load).
 *
 * Format (see docs/FORMATS.md):
 *  - comma-delimited; fields may be quoted ("a,b", "say ""hi"""), quoted
 *    fields may span lines; spaces and tabs around fields are trimmed (inside
 *    quotes they are kept); LF or CRLF line endings; a UTF-8 BOM is skipped;
 *    blank (or whitespace-only) lines are skipped; the final newline is optional.
 *  - every row must have as many fields as the first row.
 *  - feature fields are decimal numbers ([+-]digits[.digits][e[+-]digits]);
 *    empty fields, NaN, Inf, hex floats and values out of float range are errors.
 *  - messages say FILE:LINE:COL where LINE is the line the row starts on and
 *    COL is the 1-based field (column) number.
 *
 * Header detection (src->header == -1), first rule that applies wins:
 *  1. the first row is a header when one of its fields equals a label column
 *     name the source asks for;
 *  2. with at least two rows: the first row is a header when, in some column,
 *     its field is not a number while the second row's field is a number;
 *  3. with a single row: it is a header when none of its fields is a number.
 * Otherwise the first row is data.
 *
 * Label columns: label_name[i] when non-NULL (matched against the header),
 * else label_index[i] (0-based). When lo->labels_optional, labels that cannot
 * be found (name not in the header, name given but no header row, index past
 * the last column) make the loader read features only (y = t = NULL); if only
 * some of several label columns are missing that is an error.
 *
 * The file is read whole (nn_read_file, at most NN_MAX_BYTES); numbers are
 * parsed with an exact fast path (Clinger) and strtod for the rest. */
#include "dataset.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"

/* One field of the current record: points into the file buffer. `esc` marks a
 * quoted field whose text still holds doubled quotes ("" -> "). */
typedef struct {
    const char *s;
    size_t len;
    int esc;
} fspan;

typedef struct {
    const char *path;
    const char *p, *end;
    size_t line;     /* line of p */
    size_t rec_line; /* line the last record started on */
    fspan *f;
    size_t nf, cap;
} rdr;

#define MAX_COLS ((size_t)NN_MAX_FEATURES + 16)

/* ---------------------------------------------------------------- fields */

/* Copies the field's text (quotes undoubled) to dst (room for len+1). */
static size_t span_copy(const fspan *f, char *dst)
{
    if (!f->esc) {
        memcpy(dst, f->s, f->len);
        dst[f->len] = 0;
        return f->len;
    }
    size_t j = 0;
    for (size_t i = 0; i < f->len; i++) {
        dst[j++] = f->s[i];
        if (f->s[i] == '"')
            i++; /* inside quotes every '"' is doubled */
    }
    dst[j] = 0;
    return j;
}

/* Printable, shortened copy of a string for messages. */
static const char *show_str(const char *s, size_t len, char *buf, size_t cap)
{
    size_t max = cap - 4, j = 0;
    for (size_t i = 0; i < len && j < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = (ch < 32 || ch == 127) ? '?' : (char)ch;
    }
    if (len > max)
        memcpy(buf + j, "...", 3), j += 3;
    buf[j] = 0;
    return buf;
}

static const char *show(const fspan *f, char *buf, size_t cap)
{
    return show_str(f->s, f->len, buf, cap);
}

/* Reads the next non-blank record into r->f / r->nf.
 * Returns 0 for a record, -1 at end of input, or an error code. */
static int read_record(rdr *r, nn_err *e)
{
    const char *p = r->p, *end = r->end;
    for (;;) { /* skip blank lines */
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q == end) {
            r->p = end;
            return -1;
        }
        if (*q != '\n')
            break;
        p = q + 1;
        r->line++;
    }
    r->rec_line = r->line;
    r->nf = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        fspan f = {p, 0, 0};
        if (p < end && *p == '"') {
            size_t qline = r->line;
            const char *start = ++p;
            for (;;) {
                const char *q = memchr(p, '"', (size_t)(end - p));
                if (!q)
                    return nn_fail(e, NN_EDATA, "%s:%zu:%zu: unterminated quoted field", r->path,
                                   qline, r->nf + 1);
                for (const char *c = p; c < q; c++)
                    r->line += *c == '\n';
                if (q + 1 < end && q[1] == '"') {
                    f.esc = 1;
                    p = q + 2;
                    continue;
                }
                f.s = start;
                f.len = (size_t)(q - start);
                p = q + 1;
                break;
            }
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
            if (p < end && *p != ',' && *p != '\n') {
                char b[48];
                return nn_fail(e, NN_EDATA, "%s:%zu:%zu: unexpected '%s' after the closing quote",
                               r->path, r->line, r->nf + 1, show_str(p, 1, b, sizeof b));
            }
        } else {
            while (p < end && *p != ',' && *p != '\n')
                p++;
            const char *q = p;
            while (q > f.s && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r'))
                q--;
            f.len = (size_t)(q - f.s);
        }
        if (r->nf == r->cap) {
            if (r->cap >= MAX_COLS)
                return nn_fail(e, NN_EDATA, "%s:%zu: more than %zu columns", r->path, r->rec_line,
                               MAX_COLS);
            size_t nc = r->cap ? r->cap * 2 : 64;
            if (nc > MAX_COLS)
                nc = MAX_COLS;
            fspan *nf = realloc(r->f, nc * sizeof *nf);
            if (!nf)
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", r->path);
            r->f = nf;
            r->cap = nc;
        }
        r->f[r->nf++] = f;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end) { /* '\n' */
            p++;
            r->line++;
        }
        break;
    }
    r->p = p;
    return 0;
}

/* ---------------------------------------------------------------- numbers */

static const double pow10tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

enum { NUM_OK = 0, NUM_BAD = 1, NUM_RANGE = 2, NUM_NOMEM = 3 };

/* Strict decimal number -> float. Exact fast path when the significand has at
 * most 15 digits and |exponent| <= 22 (one correctly rounded IEEE operation,
 * the same double strtod returns); strtod otherwise. */
static int parse_num(const char *s, size_t len, float *out)
{
    size_t i = 0;
    int neg = 0, nd = 0, many = 0, digits = 0;
    uint64_t m = 0;
    long ex = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    for (; i < len && (unsigned)(s[i] - '0') < 10; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        digits++;
        if (m || d) {
            if (nd < 19) {
                m = m * 10 + d;
                nd++;
            } else {
                ex++;
                many = 1;
            }
        }
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && (unsigned)(s[i] - '0') < 10; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            digits++;
            if (m || d) {
                if (nd < 19) {
                    m = m * 10 + d;
                    nd++;
                    ex--;
                } else {
                    many = 1;
                }
            } else {
                ex--;
            }
        }
    }
    if (!digits)
        return NUM_BAD;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        long ev = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= len || (unsigned)(s[i] - '0') >= 10)
            return NUM_BAD;
        for (; i < len && (unsigned)(s[i] - '0') < 10; i++)
            if (ev < 1000000)
                ev = ev * 10 + (s[i] - '0');
        ex += eneg ? -ev : ev;
    }
    if (i != len)
        return NUM_BAD;
    double v;
    if (m == 0 && !many) {
        v = 0.0;
    } else if (!many && nd <= 15 && ex >= -22 && ex <= 22) {
        v = (double)m;
        v = ex < 0 ? v / pow10tab[-ex] : v * pow10tab[ex];
    } else {
        char tmp[128], *b = len < sizeof tmp ? tmp : malloc(len + 1);
        if (!b)
            return NUM_NOMEM;
        memcpy(b, s, len);
        b[len] = 0;
        v = strtod(b, NULL); /* applies the sign itself */
        if (b != tmp)
            free(b);
        neg = 0;
    }
    if (neg)
        v = -v;
    float fv = (float)v;
    if (!isfinite(fv))
        return NUM_RANGE;
    *out = fv;
    return NUM_OK;
}

/* Strict integer ([+-]digits) within int range. */
static int parse_int(const char *s, size_t len, int *out)
{
    size_t i = 0;
    int neg = 0;
    long long v = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == len)
        return 0;
    for (; i < len; i++) {
        if ((unsigned)(s[i] - '0') >= 10)
            return 0;
        v = v * 10 + (s[i] - '0');
        if (v > (long long)INT_MAX + 1)
            return 0;
    }
    if (neg)
        v = -v;
    if (v < INT_MIN || v > INT_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

static int span_is_number(const fspan *f)
{
    float v;
    int rc = parse_num(f->s, f->len, &v);
    return rc == NUM_OK || rc == NUM_RANGE;
}

/* ---------------------------------------------------------------- messages */

/* "a, b, c" (shortened to fit) into buf. */
static const char *list_names(char *const *names, size_t n, char *buf, size_t cap)
{
    size_t j = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (j + l + 16 >= cap) {
            snprintf(buf + j, cap - j, "%s... (%zu in all)", i ? ", " : "", n);
            return buf;
        }
        j += (size_t)snprintf(buf + j, cap - j, "%s%s", i ? ", " : "", names[i]);
    }
    return buf;
}

/* Message for a field that parse_num refused (col is 0-based). */
static int num_error(nn_err *e, int pr, const char *path, size_t line, size_t col,
                     const char *name, const fspan *f)
{
    char cb[300] = "", vb[64];
    if (name)
        snprintf(cb, sizeof cb, "column '%s': ", show_str(name, strlen(name), vb, sizeof vb));
    if (pr == NUM_NOMEM)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    if (f->len == 0)
        return nn_fail(e, NN_EDATA, "%s:%zu:%zu: %sempty field, expected a number", path, line,
                       col + 1, cb);
    if (pr == NUM_RANGE)
        return nn_fail(e, NN_EDATA, "%s:%zu:%zu: %s'%s' is out of range for a float", path, line,
                       col + 1, cb, show(f, vb, sizeof vb));
    return nn_fail(e, NN_EDATA, "%s:%zu:%zu: %s'%s' is not a number", path, line, col + 1, cb,
                   show(f, vb, sizeof vb));
}

/* Fast path for the common row: unquoted fields without surrounding spaces,
 * numbers of at most 15 digits without exponent, LF or CRLF. Parses the row at
 * r->p in one pass into xr (features) / tr (regression targets) and, for a
 * classification label, *lab / *lab_col. Returns 1 and advances r when the
 * whole row fit; returns 0 without touching r otherwise (blank line, end of
 * input, anything unusual), and the general path re-reads the row. Relies on
 * the NUL that nn_read_file puts after the data. */
static int fast_row(rdr *r, size_t ncols, const unsigned char *role, const int *fslot, float *xr,
                    float *tr, fspan *lab, size_t *lab_col)
{
    const char *p = r->p, *end = r->end;
    for (size_t j = 0; j < ncols; j++) {
        int last = j + 1 == ncols;
        const char *q = p;
        if (role[j] && !tr) { /* classification label: any plain text */
            if (q == end || *q == ' ' || *q == '\t')
                return 0;
            while (q < end && *q != ',' && *q != '\n' && *q != '"')
                q++;
            if (q < end && *q == '"')
                return 0;
            const char *t = q;
            if (last && q < end && *q == '\n' && t > p && t[-1] == '\r')
                t--; /* CRLF */
            if (t == p || t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r')
                return 0;
            lab->s = p;
            lab->len = (size_t)(t - p);
            lab->esc = 0;
            *lab_col = j;
        } else if (!role[j] && fslot[j] < 0) { /* an unused column: any text, never parsed */
            while (q < end && *q != ',' && *q != '\n' && *q != '"')
                q++;
            if (q < end && *q == '"')
                return 0;
        } else {
            int neg = 0;
            if (*q == '-') {
                neg = 1;
                q++;
            }
            uint64_t m = 0;
            const char *d0 = q;
            while ((unsigned)(*q - '0') < 10)
                m = m * 10 + (unsigned)(*q++ - '0');
            size_t nint = (size_t)(q - d0), nfrac = 0;
            if (*q == '.') {
                const char *f0 = ++q;
                while ((unsigned)(*q - '0') < 10)
                    m = m * 10 + (unsigned)(*q++ - '0');
                nfrac = (size_t)(q - f0);
            }
            if (nint + nfrac == 0 || nint + nfrac > 15 || q > end)
                return 0;
            double v = (double)m;
            if (nfrac)
                v /= pow10tab[nfrac];
            if (neg)
                v = -v;
            if (role[j])
                tr[role[j] - 1] = (float)v;
            if (fslot[j] >= 0)
                xr[fslot[j]] = (float)v;
        }
        if (!last) {
            if (q >= end || *q != ',')
                return 0;
            p = q + 1;
            continue;
        }
        if (q == end) {
            p = q;
        } else if (*q == '\n') {
            p = q + 1;
        } else if (*q == '\r' && q + 1 < end && q[1] == '\n') {
            p = q + 2;
        } else if (*q == '\r' && q + 1 == end) {
            p = end;
        } else {
            return 0;
        }
    }
    r->rec_line = r->line;
    if (p > r->p && p[-1] == '\n')
        r->line++;
    r->p = p;
    return 1;
}

/* ---------------------------------------------------------------- classes */

typedef struct {
    const char *s;
    int idx;
} name_idx;

static int cmp_name_idx(const void *a, const void *b)
{
    const name_idx *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int find_name(const name_idx *sorted, int n, const char *s)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(s, sorted[mid].s);
        if (c == 0)
            return sorted[mid].idx;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

/* ---------------------------------------------------------------- loader */

typedef struct {
    unsigned char *buf;
    size_t len;
    rdr r;
    fspan *row1;
    size_t nrow1;
    char **names;   /* fields of the first row (header names when has_header) */
    char *namebuf;
    unsigned char *role; /* per column: 0 none, k = label slot k-1 */
    int *fslot;          /* per column: its place in the feature vector, or -1 (unused) */
    float *x, *t;
    int *y;
    size_t cap; /* rows allocated */
    char *pool; /* classification labels (derived classes): NUL-separated */
    size_t pool_len, pool_cap;
    size_t *loff;
    int *ival;
    name_idx *known; /* given class names, sorted */
    char **cnames;   /* output class names */
    int ncnames;
    /* the plan, from the settings, the first row and the columns */
    const nn_source *src;
    const nn_label_opts *lo;
    const char *path;
    const char *start, *end;  /* the text (after a BOM) */
    const char *after1;       /* just after the first row */
    size_t after1_line, row1_line;
    size_t ncols;
    int has_header;
    int classify, windowed;
    int nl;                   /* label columns read (0: absent, optional) */
    size_t nfeat;
    int tdim, want_y, derive; /* regression targets per row; one class label; classes derived */
    size_t n;                 /* rows read */
    int all_int;              /* derived labels: every one an integer */
} csv_state;

static void state_free(csv_state *s)
{
    free(s->buf);
    free(s->r.f);
    free(s->row1);
    free(s->names);
    free(s->namebuf);
    free(s->role);
    free(s->fslot);
    free(s->x);
    free(s->t);
    free(s->y);
    free(s->pool);
    free(s->loff);
    free(s->ival);
    free(s->known);
    if (s->cnames) {
        for (int i = 0; i < s->ncnames; i++)
            free(s->cnames[i]);
        free(s->cnames);
    }
}

/* Makes room for at least `need` rows (first time: `hint` rows). */
static int grow_rows(csv_state *s, const char *path, size_t need, size_t hint, size_t nfeat,
                     int tdim, int classify, int derive, size_t maxrows, nn_err *e)
{
    size_t nc = s->cap ? s->cap * 2 : hint;
    if (nc < need)
        nc = need;
    if (nc > maxrows)
        nc = maxrows;
    size_t bytes;
    if (nn_mul_size(nc, nfeat, &bytes) || nn_mul_size(bytes, sizeof(float), &bytes) ||
        bytes > (size_t)NN_MAX_BYTES) {
        /* retry with just what is needed before giving up */
        nc = need;
        if (nn_mul_size(nc, nfeat, &bytes) || nn_mul_size(bytes, sizeof(float), &bytes) ||
            bytes > (size_t)NN_MAX_BYTES)
            return nn_fail(e, NN_EDATA, "%s: more than %ld bytes of feature data", path,
                           (long)NN_MAX_BYTES);
    }
    float *nx = realloc(s->x, bytes ? bytes : 1);
    if (!nx)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory (%zu rows)", path, nc);
    s->x = nx;
    if (tdim > 0) {
        float *nt = realloc(s->t, nc * (size_t)tdim * sizeof *nt);
        if (!nt)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        s->t = nt;
    }
    if (classify) {
        int *ny = realloc(s->y, nc * sizeof *ny);
        if (!ny)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        s->y = ny;
        if (derive) {
            size_t *nl = realloc(s->loff, nc * sizeof *nl);
            if (!nl)
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
            s->loff = nl;
            int *ni = realloc(s->ival, nc * sizeof *ni);
            if (!ni)
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
            s->ival = ni;
        }
    }
    s->cap = nc;
    return 0;
}

static int pool_add(csv_state *s, const char *path, const fspan *f, size_t *off, size_t *len,
                    nn_err *e)
{
    if (s->pool_cap - s->pool_len < f->len + 1) {
        size_t nc = s->pool_cap ? s->pool_cap : 4096;
        while (nc - s->pool_len < f->len + 1) {
            if (nc > SIZE_MAX / 2)
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
            nc *= 2;
        }
        char *np = realloc(s->pool, nc);
        if (!np)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        s->pool = np;
        s->pool_cap = nc;
    }
    *off = s->pool_len;
    *len = span_copy(f, s->pool + s->pool_len);
    s->pool_len += *len + 1;
    return 0;
}

/* Derives classes from the collected labels (no class names given). */
static int derive_classes(csv_state *s, const char *path, size_t n, int all_int, nn_err *e)
{
    if (all_int) {
        int *v = malloc(n * sizeof *v);
        if (!v)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        memcpy(v, s->ival, n * sizeof *v);
        qsort(v, n, sizeof *v, cmp_int);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || v[i] != v[k - 1])
                v[k++] = v[i];
        if (k > NN_MAX_CLASSES) {
            free(v);
            return nn_fail(e, NN_EDATA, "%s: %zu distinct labels, more than the %d-class limit",
                           path, k, NN_MAX_CLASSES);
        }
        s->cnames = calloc(k, sizeof *s->cnames);
        if (!s->cnames) {
            free(v);
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        }
        s->ncnames = (int)k;
        for (size_t i = 0; i < k; i++) {
            char b[16];
            snprintf(b, sizeof b, "%d", v[i]);
            if (!(s->cnames[i] = nn_strdup(b))) {
                free(v);
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
            }
        }
        for (size_t i = 0; i < n; i++) {
            size_t lo = 0, hi = k;
            while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (v[mid] <= s->ival[i])
                    lo = mid;
                else
                    hi = mid;
            }
            s->y[i] = (int)lo;
        }
        free(v);
        return 0;
    }
    name_idx *ord = malloc(n * sizeof *ord);
    if (!ord)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        ord[i].s = s->pool + s->loff[i];
        ord[i].idx = (int)i; /* n <= NN_MAX_SAMPLES < INT_MAX */
    }
    qsort(ord, n, sizeof *ord, cmp_name_idx);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(ord[i].s, ord[i - 1].s) != 0)
            k++;
    if (k > NN_MAX_CLASSES) {
        free(ord);
        return nn_fail(e, NN_EDATA, "%s: %zu distinct labels, more than the %d-class limit", path,
                       k, NN_MAX_CLASSES);
    }
    s->cnames = calloc(k, sizeof *s->cnames);
    if (!s->cnames) {
        free(ord);
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    }
    s->ncnames = (int)k;
    int cls = -1;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(ord[i].s, ord[i - 1].s) != 0) {
            cls++;
            if (!(s->cnames[cls] = nn_strdup(ord[i].s))) {
                free(ord);
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
            }
        }
        s->y[ord[i].idx] = cls;
    }
    free(ord);
    return 0;
}

/* Maps one label to a given class (lo->class_names). */
static int map_label(const csv_state *s, const nn_label_opts *lo, const char *path, size_t line,
                     size_t col, const fspan *f, int *cls, nn_err *e)
{
    char tmp[256], *lab = f->len < sizeof tmp ? tmp : malloc(f->len + 1);
    if (!lab)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    size_t l = span_copy(f, lab);
    int iv, rc = 0;
    char sb[64], lb[1024];
    if (l == 0) {
        rc = nn_fail(e, NN_EDATA, "%s:%zu:%zu: empty label", path, line, col);
    } else if (lo->by_index && parse_int(lab, l, &iv)) {
        /* integer labels index the given class names; string labels (below) match them by name */
        if (iv < 0 || iv >= lo->nclasses)
            rc = nn_fail(e, NN_EDATA, "%s:%zu:%zu: label '%s' is not a class index in 0..%d", path,
                         line, col, show_str(lab, l, sb, sizeof sb), lo->nclasses - 1);
        else
            *cls = iv;
    } else {
        int k = find_name(s->known, lo->nclasses, lab);
        if (k < 0 && parse_int(lab, l, &iv)) {
            char d[16];
            snprintf(d, sizeof d, "%d", iv);
            k = find_name(s->known, lo->nclasses, d);
        }
        if (k >= 0) {
            *cls = k;
        } else {
            const char *sug = nn_suggest(lab, (const char *const *)lo->class_names, (size_t)lo->nclasses);
            char hint[300] = "";
            if (sug)
                snprintf(hint, sizeof hint, "; did you mean '%s'?", sug);
            rc = nn_fail(e, NN_EDATA, "%s:%zu:%zu: unknown class '%s' (known classes: %s)%s", path,
                         line, col, show_str(lab, l, sb, sizeof sb),
                         list_names(lo->class_names, (size_t)lo->nclasses, lb, sizeof lb), hint);
        }
    }
    if (lab != tmp)
        free(lab);
    return rc;
}

/* The column a source names: by header name, or by 0-based index when name
 * is NULL. -1 when the file has no such column. */
static long find_column(const csv_state *s, size_t ncols, int has_header, const char *name, int index)
{
    if (!name)
        return index >= 0 && (size_t)index < ncols ? index : -1;
    if (has_header)
        for (size_t j = 0; j < ncols; j++)
            if (strcmp(s->names[j], name) == 0)
                return (long)j;
    return -1;
}

/* The message for a `what` ("label", "feature") column find_column did not find. */
static int column_error(nn_err *e, const csv_state *s, const char *path, size_t ncols, int has_header,
                        size_t row1_line, const char *what, const char *name, int index)
{
    char lb[1024], vb[64];
    if (name && has_header) {
        const char *sug = nn_suggest(name, (const char *const *)s->names, ncols);
        char hint[300] = "";
        if (sug)
            snprintf(hint, sizeof hint, "; did you mean '%s'?", sug);
        return nn_fail(e, NN_EDATA, "%s: %s column '%s' not found in the header (columns: %s)%s", path, what,
                       show_str(name, strlen(name), vb, sizeof vb), list_names(s->names, ncols, lb, sizeof lb),
                       hint);
    }
    if (name)
        return nn_fail(e, NN_EDATA,
                       "%s: %s column '%s' is given by name but the file has no header row "
                       "(line %zu holds data); add a header or give the column index",
                       path, what, show_str(name, strlen(name), vb, sizeof vb), row1_line);
    return nn_fail(e, NN_EDATA, "%s: %s column index %d is out of range: the file has %zu column%s", path, what,
                   index, ncols, ncols == 1 ? "" : "s");
}

/* Replaces the n rows in s->x / s->t by windows of src->window rows:
 * window k holds rows k*stride .. k*stride+window-1 and, when there are
 * targets, the target of row k*stride+window-1+horizon. */
static int make_windows(csv_state *s, const nn_source *src, const char *path, size_t n, size_t nfeat, int tdim,
                        size_t *nout, nn_err *e)
{
    size_t T = (size_t)src->window, H = tdim ? (size_t)src->horizon : 0, S = (size_t)src->stride;
    if (n < T + H) {
        char hb[64] = "";
        if (H)
            snprintf(hb, sizeof hb, " and a target %zu row%s later", H, H == 1 ? "" : "s");
        return nn_fail(e, NN_EDATA, "%s: %zu data row%s, too few for one window of %zu rows%s", path, n,
                       n == 1 ? "" : "s", T, hb);
    }
    size_t nw = (n - T - H) / S + 1;
    if (src->limit > 0 && (size_t)src->limit < nw)
        nw = (size_t)src->limit;
    size_t dim, bytes;
    if (nn_mul_size(T, nfeat, &dim) || dim > (size_t)NN_MAX_FEATURES)
        return nn_fail(e, NN_EDATA, "%s: a window of %zu rows x %zu features exceeds the limit of %ld features",
                       path, T, nfeat, (long)NN_MAX_FEATURES);
    if (nn_mul_size(nw, dim, &bytes) || nn_mul_size(bytes, sizeof(float), &bytes) || bytes > (size_t)NN_MAX_BYTES)
        return nn_fail(e, NN_EDATA, "%s: %zu windows of %zu values exceed %ld bytes; use a larger stride or a limit",
                       path, nw, dim, (long)NN_MAX_BYTES);
    float *wx = malloc(bytes ? bytes : 1), *wt = NULL;
    if (wx && tdim)
        wt = malloc(nw * (size_t)tdim * sizeof *wt);
    if (!wx || (tdim && !wt)) {
        free(wx);
        return nn_fail(e, NN_ENOMEM, "%s: out of memory (%zu windows)", path, nw);
    }
    for (size_t k = 0; k < nw; k++) {
        size_t start = k * S;
        memcpy(wx + k * dim, s->x + start * nfeat, dim * sizeof *wx);
        if (tdim)
            memcpy(wt + k * (size_t)tdim, s->t + (start + T - 1 + H) * (size_t)tdim, (size_t)tdim * sizeof *wt);
    }
    free(s->x);
    free(s->t);
    s->x = wx;
    s->t = wt;
    *nout = nw;
    return 0;
}

/* The source's settings, before the file is opened. */
static int check_settings(const nn_source *src, const nn_label_opts *lo, nn_err *e)
{
    if (!src || !src->path)
        return nn_fail(e, NN_EDATA, "%s: csv source has no path", src && src->json_path ? src->json_path : "data");
    const char *where = src->json_path ? src->json_path : "data";
    int nlab = src->nlabels;
    if (nlab < 0 || nlab > 16)
        return nn_fail(e, NN_EDATA, "%s: %d label columns (at most 16)", where, nlab);
    for (int i = 0; i < nlab; i++)
        if (!src->label_name[i] && src->label_index[i] < 0)
            return nn_fail(e, NN_EDATA, "%s: label column %d has neither a name nor an index", where, i + 1);
    int classify = lo->task == NN_TASK_CLASSIFY;
    const int windowed = src->window > 0;
    if (windowed && classify)
        return nn_fail(e, NN_EDATA, "%s: time-series windows predict numbers (regression): use \"loss\": \"mse\"",
                       where);
    if (windowed && (src->stride < 1 || src->horizon < 0))
        return nn_fail(e, NN_EDATA, "%s: bad window settings (stride %d, horizon %d)", where, src->stride,
                       src->horizon);
    if (src->nfeat_cols < 0 || (src->nfeat_cols > 0 && (!src->feat_name || !src->feat_index)))
        return nn_fail(e, NN_EDATA, "%s: bad feature column list", where);
    if (classify && nlab > 1)
        return nn_fail(e, NN_EDATA, "%s: classification takes exactly one label column, %d are given", where, nlab);
    if (classify && lo->class_names) {
        if (lo->nclasses < 1 || lo->nclasses > NN_MAX_CLASSES)
            return nn_fail(e, NN_EDATA, "%s: %d class names (1..%d allowed)", where, lo->nclasses, NN_MAX_CLASSES);
        for (int i = 0; i < lo->nclasses; i++)
            if (!lo->class_names[i])
                return nn_fail(e, NN_EDATA, "%s: class name %d is missing", where, i);
    }
    return 0;
}

/* Reads the file and its first row (kept as names), decides whether that row
 * is a header (given, a label column's name in it, or text above numbers),
 * and leaves the reader at the first data row. */
static int read_head(csv_state *s, nn_err *e)
{
    const nn_source *src = s->src;
    const char *path = s->path;
    int rc = nn_read_text_file(path, (size_t)NN_MAX_BYTES, &s->buf, &s->len, e);
    if (rc)
        return rc;
    s->start = (const char *)s->buf;
    s->end = s->start + s->len;
    if (s->len >= 3 && memcmp(s->start, "\xEF\xBB\xBF", 3) == 0)
        s->start += 3;
    s->r.path = path;
    s->r.p = s->start;
    s->r.end = s->end;
    s->r.line = 1;
    /* lines ending in a lone CR (classic Mac) read as one long line, reported
     * as a missing header or a wrong column count: say what it is */
    const char *eol = s->start;
    while (eol < s->end && *eol != '\n' && *eol != '\r')
        eol++;
    if (eol + 1 < s->end && *eol == '\r' && eol[1] != '\n')
        return nn_fail(e, NN_EDATA, "%s:1: the line ends in a lone CR (classic Mac line endings); convert to LF or CRLF",
                       path);

    /* First row. */
    rc = read_record(&s->r, e);
    if (rc > 0)
        return rc;
    if (rc < 0)
        return nn_fail(e, NN_EDATA, "%s: empty file (no rows)", path);
    s->row1_line = s->r.rec_line;
    s->after1 = s->r.p;
    s->after1_line = s->r.line;
    size_t ncols = s->ncols = s->r.nf;
    s->nrow1 = ncols;
    s->row1 = malloc(ncols * sizeof *s->row1);
    size_t namelen = 0;
    for (size_t j = 0; j < ncols; j++)
        namelen += s->r.f[j].len + 1;
    s->names = malloc(ncols * sizeof *s->names);
    s->namebuf = malloc(namelen);
    s->role = calloc(ncols, 1);
    if (!s->row1 || !s->names || !s->namebuf || !s->role)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    memcpy(s->row1, s->r.f, ncols * sizeof *s->row1);
    for (size_t j = 0, o = 0; j < ncols; j++) {
        s->names[j] = s->namebuf + o;
        o += span_copy(&s->row1[j], s->namebuf + o) + 1;
    }

    /* Header. */
    int has_header = src->header;
    if (has_header < 0) {
        has_header = 0;
        for (int i = 0; i < src->nlabels && !has_header; i++)
            if (src->label_name[i])
                for (size_t j = 0; j < ncols; j++)
                    if (strcmp(s->names[j], src->label_name[i]) == 0) {
                        has_header = 1;
                        break;
                    }
        if (!has_header) {
            rc = read_record(&s->r, e);
            if (rc > 0)
                return rc;
            if (rc == 0) {
                size_t m = s->r.nf < ncols ? s->r.nf : ncols;
                for (size_t j = 0; j < m && !has_header; j++)
                    if (!span_is_number(&s->row1[j]) && span_is_number(&s->r.f[j]))
                        has_header = 1;
            } else {
                has_header = 1;
                for (size_t j = 0; j < ncols; j++)
                    if (span_is_number(&s->row1[j]))
                        has_header = 0;
            }
        }
    }
    s->has_header = has_header;
    if (has_header) {
        s->r.p = s->after1;
        s->r.line = s->after1_line;
    } else {
        s->r.p = s->start; /* re-read row 1 as data */
        s->r.line = 1;
    }
    return 0;
}

/* The label columns (absent only where optional), the feature columns, and
 * what each row yields: targets, a class label (mapped or derived). */
static int pick_columns(csv_state *s, nn_err *e)
{
    const nn_source *src = s->src;
    const nn_label_opts *lo = s->lo;
    const char *path = s->path;
    size_t ncols = s->ncols;
    int nlab = src->nlabels, has_header = s->has_header;
    const int windowed = s->windowed;
    /* Label columns. */
    int missing = 0, first_missing = -1;
    int col_of[16];
    for (int i = 0; i < nlab; i++) {
        col_of[i] = (int)find_column(s, ncols, has_header, src->label_name[i], src->label_index[i]);
        if (col_of[i] < 0 && missing++ == 0)
            first_missing = i;
    }
    int labels_absent = 0;
    if (windowed && lo->labels_optional)
        labels_absent = 1; /* forecasting: every window, targets unused */
    else if (missing && lo->labels_optional && missing == nlab)
        labels_absent = 1;
    else if (missing)
        return column_error(e, s, path, ncols, has_header, s->row1_line, "label", src->label_name[first_missing],
                            src->label_index[first_missing]);
    int nl = s->nl = labels_absent ? 0 : nlab;
    for (int i = 0; i < nl; i++) {
        if (s->role[col_of[i]])
            return nn_fail(e, NN_EDATA, "%s: column %d is used as a label twice", path, col_of[i] + 1);
        s->role[col_of[i]] = (unsigned char)(i + 1);
    }

    /* Feature columns. */
    s->fslot = malloc(ncols * sizeof *s->fslot);
    if (!s->fslot)
        return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    for (size_t j = 0; j < ncols; j++)
        s->fslot[j] = -1;
    size_t nfeat = 0;
    if (src->nfeat_cols > 0) {
        for (int i = 0; i < src->nfeat_cols; i++) {
            long col = find_column(s, ncols, has_header, src->feat_name[i], src->feat_index[i]);
            if (col < 0)
                return column_error(e, s, path, ncols, has_header, s->row1_line, "feature", src->feat_name[i],
                                    src->feat_index[i]);
            if (s->fslot[col] >= 0)
                return nn_fail(e, NN_EDATA, "%s: column %ld is listed twice in the features", path, col + 1);
            if (s->role[col] && !windowed)
                return nn_fail(e, NN_EDATA, "%s: column %ld is the label; it cannot also be a feature", path,
                               col + 1);
            s->fslot[col] = (int)nfeat++;
        }
    } else {
        for (size_t j = 0; j < ncols; j++) /* a series' own past values are features too */
            if (!s->role[j] || windowed)
                s->fslot[j] = (int)nfeat++;
    }
    if (nfeat == 0)
        return nn_fail(e, NN_EDATA, "%s: no feature columns (the file has %zu column%s, all labels)", path, ncols,
                       ncols == 1 ? "" : "s");
    if (nfeat > (size_t)NN_MAX_FEATURES)
        return nn_fail(e, NN_EDATA, "%s: %zu feature columns, more than the limit of %ld", path, nfeat,
                       (long)NN_MAX_FEATURES);
    s->nfeat = nfeat;
    s->tdim = (!s->classify && nl) ? nl : 0;
    s->want_y = s->classify && nl == 1;
    s->derive = s->want_y && !lo->class_names;
    if (s->want_y && lo->class_names) {
        s->known = malloc((size_t)lo->nclasses * sizeof *s->known);
        if (!s->known)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        for (int i = 0; i < lo->nclasses; i++) {
            s->known[i].s = lo->class_names[i];
            s->known[i].idx = i;
        }
        qsort(s->known, (size_t)lo->nclasses, sizeof *s->known, cmp_name_idx);
    }
    return 0;
}

/* Every data row (up to the limit): features, targets, labels. */
static int read_rows(csv_state *s, nn_err *e)
{
    const nn_source *src = s->src;
    const nn_label_opts *lo = s->lo;
    const char *path = s->path;
    const size_t ncols = s->ncols, nfeat = s->nfeat;
    const int windowed = s->windowed, tdim = s->tdim, want_y = s->want_y, derive = s->derive;
    int rc;
    size_t maxrows = (size_t)NN_MAX_SAMPLES;
    if (src->limit > 0 && !windowed && (size_t)src->limit < maxrows)
        maxrows = (size_t)src->limit; /* windowed: the limit counts windows (make_windows) */
    size_t rowbytes = (size_t)(s->after1 - s->start);
    size_t est = (size_t)(s->end - s->r.p) / (rowbytes ? rowbytes : 1) + 16;
    if (est > maxrows)
        est = maxrows;
    size_t n = 0;
    s->all_int = 1;
    char hdr_note[64];
    snprintf(hdr_note, sizeof hdr_note, " (as in %sline %zu)", s->has_header ? "the header, " : "", s->row1_line);
    for (;; n++) {
        s->n = n;
        if (n == maxrows) {
            if (src->limit > 0 && !windowed && n == (size_t)src->limit)
                return 0;
            rc = read_record(&s->r, e);
            if (rc)
                return rc > 0 ? rc : 0;
            return nn_fail(e, NN_EDATA, "%s: more than %ld rows", path, (long)NN_MAX_SAMPLES);
        }
        if (n == s->cap && (rc = grow_rows(s, path, n + 1, est, nfeat, tdim, want_y, derive, maxrows, e)))
            return rc;
        float *xr = s->x + n * nfeat;
        float *tr = tdim ? s->t + n * (size_t)tdim : NULL;
        fspan lab = {NULL, 0, 0};
        size_t lab_col = 0;
        if (!fast_row(&s->r, ncols, s->role, s->fslot, xr, tr, &lab, &lab_col)) {
            rc = read_record(&s->r, e);
            if (rc)
                return rc > 0 ? rc : 0; /* < 0: the end */
            if (s->r.nf != ncols)
                return nn_fail(e, NN_EDATA, "%s:%zu: row has %zu column%s, expected %zu%s", path, s->r.rec_line,
                               s->r.nf, s->r.nf == 1 ? "" : "s", ncols, hdr_note);
            const fspan *f = s->r.f;
            for (size_t j = 0; j < ncols; j++) {
                int role = s->role[j];
                if (role && want_y) {
                    lab = f[j];
                    lab_col = j;
                    continue;
                }
                if (!role && s->fslot[j] < 0)
                    continue; /* unused column */
                float v;
                int pr = parse_num(f[j].s, f[j].len, &v);
                if (pr != NUM_OK)
                    return num_error(e, pr, path, s->r.rec_line, j, s->has_header ? s->names[j] : NULL, &f[j]);
                if (role)
                    tr[role - 1] = v;
                if (s->fslot[j] >= 0)
                    xr[s->fslot[j]] = v;
            }
        }
        size_t line = s->r.rec_line;
        if (want_y && !derive) {
            if ((rc = map_label(s, lo, path, line, lab_col + 1, &lab, &s->y[n], e)))
                return rc;
        } else if (want_y) {
            if (lab.len == 0)
                return nn_fail(e, NN_EDATA, "%s:%zu:%zu: empty label", path, line, lab_col + 1);
            size_t ll = 0;
            if ((rc = pool_add(s, path, &lab, &s->loff[n], &ll, e)))
                return rc;
            if (s->all_int && !parse_int(s->pool + s->loff[n], ll, &s->ival[n]))
                s->all_int = 0;
        }
    }
}

/* The classes, the windows (time series) or the rows trimmed, into out. */
static int finish(csv_state *s, nn_dataset *out, nn_err *e)
{
    const nn_label_opts *lo = s->lo;
    const char *path = s->path;
    size_t n = s->n, nfeat = s->nfeat;
    int rc;
    if (n == 0)
        return nn_fail(e, NN_EDATA, "%s: no data rows%s", path, s->has_header ? " (only a header)" : "");
    if (s->derive && (rc = derive_classes(s, path, n, s->all_int, e)))
        return rc;
    if (s->classify && lo->class_names) {
        s->cnames = calloc((size_t)lo->nclasses, sizeof *s->cnames);
        if (!s->cnames)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
        s->ncnames = lo->nclasses;
        for (int i = 0; i < lo->nclasses; i++)
            if (!(s->cnames[i] = nn_strdup(lo->class_names[i])))
                return nn_fail(e, NN_ENOMEM, "%s: out of memory", path);
    }
    size_t seq_f = 0;
    if (s->windowed) {
        if ((rc = make_windows(s, s->src, path, n, nfeat, s->tdim, &n, e)))
            return rc;
        seq_f = nfeat;
        nfeat *= (size_t)s->src->window;
    } else if (n < s->cap) { /* shrink to fit */
        float *nx = realloc(s->x, n * nfeat * sizeof *nx);
        if (nx)
            s->x = nx;
        if (s->y) {
            int *ny = realloc(s->y, n * sizeof *ny);
            if (ny)
                s->y = ny;
        }
        if (s->t) {
            float *nt = realloc(s->t, n * (size_t)s->tdim * sizeof *nt);
            if (nt)
                s->t = nt;
        }
    }
    out->n = n;
    out->c = (int)nfeat;
    out->h = out->w = 1;
    out->dim = nfeat;
    out->x = s->x;
    out->task = lo->task;
    out->y = s->want_y ? s->y : NULL;
    out->t = s->tdim ? s->t : NULL;
    out->tdim = s->tdim;
    out->nclasses = s->ncnames;
    out->class_names = s->cnames;
    out->seq_f = (int)seq_f;
    s->x = NULL;
    s->y = NULL;
    s->t = NULL;
    s->cnames = NULL;
    s->ncnames = 0;
    return 0;
}

int nn_csv_load(const nn_source *src, const nn_label_opts *lo_in, nn_dataset *out, nn_err *e)
{
    static const nn_label_opts defaults = {NN_TASK_CLASSIFY, NULL, 0, 0, 0};
    const nn_label_opts *lo = lo_in ? lo_in : &defaults;
    memset(out, 0, sizeof *out);
    int rc = check_settings(src, lo, e);
    if (rc)
        return rc;
    csv_state s;
    memset(&s, 0, sizeof s);
    s.src = src;
    s.lo = lo;
    s.path = src->path;
    s.classify = lo->task == NN_TASK_CLASSIFY;
    s.windowed = src->window > 0;
    if (!(rc = read_head(&s, e)) && !(rc = pick_columns(&s, e)) && !(rc = read_rows(&s, e)))
        rc = finish(&s, out, e);
    state_free(&s);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
