/* check.h - the tiny unit-test harness. A test is
 *
 *     TEST(csv_basic) { ...; CHECK(x == 1, "x is %d", x); return 0; }
 *
 * registered automatically; build/unit_tests runs them all (or those whose
 * name contains argv[1]) and prints "PASS name" / "FAIL name: why" /
 * "SKIP name: why" lines, then "N passed, N failed, N skipped". */
#ifndef NN_CHECK_H
#define NN_CHECK_H

#include <stdio.h>

typedef int (*nn_test_fn)(void);
void nn_test_register(const char *name, nn_test_fn fn);
void nn_test_note(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The OpenCL device every test shares: opened on first use (NULL if none
 * can be; nn_test_dev_msg() says why), closed at exit. */
struct nn_dev;
struct nn_dev *nn_test_dev(void);
const char *nn_test_dev_msg(void);

#define TEST(name)                                                        \
    static int test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)        \
    {                                                                     \
        nn_test_register(#name, test_##name);                             \
    }                                                                     \
    static int test_##name(void)

/* On failure: records the message and makes the test return 1. */
#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            nn_test_note(__FILE__, __LINE__, __VA_ARGS__);                \
            return 1;                                                     \
        }                                                                 \
    } while (0)

/* Skips the test, saying why: it is reported as "SKIP name: why" and counted
 * as skipped, never as passed. */
#define SKIP(...)                                                         \
    do {                                                                  \
        nn_test_note(__FILE__, __LINE__, __VA_ARGS__);                    \
        return NN_TEST_SKIPPED;                                           \
    } while (0)
#define NN_TEST_SKIPPED 77

#endif
