/* fuzz_list.c - libFuzzer target: image list files (nn_imgset_list), the
 * `path,label` CSV of "list" data sources.
 *
 * The input is the list file. It is read with derived classes, with given
 * class names (integer labels by index), and with a limit. No image is opened.
 * Checked beyond memory safety: failures return 65/66/71 with a message; a
 * loaded list is consistent (paths set, labels within the classes, names set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/imgset.h"
#include "fuzz_common.h"

static fuzz_file file;

static void check(int ok, const char *what, int cfg, const nn_err *e)
{
    if (!ok) {
        fprintf(stderr, "fuzz_list: invariant violated (config %d): %s (code %d, message '%s')\n", cfg, what, e->code,
                e->msg);
        abort();
    }
}

static void load(int cfg, const nn_label_opts *lo, long limit)
{
    nn_imgset s;
    nn_err e;
    memset(&e, 0, sizeof e);
    int r = nn_imgset_list(file.path, lo, limit, &s, &e);
    if (fuzz_verbose())
        fprintf(stderr, "list[%d]: %d n=%zu nclasses=%d %s\n", cfg, r, r ? 0 : s.n, r ? 0 : s.nclasses, r ? e.msg : "");
    if (r) {
        check(r == 65 || r == 66 || r == 71, "failed with a code other than 65/66/71", cfg, &e);
        check(e.msg[0] != 0, "failed without a message", cfg, &e);
        nn_imgset_free(&s);
        return;
    }
    check(s.n >= 1 && s.paths && s.labels && s.nclasses >= 1 && s.class_names, "an inconsistent list", cfg, &e);
    check(limit <= 0 || s.n <= (size_t)limit, "more entries than the limit", cfg, &e);
    if (lo && lo->class_names)
        check(s.nclasses == lo->nclasses, "class count differs from the given names", cfg, &e);
    for (size_t i = 0; i < s.n; i++) {
        check(s.paths[i] != NULL, "a NULL path", cfg, &e);
        check(s.labels[i] >= 0 && s.labels[i] < s.nclasses, "a label out of range", cfg, &e);
    }
    for (int i = 0; i < s.nclasses; i++)
        check(s.class_names[i] != NULL, "a NULL class name", cfg, &e);
    nn_imgset_free(&s);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char *names[] = {"cat", "dog", "2"};
    fuzz_file_init(&file, "list.csv");
    fuzz_file_set(&file, data, size);
    load(0, NULL, 0);
    nn_label_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.task = NN_TASK_CLASSIFY;
    lo.class_names = names;
    lo.nclasses = 3;
    lo.by_index = 1;
    load(1, &lo, 0);
    load(2, NULL, 2);
    return 0;
}
