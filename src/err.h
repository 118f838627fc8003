/* err.h - the one error convention of nnrun.
 *
 * Every fallible function returns 0 on success or a sysexits-style code, and
 * fills an nn_err with a message naming the file, the place and the problem.
 * Only main() prints the message and exits. */
#ifndef NN_ERR_H
#define NN_ERR_H

#include <stddef.h>

enum {
    NN_OK = 0,
    NN_EGATE = 1,       /* eval: a --min-accuracy / --max-loss gate failed */
    NN_EUSAGE = 2,      /* bad command line */
    NN_EDATA = 65,      /* EX_DATAERR: bad model JSON, data file or model.bin */
    NN_ENOINPUT = 66,   /* EX_NOINPUT: a named input file is missing/unreadable */
    NN_ENODEV = 69,     /* EX_UNAVAILABLE: no usable OpenCL device */
    NN_ESOFTWARE = 70,  /* EX_SOFTWARE: internal error, OpenCL failure */
    NN_ENOMEM = 71,     /* EX_OSERR: the host is out of memory (the message says for what) */
    NN_EIO = 74,        /* EX_IOERR: writing output failed */
    NN_ENONFINITE = 75, /* training diverged: loss became NaN/Inf */
    NN_EINTR = 130,     /* training interrupted (SIGINT/SIGTERM) after writing a checkpoint */
};

#define NN_ERR_MAX 2048

typedef struct nn_err {
    int code;
    char msg[NN_ERR_MAX];
} nn_err;

/* Sets the error (code + printf-style message) and returns code. */
int nn_fail(nn_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 71 with "out of memory <what>" (printf-style), saying what was being allocated:
 * nn_oom(e, "reading %s (%zu bytes)", path, n). */
int nn_oom(nn_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line "nnrun: warning: ..." on stderr, for problems nnrun works around
 * (a cache entry it ignores); errors are never printed outside main. */
void nn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepends context ("reading model.bin: ") to an error already set; returns its code. */
int nn_wrap(nn_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the known word closest to `word` (edit distance <= 2 or a prefix match),
 * or NULL. Used for "did you mean ...?" hints. */
const char *nn_suggest(const char *word, const char *const *known, size_t n);

#endif
