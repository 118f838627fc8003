/* test_plot.c - the --plot module: axis ranges and ticks, tick labels, and
 * the PNG it writes (decoded again with stb_image). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image.h>

#include "check.h"
#include "plot.h"
#include "util.h"

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1, fmax(fabs(a), fabs(b))); }

TEST(plot_axis)
{
    static const struct {
        double lo, hi;
        int max, integer;
        double a, b, step;
    } c[] = {
        {0.0427, 1.9977, 6, 0, 0, 2, 0.5},     /* a loss curve */
        {0.2571, 0.9714, 6, 0, 0.2, 1, 0.2},   /* an accuracy curve */
        {1, 100, 8, 1, 0, 100, 20},            /* 100 epochs */
        {1, 5, 8, 1, 1, 5, 1},                 /* 5 epochs: whole steps, never 0.5 */
        {1, 1, 8, 1, 0, 2, 1},                 /* one epoch */
        {5, 5, 6, 0, 4.4, 5.6, 0.2},           /* one value: widened by 10% */
        {0, 0, 6, 0, -1, 1, 0.5},              /* zero */
        {1, 1 + 1e-12, 6, 0, 0.9, 1.1, 0.05},   /* float noise around one value */
        {1e-7, 3e-7, 6, 0, 1e-7, 3e-7, 5e-8},  /* tiny */
        {1e30, 3e30, 6, 0, 1e30, 3e30, 5e29},  /* huge */
        {-3, 7, 6, 0, -4, 8, 2},               /* negative */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double a, b, s;
        nn_plot_axis(c[i].lo, c[i].hi, c[i].max, c[i].integer, &a, &b, &s);
        CHECK(near(a, c[i].a) && near(b, c[i].b) && near(s, c[i].step),
              "case %zu [%g, %g]: axis [%.17g, %.17g] step %.17g, expected [%g, %g] step %g", i, c[i].lo, c[i].hi, a,
              b, s, c[i].a, c[i].b, c[i].step);
        CHECK(a <= c[i].lo && b >= c[i].hi && (b - a) / s <= 2 * c[i].max, "case %zu: range or tick count", i);
    }
    return 0;
}

TEST(plot_tick_labels)
{
    static const struct {
        double v, step, maxabs;
        const char *want;
    } c[] = {
        {0.25, 0.05, 1, "0.25"},
        {3 * 0.1, 0.1, 1, "0.3"},     /* k * step noise */
        {1e-17, 0.1, 1, "0.0"},       /* no 1e-17 */
        {-0.5, 0.5, 1, "-0.5"},
        {100, 20, 100, "100"},
        {2500, 500, 4000, "2500"},
        {1.5e6, 5e5, 2e6, "1.5e6"},
        {2e6, 5e5, 2e6, "2e6"},
        {2e-5, 1e-5, 3e-5, "2e-5"},
        {0, 1e-5, 3e-5, "0"},
        {1.5e30, 5e29, 2e30, "1.5e30"},
        {1.0000005, 1e-7, 1.000001, "1.0000005"}, /* a tight range: digits enough to tell ticks apart */
    };
    char buf[64];
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        nn_plot_tick_label(c[i].v, c[i].step, c[i].maxabs, buf, sizeof buf);
        CHECK(!strcmp(buf, c[i].want), "tick %g (step %g): '%s', expected '%s'", c[i].v, c[i].step, buf, c[i].want);
    }
    return 0;
}

/* Pixels of exactly the train (blue) and validation (orange) colours. */
static void count_colours(const unsigned char *px, int w, int h, long *blue, long *orange)
{
    *blue = *orange = 0;
    for (long i = 0; i < (long)w * h; i++) {
        const unsigned char *p = px + i * 3;
        *blue += p[0] == 31 && p[1] == 119 && p[2] == 180;
        *orange += p[0] == 255 && p[1] == 127 && p[2] == 14;
    }
}

TEST(plot_png)
{
    char dir[] = "/tmp/nnrun_plot_XXXXXX", path[128];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/curves.png", dir);
    nn_err e = {0};
    for (int with_val = 0; with_val < 2; with_val++) {
        nn_plot p = {.metric = "accuracy"};
        for (int ep = 1; ep <= 12; ep++)
            CHECK(!nn_plot_add(&p, ep, 2.0 / ep, 1 - 0.5 / ep, with_val ? 2.2 / ep : NAN, with_val ? 0.9 : NAN, &e),
                  "add: %s", e.msg);
        int r = nn_plot_write(&p, path, &e);
        nn_plot_free(&p);
        CHECK(r == 0, "write: %s", e.msg);
        int w, h, nc;
        unsigned char *px = stbi_load(path, &w, &h, &nc, 3);
        CHECK(px, "%s does not decode: %s", path, stbi_failure_reason());
        long blue, orange;
        count_colours(px, w, h, &blue, &orange);
        stbi_image_free(px);
        CHECK(w == NN_PLOT_W && h == NN_PLOT_H && nc == 3, "decoded %dx%d with %d channels", w, h, nc);
        CHECK(blue > 500, "only %ld train-coloured pixels", blue);
        CHECK(with_val ? orange > 500 : orange == 0, "%ld validation-coloured pixels (validation: %d)", orange,
              with_val);
    }
    /* one epoch, nothing finite, huge values: drawn without trouble */
    unsigned char *px = malloc((size_t)NN_PLOT_W * NN_PLOT_H * 3);
    CHECK(px, "out of memory");
    double rows[][4] = {{1.5, 0.5, NAN, NAN}, {NAN, NAN, NAN, NAN}, {1e30, 3e38, -1e30, INFINITY}};
    for (int k = 0; k < 3; k++) {
        nn_plot p = {.metric = "mae"};
        for (int ep = 1; ep <= (k ? 3 : 1); ep++)
            CHECK(!nn_plot_add(&p, ep, rows[k][0] * ep, rows[k][1], rows[k][2], rows[k][3], &e), "add");
        nn_plot_render(&p, px);
        long blue, orange;
        count_colours(px, NN_PLOT_W, NN_PLOT_H, &blue, &orange);
        nn_plot_free(&p);
        CHECK(k == 1 ? blue < 200 /* the legend only */ : blue > 40, "case %d: %ld train-coloured pixels", k, blue);
    }
    free(px);
    /* an unwritable path: 74, nothing left behind */
    nn_plot p = {.metric = "accuracy"};
    CHECK(!nn_plot_add(&p, 1, 1, 0.5, NAN, NAN, &e), "add");
    snprintf(path, sizeof path, "%s/missing/curves.png", dir);
    int r = nn_plot_write(&p, path, &e);
    nn_plot_free(&p);
    CHECK(r == NN_EIO, "writing into a missing folder returned %d (%s)", r, e.msg);
    snprintf(path, sizeof path, "%s/curves.png", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0, "%s is not empty after the writes (a temporary file left?)", dir);
    return 0;
}

/* nn_plot_epoch: the first epoch writes; the next ones only once the last
 * write is 2 s old (and 50 times its own duration). */
TEST(plot_epoch_rewrites)
{
    char dir[] = "/tmp/nnrun_plot_XXXXXX", path[128];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/curves.png", dir);
    nn_err e = {0};
    nn_plot p = {.metric = "mae"};
    CHECK(!nn_plot_epoch(&p, path, 1, 1, 1, NAN, NAN, &e), "epoch 1: %s", e.msg);
    int first = access(path, F_OK) == 0;
    unlink(path);
    CHECK(!nn_plot_epoch(&p, path, 2, 0.5, 0.5, NAN, NAN, &e), "epoch 2: %s", e.msg);
    int second = access(path, F_OK) == 0;
    p.last_write = nn_now() - 2.0 - 50 * p.write_secs - 0.1; /* as if the last write were that old */
    CHECK(!nn_plot_epoch(&p, path, 3, 0.25, 0.25, NAN, NAN, &e), "epoch 3: %s", e.msg);
    int third = access(path, F_OK) == 0;
    int n = p.n;
    nn_plot_free(&p);
    unlink(path);
    rmdir(dir);
    CHECK(first && !second && third && n == 3, "written after epochs 1/2/3: %d/%d/%d (expected 1/0/1); %d epochs kept",
          first, second, third, n);
    return 0;
}
