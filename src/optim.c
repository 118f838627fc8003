#include "optim.h"

#include <math.h>
#include <string.h>

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
    } else {
        r = nn_buf_alloc(d, n * sizeof(float), "the Adam first moments", &o->m1, e);
        if (!r)
            r = nn_buf_alloc(d, n * sizeof(float), "the Adam second moments", &o->m2, e);
    }
    return r;
}

int nn_optim_step(nn_optim *o, nn_dev *d, cl_mem w, cl_mem g, float lr, nn_err *e)
{
    o->t++;
    const nn_opt_spec *s = &o->s;
    if (s->type == NN_OPT_SGD)
        return nn_launch(d, "sgd_step", o->n, 0, e, 8, KMEM(w), KMEM(g), KMEM(o->m1 ? o->m1 : g), KINT(o->n),
                         KFLT(lr), KFLT(s->momentum), KFLT(s->weight_decay), KINT(s->nesterov));
    float c1 = 1.0f - (float)pow(s->beta1, (double)o->t), c2 = 1.0f - (float)pow(s->beta2, (double)o->t);
    return nn_launch(d, "adam_step", o->n, 0, e, 13, KMEM(w), KMEM(g), KMEM(o->m1), KMEM(o->m2), KINT(o->n), KFLT(lr),
                     KFLT(s->beta1), KFLT(s->beta2), KFLT(s->eps), KFLT(s->weight_decay),
                     KINT(s->type == NN_OPT_ADAMW), KFLT(c1), KFLT(c2));
}

void nn_optim_free(nn_optim *o)
{
    nn_buf_free(&o->m1);
    nn_buf_free(&o->m2);
}
