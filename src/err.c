#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nn_fail(nn_err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

void nn_warn(const char *fmt, ...)
{
    char m[NN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "nnrun: warning: %s\n", m);
}

int nn_oom(nn_err *e, const char *fmt, ...)
{
    if (!e)
        return NN_ENOMEM;
    char what[NN_ERR_MAX - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nn_fail(e, NN_ENOMEM, "out of memory %s", what);
}

int nn_wrap(nn_err *e, const char *fmt, ...)
{
    char head[NN_ERR_MAX], old[NN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int hl = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    if (hl < 0)
        return e->code;
    size_t h = (size_t)hl < sizeof head ? (size_t)hl : sizeof head - 1;
    memcpy(old, e->msg, sizeof old);
    old[sizeof old - 1] = 0;
    size_t ol = strlen(old);
    if (h + ol >= sizeof e->msg)
        ol = sizeof e->msg - 1 - h;
    memcpy(e->msg, head, h);
    memcpy(e->msg + h, old, ol);
    e->msg[h + ol] = 0;
    return e->code;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

const char *nn_suggest(const char *word, const char *const *known, size_t n)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, known[i]);
        if (d < bestd) {
            bestd = d;
            best = known[i];
        }
    }
    if (!best && strlen(word) >= 3)
        for (size_t i = 0; i < n; i++)
            if (strncmp(word, known[i], strlen(word)) == 0)
                return known[i];
    return best;
}
