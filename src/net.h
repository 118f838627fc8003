/* net.h - the graph: layers in topological order (JSON order; inputs refer
 * to earlier layers), their shapes, the parameter layout, and the device
 * buffers: all trainable parameters in one buffer, their gradients in
 * another, non-trainable state in a third, activations and activation
 * gradients in two arenas planned once for the largest batch. */
#ifndef NN_NET_H
#define NN_NET_H

#include "device.h"
#include "layers/layer.h"
#include "spec.h"

typedef struct nn_net {
    nn_spec *spec;            /* borrowed: the layers live in spec->layers */
    nn_layer *L;
    int nl;
    nn_shape in_shape;
    size_t in_dim, out_dim;   /* floats per sample in and out */
    size_t nparams;           /* trainable floats (incl. alignment padding) */
    size_t nstate;            /* non-trainable floats */
    size_t ntrainable;        /* trainable floats without padding (reported) */
    double flops;             /* forward FLOPs per sample */
    int fused_softmax;        /* cross_entropy after a softmax layer: the loss writes its input gradient */

    nn_dev *dev;
    int max_batch, training;
    cl_mem params, grads, state;
    cl_mem arena, garena;     /* activations and their gradients */
    size_t arena_bytes, garena_bytes;
    cl_mem x_in;              /* [max_batch, in_dim] network input */
    cl_mem norm;              /* [2, in_dim]: mean, 1/std per feature; NULL = none */
} nn_net;

/* Shape inference and parameter layout (no device) for samples of shape
 * `input`; `vocab` sizes "vocab" layers (0: none). */
int nn_net_build(nn_net *net, nn_spec *spec, const nn_shape *input, int vocab, nn_err *e);
/* Device buffers for batches of up to max_batch; training adds gradients. */
int nn_net_alloc(nn_net *net, nn_dev *dev, int max_batch, int training, nn_err *e);
/* He/Glorot initialisation from the seed (host RNG, uploaded once). */
int nn_net_init_params(nn_net *net, uint64_t seed, nn_err *e);
/* Per-channel or per-feature mean/std (nnorm = 1, channels, or in_dim). */
int nn_net_set_norm(nn_net *net, const float *mean, const float *std, int nnorm, nn_err *e);

nn_layer *nn_net_out(nn_net *net);
int nn_net_forward(nn_net *net, const nn_run *r, nn_err *e);
/* Zeroes the activation gradients: call before the loss writes the output's. */
int nn_net_zero_grads(nn_net *net, nn_err *e);
/* Runs every backward in reverse order (skipping a fused softmax, whose
 * input gradient the loss wrote). */
int nn_net_backward(nn_net *net, const nn_run *r, nn_err *e);
/* The same, calling hook(ctx, i) once layer i's backward is enqueued (its
 * parameter gradients and those of every later layer are then final once
 * the queue gets there): data-parallel all-reduce buckets (dist.h). */
typedef int (*nn_backward_hook)(void *ctx, int layer, nn_err *e);
int nn_net_backward_hooked(nn_net *net, const nn_run *r, nn_backward_hook hook, void *ctx, nn_err *e);

/* Parameter access by full name "<layer>.<param>", for model.bin. */
typedef int (*nn_param_visit)(void *ctx, const nn_layer *L, nn_param *p, nn_err *e);
int nn_net_each_param(nn_net *net, nn_param_visit fn, void *ctx, nn_err *e);

void nn_net_free(nn_net *net);

#endif
