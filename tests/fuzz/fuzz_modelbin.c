/* fuzz_modelbin.c - libFuzzer target: model.bin (nn_modelbin_parse).
 *
 * Each input is parsed twice: as is (exercises the fixed part, lengths and
 * the checksum), and with its last 4 bytes replaced by the correct CRC-32 so
 * that mutations reach the header JSON, the tensor table and the tensor data
 * (otherwise almost every mutation stops at "checksum mismatch").
 * When a parse succeeds, the loop position of a training checkpoint is read
 * as `nnrun train --resume` does (nn_modelbin_resume), and the rest of what
 * `nnrun eval/infer` does before opening a device is run too: the stored model JSON is parsed, the net is
 * built and every parameter's tensor is looked up and its shape compared.
 *
 * Checked beyond memory safety: failures return 65 (corrupt) or 71 (out of
 * memory) with a message; success gives consistent tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz_common.h"
#include "fuzz_model.h"
#include "model.h"
#include "net.h"
#include "spec.h"

static void check(int ok, const char *what, const nn_err *e) { fuzz_invariant("fuzz_modelbin", ok, what, e); }

static void after_parse(const nn_modelbin *c)
{
    nn_err e;
    memset(&e, 0, sizeof e);
    check(c->model_json != NULL, "a parsed model.bin has no model JSON", &e);
    check(c->ntensors == 0 || c->tensors != NULL, "ntensors without tensors", &e);
    for (int i = 0; i < c->ntensors; i++) {
        const nn_modelbin_tensor *t = &c->tensors[i];
        check(t->name && t->ndim >= 1 && t->ndim <= NN_MODELBIN_MAX_DIMS && t->data, "a malformed tensor", &e);
        size_t prod = 1;
        for (int k = 0; k < t->ndim; k++)
            prod *= (size_t)t->shape[k];
        check(prod == t->length, "tensor length differs from its shape", &e);
        check(nn_modelbin_find(c, t->name) == t, "nn_modelbin_find does not find a tensor (duplicate names?)", &e);
    }
    check(c->nclasses == 0 || c->classes != NULL, "nclasses without classes", &e);
    for (int i = 0; i < c->nclasses; i++)
        check(c->classes[i] != NULL, "a NULL class name", &e);
    check(c->nnorm == 0 || (c->mean && c->std), "nnorm without mean/std", &e);
    for (int i = 0; i < c->nnorm; i++)
        check(c->std[i] > 0, "a normalisation std that is not positive", &e);

    /* a training checkpoint's loop position (--resume), against a small and
     * a large run: either refused with 65 or every field within the run */
    static const struct { int epochs; size_t ntr; int B; } runs[] = {{2, 105, 16}, {1000000, (size_t)1 << 20, 1}};
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        nn_resume rs;
        nn_err re;
        memset(&re, 0, sizeof re);
        int rr = nn_modelbin_resume(c, "fuzz.ckpt", runs[k].epochs, runs[k].ntr, runs[k].B, &rs, &re);
        if (fuzz_verbose())
            fprintf(stderr, "resume: %d %s\n", rr, re.msg);
        check(rr == 0 || (rr == 65 && re.msg[0]), "nn_modelbin_resume failed with a code other than 65 or no message", &re);
        if (rr == 0) {
            size_t nb = (runs[k].ntr + (size_t)runs[k].B - 1) / (size_t)runs[k].B;
            check(rs.epoch >= 1 && rs.epoch <= runs[k].epochs + 1 && rs.batch <= nb &&
                      rs.train_samples == runs[k].ntr && rs.optimizer_steps >= 0,
                  "a resume position outside the run", &re);
            for (int i = 0; i < 3; i++)
                check(isfinite(rs.acc[i]), "a resume metric sum that is not finite", &re);
        }
    }

    nn_spec s;
    int r = nn_spec_parse(c->model_json, strlen(c->model_json), "fuzz.bin", &s, &e);
    int vocab = r == 0 ? nn_model_stored_vocab(&s, c->nclasses) : 0; /* as nn_model_load does */
    if (r == 0 && s.has_input_shape) {
        nn_net net;
        int rn = nn_net_build(&net, &s, &s.input, vocab, &e);
        if (rn == 0)
            rn = nn_net_each_param(&net, fuzz_check_param, (void *)c, &e);
        if (fuzz_verbose())
            fprintf(stderr, "net: %d %s\n", rn, rn ? e.msg : "");
        nn_net_free(&net);
    }
    nn_spec_free(&s);
}

static void parse_one(const unsigned char *buf, size_t len)
{
    nn_modelbin c;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_modelbin_parse(buf, len, "fuzz.bin", &c, &e);
    if (fuzz_verbose())
        fprintf(stderr, "modelbin: %d %s\n", r, e.msg);
    if (r) {
        check(r == 65 || r == 71, "nn_modelbin_parse failed with a code other than 65/71", &e);
        check(e.msg[0] != 0, "nn_modelbin_parse failed without a message", &e);
        nn_modelbin_free(&c); /* must be safe after a failed parse (nn_modelbin_read's callers do it) */
        return;
    }
    after_parse(&c);
    nn_modelbin_free(&c);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    parse_one(data, size);
    if (size >= 28) {
        unsigned char *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        uLong crc = crc32(0L, fixed, (uInt)(size - 4));
        fixed[size - 4] = (unsigned char)crc;
        fixed[size - 3] = (unsigned char)(crc >> 8);
        fixed[size - 2] = (unsigned char)(crc >> 16);
        fixed[size - 1] = (unsigned char)(crc >> 24);
        if (memcmp(fixed + size - 4, data + size - 4, 4) != 0)
            parse_one(fixed, size);
        free(fixed);
    }
    return 0;
}
