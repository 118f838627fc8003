/* flatten.c - [c, h, w] -> [c*h*w]. No data moves: the graph aliases this
 * layer's output (and its gradient) to its input's buffers. */
#include "layer.h"

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape.nd = 1;
    L->out_shape.d[0] = (int)nn_shape_size(&L->in_shape[0]);
    return 0;
}

static int nothing(nn_layer *L, const nn_run *r, nn_err *e) { return 0; }

const nn_layer_type nn_layer_flatten = {
    .name = "flatten",
    .min_inputs = 1,
    .max_inputs = 1,
    .alias = 1,
    .shape = shape,
    .forward = nothing,
    .backward = nothing,
};
