/* softmax.c - softmax over the last axis. With the cross_entropy loss the
 * net fuses it with the loss (the loss writes the logits' gradient and this
 * layer's backward is skipped); standalone backward exists for other uses. */
#include "layer.h"

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape = L->in_shape[0];
    L->flops = 3.0 * (double)nn_shape_size(&L->out_shape);
    return 0;
}

static void dims(const nn_layer *L, int n, int *rows, int *k)
{
    *k = L->out_shape.d[L->out_shape.nd - 1];
    *rows = (int)((size_t)n * nn_shape_size(&L->out_shape) / (size_t)*k);
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    int rows, k;
    dims(L, r->n, &rows, &k);
    return nn_launch(r->dev, "softmax_forward", (size_t)rows, 0, e, 4, KMEM(L->x[0]), KMEM(L->y), KINT(rows), KINT(k));
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    if (!L->dx[0])
        return 0;
    int rows, k;
    dims(L, r->n, &rows, &k);
    return nn_launch(r->dev, "softmax_backward_acc", (size_t)rows, 0, e, 5, KMEM(L->y), KMEM(L->dy), KMEM(L->dx[0]),
                     KINT(rows), KINT(k));
}

static nn_out_kind output(const nn_layer *L) { return NN_OUT_SOFTMAX; }

const nn_layer_type nn_layer_softmax = {
    .name = "softmax",
    .min_inputs = 1,
    .max_inputs = 1,
    .shape = shape,
    .forward = forward,
    .backward = backward,
    .output = output,
};
