#!/usr/bin/env bash
# tests/onnx.sh - `nnrun export` and `nnrun import` (ONNX, docs/FORMATS.md).
#
# Export: small models covering every layer type (tests/onnx/gen.py) and
# every model in models/ (shrunk by tests/onnx/shrink_models.py) are trained briefly, exported, checked by
# onnx.checker (Debian's python3-onnx) and run by onnxruntime, whose
# outputs must equal `nnrun infer`'s within 1e-4 (tests/onnx/check.py).
# onnxruntime comes from PyPI, test-only: `pip install --target DIR --no-deps
# onnxruntime` into $NNRUN_CACHE_DIR/onnxruntime once, used by Debian's
# /usr/bin/python3 through PYTHONPATH (Debian's numpy). When it cannot be
# installed (no network) the tests that need it print SKIP, never PASS.
# Import: PyTorch models exported by torch.onnx.export (Debian's
# python3-torch; tests/onnx/torch_models.py) imported and predicting what
# PyTorch predicts within 1e-4 (an MLP with GELU, LeNet with batch norm, a
# residual block, LSTM + GRU); nnrun -> ONNX -> nnrun round trips of every
# layer type;
# malformed and hostile files (tests/onnx/hostile.py) refused with clear
# messages. Also: bad inputs (exit codes and messages) and the atomic write.
PREFIX=onnx
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
CHECK="$ROOT/tests/onnx/check.py"
nskip=0
skip() { nskip=$((nskip + 1)); echo "SKIP $PREFIX/$1: $2"; }

have_onnx=1
if ! "$PY" -c 'import onnx, numpy' 2>/dev/null; then
    have_onnx=0
fi
ORT_DIR=${NNRUN_ONNXRUNTIME_DIR:-$NNRUN_CACHE_DIR/onnxruntime}
have_ort=0
if [ "$have_onnx" = 1 ]; then
    if ! PYTHONPATH=$ORT_DIR "$PY" -c 'import onnxruntime' 2>/dev/null; then
        rm -rf "$ORT_DIR"
        timeout 600 "$PY" -m pip install -q --disable-pip-version-check --target "$ORT_DIR" --no-deps onnxruntime \
            >"$T/pip.log" 2>&1 || rm -rf "$ORT_DIR"
    fi
    PYTHONPATH=$ORT_DIR "$PY" -c 'import onnxruntime' 2>/dev/null && have_ort=1
fi

# export_case NAME MODEL.bin DATA.csv [check.py options]: export, checker, onnxruntime == nnrun infer.
export_case() {
    local name=$1 bin=$2 data=$3
    shift 3
    nn export "$bin" "$T/$name.onnx"
    if [ "$RC" != 0 ] || [ ! -s "$T/$name.onnx" ]; then
        fail "export/$name" "exit $RC" "$ERR"
        return
    fi
    pass "export/$name"
    if [ "$have_onnx" = 0 ]; then
        skip "checker/$name" "python3-onnx is not installed"
    elif "$PY" "$CHECK" checker "$T/$name.onnx" >"$T/chk" 2>&1; then
        pass "checker/$name"
    else
        fail "checker/$name" "onnx.checker rejected the model" "$(tail -n 5 "$T/chk")"
    fi
    if [ "$have_ort" = 0 ]; then
        skip "ort/$name" "onnxruntime is not available (pip install into $ORT_DIR failed: $(tail -n 1 "$T/pip.log" 2>/dev/null))"
        return
    fi
    nn infer "$bin" "$data" --json --top 1000
    if [ "$RC" != 0 ]; then
        fail "ort/$name" "nnrun infer: exit $RC" "$ERR"
        return
    fi
    cp "$T/out" "$T/$name.jsonl"
    if PYTHONPATH=$ORT_DIR "$PY" "$CHECK" compare "$T/$name.onnx" "$data" "$T/$name.jsonl" "$@" >"$T/cmp" 2>&1; then
        pass "ort/$name ($(tail -n 1 "$T/cmp"))"
    else
        fail "ort/$name" "onnxruntime differs from nnrun infer" "$(tail -n 5 "$T/cmp")"
    fi
}

# train NAME JSON [options]: trains into $T/NAME.bin; FAIL on error.
train() {
    local name=$1 json=$2
    shift 2
    nn train "$json" --output "$T/$name.bin" --quiet "$@"
    [ "$RC" = 0 ] || fail "train/$name" "exit $RC" "$ERR"
    [ "$RC" = 0 ]
}

# ------------------------------------------------------------------ export
python3 "$ROOT/tests/onnx/gen.py" "$T"
train iris "$ROOT/models/iris_mlp.json" --epochs 20 &&
    export_case iris "$T/iris.bin" "$ROOT/data/iris_test.csv" --drop species
train cnn "$T/cnn.json" && export_case cnn "$T/cnn.bin" "$T/img.csv" --drop label
train series_rnn "$T/series_rnn.json" && export_case series_rnn "$T/series_rnn.bin" "$T/series.csv" --window 12
train series_attn "$T/series_attn.json" && export_case series_attn "$T/series_attn.bin" "$T/series.csv" --window 12
train tokens "$T/tokens.json" && export_case tokens "$T/tokens.bin" "$T/tokens.csv" --drop label

# every model in models/, shrunk to one quick epoch on a few samples
# (tests/onnx/shrink_models.py), exported, checked and run by onnxruntime on
# random inputs (text models: random token ids, compared at the first position,
# which is what infer prints per row; the sunspot model: its test series)
mkdir -p "$T/models"
for name in $(python3 "$ROOT/tests/onnx/shrink_models.py" "$ROOT/models" "$T/models"); do
    [ "$name" = iris_mlp ] && continue # trained above
    train "models_$name" "$T/models/$name.json" --epochs 1 || continue
    bin=$T/models_$name.bin
    case $name in
    sunspots_*) export_case "models_$name" "$bin" "$ROOT/data/sunspots_test.csv" --drop year --window 22 ;;
    char_*)
        nn export "$bin" "$T/probe.onnx" # to read the input size and the vocabulary
        V=$("$PY" -c 'import onnx,sys,json; m=onnx.load(sys.argv[1]); print(len(json.loads({p.key: p.value for p in m.metadata_props}["classes"])))' "$T/probe.onnx" 2>/dev/null)
        "$PY" "$CHECK" random "$T/probe.onnx" "$T/models_$name.csv" --ids "${V:-1}" 2>/dev/null
        export_case "models_$name" "$bin" "$T/models_$name.csv" --outputs "${V:-1}"
        ;;
    *)
        nn export "$bin" "$T/probe.onnx"
        "$PY" "$CHECK" random "$T/probe.onnx" "$T/models_$name.csv" 2>/dev/null
        export_case "models_$name" "$bin" "$T/models_$name.csv"
        ;;
    esac
done

# metadata: class names and the loss
if [ "$have_onnx" = 1 ] && [ -s "$T/iris.onnx" ]; then
    M=$("$PY" -c 'import onnx,sys; m=onnx.load(sys.argv[1]); print({p.key: p.value for p in m.metadata_props})' \
        "$T/iris.onnx" 2>&1)
    case $M in
    *'"setosa","versicolor","virginica"'*cross_entropy*) pass "export/metadata" ;;
    *) fail "export/metadata" "class names or loss missing" "$M" ;;
    esac
fi

# ---------------------------------------------------------- export errors
# expect NAME RC FRAGMENT ARGS...: nnrun ARGS exits RC with FRAGMENT on stderr.
expect() {
    local name=$1 rc=$2 frag=$3
    shift 3
    nn "$@"
    if [ "$RC" = "$rc" ] && [[ $ERR == *"$frag"* ]]; then
        pass "$name"
    else
        fail "$name" "expected exit $rc and '$frag', got exit $RC" "$ERR"
    fi
}
expect export/usage 2 "expected MODEL.bin and MODEL.onnx" export "$T/iris.bin"
expect export/missing 66 "$T/nope.bin" export "$T/nope.bin" "$T/x.onnx"
printf 'NNRUNBIN garbage' >"$T/bad.bin"
expect export/corrupt 65 "$T/bad.bin" export "$T/bad.bin" "$T/x.onnx"
expect export/no-folder 74 "$T/no/such" export "$T/iris.bin" "$T/no/such/x.onnx"
# a failed export leaves an existing file untouched and no temporary file behind
if [ -s "$T/iris.onnx" ]; then
    cp "$T/iris.onnx" "$T/keep.onnx"
    nn export "$T/bad.bin" "$T/keep.onnx"
    if [ "$RC" = 65 ] && cmp -s "$T/iris.onnx" "$T/keep.onnx" && [ -z "$(ls -A "$T" | grep '\.tmp\.')" ]; then
        pass "export/atomic"
    else
        fail "export/atomic" "exit $RC; the old file changed or a temporary file was left" "$ERR"
    fi
fi

# ------------------------------------------------------------------ import
# expect_match NAME EXPECTED INFER.jsonl: nnrun's predictions equal the reference within 1e-4.
expect_match() {
    if "$PY" "$CHECK" expect "$2" "$3" >"$T/cmp" 2>&1; then
        pass "$1 ($(tail -n 1 "$T/cmp"))"
    else
        fail "$1" "nnrun differs from the reference" "$(tail -n 5 "$T/cmp")"
    fi
}
# PyTorch models (torch.onnx.export) imported, predictions equal to PyTorch's
if [ "$have_onnx" = 1 ] && "$PY" -c 'import torch' 2>/dev/null; then
    mkdir -p "$T/torch"
    if "$PY" "$ROOT/tests/onnx/torch_models.py" "$T/torch" >"$T/torch.log" 2>&1; then
        for m in mlp lenet_bn resblock rnn; do
            nn import "$T/torch/$m.onnx" "$T/torch/$m.bin"
            if [ "$RC" != 0 ]; then
                fail "import/torch_$m" "exit $RC" "$ERR"
                continue
            fi
            nn infer "$T/torch/$m.bin" "$T/torch/$m.csv" --json --top 1000
            cp "$T/out" "$T/torch/$m.jsonl"
            if [ "$RC" = 0 ]; then
                expect_match "import/torch_$m" "$T/torch/$m.expect.csv" "$T/torch/$m.jsonl"
            else
                fail "import/torch_$m" "nnrun infer: exit $RC" "$ERR"
            fi
        done
    else
        fail "import/torch" "tests/onnx/torch_models.py failed" "$(tail -n 5 "$T/torch.log")"
    fi
else
    skip "import/torch" "Debian's python3-torch or python3-onnx is not installed"
fi

# nnrun infer reads .onnx files directly (as import would convert them)
if [ -s "$T/torch/lenet_bn.onnx" ]; then
    nn infer "$T/torch/lenet_bn.onnx" "$T/torch/lenet_bn.csv" --json --top 1000
    cp "$T/out" "$T/torch/direct.jsonl"
    if [ "$RC" = 0 ]; then
        expect_match import/infer_onnx_directly "$T/torch/lenet_bn.expect.csv" "$T/torch/direct.jsonl"
    else
        fail import/infer_onnx_directly "exit $RC" "$ERR"
    fi
fi

# round trips: nnrun -> ONNX -> nnrun predicts the same (the imported model has
# no data source: infer reads feature columns only, time series as flat windows)
# roundtrip NAME FEATURES.csv [infer options]
roundtrip() {
    local name=$1 x=$2
    shift 2
    [ -s "$T/$name.onnx" ] && [ -s "$T/$name.jsonl" ] || return 0
    nn import "$T/$name.onnx" "$T/${name}_rt.bin"
    local r1=$RC
    nn infer "$T/${name}_rt.bin" "$x" --json --top 1000 "$@"
    cp "$T/out" "$T/${name}_rt.jsonl"
    if [ "$r1" = 0 ] && [ "$RC" = 0 ]; then
        expect_match "import/roundtrip_$name" "$T/$name.jsonl" "$T/${name}_rt.jsonl"
    else
        fail "import/roundtrip_$name" "import exit $r1, infer exit $RC" "$ERR"
    fi
}
cut -d, -f1-4 "$ROOT/data/iris_test.csv" >"$T/iris_x.csv"
cut -d, -f1-64 "$T/img.csv" >"$T/img_x.csv"
cut -d, -f1-6 "$T/tokens.csv" >"$T/tokens_x.csv"
python3 -c 'import sys
rows = [l.strip() for l in open(sys.argv[1])][1:]
w = int(sys.argv[3])
with open(sys.argv[2], "w") as f:
    f.write(",".join("v%d" % i for i in range(2 * w)) + "\n")
    for k in range(len(rows) - w + 1):
        f.write(",".join(rows[k:k + w]) + "\n")' "$T/series.csv" "$T/series_x.csv" 12
roundtrip iris "$T/iris_x.csv"
if [ -s "$T/iris_rt.jsonl" ] && ! grep -q '"label":"virginica"' "$T/iris_rt.jsonl"; then
    fail import/roundtrip_classes "the class names were lost" "$(head -n 1 "$T/iris_rt.jsonl")"
fi
roundtrip cnn "$T/img_x.csv"          # conv (groups, dilation, same), pools, batchnorm, add, concat, GELU ...
roundtrip series_rnn "$T/series_x.csv" # LSTM, GRU, layernorm, denormalize, the normalisation
roundtrip tokens "$T/tokens_x.csv"     # embedding with positions, LSTM without bias, sigmoid
roundtrip series_attn "$T/series_x.csv" # attention (causal and not), layernorm, GELU
roundtrip models_char_lstm "$T/models_char_lstm.csv"               # text: [T, vocab] outputs
roundtrip models_char_transformer "$T/models_char_transformer.csv" # embedding, causal attention blocks

# malformed and hostile files: exit 65 with a message naming the problem
if [ "$have_onnx" = 1 ]; then
    mkdir -p "$T/bad"
    "$PY" "$ROOT/tests/onnx/hostile.py" "$T/bad"
    H=$T/bad
    expect import/ok 0 "" import "$H/ok.onnx" "$H/ok.bin"
    expect import/truncated 65 "not a valid ONNX model" import "$H/truncated.onnx" "$H/x.bin"
    expect import/garbage 65 "not a valid ONNX model" import "$H/garbage.onnx" "$H/x.bin"
    expect import/empty 65 "no graph" import "$H/empty.onnx" "$H/x.bin"
    expect import/double 65 "initializer 'w': data type 11 is not supported" import "$H/double.onnx" "$H/x.bin"
    expect import/int32 65 "initializer 'w': data type 6 is not supported" import "$H/int32.onnx" "$H/x.bin"
    expect import/huge_dims 65 "initializer 'w': dimensions too large" import "$H/huge_dims.onnx" "$H/x.bin"
    expect import/short_data 65 "5 float values for dimensions holding 12" import "$H/short_data.onnx" "$H/x.bin"
    expect import/huge_input 65 "input 'x': dimension 1 must be a known size" import "$H/huge_input.onnx" "$H/x.bin"
    expect import/int_input 65 "input 'x': expected a float tensor" import "$H/int_input.onnx" "$H/x.bin"
    expect import/cycle 65 "node 'r1' (Relu): input 'b' is not produced by any earlier node" \
        import "$H/cycle.onnx" "$H/x.bin"
    expect import/unsupported 65 "node 'act0' (HardSwish): operator not supported" \
        import "$H/unsupported.onnx" "$H/x.bin"
    expect import/too_many_nodes 65 "1001 nodes exceed nnrun's limit of 1000" import "$H/too_many.onnx" "$H/x.bin"
    expect import/split_outside_attention 65 "node 'sp' (Split): Split is supported only as the Q/K/V split" \
        import "$H/split.onnx" "$H/x.bin"
    expect import/twice 65 "node 'r2' (Relu): value 'h' is produced twice" import "$H/twice.onnx" "$H/x.bin"
    expect import/mismatch 65 "node 'fc' (Gemm): the weight 'w' is [3, 5]" import "$H/mismatch.onnx" "$H/x.bin"
    if [ -e "$H/x.bin" ]; then fail import/nothing-written "a failed import wrote $H/x.bin"; else pass import/nothing-written; fi
    expect import/missing 66 "$H/nope.onnx" import "$H/nope.onnx" "$H/x.bin"
    expect import/no-folder 74 "$H/no/such" import "$H/ok.onnx" "$H/no/such/x.bin"
    expect import/bad-loss 2 "--loss must be" import "$H/ok.onnx" "$H/x.bin" --loss hinge
    expect import/usage 2 "expected MODEL.onnx and MODEL.bin" import "$H/ok.onnx"
    expect import/infer_truncated 65 "not a valid ONNX model" infer "$H/truncated.onnx" "$ROOT/data/iris_test.csv"
    expect import/infer_cycle 65 "node 'r1' (Relu)" infer "$H/cycle.onnx" "$ROOT/data/iris_test.csv"
else
    skip "import/hostile" "python3-onnx is not installed"
fi

echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" = 0 ]
