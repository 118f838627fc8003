#!/usr/bin/env bash
# tests/reliability.sh - reliability tests of the ./nnrun binary: resuming,
# signals, crashes mid-run, divergence, corrupt model files, device memory.
#
# Prints one line per test, "PASS rel/NAME" or "FAIL rel/NAME: why" (details
# indented below a FAIL), then "N passed, N failed"; exits 1 when any failed.
# tests/run.sh runs it after tests/cli.sh. Fixtures are generated at run time
# into a temporary folder (removed at the end; NNRUN_TEST_KEEP=1 keeps it).
#
#   tests/reliability.sh             all tests (from any directory)
#   NNRUN=/path/nnrun tests/reliability.sh
#   NNRUN_TEST_TIMEOUT=300           seconds allowed for each nnrun call
#
#   resume/*   20 Iris epochs in one go == with --checkpoint-every 50 (steps)
#              then --resume, == with --checkpoint-every 3e then --resume
#              (model.bin byte-identical); the same with a plateau lr
#              schedule and early stopping that restores an earlier epoch, and
#              for RMSprop (centered, momentum) with clip_value, clip_norm and
#              label smoothing
#   signal/*   SIGINT during training: exit 130, a checkpoint, a message naming
#              it; resuming gives the model of an uninterrupted run; kill -9
#              leaves an existing model.bin untouched and no temporary files
#   nan/*      a diverging run exits 75 naming the loss and a layer
#   corrupt/*  bit flips at >= 200 offsets of a model.bin (every byte of the
#              24-byte fixed part, every 4th byte of the header JSON, a sample
#              of the tensor data and the CRC): eval and infer exit 65, never
#              crash; a sample of flips with the CRC recomputed (so the header
#              JSON and the tensor table are read): eval exits 0, 65 or 66
#   memory/*   a batch size no device can hold exits 69 naming the buffer and
#              suggesting a smaller --batch-size; one past the option's range
#              is a usage error (2)
# Needs bash, python3 (standard library only), gzip and coreutils; the signal
# and huge-batch tests need Fashion-MNIST (package dataset-fashion-mnist) and
# are reported as a FAIL without it.
PREFIX=rel
NEED_TOOLS="python3 timeout cmp"
. "$(dirname "$0")/lib.sh"

# same NAME A B: PASS when files A and B are byte-identical.
same() {
    if [ ! -f "$2" ] || [ ! -f "$3" ]; then
        fail "$1" "a model file is missing" "$(ls -la "$2" "$3" 2>&1)"
    elif cmp -s "$2" "$3"; then
        pass "$1"
    else
        fail "$1" "$(basename "$2") and $(basename "$3") differ" "$(cmp "$2" "$3" 2>&1)"
    fi
}
# bg OUT ERR ARGS...: starts nnrun ARGS in the background (BG = its pid).
bg() {
    local o=$1 e=$2
    shift 2
    "$NNRUN" "$@" </dev/null >"$o" 2>"$e" &
    BG=$!
}
# bg_wait: waits for it (at most $TMO seconds, then kill -9 and RC 124); sets RC.
bg_wait() {
    local i=0
    while kill -0 "$BG" 2>/dev/null && [ $i -lt $((TMO * 50)) ]; do
        sleep 0.02
        i=$((i + 1))
    done
    if kill -0 "$BG" 2>/dev/null; then
        kill -9 "$BG" 2>/dev/null
        wait "$BG" 2>/dev/null
        RC=124
    else
        wait "$BG" 2>/dev/null
        RC=$?
    fi
    BG=""
}
# wait_for FILE REGEX PID SECONDS: waits until FILE has a line matching REGEX;
# 1 when PID exits first or time runs out.
wait_for() {
    local i=0 n=$(($4 * 50))
    while [ $i -lt $n ]; do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.02
        i=$((i + 1))
    done
    return 1
}

# ------------------------------------------------------------ fixtures
cp "$ROOT/data/iris.csv" "$ROOT/data/iris_test.csv" "$T/"
python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
m["data"]["train"]["path"] = "iris.csv"
m["data"]["test"]["path"] = "iris_test.csv"
m["train"]["epochs"] = 20
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$ROOT/models/iris_mlp.json" "$T/iris.json"

# ======================================================= resume equivalence
# 105 samples, batch 16: 7 steps an epoch, 140 in all; checkpoints at steps
# 50 and 100 (the file keeps the last), or after epochs 3, 6 ... 18.
mkdir -p "$T/res"
nn train "$T/iris.json" --quiet --output "$T/res/full.bin"
if [ "$RC" != 0 ]; then
    fail resume/setup "training $T/iris.json failed ($(rc_text "$RC"))" "$ERR"
else
    nn train "$T/iris.json" --quiet --output "$T/res/steps_all.bin" --checkpoint-every 50 --checkpoint "$T/res/steps.ckpt"
    if [ "$RC" != 0 ] || [ ! -f "$T/res/steps.ckpt" ]; then
        fail resume/steps "training with --checkpoint-every 50 failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
    else
        same resume/checkpointing-changes-nothing "$T/res/full.bin" "$T/res/steps_all.bin"
        nn train "$T/iris.json" --quiet --output "$T/res/steps_resumed.bin" --resume "$T/res/steps.ckpt" \
            --checkpoint "$T/res/steps2.ckpt"
        if [ "$RC" != 0 ]; then
            fail resume/steps "--resume from the step-100 checkpoint failed ($(rc_text "$RC"))" "$ERR"
        else
            same resume/steps "$T/res/full.bin" "$T/res/steps_resumed.bin"
        fi
    fi
    nn train "$T/iris.json" --quiet --output "$T/res/ep_all.bin" --checkpoint-every 3e --checkpoint "$T/res/ep.ckpt"
    if [ "$RC" != 0 ] || [ ! -f "$T/res/ep.ckpt" ]; then
        fail resume/epochs "training with --checkpoint-every 3e failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
    else
        nn train "$T/iris.json" --quiet --output "$T/res/ep_resumed.bin" --resume "$T/res/ep.ckpt" \
            --checkpoint "$T/res/ep2.ckpt"
        if [ "$RC" != 0 ]; then
            fail resume/epochs "--resume from the epoch-18 checkpoint failed ($(rc_text "$RC"))" "$ERR"
        else
            same resume/epochs "$T/res/full.bin" "$T/res/ep_resumed.bin"
        fi
    fi
    # a model.bin is not a training checkpoint
    nn train "$T/iris.json" --quiet --output "$T/res/x.bin" --resume "$T/res/full.bin"
    if [ "$RC" = 65 ] && printf '%s' "$ERR" | grep -q 'not a training checkpoint'; then
        pass resume/model-bin-is-not-a-checkpoint
    else
        fail resume/model-bin-is-not-a-checkpoint "expected exit 65 and 'not a training checkpoint', got $(rc_text "$RC")" "$ERR"
    fi
fi

# ============== resume with an lr schedule and early stopping (issue 12)
# A plateau schedule (with warmup) and early stopping that stops after about
# 14 of 30 epochs, restoring an earlier epoch's weights (the Iris fixture of
# tests/cli.sh es/*): checkpoints after epochs 3, 6, 9, 12 (the file keeps the
# last), or every 40 steps (84 samples, batch 16: 6 steps an epoch; the file
# keeps one taken mid-epoch), then --resume: model.bin byte-identical, and
# the same early-stopping line.
es_model "$T/es.json"
nn train "$T/es.json" --output "$T/res/es_full.bin"
es_line=$(printf '%s\n' "$OUT" | grep '^early stopping after')
if [ "$RC" != 0 ] || [ -z "$es_line" ]; then
    fail resume/sched-setup "training $T/es.json failed or did not stop early ($(rc_text "$RC"))" "$ERR" "$OUT"
else
    for how in 3e 40; do
        nn train "$T/es.json" --quiet --output "$T/res/es_ck_$how.bin" --checkpoint-every "$how" --checkpoint "$T/res/es_$how.ckpt"
        if [ "$RC" != 0 ] || [ ! -f "$T/res/es_$how.ckpt" ]; then
            fail "resume/sched-$how" "training with --checkpoint-every $how failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
            continue
        fi
        same "resume/sched-checkpointing-changes-nothing-$how" "$T/res/es_full.bin" "$T/res/es_ck_$how.bin"
        nn train "$T/es.json" --output "$T/res/es_resumed_$how.bin" --resume "$T/res/es_$how.ckpt" --checkpoint "$T/res/es2.ckpt"
        if [ "$RC" != 0 ]; then
            fail "resume/sched-$how" "--resume from the --checkpoint-every $how checkpoint failed ($(rc_text "$RC"))" "$ERR"
        elif [ "$(printf '%s\n' "$OUT" | grep '^early stopping after')" != "$es_line" ]; then
            fail "resume/sched-$how-message" "the resumed run did not stop the same way" "uninterrupted: $es_line" "resumed: $OUT"
        else
            same "resume/sched-$how" "$T/res/es_full.bin" "$T/res/es_resumed_$how.bin"
        fi
    done
    # a checkpoint in the middle of epoch 1 (step 4 of 6), before early
    # stopping has a best epoch or the schedule a value, resumed for all 30
    nn train "$T/es.json" --quiet --epochs 1 --output "$T/res/es_e1.bin" --checkpoint-every 4 --checkpoint "$T/res/es_s4.ckpt"
    if [ "$RC" != 0 ] || [ ! -f "$T/res/es_s4.ckpt" ]; then
        fail resume/sched-step4 "one epoch with --checkpoint-every 4 failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
    else
        nn train "$T/es.json" --quiet --output "$T/res/es_resumed_s4.bin" --resume "$T/res/es_s4.ckpt" --checkpoint "$T/res/es3.ckpt"
        if [ "$RC" != 0 ]; then
            fail resume/sched-step4 "--resume from the step-4 checkpoint failed ($(rc_text "$RC"))" "$ERR"
        else
            same resume/sched-step4 "$T/res/es_full.bin" "$T/res/es_resumed_s4.bin"
        fi
    fi
fi

# RMSprop (centered, momentum: three state buffers), clip_value + clip_norm
# and label smoothing: checkpointed at step 100, resumed, byte-identical
python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
m["optimizer"] = {"type": "rmsprop", "lr": 0.005, "momentum": 0.5, "centered": True, "clip_norm": 1.0, "clip_value": 0.5}
m["loss"] = {"type": "cross_entropy", "label_smoothing": 0.1}
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$T/iris.json" "$T/rms.json"
nn train "$T/rms.json" --quiet --output "$T/res/rms_full.bin"
if [ "$RC" != 0 ]; then
    fail resume/rmsprop-clip "training $T/rms.json failed ($(rc_text "$RC"))" "$ERR"
else
    nn train "$T/rms.json" --quiet --output "$T/res/rms_all.bin" --checkpoint-every 50 --checkpoint "$T/res/rms.ckpt"
    if [ "$RC" != 0 ] || [ ! -f "$T/res/rms.ckpt" ]; then
        fail resume/rmsprop-clip "training with --checkpoint-every 50 failed or wrote no checkpoint ($(rc_text "$RC"))" "$ERR"
    elif ! grep -q optimizer.m1 "$T/res/rms.ckpt" || ! grep -q optimizer.m2 "$T/res/rms.ckpt" ||
        ! grep -q optimizer.m3 "$T/res/rms.ckpt"; then
        fail resume/rmsprop-clip "the checkpoint lacks one of optimizer.m1, m2, m3 (momentum, square and gradient averages)"
    else
        nn train "$T/rms.json" --quiet --output "$T/res/rms_resumed.bin" --resume "$T/res/rms.ckpt" \
            --checkpoint "$T/res/rms2.ckpt"
        if [ "$RC" != 0 ]; then
            fail resume/rmsprop-clip "--resume from the step-100 checkpoint failed ($(rc_text "$RC"))" "$ERR"
        else
            same resume/rmsprop-clip "$T/res/rms_full.bin" "$T/res/rms_resumed.bin"
        fi
    fi
fi

# ============================================================== signals
# A Fashion-MNIST subset: 1800 training samples, 8 epochs.
if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
m["data"]["train"]["limit"] = 2000
m["data"]["test"]["limit"] = 200
m["train"]["epochs"] = 8
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$ROOT/models/fashion_mlp.json" "$T/fm.json"
    mkdir -p "$T/sig"
    # the uninterrupted run, for comparison
    nn train "$T/fm.json" --quiet --output "$T/sig/full.bin" --checkpoint "$T/sig/full.ckpt"
    full_rc=$RC
    [ "$full_rc" = 0 ] || fail signal/setup "training $T/fm.json failed ($(rc_text "$RC"))" "$ERR"

    # SIGINT once the first epoch is done (or after 2 s)
    bg "$T/sig/out" "$T/sig/err" train "$T/fm.json" --output "$T/sig/int.bin" --checkpoint "$T/sig/int.ckpt" \
        --plot "$T/sig/int.png"
    wait_for "$T/sig/out" '^training ' $BG "$TMO"
    wait_for "$T/sig/out" '^epoch 1/' $BG 2
    kill -INT $BG 2>/dev/null
    bg_wait
    int_rc=$RC
    ERR=$(cat "$T/sig/err")
    if [ "$RC" = 130 ] && [ -f "$T/sig/int.ckpt" ] && [ ! -f "$T/sig/int.bin" ] &&
        printf '%s' "$ERR" | grep -Fq "$T/sig/int.ckpt"; then
        pass signal/sigint-writes-checkpoint
        nn train "$T/fm.json" --quiet --output "$T/sig/int.bin" --checkpoint "$T/sig/int2.ckpt" --resume "$T/sig/int.ckpt"
        if [ "$RC" != 0 ]; then
            fail signal/resume-after-sigint "--resume failed ($(rc_text "$RC"))" "$ERR"
        elif [ "$full_rc" = 0 ]; then
            same signal/resume-after-sigint "$T/sig/full.bin" "$T/sig/int.bin"
        fi
    else
        fail signal/sigint-writes-checkpoint "expected exit 130, a checkpoint, no model.bin and a message naming the checkpoint; got $(rc_text "$RC")" \
            "stderr: $ERR" "files: $(ls "$T/sig" | tr '\n' ' ')"
    fi
    # --plot: the interrupted run leaves the curves of the epochs it finished
    # (none when the signal came within epoch 1: then no PNG)
    if ! grep -q '^epoch 1/' "$T/sig/out"; then
        if [ "$int_rc" = 130 ] && [ ! -e "$T/sig/int.png" ]; then
            pass signal/sigint-leaves-plot
        else
            fail signal/sigint-leaves-plot "interrupted within epoch 1: expected exit 130 and no PNG; got $(rc_text "$int_rc"), $(ls -l "$T/sig/int.png" 2>&1)"
        fi
    elif [ "$int_rc" = 130 ] && python3 -c 'import struct,sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", d[16:24]) == (1000, 400) and d[-8:-4] == b"IEND"' "$T/sig/int.png" 2>/dev/null; then
        pass signal/sigint-leaves-plot
    else
        fail signal/sigint-leaves-plot "expected exit 130 and a 1000x400 PNG at $T/sig/int.png; got $(rc_text "$int_rc"), $(ls -l "$T/sig/int.png" 2>&1)"
    fi

    # kill -9 during a run: an existing model.bin stays as it was, nothing is left beside it
    mkdir -p "$T/k9/out"
    head -c 3000 /dev/urandom >"$T/k9/out/model.bin"
    cp "$T/k9/out/model.bin" "$T/k9/before.bin"
    bg "$T/k9/log" "$T/k9/err" train "$T/fm.json" --output "$T/k9/out/model.bin" --checkpoint "$T/k9/run.ckpt"
    wait_for "$T/k9/log" '^training ' $BG "$TMO"
    wait_for "$T/k9/log" '^epoch 1/' $BG 2
    kill -9 $BG 2>/dev/null
    bg_wait
    left=$(ls -A "$T/k9/out")
    if [ "$RC" != 137 ]; then
        fail signal/kill-9-keeps-model "the run was not killed (it ended with $(rc_text "$RC") first)" "$(cat "$T/k9/log" "$T/k9/err")"
    elif ! cmp -s "$T/k9/before.bin" "$T/k9/out/model.bin"; then
        fail signal/kill-9-keeps-model "the existing model.bin changed"
    elif [ "$left" != model.bin ]; then
        fail signal/kill-9-keeps-model "files left beside model.bin: $(printf '%s' "$left" | tr '\n' ' ')"
    else
        pass signal/kill-9-keeps-model
    fi
else
    fail signal/setup "Fashion-MNIST is not installed ($FASHION; package dataset-fashion-mnist)"
fi

# =========================================================== divergence
# Features around 1e8, mse, SGD with the largest allowed learning rate.
python3 -c 'import random,sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    f.write("a,b,c,y\n")
    for i in range(64):
        f.write("%g,%g,%g,%d\n" % (r.uniform(1e7, 1e8), r.uniform(1e7, 1e8), r.uniform(1e7, 1e8), i % 3))' "$T/big.csv"
cat >"$T/nan.json" <<'EOF'
{"name": "nan", "input": {"shape": [3]},
 "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 1}],
 "loss": "mse", "optimizer": {"type": "sgd", "lr": 100},
 "train": {"epochs": 5, "batch_size": 8, "seed": 1},
 "data": {"train": {"format": "csv", "path": "big.csv", "label": "y"}}}
EOF
nn train "$T/nan.json" --output "$T/nan.bin"
if [ "$RC" = 75 ] && printf '%s' "$ERR" | grep -q 'diverged' && printf '%s' "$ERR" | grep -q 'layers\[' &&
    [ ! -f "$T/nan.bin" ]; then
    pass nan/diverged-names-layer
else
    fail nan/diverged-names-layer "expected exit 75, 'diverged' and 'layers[' in the message and no model.bin; got $(rc_text "$RC")" "$ERR"
fi

# Features around 1e5: the loss overflows on the first step while every layer
# output is still finite; the message must say so instead of naming no place.
python3 -c 'import random,sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    f.write("a,b,c,y\n")
    for i in range(64):
        f.write("%g,%g,%g,%d\n" % (r.uniform(1e5, 1e6), r.uniform(1e5, 1e6), r.uniform(1e5, 1e6), i % 3))' "$T/big5.csv"
sed 's/big\.csv/big5.csv/' "$T/nan.json" >"$T/overflow.json"
nn train "$T/overflow.json" --output "$T/overflow.bin"
if [ "$RC" = 75 ] && printf '%s' "$ERR" | grep -q 'the loss itself overflowed' && [ ! -f "$T/overflow.bin" ]; then
    pass nan/loss-overflow-explained
else
    fail nan/loss-overflow-explained "expected exit 75 and 'the loss itself overflowed'; got $(rc_text "$RC")" "$ERR"
fi

# ===================================================== corrupt model.bin
nn train "$T/iris.json" --quiet --epochs 1 --output "$T/small.bin"
if [ "$RC" != 0 ]; then
    fail corrupt/setup "training the model to corrupt failed ($(rc_text "$RC"))" "$ERR"
else
    # flip.py MODE: writes one corrupted copy per offset to $T/corrupt/MODE/,
    # one bit flipped (a different bit at each offset); MODE crc also
    # recomputes the CRC, so the header JSON and tensor table are read.
    mkdir -p "$T/corrupt"
    python3 - "$T/small.bin" "$T/corrupt" <<'EOF'
import os, struct, sys, zlib
src, out = sys.argv[1], sys.argv[2]
d = open(src, "rb").read()
h = struct.unpack("<Q", d[16:24])[0]
dstart = (24 + h + 63) // 64 * 64
offs = set(range(24))                       # magic, version, reserved, header length
offs |= set(range(24, 24 + h, 4))           # header JSON
offs |= set(range(24 + h, dstart, 7))       # padding
offs |= set(range(dstart, len(d) - 4, 37))  # tensor data
offs |= set(range(len(d) - 4, len(d)))      # CRC
# with the CRC recomputed a run may get as far as opening the device: fewer
crc_offs = set(range(8, 24)) | set(range(24, 24 + h, 29)) | set(range(dstart, len(d) - 4, 151))
for mode in ("raw", "crc"):
    os.makedirs(os.path.join(out, mode), exist_ok=True)
    for o in sorted(offs if mode == "raw" else crc_offs):
        b = bytearray(d)
        b[o] ^= 1 << (o % 8)
        if mode == "crc":
            b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xffffffff)
        open(os.path.join(out, mode, "%05d" % o), "wb").write(bytes(b))
EOF
    nraw=$(ls "$T/corrupt/raw" | wc -l)
    bad=""
    nbad=0
    for f in "$T"/corrupt/raw/*; do
        for cmd in eval infer; do
            if [ $cmd = eval ]; then nn eval "$f"; else nn infer "$f" "$T/iris_test.csv"; fi
            if [ "$RC" != 65 ] || ! printf '%s' "$ERR" | grep -q '^nnrun: error: '; then
                nbad=$((nbad + 1))
                [ $nbad -le 5 ] && bad="$bad
offset $((10#$(basename "$f"))): nnrun $cmd: $(rc_text "$RC"): $(printf '%s' "$ERR" | head -n 2)"
            fi
        done
    done
    if [ "$nraw" -lt 200 ]; then
        fail corrupt/bit-flips "only $nraw offsets were tried (expected >= 200)"
    elif [ $nbad = 0 ]; then
        pass "corrupt/bit-flips ($nraw offsets: eval and infer exit 65)"
    else
        fail corrupt/bit-flips "$nbad of $((2 * nraw)) runs did not exit 65 with an error message" "$bad"
    fi
    # with a valid CRC the flip may be harmless (a weight, a name byte ...): 0 or
    # 65, or 66 when it changed the stored test data path; never a crash
    bad=""
    nbad=0
    ncrc=0
    for f in "$T"/corrupt/crc/*; do
        ncrc=$((ncrc + 1))
        nn eval "$f"
        if [ "$RC" != 0 ] && [ "$RC" != 65 ] && [ "$RC" != 66 ]; then
            nbad=$((nbad + 1))
            [ $nbad -le 5 ] && bad="$bad
offset $((10#$(basename "$f"))): nnrun eval: $(rc_text "$RC"): $(printf '%s' "$ERR" | head -n 2)"
        fi
    done
    if [ $nbad = 0 ]; then
        pass "corrupt/bit-flips-valid-crc ($ncrc offsets: eval exits 0, 65 or 66)"
    else
        fail corrupt/bit-flips-valid-crc "$nbad of $ncrc runs exited with something other than 0, 65 or 66" "$bad"
    fi
fi

# ========================================================= device memory
# A batch no device holds: the fashion MLP with a 1x1 conv (1024 filters) and
# global average pooling in front of it in place of the flatten keeps 1024*784
# floats a sample, ~180 GiB of activations for the batch of all 60,000
# training images that --batch-size 1048576 is clamped to; the parameters are
# small, so nothing big is allocated before the failure.
python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
m["layers"][0:1] = [{"type": "conv2d", "filters": 1024, "kernel": 1}, {"type": "global_avgpool"}]
del m["data"]["test"]
del m["train"]["validation_split"]
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$ROOT/models/fashion_mlp.json" "$T/wide.json"
if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    nn train "$T/wide.json" --batch-size 1048576 --epochs 1 --output "$T/wide.bin"
    if [ "$RC" = 69 ] && printf '%s' "$ERR" | grep -q 'batch 60000' && printf '%s' "$ERR" | grep -q 'MiB' &&
        printf '%s' "$ERR" | grep -q 'smaller --batch-size'; then
        pass memory/huge-batch-exit-69
    else
        fail memory/huge-batch-exit-69 "expected exit 69 naming the buffer, its size and 'smaller --batch-size'; got $(rc_text "$RC")" "$ERR"
    fi
else
    fail memory/huge-batch-exit-69 "Fashion-MNIST is not installed ($FASHION; package dataset-fashion-mnist)"
fi
nn train "$ROOT/models/fashion_mlp.json" --batch-size 2000000 --output "$T/huge.bin"
if [ "$RC" = 2 ] && printf '%s' "$ERR" | grep -q -- '--batch-size'; then
    pass memory/batch-size-out-of-range
else
    fail memory/batch-size-out-of-range "expected exit 2 naming --batch-size; got $(rc_text "$RC")" "$ERR"
fi

summary
