/* format.h - the data formats of a source ("format" in data.train/data.test,
 * docs/FORMATS.md) as one table: each format's JSON keys, how it is loaded
 * (into memory, or scanned and then decoded or streamed), and how a new file
 * is read the way training read its own. Adding a format = its loader file
 * and one line in the table (format.c). Nothing else compares format names. */
#ifndef NN_FORMAT_H
#define NN_FORMAT_H

#include <stddef.h>

#include "dataset.h"
#include "imgset.h"

/* What a loader is told. */
typedef struct nn_load_opts {
    nn_label_opts labels;  /* how labels map onto classes (csv, idx, images, list) */
    const int *vocab;      /* token formats: a trained model's vocabulary (NULL: derive it) */
    int nvocab;
    double val_fraction;   /* token formats: the corpus' tail kept for validation */
    size_t *nval;          /* token formats: out, the number of validation samples (may be NULL) */
} nn_load_opts;

enum {
    NN_FMT_TOKENS = 1,   /* samples are token ids: a vocabulary ("vocab" layers), never normalised,
                          * validated by position (the loader splits off val_fraction) */
    NN_FMT_FOLDER = 2,   /* the path is a folder */
    NN_FMT_PAIRED = 4,   /* two files: images and labels */
    NN_FMT_CSV_FILE = 8, /* the path is a .csv file */
};

typedef struct nn_format {
    const char *name;
    const char *const *keys;  /* the source object's allowed keys, NULL-terminated */
    const char *path_key;     /* the required key naming the file or folder */
    size_t path_field;        /* where it goes: offsetof(nn_source, path) or offsetof(nn_source, images) */
    unsigned flags;           /* NN_FMT_* */
    /* Loads the whole source into memory (NULL: formats that scan). */
    int (*load)(const nn_source *src, const nn_load_opts *o, nn_dataset *out, nn_err *e);
    /* opt: lists the images (decoded later, or streamed when large). */
    int (*scan)(const nn_source *src, const nn_label_opts *lo, nn_imgset *out, nn_err *e);
    /* opt: copies the settings that say how to read a file (columns, windows)
     * from a training source into a new source of this format. */
    int (*copy_for_eval)(nn_source *to, const nn_source *from, nn_err *e);
} nn_format;

extern const nn_format nn_formats[];
extern const int nn_nformats;

/* By name; NULL when unknown. */
const nn_format *nn_format_find(const char *name);
/* The source's format (never NULL for a parsed source). */
const nn_format *nn_format_of(const nn_source *src);
/* The first format with every flag in `flags`; NULL when none. */
const nn_format *nn_format_with(unsigned flags);
/* 1 when src's format has every flag in `flags`. */
int nn_source_is(const nn_source *src, unsigned flags);
/* The names into buf, each between `quote`s, separated by `sep`, the last
 * two by `last`: ("", ", ", ", ") gives "csv, idx, images, list, text". */
const char *nn_format_names(char *buf, size_t n, const char *quote, const char *sep, const char *last);

/* A new source of format `fmt` reading `path` (copied) the way `train` (may be
 * NULL) read its data: when train has the same format, its copy_for_eval
 * settings. json_path names the source in messages. */
int nn_source_like(nn_source *to, const nn_format *fmt, const char *path, const nn_source *train,
                   const char *json_path, nn_err *e);

#endif
