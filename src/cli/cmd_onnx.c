/* nnrun export MODEL.bin MODEL.onnx, nnrun import MODEL.onnx MODEL.bin:
 * file conversions between model.bin and ONNX (src/onnx.h). */
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

/* Both commands: two positionals, --help, --quiet, --json; import also --loss. */
static int convert(int argc, char **argv, const char *cmd, const char *what, nn_err *e)
{
    int import = !strcmp(cmd, "import");
    nn_opt opts[] = {
        {"quiet", 0, "print nothing on success"},
        {"json", 0, "print {\"saved\": PATH} on success"},
        {"help", 0, "show this help"},
        {"loss", 1,
         "cross_entropy, binary_cross_entropy or mse: how infer reads the output (default: nnrun's metadata, else "
         "cross_entropy, or binary_cross_entropy for a one-unit sigmoid)"},
        {NULL},
    };
    if (!import)
        opts[3].name = NULL; /* export has no --loss */
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
    const char *loss = import ? nn_arg(opts, "loss")->value : NULL;
    if (loss && strcmp(loss, "cross_entropy") && strcmp(loss, "binary_cross_entropy") && strcmp(loss, "mse"))
        return nn_fail(e, NN_EUSAGE, "nnrun import: --loss must be cross_entropy, binary_cross_entropy or mse, not '%s'",
                       loss);
    if ((r = import ? nn_onnx_import(pos[0], pos[1], loss, e) : nn_onnx_export(pos[0], pos[1], e)))
        return r;
    if (nn_arg(opts, "json")->set) {
        printf("{\"saved\":");
        nn_json_str(stdout, pos[1]);
        printf("}\n");
    } else if (!nn_arg(opts, "quiet")->set) {
        printf("saved %s\n", pos[1]);
    }
    return 0;
}

int nn_cmd_export(int argc, char **argv, nn_err *e)
{
    return convert(argc, argv, "export", "MODEL.bin and MODEL.onnx", e);
}

int nn_cmd_import(int argc, char **argv, nn_err *e)
{
    return convert(argc, argv, "import", "MODEL.onnx and MODEL.bin", e);
}
