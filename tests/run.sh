#!/usr/bin/env bash
# tests/run.sh - runs every test suite; `make test` calls it after building
# ./nnrun and build/unit_tests.
#
# Suites: build/unit_tests (PASS unit/... / FAIL unit/... / SKIP unit/... lines),
# tests/cli.sh (PASS cli/... / FAIL cli/... lines), tests/e2e.sh (PASS e2e/...), tests/reliability.sh
# (PASS rel/... / FAIL rel/... lines), tests/fuzz/replay.sh (the fuzzing
# reproducers: PASS fuzz/replay/...; SKIP when `make test` did not build the
# replay drivers), tests/onnx.sh (PASS onnx/...), tests/install.sh
# (PASS install/...) and tests/mpi.sh (PASS mpi/...: 2 ranks under mpirun;
# SKIP without mpirun). Their output is shown as it
# comes; each suite's own "N passed, N failed" line is shown as
# "# unit: N passed, N failed" so that the last line of this script is the only
# summary: "N passed, N failed, N skipped" over all PASS/FAIL/SKIP lines. A suite that exits
# non-zero without reporting a FAIL line (a crash, a missing binary) counts as
# one failure, as does a crash or a suite running past
# $NNRUN_TEST_SUITE_TIMEOUT seconds (default 1800). Exit status 1 when
# anything failed.
#
# Kernel caches (nnrun's and PoCL's) live in a persistent folder, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/nnrun-test, so repeated runs are fast.
#
# NNRUN=/path/nnrun, UNIT_TESTS=/path/unit_tests and REPLAY_DIR=/path test
# other builds (`make test-asan`: ./nnrun-asan, build-asan/unit_tests and
# build-asan/replay); defaults ./nnrun, build/unit_tests and build/replay.
set -u
cd "$(dirname "$0")/.." || exit 2

CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nnrun-test
export NNRUN_CACHE_DIR=${NNRUN_CACHE_DIR:-$CACHE}
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$NNRUN_CACHE_DIR/pocl}
if ! mkdir -p "$NNRUN_CACHE_DIR" "$POCL_CACHE_DIR" 2>/dev/null; then
    # not writable (read-only home in CI): a per-user folder in /tmp
    NNRUN_CACHE_DIR=/tmp/nnrun-test-cache-$(id -u)
    export POCL_CACHE_DIR=$NNRUN_CACHE_DIR/pocl
    mkdir -p "$POCL_CACHE_DIR"
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/nnrun-run.XXXXXX") || exit 2
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM HUP

SUITE_TMO=${NNRUN_TEST_SUITE_TIMEOUT:-1800}   # seconds per suite
total_pass=0
total_fail=0
total_skip=0

# suite NAME COMMAND...: runs it with no stdin, streams its output (stderr
# too), counts its PASS/FAIL lines and renames its summary line.
suite() {
    local name=$1
    shift
    timeout --foreground -k 10 "$SUITE_TMO" "$@" </dev/null 2>&1 | awk -v suite="$name" -v counts="$W/$name.counts" '
        /^PASS /                            { p++ }
        /^FAIL /                            { f++ }
        /^SKIP /                            { s++ }
        /^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ { print "# " suite ": " $0; fflush(); next }
                                            { print; fflush() }
        END                                 { printf "%d %d %d\n", p, f, s > counts }'
    local rc=${PIPESTATUS[0]} p=0 f=0 s=0
    read -r p f s <"$W/$name.counts" || true
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "FAIL $name: timed out after ${SUITE_TMO}s"
        f=$((f + 1))
    elif [ "$rc" -gt 128 ]; then
        echo "FAIL $name: crashed (signal $((rc - 128)))"
        f=$((f + 1))
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "FAIL $name: exited with status $rc without reporting a failed test"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + s))
}

# NNRUN_SUITES="unit cli" runs only those (tests/portability.sh)
SUITES=" ${NNRUN_SUITES:-unit cli e2e rel fuzz onnx install mpi} "
UNIT_TESTS=${UNIT_TESTS:-build/unit_tests}
case $SUITES in *" unit "*)
    if [ -x "$UNIT_TESTS" ]; then
        suite unit "$UNIT_TESTS"
    else
        echo "FAIL unit: $UNIT_TESTS is missing (make $UNIT_TESTS)"
        total_fail=$((total_fail + 1))
    fi ;;
esac
case $SUITES in *" cli "*) suite cli tests/cli.sh ;; esac
case $SUITES in *" e2e "*) suite e2e tests/e2e.sh ;; esac
case $SUITES in *" rel "*) suite rel tests/reliability.sh ;; esac
case $SUITES in *" fuzz "*) suite fuzz tests/fuzz/replay.sh ;; esac
case $SUITES in *" onnx "*) suite onnx tests/onnx.sh ;; esac
case $SUITES in *" install "*) suite install tests/install.sh ;; esac
case $SUITES in *" mpi "*) suite mpi tests/mpi.sh ;; esac

echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
