#include "loss.h"

#include <string.h>

int nn_loss_from_logits(const nn_net *net)
{
    const nn_layer *out = &net->L[net->nl - 1];
    switch (net->spec->loss) {
    case NN_LOSS_CE:
        return !net->fused_softmax;
    case NN_LOSS_BCE:
        return nn_layer_output(out) != NN_OUT_SIGMOID;
    default:
        return 0;
    }
}

size_t nn_loss_rows(const nn_net *net)
{
    const nn_layer *out = &net->L[net->nl - 1];
    if (net->spec->loss != NN_LOSS_CE)
        return 1;
    return net->out_dim / (size_t)out->out_shape.d[out->out_shape.nd - 1];
}

size_t nn_loss_target_bytes(const nn_net *net, int tdim)
{
    return tdim ? (size_t)tdim * sizeof(float) : nn_loss_rows(net) * sizeof(int);
}

int nn_loss_bufs_alloc(nn_dev *d, const nn_net *net, int B, int tdim, nn_loss_bufs *b, nn_err *e)
{
    size_t tsz = nn_loss_target_bytes(net, tdim), rows = nn_loss_rows(net);
    int r = nn_buf_alloc(d, (size_t)B * tsz, "the batch labels", &b->target, e);
    if (!r)
        r = nn_buf_alloc(d, (size_t)B * rows * 2 * sizeof(float), "the batch metrics", &b->metrics, e);
    if (!r)
        r = nn_buf_alloc(d, 4 * sizeof(float), "the metric sums", &b->acc, e);
    return r;
}

void nn_loss_bufs_free(nn_loss_bufs *b)
{
    nn_buf_free(&b->target);
    nn_buf_free(&b->metrics);
    nn_buf_free(&b->acc);
}

int nn_loss_check(const nn_net *net, int nclasses, int tdim, int ylen, nn_err *e)
{
    const nn_layer *out = &net->L[net->nl - 1];
    const char *file = net->spec->file ? net->spec->file : "model";
    char b[64];
    nn_shape_str(&out->out_shape, b, sizeof b);
    size_t od = net->out_dim;
    for (int i = 0; i < net->nl; i++) {
        const nn_layer *L = &net->L[i];
        if (L->type->check_place && L->type->check_place(L, i == net->nl - 1, net->spec->loss == NN_LOSS_MSE, e))
            return nn_wrap(e, "%s: ", file);
    }
    switch (net->spec->loss) {
    case NN_LOSS_CE:
        if (ylen > 1) {
            /* one label per position: the output is [positions, classes] */
            int k = out->out_shape.d[out->out_shape.nd - 1];
            if (k != nclasses || od != (size_t)nclasses * (size_t)ylen)
                return nn_fail(e, NN_EDATA,
                               "%s: %s (%s): the output shape is %s but the data needs [%d, %d] (one distribution over "
                               "the %d-symbol vocabulary per position: \"units\": \"vocab\" on a per-step dense layer)",
                               file, out->path, out->name, b, ylen, nclasses, nclasses);
            return 0;
        }
        if (out->out_shape.nd != 1 || od != (size_t)nclasses)
            return nn_fail(e, NN_EDATA,
                           "%s: %s (%s): the output shape is %s but the data has %d classes: the last dense "
                           "layer needs \"units\": %d%s",
                           file, out->path, out->name, b, nclasses, nclasses,
                           out->out_shape.nd != 1 ? " (and a flatten layer before it)" : "");
        if (net->fused_softmax && out->in[0] < 0)
            return nn_fail(e, NN_EDATA, "%s: %s: a softmax directly on the input has nothing to train", file, out->path);
        if (nclasses < 2)
            return nn_fail(e, NN_EDATA, "%s: the training data has only %d class; cross_entropy needs at least 2",
                           file, nclasses);
        return 0;
    case NN_LOSS_BCE:
        if (od != 1)
            return nn_fail(e, NN_EDATA,
                           "%s: %s (%s): binary_cross_entropy needs one output unit (sigmoid), but the output shape is %s",
                           file, out->path, out->name, b);
        if (nclasses != 2)
            return nn_fail(e, NN_EDATA, "%s: binary_cross_entropy needs exactly 2 classes; the data has %d", file,
                           nclasses);
        return 0;
    case NN_LOSS_MSE:
        if (od != (size_t)tdim)
            return nn_fail(e, NN_EDATA, "%s: %s (%s): the output shape is %s but the data has %d target column(s)",
                           file, out->path, out->name, b, tdim);
        return 0;
    }
    return 0;
}

int nn_loss_run(nn_net *net, const nn_run *r, cl_mem target, cl_mem metrics, int want_grad, nn_err *e)
{
    nn_layer *out = nn_net_out(net);
    int k = (int)net->out_dim, n = r->n;
    if (net->spec->loss == NN_LOSS_CE) {
        /* one row per position */
        k = out->out_shape.d[out->out_shape.nd - 1];
        n = r->n * (int)(net->out_dim / (size_t)k);
    }
    /* the gradient of the mean over the global batch: summed over the ranks'
     * shares, it is the single-process gradient */
    int nmean = r->n_global > 0 && r->n > 0 ? n / r->n * r->n_global : n;
    float inv = 1.0f / nmean;
    int logits = nn_loss_from_logits(net);
    cl_mem grad = metrics; /* a valid placeholder when no gradient is wanted */
    if (want_grad)
        grad = (net->spec->loss == NN_LOSS_CE && net->fused_softmax) ? out->dx[0] : out->dy;
    switch (net->spec->loss) {
    case NN_LOSS_CE:
        return nn_launch(r->dev, "ce_loss", (size_t)n, 0, e, 10, KMEM(out->y), KMEM(target), KINT(n), KINT(k),
                         KINT(logits), KMEM(grad), KINT(want_grad), KFLT(inv), KMEM(metrics),
                         KFLT(net->spec->label_smoothing));
    case NN_LOSS_BCE:
        return nn_launch(r->dev, "bce_loss", (size_t)n, 0, e, 8, KMEM(out->y), KMEM(target), KINT(n), KINT(logits),
                         KMEM(grad), KINT(want_grad), KFLT(inv), KMEM(metrics));
    case NN_LOSS_MSE:
        return nn_launch(r->dev, "mse_loss", (size_t)n, 0, e, 8, KMEM(out->y), KMEM(target), KINT(n), KINT(k),
                         KMEM(grad), KINT(want_grad), KFLT(1.0f / ((float)nmean * k)), KMEM(metrics));
    }
    return 0;
}

int nn_metrics_accum(nn_dev *d, cl_mem metrics, int n, cl_mem acc, nn_err *e)
{
    const size_t ls = 64;
    return nn_launch(d, "metrics_accum", ls, ls, e, 5, KMEM(metrics), KINT(n), KMEM(acc), KLOCAL(ls * sizeof(float)),
                     KLOCAL(ls * sizeof(float)));
}
