#!/bin/sh
# make bench: W1 (MLP training), W2 (LeNet training), W3 (LeNet inference)
# with nnrun bench, and the same workloads in PyTorch when python3-torch is
# installed; prints a table with the ratios. Speed is measured here, never
# asserted by tests.
set -e
cd "$(dirname "$0")/../.."
NNRUN=${NNRUN:-./nnrun}
PY=${PY:-/usr/bin/python3}  # Debian's python3-torch; tests/gpu/run.sh points it at the GPU machine's
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

$NNRUN bench models/fashion_mlp.json --batch-size 128 --json >"$out/w1.json"
$NNRUN bench models/fashion_lenet.json --batch-size 64 --infer-batch 256 --json >"$out/w2.json"
torch=0
if $PY -c 'import torch' 2>/dev/null; then
    OMP_WAIT_POLICY=passive $PY tests/bench/torch_bench.py W1 W2 W3 >"$out/torch.json" && torch=1
fi
$PY - "$out" "$torch" <<'PYEOF'
import json, sys
d, torch = sys.argv[1], sys.argv[2] == "1"
w1 = json.load(open(d + "/w1.json")); w2 = json.load(open(d + "/w2.json"))
t = {}
if torch:
    for line in open(d + "/torch.json"):
        o = json.loads(line); t[o["workload"]] = o
print("device: %s" % w1["device"])
print("%-34s %14s %14s %8s" % ("workload", "nnrun", "pytorch" if torch else "", "ratio" if torch else ""))
def row(name, ours, theirs, higher_better=True, fmt="%14.0f"):
    r = ""
    th = ""
    if theirs is not None:
        th = fmt % theirs
        r = "%8.2f" % ((ours / theirs) if higher_better else (theirs / ours))
    print("%-34s %s %14s %8s" % (name, fmt % ours, th, r))
g = lambda w, k: t.get(w, {}).get(k)
row("W1 MLP train samples/s (b128)", w1["train_samples_per_s"], g("W1", "train_samples_per_s"))
row("W2 LeNet train samples/s (b64)", w2["train_samples_per_s"], g("W2", "train_samples_per_s"))
row("W3 LeNet infer b1 p50 ms", w2["infer_batch1_p50_ms"], g("W3", "infer_batch1_p50_ms"), False, "%14.3f")
row("W3 LeNet infer b1 p99 ms", w2["infer_batch1_p99_ms"], g("W3", "infer_batch1_p99_ms"), False, "%14.3f")
row("W3 LeNet infer b256 samples/s", w2["infer_samples_per_s"], g("W3", "infer_samples_per_s"))
print("GEMM GFLOP/s achieved: W1 %.1f, W2 %.1f (ratio > 1: nnrun faster)" % (w1["gemm_gflops"], w2["gemm_gflops"]))
PYEOF
