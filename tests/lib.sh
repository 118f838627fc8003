# tests/lib.sh - shared by the black-box test scripts (sourced, not run).
# Provides: ROOT, NNRUN, T (a temp folder removed at exit), the caches, and
# pass/fail/nn/py/check as described below. Output: "PASS cli/NAME" or
# "FAIL cli/NAME: why" lines; the caller ends with `summary`.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
NNRUN=${NNRUN:-$ROOT/nnrun}
TMO=${NNRUN_TEST_TIMEOUT:-300}
CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nnrun-test
export NNRUN_CACHE_DIR=${NNRUN_CACHE_DIR:-$CACHE}
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$NNRUN_CACHE_DIR/pocl}
mkdir -p "$NNRUN_CACHE_DIR" "$POCL_CACHE_DIR" 2>/dev/null
export LC_ALL=C
PREFIX=${PREFIX:-cli}

npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "PASS $PREFIX/$1"; }
# fail NAME WHY [DETAIL...]: details are printed indented.
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
summary() {
    echo "$npass passed, $nfail failed"
    [ "$nfail" = 0 ]
}
if [ ! -x "$NNRUN" ]; then
    fail setup "$NNRUN is missing or not executable (run 'make nnrun')"
    summary
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/nnrun-test.XXXXXX") || exit 2
trap 'if [ "${NNRUN_TEST_KEEP:-0}" = 1 ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi' EXIT
trap 'exit 130' INT TERM HUP

# nn ARGS...: runs nnrun with no stdin and a time limit; sets RC, OUT, ERR.
nn() {
    (cd "${NN_CWD:-.}" && exec timeout --foreground -k 10 "$TMO" "$NNRUN" "$@") </dev/null >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}
py() {
    local c=$1
    shift
    python3 -c "$c" "$@"
}
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with $WHY/$DETAIL.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "${WHY:-check failed}" "${DETAIL:-}"; fi
    WHY=""
    DETAIL=""
}
