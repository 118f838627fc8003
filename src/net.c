/* net.c - shapes, parameter layout, device buffers, forward and backward. */
#include "net.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const nn_shape *shape_of(const nn_net *net, int idx)
{
    return idx < 0 ? &net->in_shape : &net->L[idx].out_shape;
}

int nn_net_build(nn_net *net, nn_spec *spec, const nn_shape *input, int vocab, nn_err *e)
{
    memset(net, 0, sizeof *net);
    net->spec = spec;
    net->L = spec->layers;
    net->nl = spec->nlayers;
    net->in_shape = *input;
    net->in_dim = nn_shape_size(&net->in_shape);
    const char *file = spec->file ? spec->file : "model";
    size_t off = 0, soff = 0;
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        L->nparam = 0;
        L->vocab = vocab;
        for (int k = 0; k < L->nin; k++)
            L->in_shape[k] = *shape_of(net, L->in[k]);
        int r = L->type->shape(L, L->path, e);
        if (r)
            return nn_wrap(e, "%s: ", file);
        size_t os = nn_shape_size(&L->out_shape);
        if (L->out_shape.nd < 1 || os == 0 || os > (size_t)NN_MAX_FEATURES) {
            char b[64];
            return nn_fail(e, NN_EDATA, "%s: %s (%s): output shape %s is not usable", file, L->path, L->name,
                           nn_shape_str(&L->out_shape, b, sizeof b));
        }
        net->flops += L->flops;
        for (int p = 0; p < L->nparam; p++) {
            nn_param *P = &L->param[p];
            if (P->n == 0 || P->n > (size_t)1 << 31)
                return nn_fail(e, NN_EDATA, "%s: %s (%s): parameter '%s' has an unusable size %zu", file, L->path,
                               L->name, P->name, P->n);
            if (P->trainable) {
                P->off = off;
                off += (P->n + 63) / 64 * 64; /* 256-byte aligned sub-buffers on every device we know */
                net->ntrainable += P->n;
            } else {
                P->off = soff;
                soff += (P->n + 63) / 64 * 64;
            }
        }
    }
    net->nparams = off;
    net->nstate = soff;
    nn_layer *out = nn_net_out(net);
    net->out_dim = nn_shape_size(&out->out_shape);
    net->fused_softmax = spec->loss == NN_LOSS_CE && nn_layer_output(out) == NN_OUT_SOFTMAX;
    return 0;
}

nn_layer *nn_net_out(nn_net *net) { return &net->L[net->nl - 1]; }

/* The kernels index a batch's activations and scratch with 32-bit ints:
 * every buffer a layer touches must hold at most INT_MAX floats for the
 * largest batch. Checked once here for every layer, not per forward call. */
static int check_batch(const nn_net *net, int max_batch, nn_err *e)
{
    for (int i = 0; i < net->nl; i++) {
        const nn_layer *L = &net->L[i];
        size_t per = nn_shape_size(&L->out_shape);
        for (int k = 0; k < L->nin; k++)
            if (nn_shape_size(&L->in_shape[k]) > per)
                per = nn_shape_size(&L->in_shape[k]);
        if (L->scratch > per)
            per = L->scratch;
        if ((size_t)max_batch * per > (size_t)INT_MAX)
            return nn_fail(e, NN_EDATA,
                           "%s (%s): a batch of %d is too large for this layer (%zu floats per sample in one buffer); "
                           "use a smaller batch size",
                           L->path, L->name, max_batch, per);
    }
    return 0;
}

int nn_net_alloc(nn_net *net, nn_dev *dev, int max_batch, int training, nn_err *e)
{
    net->dev = dev;
    net->max_batch = max_batch;
    net->training = training;
    size_t fb = sizeof(float), B = (size_t)max_batch;
    int r;
    if (dev->align > 256 && net->nparams)
        return nn_fail(e, NN_ENODEV, "%s needs %u-byte sub-buffer alignment; nnrun supports up to 256", dev->name,
                       dev->align);
    if ((r = nn_buf_alloc(dev, (net->nparams ? net->nparams : 1) * fb, "the parameters", &net->params, e)))
        return r;
    if (net->nstate && (r = nn_buf_alloc(dev, net->nstate * fb, "the layer state", &net->state, e)))
        return r;
    if (training && (r = nn_buf_alloc(dev, (net->nparams ? net->nparams : 1) * fb, "the gradients", &net->grads, e)))
        return r;
    /* plan the arenas */
    size_t a = 0, g = 0;
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        if (L->type->alias)
            continue;
        a += nn_dev_align(dev, B * nn_shape_size(&L->out_shape) * fb);
        if (training)
            g += nn_dev_align(dev, B * nn_shape_size(&L->out_shape) * fb);
    }
    char what[128];
    snprintf(what, sizeof what, "the activations (batch %d)", max_batch);
    if ((r = nn_buf_alloc(dev, a, what, &net->arena, e)))
        return r;
    if (training) {
        snprintf(what, sizeof what, "the activation gradients (batch %d)", max_batch);
        if ((r = nn_buf_alloc(dev, g ? g : 4, what, &net->garena, e)))
            return r;
    }
    net->arena_bytes = a;
    net->garena_bytes = g;
    if ((r = nn_buf_alloc(dev, B * net->in_dim * fb, "the input batch", &net->x_in, e)))
        return r;
    a = g = 0;
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        for (int k = 0; k < L->nin; k++) {
            int src = L->in[k];
            L->x[k] = src < 0 ? net->x_in : net->L[src].y;
            L->dx[k] = src < 0 ? NULL : net->L[src].dy;
        }
        if (L->type->alias) {
            L->y = L->x[0];
            L->dy = L->dx[0];
        } else {
            size_t bytes = B * nn_shape_size(&L->out_shape) * fb;
            if ((r = nn_buf_sub(dev, net->arena, a, bytes, &L->y, e)))
                return r;
            a += nn_dev_align(dev, bytes);
            if (training) {
                if ((r = nn_buf_sub(dev, net->garena, g, bytes, &L->dy, e)))
                    return r;
                g += nn_dev_align(dev, bytes);
            }
        }
        if (L->scratch) {
            snprintf(what, sizeof what, "%s scratch (batch %d)", L->name, max_batch);
            if ((r = nn_buf_alloc(dev, B * L->scratch * fb, what, &L->work, e)))
                return r;
        }
        for (int p = 0; p < L->nparam; p++) {
            nn_param *P = &L->param[p];
            cl_mem parent = P->trainable ? net->params : net->state;
            if ((r = nn_buf_sub(dev, parent, P->off * fb, P->n * fb, &P->w, e)))
                return r;
            if (training && P->trainable && (r = nn_buf_sub(dev, net->grads, P->off * fb, P->n * fb, &P->g, e)))
                return r;
        }
    }
    /* after the buffers: a batch that does not fit the device says so first (69) */
    return check_batch(net, max_batch, e);
}

int nn_net_init_params(nn_net *net, uint64_t seed, nn_err *e)
{
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        for (int p = 0; p < L->nparam; p++) {
            nn_param *P = &L->param[p];
            float *h = malloc(P->n * sizeof(float));
            if (!h)
                return nn_fail(e, NN_ENOMEM, "out of memory");
            /* each tensor's stream depends on the seed and its name only */
            nn_rng rng;
            uint64_t hs = nn_fnv1a(NN_FNV_INIT, L->name, strlen(L->name));
            hs = nn_fnv1a(hs, P->name, strlen(P->name));
            nn_rng_seed(&rng, seed ^ hs);
            double sd = sqrt(2.0 / (P->fan_in > 0 ? P->fan_in : 1));
            double lim = sqrt(6.0 / ((P->fan_in + P->fan_out) > 0 ? P->fan_in + P->fan_out : 1));
            double rfan = sqrt(P->fan_in > 0 ? P->fan_in : 1); /* uniform limit 1 / rfan */
            for (size_t k = 0; k < P->n; k++) {
                switch (P->init) {
                case NN_INIT_ZERO: h[k] = 0; break;
                case NN_INIT_ONE: h[k] = 1; break;
                case NN_INIT_HE: h[k] = (float)(nn_rng_normal(&rng) * sd); break;
                case NN_INIT_GLOROT: h[k] = (float)((nn_rng_uniform(&rng) * 2 - 1) * lim); break;
                case NN_INIT_LSTM_BIAS: h[k] = (k >= P->n / 4 && k < P->n / 2) ? 1.0f : 0.0f; break;
                case NN_INIT_FAN_IN_UNIFORM:
                    h[k] = (float)((nn_rng_uniform(&rng) * 2 - 1) / rfan);
                    break;
                case NN_INIT_NORMAL: h[k] = (float)nn_rng_normal(&rng); break;
                case NN_INIT_FAN_IN_UNIFORM2: {
                    double a = nn_rng_uniform(&rng) * 2 - 1;
                    h[k] = (float)((a + nn_rng_uniform(&rng) * 2 - 1) / rfan);
                    break;
                }
                }
            }
            int r = nn_buf_write(net->dev, P->w, 0, P->n * sizeof(float), h, 1, e);
            free(h);
            if (r)
                return r;
        }
    }
    return 0;
}

int nn_net_set_norm(nn_net *net, const float *mean, const float *std, int nnorm, nn_err *e)
{
    nn_buf_free(&net->norm);
    if (nnorm <= 0)
        return 0;
    size_t dim = net->in_dim;
    size_t per = 0; /* features per normalisation value */
    if ((size_t)nnorm == dim)
        per = 1;
    else if (nnorm == 1)
        per = dim;
    else if (net->in_shape.nd == 3 && nnorm == net->in_shape.d[0])
        per = dim / (size_t)nnorm;
    else
        return nn_fail(e, NN_EDATA,
                       "normalisation has %d values; expected 1, one per channel or one per feature (%zu)", nnorm,
                       dim);
    float *h = malloc(2 * dim * sizeof(float));
    if (!h)
        return nn_fail(e, NN_ENOMEM, "out of memory");
    for (size_t j = 0; j < dim; j++) {
        size_t c = j / per;
        h[j] = mean[c];
        h[dim + j] = 1.0f / (std[c] > 0 ? std[c] : 1.0f);
    }
    int r = nn_buf_alloc(net->dev, 2 * dim * sizeof(float), "the normalisation", &net->norm, e);
    if (!r)
        r = nn_buf_write(net->dev, net->norm, 0, 2 * dim * sizeof(float), h, 1, e);
    free(h);
    return r;
}

int nn_net_forward(nn_net *net, const nn_run *r, nn_err *e)
{
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        int rc = L->type->forward(L, r, e);
        if (rc)
            return nn_wrap(e, "%s (%s) forward: ", L->path, L->name);
    }
    return 0;
}

int nn_net_backward(nn_net *net, const nn_run *r, nn_err *e)
{
    return nn_net_backward_hooked(net, r, NULL, NULL, e);
}

int nn_net_backward_hooked(nn_net *net, const nn_run *r, nn_backward_hook hook, void *ctx, nn_err *e)
{
    /* Every backward accumulates into dx: nn_net_zero_grads ran before the
     * loss wrote the output's gradient. */
    for (int i = net->nl - 1; i >= 0; i--) {
        nn_layer *L = &net->L[i];
        if (i == net->nl - 1 && net->fused_softmax)
            continue;
        int rc = L->type->backward(L, r, e);
        if (rc)
            return nn_wrap(e, "%s (%s) backward: ", L->path, L->name);
        if (hook && (rc = hook(ctx, i, e)))
            return rc;
    }
    return 0;
}

int nn_net_zero_grads(nn_net *net, nn_err *e)
{
    return net->garena_bytes ? nn_buf_zero(net->dev, net->garena, 0, net->garena_bytes, e) : 0;
}

int nn_net_each_param(nn_net *net, nn_param_visit fn, void *ctx, nn_err *e)
{
    for (int i = 0; i < net->nl; i++)
        for (int p = 0; p < net->L[i].nparam; p++) {
            int r = fn(ctx, &net->L[i], &net->L[i].param[p], e);
            if (r)
                return r;
        }
    return 0;
}

void nn_net_free(nn_net *net)
{
    for (int i = 0; i < net->nl; i++) {
        nn_layer *L = &net->L[i];
        if (!L->type->alias) {
            nn_buf_free(&L->y);
            nn_buf_free(&L->dy);
        } else {
            L->y = L->dy = NULL;
        }
        nn_buf_free(&L->work);
        for (int p = 0; p < L->nparam; p++) {
            nn_buf_free(&L->param[p].w);
            nn_buf_free(&L->param[p].g);
        }
        for (int k = 0; k < L->nin; k++)
            L->x[k] = L->dx[k] = NULL;
    }
    nn_buf_free(&net->params);
    nn_buf_free(&net->grads);
    nn_buf_free(&net->state);
    nn_buf_free(&net->arena);
    nn_buf_free(&net->garena);
    nn_buf_free(&net->x_in);
    nn_buf_free(&net->norm);
}
