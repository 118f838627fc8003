/* fuzz_tune.c - libFuzzer target: the tuning files nnrun keeps in its cache
 * folder (clblast-HASH.tune, gemm-HASH.choice; src/tune.c).
 *
 * The first byte picks the file: even = CLBlast parameters
 * (nn_tune_check_params, for three devices: a PoCL-like CPU, a GPU with
 * 48 KiB of local memory and 256 work-items, one that reports nothing), odd =
 * per-shape choices (nn_tune_parse_choices); the rest is the file's text.
 *
 * Checked beyond memory safety (a WGD of 0 divided by zero, a 65536-item
 * work-group reached CLBlast): parameters are accepted only with a
 * description, refused only with a reason; accepted choices lie in range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "fuzz_common.h"
#include "tune.h"

static void check(int ok, const char *what, const char *detail)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tune: invariant violated: %s (%s)\n", what, detail);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* the file is read as text: it ends at the first NUL */
    if (!(data[0] & 1)) {
        static const struct { size_t wg; unsigned long long local; } devs[] = {{4096, 1 << 20}, {256, 48 << 10}, {0, 0}};
        for (size_t k = 0; k < sizeof devs / sizeof *devs; k++) {
            char out[256] = "";
            int r = nn_tune_check_params(text, devs[k].wg, devs[k].local, out, sizeof out);
            if (fuzz_verbose())
                fprintf(stderr, "params (wg %zu): %d %s\n", devs[k].wg, r, out);
            check((r == 0 || r == -1) && out[0], "a result without a description or reason", out);
            if (r == 0)
                check(!strncmp(out, "Xgemm", 5), "accepted parameters of an unknown kernel", out);
        }
    } else {
        nn_gemm_shape sh[8];
        int be[8];
        nn_native_knobs kn[8];
        size_t n = 99;
        int r = nn_tune_parse_choices(text, sh, be, kn, 8, &n);
        if (fuzz_verbose())
            fprintf(stderr, "choices: %d, %zu shapes\n", r, n);
        check(r == 0 || r == -1, "a result other than 0/-1", "choices");
        check(n <= 8, "more shapes than room", "choices");
        for (size_t i = 0; r == 0 && i < n; i++)
            check(sh[i].ta >= 0 && sh[i].ta <= 1 && sh[i].tb >= 0 && sh[i].tb <= 1 && be[i] >= 0 &&
                      be[i] < NN_GEMM_NBACKENDS,
                  "an accepted choice out of range", "choices");
    }
    free(text);
    return 0;
}
