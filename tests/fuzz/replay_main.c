/* replay_main.c - runs a libFuzzer target's LLVMFuzzerTestOneInput once on
 * each file named on the command line, without libFuzzer: `make test` builds
 * one such driver per target ($(BUILD)/replay/fuzz_TARGET, the normal build;
 * build-asan/replay/ under `make test-asan`) and tests/fuzz/replay.sh runs
 * the reproducers in tests/fuzz/crashes/ through them. A target reports a
 * violated invariant by aborting, so exit status 0 means every input passed. */
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        unsigned char *buf = NULL;
        size_t len = 0, cap = 0, got;
        do {
            if (len == cap) {
                cap = cap ? 2 * cap : 65536;
                unsigned char *nb = realloc(buf, cap);
                if (!nb) {
                    fprintf(stderr, "%s: out of memory\n", argv[i]);
                    return 2;
                }
                buf = nb;
            }
            got = fread(buf + len, 1, cap - len, f);
            len += got;
        } while (got > 0);
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            fprintf(stderr, "%s: read error\n", argv[i]);
            return 2;
        }
        /* an exact-size copy, as libFuzzer passes, so over-reads stay visible to ASan */
        unsigned char *in = malloc(len ? len : 1);
        if (!in)
            return 2;
        for (size_t k = 0; k < len; k++)
            in[k] = buf[k];
        free(buf);
        LLVMFuzzerTestOneInput(in, len);
        free(in);
    }
    return 0;
}
