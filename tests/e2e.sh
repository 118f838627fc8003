#!/usr/bin/env bash
# tests/e2e.sh - end-to-end tests of image-folder/list data, augmentation,
# graphs (residual add), and text models with generation. Generated data only.
PREFIX=e2e
. "$(dirname "$0")/lib.sh"

# ------------------------------------------------------------ image folders
# Three classes of 16x16-ish RGB images (sizes vary: resizing is exercised):
# horizontal stripes, vertical stripes, and a centred square.
py 'import os,random,struct,sys,zlib
d = sys.argv[1]
def png(path, w, h, px):
    def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    raw = b"".join(b"\0" + bytes(v for x in range(w) for v in px(x, y)) for y in range(h))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
rnd = random.Random(5)
rows = []
for split, n in (("train", 40), ("test", 12)):
    for cls in ("hstripes", "vstripes", "square"):
        os.makedirs("%s/%s/%s" % (d, split, cls), exist_ok=True)
        for i in range(n):
            w, h = rnd.choice((16, 20, 24)), rnd.choice((16, 18, 24))
            ph, col = rnd.randint(0, 3), [rnd.randint(120, 255) for _ in range(3)]
            def px(x, y, cls=cls):
                if cls == "hstripes": on = ((y + ph) // 2) % 2 == 0
                elif cls == "vstripes": on = ((x + ph) // 2) % 2 == 0
                else: on = abs(x - w / 2) < w / 4 and abs(y - h / 2) < h / 4
                noise = rnd.randint(0, 40)
                return [min(255, c + noise) if on else noise for c in col]
            p = "%s/%s/%s/%02d.png" % (d, split, cls, i)
            png(p, w, h, px)
            if split == "train": rows.append("%s/%02d.png,%s" % (cls, i, cls))
open(d + "/train/list.csv", "w").write("path,label\n" + "\n".join(rows) + "\n")' "$T/img"

cat >"$T/cnn.json" <<JSON
{"name": "shapes", "input": {"shape": [3, 16, 16], "normalize": "none"},
 "layers": [
   {"type": "conv2d", "filters": 8, "kernel": 3, "padding": "same", "activation": "relu"},
   {"type": "maxpool", "pool": 2},
   {"type": "conv2d", "filters": 8, "kernel": 3, "padding": "same", "activation": "relu"},
   {"type": "global_avgpool"},
   {"type": "dense", "units": 3},
   {"type": "softmax"}],
 "optimizer": {"type": "adam", "lr": 0.01},
 "train": {"epochs": 12, "batch_size": 16, "seed": 3},
 "data": {"train": {"format": "images", "path": "img/train", "augment": {"flip_horizontal": true, "translate": 1}},
          "test": {"format": "images", "path": "img/test"}}}
JSON
nn train "$T/cnn.json" --output "$T/cnn.bin" --json
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2]["accuracy"])' "$T/out" 2>/dev/null)
WHY="exit $RC, test accuracy ${acc:-none} (want >= 0.9 on 36 generated images)"
DETAIL="$ERR"
check images/folder_cnn_learns eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.9" "${acc:--1}"'

nn infer "$T/cnn.bin" "$T/img/test/square" --top 2
WHY="exit $RC; expected 12 lines, most of them 'square'"
DETAIL="$OUT$ERR"
check images/infer_folder eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 12 ] &&
    [ "$(printf "%s\n" "$OUT" | grep -c "  square ")" -ge 10 ]'

nn eval "$T/cnn.bin" --data "$T/img/test" --min-accuracy 0.9
WHY="exit $RC: eval --data FOLDER with the gate"
DETAIL="$OUT$ERR"
check images/eval_folder test "$RC" = 0

# the same seed gives the same model; augmentation and the seed both matter
nn train "$T/cnn.json" --output "$T/cnn2.bin" --quiet
WHY="exit $RC, or two runs with the same seed differ"
check images/augment_deterministic eval '[ "$RC" = 0 ] && cmp -s "$T/cnn.bin" "$T/cnn2.bin"'
nn train "$T/cnn.json" --output "$T/cnn3.bin" --quiet --seed 4
WHY="exit $RC, or a different seed gave the same model"
check images/seed_changes_model eval '[ "$RC" = 0 ] && ! cmp -s "$T/cnn.bin" "$T/cnn3.bin"'
sed 's/"augment": {"flip_horizontal": true, "translate": 1}/"augment": {}/' "$T/cnn.json" >"$T/noaug.json"
nn train "$T/noaug.json" --output "$T/noaug.bin" --quiet
WHY="exit $RC, or training without augmentation gave the same model as with it"
check images/augment_has_effect eval '[ "$RC" = 0 ] && ! cmp -s "$T/cnn.bin" "$T/noaug.bin"'

# streamed from disk (a tiny resident limit) == resident on the device
NNRUN_RESIDENT_MAX=1 nn train "$T/cnn.json" --output "$T/stream.bin" --quiet
WHY="exit $RC, or the streamed run's model differs from the resident run's"
DETAIL="$ERR"
check images/streamed_equals_resident eval '[ "$RC" = 0 ] && cmp -s "$T/cnn.bin" "$T/stream.bin"'

# a list file gives the same samples (in list order, not folder order)
sed 's|"format": "images", "path": "img/train"|"format": "list", "path": "img/train/list.csv"|' "$T/cnn.json" >"$T/list.json"
nn train "$T/list.json" --output "$T/list.bin" --json
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2]["accuracy"])' "$T/out" 2>/dev/null)
WHY="exit $RC, test accuracy ${acc:-none} with a list source (want >= 0.9)"
DETAIL="$ERR"
check images/list_source eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.9" "${acc:--1}"'

# a residual graph with batch norm trains and infers
cat >"$T/res.json" <<JSON
{"name": "res", "input": {"shape": [3, 16, 16]},
 "layers": [
   {"type": "conv2d", "name": "c0", "filters": 8, "kernel": 3, "padding": "same"},
   {"type": "batchnorm"}, {"type": "relu", "name": "r0"},
   {"type": "conv2d", "filters": 8, "kernel": 3, "padding": "same"},
   {"type": "batchnorm", "name": "b1"},
   {"type": "add", "inputs": ["b1", "r0"]}, {"type": "relu"},
   {"type": "global_avgpool"}, {"type": "dense", "units": 3}, {"type": "softmax"}],
 "optimizer": {"type": "adam", "lr": 0.01},
 "train": {"epochs": 10, "batch_size": 16, "seed": 1},
 "data": {"train": {"format": "images", "path": "img/train"}, "test": {"format": "images", "path": "img/test"}}}
JSON
nn train "$T/res.json" --output "$T/res.bin" --json
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2]["accuracy"])' "$T/out" 2>/dev/null)
WHY="exit $RC, test accuracy ${acc:-none} for the residual graph (want >= 0.8)"
DETAIL="$ERR"
check graph/residual_bn_learns eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.8" "${acc:--1}"'
nn summary "$T/res.json"
WHY="summary of the graph should list add_1 with inputs b1,r0"
DETAIL="$OUT$ERR"
check graph/summary_inputs eval '[ "$RC" = 0 ] && printf "%s" "$OUT" | grep -q "add_1 .* b1,r0 "'
# an add of mismatched shapes names both layers
sed 's/{"type": "add", "inputs": \["b1", "r0"\]}/{"type": "add", "inputs": ["b1", "c0"]}, {"type": "add", "inputs": ["b1", "input"]}/' "$T/res.json" >"$T/resbad.json"
nn train "$T/resbad.json" --output "$T/x.bin"
WHY="exit $RC; expected 65 naming b1 and input with their shapes"
DETAIL="$ERR"
check graph/shape_mismatch eval '[ "$RC" = 65 ] && printf "%s" "$ERR" | grep -q "b1" && printf "%s" "$ERR" | grep -q "\[3, 16, 16\]"'

# ----------------------------------------------------------------- text
py 'import sys; open(sys.argv[1], "w").write("the cat sat on the mat. " * 120)' "$T/cat.txt"
cat >"$T/lstm.json" <<JSON
{"name": "cat-lstm",
 "layers": [{"type": "embedding", "input_dim": "vocab", "output_dim": 16},
            {"type": "lstm", "units": 48, "return_sequences": true},
            {"type": "dense", "units": "vocab"}, {"type": "softmax"}],
 "optimizer": {"type": "adam", "lr": 0.01},
 "train": {"epochs": 60, "batch_size": 8, "seed": 1, "validation_split": 0.1},
 "data": {"train": {"format": "text", "path": "cat.txt", "sequence_length": 64}}}
JSON
nn train "$T/lstm.json" --output "$T/lstm.bin" --json
bpc=$(py 'import json,sys
e = [json.loads(l) for l in open(sys.argv[1])]
ep = [x for x in e if x["event"] == "epoch"]
assert all("val_bits_per_char" in x and abs(x["val_bits_per_char"] - x["val_loss"] / 0.6931471805599453) < 1e-3 for x in ep)
print(ep[-1]["val_bits_per_char"])' "$T/out" 2>/dev/null)
WHY="exit $RC, final val bits/char ${bpc:-missing} (want < 0.3 on a repeated sentence; val_bits_per_char = val_loss/ln 2 in every epoch event)"
DETAIL="$ERR"
check text/lstm_learns eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) < 0.3" "${bpc:--1}"'
# prompt + generated text stay within one window of 64 (no sliding context)
nn generate "$T/lstm.bin" --prompt "the cat" --length 40 --temperature 0
WHY="greedy generation should continue the memorised sentence exactly; got: $OUT"
DETAIL="$ERR"
check text/lstm_regenerates eval '[ "$RC" = 0 ] && [ "$OUT" = "the cat sat on the mat. the cat sat on the mat." ]'
# RMSprop with clip_norm (what RNNs want) and label smoothing on one label
# per position: the loss settles at smoothing's floor, the text is learnt
py 'import json,sys
m = json.load(open(sys.argv[1]))
m["loss"] = {"type": "cross_entropy", "label_smoothing": 0.1}
m["optimizer"] = {"type": "rmsprop", "lr": 0.005, "clip_norm": 1.0}
m["train"]["epochs"] = 30
json.dump(m, open(sys.argv[2], "w"))' "$T/lstm.json" "$T/lstm_rms.json"
nn train "$T/lstm_rms.json" --output "$T/lstm_rms.bin" --quiet
r1=$RC
nn generate "$T/lstm_rms.bin" --prompt "the cat" --length 40 --temperature 0
WHY="exits $r1/$RC; the LSTM trained with rmsprop + clip_norm + label smoothing should regenerate the sentence; got: $OUT"
DETAIL="$ERR"
check text/lstm_rmsprop_clip_smoothing eval '[ "$r1$RC" = 00 ] && [ "$OUT" = "the cat sat on the mat. the cat sat on the mat." ]'
# the stored vocabulary sizes the "vocab" layers of a text model.bin in summary too
nn summary "$T/lstm.bin"
WHY="summary of a text model.bin: $(rc_text "$RC")"
DETAIL="$ERR"
check text/summary_bin eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "^parameters "'
# eval --data with a text file: no data source reads it that way; the message
# says what eval --data takes (it used to say "not trained on CSV")
nn eval "$T/lstm.bin" --data "$T/cat.txt"
WHY="$(rc_text "$RC"); expected 2 naming the file, the training format 'text' and what --data takes"
DETAIL="$ERR"
check text/eval_data_message eval '[ "$RC" = 2 ] && printf "%s" "$ERR" | grep -q "cat.txt: eval cannot read this file" &&
    printf "%s" "$ERR" | grep -q "format .text." && printf "%s" "$ERR" | grep -q "leave out --data"'

cat >"$T/gpt.json" <<JSON
{"name": "cat-gpt",
 "layers": [{"type": "embedding", "name": "e", "input_dim": "vocab", "output_dim": 32, "positional": true},
            {"type": "layernorm"}, {"type": "attention", "name": "a", "heads": 2, "causal": true},
            {"type": "add", "name": "r", "inputs": ["a", "e"]},
            {"type": "layernorm"}, {"type": "dense", "units": 64}, {"type": "gelu"}, {"type": "dense", "name": "f", "units": 32},
            {"type": "add", "inputs": ["f", "r"]},
            {"type": "layernorm"}, {"type": "dense", "units": "vocab"}, {"type": "softmax"}],
 "optimizer": {"type": "adam", "lr": 0.005},
 "train": {"epochs": 60, "batch_size": 8, "seed": 1, "validation_split": 0.1},
 "data": {"train": {"format": "text", "path": "cat.txt", "sequence_length": 64}}}
JSON
nn train "$T/gpt.json" --output "$T/gpt.bin" --quiet
WHY="exit $RC training the small transformer"
DETAIL="$ERR"
check text/transformer_trains test "$RC" = 0
nn generate "$T/gpt.bin" --prompt "the cat" --length 40 --temperature 0
WHY="the transformer should regenerate the memorised sentence greedily; got: $OUT"
DETAIL="$ERR"
check text/transformer_regenerates eval '[ "$RC" = 0 ] && [ "$OUT" = "the cat sat on the mat. the cat sat on the mat." ]'

nn generate "$T/lstm.bin" --prompt "the" --length 60 --temperature 1.2 --seed 7
a=$OUT
nn generate "$T/lstm.bin" --prompt "the" --length 60 --temperature 1.2 --seed 7
WHY="the same seed must give the same text"
check text/generate_reproducible eval '[ "$RC" = 0 ] && [ "$a" = "$OUT" ] && [ ${#OUT} = 63 ]'
nn generate "$T/lstm.bin" --prompt "the" --length 5 --json --top-k 3
WHY="--json: one object per byte with token, id, probability"
DETAIL="$OUT$ERR"
check text/generate_json eval '[ "$RC" = 0 ] && py "import json,sys
d = [json.loads(l) for l in sys.argv[1].splitlines()]
assert len(d) == 5 and all(set(x) >= {\"token\", \"id\", \"probability\"} and 0 < x[\"probability\"] <= 1 for x in d)" "$OUT"'

nn generate "$T/lstm.bin" --prompt "the DOG"
WHY="exit $RC; a prompt byte outside the vocabulary must fail with 65 naming it"
DETAIL="$ERR"
check text/bad_prompt eval '[ "$RC" = 65 ] && printf "%s" "$ERR" | grep -q "not in the model"'
nn generate "$T/lstm.bin" --prompt ""
WHY="exit $RC; an empty prompt is a usage error (2)"
check text/empty_prompt test "$RC" = 2
nn generate "$T/cnn.bin" --prompt "x"
WHY="exit $RC; generate on an image model must refuse (2)"
DETAIL="$ERR"
check text/generate_not_text_model eval '[ "$RC" = 2 ] && printf "%s" "$ERR" | grep -q "not a text model"'
: >"$T/empty.txt"
sed 's/cat.txt/empty.txt/' "$T/lstm.json" >"$T/empty.json"
nn train "$T/empty.json" --output "$T/x.bin"
WHY="exit $RC; an empty corpus must fail with 65"
DETAIL="$ERR"
check text/empty_corpus eval '[ "$RC" = 65 ] && printf "%s" "$ERR" | grep -q "empty"'
printf 'short' >"$T/short.txt"
sed 's/cat.txt/short.txt/' "$T/lstm.json" >"$T/short.json"
nn train "$T/short.json" --output "$T/x.bin"
WHY="exit $RC; a corpus shorter than one sequence must fail with 65"
DETAIL="$ERR"
check text/short_corpus eval '[ "$RC" = 65 ] && printf "%s" "$ERR" | grep -q "sequence_length"'

# ---------------------------------------------------------- time series
# models/sunspots_lstm.json (bundled NOAA yearly sunspot numbers): the test
# years 1969-2008 must be predicted with less than half the mse of the
# persistence forecast (next year = this year); its denormalize output keeps
# the loss in sunspot units. Without denormalize the same net is far worse.
nn train "$ROOT/models/sunspots_lstm.json" --output "$T/sun.bin" --json
mse=$(py 'import json,sys
print([x for x in map(json.loads, open(sys.argv[1])) if x["event"] == "test"][0]["loss"])' "$T/out" 2>/dev/null)
persist=$(py 'import csv,sys
x = [float(r["sunspots"]) for r in csv.DictReader(open(sys.argv[1]))]
print(sum((x[t] - x[t - 1]) ** 2 for t in range(22, len(x))) / (len(x) - 22))' "$ROOT/data/sunspots_test.csv")
WHY="exit $RC, test mse ${mse:-none} vs persistence $persist (want < half)"
DETAIL="$ERR"
check series/sunspots_beats_persistence eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) < 0.5 * float(sys.argv[2])" "${mse:-1e99}" "$persist"'
py 'import json,sys
m = json.load(open(sys.argv[1])); m["layers"] = m["layers"][:-1]
for k in ("train", "test"): m["data"][k]["path"] = sys.argv[2] + "/data/sunspots" + ("" if k == "train" else "_test") + ".csv"
json.dump(m, open(sys.argv[3], "w"))' "$ROOT/models/sunspots_lstm.json" "$ROOT" "$T/sun_raw.json"
nn train "$T/sun_raw.json" --output "$T/sun_raw.bin" --json
raw=$(py 'import json,sys
print([x for x in map(json.loads, open(sys.argv[1])) if x["event"] == "test"][0]["loss"])' "$T/out" 2>/dev/null)
WHY="exit $RC, test mse without denormalize ${raw:-none}; with it ${mse:-none} (want at least 2x better with it)"
DETAIL="$ERR"
check series/denormalize_helps eval '[ "$RC" = 0 ] && py "import sys; assert 2 * float(sys.argv[1]) < float(sys.argv[2])" "${mse:-1e99}" "${raw:-0}"'
nn infer "$T/sun.bin" "$ROOT/data/sunspots_test.csv"
WHY="exit $RC; expected 41 predictions (40 test years and the forecast for 2009) in sunspot units"
DETAIL="$(printf '%s\n' "$OUT" | tail -n 2)$ERR"
check series/sunspots_forecast eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 41 ] &&
    py "import sys; v = [float(l.split()[1]) for l in sys.argv[1].splitlines()]; assert max(v) > 50 and min(v) > -30" "$OUT"'

# ----------------------------------------------------------- optimizers
# models/iris_mlp.json with RMSprop (centered, momentum), clip_norm and
# label smoothing reaches what Adam reaches on it (0.95, tune/ below)
py 'import json,sys
m = json.load(open(sys.argv[1]))
for k in ("train", "test"): m["data"][k]["path"] = sys.argv[2] + "/data/iris" + ("" if k == "train" else "_test") + ".csv"
m["optimizer"] = {"type": "rmsprop", "lr": 0.01, "momentum": 0.5, "centered": True, "clip_norm": 1.0}
m["loss"] = {"type": "cross_entropy", "label_smoothing": 0.1}
json.dump(m, open(sys.argv[3], "w"))' "$ROOT/models/iris_mlp.json" "$ROOT" "$T/iris_rms.json"
nn train "$T/iris_rms.json" --output "$T/iris_rms.bin" --json
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2]["accuracy"])' "$T/out" 2>/dev/null)
WHY="exit $RC, iris test accuracy ${acc:-none} with rmsprop + clip_norm + label smoothing (want >= 0.95)"
DETAIL="$ERR"
check optim/iris_rmsprop eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.95" "${acc:--1}"'

# ----------------------------------------------------------------- tune
# in a private cache folder: tuning stores parameters, later runs apply
# them and still train correctly; a corrupted file is ignored
mkdir -p "$T/tunecache"
NNRUN_CACHE_DIR=$T/tunecache nn tune "$ROOT/models/iris_mlp.json" --candidates 3 --reps 1 --json
tune_json=$OUT
WHY="exit $RC; tune --json should print one object with default_ms and stored"
DETAIL="$OUT$ERR"
check tune/runs eval '[ "$RC" = 0 ] && py "import json,sys; d=json.loads(sys.argv[1]); assert d[\"default_ms\"] > 0 and \"stored\" in d" "$OUT"'
NNRUN_CACHE_DIR=$T/tunecache nn train "$ROOT/models/iris_mlp.json" --output "$T/tuned_iris.bin" --json
tuned_start=$(head -n 1 "$T/out")
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2]["accuracy"])' "$T/out" 2>/dev/null)
WHY="exit $RC, iris test accuracy ${acc:-none} with tuned GEMM parameters (want >= 0.95)"
DETAIL="$ERR"
check tune/applied_still_correct eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.95" "${acc:--1}"'
stored=$(printf '%s' "$tune_json" | py 'import json,sys; print(json.load(sys.stdin)["stored"])' 2>/dev/null)
tf=$(ls "$T"/tunecache/clblast-*.tune 2>/dev/null | head -n 1)
if [ -n "$tf" ]; then
    printf 'XGEMM_MIN_INDIRECT_SIZE banana\n' >"$tf"
    NNRUN_CACHE_DIR=$T/tunecache nn train "$ROOT/models/iris_mlp.json" --output "$T/tuned_iris2.bin" --quiet
    WHY="exit $RC; a corrupted tune file must be ignored"
    DETAIL="$ERR"
    check tune/corrupt_file_ignored test "$RC" = 0
else
    WHY="tune stored no file but reported stored=$stored"
    check tune/nothing_stored_consistent test "$stored" = False
fi
# the per-shape backend choices: written, applied (train names them),
# ignored whole when corrupted
cf=$(ls "$T"/tunecache/gemm-*.choice 2>/dev/null | head -n 1)
WHY="tune wrote ${cf:-no gemm-*.choice file}; a later train's start event should name the tuned shapes"
DETAIL="$tuned_start"
check tune/choices_applied eval '[ -n "$cf" ] && py "import json,sys; d = json.loads(sys.argv[1]); assert \"tuned shapes\" in d[\"gemm\"], d" "$tuned_start"'
if [ -n "$cf" ]; then
    printf 'NNRUN_GEMM_CHOICE 1\n0 0 1 2 3 1 quantum 0 0\n' >"$cf"
    NNRUN_CACHE_DIR=$T/tunecache nn train "$ROOT/models/iris_mlp.json" --output "$T/tuned_iris3.bin" --json
    start=$(printf '%s\n' "$OUT" | head -n 1)
    WHY="exit $RC; a corrupted choice file must be ignored whole"
    DETAIL="$start$ERR"
    check tune/corrupt_choices_ignored eval '[ "$RC" = 0 ] && py "import json,sys; d = json.loads(sys.argv[1]); assert \"tuned shapes\" not in d[\"gemm\"], d" "$start"'
fi

summary
