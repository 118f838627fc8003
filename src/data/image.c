/* image.c - one image file -> c x h x w floats in [0,1] (channel-major).
 *
 * Decoding is stb_image's (libstb; the implementation lives in libstb.so, so
 * no STB_IMAGE_IMPLEMENTATION here). stb converts to the requested channel
 * count (1 grey = luminance, 2 grey+alpha, 3 RGB, 4 RGBA; a missing alpha
 * becomes 1). When the size differs the 8-bit pixels are resized with
 * stbir_resize_uint8 (stb's default filters, edge clamp) before scaling to
 * [0,1], so resized and unresized images are quantised alike. */
#include "dataset.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_resize.h>

#include "../util.h"

static const char *reason(void)
{
    const char *r = stbi_failure_reason();
    return r && *r ? r : "unknown error";
}

int nn_image_decode(const unsigned char *buf, size_t len, const char *name, int c, int h, int w,
                    float *out, nn_err *e)
{
    if (!name)
        name = "<image>";
    if (c < 1 || c > 4 || h < 1 || w < 1)
        return nn_fail(e, NN_EDATA,
                       "%s: cannot convert to %d channel(s) of %dx%d (channels must be 1..4, "
                       "sizes positive)",
                       name, c, w, h);
    size_t hw, chw;
    if (nn_mul_size((size_t)h, (size_t)w, &hw) || nn_mul_size(hw, (size_t)c, &chw) ||
        chw > (size_t)NN_MAX_FEATURES)
        return nn_fail(e, NN_EDATA, "%s: target size %dx%dx%d exceeds the %ld-value limit", name, c,
                       h, w, (long)NN_MAX_FEATURES);
    if (!out)
        return nn_fail(e, NN_ESOFTWARE, "%s: no output buffer", name);
    if (!buf || len == 0)
        return nn_fail(e, NN_EDATA, "%s: cannot decode image: empty file", name);
    if (len > (size_t)INT_MAX)
        return nn_fail(e, NN_EDATA, "%s: cannot decode image: file larger than %d bytes", name,
                       INT_MAX);
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp))
        return nn_fail(e, NN_EDATA, "%s: cannot decode image: %s", name, reason());
    if (iw <= 0 || ih <= 0 || (size_t)iw * (size_t)ih > (size_t)NN_MAX_IMAGE_PIXELS)
        return nn_fail(e, NN_EDATA, "%s: image is %dx%d pixels; the limit is %ld pixels", name, iw,
                       ih, (long)NN_MAX_IMAGE_PIXELS);
    int x = 0, y = 0, nc = 0;
    unsigned char *px = stbi_load_from_memory(buf, (int)len, &x, &y, &nc, c);
    if (!px) {
        const char *r = reason();
        return nn_fail(e, strcmp(r, "outofmem") == 0 ? NN_ESOFTWARE : NN_EDATA,
                       "%s: cannot decode image: %s", name, r);
    }
    if (x <= 0 || y <= 0 || (size_t)x * (size_t)y > (size_t)NN_MAX_IMAGE_PIXELS) {
        stbi_image_free(px);
        return nn_fail(e, NN_EDATA, "%s: image is %dx%d pixels; the limit is %ld pixels", name, x,
                       y, (long)NN_MAX_IMAGE_PIXELS);
    }
    const unsigned char *src = px;
    unsigned char *rs = NULL;
    if (x != w || y != h) {
        rs = malloc(chw);
        if (!rs) {
            stbi_image_free(px);
            return nn_fail(e, NN_ESOFTWARE, "%s: out of memory", name);
        }
        if (!stbir_resize_uint8(px, x, y, 0, rs, w, h, 0, c)) {
            free(rs);
            stbi_image_free(px);
            return nn_fail(e, NN_ESOFTWARE, "%s: cannot resize %dx%d to %dx%d", name, x, y, w, h);
        }
        src = rs;
    }
    float lut[256]; /* v / 255, exactly as the IDX loader scales */
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;
    for (int ch = 0; ch < c; ch++) {
        float *o = out + (size_t)ch * hw;
        const unsigned char *s = src + ch;
        for (size_t i = 0; i < hw; i++)
            o[i] = lut[s[i * (size_t)c]];
    }
    free(rs);
    stbi_image_free(px);
    return 0;
}

int nn_image_load(const char *path, int c, int h, int w, float *out, nn_err *e)
{
    if (!path)
        return nn_fail(e, NN_ENOINPUT, "(null): no image path");
    unsigned char *buf;
    size_t len;
    int rc = nn_read_file(path, (size_t)INT_MAX, &buf, &len, e);
    if (rc)
        return rc;
    rc = nn_image_decode(buf, len, path, c, h, w, out, e);
    free(buf);
    return rc;
}
