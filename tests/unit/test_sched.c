/* test_sched.c - learning-rate schedules against PyTorch's lr_scheduler
 * (tests/unit/sched_ref.jsonl, written by gen_sched_ref.py with torch),
 * early stopping against Keras's rules, checkpoint state round trips, and
 * the spec's errors for train.lr_schedule / train.early_stopping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "schedule.h"
#include "spec.h"

#define REF "tests/unit/sched_ref.jsonl"

/* Parses a model whose "train" object is {train_extra} (validation split
 * 0.1, so val_ monitors apply); 0 or the error code, message in e. */
static int parse_model(const char *loss, double lr, const char *train_extra, nn_spec *s, nn_err *e)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"layers\": [{\"type\": \"dense\", \"units\": 1}], \"loss\": \"%s\","
             " \"optimizer\": {\"type\": \"sgd\", \"lr\": %.17g}, \"train\": {\"validation_split\": 0.1%s%s}}",
             loss, lr, *train_extra ? ", " : "", train_extra);
    memset(e, 0, sizeof *e);
    return nn_spec_parse(json, strlen(json), "m.json", s, e);
}

/* Every case of the reference file through the spec parser and the schedule;
 * each epoch's lr within a relative 1e-6 of PyTorch's (1e-12 absolute, for
 * zeros). */
TEST(sched_matches_pytorch)
{
    FILE *f = fopen(REF, "r");
    CHECK(f, "%s: cannot open (run from the repository root)", REF);
    char line[65536];
    int ncases = 0, kinds[NN_SCHED_COUNT] = {0}, warm[NN_SCHED_COUNT] = {0};
    while (fgets(line, sizeof line, f)) {
        cJSON *c = cJSON_Parse(line);
        if (!c)
            fclose(f);
        CHECK(c, "%s: line %d does not parse", REF, ncases + 1);
        char name[64];
        snprintf(name, sizeof name, "%s", cJSON_GetObjectItem(c, "name")->valuestring);
        double lr = cJSON_GetObjectItem(c, "lr")->valuedouble;
        int epochs = cJSON_GetObjectItem(c, "epochs")->valueint;
        char *sc = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "schedule"));
        char extra[2048];
        snprintf(extra, sizeof extra, "\"epochs\": %d, \"lr_schedule\": %s", epochs, sc);
        free(sc);
        nn_spec s;
        nn_err e;
        int r = parse_model("cross_entropy", lr, extra, &s, &e);
        if (r) {
            fclose(f);
            cJSON_Delete(c);
            nn_spec_free(&s);
        }
        CHECK(!r, "%s: the spec refused the case: %s", name, e.msg);
        nn_sched z;
        nn_sched_init(&z, &s.train.sched, s.opt.lr, s.train.epochs);
        kinds[s.train.sched.kind]++;
        warm[s.train.sched.kind] += s.train.sched.warmup > 0;
        const cJSON *ex = cJSON_GetObjectItem(c, "expect"), *mt = cJSON_GetObjectItem(c, "metrics");
        int ep = 0, bad = -1;
        double got = 0, want = 0;
        for (const cJSON *x = ex->child; x; x = x->next, ep++) {
            /* the optimiser's lr is a float32 in nnrun: the base is rounded once */
            got = nn_sched_lr(&z, ep);
            want = x->valuedouble * ((double)s.opt.lr / lr);
            if (bad < 0 && fabs(got - want) > 1e-6 * fabs(want) + 1e-12)
                bad = ep;
            if (mt)
                nn_sched_observe(&z, ep, cJSON_GetArrayItem(mt, ep)->valuedouble);
            if (bad >= 0)
                break;
        }
        nn_spec_free(&s);
        int n = cJSON_GetArraySize(ex);
        cJSON_Delete(c);
        if (bad >= 0)
            fclose(f);
        CHECK(bad < 0, "%s: epoch %d: lr %.17g, PyTorch's %.17g", name, bad, got, want);
        CHECK(n == epochs && n > 0, "%s: %d expected values for %d epochs", name, n, epochs);
        ncases++;
    }
    fclose(f);
    CHECK(ncases >= 20, "%s: only %d cases", REF, ncases);
    for (int k = NN_SCHED_CONSTANT; k < NN_SCHED_COUNT; k++)
        CHECK(kinds[k] >= 1 && warm[k] >= 1, "%s: no case (with warmup) of '%s'", REF, nn_sched_name((nn_sched_kind)k));
    return 0;
}

/* Keras's EarlyStopping: improvement when better by more than min_delta;
 * stop once `patience` epochs in a row did not improve (never after the
 * first epoch). */
TEST(sched_early_stopping_rules)
{
    nn_stop_spec sp = {.on = 1, .patience = 2, .min_delta = 0.01};
    nn_monitor_set(&sp.monitor, "val_loss", 0);
    nn_stopper st;
    nn_stop_init(&st, &sp);
    /* epoch:         1    2     3      4     5     6 */
    double v[] = {1.0, 0.9, 0.895, 0.85, 0.86, 0.845};
    int want[] = {NN_STOP_IMPROVED, NN_STOP_IMPROVED, NN_STOP_GO, NN_STOP_IMPROVED, NN_STOP_GO, NN_STOP_STOP};
    for (int i = 0; i < 6; i++) {
        int got = nn_stop_observe(&st, i + 1, v[i]);
        CHECK(got == want[i], "epoch %d (%g): %d, expected %d", i + 1, v[i], got, want[i]);
    }
    CHECK(st.best_epoch == 4 && st.best == 0.85 && st.wait == 2, "best epoch %d (%g), wait %d", st.best_epoch, st.best,
          st.wait);
    /* accuracy: higher is better; patience 0 stops at the first epoch that
     * does not improve, but not at epoch 1 */
    nn_stop_spec sa = {.on = 1, .patience = 0};
    nn_monitor_set(&sa.monitor, "accuracy", 0);
    CHECK(sa.monitor.maximize && sa.monitor.metric && !sa.monitor.val, "accuracy monitor flags");
    nn_stop_init(&st, &sa);
    CHECK(nn_stop_observe(&st, 1, NAN) == NN_STOP_GO, "a NaN first epoch must neither improve nor stop");
    CHECK(nn_stop_observe(&st, 2, 0.5) == NN_STOP_IMPROVED, "0.5 after nothing must improve");
    CHECK(nn_stop_observe(&st, 3, 0.6) == NN_STOP_IMPROVED, "0.6 > 0.5 must improve");
    CHECK(nn_stop_observe(&st, 4, 0.6) == NN_STOP_STOP, "an equal accuracy with patience 0 must stop");
    CHECK(st.best_epoch == 3, "best epoch %d", st.best_epoch);
    nn_monitor m;
    CHECK(nn_monitor_set(&m, "val_mae", 1) == 0 && !m.maximize && m.metric && m.val, "val_mae for regression");
    CHECK(nn_monitor_set(&m, "val_mae", 0) != 0, "val_mae for a classifier must be refused");
    CHECK(nn_monitor_set(&m, "accuracy", 1) != 0, "accuracy for regression must be refused");
    return 0;
}

/* The checkpoint state reads back to exactly the same numbers, and the
 * schedule continues identically. */
TEST(sched_state_round_trip)
{
    nn_spec s;
    nn_err e;
    int r = parse_model("cross_entropy", 0.1,
                        "\"epochs\": 40, \"lr_schedule\": {\"type\": \"plateau\", \"patience\": 1, \"factor\": 0.3, "
                        "\"cooldown\": 3}, \"early_stopping\": {\"patience\": 3, \"min_delta\": 0.001}",
                        &s, &e);
    CHECK(!r, "%s", e.msg);
    nn_sched a, b;
    nn_stopper sa, sb;
    nn_sched_init(&a, &s.train.sched, s.opt.lr, 40);
    nn_stop_init(&sa, &s.train.stop);
    char js[512], jt[512];
    for (int ep = 0; ep < 12; ep++) {
        double v = 1.0 / (1 + ep % 5) + ep * 1e-3 / 3;
        nn_sched_observe(&a, ep, v);
        nn_stop_observe(&sa, ep + 1, v);
        /* after every epoch: save, load into fresh state, compare */
        CHECK(nn_sched_state_json(&a, js, sizeof js) == 0 && nn_stop_state_json(&sa, jt, sizeof jt) == 0, "json");
        cJSON *x = cJSON_Parse(js), *y = cJSON_Parse(jt);
        nn_sched_init(&b, &s.train.sched, s.opt.lr, 40);
        nn_stop_init(&sb, &s.train.stop);
        r = nn_sched_state_load(&b, x, "c.ckpt", "schedule", &e) ||
            nn_stop_state_load(&sb, y, "c.ckpt", "early_stopping", 40, &e);
        cJSON_Delete(x);
        cJSON_Delete(y);
        CHECK(!r, "epoch %d: %s (%s / %s)", ep, e.msg, js, jt);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "epoch %d: the schedule state differs after a round trip: %s", ep, js);
        CHECK(memcmp(&sa, &sb, sizeof sa) == 0, "epoch %d: the early-stopping state differs: %s", ep, jt);
    }
    /* hostile values name the field */
    const char *bad[][2] = {
        {"{\"lr\":-1,\"best\":null,\"bad_epochs\":0,\"cooldown\":0}", "header extra.resume.schedule.lr: -1 is not"},
        {"{\"lr\":0.1,\"best\":null,\"bad_epochs\":0.5,\"cooldown\":0}", "schedule.bad_epochs: 0.5 is not an integer"},
        {"{\"lr\":0.1,\"best\":null,\"bad_epochs\":0,\"cooldown\":9}",
         "schedule.cooldown: 9 is not an integer from 0 to 3"},
        {"{\"lr\":0.1,\"bad_epochs\":0,\"cooldown\":0}", "schedule.best: required number is missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *x = cJSON_Parse(bad[i][0]);
        memset(&e, 0, sizeof e);
        r = nn_sched_state_load(&b, x, "c.ckpt", "schedule", &e);
        cJSON_Delete(x);
        CHECK(r == NN_EDATA && strstr(e.msg, bad[i][1]), "%s: got %d '%s', expected '%s'", bad[i][0], r, e.msg,
              bad[i][1]);
    }
    cJSON *y = cJSON_Parse("{\"best\":0.5,\"best_epoch\":41,\"wait\":0}");
    memset(&e, 0, sizeof e);
    r = nn_stop_state_load(&sb, y, "c.ckpt", "early_stopping", 40, &e);
    cJSON_Delete(y);
    CHECK(r == NN_EDATA && strstr(e.msg, "c.ckpt: header extra.resume.early_stopping.best_epoch: 41 is not an integer"),
          "best_epoch 41 of 40: %d '%s'", r, e.msg);
    nn_spec_free(&s);
    return 0;
}

/* The spec's errors: exit code 65, the file and the JSON path. */
TEST(sched_spec_errors)
{
    static const struct {
        const char *loss, *train, *msg;
    } cases[] = {
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"step\", \"step_size\": 2, \"gamma\": 1.5}",
         "m.json: train.lr_schedule.gamma: must be in (0, 1], got 1.5"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"step\", \"step_size\": 2, \"gamma\": 0}",
         "m.json: train.lr_schedule.gamma: must be in (0, 1], got 0"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"step\"}",
         "m.json: train.lr_schedule: a 'step' schedule needs \"step_size\""},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"step\", \"step_size\": 0}",
         "m.json: train.lr_schedule.step_size: 0 is out of range [1, 1e+06]"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"step\", \"step_size\": 2.5}",
         "m.json: train.lr_schedule.step_size: expected an integer, got 2.5"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"cosin\"}",
         "m.json: train.lr_schedule.type: unknown schedule 'cosin' (did you mean 'cosine'?)"},
        {"cross_entropy", "\"lr_schedule\": {}", "m.json: train.lr_schedule.type: required"},
        {"cross_entropy", "\"lr_schedule\": [1]", "m.json: train.lr_schedule: expected an object"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"cosine\", \"gamma\": 0.5}",
         "m.json: train.lr_schedule: unknown key 'gamma'"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"multistep\", \"milestones\": [3, 3]}",
         "m.json: train.lr_schedule.milestones[1]: 3 is not after the milestone before it (3)"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"multistep\", \"milestones\": []}",
         "m.json: train.lr_schedule.milestones: expected an array of 1 to 64 epochs"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"multistep\", \"milestones\": [2, \"x\"]}",
         "m.json: train.lr_schedule.milestones[1]: expected an integer"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"exponential\"}",
         "m.json: train.lr_schedule: a 'exponential' schedule needs \"gamma\""},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"cosine\", \"t_max\": 0}",
         "m.json: train.lr_schedule.t_max: 0 is out of range"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"cosine\", \"eta_min\": -1}",
         "m.json: train.lr_schedule.eta_min: -1 is out of range"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"plateau\", \"factor\": 1}",
         "m.json: train.lr_schedule.factor: must be in (0, 1), got 1"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"plateau\", \"threshold_mode\": \"relative\"}",
         "m.json: train.lr_schedule.threshold_mode: expected \"rel\" or \"abs\", got 'relative'"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"plateau\", \"monitor\": \"val_mae\"}",
         "m.json: train.lr_schedule.monitor: unknown value 'val_mae' (known: val_loss, val_accuracy, loss, accuracy)"},
        {"mse", "\"lr_schedule\": {\"type\": \"plateau\", \"monitor\": \"accuracy\"}",
         "m.json: train.lr_schedule.monitor: unknown value 'accuracy' (known: val_loss, val_mae, loss, mae)"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"constant\", \"warmup_start_factor\": 0.5}",
         "m.json: train.lr_schedule.warmup_start_factor: needs \"warmup_epochs\""},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"constant\", \"warmup_epochs\": 2, \"warmup_start_factor\": 0}",
         "m.json: train.lr_schedule.warmup_start_factor: must be in (0, 1], got 0"},
        {"cross_entropy", "\"lr_schedule\": {\"type\": \"constant\", \"warmup_epochs\": -1}",
         "m.json: train.lr_schedule.warmup_epochs: -1 is out of range"},
        {"cross_entropy", "\"early_stopping\": {\"patience\": -1}",
         "m.json: train.early_stopping.patience: -1 is out of range"},
        {"cross_entropy", "\"early_stopping\": {\"min_delta\": -0.1}",
         "m.json: train.early_stopping.min_delta: -0.1 is out of range"},
        {"cross_entropy", "\"early_stopping\": {\"monitor\": \"val_acc\"}",
         "m.json: train.early_stopping.monitor: unknown value 'val_acc'"},
        {"cross_entropy", "\"early_stopping\": {\"restore_best_weights\": 1}",
         "m.json: train.early_stopping.restore_best_weights: expected true or false"},
        {"cross_entropy", "\"early_stopping\": {\"patients\": 3}",
         "m.json: train.early_stopping: unknown key 'patients' (did you mean 'patience'?)"},
        {"cross_entropy", "\"early_stopping\": true", "m.json: train.early_stopping: expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_spec s;
        nn_err e;
        int r = parse_model(cases[i].loss, 0.1, cases[i].train, &s, &e);
        nn_spec_free(&s); /* also after a failure: the parse keeps what it read */
        CHECK(r == NN_EDATA && strstr(e.msg, cases[i].msg), "%s: got %d '%s', expected '%s'", cases[i].train, r, e.msg,
              cases[i].msg);
    }
    /* a val_ monitor without a validation split */
    const char *nosplit = "{\"layers\": [{\"type\": \"dense\", \"units\": 1}], \"train\": {\"early_stopping\": {}}}";
    nn_spec s;
    nn_err e = {0};
    int r = nn_spec_parse(nosplit, strlen(nosplit), "m.json", &s, &e);
    nn_spec_free(&s);
    CHECK(r == NN_EDATA && strstr(e.msg, "m.json: train.early_stopping.monitor: 'val_loss' needs a validation split"),
          "early stopping without a split: %d '%s'", r, e.msg);
    /* the defaults */
    r = parse_model("mse", 0.1, "\"lr_schedule\": {\"type\": \"plateau\"}, \"early_stopping\": {\"monitor\": \"mae\"}",
                    &s, &e);
    if (r)
        nn_spec_free(&s);
    CHECK(!r, "%s", e.msg);
    const nn_sched_spec *z = &s.train.sched;
    const nn_stop_spec *st = &s.train.stop;
    int ok = z->factor == 0.1 && z->patience == 10 && z->threshold == 1e-4 && !z->threshold_abs && z->cooldown == 0 &&
             z->min_lr == 0 && !strcmp(z->monitor.name, "val_loss") && !z->monitor.maximize && st->on && st->restore &&
             st->patience == 0 && st->min_delta == 0 && !strcmp(st->monitor.name, "mae") && !st->monitor.val;
    nn_spec_free(&s);
    CHECK(ok, "the defaults differ from PyTorch's ReduceLROnPlateau / Keras's EarlyStopping");
    return 0;
}
