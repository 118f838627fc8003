/* fuzz_model.h - checks shared by the targets that produce a model.bin image
 * (fuzz_ckpt: read from model.bin; fuzz_onnx: imported from ONNX). */
#ifndef NN_FUZZ_MODEL_H
#define NN_FUZZ_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "modelbin.h"
#include "net.h"

/* Aborts (a finding) when an invariant does not hold. */
static inline void fuzz_invariant(const char *target, int ok, const char *what, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "%s: invariant violated: %s (code %d, message '%s')\n", target, what, e->code, e->msg);
        abort();
    }
}

/* nn_net_each_param visitor (ctx: the nn_modelbin): the parameter's tensor is
 * there with its shape, and every value is read (ASan checks the buffer). */
static inline int fuzz_check_param(void *ctx, const nn_layer *L, nn_param *p, nn_err *e)
{
    const nn_modelbin *c = ctx;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", L->name, p->name);
    const nn_modelbin_tensor *t = nn_modelbin_find(c, name);
    if (!t)
        return nn_fail(e, 65, "tensor '%s' is missing", name);
    int same = t->ndim == p->shape.nd && t->length == p->n;
    for (int i = 0; same && i < t->ndim; i++)
        same = t->shape[i] == p->shape.d[i];
    if (!same)
        return nn_fail(e, 65, "tensor '%s' has the wrong shape", name);
    volatile float sum = 0;
    for (size_t i = 0; i < t->length; i++)
        sum += t->data[i];
    (void)sum;
    return 0;
}

#endif
