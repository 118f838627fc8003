#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

nn_opt *nn_arg(nn_opt *opts, const char *name)
{
    for (nn_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

int nn_args_parse(int argc, char **argv, nn_opt *opts, const char *cmd, char **pos, int maxpos, int *npos,
                  nn_err *e)
{
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            if (*npos >= maxpos)
                return nn_fail(e, NN_EUSAGE, "nnrun %s: unexpected argument '%s' (see 'nnrun %s --help')", cmd, a, cmd);
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        if (!strcmp(a, "-h"))
            name = "help";
        char buf[64];
        const char *val = NULL;
        const char *eq = strchr(name, '=');
        if (eq) {
            snprintf(buf, sizeof buf, "%.*s", (int)(eq - name), name);
            name = buf;
            val = eq + 1;
        }
        nn_opt *o = nn_arg(opts, name);
        if (!o) {
            const char *names[64];
            size_t n = 0;
            for (nn_opt *p = opts; p->name && n < 64; p++)
                names[n++] = p->name;
            const char *s = nn_suggest(name, names, n);
            if (s)
                return nn_fail(e, NN_EUSAGE, "nnrun %s: unknown option '%s' (did you mean '--%s'?)", cmd, a, s);
            return nn_fail(e, NN_EUSAGE, "nnrun %s: unknown option '%s' (see 'nnrun %s --help')", cmd, a, cmd);
        }
        if (o->has_arg) {
            if (!val) {
                if (i + 1 >= argc)
                    return nn_fail(e, NN_EUSAGE, "nnrun %s: option '--%s' needs a value", cmd, o->name);
                val = argv[++i];
            }
            o->value = val;
        } else if (val) {
            return nn_fail(e, NN_EUSAGE, "nnrun %s: option '--%s' takes no value", cmd, o->name);
        }
        o->set = 1;
    }
    return 0;
}

int nn_arg_int(nn_opt *opts, const char *name, long lo, long hi, long *out, nn_err *e)
{
    nn_opt *o = nn_arg(opts, name);
    if (!o || !o->set)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(o->value, &end, 10);
    if (errno || end == o->value || *end || v < lo || v > hi)
        return nn_fail(e, NN_EUSAGE, "option '--%s': expected an integer from %ld to %ld, got '%s'", name, lo, hi,
                       o->value);
    *out = v;
    return 0;
}

int nn_arg_num(nn_opt *opts, const char *name, double lo, double hi, double *out, nn_err *e)
{
    nn_opt *o = nn_arg(opts, name);
    if (!o || !o->set)
        return 0;
    char *end;
    double v = strtod(o->value, &end);
    if (end == o->value || *end || !isfinite(v) || v < lo || v > hi)
        return nn_fail(e, NN_EUSAGE, "option '--%s': expected a number from %g to %g, got '%s'", name, lo, hi,
                       o->value);
    *out = v;
    return 0;
}

void nn_print_help(FILE *f, const nn_cmd *c, const nn_opt *opts)
{
    fprintf(f, "usage: nnrun %s %s\n\n%s\n\noptions:\n", c->name, c->usage, c->summary);
    for (const nn_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->has_arg ? " VALUE" : "");
        fprintf(f, "  %-22s %s\n", left, o->help);
    }
}

