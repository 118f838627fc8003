/* loss.h - the loss on the net's output, fused with its activation:
 * softmax + cross_entropy (the gradient goes straight to the softmax's
 * input), sigmoid + binary_cross_entropy, mse. Metrics stay on the device. */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include "net.h"

/* Checks that the net's output fits the loss and the data: cross_entropy
 * needs [nclasses], binary_cross_entropy [1] with 2 classes, mse [tdim]. */
int nn_loss_check(const nn_net *net, int nclasses, int tdim, int ylen, nn_err *e);

/* Loss rows per sample: cross_entropy on an output [..., K] has one row (and
 * one label) per position (text: T); every other case 1. Label, metric and
 * gradient buffers hold max_batch * rows entries. */
size_t nn_loss_rows(const nn_net *net);
/* Bytes of labels/targets per sample. */
size_t nn_loss_target_bytes(const nn_net *net, int tdim);

/* The buffers a batch of up to B samples needs around the loss: labels or
 * targets, per-row metrics, and the 4 metric sums (nn_metrics_accum). */
typedef struct nn_loss_bufs {
    cl_mem target, metrics, acc;
} nn_loss_bufs;
int nn_loss_bufs_alloc(nn_dev *d, const nn_net *net, int B, int tdim, nn_loss_bufs *b, nn_err *e);
void nn_loss_bufs_free(nn_loss_bufs *b);

/* Per-sample loss and metric into metrics[2*n]; with want_grad also the
 * output gradient (scaled by 1/n). `target` is int labels or float targets. */
int nn_loss_run(nn_net *net, const nn_run *r, cl_mem target, cl_mem metrics, int want_grad, nn_err *e);

/* acc[0..2] += (sum loss, sum metric, n) over the batch's metrics. */
int nn_metrics_accum(nn_dev *d, cl_mem metrics, int n, cl_mem acc, nn_err *e);

/* 1 when the output holds logits rather than probabilities. */
int nn_loss_from_logits(const nn_net *net);

#endif
