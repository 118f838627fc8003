#!/usr/bin/env bash
# tests/portability.sh - `make test-portability`: the test suites on a second
# OpenCL implementation beside PoCL, Intel's CPU runtime (PyPI packages
# intel-opencl-rt and its dependencies, ~700 MB, pip-installed into a cache
# folder: nothing system-wide), registered through OCL_ICD_VENDORS.
#
# Checks that `nnrun devices` lists both implementations and that device
# selection (index, type, name/vendor substring) finds each; that the kernel
# cache keeps their programs apart; then runs the unit tests (every GEMM
# backend: test_blas forces each), the cli and the e2e suites on the Intel
# device through tests/run.sh. Where the runtime cannot be installed (no
# network, no pip) every check says SKIP, never PASS.
#
# NNRUN_PORTABILITY_DIR: the cache folder (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/nnrun-portability).
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
NNRUN=${NNRUN:-$ROOT/nnrun}
DIR=${NNRUN_PORTABILITY_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nnrun-portability}
LIB=$DIR/intel/lib/libintelocl.so
pass=0 fail=0 skip=0
ok() { echo "PASS port/$1"; pass=$((pass + 1)); }
ko() { echo "FAIL port/$1: $2"; fail=$((fail + 1)); }
sk() { echo "SKIP port/$1: $2"; skip=$((skip + 1)); }

if [ ! -e "$LIB" ]; then
    PY=""
    for p in python3 /usr/bin/python3; do
        if "$p" -m pip --version >/dev/null 2>&1; then PY=$p; break; fi
    done
    if [ -z "$PY" ] || ! "$PY" -m pip install --quiet --disable-pip-version-check --prefix "$DIR/intel" \
        intel-opencl-rt >"$DIR.log" 2>&1 && [ -e "$LIB" ]; then
        mkdir -p "$DIR" 2>/dev/null
        sk install "could not install intel-opencl-rt with pip (${PY:-no pip}; see $DIR.log)"
        for s in devices select cache suites; do sk "$s" "no second OpenCL implementation"; done
        echo "$pass passed, $fail failed, $skip skipped"
        exit 0
    fi
fi

# The ICD folder: Intel's runtime by absolute path (no LD_LIBRARY_PATH: its
# lib folder holds an ICD loader of its own) beside the system's ICDs.
ICD=$DIR/icd
mkdir -p "$ICD"
echo "$LIB" >"$ICD/intel-cpu.icd"
for f in /etc/OpenCL/vendors/*.icd; do
    [ -e "$f" ] && cp "$f" "$ICD/"
done
export OCL_ICD_VENDORS=$ICD
T=$(mktemp -d "${TMPDIR:-/tmp}/nnrun-port.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT

# devices: both implementations, one line each
"$NNRUN" devices >"$T/devices" 2>&1
if grep -q "Portable Computing Language" "$T/devices" && grep -q "Intel(R) OpenCL" "$T/devices"; then
    ok devices
else
    ko devices "nnrun devices should list PoCL and Intel's runtime: $(tr '\n' '|' <"$T/devices")"
fi

# selection: by vendor/platform substring, by index, by type
intel_idx=$(awk '/Intel\(R\) OpenCL/ { sub(/^\*/, ""); print $1; exit }' "$T/devices")
sel_ok=1
why=""
for sel in intel "$intel_idx"; do
    "$NNRUN" train models/iris_mlp.json --device "$sel" --json --output "$T/s.bin" >"$T/sel" 2>&1
    dev=$(head -n 1 "$T/sel" | sed 's/.*"device":"\([^"]*\)".*/\1/')
    if ! grep "Intel(R) OpenCL" "$T/devices" | grep -qF "$dev"; then
        sel_ok=0
        why="--device $sel chose '$dev', not the Intel device"
    fi
done
"$NNRUN" train models/iris_mlp.json --device portable --json --output "$T/s.bin" >"$T/sel" 2>&1
dev=$(head -n 1 "$T/sel" | sed 's/.*"device":"\([^"]*\)".*/\1/')
grep "Portable Computing Language" "$T/devices" | grep -qF "$dev" || { sel_ok=0; why="--device portable chose '$dev'"; }
"$NNRUN" train models/iris_mlp.json --device cpu --json --output "$T/s.bin" >"$T/sel" 2>&1 || {
    sel_ok=0
    why="--device cpu failed: $(head -c 300 "$T/sel")"
}
if [ "$sel_ok" = 1 ]; then ok select; else ko select "$why"; fi

# the kernel cache keeps the two implementations' programs apart
mkdir -p "$T/cache"
NNRUN_CACHE_DIR=$T/cache "$NNRUN" train models/iris_mlp.json --device intel --quiet --output "$T/a.bin" 2>"$T/e1"
NNRUN_CACHE_DIR=$T/cache "$NNRUN" train models/iris_mlp.json --device portable --quiet --output "$T/b.bin" 2>"$T/e2"
n=$(ls "$T"/cache/*.nnkc 2>/dev/null | wc -l)
if [ "$n" = 2 ]; then ok cache; else ko cache "expected one cached program per implementation, found $n ($(cat "$T/e1" "$T/e2"))"; fi

# the suites on the Intel device (unit, cli, e2e; reliability stays on PoCL)
NNRUN_DEVICE=intel NNRUN_SUITES="unit cli e2e" tests/run.sh >"$T/suites" 2>&1
rc=$?
sed 's/^/    /' "$T/suites" | grep -E "^    (FAIL|SKIP)|passed|# device" || true
summary=$(tail -n 1 "$T/suites")
if ! grep -q "^# device: .*\[Intel(R) OpenCL\]" "$T/suites"; then
    ko suites "the unit tests did not run on Intel's runtime: $(grep '^# device' "$T/suites")"
elif [ "$rc" = 0 ]; then
    ok "suites ($summary)"
else
    ko suites "on Intel's runtime: $summary"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
