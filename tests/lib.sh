# shellcheck shell=bash
# shellcheck disable=SC2034  # FASHION, RC, OUT, ERR ... are for the scripts that source this
# tests/lib.sh - shared by the black-box test scripts (sourced, not run):
# tests/cli.sh, tests/e2e.sh, tests/reliability.sh.
# Set before sourcing: PREFIX (the name lines start with: cli, e2e, rel) and
# optionally NEED_TOOLS (commands the script needs; default python3 timeout).
# Provides: ROOT, NNRUN, TMO, FASHION, T (a temp folder removed at exit, kept
# with NNRUN_TEST_KEEP=1), the caches, BG (a background pid killed at exit),
# and pass/fail/skip/nn/rc_text/py/check as described below. Output: "PASS
# PREFIX/NAME", "FAIL PREFIX/NAME: why" (details indented below) or "SKIP
# PREFIX/NAME: why" lines; the caller ends with `summary` ("N passed, N
# failed", plus ", N skipped" when any were).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)
NNRUN=${NNRUN:-$ROOT/nnrun}
TMO=${NNRUN_TEST_TIMEOUT:-300}
CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nnrun-test
export NNRUN_CACHE_DIR=${NNRUN_CACHE_DIR:-$CACHE}
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$NNRUN_CACHE_DIR/pocl}
if ! mkdir -p "$NNRUN_CACHE_DIR" "$POCL_CACHE_DIR" 2>/dev/null; then
    # not writable (read-only home in CI): a per-user folder in /tmp
    NNRUN_CACHE_DIR=/tmp/nnrun-test-cache-$(id -u)
    export POCL_CACHE_DIR=$NNRUN_CACHE_DIR/pocl
    mkdir -p "$POCL_CACHE_DIR"
fi
export LC_ALL=C
PREFIX=${PREFIX:-cli}
FASHION=/usr/share/datasets/fashion-mnist

npass=0
nfail=0
nskip=0
pass() { npass=$((npass + 1)); echo "PASS $PREFIX/$1"; }
# fail NAME WHY [DETAIL...]: details (e.g. stderr) are printed indented.
fail() {
    nfail=$((nfail + 1))
    echo "FAIL $PREFIX/$1: $2"
    shift 2
    local d
    for d in "$@"; do
        [ -n "$d" ] && printf '%s\n' "$d" | head -n 8 | sed 's/^/    /'
    done
    return 0
}
# skip NAME WHY: a test that cannot run here; counted as skipped, never passed.
skip() { nskip=$((nskip + 1)); echo "SKIP $PREFIX/$1: $2"; }
summary() {
    if [ "$nskip" = 0 ]; then
        echo "$npass passed, $nfail failed"
    else
        echo "$npass passed, $nfail failed, $nskip skipped"
    fi
    [ "$nfail" = 0 ]
}
if [ ! -x "$NNRUN" ]; then
    fail setup "$NNRUN is missing or not executable (run 'make nnrun')"
    summary
    exit 1
fi
for tool in ${NEED_TOOLS:-python3 timeout}; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail setup "'$tool' is needed by tests/$(basename "$0") but is not installed"
        summary
        exit 1
    fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/nnrun-${PREFIX//\//-}.XXXXXX") || exit 2
BG=""
cleanup() {
    [ -n "$BG" ] && kill -9 "$BG" 2>/dev/null
    if [ "${NNRUN_TEST_KEEP:-0}" = 1 ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# nn ARGS...: runs nnrun with no stdin and a time limit. Sets RC; stdout and
# stderr are in $T/out and $T/err (also $OUT and $ERR). NN_CWD=dir runs it
# there. RC 124 means it hung.
nn() {
    (cd "${NN_CWD:-.}" && exec timeout --foreground -k 10 "$TMO" "$NNRUN" "$@") </dev/null >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}
# rc_text RC: "exit 139 (crashed: signal 11)" etc., for messages.
rc_text() {
    case $1 in
    124) echo "timed out after ${TMO}s" ;;
    13[1-9] | 1[4-9][0-9]) echo "exit $1 (crashed: signal $(($1 - 128)))" ;;
    *) echo "exit $1" ;;
    esac
}
# py CODE ARGS...: python3 with CODE; ARGS in sys.argv[1:].
py() {
    local c=$1
    shift
    python3 -c "$c" "$@"
}
# check NAME CONDITION-COMMAND... : PASS when the command succeeds; else FAIL
# with $WHY and $DETAIL (both reset). Conditions are often `eval '...'` so that
# they are read at check time (shellcheck's SC2016 notes are intended).
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "${WHY:-check failed}" "${DETAIL:-}"; fi
    WHY=""
    DETAIL=""
}
# es_model DEST: Iris (data iris.csv / iris_test.csv beside DEST) with a 20%
# validation split, a high lr, a plateau lr schedule behind a warmup and early
# stopping with patience 4: it stops after about 14 of its 30 epochs on this
# machine, restoring an earlier epoch (tests/cli.sh es/*, tests/reliability.sh).
es_model() {
    py 'import json,sys
m = json.load(open(sys.argv[1]))
m["data"]["train"]["path"] = "iris.csv"; m["data"]["test"]["path"] = "iris_test.csv"
m["optimizer"]["lr"] = 0.05
m["train"].update(epochs=30, seed=3, validation_split=0.2,
    lr_schedule={"type": "plateau", "patience": 1, "factor": 0.5, "warmup_epochs": 2, "warmup_start_factor": 0.5},
    early_stopping={"patience": 4})
json.dump(m, open(sys.argv[2], "w"), indent=1)' "$ROOT/models/iris_mlp.json" "$1"
}
