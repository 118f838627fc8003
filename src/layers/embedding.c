/* embedding.c - token embedding (+ optional learned position embedding).
 *
 * Input per sample [T]: token ids stored as floats (the text loader writes
 * exact integers). Output per sample [T, output_dim]:
 *     y[t, :] = weight[id_t, :] (+ position[t, :] with "positional": true).
 * An id is rounded to the nearest integer; one outside [0, input_dim) (or
 * NaN) reads as a zero vector and receives no gradient (the data loader
 * guarantees the range, so this is only a guard against garbage).
 *
 * Keys: input_dim (int or "vocab", required), output_dim (required),
 * positional (bool, false), init ("he", "glorot" or "torch").
 * Parameters: "weight" [input_dim, output_dim] and, when positional,
 * "position" [T, output_dim]; both N(0, 1) by default and with "torch"
 * (PyTorch's nn.Embedding; the position table as an nn.Embedding of the
 * positions), He-normal with fan_in = output_dim with "he" (std
 * sqrt(2 / output_dim): the default before issue #12, with which the
 * char-LSTM ended at 18% more bits/char on 35 kB of text, 5% on 197 kB:
 * README), Glorot uniform with fan_in = fan_out = output_dim with "glorot".
 *
 * Backward: no gradient flows to the ids (dx, when there is one, is left
 * alone). dW is computed without float atomics, hence deterministically:
 * work item (chunk c, vocab row v) zeroes dW[v, c*chunk ...) and scans the
 * batch's n*T ids in order, adding dy rows where the id is v. On CPUs chunk =
 * output_dim (one work item per vocab row: n*T id compares per row plus one
 * pass over dy in total); on GPUs chunk = 1 (one work item per (v, j): the id
 * loads are uniform across a work-group and the dy loads coalesced). The
 * position gradient is the sum of dy over the batch, one work item per (t, j).
 * No scratch. */
#include <limits.h>
#include <stdlib.h>

#include "layer.h"

typedef struct embedding {
    int input_dim, output_dim, positional;
    int init; /* NN_INIT_* of both tables */
    int T;
} embedding;

static const char *const keys[] = {"input_dim", "output_dim", "positional", "init", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    embedding *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    L->p = p;
    int r = nn_layer_get_int_or_vocab(j, "input_dim", path, 1, 1 << 24, INT32_MIN, &p->input_dim, e);
    if (!r)
        r = nn_layer_get_int(j, "output_dim", path, 1, 1 << 16, INT32_MIN, &p->output_dim, e);
    if (!r)
        r = nn_layer_get_bool(j, "positional", path, 0, &p->positional, e);
    if (!r)
        r = nn_layer_get_init(j, path, &p->init, e);
    if (!r)
        p->init = p->init < 0 || p->init == NN_INIT_FAN_IN_UNIFORM ? NN_INIT_NORMAL : p->init;
    return r;
}

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    embedding *p = L->p;
    const nn_shape *s = &L->in_shape[0];
    char b[64];
    int r = nn_layer_vocab(L, "input_dim", &p->input_dim, e);
    if (r)
        return r;
    if (L->vocab > 0 && p->input_dim < L->vocab)
        return nn_fail(e, NN_EDATA,
                       "%s.input_dim: %d is smaller than the text's vocabulary of %d symbols: ids from %d on would "
                       "read zeros and never learn (use \"vocab\")",
                       path, p->input_dim, L->vocab, p->input_dim);
    if (s->nd != 1)
        return nn_fail(e, NN_EDATA,
                       "%s: embedding needs a [sequence_length] input of token ids; got %s", path,
                       nn_shape_str(s, b, sizeof b));
    p->T = s->d[0];
    int D = p->output_dim;
    if ((size_t)p->T * (size_t)D > (size_t)INT_MAX / 1024)
        return nn_fail(e, NN_EDATA, "%s: a [%d, %d] output per sample is too large", path, p->T, D);
    L->out_shape.nd = 2;
    L->out_shape.d[0] = p->T;
    L->out_shape.d[1] = D;
    int wd[2] = {p->input_dim, D};
    nn_layer_add_param(L, "weight", 2, wd, (nn_init)p->init, D, D);
    if (p->positional) {
        int pd[2] = {p->T, D};
        nn_layer_add_param(L, "position", 2, pd, (nn_init)p->init, D, D);
    }
    L->flops = (double)p->T * D * (p->positional ? 1 : 0);
    return 0;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    embedding *p = L->p;
    if (r->n <= 0)
        return 0;
    int rows = r->n * p->T;
    cl_mem pos = p->positional ? L->param[1].w : L->param[0].w;
    return nn_launch2(r->dev, "emb_forward", (size_t)p->output_dim, (size_t)rows, 0, 0, e, 9, KMEM(L->x[0]),
                      KMEM(L->param[0].w), KMEM(pos), KINT(p->positional), KMEM(L->y), KINT(rows), KINT(p->T),
                      KINT(p->input_dim), KINT(p->output_dim));
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    embedding *p = L->p;
    if (r->n <= 0)
        return 0;
    int rows = r->n * p->T, D = p->output_dim;
    int chunk = (r->dev->type & CL_DEVICE_TYPE_GPU) ? 1 : D;
    size_t nchunks = (size_t)(D + chunk - 1) / (size_t)chunk;
    int rc = nn_launch2(r->dev, "emb_weight_grad", nchunks, (size_t)p->input_dim, 0, 0, e, 7, KMEM(L->x[0]),
                    KMEM(L->dy), KMEM(L->param[0].g), KINT(rows), KINT(p->input_dim), KINT(D), KINT(chunk));
    if (!rc && p->positional)
        rc = nn_launch(r->dev, "emb_pos_grad", (size_t)p->T * D, 0, e, 5, KMEM(L->dy), KMEM(L->param[1].g),
                       KINT(r->n), KINT(p->T), KINT(D));
    return rc;
}

const nn_layer_type nn_layer_embedding = {
    .name = "embedding",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
