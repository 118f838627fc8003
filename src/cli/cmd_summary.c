/* nnrun summary MODEL.json|MODEL.bin - layers, shapes, parameters, FLOPs,
 * and an estimate of the device memory training needs at a batch size. */
#include <string.h>

#include "../model.h"
#include "../modelbin.h"
#include "../net.h"
#include "../util.h"
#include "cli.h"

static void human(double v, char *buf, size_t n)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

int nn_cmd_summary(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"batch-size", 1, "batch size for the memory estimate (default: train.batch_size)"},
        {"json", 0, "print one JSON object"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[2];
    int npos, r = nn_args_parse(argc, argv, opts, "summary", pos, 2, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        nn_print_help(stdout, &nn_cmds[4], opts);
        return 0;
    }
    if (npos != 1)
        return nn_fail(e, NN_EUSAGE, "nnrun summary: expected one MODEL.json or MODEL.bin");
    nn_spec s;
    nn_net net;
    memset(&net, 0, sizeof net);
    const char *path = pos[0];
    int vocab = 0;
    size_t pl = strlen(path);
    if ((pl > 4 && !strcmp(path + pl - 4, ".bin")) || nn_file_has_prefix(path, NN_MODELBIN_MAGIC)) { /* by content too */
        nn_modelbin c;
        if ((r = nn_modelbin_read(path, &c, e)))
            return r;
        r = nn_spec_parse(c.model_json, strlen(c.model_json), path, &s, e);
        if (!r)
            vocab = nn_model_stored_vocab(&s, c.nclasses);
        nn_modelbin_free(&c);
    } else {
        r = nn_spec_load(path, &s, e);
    }
    if (r)
        goto out;
    if (!s.has_input_shape) {
        r = nn_fail(e, NN_EDATA, "%s: input.shape is not given (training takes it from the data); add "
                                 "\"input\": {\"shape\": [...]} to see the summary", path);
        goto out;
    }
    if ((r = nn_net_build(&net, &s, &s.input, vocab, e)))
        goto out;
    long B = s.train.batch_size;
    if ((r = nn_arg_int(opts, "batch-size", 1, 1 << 20, &B, e)))
        goto out;
    /* memory: params + grads + optimiser state, activations + their grads, input */
    double nstates = s.opt.type == NN_OPT_SGD       ? (s.opt.momentum != 0 ? 1 : 0)
                     : s.opt.type == NN_OPT_RMSPROP ? 1 + (s.opt.momentum > 0) + (s.opt.centered != 0)
                                                    : 2;
    double act = 0, scratch = 0;
    for (int i = 0; i < net.nl; i++) {
        if (!net.L[i].type->alias)
            act += (double)nn_shape_size(&net.L[i].out_shape);
        scratch += (double)net.L[i].scratch;
    }
    double mem = 4.0 * ((double)net.nparams * (2 + nstates) + (double)net.nstate + (double)B * (2 * act + scratch + (double)net.in_dim));
    int json = nn_arg(opts, "json")->set;
    char b1[64], b2[32];
    if (json) {
        printf("{\"model\":");
        nn_json_str(stdout, s.name);
        printf(",\"input\":\"%s\",\"layers\":[", nn_shape_str(&net.in_shape, b1, sizeof b1));
    } else {
        printf("model %s  input %s\n", s.name, nn_shape_str(&net.in_shape, b1, sizeof b1));
        printf("%-3s %-16s %-16s %-18s %-16s %10s %10s\n", "#", "name", "type", "inputs", "output", "params", "FLOPs");
    }
    for (int i = 0; i < net.nl; i++) {
        nn_layer *L = &net.L[i];
        size_t np = 0;
        for (int p = 0; p < L->nparam; p++)
            np += L->param[p].n;
        char ins[128] = "";
        size_t o = 0;
        for (int k = 0; k < L->nin && o < sizeof ins; k++)
            o += (size_t)snprintf(ins + o, sizeof ins - o, "%s%s", k ? "," : "", L->in[k] < 0 ? "input" : net.L[L->in[k]].name);
        nn_shape_str(&L->out_shape, b1, sizeof b1);
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            nn_json_str(stdout, L->name);
            printf(",\"type\":\"%s\",\"inputs\":", L->type->name);
            nn_json_str(stdout, ins);
            printf(",\"output\":\"%s\",\"params\":%zu,\"flops\":%.0f}", b1, np, L->flops);
        } else {
            /* a fused activation ("activation" key) is shown as type+act */
            int fused = 0;
            for (const char *const *k = L->type->keys; k && *k; k++)
                fused |= !strcmp(*k, "activation");
            char t[40];
            snprintf(t, sizeof t, "%s%s%s", L->type->name, fused && L->act ? "+" : "",
                     fused && L->act ? nn_act_name(L->act) : "");
            human(L->flops, b2, sizeof b2);
            printf("%-3d %-16s %-16s %-18s %-16s %10zu %10s\n", i, L->name, t, ins, b1, np, b2);
        }
    }
    if (json) {
        printf("],\"parameters\":%zu,\"flops_per_sample\":%.0f,\"loss\":\"%s\",\"optimizer\":\"%s\",\"batch_size\":%ld,"
               "\"train_memory_bytes\":%.0f",
               net.ntrainable, net.flops, nn_loss_name(s.loss), nn_opt_name(s.opt.type), B, mem);
        if (s.label_smoothing > 0)
            nn_json_num(stdout, "label_smoothing", s.label_smoothing);
        if (s.opt.clip_value > 0)
            nn_json_num(stdout, "clip_value", s.opt.clip_value);
        if (s.opt.clip_norm > 0)
            nn_json_num(stdout, "clip_norm", s.opt.clip_norm);
        printf("}\n");
    } else {
        human(net.flops, b2, sizeof b2);
        printf("parameters %zu (%.2f MiB)  forward FLOPs/sample %s\n", net.ntrainable, net.ntrainable * 4.0 / 1048576, b2);
        printf("loss %s%s", nn_loss_name(s.loss), net.fused_softmax ? " (fused with the softmax)" : "");
        if (s.label_smoothing > 0)
            printf(" label_smoothing %g", s.label_smoothing);
        printf("  optimizer %s lr %g", nn_opt_name(s.opt.type), s.opt.lr);
        if (s.opt.type == NN_OPT_RMSPROP)
            printf(" alpha %g eps %g%s", s.opt.alpha, s.opt.eps, s.opt.centered ? " centered" : "");
        if ((s.opt.type == NN_OPT_RMSPROP || s.opt.type == NN_OPT_SGD) && s.opt.momentum > 0)
            printf(" momentum %g%s", s.opt.momentum, s.opt.nesterov ? " nesterov" : "");
        if (s.opt.weight_decay > 0)
            printf(" weight_decay %g", s.opt.weight_decay);
        if (s.opt.clip_value > 0)
            printf(" clip_value %g", s.opt.clip_value);
        if (s.opt.clip_norm > 0)
            printf(" clip_norm %g", s.opt.clip_norm);
        printf("\n");
        printf("training memory on the device at batch %ld: about %.1f MiB\n", B, mem / 1048576);
    }
out:
    nn_net_free(&net);
    nn_spec_free(&s);
    return r;
}
