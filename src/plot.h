/* plot.h - `nnrun train --plot curves.png`: the training curves as a PNG.
 * Two panels side by side, each NN_PLOT_W/2 wide: the loss, and the accuracy
 * (or, for regression, the mean absolute error), train and validation per
 * epoch, with axes, numeric ticks and a legend in a built-in 5x7 bitmap font.
 * Drawn on the host (reporting, not training math) into an RGB raster and
 * written with stb_image_write's PNG encoder, atomically (temporary file,
 * fsync, rename). */
#ifndef NN_PLOT_MODULE_H
#define NN_PLOT_MODULE_H

#include <stddef.h>

#include "err.h"

#define NN_PLOT_W 1000
#define NN_PLOT_H 400

/* The epochs recorded so far: rows of {epoch, loss, metric, val_loss,
 * val_metric}; NaN marks a value that does not exist (no validation). */
typedef struct nn_plot {
    const char *metric; /* the right panel's name: "accuracy" or "mae" */
    int n, cap;
    double *v;          /* n * NN_PLOT_COLS values */
    double last_write;  /* nn_now() of the last nn_plot_epoch write; 0: none yet */
    double write_secs;  /* how long that write took */
} nn_plot;
#define NN_PLOT_COLS 5

/* Appends one epoch's values. 71 when out of memory. */
int nn_plot_add(nn_plot *p, int epoch, double loss, double metric, double val_loss, double val_metric, nn_err *e);
/* nn_plot_add, then rewrites `path` after the first epoch, and later when
 * the last write is older than 2 s and than 50 times what it took (so the
 * rewrites cost at most 2% of the training time): an interrupted run leaves
 * a plot. */
int nn_plot_epoch(nn_plot *p, const char *path, int epoch, double loss, double metric, double val_loss,
                  double val_metric, nn_err *e);
/* Draws the plot into rgb (NN_PLOT_W * NN_PLOT_H * 3 bytes, rows top down). */
void nn_plot_render(const nn_plot *p, unsigned char *rgb);
/* Renders and writes the PNG atomically. 74 when it cannot be written. */
int nn_plot_write(const nn_plot *p, const char *path, nn_err *e);
void nn_plot_free(nn_plot *p);

/* The first bytes of every PNG: --plot overwrites only such a file. */
#define NN_PNG_MAGIC "\x89PNG\r\n\x1a\n"

/* An axis for the values in [lo, hi] (finite): a "nice" tick step (1, 2 or 5
 * times a power of ten; at least 1 when `integer`) giving at most about
 * max_ticks ticks, and the range rounded outwards to whole steps, in *a, *b.
 * lo == hi (or a range too small for the values' precision) is widened
 * around the value first. */
void nn_plot_axis(double lo, double hi, int max_ticks, int integer, double *a, double *b, double *step);
/* A tick's label: as few decimals as the step needs ("0.25", "10", "-0.5"),
 * exponent form ("1.5e6", "2e-5") for values of 1e6 and more or steps under
 * 1e-4. step: 1, 2 or 5 times a power of ten (nn_plot_axis's); maxabs: the
 * largest |value| on the axis. */
void nn_plot_tick_label(double v, double step, double maxabs, char *buf, size_t n);

#endif
