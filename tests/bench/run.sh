#!/bin/sh
# make bench: W1 (MLP training), W2 (LeNet training), W3 (LeNet inference)
# with nnrun bench, and the same workloads in PyTorch when python3-torch is
# installed; then SGEMM at the W1/W2 shapes: nnrun's backends (nnrun bench
# --gemm) against OpenBLAS through PyTorch and the machine's FMA peak
# (tests/bench/peak.c). Prints a table with the ratios. Speed is measured
# here, never asserted by tests.
set -e
cd "$(dirname "$0")/../.."
NNRUN=${NNRUN:-./nnrun}
PY=${PY:-/usr/bin/python3}  # Debian's python3-torch; tests/gpu/run.sh points it at the GPU machine's
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# W1-W3: ROUNDS rounds (default 5), nnrun and PyTorch alternating, so that a
# busy moment of this (virtual) machine hits both; the table shows each
# side's median and range over the rounds, the ratio of the medians.
ROUNDS=${ROUNDS:-5}
torch=0
$PY -c 'import torch' 2>/dev/null && torch=1
r=1
while [ "$r" -le "$ROUNDS" ]; do
    $NNRUN bench models/fashion_mlp.json --batch-size 128 --json >"$out/w1.$r.json"
    $NNRUN bench models/fashion_lenet.json --batch-size 64 --infer-batch 256 --json >"$out/w2.$r.json"
    if [ "$torch" = 1 ]; then
        OMP_WAIT_POLICY=passive $PY tests/bench/torch_bench.py W1 W2 W3 >"$out/torch.$r.json" ||
            echo "tests/bench/torch_bench.py failed" >&2
    fi
    r=$((r + 1))
done
# nnrun's GEMM backends at the W1/W2 shapes (optional: older builds lack it)
# and OpenBLAS through torch.matmul: ROUNDS alternating rounds too, medians
r=1
while [ "$r" -le "$ROUNDS" ]; do
    if ! $NNRUN bench --gemm --json >"$out/gemm.$r.json" 2>"$out/gemm.err"; then
        [ "$r" = 1 ] && echo "nnrun bench --gemm: not available ($(tail -n 1 "$out/gemm.err"))"
        : >"$out/gemm.$r.json"
    fi
    if [ "$torch" = 1 ]; then
        OMP_WAIT_POLICY=passive $PY tests/bench/torch_bench.py GEMM >"$out/torch.gemm.$r.json" ||
            echo "tests/bench/torch_bench.py GEMM failed" >&2
    fi
    r=$((r + 1))
done
# the FMA peak of all cores (optional: needs a C compiler)
if ! { cc -O2 -pthread -o "$out/peak" tests/bench/peak.c && "$out/peak" >"$out/peak.json"; } 2>"$out/peak.err"; then
    echo "FMA peak: tests/bench/peak.c failed ($(tail -n 1 "$out/peak.err"))"
    : >"$out/peak.json"
fi
$PY - "$out" "$torch" "$ROUNDS" <<'PYEOF'
import json, sys
d, torch, rounds = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def rounds_of(name):  # the JSON objects of d/name.<round>.json
    return [json.load(open("%s/%s.%d.json" % (d, name, r))) for r in range(1, rounds + 1)]


W1, W2 = rounds_of("w1"), rounds_of("w2")
w1, w2 = W1[0], W2[0]


def load(name):  # the JSON object in d/name; None when empty or not JSON
    try:
        return json.loads(open(d + "/" + name).read())
    except ValueError:
        return None


# PyTorch's figures per workload and key, one list per round
t = {}
for r in range(1, rounds + 1) if torch else ():
    for line in open("%s/torch.%d.json" % (d, r)):
        try:
            o = json.loads(line)
            for k, v in o.items():
                if isinstance(v, (int, float)):
                    t.setdefault(o["workload"], {}).setdefault(k, []).append(v)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
tgs = []  # PyTorch's GEMM object of each round
for r in range(1, rounds + 1) if torch else ():
    for line in open("%s/torch.gemm.%d.json" % (d, r)):
        try:
            o = json.loads(line)
            if o["workload"] == "GEMM":
                tgs.append(o)
        except (ValueError, KeyError, TypeError):
            pass
torch = "W1" in t
print("device: %s" % w1["device"])
print("%d rounds, nnrun and PyTorch alternating: medians (ranges); ratio of the medians" % rounds)
print("%-32s %22s %22s %7s" % ("workload", "nnrun", "pytorch" if torch else "", "ratio" if torch else ""))


def cell(xs, fmt):
    return (fmt % median(xs)) + (" (%s-%s)" % (fmt % min(xs), fmt % max(xs)) if len(xs) > 1 else "")


def row(name, ours, theirs, higher_better=True, fmt="%.0f"):
    r = th = ""
    if theirs:
        th = cell(theirs, fmt)
        mo, mt = median(ours), median(theirs)
        r = "%7.2f" % ((mo / mt) if higher_better else (mt / mo))
    print("%-32s %22s %22s %7s" % (name, cell(ours, fmt), th, r))


g = lambda w, k: t.get(w, {}).get(k) if w != "GEMM" else None
row("W1 MLP train samples/s (b128)", [w["train_samples_per_s"] for w in W1], g("W1", "train_samples_per_s"))
row("W2 LeNet train samples/s (b64)", [w["train_samples_per_s"] for w in W2], g("W2", "train_samples_per_s"))
row("W3 LeNet infer b1 p50 ms", [w["infer_batch1_p50_ms"] for w in W2], g("W3", "infer_batch1_p50_ms"), False,
    "%.3f")
row("W3 LeNet infer b1 p99 ms", [w["infer_batch1_p99_ms"] for w in W2], g("W3", "infer_batch1_p99_ms"), False,
    "%.3f")
row("W3 LeNet infer b256 samples/s", [w["infer_samples_per_s"] for w in W2], g("W3", "infer_samples_per_s"))
print("GEMM GFLOP/s achieved (medians): W1 %.1f, W2 %.1f (ratio > 1: nnrun faster)" %
      (median([w["gemm_gflops"] for w in W1]), median([w["gemm_gflops"] for w in W2])))

# SGEMM per shape: nnrun's backends, OpenBLAS via torch.matmul, the FMA peak
# each side's figure per shape: the median over the rounds
peak, tg = load("peak.json"), (tgs[0] if tgs else None)
key = lambda s: (s["m"], s["n"], s["k"], s["ta"], s["tb"])
ours, theirs, tshare, shapes, backends = {}, {}, {}, [], []
for r in range(1, rounds + 1):
    gemm = load("gemm.%d.json" % r)
    try:
        # key(s), s["backend"] and s["gflops"] raise on an entry that lacks them
        entries = [s for s in gemm["gemm"] if key(s) and s["backend"] and s["gflops"] > 0] if gemm else []
    except (AttributeError, KeyError, TypeError):
        print("nnrun bench --gemm: not available (unexpected JSON: %.60s)" % json.dumps(gemm))
        entries = []
    if gemm is None and open("%s/gemm.%d.json" % (d, r)).read().strip():
        print("nnrun bench --gemm: not available (its output is not JSON)")
    for s in entries:
        if key(s) not in shapes:
            shapes.append(key(s))
        if s["backend"] not in backends:
            backends.append(s["backend"])
        o = ours.setdefault(key(s) + (s["backend"],), {"runs": [], "max_rel_err": 0.0})
        o["runs"].append(s["gflops"])
        o["max_rel_err"] = max(o["max_rel_err"], s.get("max_rel_err", 0))
for o in ours.values():
    o["gflops"] = median(o["runs"])
runs = {}
for o in tgs:
    for s in o.get("shapes", []):
        if key(s) not in shapes:
            shapes.append(key(s))
        runs.setdefault(key(s), []).append(s["gflops"])
        if s.get("cpu_share") is not None:
            tshare[key(s)] = min(tshare.get(key(s), 1.0), s["cpu_share"])
theirs = {k: median(v) for k, v in runs.items()}
backends.sort(key=lambda b: (["native", "clblast"] + [b]).index(b))  # native, clblast, then the rest
tdev = (tg or {}).get("device", "cpu")
tname = "openblas" if tdev == "cpu" else "torch-" + tdev
# % of the CPU's peak only when nnrun ran on the CPU: torch on a GPU (tests/gpu/run.sh) means a GPU run
pk = peak["peak_gflops"] if peak and tdev == "cpu" else None
if shapes:
    f1 = lambda x: "%.1f" % x
    pct = lambda x: "%.0f%%" % (100 * x / pk)
    tshort = "blas" if tdev == "cpu" else "torch"
    cols = [(b, lambda sh, b=b: ours.get(sh + (b,), {}).get("gflops"), f1) for b in backends]  # (header, value, format)
    nat = lambda sh: ours.get(sh + ("native",), {}).get("gflops")
    if tg:
        cols.append((tname, theirs.get, f1))
    if tg and "native" in backends:
        cols.append(("nat/" + tshort, lambda sh: nat(sh) / theirs[sh] if nat(sh) and theirs.get(sh) else None,
                     lambda x: "%.2f" % x))
    if pk and "native" in backends:
        cols.append(("nat %peak", nat, pct))
    if pk and tg:
        cols.append((tshort + " %peak", theirs.get, pct))
    print()
    print("%-36s" % ("SGEMM GFLOP/s, medians of %d rounds" % rounds) + "".join(" %10s" % c[0] for c in cols))
    print("  M x N x K, op(A)op(B)")
    busy = 0
    for sh in shapes:
        m, n, k, ta, tb = sh
        vals = [c[1](sh) for c in cols]
        note = ""
        if tshare.get(sh) is not None and tshare[sh] < 0.9:
            note, busy = "  busy: %.0f%%" % (100 * tshare[sh]), 1
        print("  %5d x %5d x %5d  %s%s         " % (m, n, k, "NT"[ta], "NT"[tb]) +
              "".join(" %10s" % (c[2](v) if v is not None else "-") for c, v in zip(cols, vals)) + note)
    if busy:
        print("  busy: in one round %s's threads got only that share of the cores' time (other processes ran)"
              % tname)
    for (m, n, k, ta, tb, b), s in ours.items():
        if s.get("max_rel_err", 0) > 1e-4:
            print("  WRONG RESULTS? %s %dx%dx%d: max_rel_err %.1e" % (b, m, n, k, s["max_rel_err"]))
if peak:
    print("CPU FMA peak: %.1f GFLOP/s (%s, %d threads%s)" % (peak["peak_gflops"], peak["isa"], peak["threads"],
          "" if peak.get("cpu_share", 1) >= 0.9 else
          "; the threads got only %.0f%% of the cores: machine busy, peak too low" % (100 * peak["cpu_share"])))
PYEOF
