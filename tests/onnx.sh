#!/usr/bin/env bash
# tests/onnx.sh - `nnrun export` and `nnrun import` (ONNX, docs/FORMATS.md).
#
# Export: small models covering every layer type (tests/onnx/gen.py, plus
# models/iris_mlp.json) are trained briefly, exported, checked by
# onnx.checker (Debian's python3-onnx) and run by onnxruntime, whose
# outputs must equal `nnrun infer`'s within 1e-4 (tests/onnx/check.py).
# onnxruntime comes from PyPI, test-only: `pip install --target DIR --no-deps
# onnxruntime` into $NNRUN_CACHE_DIR/onnxruntime once, used by Debian's
# /usr/bin/python3 through PYTHONPATH (Debian's numpy). When it cannot be
# installed (no network) the tests that need it print SKIP, never PASS.
# Also: bad inputs (exit codes and messages) and the atomic write.
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

echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" = 0 ]
