#include "optim.h"

#include <math.h>
#include <string.h>

#include "layers/layer.h"

#define GPU_GROUP 256 /* the most work-groups, and work-items per group, of the GPU-shaped clip_norm reduction */

int nn_optim_init(nn_optim *o, nn_dev *d, const nn_opt_spec *s, size_t n, nn_err *e)
{
    memset(o, 0, sizeof *o);
    o->s = *s;
    o->n = n;
    o->lr = s->lr;
    int r = 0;
    if (s->type == NN_OPT_SGD) {
        if (s->momentum != 0.0f)
            r = nn_buf_alloc(d, n * sizeof(float), "the momentum buffer", &o->m1, e);
    } else if (s->type == NN_OPT_RMSPROP) {
        r = nn_buf_alloc(d, n * sizeof(float), "the RMSprop square averages", &o->m2, e);
        if (!r && s->momentum > 0.0f)
            r = nn_buf_alloc(d, n * sizeof(float), "the RMSprop momentum buffer", &o->m1, e);
        if (!r && s->centered)
            r = nn_buf_alloc(d, n * sizeof(float), "the RMSprop gradient averages", &o->m3, e);
    } else {
        r = nn_buf_alloc(d, n * sizeof(float), "the Adam first moments", &o->m1, e);
        if (!r)
            r = nn_buf_alloc(d, n * sizeof(float), "the Adam second moments", &o->m2, e);
    }
    if (!r && s->clip_norm > 0.0f) {
        o->gpu_shape = !(d->type & CL_DEVICE_TYPE_CPU);
        if (o->gpu_shape) {
            o->group = 1; /* a power of two the device allows */
            while (o->group * 2 <= GPU_GROUP && o->group * 2 <= d->max_wg)
                o->group *= 2;
            size_t groups = (n + o->group - 1) / o->group;
            o->npart = groups < 1 ? 1 : groups > GPU_GROUP ? GPU_GROUP : groups;
        } else {
            o->npart = nn_elem_split(d, n).items;
        }
        r = nn_buf_alloc(d, (o->npart ? o->npart : 1) * sizeof(float), "the gradient norm's partial sums", &o->part, e);
        if (!r)
            r = nn_buf_alloc(d, 2 * sizeof(float), "the gradient clipping factor", &o->clip, e);
    }
    return r;
}

int nn_optim_clip_norm(nn_optim *o, nn_dev *d, cl_mem g, nn_err *e)
{
    int r;
    if (o->gpu_shape)
        r = nn_launch(d, "grad_sumsq_groups", o->npart * o->group, o->group, e, 5, KMEM(g), KINT(o->n),
                      KFLT(o->s.clip_value), KMEM(o->part), KLOCAL(o->group * sizeof(float)));
    else {
        nn_rows rs = nn_elem_split(d, o->n);
        r = nn_launch(d, "grad_sumsq_chunks", rs.items, rs.local, e, 5, KMEM(g), KINT(o->n), KINT(rs.per),
                      KFLT(o->s.clip_value), KMEM(o->part));
    }
    if (r)
        return r;
    return nn_launch(d, "clip_norm_scale", 1, 0, e, 4, KMEM(o->part), KINT(o->npart), KFLT(o->s.clip_norm),
                     KMEM(o->clip));
}

int nn_optim_step(nn_optim *o, nn_dev *d, cl_mem w, cl_mem g, float lr, nn_err *e)
{
    o->t++;
    const nn_opt_spec *s = &o->s;
    int norm = s->clip_norm > 0.0f, r;
    if (norm && (r = nn_optim_clip_norm(o, d, g, e)))
        return r;
    cl_mem clip = norm ? o->clip : g; /* a valid placeholder when unused */
    nn_rows rs = nn_elem_split(d, o->n); /* CPU devices: long runs per work-item */
    if (s->type == NN_OPT_SGD)
        return nn_launch(d, "sgd_step", rs.items, rs.local, e, 12, KMEM(w), KMEM(g), KMEM(o->m1 ? o->m1 : g),
                         KINT(o->n), KFLT(lr), KFLT(s->momentum), KFLT(s->weight_decay), KINT(s->nesterov),
                         KFLT(s->clip_value), KMEM(clip), KINT(norm), KINT(rs.per));
    if (s->type == NN_OPT_RMSPROP)
        return nn_launch(d, "rmsprop_step", rs.items, rs.local, e, 16, KMEM(w), KMEM(g), KMEM(o->m2),
                         KMEM(o->m3 ? o->m3 : g), KMEM(o->m1 ? o->m1 : g), KINT(o->n), KFLT(lr), KFLT(s->alpha),
                         KFLT(s->eps), KFLT(s->weight_decay), KFLT(s->momentum), KINT(s->centered),
                         KFLT(s->clip_value), KMEM(clip), KINT(norm), KINT(rs.per));
    float c1 = 1.0f - (float)pow(s->beta1, (double)o->t), c2 = 1.0f - (float)pow(s->beta2, (double)o->t);
    return nn_launch(d, "adam_step", rs.items, rs.local, e, 17, KMEM(w), KMEM(g), KMEM(o->m1), KMEM(o->m2),
                     KINT(o->n), KFLT(lr), KFLT(s->beta1), KFLT(s->beta2), KFLT(s->eps), KFLT(s->weight_decay),
                     KINT(s->type == NN_OPT_ADAMW), KFLT(c1), KFLT(c2), KFLT(s->clip_value), KMEM(clip), KINT(norm),
                     KINT(rs.per));
}

int nn_optim_state(const nn_optim *o, const char *names[3], cl_mem bufs[3])
{
    static const char *const all[3] = {"optimizer.m1", "optimizer.m2", "optimizer.m3"};
    const cl_mem have[3] = {o->m1, o->m2, o->m3};
    int k = 0;
    for (int i = 0; i < 3; i++)
        if (have[i]) {
            names[k] = all[i];
            bufs[k++] = have[i];
        }
    return k;
}

void nn_optim_free(nn_optim *o)
{
    nn_buf_free(&o->m1);
    nn_buf_free(&o->m2);
    nn_buf_free(&o->m3);
    nn_buf_free(&o->part);
    nn_buf_free(&o->clip);
}
