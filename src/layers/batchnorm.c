/* batchnorm.c - batch normalisation (PyTorch semantics).
 *
 * The channel axis is axis 0 of the per-sample shape: [C, H, W] is
 * normalised per channel over (n, H, W), [F] per feature over n, and any
 * other rank likewise over (n, rest). Keys: momentum (0.1; running =
 * (1 - m) running + m batch), eps (1e-5).
 *
 * Parameters: weight (gamma, init 1) and bias (beta, init 0), trainable;
 * running_mean (init 0) and running_var (init 1), state: saved in model.bin,
 * skipped by the optimiser. Training normalises with the batch mean and the
 * biased variance and updates the running statistics with the UNBIASED
 * variance (not when a channel holds a single value, where it is undefined);
 * inference uses the running statistics.
 *
 * The training forward saves [mean[C] | inv_std[C]] for the backward in the
 * layer's scratch (L->work; 2 C floats per sample are declared, of which the
 * first 2 C are used: the net allocates scratch per sample).
 *
 * On GPUs the reductions take one work-group per channel (bn_forward_train,
 * bn_backward); on CPUs a work item owns a run of whole channels
 * (nn_row_split) and sums each one in contiguous vector loops
 * (bn_forward_train_rows, bn_backward_rows), with no barriers; inference
 * takes runs of (sample, channel) rows (bn_forward_eval_rows). */
#include <stdlib.h>

#include "layer.h"

typedef struct batchnorm {
    float momentum, eps;
} batchnorm;

static const char *const keys[] = {"momentum", "eps", NULL};

static int parse(nn_layer *L, const cJSON *j, const char *path, nn_err *e)
{
    double m, eps;
    int r = nn_layer_get_num(j, "momentum", path, 0.0, 1.0, 0.1, &m, e);
    if (!r)
        r = nn_layer_get_num(j, "eps", path, 1e-12, 1.0, 1e-5, &eps, e);
    if (r)
        return r;
    batchnorm *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    p->momentum = (float)m;
    p->eps = (float)eps;
    L->p = p;
    return 0;
}

static int channels(const nn_layer *L) { return L->out_shape.d[0]; }

static size_t spatial(const nn_layer *L) { return nn_shape_size(&L->out_shape) / (size_t)L->out_shape.d[0]; }

static int shape(nn_layer *L, const char *path, nn_err *e)
{
    L->out_shape = L->in_shape[0];
    int C = L->out_shape.d[0];
    nn_param *P;
    nn_layer_add_param(L, "weight", 1, &C, NN_INIT_ONE, C, C);
    nn_layer_add_param(L, "bias", 1, &C, NN_INIT_ZERO, C, C);
    P = nn_layer_add_param(L, "running_mean", 1, &C, NN_INIT_ZERO, C, C);
    P->trainable = 0;
    P = nn_layer_add_param(L, "running_var", 1, &C, NN_INIT_ONE, C, C);
    P->trainable = 0;
    L->scratch = 2 * (size_t)C;
    L->flops = 4.0 * (double)nn_shape_size(&L->out_shape);
    return 0;
}

/* Work-group size of the per-channel reductions: a power of two. */
static size_t red_local(const nn_dev *d, size_t m)
{
    size_t ls = 128;
    while (ls > 1 && (ls > d->max_wg || ls / 2 >= m))
        ls /= 2;
    return ls;
}

static int forward(nn_layer *L, const nn_run *r, nn_err *e)
{
    batchnorm *p = L->p;
    int C = channels(L), HW = (int)spatial(L);
    if (r->n <= 0)
        return 0;
    if (!r->train && (r->dev->type & CL_DEVICE_TYPE_CPU)) {
        nn_rows rc = nn_row_split(r->dev, (size_t)r->n * C, 1);
        return nn_launch(r->dev, "bn_forward_eval_rows", rc.items, rc.local, e, 11, KMEM(L->x[0]), KMEM(L->y),
                         KMEM(L->param[0].w), KMEM(L->param[1].w), KMEM(L->param[2].w), KMEM(L->param[3].w),
                         KINT(r->n * C), KINT(C), KINT(HW), KFLT(p->eps), KINT(rc.per));
    }
    if (!r->train)
        return nn_launch(r->dev, "bn_forward_eval", (size_t)r->n * C * HW, 0, e, 10, KMEM(L->x[0]), KMEM(L->y),
                         KMEM(L->param[0].w), KMEM(L->param[1].w), KMEM(L->param[2].w), KMEM(L->param[3].w),
                         KINT(r->n * C * HW), KINT(C), KINT(HW), KFLT(p->eps));
    if (r->dev->type & CL_DEVICE_TYPE_CPU) {
        nn_rows rc = nn_row_split(r->dev, (size_t)C, 1);
        return nn_launch(r->dev, "bn_forward_train_rows", rc.items, rc.local, e, 13, KMEM(L->x[0]), KMEM(L->y),
                         KMEM(L->param[0].w), KMEM(L->param[1].w), KMEM(L->param[2].w), KMEM(L->param[3].w),
                         KMEM(L->work), KINT(r->n), KINT(C), KINT(HW), KFLT(p->eps), KFLT(p->momentum),
                         KINT(rc.per));
    }
    size_t ls = red_local(r->dev, (size_t)r->n * HW);
    return nn_launch(r->dev, "bn_forward_train", (size_t)C * ls, ls, e, 13, KMEM(L->x[0]), KMEM(L->y),
                     KMEM(L->param[0].w), KMEM(L->param[1].w), KMEM(L->param[2].w), KMEM(L->param[3].w),
                     KMEM(L->work), KINT(r->n), KINT(C), KINT(HW), KFLT(p->eps), KFLT(p->momentum),
                     KLOCAL(ls * sizeof(float)));
}

/* Overwrites dgamma, dbeta; accumulates into dx. With r->train the batch
 * statistics of the last training forward are used (the training formula),
 * otherwise the running statistics (constants). */
static int backward(nn_layer *L, const nn_run *r, nn_err *e)
{
    batchnorm *p = L->p;
    int C = channels(L), HW = (int)spatial(L);
    if (r->n <= 0)
        return 0;
    cl_mem dx = L->dx[0] ? L->dx[0] : L->dy;
    if (r->dev->type & CL_DEVICE_TYPE_CPU) {
        nn_rows rc = nn_row_split(r->dev, (size_t)C, 1);
        return nn_launch(r->dev, "bn_backward_rows", rc.items, rc.local, e, 16, KMEM(L->x[0]), KMEM(L->dy),
                         KMEM(dx), KINT(L->dx[0] != NULL), KMEM(L->param[0].w), KMEM(L->work), KMEM(L->param[2].w),
                         KMEM(L->param[3].w), KMEM(L->param[0].g), KMEM(L->param[1].g), KINT(r->n), KINT(C),
                         KINT(HW), KFLT(p->eps), KINT(r->train), KINT(rc.per));
    }
    size_t ls = red_local(r->dev, (size_t)r->n * HW);
    return nn_launch(r->dev, "bn_backward", (size_t)C * ls, ls, e, 16, KMEM(L->x[0]), KMEM(L->dy), KMEM(dx),
                     KINT(L->dx[0] != NULL), KMEM(L->param[0].w), KMEM(L->work), KMEM(L->param[2].w),
                     KMEM(L->param[3].w), KMEM(L->param[0].g), KMEM(L->param[1].g), KINT(r->n), KINT(C), KINT(HW),
                     KFLT(p->eps), KINT(r->train), KLOCAL(ls * sizeof(float)));
}

const nn_layer_type nn_layer_batchnorm = {
    .name = "batchnorm",
    .keys = keys,
    .min_inputs = 1,
    .max_inputs = 1,
    .parse = parse,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
