/* fuzz_spec.c - libFuzzer target: the model JSON.
 *
 * nn_spec_parse on arbitrary bytes (not NUL-terminated: the API takes a
 * length); when it succeeds, the canonical JSON (what model.bin stores) and,
 * when input.shape is given, nn_net_build (shape inference and parameter
 * layout; no device is ever opened). Text sources are set up as `nnrun
 * train` does after loading the corpus: a vocabulary size (7) for "vocab"
 * layers and, without input.shape, [sequence_length]. Everything is freed, so LeakSanitizer
 * sees leaks on error paths too.
 *
 * Checked beyond memory safety: a failure returns 65 (bad JSON) or 71 (out of
 * memory) with a non-empty message; success gives a sane spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/format.h"
#include "fuzz_common.h"
#include "net.h"
#include "spec.h"

static void check(int ok, const char *what, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_spec: invariant violated: %s (code %d, message '%s')\n", what, e->code, e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    nn_spec s;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_spec_parse((const char *)data, size, "fuzz.json", &s, &e);
    if (fuzz_verbose())
        fprintf(stderr, "spec: %d %s\n", r, e.msg);
    if (r) {
        check(r == 65 || r == 71, "nn_spec_parse failed with a code other than 65/71", &e);
        check(e.msg[0] != 0, "nn_spec_parse failed without a message", &e);
        nn_spec_free(&s);
        return 0;
    }
    check(s.root != NULL && s.output != NULL && s.nlayers >= 1, "nn_spec_parse succeeded with an incomplete spec", &e);
    char *canon = nn_spec_canonical(&s, NULL, &e);
    if (canon) {
        /* the canonical text must parse again (eval/infer read it from model.bin) */
        nn_spec s2;
        nn_err e2;
        memset(&e2, 0, sizeof e2);
        int r2 = nn_spec_parse(canon, strlen(canon), "canonical.json", &s2, &e2);
        check(r2 == 0 || r2 == 71, "the canonical JSON of a valid spec does not parse again", &e2);
        nn_spec_free(&s2);
        free(canon);
    }
    int vocab = 0;
    if (nn_source_is(&s.train_src, NN_FMT_TOKENS)) {
        vocab = 7;
        if (!s.has_input_shape && s.train_src.seq_len > 0) {
            s.input.nd = 1;
            s.input.d[0] = s.train_src.seq_len;
            s.has_input_shape = 1;
        }
    }
    if (s.has_input_shape) {
        nn_net net;
        memset(&e, 0, sizeof e);
        r = nn_net_build(&net, &s, &s.input, vocab, &e);
        if (fuzz_verbose())
            fprintf(stderr, "net: %d %s\n", r, r ? e.msg : "");
        if (r) {
            check(r == 65 || r == 71, "nn_net_build failed with a code other than 65/71", &e);
            check(e.msg[0] != 0, "nn_net_build failed without a message", &e);
        } else {
            check(net.in_dim > 0 && net.out_dim > 0, "nn_net_build succeeded with an empty input or output", &e);
        }
        nn_net_free(&net);
    }
    nn_spec_free(&s);
    return 0;
}
