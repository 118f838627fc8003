/* optim.h - optimisers over the net's single parameter buffer, with
 * gradient clipping (by value, then by global norm) computed on the device. */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "device.h"
#include "spec.h"

typedef struct nn_optim {
    nn_opt_spec s;
    size_t n;          /* floats */
    long t;            /* steps taken */
    float lr;          /* the lr of the next steps: the spec's, or the schedule's for this epoch */
    cl_mem m1, m2, m3; /* the state (nn_optim_state names them), NULL when unused */
    cl_mem part, clip; /* clip_norm: partial sums of squares; [factor, norm] */
    size_t npart, group;
    int gpu_shape;     /* clip_norm reduction: work-groups (GPU) rather than few fat items (CPU) */
} nn_optim;

int nn_optim_init(nn_optim *o, nn_dev *d, const nn_opt_spec *s, size_t n, nn_err *e);
/* One update of w from g at learning rate lr (g is read, never modified). */
int nn_optim_step(nn_optim *o, nn_dev *d, cl_mem w, cl_mem g, float lr, nn_err *e);
void nn_optim_free(nn_optim *o);

/* The state buffers saved in a checkpoint: up to 3 of "optimizer.m1" (SGD
 * momentum, Adam first moment, RMSprop momentum), "optimizer.m2" (Adam's
 * second moment, RMSprop's square average: never negative) and
 * "optimizer.m3" (centered RMSprop's gradient average). Returns how many. */
int nn_optim_state(const nn_optim *o, const char *names[3], cl_mem bufs[3]);

/* clip_norm's first half: the global L2 norm of the (value-clipped)
 * gradient and the factor, into o->clip on the device. nn_optim_step calls
 * it; exposed for tests. */
int nn_optim_clip_norm(nn_optim *o, nn_dev *d, cl_mem g, nn_err *e);

#endif
