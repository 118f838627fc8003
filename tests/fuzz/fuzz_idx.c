/* fuzz_idx.c - libFuzzer target: the IDX loader (nn_idx_load), raw and gzip.
 *
 * Input layout (tests/fuzz/gen_seeds.py writes seeds in it):
 *   byte 0      flags: bit 0 gzip the images file, bit 1 gzip the labels
 *               file (the target compresses; raw bytes may of course be gzip
 *               data already), bit 2 no labels file, bits 3-4 the source's
 *               limit (0, 1, 2, 100)
 *   bytes 1-2   u16 LE: length of the images file (clamped to what is left)
 *   then        the images file, then the labels file (the rest)
 * Checked beyond memory safety: failures return 65/66/71 with a message; a
 * loaded dataset is consistent (finite values, labels < nclasses, limit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "data/dataset.h"
#include "fuzz_common.h"

static fuzz_file fimg, flab;

static void check(int ok, const char *what, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_idx: invariant violated: %s (code %d, message '%s')\n", what, e->code, e->msg);
        abort();
    }
}

/* Writes data to f, gzip-compressed when gz. */
static void put(fuzz_file *f, const unsigned char *data, size_t n, int gz)
{
    if (!gz) {
        fuzz_file_set(f, data, n);
        return;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    unsigned char *out = malloc(cap);
    if (!out)
        abort();
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    fuzz_file_set(f, out, cap - z.avail_out);
    deflateEnd(&z);
    free(out);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const long limits[4] = {0, 1, 2, 100};
    if (size < 3)
        return 0;
    fuzz_file_init(&fimg, "images.idx");
    fuzz_file_init(&flab, "labels.idx");
    int flags = data[0];
    size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (ilen > size)
        ilen = size;
    put(&fimg, data, ilen, flags & 1);
    int labels = !(flags & 4);
    if (labels)
        put(&flab, data + ilen, size - ilen, flags & 2);

    nn_source src;
    memset(&src, 0, sizeof src);
    strcpy(src.format, "idx");
    src.images = fimg.path;
    src.labels = labels ? flab.path : NULL;
    src.limit = limits[(flags >> 3) & 3];
    src.json_path = "data.train";
    nn_dataset d;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_idx_load(&src, &d, &e);
    if (fuzz_verbose())
        fprintf(stderr, "idx: %d n=%zu dim=%zu %s\n", r, r ? 0 : d.n, r ? 0 : d.dim, r ? e.msg : "");
    if (r) {
        check(r == 65 || r == 66 || r == 71, "failed with a code other than 65/66/71", &e);
        check(e.msg[0] != 0, "failed without a message", &e);
        nn_dataset_free(&d);
        return 0;
    }
    check(d.n >= 1 && d.x && d.dim >= 1 && d.dim == (size_t)d.c * d.h * d.w, "inconsistent shape", &e);
    check(src.limit <= 0 || d.n <= (size_t)src.limit, "more samples than the limit", &e);
    for (size_t i = 0; i < d.n * d.dim; i++)
        check(isfinite(d.x[i]), "a value that is not finite", &e);
    if (labels) {
        check(d.y && d.nclasses >= 1 && d.nclasses <= 256, "labels missing or nclasses out of range", &e);
        for (size_t i = 0; i < d.n; i++)
            check(d.y[i] >= 0 && d.y[i] < d.nclasses, "a label out of range", &e);
    }
    nn_dataset_free(&d);
    return 0;
}
