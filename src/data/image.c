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
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_resize.h>

#include "../util.h"

static const char *reason(void)
{
    const char *r = stbi_failure_reason();
    return r && *r ? r : "unknown error";
}

/* nc-channel 8-bit pixels -> c channels (grey, grey+alpha, RGB, RGBA);
 * luminance with stb's weights. malloc'd (free with free()). */
static unsigned char *convert_channels(const unsigned char *in, size_t n, int nc, int c)
{
    unsigned char *out = malloc(n * (size_t)c);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = in + i * (size_t)nc;
        unsigned char *o = out + i * (size_t)c;
        int grey = nc >= 3 ? (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8 : p[0];
        int alpha = nc == 2 ? p[1] : nc == 4 ? p[3] : 255;
        int rgb[3] = {nc >= 3 ? p[0] : p[0], nc >= 3 ? p[1] : p[0], nc >= 3 ? p[2] : p[0]};
        switch (c) {
        case 1: o[0] = (unsigned char)grey; break;
        case 2: o[0] = (unsigned char)grey; o[1] = (unsigned char)alpha; break;
        case 3: o[0] = (unsigned char)rgb[0]; o[1] = (unsigned char)rgb[1]; o[2] = (unsigned char)rgb[2]; break;
        default:
            o[0] = (unsigned char)rgb[0]; o[1] = (unsigned char)rgb[1]; o[2] = (unsigned char)rgb[2];
            o[3] = (unsigned char)alpha;
        }
    }
    return out;
}

static unsigned long le16(const unsigned char *p) { return (unsigned long)p[0] | (unsigned long)p[1] << 8; }
static unsigned long le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }

/* Formats that store pixels uncompressed or run-length encoded (binary PNM,
 * TGA, BMP): the size the header claims must fit the bytes present. stb 2.27
 * accepts a header alone (a TGA claiming 8192x8192, a PNM with maxval 0) and
 * returns pixels it never read: garbage in must be an error, not a
 * prediction. Fills *fmt, *w, *h, *need, *have; 0 when the format is none of
 * these or the header does not parse (stb reports that). */
static int pixel_bytes(const unsigned char *buf, size_t len, const char **fmt, unsigned long *w, unsigned long *h,
                       double *need, size_t *have, unsigned long *maxval)
{
    *maxval = 1;
    if (len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6')) {
        size_t i = 2;
        unsigned long v[3];
        for (int k = 0; k < 3; k++) {
            for (;;) {
                while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
                    i++;
                if (i < len && buf[i] == '#') {
                    while (i < len && buf[i] != '\n')
                        i++;
                    continue;
                }
                break;
            }
            if (i >= len || buf[i] < '0' || buf[i] > '9')
                return 0; /* let stb report it */
            v[k] = 0;
            while (i < len && buf[i] >= '0' && buf[i] <= '9' && v[k] < 100000000UL)
                v[k] = v[k] * 10 + (unsigned long)(buf[i++] - '0');
        }
        i++; /* the single whitespace before the pixels */
        *fmt = "PNM";
        *w = v[0];
        *h = v[1];
        *maxval = v[2];
        *need = (double)v[0] * (double)v[1] * (buf[1] == '6' ? 3.0 : 1.0) * (v[2] > 255 ? 2.0 : 1.0);
        *have = len > i ? len - i : 0;
        return 1;
    }
    if (len >= 54 && buf[0] == 'B' && buf[1] == 'M') {
        unsigned long off = le32(buf + 10), hs = le32(buf + 14), bpp = le16(buf + 28), comp = le32(buf + 30);
        long bw = (long)(int32_t)le32(buf + 18), bh = (long)(int32_t)le32(buf + 22);
        if (hs < 40 || bw <= 0 || bh == 0 || bpp == 0 || off > len)
            return 0;
        *fmt = "BMP";
        *w = (unsigned long)bw;
        *h = (unsigned long)(bh < 0 ? -bh : bh);
        double px = (double)*w * (double)*h;
        if (comp == 0 || comp == 3) /* BI_RGB, BI_BITFIELDS: rows padded to 4 bytes */
            *need = floor(((double)*w * (double)bpp + 31) / 32) * 4 * (double)*h;
        else if (comp == 1 || comp == 2) /* RLE8/RLE4: 2 bytes cover at most 255 pixels */
            *need = px / 255.0 * 2.0;
        else
            return 0;
        *have = len - off;
        return 1;
    }
    static const char *magics[] = {"\x89PNG", "\xFF\xD8", "GIF8", "8BPS", "#?", "\x53\x80\xF6\x34"};
    for (size_t k = 0; k < sizeof magics / sizeof *magics; k++)
        if (len >= strlen(magics[k]) && !memcmp(buf, magics[k], strlen(magics[k])))
            return 0;
    /* TGA (no magic): types 1-3 raw, 9-11 run-length encoded */
    if (len >= 18 && buf[1] <= 1 && ((buf[2] >= 1 && buf[2] <= 3) || (buf[2] >= 9 && buf[2] <= 11))) {
        unsigned long bpp = buf[16], cmaplen = buf[1] ? le16(buf + 5) : 0, cmapbits = buf[1] ? buf[7] : 0;
        size_t start = 18 + (size_t)buf[0] + (size_t)(cmaplen * ((cmapbits + 7) / 8));
        if (bpp == 0 || start > len)
            return 0;
        *fmt = "TGA";
        *w = le16(buf + 12);
        *h = le16(buf + 14);
        double px = (double)*w * (double)*h, bytes = (double)((bpp + 7) / 8);
        *need = buf[2] <= 3 ? px * bytes : (px / 128.0) * (1.0 + bytes); /* a packet: 1 + pixel, <= 128 pixels */
        *have = len - start;
        return 1;
    }
    return 0;
}

static unsigned long be32(const unsigned char *p) { return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3]; }

static int header_check(const unsigned char *buf, size_t len, const char *name, nn_err *e)
{
    const char *fmt;
    unsigned long w = 0, h = 0, maxval;
    double need;
    size_t have;
    /* too large before stb looks: for a 100000x100000 PNG stb's info says
     * "unknown image type" (its "too large" is overwritten by the other formats' tests) */
    if (len >= 24 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8) && !memcmp(buf + 12, "IHDR", 4)) {
        w = be32(buf + 16);
        h = be32(buf + 20);
    } else if (len >= 10 && !memcmp(buf, "GIF8", 4)) {
        w = le16(buf + 6);
        h = le16(buf + 8);
    }
    unsigned long pw, ph;
    int known = pixel_bytes(buf, len, &fmt, &pw, &ph, &need, &have, &maxval);
    if (known) {
        w = pw;
        h = ph;
    }
    if ((double)w * (double)h > (double)NN_MAX_IMAGE_PIXELS)
        return nn_fail(e, NN_EDATA, "%s: image is %lux%lu pixels; the limit is %ld pixels", name, w, h,
                       (long)NN_MAX_IMAGE_PIXELS);
    if (!known)
        return 0;
    if (maxval < 1 || maxval > 65535)
        return nn_fail(e, NN_EDATA, "%s: %s image: maxval %lu (must be 1 to 65535)", name, fmt, maxval);
    if ((double)have < need)
        return nn_fail(e, NN_EDATA,
                       "%s: truncated %s image: its header says %lux%lu, which needs at least %.0f bytes of pixels, "
                       "the file has %zu",
                       name, fmt, w, h, need, have);
    return 0;
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
    int r = header_check(buf, len, name, e);
    if (r)
        return r;
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp))
        return nn_fail(e, NN_EDATA, "%s: cannot decode image: %s", name, reason());
    if (ih < 0 && len >= 2 && buf[0] == 'B' && buf[1] == 'M')
        ih = -ih; /* stb 2.27's info gives a top-down BMP's height negative; its loader handles it */
    if (iw <= 0 || ih <= 0 || (size_t)iw * (size_t)ih > (size_t)NN_MAX_IMAGE_PIXELS)
        return nn_fail(e, NN_EDATA, "%s: image is %dx%d pixels; the limit is %ld pixels", name, iw,
                       ih, (long)NN_MAX_IMAGE_PIXELS);
    /* Decode at the file's own channel count and convert here: stb 2.27's
     * PNM loader converts channels as 8-bit before its 16-to-8 step and then
     * reads past its buffer (tests/fuzz/crashes/image-pnm16-overread). */
    int x = 0, y = 0, nc = 0;
    unsigned char *raw = stbi_load_from_memory(buf, (int)len, &x, &y, &nc, 0);
    unsigned char *px = NULL;
    if (raw && nc >= 1 && nc <= 4 && x > 0 && y > 0 && (size_t)x * (size_t)y <= (size_t)NN_MAX_IMAGE_PIXELS) {
        px = convert_channels(raw, (size_t)x * (size_t)y, nc, c);
        stbi_image_free(raw);
        if (!px)
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", name);
    } else if (raw) {
        stbi_image_free(raw);
        return nn_fail(e, NN_EDATA, "%s: image is %dx%d pixels with %d channels; the limit is %ld pixels", name, x, y,
                       nc, (long)NN_MAX_IMAGE_PIXELS);
    }
    if (!px) {
        const char *why = reason();
        return nn_fail(e, strcmp(why, "outofmem") == 0 ? NN_ENOMEM : NN_EDATA,
                       "%s: cannot decode image: %s", name, why);
    }
    if (x <= 0 || y <= 0 || (size_t)x * (size_t)y > (size_t)NN_MAX_IMAGE_PIXELS) {
        free(px);
        return nn_fail(e, NN_EDATA, "%s: image is %dx%d pixels; the limit is %ld pixels", name, x,
                       y, (long)NN_MAX_IMAGE_PIXELS);
    }
    const unsigned char *src = px;
    unsigned char *rs = NULL;
    if (x != w || y != h) {
        rs = malloc(chw);
        if (!rs) {
            free(px);
            return nn_fail(e, NN_ENOMEM, "%s: out of memory", name);
        }
        if (!stbir_resize_uint8(px, x, y, 0, rs, w, h, 0, c)) {
            free(rs);
            free(px);
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
    free(px);
    return 0;
}

int nn_image_load(const char *path, int c, int h, int w, float *out, nn_err *e)
{
    if (!path)
        return nn_fail(e, NN_ENOINPUT, "(null): no image path");
    int fd;
    uint64_t size;
    int rc = nn_open_input(path, &fd, &size, e);
    if (rc)
        return rc;
    /* Sniff before reading it all: stb recognises every format by its first
     * bytes, so a file that is no image (a sparse file, /dev/zero copied) is
     * refused after 4 KiB, not after reading gigabytes. */
    unsigned char head[4096];
    ssize_t hn = pread(fd, head, sizeof head, 0);
    int x, y, comp;
    if (hn > 0 && (uint64_t)hn < size && !stbi_info_from_memory(head, (int)hn, &x, &y, &comp) &&
        !strcmp(reason(), "unknown image type")) {
        close(fd);
        return nn_fail(e, NN_EDATA, "%s: cannot decode image: %s", path, reason());
    }
    unsigned char *buf;
    size_t len;
    rc = nn_read_fd(fd, path, size, (size_t)NN_MAX_IMAGE_FILE, 0, &buf, &len, e);
    close(fd);
    if (rc)
        return rc;
    rc = nn_image_decode(buf, len, path, c, h, w, out, e);
    free(buf);
    return rc;
}
