/* nnrun export MODEL.bin MODEL.onnx: a file conversion (src/onnx.h). */
#include <string.h>

#include "../onnx.h"
#include "cli.h"

static const nn_cmd *find_cmd(const char *name)
{
    for (const nn_cmd *c = nn_cmds; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

/* Both commands: two positionals, --help, --quiet. */
static int convert(int argc, char **argv, const char *cmd, const char *what,
                   int (*fn)(const char *, const char *, nn_err *), nn_err *e)
{
    nn_opt opts[] = {
        {"quiet", 0, "print nothing on success"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[2];
    int npos, r = nn_args_parse(argc, argv, opts, cmd, pos, 2, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        nn_print_help(stdout, find_cmd(cmd), opts);
        return 0;
    }
    if (npos != 2)
        return nn_fail(e, NN_EUSAGE, "nnrun %s: expected %s (see 'nnrun %s --help')", cmd, what, cmd);
    if ((r = fn(pos[0], pos[1], e)))
        return r;
    if (!nn_arg(opts, "quiet")->set)
        printf("saved %s\n", pos[1]);
    return 0;
}

int nn_cmd_export(int argc, char **argv, nn_err *e)
{
    return convert(argc, argv, "export", "MODEL.bin and MODEL.onnx", nn_onnx_export, e);
}
