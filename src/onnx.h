/* onnx.h - ONNX export and import (docs/FORMATS.md, "ONNX").
 *
 * The protobuf code is generated at build time by protoc-c from Debian's
 * /usr/include/onnx/onnx.proto (build/onnx/onnx.pb-c.[ch]) and linked with
 * libprotobuf-c; nothing here encodes protobuf by hand.
 *
 * Export: model.bin -> model.onnx at opset NN_ONNX_OPSET, every layer as
 * standard operators (the input normalisation and the softmax/sigmoid that
 * `nnrun infer` applies to logits included), so onnxruntime's outputs equal
 * `nnrun infer`'s. Import: the same operator set back into model.bin; any
 * other operator is refused with the node's name and op type (65).
 * Both convert files only: no math runs here. */
#ifndef NN_ONNX_H
#define NN_ONNX_H

#include <stddef.h>

#include "err.h"
#include "util.h" /* nn_write_atomic (onnx_write.c) */

#define NN_ONNX_OPSET 17
#define NN_ONNX_IR_VERSION 8
#define NN_ONNX_MAX_BYTES (1L << 31) /* protobuf's own limit is 2 GiB */

/* Reads model.bin at `in` and writes `out` atomically (temp file, fsync,
 * rename). 66: missing input; 65: a model that cannot be expressed; 74: I/O. */
int nn_onnx_export(const char *in, const char *out, nn_err *e);

/* Writes len bytes to path atomically (temp file in the same folder, fsync,
 * rename over path, fsync the folder); 74 with the system error. */
/* Reads an ONNX model and writes model.bin atomically. 65 names the node
 * (name, op type) or the initializer at fault. `loss` (NULL: from nnrun's
 * metadata, else cross_entropy, or binary_cross_entropy for a one-unit
 * sigmoid) decides how `nnrun infer` reads the output. */
int nn_onnx_import(const char *in, const char *out, const char *loss, nn_err *e);

/* The same from memory into a model.bin image (fuzzing, `infer MODEL.onnx`);
 * `name` is used in messages. c is always safe to nn_modelbin_free. */
struct nn_modelbin;
int nn_onnx_parse(const unsigned char *buf, size_t len, const char *name, const char *loss, struct nn_modelbin *c,
                  nn_err *e);

/* `nnrun infer/eval/generate MODEL.onnx`: a path ending in .onnx (any case)
 * is read as nnrun import would read it (loss from the metadata or guessed). */
int nn_onnx_path(const char *path);
int nn_onnx_read(const char *path, struct nn_modelbin *c, nn_err *e);

#endif
