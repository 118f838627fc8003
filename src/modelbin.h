/* modelbin.h - the model.bin format (docs/FORMATS.md); training checkpoints
 * (.ckpt, src/train.c) are model.bin files with extra tensors and state.
 *
 *   offset 0   8 bytes  magic "NNRUNBIN"
 *          8   u32 LE   format version (1)
 *         12   u32 LE   reserved (0)
 *         16   u64 LE   header length H
 *         24   H bytes  header: UTF-8 JSON object (see nn_modelbin)
 *     24 + H   pad with zeros to a multiple of 64
 *         D    tensor data: float32 LE, each tensor at header offset (relative to D)
 *   end - 4    u32 LE   CRC-32 (zlib) of every byte before it
 *
 * Header JSON: {"model": {...canonical model JSON...}, "classes": [...],
 *   "normalize": {"mean": [...], "std": [...]} | null,
 *   "tensors": [{"name": "...", "shape": [...], "offset": O, "length": L}],
 *   "data_bytes": B, "nnrun_version": "..."}
 * Every length and offset is checked against the file size before allocation.
 * Writing goes to a temporary file in the same folder, fsync'd, then renamed. */
#ifndef NN_MODELBIN_H
#define NN_MODELBIN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NN_MODELBIN_MAGIC "NNRUNBIN"
#define NN_MODELBIN_VERSION 1
#define NN_MODELBIN_MAX_HEADER (64L << 20)
#define NN_MODELBIN_MAX_BYTES (1LL << 36)   /* a whole model.bin or checkpoint (64 GiB) */
#define NN_MODELBIN_MAX_TENSORS 100000
#define NN_MODELBIN_MAX_DIMS 8

typedef struct nn_modelbin_tensor {
    char *name;
    int ndim;
    long shape[NN_MODELBIN_MAX_DIMS];
    size_t length;   /* elements = product of shape */
    float *data;     /* length floats (owned) */
} nn_modelbin_tensor;

typedef struct nn_modelbin {
    char *model_json;   /* the canonical model JSON text (owned) */
    int nclasses;       /* 0 when the model has no class names */
    char **classes;
    int nnorm;          /* 0 = no normalisation, else number of mean/std values */
    float *mean, *std;
    int ntensors;
    nn_modelbin_tensor *tensors;
    char *extra_json;   /* optional extra header object (e.g. vocabulary), NULL if none */
} nn_modelbin;

/* Writes atomically: temp file in the same folder, fsync, rename, fsync dir.
 * On any failure the previous file at `path` is untouched. Code 74 on I/O. */
int nn_modelbin_write(const char *path, const nn_modelbin *c, nn_err *e);

/* Reads and fully validates (magic, version, sizes vs file size, CRC, header
 * JSON types, tensor table). 66 when missing, 65 when corrupt. */
int nn_modelbin_read(const char *path, nn_modelbin *c, nn_err *e);

/* Same from memory (fuzzing, tests). `name` is used in messages. */
int nn_modelbin_parse(const unsigned char *buf, size_t len, const char *name, nn_modelbin *c, nn_err *e);

void nn_modelbin_free(nn_modelbin *c);

/* The loop position a training checkpoint stores ("extra": {"resume": {...}},
 * written by train.c), every field checked against the run it continues
 * (epochs, ntr training samples, batch_size) before any conversion, and every
 * tensor finite (optimizer.m2 >= 0). 65 naming the header field. */
#define NN_RESUME_FORMAT 2   /* 2: + lr-schedule and early-stopping state; 1 (no "format"): before them */
typedef struct nn_resume {
    int format;              /* 1 .. NN_RESUME_FORMAT */
    int epoch;               /* 1 .. epochs + 1 */
    size_t batch;            /* 0 .. batches per epoch */
    uint64_t step;
    long optimizer_steps;
    size_t train_samples;
    float acc[3];            /* the epoch's metric sums so far */
} nn_resume;
int nn_modelbin_resume(const nn_modelbin *c, const char *path, int epochs, size_t ntr, int batch_size, nn_resume *out,
                       nn_err *e);

/* Finds a tensor by name, NULL if absent. */
const nn_modelbin_tensor *nn_modelbin_find(const nn_modelbin *c, const char *name);

#endif
