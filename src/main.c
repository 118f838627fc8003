/* nnrun - train and run neural networks on any OpenCL device.
 * The one place that prints errors and picks the exit code. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dist.h"
#include "version.h"


static void usage(FILE *f)
{
    fprintf(f, "usage: nnrun COMMAND [options]\n\ncommands:\n");
    for (const nn_cmd *c = nn_cmds; c->name; c++)
        fprintf(f, "  %-8s %s\n", c->name, c->summary);
    fprintf(f, "\n'nnrun COMMAND --help' describes each command. Exit codes: 0 ok, 1 eval gate failed, 2 usage,\n"
               "65 bad data or model, 66 missing input, 69 no usable device, 70 internal error, 71 out of memory,\n"
               "74 I/O error, 75 training diverged (NaN/Inf loss), 130 training interrupted (checkpoint written).\n");
}

/* Under mpirun: rank 0 alone prints results (the other ranks' standard
 * output goes to /dev/null; errors still reach standard error). An error on
 * one rank ends the whole job with that rank's message and exit code
 * (MPI_Abort), so no rank waits forever in a collective; errors every rank
 * reaches together (an interrupt, a failed eval gate) end it normally. */
static int run_command(const nn_cmd *c, int argc, char **argv);

int main(int argc, char **argv)
{
    nn_err de = {0};
    if (nn_dist_init(&argc, &argv, &de)) {
        fprintf(stderr, "nnrun: error: %s\n", de.msg);
        return de.code;
    }
    const nn_dist *dist = nn_dist_get();
    if (dist->active && dist->rank > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "nnrun: error: rank %d: cannot redirect standard output to /dev/null\n", dist->rank);
        nn_dist_abort(NN_EIO);
    }
    int r = NN_EUSAGE, found = 0;
    for (const nn_cmd *c = nn_cmds; c->name && argc >= 2; c++)
        if (!strcmp(argv[1], c->name)) {
            r = run_command(c, argc, argv);
            found = 1;
            break;
        }
    if (!found)
        r = run_command(NULL, argc, argv);
    nn_dist_finalize();
    return r;
}

static int run_command(const nn_cmd *cmd, int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NN_EUSAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("nnrun %s\n", NNRUN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    const nn_dist *dist = nn_dist_get();
    if (cmd) {
        const nn_cmd *c = cmd;
        nn_err e = {0};
        int r = c->run(argc - 1, argv + 1, &e);
        /* every write is checked: results that never arrived are a failure (74) */
        errno = 0;
        if ((fflush(stdout) != 0 || ferror(stdout)) && (r == 0 || r == NN_EGATE)) {
            fprintf(stderr, "nnrun: error: writing to standard output failed%s%s\n", errno ? ": " : "",
                    errno ? strerror(errno) : "");
            return NN_EIO;
        }
        int together = r == NN_EINTR || r == NN_EGATE; /* every rank got there at the same step */
        int abort_job = r && !together && dist->active && dist->size > 1;
        if (abort_job && dist->rank > 0) /* an error every rank hits (a bad file): rank 0's abort, */
            nanosleep(&(struct timespec){0, 500000000}, NULL); /* coming first, says it once */
        if (r && (e.msg[0] || r != NN_EGATE) && (!dist->active || !together || dist->rank == 0)) {
            fflush(stdout);
            if (dist->active && dist->size > 1)
                fprintf(stderr, "nnrun: error: rank %d: %s\n", dist->rank, e.msg[0] ? e.msg : "failed");
            else
                fprintf(stderr, "nnrun: error: %s\n", e.msg[0] ? e.msg : "failed");
        }
        if (abort_job) {
            fflush(stderr);
            nn_dist_abort(r);
        }
        return r;
    }
    const char *names[16];
    size_t n = 0;
    for (const nn_cmd *c = nn_cmds; c->name; c++)
        names[n++] = c->name;
    const char *s = nn_suggest(argv[1], names, n);
    fprintf(stderr, "nnrun: error: unknown command '%s'%s%s%s (see 'nnrun --help')\n", argv[1],
            s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    return NN_EUSAGE;
}
