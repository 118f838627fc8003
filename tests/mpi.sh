#!/usr/bin/env bash
# tests/mpi.sh - data-parallel training under Open MPI's mpirun (issue 13):
# 2 ranks on this host (loopback), on the Iris CSV MLP, a small batch-norm CNN
# on 600 Fashion-MNIST images and a streamed image folder. Checks that the
# ranks' weights are identical after every step (NNRUN_TEST_CHECK_SYNC=1),
# that accuracy matches the single-process run, reruns are bit-identical,
# --resume, a failing rank ending the job, SIGTERM through mpirun writing a
# checkpoint, the TCP transport, eval and bench. SKIPs when mpirun is missing.
PREFIX=mpi
. "$(dirname "$0")/lib.sh"

if ! command -v mpirun >/dev/null 2>&1; then
    skip all "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    summary
    exit 0
fi
MPIRUN=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_MCA_rmaps_base_oversubscribe=1
# `make test-asan`: Open MPI's components, unloaded by MPI_Finalize, leave
# allocations LeakSanitizer cannot attribute ("<unknown module>", ~120 KB per
# rank), so leak checking is off under mpirun only (memory errors and UBSan
# still end a run; nnrun's own leaks are checked by the other suites).
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"

# mpi NP [MPIRUN-OPTION...] -- NNRUN-ARGS...: like nn, under mpirun -np NP.
mpi() {
    local np=$1 opts=()
    shift
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    (cd "${NN_CWD:-.}" && exec timeout --foreground -k 10 "$TMO" "${MPIRUN[@]}" "${opts[@]}" -np "$np" "$NNRUN" "$@") \
        </dev/null >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}
# acc_of FILE: the test accuracy of a `train --json` run's output.
acc_of() { py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1]) if "\"test\"" in l][-1]["accuracy"])' "$1" 2>/dev/null; }
# close NAME A B TOL: |A - B| <= TOL
close() { py 'import sys; a, b, t = map(float, sys.argv[1:4]); assert abs(a - b) <= t' "$2" "$3" "$4" 2>/dev/null; }
same() {
    if [ ! -f "$2" ] || [ ! -f "$3" ]; then fail "$1" "$(basename "$2") or $(basename "$3") is missing"
    elif cmp -s "$2" "$3"; then pass "$1"
    else fail "$1" "$(basename "$2") and $(basename "$3") differ" "$(cmp "$2" "$3" 2>&1)"; fi
}

py 'import json,sys
m = json.load(open(sys.argv[1]))
for k in ("train", "test"): m["data"][k]["path"] = sys.argv[3] + "/data/" + m["data"][k]["path"].split("/")[-1]
m["train"]["epochs"] = 40
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$ROOT/models/iris_mlp.json" "$T/iris.json" "$ROOT"

# ------------------------------------------------------------- CSV MLP (Iris)
nn train "$T/iris.json" --json --output "$T/single.bin"
cp "$T/out" "$T/single.json"
[ "$RC" = 0 ] || fail setup "single-process Iris training failed ($(rc_text "$RC"))" "$ERR"

NNRUN_TEST_CHECK_SYNC=1 mpi 2 -- train "$T/iris.json" --json --output "$T/two.bin"
cp "$T/out" "$T/two.json"
WHY="exit $RC (NNRUN_TEST_CHECK_SYNC=1 compares the parameters' hash across ranks after every step)"
DETAIL="$ERR"
check csv/weights_identical_every_step eval '[ "$RC" = 0 ] && [ -f "$T/two.bin" ]'
WHY="expected one rank line per rank and one start event"
DETAIL="$OUT"
check csv/says_where_ranks_run eval 'grep -q "\"rank\":0,\"where\":\"rank 0 of 2 on" "$T/two.json" &&
    grep -q "\"rank\":1,\"where\":\"rank 1 of 2 on" "$T/two.json" && [ "$(grep -c "\"event\":\"start\"" "$T/two.json")" = 1 ]'
a1=$(acc_of "$T/single.json")
a2=$(acc_of "$T/two.json")
WHY="test accuracy: 1 process ${a1:-none}, 2 ranks ${a2:-none} (45 test rows: within 2 rows)"
check csv/accuracy_matches_single_process close x "${a1:--9}" "${a2:-9}" 0.045
mpi 2 -- train "$T/iris.json" --quiet --output "$T/two_again.bin"
same csv/rerun_bit_identical "$T/two.bin" "$T/two_again.bin"
mpi 2 --mca btl tcp,self -- train "$T/iris.json" --quiet --output "$T/two_tcp.bin"
[ "$RC" = 0 ] || fail tcp/train "training over --mca btl tcp,self failed ($(rc_text "$RC"))" "$ERR"
same tcp/same_weights_as_shared_memory "$T/two.bin" "$T/two_tcp.bin"

# the last batch of 105 rows in batches of 8 holds 1 row: rank 0's share is empty
NNRUN_TEST_CHECK_SYNC=1 mpi 2 -- train "$T/iris.json" --quiet --batch-size 8 --epochs 5 --output "$T/b8.bin"
WHY="exit $RC with batch 8 on 105 rows (an empty share)"
DETAIL="$ERR"
check csv/empty_share_of_last_batch eval '[ "$RC" = 0 ]'
# 3 ranks, batch 16 not divisible by 3
NNRUN_TEST_CHECK_SYNC=1 mpi 3 -- train "$T/iris.json" --json --output "$T/three.bin"
a3=$(acc_of "$T/out")
WHY="exit $RC, 3-rank accuracy ${a3:-none} vs ${a1:-none}"
DETAIL="$ERR"
check csv/three_ranks_uneven_shares eval '[ "$RC" = 0 ] && close x "${a1:--9}" "${a3:-9}" 0.045'

# only rank 0 writes: no stray files from other ranks, one line per epoch in the log
mpi 2 -- train "$T/iris.json" --quiet --output "$T/logged.bin" --log "$T/m.csv"
WHY="exit $RC; the metrics log has $(wc -l <"$T/m.csv" 2>/dev/null) lines (want 41)"
DETAIL="$ERR"
check csv/rank0_writes_the_log eval '[ "$RC" = 0 ] && [ "$(wc -l <"$T/m.csv")" = 41 ]'

# ------------------------------------------------------------------ eval
nn eval "$T/single.bin" --data "$ROOT/data/iris_test.csv" --json
e1=$OUT
mpi 2 -- eval "$T/single.bin" --data "$ROOT/data/iris_test.csv" --json
WHY="eval: 1 process '$e1', 2 ranks '$OUT'"
DETAIL="$ERR"
check eval/sharded_metrics_reduced eval '[ "$RC" = 0 ] && py "import json,sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert a[\"samples\"] == b[\"samples\"] == 45 and abs(a[\"accuracy\"] - b[\"accuracy\"]) < 1e-9 and abs(a[\"loss\"] - b[\"loss\"]) < 1e-5" "$e1" "$OUT"'

mpi 2 -- eval "$T/single.bin" --data "$ROOT/data/iris_test.csv" --min-accuracy 0.9999
WHY="a failed gate under mpirun: expected exit 1 and no MPI_ABORT, got $(rc_text "$RC")"
DETAIL="$ERR"
check eval/gate_fails_together eval '[ "$RC" = 1 ] && ! printf "%s" "$ERR" | grep -q MPI_ABORT'

# ---------------------------------------------------------------- resume
mpi 2 -- train "$T/iris.json" --quiet --output "$T/res_all.bin" --checkpoint-every 100 --checkpoint "$T/res.ckpt"
if [ "$RC" != 0 ] || [ ! -f "$T/res.ckpt" ]; then
    fail resume/checkpoint "2-rank training with --checkpoint-every 100 failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
else
    same resume/checkpointing_changes_nothing "$T/two.bin" "$T/res_all.bin"
    mpi 2 -- train "$T/iris.json" --quiet --output "$T/res_resumed.bin" --resume "$T/res.ckpt" --checkpoint "$T/res2.ckpt"
    [ "$RC" = 0 ] || fail resume/same_n "--resume with 2 ranks failed ($(rc_text "$RC"))" "$ERR"
    same resume/same_n_bit_identical "$T/two.bin" "$T/res_resumed.bin"
fi

# -------------------------------------------------------------- a failing rank
t0=$(date +%s)
NNRUN_TEST_FAIL_RANK=1 NNRUN_TEST_FAIL_STEP=20 mpi 2 -- train "$T/iris.json" --quiet --epochs 100000 --output "$T/fail.bin"
secs=$(($(date +%s) - t0))
WHY="expected exit 65 and 'rank 1: NNRUN_TEST_FAIL_RANK' within 30 s; got $(rc_text "$RC") after ${secs}s"
DETAIL="$ERR"
check failure/one_rank_ends_the_job eval '[ "$RC" = 65 ] && [ "$secs" -le 30 ] && printf "%s" "$ERR" | grep -q "rank 1: NNRUN_TEST_FAIL_RANK=1" && [ ! -f "$T/fail.bin" ]'
# a data error on one rank only (rank 1 reads a missing file)
t0=$(date +%s)
NNRUN_TEST_FAIL_RANK=0 NNRUN_TEST_FAIL_STEP=0 mpi 2 -- train "$T/iris.json" --quiet --output "$T/fail0.bin"
secs=$(($(date +%s) - t0))
WHY="rank 0 failing at step 0: expected exit 65 within 30 s; got $(rc_text "$RC") after ${secs}s"
check failure/rank0_fails eval '[ "$RC" = 65 ] && [ "$secs" -le 30 ] && printf "%s" "$ERR" | grep -q "rank 0: NNRUN_TEST_FAIL_RANK=0"'

# an error every rank hits (a missing data file): the job ends with its code
py 'import json,sys
m = json.load(open(sys.argv[1])); m["data"]["train"]["path"] = sys.argv[3]
json.dump(m, open(sys.argv[2], "w"))' "$T/iris.json" "$T/missing.json" "$T/no-such.csv"
t0=$(date +%s)
mpi 2 -- train "$T/missing.json" --quiet --output "$T/missing.bin"
secs=$(($(date +%s) - t0))
WHY="every rank missing its data: expected exit 66 and the file named within 30 s; got $(rc_text "$RC") after ${secs}s"
DETAIL="$ERR"
check failure/every_rank_fails eval '[ "$RC" = 66 ] && [ "$secs" -le 30 ] && printf "%s" "$ERR" | grep -q "nnrun: error: rank [01]: .*no-such.csv"'

# ------------------------------------------- SIGTERM through mpirun: a checkpoint
# mpirun forwards SIGTERM to the ranks and kills them odls_base_sigkill_timeout
# seconds later (1 by default): time for rank 0 to finish the step and write
rm -f "$T/sig.ckpt" "$T/sig.csv"
# (no `timeout` around mpirun here: it would signal the ranks' process group too)
"${MPIRUN[@]}" -np 2 "$NNRUN" train "$T/iris.json" --quiet --epochs 1000000 --output "$T/sig.bin" \
    --checkpoint "$T/sig.ckpt" --log "$T/sig.csv" </dev/null >"$T/sig.out" 2>&1 &
BG=$!
for _ in $(seq 120); do # until training runs: a few epochs in the log
    sleep 0.5
    [ "$(cat "$T/sig.csv" 2>/dev/null | wc -l)" -gt 5 ] && break
done
kill -TERM "$BG"
(sleep 60 && kill -9 "$BG" 2>/dev/null) </dev/null >/dev/null 2>&1 &
DOG=$!
wait "$BG"
RC=$?
kill "$DOG" 2>/dev/null
BG=""
ep=$(py 'import json,struct,sys
d = open(sys.argv[1], "rb").read(); H = struct.unpack("<Q", d[16:24])[0]
r = json.loads(d[24:24 + H])["extra"]["resume"]; print(r["epoch"])' "$T/sig.ckpt" 2>/dev/null)
WHY="mpirun exit $RC; checkpoint epoch '${ep:-none}' (want a checkpoint written on SIGTERM)"
DETAIL=$(cat "$T/sig.out")
check signal/sigterm_through_mpirun_writes_checkpoint eval '[ "$RC" != 0 ] && [ -n "$ep" ] && [ ! -f "$T/sig.bin" ]'
if [ -n "$ep" ]; then
    mpi 2 -- train "$T/iris.json" --quiet --epochs "$ep" --output "$T/sig_resumed.bin" --resume "$T/sig.ckpt" --checkpoint "$T/sig2.ckpt"
    WHY="--resume of the SIGTERM checkpoint (epoch $ep): $(rc_text "$RC")"
    DETAIL="$ERR"
    check signal/checkpoint_resumes eval '[ "$RC" = 0 ] && [ -f "$T/sig_resumed.bin" ]'
fi

# ----------------------------------- small batch-norm CNN on Fashion-MNIST (600)
if [ ! -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    skip cnn "Fashion-MNIST is not installed (dataset-fashion-mnist)"
else
    cat >"$T/cnn.json" <<JSON
{"name": "small-cnn", "input": {"shape": [1, 28, 28], "normalize": "auto"},
 "layers": [
   {"type": "conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
   {"type": "batchnorm"},
   {"type": "maxpool", "pool": 2},
   {"type": "conv2d", "filters": 8, "kernel": 3, "stride": 2, "activation": "relu"},
   {"type": "flatten"},
   {"type": "dense", "units": 10},
   {"type": "softmax"}],
 "loss": "cross_entropy",
 "optimizer": {"type": "adam", "lr": 0.003},
 "train": {"epochs": 4, "batch_size": 30, "seed": 2, "validation_split": 0.1},
 "data": {"train": {"format": "idx", "images": "$FASHION/train-images-idx3-ubyte.gz",
                    "labels": "$FASHION/train-labels-idx1-ubyte.gz", "limit": 600},
          "test": {"format": "idx", "images": "$FASHION/t10k-images-idx3-ubyte.gz",
                   "labels": "$FASHION/t10k-labels-idx1-ubyte.gz", "limit": 300}}}
JSON
    nn train "$T/cnn.json" --json --output "$T/cnn1.bin"
    c1=$(acc_of "$T/out")
    NNRUN_TEST_CHECK_SYNC=1 mpi 2 -- train "$T/cnn.json" --json --output "$T/cnn2.bin"
    c2=$(acc_of "$T/out")
    WHY="exit $RC; test accuracy 1 process ${c1:-none}, 2 ranks ${c2:-none} (300 images: within 0.05)"
    DETAIL="$ERR"
    check cnn/weights_identical_and_accuracy_matches eval '[ "$RC" = 0 ] && close x "${c1:--9}" "${c2:-9}" 0.05'
    # all-reduce buckets of 1 KB (a dozen, overlapping the backward pass) and
    # one piece after it: each element is summed in the same order either way
    NNRUN_BUCKET_KB=1 NNRUN_TEST_CHECK_SYNC=1 mpi 2 -- train "$T/cnn.json" --quiet --output "$T/cnn_b1.bin"
    [ "$RC" = 0 ] || fail cnn/buckets "training with NNRUN_BUCKET_KB=1 failed ($(rc_text "$RC"))" "$ERR"
    NNRUN_BUCKET_KB=0 mpi 2 -- train "$T/cnn.json" --quiet --output "$T/cnn_b0.bin"
    [ "$RC" = 0 ] || fail cnn/buckets "training with NNRUN_BUCKET_KB=0 failed ($(rc_text "$RC"))" "$ERR"
    same cnn/bucket_size_changes_nothing "$T/cnn_b1.bin" "$T/cnn_b0.bin"
    same cnn/overlapped_equals_one_piece "$T/cnn2.bin" "$T/cnn_b0.bin"
fi

# ------------------------------------------------------------------ bench
mpi 2 -- bench "$T/iris.json" --steps 5 --json
WHY="bench under mpirun: exit $RC; want ranks 2 and compute/all-reduce/exposed times per step"
DETAIL="$OUT$ERR"
check bench/compute_and_allreduce_per_step eval '[ "$RC" = 0 ] && py "import json,sys
b = json.loads(sys.argv[1])
assert b[\"ranks\"] == 2 and b[\"compute_ms_per_step\"] > 0
assert 0 <= b[\"allreduce_exposed_ms_per_step\"] <= b[\"allreduce_ms_per_step\"]" "$OUT"'
mpi 2 -- bench "$T/iris.json" --steps 5
WHY="bench text under mpirun: exit $RC"
check bench/text_line eval '[ "$RC" = 0 ] && printf "%s" "$OUT" | grep -q "ranks       2 (batch 16 each): compute .* ms/step, all-reduce .* ms/step (.* ms of it not hidden behind compute)"'

# ------------------------------------- a streamed image folder (each rank decodes its share)
py 'import os,random,sys
rnd = random.Random(7)
for split, n in (("train", 40), ("test", 12)):
    for cls in ("h", "v"):
        os.makedirs("%s/%s/%s" % (sys.argv[1], split, cls), exist_ok=True)
        for i in range(n):  # 12x12 grey PGM stripes, horizontal or vertical, with noise
            ph = rnd.randint(0, 3)
            on = lambda x, y: (((y if cls == "h" else x) + ph) // 2) % 2 == 0
            px = bytes(200 + rnd.randint(0, 40) if on(x, y) else rnd.randint(0, 40) for y in range(12) for x in range(12))
            open("%s/%s/%s/%02d.pgm" % (sys.argv[1], split, cls, i), "wb").write(b"P5\n12 12\n255\n" + px)' "$T/img"
cat >"$T/img.json" <<JSON
{"name": "stripes", "input": {"shape": [1, 12, 12], "normalize": "none"},
 "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "activation": "relu"},
            {"type": "global_avgpool"}, {"type": "dense", "units": 2}, {"type": "softmax"}],
 "optimizer": {"type": "adam", "lr": 0.03},
 "train": {"epochs": 8, "batch_size": 10, "seed": 3},
 "data": {"train": {"format": "images", "path": "$T/img/train"}, "test": {"format": "images", "path": "$T/img/test"}}}
JSON
NNRUN_RESIDENT_MAX=1 nn train "$T/img.json" --json --output "$T/img1.bin"
s1=$(acc_of "$T/out")
NNRUN_RESIDENT_MAX=1 NNRUN_TEST_CHECK_SYNC=1 mpi 2 -- train "$T/img.json" --json --output "$T/img2.bin"
s2=$(acc_of "$T/out")
WHY="exit $RC; streamed set: test accuracy 1 process ${s1:-none}, 2 ranks ${s2:-none} (24 images: within 2)"
DETAIL="$ERR"
check stream/weights_identical_and_accuracy_matches eval '[ "$RC" = 0 ] && close x "${s1:--9}" "${s2:-9}" 0.084'

summary
