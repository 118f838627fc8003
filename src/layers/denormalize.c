/* denormalize.c - the output layer of a regression model whose targets are
 * far from unit scale (Keras: Normalization(invert=True) adapted on the
 * targets).
 *
 * y = x * std + mean per target (the last axis), where mean and std are the
 * training targets' statistics: computed by `train` before the first step
 * (its fit hook) and saved in model.bin as state (not optimised). So
 * losses, metrics and predictions are in the targets' own units.
 *
 * The backward pass is NOT the plain chain rule: it gives dx = dy / std, the
 * gradient of the loss on standardised targets ((t - mean) / std). Training
 * therefore behaves as if the targets had been standardised (the layers
 * below learn unit-scale outputs, learning rates mean the same as for
 * standardised data), while the reported mse is the targets' own. */
#include <math.h>
#include <stdlib.h>

#include "layer.h"

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape = L->in_shape[0];
    int D = L->out_shape.d[L->out_shape.nd - 1];
    nn_param *P = nn_layer_add_param(L, "mean", 1, &D, NN_INIT_ZERO, D, D);
    P->trainable = 0;
    P = nn_layer_add_param(L, "std", 1, &D, NN_INIT_ONE, D, D);
    P->trainable = 0;
    L->flops = 2.0 * (double)nn_shape_size(&L->out_shape);
    return 0;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    int D = L->param[0].shape.d[0];
    return nn_launch(r->dev, "denorm_forward", n, 0, e, 6, KMEM(L->x[0]), KMEM(L->param[0].w), KMEM(L->param[1].w),
                     KMEM(L->y), KINT(n), KINT(D));
}

static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    if (!L->dx[0])
        return 0;
    size_t n = (size_t)r->n * nn_shape_size(&L->out_shape);
    int D = L->param[0].shape.d[0];
    return nn_launch(r->dev, "denorm_backward_acc", n, 0, e, 5, KMEM(L->dy), KMEM(L->param[1].w), KMEM(L->dx[0]),
                     KINT(n), KINT(D));
}

/* Sets the mean/std to those of the n training targets t[rows[i] * tdim + k]. */
static int fit(nn_layer *L, nn_dev *d, const float *t, int tdim, const int *rows, size_t n, nn_err *e)
{
    if (!t)
        return nn_fail(e, NN_EDATA, "%s (denormalize): the training data has no regression targets", L->path);
    int D = L->param[0].shape.d[0];
    if (D != tdim)
        return nn_fail(e, NN_EDATA, "%s (denormalize): %d outputs, but the data has %d targets", L->path, D, tdim);
    double *sum = calloc((size_t)D, sizeof *sum), *sq = calloc((size_t)D, sizeof *sq);
    float *h = malloc(2 * (size_t)D * sizeof *h);
    if (!sum || !sq || !h) {
        free(sum);
        free(sq);
        free(h);
        return nn_fail(e, NN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < D; k++) {
            double v = t[(size_t)rows[i] * (size_t)D + (size_t)k];
            sum[k] += v;
            sq[k] += v * v;
        }
    for (int k = 0; k < D; k++) {
        double mu = n ? sum[k] / (double)n : 0, var = n ? sq[k] / (double)n - mu * mu : 1;
        double sd = var > 1e-12 * (1 + mu * mu) ? sqrt(var) : 1.0; /* a constant target: scale 1 */
        h[k] = (float)mu;
        h[D + k] = (float)sd;
    }
    int r = nn_buf_write(d, L->param[0].w, 0, (size_t)D * sizeof *h, h, 1, e);
    if (!r)
        r = nn_buf_write(d, L->param[1].w, 0, (size_t)D * sizeof *h, h + D, 1, e);
    free(sum);
    free(sq);
    free(h);
    return r;
}

/* It scales regression targets: the net's output, with the mse loss. */
static int check_place(const nn_layer *L, int last, int regression, nn_err *e)
{
    if (!last)
        return nn_fail(e, NN_EDATA, "%s (%s): denormalize must be the last layer (the model's output)", L->path,
                       L->name);
    if (!regression)
        return nn_fail(e, NN_EDATA, "%s (%s): denormalize scales regression targets; it needs \"loss\": \"mse\"",
                       L->path, L->name);
    return 0;
}

const nn_layer_type nn_layer_denormalize = {
    .name = "denormalize",
    .min_inputs = 1,
    .max_inputs = 1,
    .shape = shape,
    .forward = forward,
    .backward = backward,
    .check_place = check_place,
    .fit = fit,
};
