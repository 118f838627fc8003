/* dataset.h - in-memory datasets and the loaders that fill them.
 *
 * A dataset is n samples of `dim` float features (layout C,H,W for images,
 * values in [0,1] for image sources, raw numbers for CSV) plus targets:
 * class indices for classification, `tdim` floats per sample for regression.
 * Loaders never normalise; normalisation is applied on the device. */
#ifndef NN_DATASET_H
#define NN_DATASET_H

#include <stddef.h>

#include "../err.h"

/* Hard limits that keep hostile files from making nnrun allocate without
 * bound. Documented in docs/FORMATS.md. */
#define NN_MAX_SAMPLES   100000000L      /* samples per source */
#define NN_MAX_FEATURES  (1L << 24)      /* features per sample */
#define NN_MAX_BYTES     (1L << 34)      /* bytes of decoded data per source (16 GiB) */
#define NN_MAX_CLASSES   65536
#define NN_MAX_IMAGE_PIXELS (1L << 26)   /* width*height of one decoded image (8192 x 8192) */
#define NN_MAX_IMAGE_FILE ((1L << 29) + (1L << 20)) /* bytes of one image file: 2^26 RGBA pixels, 16-bit, + 1 MiB */

typedef enum {
    NN_TASK_CLASSIFY = 0, /* integer class labels (also binary: 2 classes) */
    NN_TASK_REGRESS = 1,  /* float targets, tdim per sample */
} nn_task;

typedef struct nn_dataset {
    size_t n;          /* number of samples */
    int c, h, w;       /* per-sample feature shape; CSV: c = features, h = w = 1 */
    size_t dim;        /* c*h*w */
    float *x;          /* n*dim features, sample-major */
    nn_task task;
    int *y;            /* classification: n*ylen class indices in [0, nclasses) */
    int ylen;          /* labels per sample (text: one per position); 0 or 1 = one */
    float *t;          /* regression: n*tdim targets */
    int tdim;
    int nclasses;      /* classification: number of classes (== nclass_names if named) */
    char **class_names;/* NULL or nclasses malloc'd strings */
    int seq_f;         /* csv windows: features per time step (x is [n, dim/seq_f, seq_f]); else 0 */
} nn_dataset;

void nn_dataset_free(nn_dataset *d);

/* A data source as written in the model JSON ("data.train", "data.test"). */
typedef struct nn_source {
    char format[16];   /* "csv", "idx", "images" (class folders) or "list" (path,label CSV) */
    char *path;        /* csv/list: file; images: folder (resolved, absolute or relative to cwd) */
    char *images;      /* idx: images file (.gz or raw) */
    char *labels;      /* idx: labels file (.gz or raw) */
    /* csv: label column(s): by name, or by index when label_index[i] >= 0 */
    int nlabels;       /* 0 = no label column (inference on unlabeled rows) */
    char *label_name[16];
    int label_index[16];
    int header;        /* -1 = detect, 0 = no header row, 1 = header row */
    long limit;        /* use only the first `limit` samples; 0 = all */
    int aug_flip;      /* augmentation while training (image data): random horizontal flips */
    int aug_crop;      /* pad by this many pixels and crop at random */
    int aug_translate; /* random shifts of up to this many pixels */
    int seq_len;       /* text: characters per training sequence */
    /* csv: the feature columns, by name (feat_name[i]) or 0-based index
     * (feat_index[i] when feat_name[i] is NULL), in this order; nfeat_cols == 0
     * means every column that is not a label (with a window: every column) */
    int nfeat_cols;
    char **feat_name;
    int *feat_index;
    /* csv time series: window > 0 turns the rows (time steps) into samples of
     * `window` consecutive rows ([window, features]); the label ("target")
     * columns' value `horizon` rows after a window's last row is its target;
     * windows start every `stride` rows. */
    int window, horizon, stride;
    const char *json_path; /* "data.train" etc., for messages */
} nn_source;

void nn_source_free(nn_source *s);

/* Copies a CSV source's settings (header, label/target and feature columns,
 * window) from `from` into `to` (paths and format untouched), so that eval and
 * infer read a new CSV file the way training read its own. */
int nn_source_copy_csv(nn_source *to, const nn_source *from, nn_err *e);

/* What the model expects of the labels, so that train and test sources agree. */
typedef struct nn_label_opts {
    nn_task task;
    /* Classification: when class_names is non-NULL the labels must map onto
     * these names (string labels by name; integer labels by index when
     * `by_index`, else by their decimal text). When NULL the loader derives
     * the classes: string labels -> sorted distinct strings; integer labels ->
     * sorted distinct integers (named by their decimal text). */
    char **class_names;
    int nclasses;
    int by_index;
    /* 1 when the source may omit labels (inference on feature-only rows). */
    int labels_optional;
} nn_label_opts;

/* CSV: see docs/FORMATS.md. Errors name the file and line:column.
 * With src->window > 0 (time series, regression only): samples are windows
 * of consecutive rows; when lo->labels_optional the targets are ignored and
 * every window is returned, the last one included (forecasting). */
int nn_csv_load(const nn_source *src, const nn_label_opts *lo, nn_dataset *out, nn_err *e);

/* IDX (MNIST style), gzip or raw, type ubyte (scaled to [0,1]) or float32.
 * Images: ndim 2..4 ([n,h,w] -> c=1; [n,h,w,c] -> channels moved first).
 * Labels: ndim 1, ubyte. */
int nn_idx_load(const nn_source *src, nn_dataset *out, nn_err *e);

/* Text (byte-level language modelling): the corpus cut into sequences of
 * src->seq_len bytes; x holds byte ids (as floats) of positions 0..T-1 and y
 * the ids of positions 1..T (ylen = T). The vocabulary is the sorted set of
 * bytes in the corpus, or `vocab` (nvocab byte values) when given, in which
 * case a byte outside it is an error; class_names are the byte values in
 * decimal. Sequences do not overlap. The last `val_fraction` of the corpus
 * (by position) is cut into the LAST *nval_windows sequences. */
int nn_text_load(const nn_source *src, const int *vocab, int nvocab, double val_fraction, nn_dataset *out,
                 size_t *nval_windows, nn_err *e);

/* Decodes one image file (PNG, JPEG, BMP, GIF, TGA, PNM ... via stb_image),
 * converts to `c` channels (1: luminance, 3: RGB, 4: RGBA), resizes to h x w,
 * and writes c*h*w floats in [0,1], channel-major, to out. */
int nn_image_load(const char *path, int c, int h, int w, float *out, nn_err *e);

/* Same from memory (fuzzing, tests). `name` is used in messages. */
int nn_image_decode(const unsigned char *buf, size_t len, const char *name,
                    int c, int h, int w, float *out, nn_err *e);

/* True when the path's extension is one stb_image decodes. */
int nn_is_image_path(const char *path);

#endif
