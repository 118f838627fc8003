/* fuzz_common.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * The loaders under test take file paths. Each target keeps one memory-backed
 * file per process (memfd_create; no disk, nothing left behind on a crash)
 * and rewrites it for every input; the loader opens it as /proc/self/fd/N. */
#ifndef NN_FUZZ_COMMON_H
#define NN_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* FUZZ_SKIP_KNOWN=1 (tests/fuzz/run.sh sets it while fuzzing, not when
 * replaying): for skipping or tolerating the inputs of a bug already reported
 * in tests/fuzz/crashes/ until it is fixed, so that it does not stop every
 * fuzzing run. Nothing uses it now (every finding so far is fixed). */
static inline int fuzz_skip_known(void)
{
    static int v = -1;
    if (v < 0) {
        const char *s = getenv("FUZZ_SKIP_KNOWN");
        v = s && *s && *s != '0';
    }
    return v;
}

/* FUZZ_VERBOSE=1: print each result (for checking seeds and reproducers). */
static inline int fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *s = getenv("FUZZ_VERBOSE");
        v = s && *s && *s != '0';
    }
    return v;
}

typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

/* Creates the file once (aborts when that fails: a setup error, not a finding). */
static inline void fuzz_file_init(fuzz_file *f, const char *name)
{
    if (f->fd > 0)
        return;
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's contents with data[0..n). */
static inline void fuzz_file_set(fuzz_file *f, const void *data, size_t n)
{
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    const unsigned char *p = data;
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(f->fd, p + off, n - off, (off_t)off);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        off += (size_t)w;
    }
}

#endif
