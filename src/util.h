/* util.h - small helpers shared by every module: files, paths, numbers. */
#ifndef NN_UTIL_H
#define NN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Reads a whole file (at most max_bytes) into a malloc'd buffer with a NUL
 * appended. 66 when missing/unreadable, 65 when larger than max_bytes. */
int nn_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len, nn_err *e);

/* Resolves `rel` against the folder of `base_file` unless it is absolute.
 * Returns a malloc'd string (NULL on allocation failure). */
char *nn_path_join_dir(const char *base_file, const char *rel);

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
