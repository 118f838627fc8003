/* test_dist.c - data-parallel pieces that one process can check: how a
 * global batch is shared among ranks, the no-op collectives of a plain run,
 * and the loss gradient's scale: two half batches, each scaled by the global
 * batch (nn_run.n_global), sum to the full batch's gradient. (The 2-rank runs
 * themselves are tests/mpi.sh.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dist.h"
#include "loss.h"
#include "tutil.h"

static nn_err E;

TEST(dist_shares_tile_the_batch)
{
    for (int n = 1; n <= 7; n++)
        for (size_t m = 0; m <= 50; m++) {
            size_t next = 0;
            int lo_cnt = 1 << 30, hi_cnt = -1;
            for (int r = 0; r < n; r++) {
                size_t lo;
                int cnt;
                nn_dist_share_of(m, r, n, &lo, &cnt);
                CHECK(lo == next && cnt >= 0, "m %zu, %d ranks: rank %d starts at %zu (want %zu), %d samples", m, n, r,
                      lo, next, cnt);
                next = lo + (size_t)cnt;
                lo_cnt = cnt < lo_cnt ? cnt : lo_cnt;
                hi_cnt = cnt > hi_cnt ? cnt : hi_cnt;
            }
            CHECK(next == m, "m %zu, %d ranks: the shares end at %zu", m, n, next);
            CHECK(hi_cnt - lo_cnt <= 1, "m %zu, %d ranks: shares of %d to %d samples", m, n, lo_cnt, hi_cnt);
        }
    return 0;
}

TEST(dist_plain_run_is_one_rank)
{
    const nn_dist *g = nn_dist_get();
    CHECK(!g->active && g->rank == 0 && g->size == 1, "a plain run: active %d, rank %d of %d", g->active, g->rank,
          g->size);
    float v[3] = {1.5f, -2, 3};
    int any = -1;
    size_t lo;
    int cnt;
    TRY(nn_dist_sum(v, 3, &E));
    TRY(nn_dist_any(1, &any, &E));
    nn_dist_share(37, &lo, &cnt);
    CHECK(v[0] == 1.5f && v[1] == -2 && v[2] == 3, "the sum of one rank changed the values");
    CHECK(any == 1, "any(1) is %d", any);
    CHECK(lo == 0 && cnt == 37 && nn_dist_max_share(37) == 37, "one rank's share of 37: [%zu, +%d)", lo, cnt);
    return 0;
}

/* The gradient of a batch of 8 == the sum of its halves' gradients, each
 * computed with n_global = 8 (what two ranks sum in the all-reduce). */
static int half_grads(const char *loss, int tdim)
{
    NEED_DEV(d);
    enum { N = 8, IN = 5 };
    char json[512];
    snprintf(json, sizeof json,
             "{\"input\":{\"shape\":[%d]},\"layers\":[{\"type\":\"dense\",\"units\":6,\"activation\":\"tanh\"},"
             "{\"type\":\"dense\",\"units\":3}%s],\"loss\":\"%s\"}",
             IN, strcmp(loss, "cross_entropy") ? "" : ",{\"type\":\"softmax\"}", loss);
    tu_net t;
    int rc = tu_net_make(&t, json, N, 1, &E);
    if (rc) {
        tu_net_free(&t);
        CHECK(0, "building the net: %s", E.msg);
    }
    nn_net *net = &t.net;
    TRY(nn_net_init_params(net, 3, &E));
    ref_rng rng = {4242};
    double *x = tu_rnd_vec_nz(&rng, (size_t)N * IN, -1, 1, 1e-3);
    double *ty = tu_rnd_vec(&rng, (size_t)N * 3, -1, 1);
    int lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (int)(ref_rng_next(&rng) % 3);
    nn_loss_bufs lb = {0};
    TRY(nn_loss_bufs_alloc(d, net, N, tdim, &lb, &E));
    size_t np = net->nparams;
    double *full = tu_xmalloc(np * sizeof(double)), *sum = tu_xmalloc(np * sizeof(double)),
           *part = tu_xmalloc(np * sizeof(double));
    memset(sum, 0, np * sizeof(double));
    for (int pass = 0; pass < 3; pass++) { /* 0: the whole batch; 1, 2: its halves */
        int lo = pass == 2 ? N / 2 : 0, n = pass ? N / 2 : N;
        nn_run run = {.dev = d, .n = n, .train = 1, .seed = 1, .n_global = pass ? N : 0};
        TRY(tu_upload(net->x_in, 0, x + (size_t)lo * IN, (size_t)n * IN, &E));
        if (tdim) {
            float tf[N * 3];
            for (int i = 0; i < n * 3; i++)
                tf[i] = (float)ty[(size_t)lo * 3 + (size_t)i];
            TRY(nn_buf_write(d, lb.target, 0, (size_t)n * 3 * sizeof(float), tf, 1, &E));
        } else
            TRY(nn_buf_write(d, lb.target, 0, (size_t)n * sizeof(int), lab + lo, 1, &E));
        TRY(nn_net_forward(net, &run, &E));
        TRY(nn_net_zero_grads(net, &E));
        TRY(nn_loss_run(net, &run, lb.target, lb.metrics, 1, &E));
        TRY(nn_net_backward(net, &run, &E));
        TRY(tu_download(net->grads, 0, pass ? part : full, np, &E));
        for (size_t i = 0; pass && i < np; i++)
            sum[i] += part[i];
    }
    double err = tu_rel_err(sum, full, np);
    nn_loss_bufs_free(&lb);
    tu_net_free(&t);
    free(x);
    free(ty);
    free(full);
    free(sum);
    free(part);
    CHECK(err < 1e-5, "%s: halves summed vs the whole batch: relative error %.3g", loss, err);
    return 0;
}

TEST(dist_half_batches_sum_to_the_batch_gradient_ce) { return half_grads("cross_entropy", 0); }
TEST(dist_half_batches_sum_to_the_batch_gradient_mse) { return half_grads("mse", 3); }
