#!/usr/bin/env bash
# tests/cli.sh - black-box tests of the ./nnrun binary.
#
# Prints one line per test, "PASS cli/NAME" or "FAIL cli/NAME: why" (details
# indented below a FAIL), then "N passed, N failed"; exits 1 when any failed.
# Every fixture is generated at run time into a temporary folder (removed at
# the end; NNRUN_TEST_KEEP=1 keeps it and prints where it is).
#
#   tests/cli.sh                 all tests (from any directory)
#   NNRUN=/path/nnrun tests/cli.sh
#   NNRUN_TEST_TIMEOUT=300       seconds allowed for each nnrun call
#
# Two sections: a table of bad inputs (command, expected exit code, a fragment
# of the message that must appear on stderr) and functional tests that train
# small models and check what comes out. Needs bash, python3 (standard
# library only), gzip and coreutils.
PREFIX=cli
NEED_TOOLS="python3 gzip timeout cmp"
. "$(dirname "$0")/lib.sh"

# ------------------------------------------------------------ fixtures
# A small iris model whose data paths are relative to the JSON ($T).
cp "$ROOT/data/iris.csv" "$ROOT/data/iris_test.csv" "$T/"
cat >"$T/base.json" <<'EOF'
{"name": "t", "input": {"shape": [4], "normalize": "auto"},
 "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 3}, {"type": "softmax"}],
 "loss": "cross_entropy",
 "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 2, "batch_size": 16, "seed": 1},
 "data": {"train": {"format": "csv", "path": "iris.csv", "label": "species"},
          "test": {"format": "csv", "path": "iris_test.csv", "label": "species"}}}
EOF
# variant NAME 'PYTHON' [ARGS...]: $T/NAME.json = base.json changed by PYTHON,
# which sees the model as m, m["layers"] as L, m["data"] as D and ARGS as
# sys.argv[4:]. Written one key a line, so JSON errors have useful lines.
variant() {
    local name=$1 code=$2
    shift 2
    py 'import json,sys
m = json.load(open(sys.argv[1] + "/base.json")); L = m["layers"]; D = m["data"]
exec(sys.argv[3])
open(sys.argv[1] + "/" + sys.argv[2] + ".json", "w").write(json.dumps(m, indent=1) + "\n")' "$T" "$name" "$code" "$@"
}
# an IDX source for a 28x28 image model: NAME IMAGES LABELS
idx_variant() {
    variant "$1" 'm["input"] = {"shape": [1, 28, 28]}
m["layers"] = [{"type": "flatten"}, {"type": "dense", "units": 10}, {"type": "softmax"}]
m["data"] = {"train": {"format": "idx", "images": sys.argv[4], "labels": sys.argv[5]}}' "$2" "$3"
}

# IDX files: a good labels file (10 labels), a truncated raw images file,
# a gzip file cut short, a gzip file that is not IDX, random bytes.
py 'import gzip,random,struct,sys
d = sys.argv[1]; r = random.Random(1)
hdr = struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28)
pix = bytes(r.randrange(256) for _ in range(10 * 784))
open(d + "/labels.raw", "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + bytes(range(10)))
open(d + "/images.gz", "wb").write(gzip.compress(hdr + pix))
open(d + "/short.raw", "wb").write(hdr + pix[:100])
open(d + "/cut.gz", "wb").write(gzip.compress(hdr + pix)[:-3000])
open(d + "/notidx.gz", "wb").write(gzip.compress(b"this is not an IDX file at all"))
open(d + "/noise.bin", "wb").write(bytes(r.randrange(256) for _ in range(500)))
open(d + "/noise.png", "wb").write(bytes(r.randrange(256) for _ in range(300)))
' "$T"
# CSV files with problems
printf 'a,b,y\n1,2,x\n3,oops,y\n' >"$T/nonnum.csv"
printf 'a,b,y\n1,2,x\n3,4\n' >"$T/ragged.csv"
: >"$T/empty.csv"
printf 'a,b,y\n' >"$T/header_only.csv"
printf '1,2\n3,4\n' >"$T/two_cols.csv"
two_col='m["input"]["shape"] = [2]; del D["test"]; D["train"] = {"format": "csv", "path": sys.argv[4], "label": "y"}'

# A trained iris model (2 epochs) for the model.bin and infer rows.
nn train "$T/base.json" --output "$T/good.bin" --quiet
if [ "$RC" != 0 ]; then
    fail setup "training the fixture model $T/base.json failed ($(rc_text "$RC"))" "$ERR"
fi
py 'import sys
d = bytearray(open(sys.argv[1] + "/good.bin", "rb").read())
open(sys.argv[1] + "/trunc.bin", "wb").write(d[:300])
open(sys.argv[1] + "/short.bin", "wb").write(d[:-10])
d[len(d) // 2] ^= 0x10
open(sys.argv[1] + "/flipped.bin", "wb").write(d)' "$T"

# ===================================================== bad inputs (table)
# bad NAME RC FRAGMENT ARGS...: `nnrun ARGS` must exit with RC and stderr must
# contain FRAGMENT ("re:..." = an extended regex). When stderr holds an
# "nnrun: error:" line it must be the only line.
bad() {
    local name=$1 want=$2 frag=$3
    shift 3
    nn "$@"
    local ok=1 why=""
    if [ "$RC" != "$want" ]; then
        ok=0
        why="expected exit $want, got $(rc_text "$RC")"
    fi
    case $frag in
    re:*) printf '%s\n' "$ERR" | grep -Eq -- "${frag#re:}" ;;
    *) printf '%s\n' "$ERR" | grep -Fq -- "$frag" ;;
    esac || {
        ok=0
        why="${why:+$why; }stderr lacks '$frag'"
    }
    if printf '%s\n' "$ERR" | grep -q '^nnrun: error:' && [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ]; then
        ok=0
        why="${why:+$why; }the error is not a single line"
    fi
    if [ $ok = 1 ]; then pass "bad/$name"; else fail "bad/$name" "$why" "command: nnrun $*" "stderr: $ERR"; fi
}

# --- model JSON
head -c 100 "$T/base.json" >"$T/trunc.json"
printf '{"name": "t",\n "layers": [{"type": "dense", "units": 3},],\n "loss": "mse"}\n' >"$T/trailing.json"
: >"$T/empty.json"
printf '{"name": "a", "name": "b", "layers": [{"type": "dense", "units": 3}]}\n' >"$T/dupkey.json"
variant topkey 'm["optimiser"] = m.pop("optimizer")'
variant layertype 'L[0]["type"] = "dens"'
variant layertype2 'L[0]["type"] = "convolution"'
variant layerkey 'L[0] = {"type": "dense", "unit": 8}'
variant units_str 'L[0]["units"] = "ten"'
variant lninit 'L.insert(1, {"type": "layernorm", "init": "glorot"})'
variant units_neg 'L[0]["units"] = -3'
variant epochs_frac 'm["train"]["epochs"] = 1.5'
variant nolayers 'del m["layers"]'
variant emptylayers 'm["layers"] = []'
variant duplayer 'L[0]["name"] = "hidden"; L[1]["name"] = "hidden"'
variant badact 'L[0]["activation"] = "relux"'
variant softmaxact 'L[1]["activation"] = "softmax"; del L[2]'
variant badloss 'm["loss"] = "cross_entropi"'
variant badopt 'm["optimizer"]["type"] = "adagrad"'
variant rmsalpha 'm["optimizer"] = {"type": "rmsprop", "alpha": 1.5}'
variant rmscentered 'm["optimizer"] = {"type": "rmsprop", "centered": "yes"}'
variant rmsnesterov 'm["optimizer"] = {"type": "rmsprop", "momentum": 0.9, "nesterov": True}'
variant clipnorm0 'm["optimizer"]["clip_norm"] = 0'
variant clipvalue 'm["optimizer"]["clip_value"] = "0.5"'
variant lsrange 'm["loss"] = {"type": "cross_entropy", "label_smoothing": 1.5}'
variant lsbce 'm["loss"] = {"type": "binary_cross_entropy", "label_smoothing": 0.1}'
variant losskey 'm["loss"] = {"type": "cross_entropy", "smoothing": 0.1}'
variant nesterov 'm["optimizer"] = {"type": "sgd", "lr": 0.1, "nesterov": True}'
variant valsplit 'm["train"]["validation_split"] = 1.5'
variant shape0 'm["input"]["shape"] = [0]'
variant shapestr 'm["input"]["shape"] = ["4"]'
variant badnorm 'm["input"]["normalize"] = "zscore"'
variant laterinput 'L[0]["inputs"] = ["out"]; L[1]["name"] = "out"'
variant normcount 'm["input"]["normalize"] = {"mean": [5.8, 3.0, 3.8], "std": [0.8, 0.4, 1.8]}'
variant bce3 'm["loss"] = "binary_cross_entropy"'
variant ce1 'm["layers"] = [{"type": "dense", "units": 1, "activation": "sigmoid"}]'

#   name                 rc  stderr fragment                                                       command
bad json_truncated       65 're:trunc\.json:[0-9]+:[0-9]+: malformed JSON'                         train "$T/trunc.json"
bad json_truncated_eof   65 're:trunc\.json:[0-9]+:[0-9]+: malformed JSON: unexpected end of file' train "$T/trunc.json"
bad json_trailing_comma  65 're:trailing\.json:2:[0-9]+: malformed JSON'                           train "$T/trailing.json"
bad json_empty_file      65 'empty.json:1:1: malformed JSON (unexpected end of file)'              train "$T/empty.json"
bad json_missing_file    66 'nosuch.json: cannot open'                                             train "$T/nosuch.json"
bad json_duplicate_key   65 "dupkey.json: key 'name' appears twice"                                train "$T/dupkey.json"
bad top_key_typo         65 "topkey.json: unknown key 'optimiser' (did you mean 'optimizer'?)"     train "$T/topkey.json"
bad layer_type_typo      65 "layertype.json: layers[0].type: unknown layer type 'dens' (did you mean 'dense'?)" train "$T/layertype.json"
bad layer_type_unknown   65 "layertype2.json: layers[0].type: unknown layer type 'convolution'" train "$T/layertype2.json"
bad layer_key_typo       65 "layerkey.json: layers[0]: unknown key 'unit' (did you mean 'units'?)" train "$T/layerkey.json"
bad layernorm_init_glorot 65 'lninit.json: layers[1].init: expected "torch" (the only choice for this layer type)' train "$T/lninit.json"
bad units_string         65 'units_str.json: layers[0].units: expected an integer'                 train "$T/units_str.json"
bad units_negative       65 'units_neg.json: layers[0].units: -3 is out of range'                  train "$T/units_neg.json"
bad epochs_fraction      65 'epochs_frac.json: train.epochs: expected an integer, got 1.5'         train "$T/epochs_frac.json"
bad layers_missing       65 'nolayers.json: layers: required key is missing'                       train "$T/nolayers.json"
bad layers_empty         65 'emptylayers.json: layers: expected a non-empty array'                 train "$T/emptylayers.json"
bad layer_name_duplicate 65 "duplayer.json: layers[1]: name 'hidden' is already used by layers[0]" train "$T/duplayer.json"
bad layer_input_later    65 "laterinput.json: layers[0].inputs: 'out' is defined later"           train "$T/laterinput.json"
bad activation_unknown   65 "badact.json: layers[0].activation: unknown activation 'relux' (did you mean 'relu'?)" train "$T/badact.json"
bad activation_softmax   65 'softmaxact.json: layers[1].activation: "softmax" is a layer of its own' train "$T/softmaxact.json"
bad loss_unknown         65 "badloss.json: loss: unknown loss 'cross_entropi' (did you mean 'cross_entropy'?)" train "$T/badloss.json"
bad optimizer_unknown    65 "badopt.json: optimizer.type: unknown optimizer 'adagrad' (known: sgd, adam, adamw, rmsprop)" train "$T/badopt.json"
bad rmsprop_alpha        65 'rmsalpha.json: optimizer.alpha: 1.5 is out of range'                  train "$T/rmsalpha.json"
bad rmsprop_centered     65 'rmscentered.json: optimizer.centered: expected true or false'         train "$T/rmscentered.json"
bad rmsprop_nesterov     65 "rmsnesterov.json: optimizer: unknown key 'nesterov'"                  train "$T/rmsnesterov.json"
bad clip_norm_zero       65 'clipnorm0.json: optimizer.clip_norm: 0 is out of range'               train "$T/clipnorm0.json"
bad clip_value_string    65 'clipvalue.json: optimizer.clip_value: expected a number'              train "$T/clipvalue.json"
bad label_smoothing_range 65 'lsrange.json: loss.label_smoothing: 1.5 is out of range'             summary "$T/lsrange.json"
bad label_smoothing_bce  65 'lsbce.json: loss.label_smoothing: only cross_entropy supports label smoothing' train "$T/lsbce.json"
bad loss_key_typo        65 "losskey.json: loss: unknown key 'smoothing'"                          train "$T/losskey.json"
bad nesterov_no_momentum 65 'nesterov.json: optimizer.nesterov: needs a non-zero "momentum"'       train "$T/nesterov.json"
bad validation_split     65 'valsplit.json: train.validation_split: 1.5 is out of range'           train "$T/valsplit.json"
bad input_shape_zero     65 'shape0.json: input.shape[0]: expected a positive integer'             train "$T/shape0.json"
bad input_shape_string   65 'shapestr.json: input.shape[0]: expected a positive integer'           train "$T/shapestr.json"
bad normalize_unknown    65 'badnorm.json: input.normalize: expected "auto", "none" or'            train "$T/badnorm.json"
bad normalize_count      65 'normcount.json: input.normalize'                                      train "$T/normcount.json"
bad bce_three_outputs    65 're:bce3\.json: layers\[[0-9]\].*binary_cross_entropy needs one output unit' train "$T/bce3.json"
bad ce_one_output        65 're:ce1\.json: layers\[0\].*the data has 3 classes'                    train "$T/ce1.json"
bad summary_json_errors  65 "layerkey.json: layers[0]: unknown key 'unit'"                        summary "$T/layerkey.json"
# values that would survive training but not saving (issue 16): checked before training
variant normbig 'm["input"]["normalize"] = {"mean": [1e39, 0, 0, 0], "std": [1, 1, 1, 1]}'
variant normtiny 'm["input"]["normalize"] = {"mean": [0, 0, 0, 0], "std": [1, 1, 1, 1e-50]}'
bad normalize_mean_float32 65 'normbig.json: input.normalize.mean[0]: 1e+39 does not fit a float32'    train "$T/normbig.json"
bad normalize_std_float32 65 'normtiny.json: input.normalize.std[3]: 1e-50 does not fit a float32'     train "$T/normtiny.json"
bad seed_beyond_json      2 "option '--seed': expected an integer from 0 to 9007199254740991"         train "$T/base.json" --seed 9223372036854775807

# --- data sources
variant notrain 'del D["train"]'
variant badformat 'D["train"]["format"] = "cvs"'
variant nocsv 'D["train"]["path"] = "no-such-data.csv"'
variant nocsv_classes 'D["train"]["path"] = "no-such-data.csv"; D["classes"] = ["setosa", "versicolor", "virginica"]'
variant short_classes 'D["classes"] = ["setosa", "versicolor"]'
variant nonnum "$two_col" nonnum.csv
variant ragged "$two_col" ragged.csv
variant emptycsv "$two_col" empty.csv
variant headeronly "$two_col" header_only.csv
variant nolabel 'D["train"]["label"] = "class"'
variant units4 'L[1]["units"] = 4'
variant shape5 'm["input"]["shape"] = [5]'
idx_variant noidx no-such-images.gz labels.raw
idx_variant shortidx short.raw labels.raw
idx_variant cutidx cut.gz labels.raw
idx_variant notidx notidx.gz labels.raw
idx_variant countidx images.gz "$FASHION/t10k-labels-idx1-ubyte.gz"

bad train_data_missing   65 'notrain.json: data.train: required for training'                      train "$T/notrain.json"
bad data_format_unknown  65 "badformat.json: data.train.format: unknown format 'cvs' (did you mean 'csv'?)" train "$T/badformat.json"
bad csv_missing          66 "$T/no-such-data.csv: cannot open"                                     train "$T/nocsv.json"
bad csv_missing_classes  66 "$T/no-such-data.csv: cannot open"                                     train "$T/nocsv_classes.json"
bad csv_unknown_class    65 "unknown class 'virginica'"                                            train "$T/short_classes.json"
bad csv_not_a_number     65 "nonnum.csv:3:2: column 'b': 'oops' is not a number"                  train "$T/nonnum.json"
bad csv_ragged_row       65 'ragged.csv:3: row has 2 columns, expected 3'                          train "$T/ragged.json"
bad csv_label_not_found  65 "iris.csv: label column 'class' not found in the header"              train "$T/nolabel.json"
bad csv_empty            65 'empty.csv: empty file'                                                train "$T/emptycsv.json"
bad csv_header_only      65 'header_only.csv: no data rows'                                        train "$T/headeronly.json"
bad output_units_classes 65 're:units4\.json: layers\[[0-9]\].*the data has 3 classes'            train "$T/units4.json"
bad input_shape_vs_data  65 'shape5.json: input.shape [5] holds 5 values, but data.train has 4 features' train "$T/shape5.json"
bad idx_missing          66 "$T/no-such-images.gz: cannot open"                                    train "$T/noidx.json"
bad idx_truncated_raw    65 'short.raw: truncated: expected 7840 bytes of pixel data, got 100'     train "$T/shortidx.json"
bad idx_truncated_gzip   65 're:cut\.gz: (truncated|corrupt gzip)'                                 train "$T/cutidx.json"
bad idx_not_idx          65 'notidx.gz: bad magic'                                                 train "$T/notidx.json"
bad idx_count_mismatch   65 'has 10000 labels but'                                                 train "$T/countidx.json"

# --- model.bin
bad modelbin_missing     66 "$T/none.bin: cannot open"                                             eval "$T/none.bin"
bad modelbin_garbage     65 'noise.bin: not an nnrun model file (bad magic)'                       eval "$T/noise.bin"
bad modelbin_truncated   65 'trunc.bin: truncated'                                                 eval "$T/trunc.bin"
bad modelbin_short_tail  65 're:short\.bin: (truncated|checksum mismatch)'                         eval "$T/short.bin"
bad modelbin_flipped     65 'flipped.bin: checksum mismatch'                                       eval "$T/flipped.bin"
bad modelbin_flipped_infer 65 'flipped.bin: checksum mismatch'                                     infer "$T/flipped.bin" "$T/iris_test.csv"
bad modelbin_summary     65 'noise.bin: not an nnrun model file'                                   summary "$T/noise.bin"
# model.bin files rebuilt by hand (docs/FORMATS.md: header, zero padding to 64,
# tensor data, CRC-32), each with one thing wrong but a valid checksum.
py 'import json,struct,sys,zlib
t = sys.argv[1]
d = open(t + "/good.bin", "rb").read()
H = struct.unpack("<Q", d[16:24])[0]
D = (24 + H + 63) // 64 * 64
def hdr(): return json.loads(d[24:24 + H])
def write(name, h, version=1):
    j = json.dumps(h, separators=(",", ":")).encode()
    b = d[:8] + struct.pack("<IIQ", version, 0, len(j)) + j
    b += bytes(-len(b) % 64) + d[D:-4]
    open(t + "/" + name + ".bin", "wb").write(b + struct.pack("<I", zlib.crc32(b)))
write("rebuilt", hdr())
write("v7", hdr(), 7)
h = hdr(); h["classes"] = ["a", "b"]; write("classes2", h)
h = hdr(); h["tensors"][0]["length"] = 5; write("len5", h)
h = hdr(); h["tensors"][0]["name"] = "zzz"; write("tname", h)
h = hdr(); h["tensors"][3]["offset"] = 400; write("offset", h)
h = hdr(); del h["tensors"]; write("notensors", h)
h = hdr(); h["data_bytes"] = 10 ** 6; write("databytes", h)
h = hdr(); h["normalize"]["std"][0] = 0; write("std0", h)
h = hdr(); h["normalize"] = {k: v[:2] for k, v in h["normalize"].items()}; write("norm2", h)
h = hdr(); h["model"]["layers"][0]["units"] = 9; write("units9", h)
h = hdr(); h["model"]["layers"][0]["type"] = "dens"; write("layertype", h)' "$T"
nn infer "$T/rebuilt.bin" "$T/iris_test.csv"
if [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | wc -l)" = 45 ]; then pass bad/modelbin_rebuilt_loads; else fail bad/modelbin_rebuilt_loads "a model.bin rebuilt per docs/FORMATS.md does not load ($(rc_text "$RC"))" "stderr: $ERR"; fi
bad modelbin_version_7   65 'v7.bin: format version 7 is newer than this nnrun supports (1)'      infer "$T/v7.bin" "$T/iris_test.csv"
bad modelbin_classes     65 'classes2.bin: 2 class names stored for a model with 3 outputs'       infer "$T/classes2.bin" "$T/iris_test.csv"
bad modelbin_length      65 'len5.bin: header tensors[0].length: 5 does not match'                infer "$T/len5.bin" "$T/iris_test.csv"
bad modelbin_tensor_name 65 "tname.bin: tensor 'dense_1.weight' is missing"                       infer "$T/tname.bin" "$T/iris_test.csv"
bad modelbin_offset      65 'offset.bin: header tensors[3]: bytes 400..412 lie beyond'            infer "$T/offset.bin" "$T/iris_test.csv"
bad modelbin_no_tensors  65 'notensors.bin: header: required key "tensors" is missing'            eval "$T/notensors.bin"
bad modelbin_data_bytes  65 'databytes.bin: header data_bytes'                                   eval "$T/databytes.bin"
bad modelbin_std_zero    65 'std0.bin: header normalize.std[0]'                                  eval "$T/std0.bin"
bad modelbin_norm_count  65 're:norm2\.bin: .*normali[sz]'                                        eval "$T/norm2.bin"
bad modelbin_shape       65 "units9.bin: tensor 'dense_1.weight' has 32 values, but the model needs shape [4, 9]" eval "$T/units9.bin"
bad modelbin_model_json  65 "layertype.bin: layers[0].type: unknown layer type 'dens'"             summary "$T/layertype.bin"
# a model whose weights are all NaN still "predicts" (class 0): no gate may pass it (issue 16)
py 'import json,struct,sys,zlib
t = sys.argv[1]
d = open(t + "/good.bin", "rb").read()
H = struct.unpack("<Q", d[16:24])[0]
D = (24 + H + 63) // 64 * 64
b = d[:D] + struct.pack("<f", float("nan")) * ((len(d) - 4 - D) // 4)
open(t + "/nanw.bin", "wb").write(b + struct.pack("<I", zlib.crc32(b)))' "$T"
bad eval_nan_weights_gate 1 "the loss is nan: the model's outputs are not finite, so no gate passes" eval "$T/nanw.bin" --min-accuracy 0.3
# NaN outputs predict no class: every sample counts in its class's support
# and in no column (sklearn's zero_division=0 for every precision)
nn eval "$T/nanw.bin" --json
WHY="exit $RC; expected zeros, the supports 15/15/15 and no_prediction 45"
DETAIL="$OUT$ERR"
check eval/report_nan eval '[ "$RC" = 0 ] && py "import json,sys
d = json.loads(sys.argv[1]); r = d[\"report\"]
assert d[\"no_prediction\"] == 45 and d[\"confusion_matrix\"] == [[0, 0, 0]] * 3, d
assert [r[c][\"support\"] for c in d[\"labels\"]] == [15, 15, 15]
assert all(r[c][k] == 0 for c in d[\"labels\"] + [\"macro avg\", \"weighted avg\"] for k in (\"precision\", \"recall\", \"f1-score\"))
assert r[\"accuracy\"] == 0" "$OUT"'
nn eval "$T/nanw.bin"
WHY="exit $RC; expected a '(no prediction)' column"
DETAIL="$OUT"
check eval/report_nan_text eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Eq "^ +setosa +0 +0 +0 +15$"'

# --- infer and eval inputs (idx.bin: a 28x28 image model trained on 10 images)
idx_variant idxgood images.gz labels.raw
nn train "$T/idxgood.json" --output "$T/idx.bin" --epochs 1 --quiet
[ "$RC" = 0 ] || fail setup "training $T/idxgood.json failed ($(rc_text "$RC"))" "$ERR"
mkdir -p "$T/emptydir"
bad infer_garbage_png    65 'noise.png: cannot decode image'                                       infer "$T/idx.bin" "$T/noise.png"
bad infer_missing_image  66 "$T/missing.png: cannot open"                                          infer "$T/idx.bin" "$T/missing.png"
bad infer_image_csv_model 2 'noise.png: this model takes 4 features per sample, not images'        infer "$T/good.bin" "$T/noise.png"
bad infer_missing_csv    66 "$T/missing.csv: cannot open"                                          infer "$T/good.bin" "$T/missing.csv"
bad infer_empty_folder   66 'no image files'                                                       infer "$T/idx.bin" "$T/emptydir"
bad infer_csv_not_number 65 "nonnum.csv:2:3: column 'y': 'x' is not a number"                  infer "$T/good.bin" "$T/nonnum.csv"
bad infer_csv_wrong_width 65 "two_cols.csv: 2 features per sample, but the model's input shape [4] needs 4" infer "$T/good.bin" "$T/two_cols.csv"
bad eval_data_no_label   65 "two_cols.csv: label column 'species' is given by name but the file has no header row" eval "$T/good.bin" --data "$T/two_cols.csv"
bad infer_no_inputs       2 'expected MODEL.bin and at least one input'                            infer "$T/good.bin"
bad infer_top_zero        2 "option '--top': expected an integer"                                  infer "$T/good.bin" "$T/iris_test.csv" --top 0
bad eval_min_accuracy_2   2 "option '--min-accuracy': expected a number from 0 to 1, got '2'"      eval "$T/good.bin" --min-accuracy 2
bad eval_data_missing    66 "$T/missing.csv: cannot open"                                          eval "$T/good.bin" --data "$T/missing.csv"
bad eval_no_test_data     2 'the model has no data.test; give --data FILE'                        eval "$T/idx.bin"

# --- command line
bad option_typo           2 "unknown option '--epoch' (did you mean '--epochs'?)"                  train "$T/base.json" --epoch 3
bad option_needs_value    2 "option '--epochs' needs a value"                                      train "$T/base.json" --epochs
bad option_bad_number     2 "option '--lr': expected a number"                                     train "$T/base.json" --lr 0
bad command_typo          2 "unknown command 'trian' (did you mean 'train'?)"                     trian
bad command_unknown       2 "unknown command 'frobnicate'"                                         frobnicate
bad no_arguments          2 'usage: nnrun COMMAND'
bad train_two_models      2 'expected one MODEL.json'                                              train "$T/base.json" "$T/base.json"
bad device_index         69 '--device 99: no such device'                                          train "$T/base.json" --device 99 --output "$T/dev.bin"
bad device_name          69 "--device 'nosuchdevice': no matching OpenCL device"                   train "$T/base.json" --device nosuchdevice --output "$T/dev.bin"
bad device_eval          69 "--device 'nosuchdevice': no matching OpenCL device"                   eval "$T/good.bin" --device nosuchdevice
NNRUN_DEVICE=nosuchdevice bad device_env 69 "NNRUN_DEVICE 'nosuchdevice'"                           eval "$T/good.bin"

# --- files that are not files, sizes that lie (issue 16)
# Every reader opens without blocking and refuses what is not a regular file
# (a FIFO would hang nnrun); sizes are checked before reading or allocating.
mkdir -p "$T/fifos/imgdir"
for f in model.json data.csv img.png images.gz model.bin run.ckpt list.csv; do mkfifo "$T/fifos/$f"; done
mkfifo "$T/fifos/imgdir/a.png"
variant fifocsv 'D["train"]["path"] = "fifos/data.csv"'
idx_variant fifoidx fifos/images.gz labels.raw
py 'import sys; open(sys.argv[1] + "/fifolist.csv", "w").write("path,label\nfifos/img.png,0\n")' "$T"
variant fifolist 'm["input"] = {"shape": [1, 8, 8]}; m["layers"] = [{"type": "flatten"}, {"type": "dense", "units": 2}, {"type": "softmax"}]
m["data"] = {"train": {"format": "list", "path": "fifolist.csv"}}'
truncate -s 3G "$T/sparse.csv" "$T/sparse.png" "$T/sparse.bin"
variant sparsecsv 'D["train"]["path"] = "sparse.csv"'
py 'import json,struct,sys,zlib
t = sys.argv[1]
d = open(t + "/good.bin", "rb").read()
H = struct.unpack("<Q", d[16:24])[0]
D = (24 + H + 63) // 64 * 64
h = json.loads(d[24:24 + H]); h["data_bytes"] += 1 << 20
j = json.dumps(h, separators=(",", ":")).encode()
b = d[:8] + struct.pack("<IIQ", 1, 0, len(j)) + j
b += bytes(-len(b) % 64) + d[D:-4] + bytes(1 << 20)
open(t + "/tailgarbage.bin", "wb").write(b + struct.pack("<I", zlib.crc32(b)))' "$T"
bad fifo_model_json      66 'model.json: is a FIFO (named pipe), not a regular file'              train "$T/fifos/model.json"
bad fifo_train_csv       66 'data.csv: is a FIFO (named pipe), not a regular file'                train "$T/fifocsv.json"
bad fifo_idx             66 'images.gz: is a FIFO (named pipe), not a regular file'               train "$T/fifoidx.json"
bad fifo_list_entry      66 'img.png: is a FIFO (named pipe), not a regular file'                 train "$T/fifolist.json"
bad fifo_infer_csv       66 'data.csv: is a FIFO (named pipe), not a regular file'                infer "$T/good.bin" "$T/fifos/data.csv"
bad fifo_infer_folder    66 'a.png: is a FIFO (named pipe), not a regular file'                   infer "$T/idx.bin" "$T/fifos/imgdir"
bad fifo_model_bin       66 'model.bin: is a FIFO (named pipe), not a regular file'               eval "$T/fifos/model.bin"
bad fifo_resume          66 'run.ckpt: is a FIFO (named pipe), not a regular file'                train "$T/base.json" --resume "$T/fifos/run.ckpt" --output "$T/fifo.bin"
bad fifo_eval_data       66 'data.csv: is a FIFO (named pipe), not a regular file'                eval "$T/good.bin" --data "$T/fifos/data.csv"
# eval's test path stored in model.bin, replaced by a FIFO after training
cp "$T/iris_test.csv" "$T/stored_test.csv"
variant storedtest 'D["test"]["path"] = "stored_test.csv"'
nn train "$T/storedtest.json" --output "$T/storedtest.bin" --quiet
rm -f "$T/stored_test.csv" && mkfifo "$T/stored_test.csv"
bad fifo_stored_test_path 66 'stored_test.csv: is a FIFO (named pipe), not a regular file'        eval "$T/storedtest.bin"
bad device_node_model    66 '/dev/zero: is a character device, not a regular file'                eval /dev/zero
bad sparse_csv           65 'sparse.csv: byte 0: a NUL byte: this is a binary file, not text'     train "$T/sparsecsv.json"
bad sparse_image         65 'sparse.png: cannot decode image: unknown image type'                 infer "$T/idx.bin" "$T/sparse.png"
bad sparse_model_bin     65 'sparse.bin: not an nnrun model file (bad magic)'                     eval "$T/sparse.bin"
bad modelbin_tail_garbage 65 're:tailgarbage\.bin: header data_bytes: [0-9]+ bytes of tensor data, but the last tensor ends at byte [0-9]+ \(1048576 bytes of trailing garbage\)' eval "$T/tailgarbage.bin"

# --- image headers that decode to nothing (issue 16): the pixels a raw or
# run-length header claims must be in the file; valid files still decode
py 'import random,struct,sys
t = sys.argv[1]; r = random.Random(2); W, H = 13, 7
px = [(r.randrange(256), r.randrange(256), r.randrange(256)) for _ in range(W * H)]
def tga(name, kind, w, h, bpp, body, idb=b""):
    open(t + "/" + name, "wb").write(struct.pack("<BBBHHBHHHHBB", len(idb), 0, kind, 0, 0, 0, 0, 0, w, h, bpp, 0) + idb + body)
def bmp(name, w, h, bpp, body):
    open(t + "/" + name, "wb").write(b"BM" + struct.pack("<IHHI", 54 + len(body), 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 0, len(body), 0, 0, 0, 0) + body)
tga("hdr_only.tga", 2, 8192, 8192, 24, b"")
tga("rle_short.tga", 10, 8192, 8192, 24, bytes([0x81, 1, 2, 3]))
open(t + "/maxval0.pgm", "wb").write(b"P5\n4 4\n0\n" + bytes(16))
bmp("hdr_only.bmp", 8192, 8192, 24, b"")
raw = b"".join(bytes((b, g, c)) for (c, g, b) in px)
tga("ok_raw.tga", 2, W, H, 24, raw, b"hello")
rle, i = b"", 0
while i < len(px):
    n = min(128, len(px) - i); rle += bytes([n - 1]) + raw[3 * i:3 * (i + n)]; i += n
tga("ok_rle.tga", 10, W, H, 24, rle)
tga("ok_run.tga", 10, 256, 1, 24, bytes([0xFF, 1, 2, 3, 0xFF, 1, 2, 3]))
row = (W * 3 + 3) // 4 * 4
bmp("ok_up.bmp", W, H, 24, b"".join(raw[3 * W * y:3 * W * (y + 1)] + bytes(row - 3 * W) for y in range(H)))
bmp("ok_down.bmp", W, -H, 32, b"".join(bytes((b, g, c, 255)) for (c, g, b) in px))' "$T"
bad image_tga_header_only 65 'hdr_only.tga: truncated TGA image: its header says 8192x8192, which needs at least 201326592 bytes of pixels, the file has 0' infer "$T/idx.bin" "$T/hdr_only.tga"
bad image_tga_rle_short  65 'rle_short.tga: truncated TGA image: its header says 8192x8192'          infer "$T/idx.bin" "$T/rle_short.tga"
bad image_pgm_maxval_0   65 'maxval0.pgm: PNM image: maxval 0 (must be 1 to 65535)'                 infer "$T/idx.bin" "$T/maxval0.pgm"
bad image_bmp_header_only 65 'hdr_only.bmp: truncated BMP image: its header says 8192x8192'         infer "$T/idx.bin" "$T/hdr_only.bmp"
nn infer "$T/idx.bin" "$T/ok_raw.tga" "$T/ok_rle.tga" "$T/ok_run.tga" "$T/ok_up.bmp" "$T/ok_down.bmp"
if [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | wc -l)" = 5 ] &&
    [ "$(printf '%s\n' "$OUT" | sed -n 1p | cut -d' ' -f2-)" = "$(printf '%s\n' "$OUT" | sed -n 2p | cut -d' ' -f2-)" ]; then
    pass bad/image_valid_raw_rle_decode
else
    fail bad/image_valid_raw_rle_decode "valid raw/RLE TGA and BMP files (bottom-up, top-down) should decode ($(rc_text "$RC"); the raw and RLE TGA the same)" "$OUT" "stderr: $ERR"
fi

# an empty class folder beside a full one (UBSan: qsort/memcpy of NULL with
# 0 elements in the image-set loader; run under `make test-asan`)
mkdir -p "$T/ecls/a" "$T/ecls/b"
cp "$T/ok_raw.tga" "$T/ecls/a/"
variant emptyclass 'm["input"] = {"shape": [1, 8, 8]}; m["layers"] = [{"type": "flatten"}, {"type": "dense", "units": 2}, {"type": "softmax"}]
m["data"] = {"train": {"format": "images", "path": "ecls"}}'
nn train "$T/emptyclass.json" --output "$T/ecls.bin" --quiet
if [ "$RC" = 0 ]; then pass bad/images_empty_class_folder; else fail bad/images_empty_class_folder "$(rc_text "$RC")" "stderr: $ERR"; fi

# --- very wide CSVs and slow paths (issue 16): 2 rows of 3M features are
# legal input (the staging buffer was 4096 rows: 48 GB); 65536 class names
# are checked for duplicates by sorting, not by comparing every pair
py 'import sys
n = 3000000
with open(sys.argv[1] + "/wide.csv", "w") as f:
    f.write(",".join("f%d" % i for i in range(n)) + ",y\n")
    for r in range(2):
        f.write("1," * n + "%d\n" % r)' "$T"
variant wide 'm["input"] = {"shape": [3000000]}; m["layers"] = [{"type": "dense", "units": 2}, {"type": "softmax"}]
m["train"]["batch_size"] = 2; m["data"] = {"train": {"format": "csv", "path": "wide.csv", "label": "y"}}'
nn train "$T/wide.json" --output "$T/wide.bin" --epochs 1 --quiet
if [ "$RC" = 0 ]; then pass bad/csv_3m_features; else fail bad/csv_3m_features "2 rows of 3M features: $(rc_text "$RC")" "stderr: $ERR"; fi
rm -f "$T/wide.csv" "$T/wide.bin"
variant manyclasses 'D["classes"] = ["c%d" % i for i in range(65536)]; L[1]["units"] = 65536; del D["test"]'
variant dupclass 'D["classes"] = ["c%d" % i for i in range(65536)]; D["classes"][40000] = "c7"'
t0=$(date +%s)
nn summary "$T/manyclasses.json"
t1=$(date +%s)
if [ "$RC" = 0 ] && [ $((t1 - t0)) -lt 8 ]; then pass bad/summary_65536_classes_fast; else fail bad/summary_65536_classes_fast "summary with 65536 class names: $(rc_text "$RC") after $((t1 - t0)) s (took 10-34 s with a pairwise check)" "stderr: $ERR"; fi
bad classes_duplicate    65 "dupclass.json: data.classes[40000]: 'c7' is already data.classes[7]"   summary "$T/dupclass.json"

# --- messages that say what is wrong (issue 16, "also confusing")
py 'import json,struct,sys,zlib
t = sys.argv[1]
def chunk(k, d): return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
open(t + "/huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))
open(t + "/cr_only.csv", "wb").write(b"a,b,c,d,species\r5.1,3.5,1.4,0.2,setosa\r")
m = json.load(open(t + "/base.json")); m["name"] = "a\u0000b"
open(t + "/nulname.json", "w").write(json.dumps(m))
open(t + "/bignum.json", "w").write(open(t + "/base.json").read().replace("\"lr\": 0.01", "\"lr\": 1e400"))
open(t + "/deep.json", "w").write("{\"name\": " + "[" * 1500 + "]" * 1500 + "}")' "$T"
variant inputname 'L[0]["name"] = "input"'
bad image_too_large_png  65 'huge.png: image is 100000x100000 pixels; the limit is 67108864 pixels'  infer "$T/idx.bin" "$T/huge.png"
bad csv_cr_only          65 'cr_only.csv:1: the line ends in a lone CR (classic Mac line endings)'  infer "$T/good.bin" "$T/cr_only.csv"
bad layer_named_input    65 "inputname.json: layers[0]: name: 'input' is reserved for the network input" train "$T/inputname.json"
bad json_nul_in_string   65 'nulname.json:1:12: a NUL character (\u0000) in a string is not allowed' summary "$T/nulname.json"
bad json_number_overflow 65 'bignum.json: optimizer.lr: a number beyond the range of a double'      summary "$T/bignum.json"
bad json_nesting_limit   65 're:deep\.json:1:[0-9]+: JSON nested deeper than 1000 levels'           summary "$T/deep.json"
py 'import sys; open(sys.argv[1], "w").write("the cat sat on the mat. " * 20)' "$T/cat.txt"
cat >"$T/smallemb.json" <<'JSON'
{"name": "e", "layers": [{"type": "embedding", "input_dim": 3, "output_dim": 4}, {"type": "dense", "units": "vocab"}, {"type": "softmax"}],
 "train": {"epochs": 1, "batch_size": 8, "seed": 1},
 "data": {"train": {"format": "text", "path": "cat.txt", "sequence_length": 8}}}
JSON
bad embedding_below_vocab 65 're:smallemb\.json: layers\[0\]\.input_dim: 3 is smaller than the text.s vocabulary of [0-9]+ symbols' train "$T/smallemb.json" --output "$T/emb.bin"
cp "$T/good.bin" "$T/model_copy.json"
nn summary "$T/model_copy.json"
if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^model t '; then pass bad/summary_by_content; else fail bad/summary_by_content "summary of a model.bin named .json: $(rc_text "$RC")" "stderr: $ERR"; fi

# --- crafted checkpoints (issue 16): every resume field is checked against
# the model and the data before training continues
nn train "$T/base.json" --output "$T/ck.bin" --checkpoint "$T/good.ckpt" --checkpoint-every 1e --quiet
[ "$RC" = 0 ] && [ -f "$T/good.ckpt" ] || fail setup "writing a checkpoint of $T/base.json failed ($(rc_text "$RC"))" "$ERR"
py 'import json,struct,sys,zlib
t = sys.argv[1]
d = open(t + "/good.ckpt", "rb").read()
H = struct.unpack("<Q", d[16:24])[0]
D = (24 + H + 63) // 64 * 64
def write(name, change, data=None):
    h = json.loads(d[24:24 + H]); change(h)
    j = json.dumps(h, separators=(",", ":")).encode()
    b = d[:8] + struct.pack("<IIQ", 1, 0, len(j)) + j
    b += bytes(-len(b) % 64) + (data if data is not None else d[D:-4])
    open(t + "/" + name + ".ckpt", "wb").write(b + struct.pack("<I", zlib.crc32(b)))
def res(k, v): return lambda h: h["extra"]["resume"].__setitem__(k, v)
write("ep1e9", res("epoch", 1e9))
write("ep1e300", res("epoch", 1e300))
write("epneg", res("epoch", -3))
write("batchbig", res("batch", 10 ** 6))
write("stepfrac", res("step", 2.5))
write("accbig", res("acc", [1e39, 0, 0]))
write("samples", res("train_samples", 1e300))
h = json.loads(d[24:24 + H]); m2 = [x for x in h["tensors"] if x["name"] == "optimizer.m2"][0]
data = bytearray(d[D:-4]); data[m2["offset"]:m2["offset"] + 4] = struct.pack("<f", -1.0)
write("m2neg", lambda h: None, bytes(data))' "$T"
bad ckpt_epoch_1e9       65 'ep1e9.ckpt: header extra.resume.epoch: 1000000000 is not an integer from 1 to 3' train "$T/base.json" --resume "$T/ep1e9.ckpt" --output "$T/ck.bin"
bad ckpt_epoch_1e300     65 're:ep1e300\.ckpt: header extra\.resume\.epoch: 1e\+300 is not an integer'  train "$T/base.json" --resume "$T/ep1e300.ckpt" --output "$T/ck.bin"
bad ckpt_epoch_negative  65 'epneg.ckpt: header extra.resume.epoch: -3 is not an integer'              train "$T/base.json" --resume "$T/epneg.ckpt" --output "$T/ck.bin"
bad ckpt_batch_beyond    65 're:batchbig\.ckpt: header extra\.resume\.batch: 1000000 is not an integer from 0 to [0-9]+' train "$T/base.json" --resume "$T/batchbig.ckpt" --output "$T/ck.bin"
bad ckpt_step_fraction   65 'stepfrac.ckpt: header extra.resume.step: 2.5 is not an integer'           train "$T/base.json" --resume "$T/stepfrac.ckpt" --output "$T/ck.bin"
bad ckpt_acc_not_float   65 'accbig.ckpt: header extra.resume.acc[0]: not a finite float'              train "$T/base.json" --resume "$T/accbig.ckpt" --output "$T/ck.bin"
bad ckpt_samples_huge    65 're:samples\.ckpt: header extra\.resume\.train_samples: 1e\+300 is not an integer' train "$T/base.json" --resume "$T/samples.ckpt" --output "$T/ck.bin"
bad ckpt_adam_m2_negative 65 "m2neg.ckpt: tensor 'optimizer.m2'[0] is -1: must be finite and >= 0"      train "$T/base.json" --resume "$T/m2neg.ckpt" --output "$T/ck.bin"
# the state of another optimizer is refused, even when its buffers would fit
variant rmsresume 'm["optimizer"] = {"type": "rmsprop", "lr": 0.01, "momentum": 0.9}'
bad ckpt_other_optimizer 65 "good.ckpt: the checkpoint was taken with the adam optimizer, $T/rmsresume.json uses rmsprop" train "$T/rmsresume.json" --resume "$T/good.ckpt" --output "$T/ck.bin"

# --- lr schedules and early stopping (issue 12): errors name the JSON path
variant sched_gamma 'm["train"]["lr_schedule"] = {"type": "step", "step_size": 2, "gamma": 1.5}'
variant sched_type 'm["train"]["lr_schedule"] = {"type": "cosin"}'
variant sched_milestones 'm["train"]["lr_schedule"] = {"type": "multistep", "milestones": [4, 2]}'
variant sched_key 'm["train"]["lr_schedule"] = {"type": "plateau", "patiance": 3}'
variant es_nosplit 'm["train"]["early_stopping"] = {"patience": 2}'
variant es_monitor 'm["train"]["validation_split"] = 0.2; m["train"]["early_stopping"] = {"monitor": "val_mae"}'
bad sched_gamma      65 'sched_gamma.json: train.lr_schedule.gamma: must be in (0, 1], got 1.5' train "$T/sched_gamma.json" --output "$T/s.bin"
bad sched_type       65 "sched_type.json: train.lr_schedule.type: unknown schedule 'cosin' (did you mean 'cosine'?)" train "$T/sched_type.json" --output "$T/s.bin"
bad sched_milestones 65 'sched_milestones.json: train.lr_schedule.milestones[1]: 2 is not after the milestone before it (4)' train "$T/sched_milestones.json" --output "$T/s.bin"
bad sched_unknown_key 65 "sched_key.json: train.lr_schedule: unknown key 'patiance' (did you mean 'patience'?)" train "$T/sched_key.json" --output "$T/s.bin"
bad es_no_split      65 "es_nosplit.json: train.early_stopping.monitor: 'val_loss' needs a validation split" train "$T/es_nosplit.json" --output "$T/s.bin"
bad es_monitor       65 "es_monitor.json: train.early_stopping.monitor: unknown value 'val_mae' (known: val_loss, val_accuracy, loss, accuracy)" train "$T/es_monitor.json" --output "$T/s.bin"
# checkpoint format 1 (before schedules) cannot resume a run with a schedule;
# a format from the future is refused
variant sched_ok 'm["train"]["lr_schedule"] = {"type": "exponential", "gamma": 0.9}'
nn train "$T/sched_ok.json" --output "$T/s.bin" --checkpoint "$T/sched.ckpt" --checkpoint-every 1e --quiet
[ "$RC" = 0 ] && [ -f "$T/sched.ckpt" ] || fail setup "writing a checkpoint of $T/sched_ok.json failed ($(rc_text "$RC"))" "$ERR"
py 'import json,struct,sys,zlib
t = sys.argv[1]
def write(src, name, change):
    d = open(t + "/" + src + ".ckpt", "rb").read()
    H = struct.unpack("<Q", d[16:24])[0]
    D = (24 + H + 63) // 64 * 64
    h = json.loads(d[24:24 + H]); change(h["extra"]["resume"])
    j = json.dumps(h, separators=(",", ":")).encode()
    b = d[:8] + struct.pack("<IIQ", 1, 0, len(j)) + j
    b += bytes(-len(b) % 64) + d[D:-4]
    open(t + "/" + name + ".ckpt", "wb").write(b + struct.pack("<I", zlib.crc32(b)))
write("sched", "fmt1", lambda r: (r.pop("format"), r.pop("schedule")))
write("sched", "fmt3", lambda r: r.__setitem__("format", 3))
write("sched", "schedlr", lambda r: r["schedule"].__setitem__("lr", -0.5))
write("good", "plain_fmt1", lambda r: r.pop("format"))' "$T"
bad ckpt_format1_sched 65 'fmt1.ckpt: checkpoint format 1 holds no learning-rate schedule or early-stopping state' train "$T/sched_ok.json" --resume "$T/fmt1.ckpt" --output "$T/s.bin"
bad ckpt_format_future 65 'fmt3.ckpt: header extra.resume.format: 3 is not an integer from 1 to 2' train "$T/sched_ok.json" --resume "$T/fmt3.ckpt" --output "$T/s.bin"
bad ckpt_sched_lr      65 'schedlr.ckpt: header extra.resume.schedule.lr: -0.5 is not a number from 0 to' train "$T/sched_ok.json" --resume "$T/schedlr.ckpt" --output "$T/s.bin"
bad ckpt_sched_changed 65 "sched.ckpt: the checkpoint's train.lr_schedule differs from" train "$T/base.json" --resume "$T/sched.ckpt" --output "$T/s.bin"
nn train "$T/base.json" --resume "$T/plain_fmt1.ckpt" --output "$T/s.bin" --quiet
WHY="a format-1 checkpoint of a run without schedule or early stopping must resume: $(rc_text "$RC")"
DETAIL="$ERR"
check sched/format1_resumes_plain test "$RC" = 0

# --- host out of memory (issue 16): a documented code (71) naming what was
# being allocated; a 512 MiB file under a 300 MB address-space limit (not
# under ASan, which reserves terabytes of address space)
truncate -s 512M "$T/big.csv"
variant bigcsv 'D["train"]["path"] = "big.csv"'
case $NNRUN in
*asan*) skip bad/host_out_of_memory_71 "ASan reserves terabytes of virtual memory: a ulimit -v test cannot run under it" ;;
*)
    (ulimit -v 300000 && exec timeout --foreground -k 10 "$TMO" "$NNRUN" train "$T/bigcsv.json") </dev/null >"$T/out" 2>"$T/err"
    RC=$?
    if [ "$RC" = 71 ] && grep -q 'out of memory reading .*big\.csv (' "$T/err"; then
        pass bad/host_out_of_memory_71
    else
        fail bad/host_out_of_memory_71 "expected exit 71 and 'out of memory reading ...big.csv (N bytes)', got $(rc_text "$RC")" "stderr: $(cat "$T/err")"
    fi
    ;;
esac
rm -f "$T/big.csv"

# --- caches that rot (issue 16): a cache is an optimisation; a bad entry is
# rebuilt or ignored with at most a warning, never a crash or "no device"
mkdir -p "$T/kcache" "$T/tcache"
NNRUN_CACHE_DIR=$T/kcache nn eval "$T/good.bin"
kc=$(ls "$T"/kcache/*.nnkc 2>/dev/null | head -n 1)
if [ "$RC" = 0 ] && [ -n "$kc" ]; then
    py 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 0x40; open(sys.argv[1], "wb").write(d)' "$kc"
    NNRUN_CACHE_DIR=$T/kcache nn eval "$T/good.bin"
    if [ "$RC" = 0 ]; then pass bad/kernel_cache_bitflip; else fail bad/kernel_cache_bitflip "a bit-flipped kernel-cache entry: $(rc_text "$RC")" "stderr: $ERR"; fi
    head -c 1000 "$kc" >"$kc.cut" && mv "$kc.cut" "$kc"
    NNRUN_CACHE_DIR=$T/kcache nn eval "$T/good.bin"
    if [ "$RC" = 0 ]; then pass bad/kernel_cache_truncated; else fail bad/kernel_cache_truncated "a truncated kernel-cache entry: $(rc_text "$RC")" "stderr: $ERR"; fi
else
    fail bad/kernel_cache_written "eval with an empty cache folder wrote no kernel-cache entry ($(rc_text "$RC"))" "stderr: $ERR"
fi
# tune files of the default device (named as src/tune.c names them) with
# parameters out of range: ignored with one warning
nn devices --json
tune_hash=$(printf '%s\n' "$OUT" | py 'import json,sys
d = [json.loads(l) for l in sys.stdin if l.strip()]
d = [x for x in d if x.get("default")][0]
h = 0xcbf29ce484222325
for ch in (d["platform"] + d["name"] + d["version"] + d["driver"]).encode():
    h = ((h ^ ch) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)')
tune_file() { # PARAMS: writes the CLBlast tune file of the default device
    printf 'XGEMM_MIN_INDIRECT_SIZE 4611686018427387904 XgemmDirect %s\n' "$1" >"$T/tcache/clblast-$tune_hash.tune"
}
warn_ok() { # NAME FRAGMENT: exit 0 with exactly one warning containing FRAGMENT
    if [ "$RC" = 0 ] && [ "$(printf '%s\n' "$ERR" | grep -c '^nnrun: warning:')" = 1 ] && printf '%s\n' "$ERR" | grep -Eq -- "$2"; then
        pass "bad/$1"
    else
        fail "bad/$1" "expected exit 0 and one warning matching '$2', got $(rc_text "$RC")" "stderr: $ERR"
    fi
}
tune_file 'WGD 0 MDIMCD 8 NDIMCD 8 MDIMAD 8 NDIMBD 8 KWID 2 VWMD 1 VWND 1 PADA 1 PADB 1'
NNRUN_CACHE_DIR=$T/tcache nn eval "$T/good.bin"
warn_ok tune_wgd_zero 'clblast-[0-9a-f]+\.tune: ignored, WGD=0 is out of range'
tune_file 'WGD 256 MDIMCD 256 NDIMCD 256 MDIMAD 256 NDIMBD 256 KWID 2 VWMD 1 VWND 1 PADA 1 PADB 1'
NNRUN_CACHE_DIR=$T/tcache nn eval "$T/good.bin"
warn_ok tune_huge_work_group 'clblast-[0-9a-f]+\.tune: ignored, the parameters (break|need)'
rm -f "$T/tcache/clblast-$tune_hash.tune"
mkfifo "$T/tcache/clblast-$tune_hash.tune"
NNRUN_CACHE_DIR=$T/tcache nn eval "$T/good.bin"
if [ "$RC" = 0 ]; then pass bad/tune_file_fifo; else fail bad/tune_file_fifo "a FIFO as the tune file: $(rc_text "$RC")" "stderr: $ERR"; fi
# PoCL's cache folder pointing at a file (or empty): moved, one warning
printf 'not a folder\n' >"$T/afile"
POCL_CACHE_DIR=$T/afile nn eval "$T/good.bin"
warn_ok pocl_cache_dir_file 'POCL_CACHE_DIR=.*afile is not a usable folder'
POCL_CACHE_DIR= nn eval "$T/good.bin"
warn_ok pocl_cache_dir_empty "POCL_CACHE_DIR=: '' is not a usable folder"
(unset POCL_CACHE_DIR; XDG_CACHE_HOME=$T/afile exec timeout --foreground -k 10 "$TMO" "$NNRUN" eval "$T/good.bin") </dev/null >"$T/out" 2>"$T/err"
RC=$?
ERR=$(cat "$T/err")
warn_ok xdg_cache_home_file 'XDG_CACHE_HOME=.*afile/pocl is not a usable folder'

# --- output files
mkdir -p "$T/outdir"
bad output_missing_dir   74 "$T/no/such/dir/m.bin"                                                 train "$T/base.json" --output "$T/no/such/dir/m.bin" --quiet
bad output_is_folder     74 "$T/outdir"                                                            train "$T/base.json" --output "$T/outdir" --quiet
bad log_missing_dir      74 "$T/no/such/dir/log.csv"                                               train "$T/base.json" --log "$T/no/such/dir/log.csv" --output "$T/log.bin"
# outputs that are not files (issue 16): a device node is never replaced,
# every write is checked, a file nnrun did not write is never truncated
printf 'precious notes\n' >"$T/notes.txt"
bad output_device_node   74 '/dev/full: is a character device; refusing to replace'                train "$T/base.json" --output /dev/full --quiet
bad checkpoint_device    74 '/dev/full: is a character device; refusing to replace'                train "$T/base.json" --checkpoint /dev/full --checkpoint-every 1e --output "$T/ck.bin" --quiet
bad log_device_node      74 '/dev/full: is a character device; refusing to replace'                train "$T/base.json" --log /dev/full --output "$T/log.bin" --quiet
bad log_not_nnruns       74 'notes.txt: exists and is not a file nnrun wrote; refusing to overwrite' train "$T/base.json" --log "$T/notes.txt" --output "$T/log.bin" --quiet
timeout --foreground -k 10 "$TMO" "$NNRUN" infer "$T/good.bin" "$T/iris_test.csv" </dev/null >/dev/full 2>"$T/err"
RC=$?
if [ "$RC" = 74 ] && grep -q 'writing to standard output failed' "$T/err"; then
    pass bad/stdout_full
else
    fail bad/stdout_full "infer >/dev/full: expected exit 74 and 'writing to standard output failed', got $(rc_text "$RC")" "stderr: $(cat "$T/err")"
fi
if [ -c /dev/full ]; then pass bad/device_node_intact; else fail bad/device_node_intact "/dev/full is no longer a device node"; fi
bad plot_missing_dir     74 "$T/no/such/dir/curves.png"                                            train "$T/base.json" --plot "$T/no/such/dir/curves.png" --output "$T/plot.bin" --quiet
bad plot_is_folder       74 "$T/outdir"                                                            train "$T/base.json" --plot "$T/outdir" --output "$T/plot.bin" --quiet
bad plot_device_node     74 '/dev/full: is a character device; refusing to replace'                train "$T/base.json" --plot /dev/full --output "$T/plot.bin" --quiet
bad plot_not_nnruns      74 'notes.txt: exists and is not a file nnrun wrote; refusing to overwrite' train "$T/base.json" --plot "$T/notes.txt" --output "$T/plot.bin" --quiet
nn train "$T/base.json" --output "$T/log.bin" --log "$T/run.log" --quiet
cp "$T/run.log" "$T/run.log.before"
nn train "$T/nonnum.json" --output "$T/log.bin" --log "$T/run.log" --quiet
if [ "$RC" = 65 ] && [ -s "$T/run.log" ] && cmp -s "$T/run.log" "$T/run.log.before"; then
    pass bad/log_kept_on_bad_data
else
    fail bad/log_kept_on_bad_data "a run that failed on bad data ($(rc_text "$RC")) changed the existing metrics log" "stderr: $ERR"
fi

# train --output DIR/missing: the path cannot work, so it should fail before
# spending the training time (as --log does), not after the last epoch.
nn train "$T/base.json" --output "$T/no/such/dir/m.bin" --json
if [ "$RC" = 74 ] && ! grep -q '"event":"epoch"' "$T/out"; then
    pass bad/output_missing_dir_fails_early
else
    fail bad/output_missing_dir_fails_early "nnrun trained $(grep -c '"event":"epoch"' "$T/out") epoch(s) before failing with $(rc_text "$RC") on an --output in a missing folder" "stderr: $ERR"
fi

# --plot: checked before training as --output is (no epoch runs first)
nn train "$T/base.json" --output "$T/plot.bin" --plot "$T/no/such/dir/curves.png" --json
if [ "$RC" = 74 ] && ! grep -q '"event":"epoch"' "$T/out" && [ ! -e "$T/plot.bin" ]; then
    pass bad/plot_missing_dir_fails_early
else
    fail bad/plot_missing_dir_fails_early "nnrun trained $(grep -c '"event":"epoch"' "$T/out") epoch(s) before failing with $(rc_text "$RC") on a --plot in a missing folder" "stderr: $ERR"
fi
# png_size FILE W H: FILE is a PNG (signature, IHDR first) of W x H pixels.
png_size() {
    py 'import struct,sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR", d[:16]
w, h = struct.unpack(">II", d[16:24])
assert (w, h) == (int(sys.argv[2]), int(sys.argv[3])), (w, h)
assert d[-8:-4] == b"IEND"' "$@" 2>&1
}
# one epoch, no validation; then with a validation split (plot_val)
nn train "$T/base.json" --epochs 1 --output "$T/plot.bin" --plot "$T/one.png" --quiet
WHY="exit $RC; $(png_size "$T/one.png" 1000 400)"
DETAIL="$ERR"
check plot/one_epoch eval '[ "$RC" = 0 ] && png_size "$T/one.png" 1000 400 >/dev/null'
variant plot_val 'm["train"]["validation_split"] = 0.2'
cp "$T/one.png" "$T/val.png" # an existing PNG is replaced
nn train "$T/plot_val.json" --epochs 3 --output "$T/plot.bin" --plot "$T/val.png" --quiet
WHY="exit $RC; $(png_size "$T/val.png" 1000 400)"
DETAIL="$ERR"
check plot/validation eval '[ "$RC" = 0 ] && png_size "$T/val.png" 1000 400 >/dev/null && ! cmp -s "$T/one.png" "$T/val.png" &&
    [ -z "$(find "$T" -maxdepth 1 -name ".val.png.tmp.*")" ]'

# A failed run must not replace an existing model (bad data, divergence)
cp "$T/good.bin" "$T/keep.bin"
keep_check() { # NAME RC
    if [ "$RC" = "$2" ] && cmp -s "$T/good.bin" "$T/keep.bin"; then
        pass "bad/$1"
    else
        fail "bad/$1" "expected exit $2 and $T/keep.bin unchanged; got $(rc_text "$RC"), file $(cmp -s "$T/good.bin" "$T/keep.bin" && echo unchanged || echo CHANGED)" "stderr: $ERR"
        cp "$T/good.bin" "$T/keep.bin"
    fi
}
nn train "$T/nonnum.json" --output "$T/keep.bin"
keep_check keep_model_on_bad_data 65
py 'import random,sys
r = random.Random(0)
with open(sys.argv[1] + "/huge.csv", "w") as f:
    f.write("a,b,y\n")
    for i in range(64):
        f.write("%g,%g,%g\n" % (r.uniform(-1, 1) * 1e18, r.uniform(-1, 1) * 1e18, r.uniform(-1, 1) * 1e18))' "$T"
variant diverge 'm["loss"] = "mse"; m["optimizer"] = {"type": "sgd", "lr": 10}; m["input"] = {"shape": [2]}
m["layers"] = [{"type": "dense", "units": 1}]; m["data"] = {"train": {"format": "csv", "path": "huge.csv", "label": "y"}}'
nn train "$T/diverge.json" --output "$T/keep.bin" --epochs 3
keep_check keep_model_on_divergence 75
if printf '%s\n' "$ERR" | grep -q 'training diverged in epoch'; then pass bad/diverged_message; else fail bad/diverged_message "stderr lacks 'training diverged in epoch'" "stderr: $ERR"; fi
left=$(find "$T" -maxdepth 1 -name '.*.tmp.*')
if [ -z "$left" ]; then pass bad/no_temp_files_left; else fail bad/no_temp_files_left "temporary files left behind" "$left"; fi

# ============================================================ functional
# ok NAME ARGS...: nnrun ARGS must exit 0.
ok() {
    local name=$1
    shift
    nn "$@"
    if [ "$RC" = 0 ]; then pass "$name"; else fail "$name" "nnrun $* gave $(rc_text "$RC")" "stderr: $ERR"; fi
    [ "$RC" = 0 ]
}
# jsonl FILE: every line is a JSON object.
jsonl() { py 'import json,sys
n = 0
for l in open(sys.argv[1]):
    assert isinstance(json.loads(l), dict); n += 1
assert n > 0' "$1" 2>/dev/null; }

# --- version, help
nn --version
WHY="got $(rc_text "$RC"): $OUT"
check version test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep -E '^nnrun [0-9]+\.[0-9]+')"
nn --help
check help test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'usage: nnrun COMMAND')"
# every command listed by --help (at least the five documented ones)
cmds=$(printf '%s\n' "$OUT" | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' | tr '\n' ' ')
WHY="nnrun --help lists '$cmds'"
missing=""
for c in train eval infer devices summary; do
    case " $cmds " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
check help/lists_commands test -z "$missing" -a -n "$cmds"
for c in $cmds; do
    nn "$c" --help
    WHY="exit $RC, stdout: $(printf '%s' "$OUT" | head -n 1)"
    check "help/$c" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep "^usage: nnrun $c ")"
done

# --- devices
nn devices
WHY="exit $RC; expected one line starting with '* '"
DETAIL="$OUT$ERR"
check devices test "$RC" = 0 -a "$(printf '%s\n' "$OUT" | grep -c '^\* ')" = 1
nn devices --json
cp "$T/out" "$T/devices.jsonl"
WHY="exit $RC, or lines that are not JSON, or not exactly one default device"
DETAIL="$OUT"
check devices/json eval '[ "$RC" = 0 ] && jsonl "$T/devices.jsonl" && py "import json,sys; d=[json.loads(l) for l in open(sys.argv[1])]; assert sum(x[\"default\"] is True for x in d) == 1 and all(\"name\" in x and \"index\" in x for x in d)" "$T/devices.jsonl"'

# --- summary
nn summary "$ROOT/models/fashion_mlp.json"
WHY="exit $RC; expected 'parameters 535818' and a row per layer"
DETAIL="$OUT$ERR"
check summary/fashion eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "parameters 535818" &&
    printf "%s\n" "$OUT" | grep -Eq "^#.*name.*type.*output.*params" &&
    [ "$(printf "%s\n" "$OUT" | grep -Ec "^[0-9]+ +(flatten|dense|softmax)")" = 5 ] &&
    printf "%s\n" "$OUT" | grep -Eq "^1 +dense_1 +dense\+relu .*\[512\] +401920"'
nn summary "$ROOT/models/fashion_mlp.json" --json
WHY="exit $RC; expected JSON with parameters 535818 and 5 layers"
DETAIL="$OUT$ERR"
check summary/fashion_json eval '[ "$RC" = 0 ] && py "import json,sys; d=json.loads(sys.argv[1]); assert d[\"parameters\"] == 535818 and len(d[\"layers\"]) == 5" "$OUT"'

# --- iris: train (from another folder: data paths are relative to the JSON)
IRIS=$T/iris.bin
NN_CWD=$T nn train "$ROOT/models/iris_mlp.json" --output "$IRIS" --json --log "$T/iris_log.csv" --plot "$T/iris.png"
cp "$T/out" "$T/iris_train.jsonl"
WHY="exit $RC"
DETAIL="$ERR"
check iris/train test "$RC" = 0 -a -s "$IRIS"
WHY="the --json lines do not all parse"
DETAIL="$(head -n 3 "$T/iris_train.jsonl")"
check iris/train_json jsonl "$T/iris_train.jsonl"
WHY="expected events start, epoch 1..100 in order, test, saved"
check iris/train_events py 'import json,sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e["event"] for e in ev]
assert kinds[0] == "start" and kinds[-2:] == ["test", "saved"], kinds
ep = [e for e in ev if e["event"] == "epoch"]
assert [e["epoch"] for e in ep] == list(range(1, 101)), len(ep)
assert all(e["epochs"] == 100 and e["loss"] >= 0 and 0 <= e["accuracy"] <= 1 for e in ep)
assert ev[-1]["path"] == sys.argv[2]' "$T/iris_train.jsonl" "$IRIS"
acc=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-2].get("accuracy", -1))' "$T/iris_train.jsonl" 2>/dev/null)
WHY="test accuracy ${acc:-?} < 0.95"
check iris/test_accuracy py 'import sys; assert float(sys.argv[1]) >= 0.95' "${acc:--1}"
WHY="--log: expected a header line and 100 rows of 7 numbers"
DETAIL="$(head -n 3 "$T/iris_log.csv" 2>&1)"
check iris/log_csv py 'import csv,sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][:3] == ["epoch", "loss", "accuracy"], rows[0]
assert len(rows) == 101 and all(len(r) == len(rows[0]) for r in rows)
assert [int(r[0]) for r in rows[1:]] == list(range(1, 101))
[float(x) for r in rows[1:] for x in r]' "$T/iris_log.csv"

WHY="--plot: $(png_size "$T/iris.png" 1000 400)"
check iris/plot png_size "$T/iris.png" 1000 400

# --- iris: eval
nn eval "$IRIS"
WHY="exit $RC, stdout: $OUT"
check iris/eval eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Eq "^accuracy (0\.9[5-9]|1\.0)[0-9]* .*samples 45"'
ok iris/eval_gate_pass eval "$IRIS" --min-accuracy 0.9
nn eval "$IRIS" --min-accuracy 0.999
WHY="expected exit 1 and 'below --min-accuracy', got $(rc_text "$RC"): $ERR"
check iris/eval_gate_fail eval '[ "$RC" = 1 ] && printf "%s\n" "$ERR" | grep -q "below --min-accuracy 0.999"'
nn eval "$IRIS" --json --data "$ROOT/data/iris.csv"
WHY="exit $RC; expected one JSON object with samples 105 and passed true"
DETAIL="$OUT$ERR"
check iris/eval_json_data eval '[ "$RC" = 0 ] && py "import json,sys; d=json.loads(sys.argv[1]); assert d[\"samples\"] == 105 and d[\"passed\"] is True and d[\"accuracy\"] > 0.9" "$OUT"'
o1=$OUT
nn eval "$IRIS" "$ROOT/data/iris.csv" --json
WHY="eval MODEL DATA --json differs from eval MODEL --data DATA --json (exit $RC)"
DETAIL="$OUT$ERR"
check eval/positional_data eval '[ "$RC" = 0 ] && [ "$OUT" = "$o1" ]'
bad eval_data_twice       2 "nnrun eval: the data is given twice"                                  eval "$IRIS" "$ROOT/data/iris.csv" --data "$ROOT/data/iris.csv"
bad eval_three_args       2 "unexpected argument"                                                  eval "$IRIS" "$ROOT/data/iris.csv" "$ROOT/data/iris.csv"

# eval's per-class report and confusion matrix against sklearn's definitions
# (classification_report, zero_division=0; confusion_matrix), computed here
# from infer's predictions and the CSV's labels: the iris test set, and a
# subset holding only two of the classes (listed: those in the data or the
# predictions, as sklearn lists them). A 2-epoch model, so mistakes exist.
head -n 1 "$T/iris_test.csv" >"$T/two_classes.csv"
grep -E ',(setosa|versicolor)$' "$T/iris_test.csv" >>"$T/two_classes.csv"
for f in iris_test two_classes; do
    nn infer "$T/good.bin" "$T/$f.csv" --json
    cp "$T/out" "$T/$f.preds"
    r1=$RC
    nn eval "$T/good.bin" "$T/$f.csv" --json
    cp "$T/out" "$T/$f.report.json"
    r2=$RC
    nn eval "$T/good.bin" "$T/$f.csv"
    cp "$T/out" "$T/$f.report.txt"
    WHY="infer exit $r1, eval exit $r2/$RC, or the report differs from the reference"
    DETAIL="$(py 'import json,sys
classes = ["setosa", "versicolor", "virginica"]
true = [l.strip().split(",")[-1] for l in open(sys.argv[1]).readlines()[1:]]
pred = [json.loads(l)["predictions"][0]["label"] for l in open(sys.argv[2])]
assert len(true) == len(pred) > 0
labels = [c for c in classes if c in true or c in pred]
cm = [[sum(1 for t, p in zip(true, pred) if t == a and p == b) for b in labels] for a in labels]
rows = {}
for i, c in enumerate(labels):
    tp, sup, npred = cm[i][i], sum(cm[i]), sum(r[i] for r in cm)
    p = tp / npred if npred else 0.0
    r = tp / sup if sup else 0.0
    rows[c] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, sup)
n = len(true)
macro = tuple(sum(v[k] for v in rows.values()) / len(rows) for k in range(3)) + (n,)
weighted = tuple(sum(v[k] * v[3] for v in rows.values()) / n for k in range(3)) + (n,)
acc = sum(cm[i][i] for i in range(len(labels))) / n
d = json.load(open(sys.argv[3]))
rep = d["report"]
assert d["labels"] == labels and d["confusion_matrix"] == cm and d["no_prediction"] == 0, (d["labels"], d["confusion_matrix"], cm)
assert abs(d["accuracy"] - acc) < 1e-5 and abs(rep["accuracy"] - acc) < 1e-5
for name, want in list(rows.items()) + [("macro avg", macro), ("weighted avg", weighted)]:
    got = rep[name]
    assert got["support"] == want[3], (name, got)
    for k, key in enumerate(("precision", "recall", "f1-score")):
        assert abs(got[key] - want[k]) < 1e-5, (name, key, got[key], want[k])
# the text: sklearn'"'"'s layout (digits=4), after the unchanged summary line
w, dg = max(12, max(len(c) for c in labels)), 4
row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
want = "{:>{width}s} ".format("", width=w) + " {:>9}" * 4
want = want.format("precision", "recall", "f1-score", "support") + "\n\n"
for c in labels:
    want += row.format(c, *rows[c], width=w, digits=dg)
want += "\n" + ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n").format("accuracy", "", "", acc, n, width=w, digits=dg)
want += row.format("macro avg", *macro, width=w, digits=dg) + row.format("weighted avg", *weighted, width=w, digits=dg)
txt = open(sys.argv[4]).read()
assert txt.startswith("accuracy %.4f  loss " % acc), txt[:60]
assert "\n\n" + want + "\n" in txt, (want, txt)
nw = max(len(c) for c in labels)
cw = [max(len(c), max(len(str(r[j])) for r in cm)) for j, c in enumerate(labels)]
mat = " " * nw + "".join("  %*s" % (cw[j], c) for j, c in enumerate(labels)) + "\n"
for i, c in enumerate(labels):
    mat += "%*s" % (nw, c) + "".join("  %*d" % (cw[j], cm[i][j]) for j in range(len(labels))) + "\n"
assert txt.endswith("confusion matrix (rows: true class, columns: predicted class)\n" + mat), txt
' "$T/$f.csv" "$T/$f.preds" "$T/$f.report.json" "$T/$f.report.txt" 2>&1 | tail -n 4)"
    check "eval/report_$f" eval '[ "$r1$r2$RC" = 000 ] && [ -z "$DETAIL" ]'
done

# --- early stopping with a plateau schedule (issue 12): Iris with a 20%
# validation split and a high lr, so val_loss stalls; early stopping must stop
# `patience` epochs after the best one, say so, and model.bin must hold the
# best epoch's weights: the tensor data of a run of exactly that many epochs
es_model "$T/es.json"
# tensor_data A B: the tensor data (not the header, which records train.epochs) of two model.bin files are equal
tensor_data() { py 'import struct,sys
def data(p):
    d = open(p, "rb").read(); H = struct.unpack("<Q", d[16:24])[0]
    return d[(24 + H + 63) // 64 * 64:-4]
assert data(sys.argv[1]) == data(sys.argv[2])' "$1" "$2"; }
nn train "$T/es.json" --json --output "$T/es.bin" --log "$T/es_log.csv"
cp "$T/out" "$T/es.jsonl"
WHY="exit $RC; expected epoch events with lr, one early_stopping event (stopped, restored) 4 epochs after the best, whose best is that epoch's val_loss"
DETAIL="$(grep -v '"epoch",' "$T/es.jsonl" | head -n 5)$ERR"
check es/stops eval '[ "$RC" = 0 ] && py "import json,sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ep = [e for e in ev if e[\"event\"] == \"epoch\"]
st = [e for e in ev if e[\"event\"] == \"early_stopping\"]
assert len(st) == 1 and st[0][\"stopped\"] and st[0][\"restored\"], st
s = st[0]; b = s[\"best_epoch\"]
assert s[\"epoch\"] == ep[-1][\"epoch\"] == b + 4 < 30 and s[\"wait\"] == 4 and s[\"monitor\"] == \"val_loss\", s
assert s[\"best\"] == ep[b - 1][\"val_loss\"] == min(e[\"val_loss\"] for e in ep), (s, ep[b - 1])
assert [e[\"lr\"] for e in ep[:3]] == [0.025, 0.0375, 0.05], ep[:3]
assert all(c[\"lr\"] in (p[\"lr\"], p[\"lr\"] / 2) for p, c in zip(ep[2:], ep[3:])) and ep[-1][\"lr\"] < 0.05, ep
assert [e[\"event\"] for e in ev[-4:]] == [\"epoch\", \"early_stopping\", \"test\", \"saved\"], ev[-4:]" "$T/es.jsonl"'
WHY="--log: expected a trailing lr column equal to the JSON events' lr"
DETAIL="$(head -n 3 "$T/es_log.csv" 2>&1)"
check es/log_lr_column py 'import csv,json,sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][-1] == "lr" and len(rows[0]) == 8, rows[0]
ep = [json.loads(l) for l in open(sys.argv[2])]
ep = [e for e in ep if e["event"] == "epoch"]
assert len(rows) == len(ep) + 1 and all(abs(float(r[-1]) - e["lr"]) <= 1e-5 * e["lr"] for r, e in zip(rows[1:], ep))' \
    "$T/es_log.csv" "$T/es.jsonl"
best=$(py 'import json,sys
print([json.loads(l) for l in open(sys.argv[1]) if "\"early_stopping\"" in l][0]["best_epoch"])' "$T/es.jsonl" 2>/dev/null)
nn train "$T/es.json" --quiet --epochs "${best:-1}" --output "$T/es_best.bin"
WHY="model.bin after early stopping does not hold the weights of the best epoch (${best:-?}): exit $RC"
DETAIL="$ERR"
check es/model_is_best_epoch eval '[ "$RC" = 0 ] && tensor_data "$T/es.bin" "$T/es_best.bin"'
nn train "$T/es.json" --output "$T/es_text.bin"
WHY="the text output lacks the lr column or the early-stopping line, or differs from the JSON run's model"
DETAIL="$(printf '%s\n' "$OUT" | tail -n 4)$ERR"
check es/text eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Eq "^epoch 3/30 .* lr 0\.05 " &&
    printf "%s\n" "$OUT" | grep -Eq "^early stopping after epoch $((best + 4)): val_loss has not improved for 4 epochs; restoring the weights of epoch $best \(val_loss [0-9.]+\)$" &&
    cmp -s "$T/es.bin" "$T/es_text.bin"'
# with batch norm: its running statistics (layer state, not parameters) come back too
py 'import json,sys
m = json.load(open(sys.argv[1])); m["layers"].insert(1, {"type": "batchnorm"})
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$T/es.json" "$T/esbn.json"
nn train "$T/esbn.json" --json --output "$T/esbn.bin"
bnbest=$(py 'import json,sys
s = [json.loads(l) for l in open(sys.argv[1]) if "\"early_stopping\"" in l][0]
assert s["stopped"] and s["restored"] and s["best_epoch"] < s["epoch"]
print(s["best_epoch"])' "$T/out" 2>/dev/null)
nn train "$T/esbn.json" --quiet --epochs "${bnbest:-1}" --output "$T/esbn_best.bin"
WHY="with batchnorm: model.bin after early stopping does not hold epoch ${bnbest:-?}'s weights and running statistics: exit $RC"
DETAIL="$ERR"
check es/batchnorm_state_restored eval '[ "$RC" = 0 ] && [ -n "$bnbest" ] && tensor_data "$T/esbn.bin" "$T/esbn_best.bin"'
variant es_keep 'm["optimizer"]["lr"] = 0.2; m["train"].update(validation_split=0.2, early_stopping={"patience": 0, "restore_best_weights": False}, epochs=30)'
nn train "$T/es_keep.json" --output "$T/es_keep.bin"
WHY="restore_best_weights false: expected 'keeping the last weights'"
DETAIL="$(printf '%s\n' "$OUT" | tail -n 4)$ERR"
check es/keep_last eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Eq "^early stopping after epoch [0-9]+: val_loss has not improved for 1 epoch; keeping the last weights \(the best: epoch [0-9]+, val_loss [0-9.]+\)$"'

# --- iris: infer
nn infer "$IRIS" data/iris_test.csv
cp "$T/out" "$T/iris_infer.txt"
WHY="exit $RC; expected 45 lines 'data/iris_test.csv:N  CLASS P'"
DETAIL="$(head -n 3 "$T/iris_infer.txt")$ERR"
check iris/infer eval '[ "$RC" = 0 ] && [ "$(wc -l <"$T/iris_infer.txt")" = 45 ] &&
    [ "$(grep -Ec "^data/iris_test\.csv:[0-9]+  (setosa|versicolor|virginica) [01]\.[0-9]+$" "$T/iris_infer.txt")" = 45 ]'
WHY="infer's predictions agree with the labels in fewer than 95% of the rows"
check iris/infer_matches_labels py 'import csv,sys
truth = [r["species"] for r in csv.DictReader(open(sys.argv[1]))]
pred = [l.split()[1] for l in open(sys.argv[2])]
assert len(pred) == len(truth)
assert sum(a == b for a, b in zip(truth, pred)) >= 0.95 * len(truth)' data/iris_test.csv "$T/iris_infer.txt"
nn infer "$IRIS" data/iris_test.csv --json --top 2
cp "$T/out" "$T/iris_top2.jsonl"
WHY="exit $RC; expected 45 JSON lines, rows 1..45, 2 predictions each, most likely first"
DETAIL="$(head -n 2 "$T/iris_top2.jsonl")$ERR"
check iris/infer_json_top2 eval '[ "$RC" = 0 ] && py "import json,sys
d = [json.loads(l) for l in open(sys.argv[1])]
assert [x[\"row\"] for x in d] == list(range(1, 46))
for x in d:
    p = x[\"predictions\"]
    assert len(p) == 2 and p[0][\"probability\"] >= p[1][\"probability\"] and p[0][\"label\"] != p[1][\"label\"]
    assert p[0][\"probability\"] + p[1][\"probability\"] <= 1.0001" "$T/iris_top2.jsonl"'
# rows without the label column
cut -d, -f1-4 data/iris_test.csv >"$T/features_only.csv"
nn infer "$IRIS" "$T/features_only.csv"
WHY="exit $RC; expected 45 lines for a CSV without the label column"
DETAIL="$OUT$ERR"
check iris/infer_features_only test "$RC" = 0 -a "$(printf '%s\n' "$OUT" | grep -c 'features_only.csv:')" = 45
nn summary "$IRIS"
WHY="exit $RC; summary of a model.bin should show 131 parameters"
DETAIL="$OUT$ERR"
check iris/summary_bin eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "parameters 131 "'

# --- determinism: same seed, same bytes; another seed, other bytes
nn train models/iris_mlp.json --epochs 20 --seed 7 --output "$T/det1.bin" --quiet
r1=$RC
nn train models/iris_mlp.json --epochs 20 --seed 7 --output "$T/det2.bin" --quiet
r2=$RC
nn train models/iris_mlp.json --epochs 20 --seed 8 --output "$T/det3.bin" --quiet
r3=$RC
WHY="exits $r1/$r2, or two trainings with --seed 7 wrote different model.bin files"
check determinism/same_seed eval '[ "$r1$r2" = 00 ] && cmp -s "$T/det1.bin" "$T/det2.bin"'
WHY="exit $r3, or --seed 8 wrote the same model.bin as --seed 7"
check determinism/other_seed eval '[ "$r3" = 0 ] && ! cmp -s "$T/det1.bin" "$T/det3.bin"'

# --- command-line forms: --opt=value, "--" before a file named like an option, -h
ok args/opt_equals_value eval "$IRIS" --min-accuracy=0.9 --batch-size=16
cp data/iris_test.csv "$T/-dash.csv"
NN_CWD=$T nn infer "$IRIS" -- -dash.csv iris_test.csv
WHY="exit $RC; expected 90 lines for two CSV files, the first named '-dash.csv'"
DETAIL="$(printf '%s\n' "$OUT" | head -n 2)$ERR"
check args/double_dash eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | grep -c "^-dash.csv:")" = 45 ] && [ "$(printf "%s\n" "$OUT" | grep -c "^iris_test.csv:")" = 45 ]'
nn train -h
WHY="exit $RC: $OUT"
check args/short_help test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep '^usage: nnrun train ')"
bad option_flag_value     2 "option '--quiet' takes no value"                                      eval "$IRIS" --quiet=1

# --- batching must not change results
nn infer "$IRIS" data/iris_test.csv --batch-size 1
o1=$OUT r1=$RC
nn infer "$IRIS" data/iris_test.csv --batch-size 7
WHY="infer --batch-size 1 / 7 (exits $r1/$RC) differ from the default batch size"
check batching/infer eval '[ "$r1$RC" = 00 ] && [ "$o1" = "$(cat "$T/iris_infer.txt")" ] && [ "$OUT" = "$o1" ]'
nn eval "$IRIS" --batch-size 1
o1=$OUT r1=$RC
nn eval "$IRIS" --batch-size 7
WHY="eval --batch-size 1 / 7 disagree: '$o1' vs '$OUT'"
check batching/eval eval '[ "$r1$RC" = 00 ] && [ "$o1" = "$OUT" ] && [ -n "$OUT" ]'
nn train "$T/base.json" --output "$T/b1000.bin" --batch-size 1000 --quiet
WHY="--batch-size larger than the data set: $(rc_text "$RC")"
DETAIL="$ERR"
check batching/larger_than_data test "$RC" = 0 -a -s "$T/b1000.bin"

# --- training options
variant valsplit2 'm["train"]["validation_split"] = 0.2; m["train"]["epochs"] = 3'
nn train "$T/valsplit2.json" --output "$T/valsplit2.bin" --json
WHY="exit $RC; expected 84 train / 21 validation samples and val_loss/val_accuracy per epoch"
DETAIL="$OUT$ERR"
check train/validation_split eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | py "import json,sys
ev = [json.loads(l) for l in sys.stdin]
assert ev[0][\"train_samples\"] == 84 and ev[0][\"validation_samples\"] == 21
ep = [e for e in ev if e[\"event\"] == \"epoch\"]
assert len(ep) == 3 and all(0 <= e[\"val_accuracy\"] <= 1 and e[\"val_loss\"] >= 0 for e in ep)"'
nn train "$T/valsplit2.json" --output "$T/bigbatch.bin" --batch-size 100000 --epochs 1 --json
WHY="exit $RC; a --batch-size larger than the 84 training samples should become one batch of 84"
DETAIL="$OUT$ERR"
check train/batch_size_clamped eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | py "import json,sys
ev = [json.loads(l) for l in sys.stdin]
assert ev[0][\"batch_size\"] == 84, ev[0]"'
nn train "$T/base.json" --output "$T/quiet.bin" --quiet
WHY="--quiet: exit $RC, stdout '$OUT', stderr '$ERR'"
check train/quiet test "$RC" = 0 -a -z "$OUT" -a -z "$ERR" -a -s "$T/quiet.bin"
variant dropout 'L.insert(1, {"type": "dropout", "rate": 0.3}); m["train"]["epochs"] = 30'
nn train "$T/dropout.json" --output "$T/drop1.bin" --quiet
r1=$RC
nn train "$T/dropout.json" --output "$T/drop2.bin" --quiet
WHY="exits $r1/$RC, or a model with dropout trained twice with one seed gave different files"
check determinism/dropout eval '[ "$r1$RC" = 00 ] && cmp -s "$T/drop1.bin" "$T/drop2.bin"'
for o in 'sgd_nesterov|{"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": true}' \
    'adamw|{"type": "adamw", "lr": 0.01, "weight_decay": 0.01}' \
    'rmsprop|{"type": "rmsprop", "lr": 0.01}' \
    'rmsprop_centered_clip|{"type": "rmsprop", "lr": 0.005, "momentum": 0.5, "centered": true, "clip_norm": 1.0, "clip_value": 0.5}' \
    'sgd_clip_norm|{"type": "sgd", "lr": 0.1, "momentum": 0.9, "clip_norm": 0.5}' \
    'given_normalize|{"type": "adam", "lr": 0.01}'; do
    n=${o%%|*}
    variant "opt_$n" 'm["optimizer"] = json.loads(sys.argv[4]); m["train"]["epochs"] = 40
if sys.argv[2] == "opt_given_normalize":
    m["input"]["normalize"] = {"mean": [5.8, 3.0, 3.8, 1.2], "std": [0.8, 0.4, 1.8, 0.8]}
if sys.argv[2] == "opt_rmsprop_centered_clip":
    m["loss"] = {"type": "cross_entropy", "label_smoothing": 0.1}' "${o#*|}"
    nn train "$T/opt_$n.json" --output "$T/opt_$n.bin" --json
    a=$(printf '%s\n' "$OUT" | py 'import json,sys
print([json.loads(l) for l in sys.stdin if "\"test\"" in l][0]["accuracy"])' 2>/dev/null)
    WHY="exit $RC, test accuracy ${a:-none} (want >= 0.9)"
    DETAIL="$ERR"
    check "train/$n" eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.9" "${a:--1}"'
done
# the new keys survive model.bin (its stored JSON) and summary shows them
nn summary "$T/opt_rmsprop_centered_clip.bin"
WHY="exit $RC; summary of the saved rmsprop model lacks its loss/optimizer settings"
DETAIL="$OUT$ERR"
check summary/rmsprop_clip_label_smoothing eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -Fq "label_smoothing 0.1  optimizer rmsprop lr 0.005 alpha 0.99 eps 1e-08 centered momentum 0.5 clip_value 0.5 clip_norm 1"'
# paths with spaces; data paths relative to a JSON in a subfolder
mkdir -p "$T/with space/sub"
cp "$T/iris.csv" "$T/iris_test.csv" "$T/with space/"
variant spaced 'D["train"]["path"] = "../iris.csv"; D["test"]["path"] = "../iris_test.csv"'
mv "$T/spaced.json" "$T/with space/sub/m o.json"
nn train "$T/with space/sub/m o.json" --output "$T/with space/o u t.bin" --quiet
r1=$RC
nn infer "$T/with space/o u t.bin" "$T/with space/iris_test.csv" --json
WHY="exits $r1/$RC with spaces in the paths"
DETAIL="$ERR"
check train/paths_with_spaces eval '[ "$r1$RC" = 00 ] && [ "$(printf "%s\n" "$OUT" | grep -c "\"input\":\"$T/with space/iris_test.csv\"")" = 45 ]'

# --- CSV variants: integer labels, label by column index, headerless, quirks
py 'import csv,sys
d = sys.argv[1]
names = ["setosa", "versicolor", "virginica"]
for part in ("iris", "iris_test"):
    rows = list(csv.reader(open(d + "/" + part + ".csv")))[1:]
    with open(d + "/" + part + "_int.csv", "w") as f:
        f.write("sl,sw,pl,pw,cls\n")
        for r in rows: f.write(",".join(r[:4] + [str(names.index(r[4]))]) + "\n")
    with open(d + "/" + part + "_first.csv", "w") as f:   # label first, no header
        for r in rows: f.write(",".join([r[4]] + r[:4]) + "\n")
    with open(d + "/" + part + "_nohdr.csv", "w") as f:
        for r in rows: f.write(",".join(r) + "\n")
    # BOM, CRLF, quoted fields, spaces, blank lines
    with open(d + "/" + part + "_quirks.csv", "w", newline="") as f:
        f.write("\ufeff\"sepal length\", sepal_width ,petal_length,petal_width,\"species\"\r\n")
        for i, r in enumerate(rows):
            f.write(" %s ,\"%s\",%s,%s,\"%s\"\r\n" % tuple(r))
            if i % 10 == 0: f.write("\r\n")' "$T"
csv_variant() { # NAME TRAIN TEST LABEL-JSON [HEADER-JSON]
    variant "$1" 'for k, p in (("train", sys.argv[4]), ("test", sys.argv[5])):
    D[k] = {"format": "csv", "path": p, "label": json.loads(sys.argv[6])}
    if len(sys.argv) > 7 and sys.argv[7]: D[k]["header"] = json.loads(sys.argv[7])
m["train"]["epochs"] = 60' "$2" "$3" "$4" "${5:-}"
}
csv_train() { # NAME: trains $T/NAME.json, test accuracy >= 0.85
    nn train "$T/$1.json" --output "$T/$1.bin" --json
    local a
    a=$(printf '%s\n' "$OUT" | py 'import json,sys
print([json.loads(l) for l in sys.stdin if "\"test\"" in l][0]["accuracy"])' 2>/dev/null)
    WHY="exit $RC, test accuracy ${a:-none} (want >= 0.85)"
    DETAIL="$ERR"
    check "csv/$1" eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.85" "${a:--1}"'
}
csv_variant int_labels iris_int.csv iris_test_int.csv '"cls"'
csv_train int_labels
csv_variant label_index iris.csv iris_test.csv 4
csv_train label_index
csv_variant label_first_no_header iris_first.csv iris_test_first.csv 0
csv_train label_first_no_header
csv_variant no_header iris_nohdr.csv iris_test_nohdr.csv 4 false
csv_train no_header
csv_variant quirks iris_quirks.csv iris_test_quirks.csv '"species"'
csv_train quirks
variant named_classes 'D["classes"] = ["setosa", "versicolor", "virginica"]; m["train"]["epochs"] = 60'
csv_train named_classes
nn infer "$T/int_labels.bin" "$T/iris_test_int.csv"
WHY="exit $RC; integer labels should be class names '0', '1', '2'"
DETAIL="$OUT$ERR"
check csv/int_labels_infer eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | grep -Ec "csv:[0-9]+  [012] ")" = 45 ]'

# --- binary classification: two string classes, one sigmoid unit
py 'import random,sys
r = random.Random(7)
for name, n in (("bin_train", 200), ("bin_test", 100)):
    with open(sys.argv[1] + "/" + name + ".csv", "w") as f:
        f.write("x1,x2,animal\n")
        k = 0
        while k < n:
            a, b = r.uniform(-1, 1), r.uniform(-1, 1)
            if abs(a + b) < 0.2: continue
            f.write("%.4f,%.4f,%s\n" % (a, b, "cat" if a + b > 0 else "dog")); k += 1
for name, n in (("reg_train", 300), ("reg_test", 100)):
    with open(sys.argv[1] + "/" + name + ".csv", "w") as f:
        f.write("x1,x2,y\n")
        for i in range(n):
            a, b = r.uniform(-1, 1), r.uniform(-1, 1)
            f.write("%.4f,%.4f,%.4f\n" % (a, b, 2 * a - b + r.gauss(0, 0.02)))' "$T"
cat >"$T/binary.json" <<'EOF'
{"name": "binary", "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
 "loss": "binary_cross_entropy", "optimizer": {"type": "adam", "lr": 0.05},
 "train": {"epochs": 30, "batch_size": 16, "seed": 3},
 "data": {"train": {"format": "csv", "path": "bin_train.csv", "label": "animal"},
          "test": {"format": "csv", "path": "bin_test.csv", "label": "animal"}}}
EOF
nn train "$T/binary.json" --output "$T/binary.bin" --json
a=$(printf '%s\n' "$OUT" | py 'import json,sys
print([json.loads(l) for l in sys.stdin if "\"test\"" in l][0]["accuracy"])' 2>/dev/null)
WHY="exit $RC, test accuracy ${a:-none} (want >= 0.9)"
DETAIL="$ERR"
check binary/train eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.9" "${a:--1}"'
nn infer "$T/binary.bin" "$T/bin_test.csv" --json --top 2
WHY="exit $RC; expected 100 rows, labels cat/dog, probabilities summing to 1"
DETAIL="$(printf '%s\n' "$OUT" | head -n 2)$ERR"
check binary/infer eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | py "import json,sys
d = [json.loads(l) for l in sys.stdin]
assert len(d) == 100
for x in d:
    p = x[\"predictions\"]
    assert sorted(q[\"label\"] for q in p) == [\"cat\", \"dog\"]
    assert abs(p[0][\"probability\"] + p[1][\"probability\"] - 1) < 1e-3"'
printf '%s\n' "$OUT" >"$T/bin_infer.jsonl"
nn eval "$T/binary.bin" --json
WHY="exit $RC; expected eval's confusion matrix (one sigmoid output) to be infer's labels against the CSV's"
DETAIL="$OUT$ERR"
check binary/eval_confusion eval '[ "$RC" = 0 ] && py "import json,sys
true = [l.strip().split(\",\")[-1] for l in open(sys.argv[2]).readlines()[1:]]
pred = [json.loads(l)[\"predictions\"][0][\"label\"] for l in open(sys.argv[3])]
d = json.loads(sys.argv[1]); labels = d[\"labels\"]
assert sorted(labels) == [\"cat\", \"dog\"] and len(true) == len(pred) == 100
cm = [[sum(1 for t, p in zip(true, pred) if t == a and p == b) for b in labels] for a in labels]
assert d[\"confusion_matrix\"] == cm, (d[\"confusion_matrix\"], cm)
assert abs(d[\"report\"][\"accuracy\"] - (cm[0][0] + cm[1][1]) / 100) < 1e-6" "$OUT" "$T/bin_test.csv" "$T/bin_infer.jsonl"'

# --- regression: y = 2*x1 - x2 + noise
cat >"$T/regress.json" <<'EOF'
{"name": "regress", "layers": [{"type": "dense", "units": 1}], "loss": "mse",
 "optimizer": {"type": "adam", "lr": 0.05}, "train": {"epochs": 40, "batch_size": 16, "seed": 3},
 "data": {"train": {"format": "csv", "path": "reg_train.csv", "label": "y"},
          "test": {"format": "csv", "path": "reg_test.csv", "label": "y"}}}
EOF
nn train "$T/regress.json" --output "$T/regress.bin" --json
a=$(printf '%s\n' "$OUT" | py 'import json,sys
print([json.loads(l) for l in sys.stdin if "\"test\"" in l][0]["mae"])' 2>/dev/null)
WHY="exit $RC, test mae ${a:-none} (want < 0.2)"
DETAIL="$ERR"
check regression/train eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) < 0.2" "${a:-99}"'
nn infer "$T/regress.bin" "$T/reg_test.csv"
WHY="exit $RC; expected 100 lines 'reg_test.csv:N  NUMBER' close to 2*x1 - x2"
DETAIL="$(printf '%s\n' "$OUT" | head -n 2)$ERR"
printf '%s\n' "$OUT" >"$T/reg_infer.txt"
check regression/infer eval '[ "$RC" = 0 ] && py "import csv,sys
rows = list(csv.DictReader(open(sys.argv[1])))
out = [l.split() for l in open(sys.argv[2]) if l.strip()]
assert len(out) == len(rows) == 100
for r, o in zip(rows, out):
    assert len(o) == 2 and o[0].endswith(\":%d\" % (rows.index(r) + 1))
    assert abs(float(o[1]) - float(r[\"y\"])) < 0.5" "$T/reg_test.csv" "$T/reg_infer.txt"'
nn eval "$T/regress.bin" --max-loss 0.1
WHY="exit $RC: $OUT$ERR"
check regression/eval eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "^mae 0\.[01]"'
# a regression model keeps the one summary line and its JSON keys (no report)
nn eval "$T/regress.bin" "$T/reg_test.csv" --json
WHY="exit $RC: $OUT$ERR"
check regression/eval_json eval '[ "$RC" = 0 ] && py "import json,sys; assert sorted(json.loads(sys.argv[1])) == [\"loss\", \"mae\", \"passed\", \"samples\"]" "$OUT"'
nn eval "$T/regress.bin"
WHY="exit $RC: $OUT$ERR"
check regression/eval_one_line eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 1 ]'
bad regression_min_accuracy 2 'needs a classifier'                                                 eval "$T/regress.bin" --min-accuracy 0.5
# two targets at once
py 'import random,sys
r = random.Random(1)
with open(sys.argv[1] + "/two_targets.csv", "w") as f:
    f.write("a,b,sum,diff\n")
    for i in range(200):
        a, b = r.uniform(-1, 1), r.uniform(-1, 1)
        f.write("%.4f,%.4f,%.4f,%.4f\n" % (a, b, a + b, a - b))' "$T"
variant two_targets 'm["loss"] = "mse"; m["input"] = {"shape": [2]}; m["layers"] = [{"type": "dense", "units": 2}]
m["data"] = {"train": {"format": "csv", "path": "two_targets.csv", "label": ["sum", "diff"]}}
m["train"]["epochs"] = 40; m["optimizer"]["lr"] = 0.05'
nn train "$T/two_targets.json" --output "$T/two_targets.bin" --quiet
r1=$RC
nn infer "$T/two_targets.bin" "$T/two_targets.csv"
WHY="exits $r1/$RC; expected 200 lines with two numbers each, close to a+b and a-b"
DETAIL="$(printf '%s\n' "$OUT" | head -n 2)$ERR"
printf '%s\n' "$OUT" >"$T/two_targets.txt"
check regression/two_targets eval '[ "$r1$RC" = 00 ] && py "import csv,sys
rows = list(csv.DictReader(open(sys.argv[1])))
out = [l.split() for l in open(sys.argv[2]) if l.strip()]
assert len(out) == 200 and all(len(o) == 3 for o in out)
assert all(abs(float(o[1]) - float(r[\"sum\"])) < 0.2 and abs(float(o[2]) - float(r[\"diff\"])) < 0.2 for r, o in zip(rows, out))" "$T/two_targets.csv" "$T/two_targets.txt"'
variant three_units 'm["loss"] = "mse"; m["input"] = {"shape": [2]}; m["layers"] = [{"type": "dense", "units": 3}]
m["data"] = {"train": {"format": "csv", "path": "two_targets.csv", "label": ["sum", "diff"]}}'
bad regression_units_mismatch 65 're:three_units\.json: layers\[0\].*output shape is \[3\] but the data has 2 target' train "$T/three_units.json"

# --- bench: the figures exist and add up (speed itself is never asserted)
nn bench "$T/base.json" --steps 3 --batch-size 16 --infer-batch 8 --kernels --json
WHY="exit $RC; bench --json --kernels should give positive rates, 3 layers, per-kernel tables whose batch-1 sum is the prediction's device time"
DETAIL="$OUT$ERR"
check bench/json_kernels eval '[ "$RC" = 0 ] && py "import json,sys
d = json.loads(sys.argv[1])
assert d[\"train_samples_per_s\"] > 0 and d[\"infer_batch1_p50_ms\"] > 0 and d[\"infer_samples_per_s\"] > 0
assert [l[\"name\"] for l in d[\"layers\"]] == [\"dense_1\", \"dense_2\", \"softmax_1\"]
names = {k[\"name\"] for k in d[\"kernels\"]}
assert any(k[\"gemm\"] for k in d[\"kernels\"]) and \"adam_step\" in names, names
assert any(k[\"gemm\"] for k in d[\"infer_kernels\"]), d[\"infer_kernels\"]
s = sum(k[\"ms\"] for k in d[\"infer_kernels\"])
assert abs(s - d[\"infer_batch1_device_ms\"]) <= 1e-6 + 1e-3 * s, (s, d[\"infer_batch1_device_ms\"])" "$OUT"'
NNRUN_GEMM=fast bad gemm_env_unknown 2 'NNRUN_GEMM=fast: expected clblast, native or auto' train "$T/base.json"
bad bench_gemm_with_model 2 'nnrun bench --gemm takes no MODEL.json' bench --gemm "$T/base.json"
nn bench "$T/base.json" --steps 2 --batch-size 16 --infer-batch 8 --kernels
WHY="exit $RC; the text report should have the layer table and both kernel tables"
DETAIL="$OUT$ERR"
check bench/text_kernels eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "per training step" &&
    printf "%s\n" "$OUT" | grep -q "per batch-1 prediction" && printf "%s\n" "$OUT" | grep -q "^  dense_1 "'

# --- time series: windows of a CSV predict the next value (LSTM)
py 'import math,random,sys
r = random.Random(5)
for name, t0, n in (("series", 0, 600), ("series_test", 600, 200)):
    with open(sys.argv[1] + "/" + name + ".csv", "w") as f:
        f.write("date,x,y\n")
        for t in range(t0, t0 + n):
            f.write("2024-%04d,%.5f,%.5f\n" % (t, math.sin(0.1 * t) + r.gauss(0, 0.05), math.cos(0.1 * t)))' "$T"
cat >"$T/series.json" <<'EOF'
{"name": "series", "input": {"normalize": "auto"},
 "layers": [{"type": "lstm", "units": 24}, {"type": "dense", "units": 1}], "loss": "mse",
 "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": 6, "batch_size": 32, "seed": 2, "validation_split": 0.2},
 "data": {"train": {"format": "csv", "path": "series.csv", "features": ["x", "y"], "target": "x", "window": 16},
          "test": {"format": "csv", "path": "series_test.csv", "features": ["x", "y"], "target": "x", "window": 16}}}
EOF
nn train "$T/series.json" --output "$T/series.bin" --json
printf '%s\n' "$OUT" >"$T/series_train.jsonl"
WHY="exit $RC; expected 584 windows split 468/116 by position and a test mse below the persistence forecast's"
DETAIL="$(tail -n 2 "$T/series_train.jsonl")$ERR"
check series/train eval '[ "$RC" = 0 ] && py "import csv,json,sys
ev = [json.loads(l) for l in open(sys.argv[1])]
st = [e for e in ev if e.get(\"event\") == \"start\"][0]
assert st[\"train_samples\"] == 468 and st[\"validation_samples\"] == 116, st
test = [e for e in ev if e.get(\"event\") == \"test\"][-1]
x = [float(r[\"x\"]) for r in csv.DictReader(open(sys.argv[2]))]
persist = sum((x[t] - x[t - 1]) ** 2 for t in range(16, len(x))) / (len(x) - 16)
assert test[\"loss\"] < persist, (test, persist)" "$T/series_train.jsonl" "$T/series_test.csv"'
nn summary "$T/series.bin"
WHY="exit $RC; the input shape taken from the windows should be [16, 2]"
DETAIL="$OUT$ERR"
check series/input_shape eval '[ "$RC" = 0 ] && printf "%s\n" "$OUT" | grep -q "\[16, 2\]"'
nn infer "$T/series.bin" "$T/series_test.csv"
printf '%s\n' "$OUT" >"$T/series_infer.txt"
WHY="exit $RC; expected 185 forecasts (every window, the last included), each within 0.25 of the next value"
DETAIL="$(head -n 2 "$T/series_infer.txt")$ERR"
check series/infer_forecasts eval '[ "$RC" = 0 ] && py "import csv,sys
x = [float(r[\"x\"]) for r in csv.DictReader(open(sys.argv[1]))]
out = [l.split() for l in open(sys.argv[2]) if l.strip()]
assert len(out) == 185, len(out)
err = [abs(float(o[1]) - x[k + 16]) for k, o in enumerate(out[:-1])]
assert max(err) < 0.25 and sum(err) / len(err) < 0.08, (max(err), sum(err) / len(err))" "$T/series_test.csv" "$T/series_infer.txt"'
nn eval "$T/series.bin" --data "$T/series_test.csv" --max-loss 0.05 --json
WHY="exit $RC; eval --data on the test series (184 windows)"
DETAIL="$OUT$ERR"
check series/eval_data eval '[ "$RC" = 0 ] && py "import json,sys; d = json.loads(sys.argv[1]); assert d[\"samples\"] == 184" "$OUT"'
# bench --data derives the input shape from the windows as train does ([16, 2])
nn bench "$T/series.json" --data --steps 2 --batch-size 16 --infer-batch 8 --json
WHY="exit $RC; bench --data on a time series should run on [16, 2] windows"
DETAIL="$ERR"
check series/bench_data eval '[ "$RC" = 0 ] && py "import json,sys; d = json.loads(sys.argv[1]); assert d[\"train_samples_per_s\"] > 0" "$OUT"'
series='m["loss"] = "mse"; m["input"] = {"shape": [16, 2]}; m["layers"] = [{"type": "lstm", "units": 4}, {"type": "dense", "units": 1}]
del D["test"]; D["train"] = {"format": "csv", "path": "series.csv", "features": ["x", "y"], "target": "x", "window": 16}'
variant ts_target_no_window "$series"'
del D["train"]["window"]'
variant ts_label_window "$series"'
D["train"]["label"] = "x"; del D["train"]["target"]'
variant ts_no_target "$series"'
del D["train"]["target"]'
variant ts_classify "$series"'
m["loss"] = "cross_entropy"'
variant ts_too_long "$series"'
D["train"]["window"] = 600; m["input"]["shape"] = [600, 2]'
variant ts_feature_typo "$series"'
D["train"]["features"] = ["x", "why"]'
variant ts_stride_zero "$series"'
D["train"]["stride"] = 0'
bad series_target_no_window 65 'ts_target_no_window.json: data.train.target: only for time series: add "window"' train "$T/ts_target_no_window.json"
bad series_label_window  65 'ts_label_window.json: data.train.label: a time series (window) names its predicted column(s) with "target"' train "$T/ts_label_window.json"
bad series_no_target     65 'ts_no_target.json: data.train.target: required key is missing'         train "$T/ts_no_target.json"
bad series_classify      65 'data.train: time-series windows predict numbers (regression): use "loss": "mse"' train "$T/ts_classify.json"
bad series_too_long      65 'series.csv: 600 data rows, too few for one window of 600 rows and a target 1 row later' train "$T/ts_too_long.json"
bad series_feature_typo  65 "series.csv: feature column 'why' not found in the header (columns: date, x, y); did you mean 'y'?" train "$T/ts_feature_typo.json"
bad series_stride_zero   65 'ts_stride_zero.json: data.train.stride: 0 is out of range [1, 65536]'  train "$T/ts_stride_zero.json"

# --- Fashion-MNIST subset and images
if [ -r "$FASHION/train-images-idx3-ubyte.gz" ] && [ -r "$FASHION/t10k-labels-idx1-ubyte.gz" ]; then
    py 'import json,sys
m = json.load(open(sys.argv[1]))
m["data"]["train"]["limit"] = 3000
m["data"]["test"]["limit"] = 1000
m["output"] = sys.argv[2] + "/fashion.bin"
json.dump(m, open(sys.argv[2] + "/fashion.json", "w"), indent=1)' models/fashion_mlp.json "$T"
    nn train "$T/fashion.json" --epochs 2 --json
    cp "$T/out" "$T/fashion_train.jsonl"
    a=$(py 'import json,sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["train_samples"] + ev[0]["validation_samples"] == 3000
t = [e for e in ev if e["event"] == "test"][0]
assert t["samples"] == 1000
print(t["accuracy"])' "$T/fashion_train.jsonl" 2>/dev/null)
    WHY="exit $RC, test accuracy ${a:-none} (want >= 0.70 on 1000 test images, 3000 train, 2 epochs)"
    DETAIL="$ERR"
    check fashion/train_subset eval '[ "$RC" = 0 ] && py "import sys; assert float(sys.argv[1]) >= 0.70" "${a:--1}"'
    FB=$T/fashion.bin
    # shellcheck disable=SC2034 # used in the eval'd conditions below
    CLASSES='T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot'

    # Images written by hand: PNG (zlib), PPM, PGM, BMP; 20 Fashion-MNIST test
    # images as PNG files with their labels in labels.txt.
    mkdir -p "$T/img" "$T/real"
    py 'import gzip,struct,sys,zlib
d, fm = sys.argv[1], sys.argv[2]
def png(path, w, h, ch, rows):
    def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2}[ch], 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def rgb(w, h):
    return [[v for x in range(w) for v in ((x * 6) % 256, (y * 8) % 256, 128)] for y in range(h)]
grey = [[(x * 9 + y * 3) % 256 for x in range(28)] for y in range(28)]
png(d + "/img/grey28.png", 28, 28, 1, grey)
png(d + "/img/rgb40x30.png", 40, 30, 3, rgb(40, 30))
open(d + "/img/rgb40x30.ppm", "wb").write(b"P6\n40 30\n255\n" + bytes(v for r in rgb(40, 30) for v in r))
open(d + "/img/grey28.pgm", "wb").write(b"P5\n28 28\n255\n" + bytes(v for r in grey for v in r))
# 24-bit BMP: bottom-up BGR rows padded to 4 bytes
w, h = 40, 30
rows = rgb(w, h)
pad = (4 - (w * 3) % 4) % 4
px = b"".join(bytes(v for x in range(w) for v in rows[y][3 * x:3 * x + 3][::-1]) + b"\0" * pad for y in reversed(range(h)))
open(d + "/img/rgb40x30.bmp", "wb").write(b"BM" + struct.pack("<IHHI", 54 + len(px), 0, 0, 54)
    + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(px), 2835, 2835, 0, 0) + px)
open(d + "/img/notes.txt.skip", "w").write("not an image\n")
# real test images
imgs = gzip.open(fm + "/t10k-images-idx3-ubyte.gz").read()[16:16 + 20 * 784]
labs = gzip.open(fm + "/t10k-labels-idx1-ubyte.gz").read()[8:8 + 20]
for i in range(20):
    png(d + "/real/t%02d.png" % i, 28, 28, 1, [imgs[i * 784 + y * 28:i * 784 + y * 28 + 28] for y in range(28)])
open(d + "/real/labels.txt", "w").write("".join("%d\n" % b for b in labs))' "$T" "$FASHION"

    nn infer "$FB" "$T/img/grey28.png" "$T/img/rgb40x30.ppm" "$T/img/grey28.pgm" "$T/img/rgb40x30.bmp" "$T/img/rgb40x30.png"
    WHY="exit $RC; expected 5 lines 'PATH  CLASS P' in argument order"
    DETAIL="$OUT$ERR"
    check images/formats eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 5 ] &&
        [ "$(printf "%s\n" "$OUT" | grep -Ec "^$T/img/[a-z0-9]+\.(png|ppm|pgm|bmp)  ($CLASSES) [01]\.[0-9]+$")" = 5 ] &&
        [ "$(printf "%s\n" "$OUT" | sed "s/  .*//" | tr "\n" " ")" = "$T/img/grey28.png $T/img/rgb40x30.ppm $T/img/grey28.pgm $T/img/rgb40x30.bmp $T/img/rgb40x30.png " ]'
    nn infer "$FB" "$T/img"
    WHY="exit $RC; expected one line per image file in the folder (5), sorted"
    DETAIL="$OUT$ERR"
    check images/folder eval '[ "$RC" = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 5 ] &&
        [ "$(printf "%s\n" "$OUT" | grep -Ec "^$T/img/.*  ($CLASSES) ")" = 5 ] &&
        [ "$(printf "%s\n" "$OUT" | sed "s/  .*//" | sort | tr "\n" " ")" = "$(printf "%s\n" "$OUT" | sed "s/  .*//" | tr "\n" " ")" ]'
    cp "$T/img/grey28.png" "$T/q\"uote\\.png"
    nn infer "$FB" "$T/q\"uote\\.png" --json --top 3
    WHY="exit $RC; expected one JSON object with 3 predictions (file name with a quote and a backslash)"
    DETAIL="$OUT$ERR"
    check images/json eval '[ "$RC" = 0 ] && py "import json,sys
d = json.loads(sys.argv[1]); p = d[\"predictions\"]
assert d[\"input\"] == sys.argv[2] and len(p) == 3 and 0 <= p[0][\"index\"] < 10" "$OUT" "$T/q\"uote\\.png"'
    # real test images: the PNG path must agree with the IDX path
    nn infer "$FB" "$T/real" --json
    printf '%s\n' "$OUT" >"$T/real.jsonl"
    WHY="exit $RC, or fewer than 12 of 20 Fashion-MNIST test images (as PNG) classified correctly"
    DETAIL="$(head -n 2 "$T/real.jsonl")$ERR"
    check images/fashion_png_accuracy eval '[ "$RC" = 0 ] && py "import json,sys
d = [json.loads(l) for l in open(sys.argv[1])]
labs = [int(x) for x in open(sys.argv[2])]
assert len(d) == 20
assert sum(x[\"predictions\"][0][\"index\"] == y for x, y in zip(d, labs)) >= 12" "$T/real.jsonl" "$T/real/labels.txt"'
    # the same images through eval --data/--labels (IDX) give the same accuracy ballpark
    py 'import gzip,sys
fm, d = sys.argv[1], sys.argv[2]
i = gzip.open(fm + "/t10k-images-idx3-ubyte.gz").read()
l = gzip.open(fm + "/t10k-labels-idx1-ubyte.gz").read()
open(d + "/t20-images.raw", "wb").write(i[:4] + (20).to_bytes(4, "big") + i[8:16 + 20 * 784])
open(d + "/t20-labels.raw", "wb").write(l[:4] + (20).to_bytes(4, "big") + l[8:8 + 20])' "$FASHION" "$T"
    nn eval "$FB" --data "$T/t20-images.raw" --labels "$T/t20-labels.raw" --json
    WHY="exit $RC; eval --data/--labels on 20 raw IDX test images"
    DETAIL="$OUT$ERR"
    check fashion/eval_idx_data eval '[ "$RC" = 0 ] && py "import json,sys; d=json.loads(sys.argv[1]); assert d[\"samples\"] == 20 and d[\"accuracy\"] >= 0.6" "$OUT"'
    bad infer_csv_into_image_model 65 "features_only.csv: 4 features per sample, but the model's input shape [1, 28, 28] needs 784" infer "$FB" "$T/features_only.csv"
else
    fail fashion/dataset "Fashion-MNIST is not in $FASHION (Debian package dataset-fashion-mnist; 'make deps')"
fi

summary
