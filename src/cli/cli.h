/* cli.h - command-line parsing and the commands (one file each). */
#ifndef NN_CLI_H
#define NN_CLI_H

#include <stdio.h>

#include "../err.h"
#include "../util.h"

typedef struct nn_opt {
    const char *name;    /* "epochs" for --epochs */
    int has_arg;
    const char *help;
    const char *value;   /* set by nn_args_parse */
    int set;
} nn_opt;

typedef struct nn_cmd {
    const char *name;
    const char *usage;   /* "MODEL.json [options]" */
    const char *summary;
    int (*run)(int argc, char **argv, nn_err *e);
} nn_cmd;

/* Parses argv[1..] (argv[0] is the command name) into opts and positionals.
 * "--name value", "--name=value"; "--" ends options. 2 on a usage error. */
int nn_args_parse(int argc, char **argv, nn_opt *opts, const char *cmd, char **pos, int maxpos, int *npos,
                  nn_err *e);
nn_opt *nn_arg(nn_opt *opts, const char *name);
int nn_arg_int(nn_opt *opts, const char *name, long lo, long hi, long *out, nn_err *e);
int nn_arg_num(nn_opt *opts, const char *name, double lo, double hi, double *out, nn_err *e);
void nn_print_help(FILE *f, const nn_cmd *c, const nn_opt *opts);


int nn_cmd_train(int argc, char **argv, nn_err *e);
int nn_cmd_eval(int argc, char **argv, nn_err *e);
int nn_cmd_infer(int argc, char **argv, nn_err *e);
int nn_cmd_devices(int argc, char **argv, nn_err *e);
int nn_cmd_summary(int argc, char **argv, nn_err *e);
int nn_cmd_bench(int argc, char **argv, nn_err *e);
int nn_cmd_generate(int argc, char **argv, nn_err *e);
int nn_cmd_tune(int argc, char **argv, nn_err *e);
/* nnrun tune's question to bench (cmd_bench.c): the GEMM shapes of one
 * training step of `model` at batch `batch` (0: the model's), after the
 * warm-up, into out (at most NN_MAX_GEMM_SHAPES); nothing is printed. */
struct nn_gemm_shape;
int nn_bench_gemm_shapes(const char *model, long batch, const char *device, struct nn_gemm_shape *out, size_t *n,
                         nn_err *e);
int nn_cmd_export(int argc, char **argv, nn_err *e);
int nn_cmd_import(int argc, char **argv, nn_err *e);
/* nnrun bench --gemm (bench_gemm.c) */
int nn_bench_gemm(const char *device, int json, nn_err *e);

extern const nn_cmd nn_cmds[];

#endif
