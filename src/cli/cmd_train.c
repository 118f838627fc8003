#include <stdlib.h>
#include <unistd.h>

#include "../train.h"
#include "cli.h"

int nn_cmd_train(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"epochs", 1, "number of epochs (overrides train.epochs)"},
        {"batch-size", 1, "samples per step (overrides train.batch_size)"},
        {"lr", 1, "learning rate (overrides optimizer.lr)"},
        {"seed", 1, "random seed (overrides train.seed)"},
        {"output", 1, "where to write model.bin (overrides output)"},
        {"device", 1, "OpenCL device: index, gpu, cpu or a name substring (default: $NNRUN_DEVICE, else a GPU)"},
        {"log", 1, "write per-epoch metrics to this CSV file"},
        {"json", 0, "print JSON lines (start, epoch, test, saved events)"},
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
    if ((r = nn_arg_int(opts, "seed", 0, 0x7fffffffffffffffL, &v, e)))
        return r;
    if (nn_arg(opts, "seed")->set)
        o.seed = v;
    o.output = nn_arg(opts, "output")->value;
    o.device = nn_arg(opts, "device")->value;
    o.log = nn_arg(opts, "log")->value;
    o.json = nn_arg(opts, "json")->set;
    o.quiet = nn_arg(opts, "quiet")->set;
    o.progress = !o.quiet && !o.json && isatty(2) && isatty(1);
    return nn_train_run(&o, e);
}
