#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "blas.h"
#include "device.h"

static nn_dev g_dev;
static int g_dev_state; /* 0: not tried, 1: open, -1: failed */
static char g_dev_msg[NN_ERR_MAX];

static void dev_close(void)
{
    if (g_dev_state > 0) {
        nn_blas_close(&g_dev);
        nn_dev_close(&g_dev);
    }
    g_dev_state = 0;
}

nn_dev *nn_test_dev(void)
{
    if (!g_dev_state) {
        nn_err e;
        memset(&e, 0, sizeof e);
        /* the GEMM backend follows NNRUN_GEMM, as in nnrun itself */
        if (nn_dev_open(&g_dev, NULL, 0, &e)) {
            g_dev_state = -1;
            snprintf(g_dev_msg, sizeof g_dev_msg, "%s", e.msg);
        } else if (nn_blas_open(&g_dev, NN_GEMM_AUTO, &e)) {
            nn_dev_close(&g_dev);
            g_dev_state = -1;
            snprintf(g_dev_msg, sizeof g_dev_msg, "%s", e.msg);
        } else {
            g_dev_state = 1;
            atexit(dev_close);
        }
    }
    return g_dev_state > 0 ? &g_dev : NULL;
}

const char *nn_test_dev_msg(void) { return g_dev_msg; }

#ifndef MAX_TESTS
#define MAX_TESTS 1024
#endif
static struct { const char *name; nn_test_fn fn; } tests[MAX_TESTS];
static int ntests;
static int ndropped; /* registrations past MAX_TESTS: a failure, never silence */
static const char *first_dropped;
static char note[4096];

void nn_test_register(const char *name, nn_test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    } else if (ndropped++ == 0) {
        first_dropped = name;
    }
}

void nn_test_note(const char *file, int line, const char *fmt, ...)
{
    int n = snprintf(note, sizeof note, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + n, sizeof note - (size_t)n, fmt, ap);
    va_end(ap);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    /* Run in name order so output is stable. */
    qsort(tests, (size_t)ntests, sizeof tests[0], cmp);
    int pass = 0, fail = 0, skip = 0;
    if (ndropped) {
        printf("FAIL unit/registry: %d tests (the first: %s) were registered past MAX_TESTS (%d) and would not run; "
               "raise MAX_TESTS in tests/unit/main.c\n",
               ndropped, first_dropped, MAX_TESTS);
        fail++;
    }
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        note[0] = 0;
        int r = tests[i].fn();
        if (r == 0) {
            printf("PASS unit/%s\n", tests[i].name);
            pass++;
        } else if (r == NN_TEST_SKIPPED) {
            printf("SKIP unit/%s: %s\n", tests[i].name, note[0] ? note : "skipped");
            skip++;
        } else {
            printf("FAIL unit/%s: %s\n", tests[i].name, note[0] ? note : "failed");
            fail++;
        }
        fflush(stdout);
    }
    if (g_dev_state > 0)
        printf("# device: %s [%s], GEMM %s\n", g_dev.name, g_dev.platform_name, nn_blas_describe(&g_dev));
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return fail ? 1 : 0;
}
