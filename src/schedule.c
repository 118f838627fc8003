/* schedule.c - learning-rate schedules (PyTorch's lr_scheduler semantics) and
 * early stopping (Keras's EarlyStopping); see schedule.h. */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------- the schedule table */

/* Each type's lr at epoch e counted from the end of the warmup. Closed
 * forms of PyTorch's recursive updates (equal to them within rounding). */
typedef double (*lr_fn)(const nn_sched *z, int e);

static double lr_constant(const nn_sched *z, int e) { return z->base; }

static double lr_step(const nn_sched *z, int e) { return z->base * pow(z->s.gamma, (double)(e / z->s.step_size)); }

static double lr_multistep(const nn_sched *z, int e)
{
    int k = 0;
    while (k < z->s.nmilestones && z->s.milestones[k] <= e)
        k++;
    return z->base * pow(z->s.gamma, (double)k);
}

static double lr_exponential(const nn_sched *z, int e) { return z->base * pow(z->s.gamma, (double)e); }

/* CosineAnnealingLR: past t_max the cosine carries on (back up), as PyTorch's does */
static double lr_cosine(const nn_sched *z, int e)
{
    const double lo = z->s.eta_min;
    return lo + (z->base - lo) * (1 + cos(M_PI * (double)e / (double)z->t_max)) / 2;
}

/* ReduceLROnPlateau: the lr is state, changed by nn_sched_observe */
static double lr_plateau(const nn_sched *z, int e) { return z->lr; }

static const struct {
    const char *name;
    lr_fn lr;
} types[NN_SCHED_COUNT] = {
    [NN_SCHED_NONE] = {"none", lr_constant},
    [NN_SCHED_CONSTANT] = {"constant", lr_constant},
    [NN_SCHED_STEP] = {"step", lr_step},
    [NN_SCHED_MULTISTEP] = {"multistep", lr_multistep},
    [NN_SCHED_EXPONENTIAL] = {"exponential", lr_exponential},
    [NN_SCHED_COSINE] = {"cosine", lr_cosine},
    [NN_SCHED_PLATEAU] = {"plateau", lr_plateau},
};

static const char *const names[] = {"step", "multistep", "exponential", "cosine", "plateau", "constant"};

const char *const *nn_sched_names(int *n)
{
    *n = (int)(sizeof names / sizeof names[0]);
    return names;
}

nn_sched_kind nn_sched_kind_by_name(const char *name)
{
    for (int k = NN_SCHED_CONSTANT; k < NN_SCHED_COUNT; k++)
        if (!strcmp(name, types[k].name))
            return (nn_sched_kind)k;
    return NN_SCHED_NONE;
}

const char *nn_sched_name(nn_sched_kind k) { return k >= 0 && k < NN_SCHED_COUNT ? types[k].name : "?"; }

int nn_monitor_set(nn_monitor *m, const char *name, int regress)
{
    const char *metric = regress ? "mae" : "accuracy";
    int val = !strncmp(name, "val_", 4);
    const char *base = val ? name + 4 : name;
    memset(m, 0, sizeof *m);
    if (strcmp(base, "loss") && strcmp(base, metric))
        return -1;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->val = val;
    m->metric = strcmp(base, "loss") != 0;
    m->maximize = m->metric && !regress;
    return 0;
}

/* ------------------------------------------------------------ the schedule */

void nn_sched_init(nn_sched *z, const nn_sched_spec *s, double base_lr, int epochs)
{
    memset(z, 0, sizeof *z);
    z->s = *s;
    z->base = base_lr;
    z->t_max = s->t_max > 0 ? s->t_max : epochs - s->warmup > 1 ? epochs - s->warmup : 1;
    z->lr = base_lr;
    z->best = s->monitor.maximize ? -INFINITY : INFINITY;
}

double nn_sched_lr(const nn_sched *z, int epoch)
{
    const int w = z->s.warmup;
    if (epoch < w) /* LinearLR(start_factor, end_factor 1, total_iters w) */
        return z->base * (z->s.warmup_start + (1 - z->s.warmup_start) * (double)epoch / (double)w);
    return types[z->s.kind].lr(z, epoch - w);
}

static int plateau_better(const nn_sched *z, double a)
{
    const double b = z->best, th = z->s.threshold;
    if (z->s.monitor.maximize)
        return z->s.threshold_abs ? a > b + th : a > b * (1 + th);
    return z->s.threshold_abs ? a < b - th : a < b * (1 - th);
}

void nn_sched_observe(nn_sched *z, int epoch, double value)
{
    if (z->s.kind != NN_SCHED_PLATEAU || epoch < z->s.warmup) /* the warmup's values are not watched */
        return;
    if (plateau_better(z, value)) {
        z->best = value;
        z->bad = 0;
    } else
        z->bad++;
    if (z->cooldown > 0) { /* bad epochs in the cooldown do not count */
        z->cooldown--;
        z->bad = 0;
    }
    if (z->bad > z->s.patience) {
        double next = z->lr * z->s.factor;
        if (next < z->s.min_lr)
            next = z->s.min_lr;
        if (z->lr - next > 1e-8) /* PyTorch's eps: smaller changes are ignored */
            z->lr = next;
        z->cooldown = z->s.cooldown;
        z->bad = 0;
    }
}

/* ------------------------------------------------------- early stopping */

void nn_stop_init(nn_stopper *st, const nn_stop_spec *s)
{
    memset(st, 0, sizeof *st);
    st->s = *s;
    st->best = s->monitor.maximize ? -INFINITY : INFINITY;
}

int nn_stop_observe(nn_stopper *st, int epoch, double value)
{
    const double d = st->s.min_delta;
    st->wait++;
    if (st->s.monitor.maximize ? value - d > st->best : value + d < st->best) {
        st->best = value;
        st->best_epoch = epoch;
        st->wait = 0;
        return NN_STOP_IMPROVED;
    }
    return st->wait >= st->s.patience && epoch > 1 ? NN_STOP_STOP : NN_STOP_GO;
}

/* ------------------------------------------------------ checkpoint state */

/* %.17g round-trips a double; infinities (no best yet) are null */
static void put_num(char *b, size_t n, double v)
{
    if (isfinite(v))
        snprintf(b, n, "%.17g", v);
    else
        snprintf(b, n, "null");
}

int nn_sched_state_json(const nn_sched *z, char *buf, size_t n)
{
    char lr[32], best[32];
    put_num(lr, sizeof lr, z->lr);
    put_num(best, sizeof best, z->best);
    int k = snprintf(buf, n, "{\"lr\":%s,\"best\":%s,\"bad_epochs\":%d,\"cooldown\":%d}", lr, best, z->bad,
                     z->cooldown);
    return k > 0 && (size_t)k < n ? 0 : -1;
}

int nn_stop_state_json(const nn_stopper *st, char *buf, size_t n)
{
    char best[32];
    put_num(best, sizeof best, st->best);
    int k = snprintf(buf, n, "{\"best\":%s,\"best_epoch\":%d,\"wait\":%d}", best, st->best_epoch, st->wait);
    return k > 0 && (size_t)k < n ? 0 : -1;
}

/* One state field: a number in [lo, hi] (an integer when asked), or null
 * for "none yet" where allowed (*v untouched then). */
static int field(const cJSON *o, const char *path, const char *key, const char *name, double lo, double hi,
                 int integer, int nullable, double *v, nn_err *e)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (nullable && cJSON_IsNull(x))
        return 0;
    if (!cJSON_IsNumber(x))
        return nn_fail(e, NN_EDATA, "%s: header extra.resume.%s.%s: required number is missing", path, key, name);
    double d = x->valuedouble;
    if (!(d >= lo && d <= hi) || (integer && d != floor(d)))
        return nn_fail(e, NN_EDATA, "%s: header extra.resume.%s.%s: %.17g is not %s from %g to %g", path, key, name,
                       d, integer ? "an integer" : "a number", lo, hi);
    *v = d;
    return 0;
}

int nn_sched_state_load(nn_sched *z, const cJSON *o, const char *path, const char *key, nn_err *e)
{
    if (!cJSON_IsObject(o))
        return nn_fail(e, NN_EDATA, "%s: header extra.resume.%s: expected an object", path, key);
    double lr = z->lr, best = z->best, bad = 0, cd = 0;
    int r;
    if ((r = field(o, path, key, "lr", 0, 1e300, 0, 0, &lr, e)) ||
        (r = field(o, path, key, "best", -1e300, 1e300, 0, 1, &best, e)) ||
        (r = field(o, path, key, "bad_epochs", 0, 1e9, 1, 0, &bad, e)) ||
        (r = field(o, path, key, "cooldown", 0, z->s.cooldown, 1, 0, &cd, e)))
        return r;
    z->lr = lr;
    z->best = best;
    z->bad = (int)bad;
    z->cooldown = (int)cd;
    return 0;
}

int nn_stop_state_load(nn_stopper *st, const cJSON *o, const char *path, const char *key, int epochs, nn_err *e)
{
    if (!cJSON_IsObject(o))
        return nn_fail(e, NN_EDATA, "%s: header extra.resume.%s: expected an object", path, key);
    double best = st->best, be = 0, wait = 0;
    int r;
    if ((r = field(o, path, key, "best", -1e300, 1e300, 0, 1, &best, e)) ||
        (r = field(o, path, key, "best_epoch", 0, epochs, 1, 0, &be, e)) ||
        (r = field(o, path, key, "wait", 0, epochs, 1, 0, &wait, e)))
        return r;
    st->best = best;
    st->best_epoch = (int)be;
    st->wait = (int)wait;
    return 0;
}
