/* fuzz_text.c - libFuzzer target: text corpora (nn_text_load).
 *
 * Input layout:
 *   byte 0   sequence length 1 + byte % 32
 *   byte 1   validation fraction {0, 0.1, 0.5, 0.9}[byte % 4]
 *   byte 2   0: the vocabulary is derived from the corpus; k > 0: the next
 *            k bytes are the model's vocabulary (as `nnrun eval` passes the
 *            byte values stored in model.bin)
 *   then     the corpus
 * Checked beyond memory safety: failures return 65/66/71 with a message; a
 * loaded corpus is consistent (ids within the vocabulary, names set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz_common.h"

static fuzz_file file;

static void check(int ok, const char *what, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_text: invariant violated: %s (code %d, message '%s')\n", what, e->code, e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const double fracs[4] = {0, 0.1, 0.5, 0.9};
    if (size < 3)
        return 0;
    int T = 1 + data[0] % 32;
    double frac = fracs[data[1] % 4];
    int nvocab = data[2];
    data += 3;
    size -= 3;
    if ((size_t)nvocab > size)
        nvocab = (int)size;
    int vocab[256];
    for (int i = 0; i < nvocab; i++)
        vocab[i] = data[i];
    data += nvocab;
    size -= (size_t)nvocab;
    fuzz_file_init(&file, "corpus.txt");
    fuzz_file_set(&file, data, size);

    nn_source src;
    memset(&src, 0, sizeof src);
    strcpy(src.format, "text");
    src.path = file.path;
    src.seq_len = T;
    src.json_path = "data.train";
    nn_dataset d;
    size_t nval = 0;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_text_load(&src, nvocab ? vocab : NULL, nvocab, frac, &d, &nval, &e);
    if (fuzz_verbose())
        fprintf(stderr, "text T=%d frac=%g nvocab=%d: %d n=%zu nval=%zu %s\n", T, frac, nvocab, r, r ? 0 : d.n, nval,
                r ? e.msg : "");
    if (r) {
        check(r == 65 || r == 66 || r == 71, "failed with a code other than 65/66/71", &e);
        check(e.msg[0] != 0, "failed without a message", &e);
        nn_dataset_free(&d);
        return 0;
    }
    check(d.n >= 1 && nval <= d.n && d.x && d.y && d.dim == (size_t)T && d.ylen == T, "an inconsistent corpus", &e);
    check(d.nclasses >= 1 && d.class_names != NULL, "no vocabulary", &e);
    if (!nvocab) /* derived: the sorted set of bytes present, at most 256 */
        check(d.nclasses <= 256, "more than 256 symbols", &e);
    for (size_t i = 0; i < d.n * (size_t)T; i++) {
        check(d.x[i] >= 0 && d.x[i] < (float)d.nclasses, "an input id outside the vocabulary", &e);
        check(d.y[i] >= 0 && d.y[i] < d.nclasses, "a target id outside the vocabulary", &e);
    }
    int seen[256] = {0};
    for (int i = 0; i < nvocab; i++)
        check(!seen[vocab[i]]++, "a repeated vocabulary entry was accepted", &e);
    for (int i = 0; i < d.nclasses; i++)
        check(d.class_names[i] != NULL, "a NULL vocabulary entry (class name)", &e);
    nn_dataset_free(&d);
    return 0;
}
