/* optim.h - optimisers over the net's single parameter buffer. */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "device.h"
#include "spec.h"

typedef struct nn_optim {
    nn_opt_spec s;
    size_t n;          /* floats */
    long t;            /* steps taken */
    float lr;          /* the lr of the next steps: the spec's, or the schedule's for this epoch */
    cl_mem m1, m2;     /* momentum / Adam moments */
} nn_optim;

int nn_optim_init(nn_optim *o, nn_dev *d, const nn_opt_spec *s, size_t n, nn_err *e);
/* One update of w from g at learning rate lr. */
int nn_optim_step(nn_optim *o, nn_dev *d, cl_mem w, cl_mem g, float lr, nn_err *e);
void nn_optim_free(nn_optim *o);

#endif
