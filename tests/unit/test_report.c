/* test_report.c - nnrun eval's confusion matrix: the confusion_accum kernel
 * (cl/loss.cl) against a plain-C reference, for argmax over k outputs and
 * for one binary output (a probability or a logit), with NaN rows (no
 * prediction), accumulated over two launches as eval does per batch. */
#include <math.h>
#include <stdlib.h>

#include "tutil.h"

static nn_err E;

/* The reference: conf[y * (K + 1) + pred]; pred = K for a row with a NaN. */
static void ref_confusion(const double *out, const int *labels, int n, int k, int logits, long *conf)
{
    int K = k > 1 ? k : 2;
    for (int r = 0; r < n; r++) {
        int y = k > 1 ? labels[r] : labels[r] != 0, pred = 0, bad = 0;
        if (k == 1) {
            bad = isnan(out[r]);
            pred = out[r] >= (logits ? 0.0 : 0.5);
        } else {
            for (int j = 0; j < k; j++) {
                bad |= isnan(out[(size_t)r * k + j]);
                if (out[(size_t)r * k + j] > out[(size_t)r * k + pred])
                    pred = j;
            }
        }
        conf[y * (K + 1) + (bad ? K : pred)]++;
    }
}

TEST(eval_confusion_accum)
{
    NEED_DEV(d);
    static const struct {
        int n, k, logits;
    } cases[] = {{1, 3, 0}, {77, 3, 1}, {300, 10, 0}, {65, 2, 0}, {200, 1, 0}, {200, 1, 1}};
    ref_rng rng;
    ref_rng_seed(&rng, 12);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int n = cases[c].n, k = cases[c].k, K = k > 1 ? k : 2, logits = cases[c].logits;
        double *out = tu_rnd_vec(&rng, (size_t)n * k, logits ? -3 : 0, logits ? 3 : 1);
        int *labels = tu_xmalloc((size_t)n * sizeof *labels);
        for (int r = 0; r < n; r++) {
            labels[r] = (int)(ref_rng_uniform(&rng) * K);
            if (r % 7 == 3) /* a NaN output: no prediction */
                out[(size_t)r * k + (size_t)(r % k)] = NAN;
        }
        long *want = tu_xmalloc((size_t)K * (K + 1) * sizeof *want);
        int *got = tu_xmalloc((size_t)K * (K + 1) * sizeof *got);
        ref_confusion(out, labels, n, k, logits, want);
        ref_confusion(out, labels, n, k, logits, want);
        cl_mem o, l, cm;
        TRY(nn_buf_alloc(d, (size_t)n * k * sizeof(float), "out", &o, &E));
        TRY(nn_buf_alloc(d, (size_t)n * sizeof(int), "labels", &l, &E));
        TRY(nn_buf_alloc(d, (size_t)K * (K + 1) * sizeof(int), "conf", &cm, &E));
        TRY(tu_upload(o, 0, out, (size_t)n * k, &E));
        TRY(nn_buf_write(d, l, 0, (size_t)n * sizeof(int), labels, 1, &E));
        TRY(nn_buf_write(d, cm, 0, (size_t)K * (K + 1) * sizeof(int), got, 1, &E));
        for (int rep = 0; rep < 2; rep++)
            TRY(nn_launch(d, "confusion_accum", (size_t)n, 0, &E, 6, KMEM(o), KMEM(l), KINT(n), KINT(k), KINT(logits),
                          KMEM(cm)));
        TRY(nn_buf_read(d, cm, 0, (size_t)K * (K + 1) * sizeof(int), got, &E));
        long total = 0;
        for (int i = 0; i < K * (K + 1); i++) {
            CHECK(got[i] == want[i], "case %zu (n %d, k %d): conf[%d][%d] = %d, expected %ld", c, n, k, i / (K + 1),
                  i % (K + 1), got[i], want[i]);
            total += got[i];
        }
        CHECK(total == 2L * n, "case %zu: %ld counts for 2 x %d samples", c, total, n);
        nn_buf_free(&o);
        nn_buf_free(&l);
        nn_buf_free(&cm);
        free(out);
        free(labels);
        free(want);
        free(got);
    }
    return 0;
}
