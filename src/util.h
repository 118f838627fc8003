/* util.h - small helpers shared by every module: files, paths, numbers. */
#ifndef NN_UTIL_H
#define NN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Opens `path` for reading without blocking (O_NONBLOCK, so a FIFO or a
 * device cannot hang nnrun), refuses anything but a regular file, naming what
 * it is, then clears O_NONBLOCK. Every input nnrun reads goes through this.
 * *size: st_size. 66 when missing, unreadable or not a regular file. */
int nn_open_input(const char *path, int *fd, uint64_t *size, nn_err *e);
/* The same as a stdio stream ("rb"). */
#include <stdio.h>
int nn_fopen_input(const char *path, FILE **f, uint64_t *size, nn_err *e);

/* Reads what is left of `fd` (size: its st_size) into a malloc'd buffer with
 * a NUL appended. 65 when the file is larger than max_bytes (checked against
 * st_size before anything is allocated, and again while reading); with `text`
 * 65 at the first NUL byte (a binary or sparse file), found while reading. */
int nn_read_fd(int fd, const char *path, uint64_t size, size_t max_bytes, int text, unsigned char **buf,
               size_t *len, nn_err *e);

/* Reads a whole file (at most max_bytes) into a malloc'd buffer with a NUL
 * appended. 66 when missing/unreadable/not a regular file, 65 when larger than
 * max_bytes, 71 when the host is out of memory. */
int nn_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e);
/* The same for text (CSV, lists, JSON): a NUL byte is an error (65). */
int nn_read_text_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e);

/* "a FIFO (named pipe)", "a character device", ... for a st_mode. */
const char *nn_file_kind(unsigned mode);

/* 1 when `path` is a regular file that begins with `prefix` (under 64 bytes):
 * what a file is, by its content rather than its name. */
int nn_file_has_prefix(const char *path, const char *prefix);

/* An output path may be new or a regular file (or a link to one); anything
 * else (a device node, a FIFO, a folder) is refused with 74. With own_prefix,
 * an existing non-empty file must begin with it (a file nnrun wrote, such as
 * its metrics log), so that nothing else is ever truncated. Call it before the
 * work; open the output itself last. */
int nn_check_output(const char *path, const char *own_prefix, nn_err *e);

/* Writes buf to `path` atomically: a temporary file in the same folder,
 * fsync'd, renamed over `path`, the folder fsync'd (onnx_write.c). Only a new
 * path or a regular file is replaced; on failure (74) `path` is untouched. */
int nn_write_atomic(const char *path, const void *buf, size_t len, nn_err *e);

/* Resolves `rel` against the folder of `base_file` unless it is absolute.
 * Returns a malloc'd string (NULL on allocation failure). */
char *nn_path_join_dir(const char *base_file, const char *rel);

/* Duplicates among names[0..n) in O(n log n): 1 with the earliest second
 * occurrence (*second) and the first occurrence of that name (*first); 0 when
 * all differ; -1 when out of memory. */
int nn_find_duplicate(const char *const *names, size_t n, size_t *first, size_t *second);

/* malloc'd copy; NULL in -> NULL out. */
char *nn_strdup(const char *s);

/* Overflow-checked size arithmetic: return 0 on success, -1 on overflow. */
int nn_mul_size(size_t a, size_t b, size_t *out);

/* 64-bit FNV-1a, chainable: pass the previous hash (start with NN_FNV_INIT). */
#define NN_FNV_INIT 0xcbf29ce484222325ULL
uint64_t nn_fnv1a(uint64_t h, const void *data, size_t len);

/* Seeded PRNG (splitmix64 / xoshiro-style), deterministic across platforms. */
typedef struct nn_rng { uint64_t s; } nn_rng;
void nn_rng_seed(nn_rng *r, uint64_t seed);
uint64_t nn_rng_next(nn_rng *r);
double nn_rng_uniform(nn_rng *r);             /* [0,1) */
double nn_rng_normal(nn_rng *r);              /* N(0,1) */
void nn_shuffle(nn_rng *r, int *idx, size_t n);

/* JSON output: a quoted, escaped string; ',"key":number' (null when not finite). */
#include <stdio.h>
void nn_json_str(FILE *f, const char *s);
void nn_json_num(FILE *f, const char *key, double v);

/* Monotonic wall clock in seconds. */
double nn_now(void);

#endif
