#include <string.h>

#include "../device.h"
#include "cli.h"

static const char *type_name(cl_device_type t)
{
    return (t & CL_DEVICE_TYPE_GPU) ? "GPU" : (t & CL_DEVICE_TYPE_CPU) ? "CPU" : (t & CL_DEVICE_TYPE_ACCELERATOR) ? "ACCEL" : "OTHER";
}

int nn_cmd_devices(int argc, char **argv, nn_err *e)
{
    nn_opt opts[] = {
        {"json", 0, "print one JSON object per device"},
        {"help", 0, "show this help"},
        {NULL},
    };
    char *pos[1];
    int npos, r = nn_args_parse(argc, argv, opts, "devices", pos, 0, &npos, e);
    if (r)
        return r;
    if (nn_arg(opts, "help")->set) {
        nn_print_help(stdout, &nn_cmds[3], opts);
        return 0;
    }
    nn_dev_info all[64], def;
    int n;
    if ((r = nn_dev_list(all, 64, &n, e)))
        return r;
    nn_err ignore = {0};
    int have_def = nn_dev_select(NULL, &def, &ignore) == 0;
    for (int i = 0; i < n; i++) {
        nn_dev_info *d = &all[i];
        int is_def = have_def && def.device == d->device;
        if (nn_arg(opts, "json")->set) {
            printf("{\"index\":%d,\"default\":%s,\"name\":", i, is_def ? "true" : "false");
            nn_json_str(stdout, d->name);
            printf(",\"platform\":");
            nn_json_str(stdout, d->platform_name);
            printf(",\"vendor\":");
            nn_json_str(stdout, d->vendor);
            printf(",\"type\":\"%s\",\"version\":", type_name(d->type));
            nn_json_str(stdout, d->version);
            printf(",\"driver\":");
            nn_json_str(stdout, d->driver);
            printf(",\"memory_bytes\":%llu,\"compute_units\":%u}\n", (unsigned long long)d->global_mem,
                   d->compute_units);
        } else {
            printf("%s %d  %-5s %s  [%s, %s, %.1f GiB, %u compute units]\n", is_def ? "*" : " ", i, type_name(d->type),
                   d->name, d->platform_name, d->version, d->global_mem / 1073741824.0, d->compute_units);
        }
    }
    if (!have_def && ignore.msg[0])
        fprintf(stderr, "nnrun: note: %s\n", ignore.msg);
    return 0;
}
