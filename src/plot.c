/* plot.c - the training curves as a PNG (see plot.h). Layout per panel:
 * title top left, legend top right, the plot area with a light grid at the
 * ticks, tick labels left and below, "epoch" under the x axis. Lines are
 * drawn with a round 3-px brush, so they are 2-3 px wide at any slope. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h> /* the implementation is in libstb */

#include "util.h"

/* ------------------------------------------------------------ the font */

/* 5x7 glyphs, rows top down, '#' = ink. Lowercase, digits and the
 * punctuation tick labels need; anything else is drawn as a box. */
static const struct glyph {
    char c;
    const char *row[7];
} font[] = {
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
    {'d', {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".####", "#...#", "#...#", ".####", "....#", ".###."}},
    {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
    {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."}},
    {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
    {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
    {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
    {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
    {'q', {".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"}},
    {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
    {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
    {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
    {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
    {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
    {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
    {'y', {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."}},
    {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {'-', {".....", ".....", ".....", ".###.", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
};
static const struct glyph unknown = {'?', {"#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"}};

#define FS 2              /* font scale: 10x14 px glyphs */
#define ADV (6 * FS)      /* advance per character */
#define TEXT_H (7 * FS)

typedef struct rgb {
    unsigned char r, g, b;
} rgb;
static const rgb C_BG = {255, 255, 255}, C_INK = {0, 0, 0}, C_GRID = {225, 225, 225}, C_LABEL = {60, 60, 60},
                 C_TRAIN = {31, 119, 180}, C_VAL = {255, 127, 14};

typedef struct canvas {
    unsigned char *px;
    int w, h;
} canvas;

static void put(canvas *c, int x, int y, rgb col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = col.r;
    p[1] = col.g;
    p[2] = col.b;
}

static void fill(canvas *c, int x0, int y0, int x1, int y1, rgb col) /* inclusive */
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            put(c, x, y, col);
}

static int text_width(const char *s)
{
    int n = (int)strlen(s);
    return n ? n * ADV - FS : 0;
}

static void text(canvas *c, int x, int y, const char *s, rgb col)
{
    for (; *s; s++, x += ADV) {
        const struct glyph *g = &unknown;
        for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
            if (font[i].c == *s) {
                g = &font[i];
                break;
            }
        for (int r = 0; r < 7; r++)
            for (int k = 0; k < 5; k++)
                if (g->row[r][k] == '#')
                    fill(c, x + k * FS, y + r * FS, x + k * FS + FS - 1, y + r * FS + FS - 1, col);
    }
}

/* A round brush of radius 1.5 px stamped every half pixel along the segment. */
static void brush(canvas *c, double x, double y, double rad, rgb col)
{
    for (int dy = (int)floor(-rad); dy <= (int)ceil(rad); dy++)
        for (int dx = (int)floor(-rad); dx <= (int)ceil(rad); dx++)
            if (dx * dx + dy * dy <= rad * rad + 0.25)
                put(c, (int)lround(x) + dx, (int)lround(y) + dy, col);
}

static void line(canvas *c, double x0, double y0, double x1, double y1, rgb col)
{
    double len = hypot(x1 - x0, y1 - y0);
    int steps = (int)ceil(len * 2) + 1;
    for (int i = 0; i <= steps; i++) {
        double t = (double)i / steps;
        brush(c, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, 1.5, col);
    }
}

/* ------------------------------------------------------------ the axes */

void nn_plot_axis(double lo, double hi, int max_ticks, int integer, double *a, double *b, double *step)
{
    if (max_ticks < 2)
        max_ticks = 2;
    double m = fmax(fabs(lo), fabs(hi));
    if (!(hi - lo > 1e-9 * m)) { /* one value (or float noise around one): widen around it */
        double mid = (lo + hi) / 2, d = integer ? 1 : (mid != 0 ? fabs(mid) * 0.1 : 1);
        lo = mid - d;
        hi = mid + d;
    }
    double raw = (hi - lo) / (max_ticks - 1), mag = pow(10, floor(log10(raw))), f = raw / mag;
    double s = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    if (integer && s < 1)
        s = 1;
    *step = s;
    *a = floor(lo / s + 1e-9) * s; /* 1.1 / 0.05 is 22.000000000000004 */
    *b = ceil(hi / s - 1e-9) * s;
}

void nn_plot_tick_label(double v, double step, double maxabs, char *buf, size_t n)
{
    if (fabs(v) < step * 1e-6)
        v = 0; /* no "-0" or "1e-17" from k * step */
    if (maxabs >= 1e6 || step < 1e-4) {
        /* mantissa digits: enough to tell ticks `step` apart */
        int digits = (int)floor(log10(fmax(maxabs, step))) - (int)floor(log10(step));
        if (digits < 0)
            digits = 0;
        if (digits > 8)
            digits = 8;
        char t[64];
        snprintf(t, sizeof t, "%.*e", digits, v);
        /* 1.50e+06 -> 1.5e6, 2.0e-05 -> 2e-5 */
        char *ep = strchr(t, 'e'), mant[40], *z;
        if (!ep) { /* not finite: never a tick of nn_plot_axis's */
            snprintf(buf, n, "%s", t);
            return;
        }
        snprintf(mant, sizeof mant, "%.*s", (int)(ep - t), t);
        if (strchr(mant, '.')) {
            for (z = mant + strlen(mant) - 1; *z == '0'; z--)
                *z = 0;
            if (*z == '.')
                *z = 0;
        }
        int ex = atoi(ep + 1);
        snprintf(buf, n, ex ? "%se%d" : "%s", mant, ex);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

/* ------------------------------------------------------------ the plot */

int nn_plot_add(nn_plot *p, int epoch, double loss, double metric, double val_loss, double val_metric, nn_err *e)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        double *v = realloc(p->v, (size_t)cap * NN_PLOT_COLS * sizeof *v);
        if (!v)
            return nn_fail(e, NN_ENOMEM, "out of memory (the plot's history)");
        p->v = v;
        p->cap = cap;
    }
    double *row = p->v + (size_t)p->n++ * NN_PLOT_COLS;
    row[0] = epoch;
    row[1] = loss;
    row[2] = metric;
    row[3] = val_loss;
    row[4] = val_metric;
    return 0;
}

int nn_plot_epoch(nn_plot *p, const char *path, int epoch, double loss, double metric, double val_loss,
                  double val_metric, nn_err *e)
{
    int r = nn_plot_add(p, epoch, loss, metric, val_loss, val_metric, e);
    if (r)
        return r;
    double now = nn_now();
    if (p->last_write > 0 && now - p->last_write < fmax(2.0, 50 * p->write_secs))
        return 0;
    if ((r = nn_plot_write(p, path, e)))
        return r;
    p->last_write = nn_now();
    p->write_secs = p->last_write - now;
    return 0;
}

/* One panel: columns ct (train) and cv (validation) of the history. */
static void panel(canvas *c, const nn_plot *p, int px, int pw, const char *title, int ct, int cv)
{
    const int L = 100, R = 26, T = 44, B = 56;
    const int x0 = px + L, x1 = px + pw - R, y0 = T, y1 = c->h - B;
    double lo = INFINITY, hi = -INFINITY;
    int has_val = 0;
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < 2; k++) {
            double v = p->v[(size_t)i * NN_PLOT_COLS + (k ? cv : ct)];
            if (!isfinite(v))
                continue;
            has_val |= k;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    if (!(lo <= hi))
        lo = 0, hi = 1; /* nothing finite: an empty panel */
    double e0 = p->n ? p->v[0] : 1, e1 = p->n ? p->v[(size_t)(p->n - 1) * NN_PLOT_COLS] : 1;
    double xa, xb, xs, ya, yb, ys;
    nn_plot_axis(e0, e1, 8, 1, &xa, &xb, &xs);
    nn_plot_axis(lo, hi, 6, 0, &ya, &yb, &ys);
#define XPOS(ep) (x0 + ((ep) - xa) / (xb - xa) * (x1 - x0))
#define YPOS(v) (y1 - ((v) - ya) / (yb - ya) * (y1 - y0))
    char lab[64];
    double maxabs = fmax(fabs(ya), fabs(yb));
    for (int k = 0; k <= (int)lround((yb - ya) / ys) && k <= 100; k++) {
        double v = ya + k * ys;
        int y = (int)lround(YPOS(v));
        fill(c, x0, y, x1, y, C_GRID);
        fill(c, x0 - 5, y, x0 - 1, y, C_INK);
        nn_plot_tick_label(v, ys, maxabs, lab, sizeof lab);
        text(c, x0 - 9 - text_width(lab), y - TEXT_H / 2, lab, C_LABEL);
    }
    for (int k = 0; k <= (int)lround((xb - xa) / xs) && k <= 100; k++) {
        double v = xa + k * xs;
        int x = (int)lround(XPOS(v));
        fill(c, x, y0, x, y1, C_GRID);
        fill(c, x, y1 + 1, x, y1 + 5, C_INK);
        nn_plot_tick_label(v, xs, fmax(fabs(xa), fabs(xb)), lab, sizeof lab);
        text(c, x - text_width(lab) / 2, y1 + 10, lab, C_LABEL);
    }
    /* the frame */
    fill(c, x0, y0, x1, y0, C_INK);
    fill(c, x0, y1, x1, y1, C_INK);
    fill(c, x0, y0, x0, y1, C_INK);
    fill(c, x1, y0, x1, y1, C_INK);
    text(c, (x0 + x1) / 2 - text_width("epoch") / 2, c->h - 22, "epoch", C_INK);
    text(c, x0, 14, title, C_INK);
    /* the legend, right-aligned above the frame */
    const char *names[2] = {"train", "validation"};
    int lx = x1 - (28 + text_width(names[0])) - (has_val ? 24 + 28 + text_width(names[1]) : 0);
    for (int k = 0; k < 1 + has_val; k++) {
        rgb col = k ? C_VAL : C_TRAIN;
        line(c, lx, 21, lx + 20, 21, col);
        text(c, lx + 28, 14, names[k], C_INK);
        lx += 28 + text_width(names[k]) + 24;
    }
    /* the curves: segments between consecutive finite points; markers when
     * the epochs are few (so one epoch still shows) */
    for (int k = 0; k < 2; k++) {
        int col_i = k ? cv : ct;
        rgb col = k ? C_VAL : C_TRAIN;
        for (int i = 0; i < p->n; i++) {
            const double *a = p->v + (size_t)i * NN_PLOT_COLS;
            if (!isfinite(a[col_i]))
                continue;
            double ax = XPOS(a[0]), ay = YPOS(a[col_i]);
            if (i + 1 < p->n && isfinite(a[NN_PLOT_COLS + col_i]))
                line(c, ax, ay, XPOS(a[NN_PLOT_COLS]), YPOS(a[NN_PLOT_COLS + col_i]), col);
            if (p->n <= 25)
                brush(c, ax, ay, 3.5, col);
        }
    }
#undef XPOS
#undef YPOS
}

void nn_plot_render(const nn_plot *p, unsigned char *px)
{
    canvas c = {px, NN_PLOT_W, NN_PLOT_H};
    fill(&c, 0, 0, c.w - 1, c.h - 1, C_BG);
    panel(&c, p, 0, NN_PLOT_W / 2, "loss", 1, 3);
    panel(&c, p, NN_PLOT_W / 2, NN_PLOT_W / 2, p->metric ? p->metric : "accuracy", 2, 4);
}

typedef struct membuf {
    unsigned char *b;
    size_t n, cap;
    int failed;
} membuf;

static void mem_write(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->failed || size <= 0)
        return;
    if (m->n + (size_t)size > m->cap) {
        size_t cap = (m->cap ? m->cap * 2 : 65536) + (size_t)size;
        unsigned char *b = realloc(m->b, cap);
        if (!b) {
            m->failed = 1;
            return;
        }
        m->b = b;
        m->cap = cap;
    }
    memcpy(m->b + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

int nn_plot_write(const nn_plot *p, const char *path, nn_err *e)
{
    unsigned char *px = malloc((size_t)NN_PLOT_W * NN_PLOT_H * 3);
    if (!px)
        return nn_fail(e, NN_ENOMEM, "out of memory (the plot's %dx%d pixels)", NN_PLOT_W, NN_PLOT_H);
    nn_plot_render(p, px);
    membuf m = {0};
    int ok = stbi_write_png_to_func(mem_write, &m, NN_PLOT_W, NN_PLOT_H, 3, px, NN_PLOT_W * 3);
    free(px);
    int r;
    if (!ok || m.failed)
        r = nn_fail(e, NN_ENOMEM, "%s: encoding the plot as PNG failed (out of memory)", path);
    else
        r = nn_write_atomic(path, m.b, m.n, e);
    free(m.b);
    return r;
}

void nn_plot_free(nn_plot *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}
