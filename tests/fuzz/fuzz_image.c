/* fuzz_image.c - libFuzzer target: image decoding (nn_image_decode).
 *
 * Input layout (tests/fuzz/gen_seeds.py writes seeds in it):
 *   byte 0   target channels: {1, 3, 1, 3, 4}[byte % 5]
 *   byte 1   target height 1 + byte % 32
 *   byte 2   target width  1 + byte % 32
 *   then     the image file (PNG, JPEG, BMP, GIF, TGA, PNM, PSD, HDR, PIC)
 * The output buffer is exactly c*h*w floats (ASan catches any overrun) and
 * every value must lie in [0, 1]. Failures must return 65 (or 71 when out
 * of memory) with a message.
 *
 * stb_image and stb_image_resize are compiled into this target with
 * coverage instrumentation (tests/fuzz/stb_impl.c, the same headers the
 * Debian libstb is built from), so the fuzzer sees inside the decoders and
 * AddressSanitizer checks them; nnrun itself links libstb.so.
 *
 * FUZZ_IMAGE_MAX_PIXELS=N (tests/fuzz/run.sh sets 1048576 while fuzzing):
 * inputs whose header declares more pixels are skipped. Tiny files declaring
 * huge images (tests/fuzz/crashes/image-psd-bomb) otherwise turn every run
 * into a slow-unit timeout; replaying reproducers runs without the cap. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

#include "data/dataset.h"
#include "fuzz_common.h"

static void check(int ok, const char *what, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_image: invariant violated: %s (code %d, message '%s')\n", what, e->code, e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static const int chans[5] = {1, 3, 1, 3, 4};
    if (size < 3)
        return 0;
    int c = chans[data[0] % 5], h = 1 + data[1] % 32, w = 1 + data[2] % 32;
    data += 3;
    size -= 3;
    /* a private copy of exactly `size` bytes, so over-reads are caught */
    unsigned char *img = malloc(size ? size : 1);
    float *out = malloc(sizeof(float) * (size_t)(c * h * w));
    if (!img || !out)
        abort();
    memcpy(img, data, size);
    static long max_pixels = -1;
    if (max_pixels < 0) {
        const char *m = getenv("FUZZ_IMAGE_MAX_PIXELS");
        max_pixels = m && *m ? atol(m) : 0;
    }
    int iw, ih, icomp;
    int skip = max_pixels > 0 && size <= 0x7fffffff && stbi_info_from_memory(img, (int)size, &iw, &ih, &icomp) &&
               (double)iw * ih > (double)max_pixels;
    if (skip) {
        free(img);
        free(out);
        return 0;
    }
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_image_decode(img, size, "fuzz.img", c, h, w, out, &e);
    if (fuzz_verbose())
        fprintf(stderr, "image c=%d h=%d w=%d: %d %s\n", c, h, w, r, e.msg);
    if (r) {
        check(r == 65 || r == 71, "failed with a code other than 65/71", &e);
        check(e.msg[0] != 0, "failed without a message", &e);
    } else {
        for (int i = 0; i < c * h * w; i++)
            check(out[i] >= 0.0f && out[i] <= 1.0f, "a value outside [0, 1]", &e);
    }
    free(img);
    free(out);
    return 0;
}
