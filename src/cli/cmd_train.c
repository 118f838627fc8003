#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../train.h"
#include "cli.h"

static volatile sig_atomic_t stop_requested;

/* First SIGINT/SIGTERM/SIGUSR1: finish the step, write a checkpoint, exit 130.
 * A second one: the default action (model.bin and checkpoints are written
 * atomically, so even then nothing is left half-written). */
static void on_signal(int sig)
{
    stop_requested = 1;
    signal(sig, SIG_DFL);
}

int nn_cmd_train(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"epochs", 1, "number of epochs (overrides train.epochs)"},
        {"batch-size", 1, "samples per step (overrides train.batch_size)"},
        {"lr", 1, "learning rate (overrides optimizer.lr; the base of train.lr_schedule)"},
        {"seed", 1, "random seed (overrides train.seed)"},
        {"output", 1, "where to write model.bin (overrides output)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring (default: $NNRUN_DEVICE, else a GPU)"},
        {"log", 1, "write per-epoch metrics to this CSV file"},
        {"plot", 1, "draw loss and accuracy (or mae), train and validation, per epoch as a PNG (1000x400)"},
        {"checkpoint-every", 1, "write a full training checkpoint every N steps, or every N epochs with 'Ne' (e.g. 1e)"},
        {"checkpoint", 1, "checkpoint path (default: OUTPUT.ckpt); also written on SIGINT/SIGTERM"},
        {"resume", 1, "continue training from this checkpoint (same model JSON and data)"},
        {"json", 0, "print JSON lines (start, epoch, early_stopping, test, saved events)"},
        {"quiet", 0, "print nothing but errors"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[2];
    int npos, r = nn_args_parse(argc, argv, opts, "train", pos, 2, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        nn_print_help(stdout, &nn_cmds[0], opts);
        return 0;
    }
    if (npos != 1)
        return nn_fail(e, NN_EUSAGE, "nnrun train: expected one MODEL.json (see 'nnrun train --help')");
    nn_train_opts o = {.model_path = pos[0], .epochs = -1, .seed = -1};
    long v;
    double d;
    if ((r = nn_arg_int(opts, "epochs", 0, 1000000, &v, e)))
        return r;
    if (nn_arg(opts, "epochs")->set)
        o.epochs = (int)v;
    if ((r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &v, e)))
        return r;
    if (nn_arg(opts, "batch-size")->set)
        o.batch_size = (int)v;
    if ((r = nn_arg_num(opts, "lr", 1e-12, 100, &d, e)))
        return r;
    if (nn_arg(opts, "lr")->set)
        o.lr = d;
    if ((r = nn_arg_int(opts, "seed", 0, 9007199254740991L /* 2^53-1: JSON numbers (train.seed) */, &v, e)))
        return r;
    if (nn_arg(opts, "seed")->set)
        o.seed = v;
    o.output = nn_arg(opts, "output")->value;
    o.device = nn_arg(opts, "device")->value;
    o.log = nn_arg(opts, "log")->value;
    o.plot = nn_arg(opts, "plot")->value;
    o.json = nn_arg(opts, "json")->set;
    o.quiet = nn_arg(opts, "quiet")->set;
    o.progress = !o.quiet && !o.json && isatty(2) && isatty(1);
    o.resume = nn_arg(opts, "resume")->value;
    o.checkpoint = nn_arg(opts, "checkpoint")->value;
    const char *every = nn_arg(opts, "checkpoint-every")->value;
    if (every) {
        char *end;
        long n = strtol(every, &end, 10);
        if (end != every && (!strcmp(end, "e") || !strcmp(end, "epoch") || !strcmp(end, "epochs")))
            o.ckpt_epochs = 1;
        else if (*end || end == every)
            n = 0;
        if (n < 1)
            return nn_fail(e, NN_EUSAGE, "option '--checkpoint-every': expected N (steps) or Ne (epochs), got '%s'", every);
        o.ckpt_every = n;
    }
    stop_requested = 0;
    o.stop = &stop_requested;
    struct sigaction sa, old_int, old_term, old_usr1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* mpirun forwards SIGUSR1 to every rank without killing them a second
     * later as it does after SIGTERM (docs/DISTRIBUTED.md) */
    sigaction(SIGUSR1, &sa, &old_usr1);
    r = nn_train_run(&o, e);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    return r;
}
