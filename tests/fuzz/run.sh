#!/usr/bin/env bash
# tests/fuzz/run.sh - runs the libFuzzer targets (`make fuzz` calls it after
# `make fuzz-build`).
#
#   tests/fuzz/run.sh [TARGET...]            fuzz each for $FUZZ_SECONDS (60)
#   tests/fuzz/run.sh --replay [TARGET...]   run every reproducer in
#                                            tests/fuzz/crashes/TARGET-* once:
#                                            PASS/FAIL lines
# TARGETs: spec csv idx image modelbin list text onnx tune (default: all). Seeds come from
# tests/fuzz/corpus/TARGET/ (read only); what the fuzzer learns goes to
# $FUZZ_BUILD/corpus/TARGET/ (default build-fuzz), kept between runs; crashes,
# leaks, timeouts and out-of-memory inputs to $FUZZ_BUILD/artifacts/.
# Limits: -rss_limit_mb=2048 (and the same malloc limit), so an unbounded
# allocation is a finding; -timeout=20 s per input; -max_len per target below.
# FUZZ_JOBS=N runs N fuzzing processes per target (default 1: the machine is
# shared). FUZZ_IMAGE_MAX_PIXELS (default 1048576 here) and FUZZ_SKIP_KNOWN
# (default 1 here) keep findings already in crashes/ from stopping every run:
# see fuzz_common.h, fuzz_image.c and fuzz_text.c; --replay sets neither.
# Exit status 1 when a target found something (or a reproducer still
# fails with --replay).
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
replay=0
if [ "${1:-}" = --replay ]; then
    replay=1
    shift
fi
targets=${*:-spec csv idx image modelbin list text onnx tune}

max_len() {
    case $1 in
    spec) echo 16384 ;;
    csv) echo 8192 ;;
    idx) echo 16384 ;;
    image) echo 16384 ;;
    ckpt) echo 65536 ;;
    onnx) echo 65536 ;;
    list) echo 8192 ;;
    text) echo 4096 ;;
    *) echo 4096 ;;
    esac
}

if [ $replay = 1 ]; then
    np=0 nf=0
    for t in $targets; do
        for f in tests/fuzz/crashes/"$t"-*; do
            [ -f "$f" ] || continue
            case $(basename "$f") in *.*) continue ;; esac # README.md, raw files for nnrun itself
            # a reproducer must not take long either: 10 s (fuzzing allows 20)
            if out=$(timeout 120 "$B/fuzz_$t" -rss_limit_mb=2048 -timeout=10 "$f" 2>&1); then
                echo "PASS fuzz/replay/$(basename "$f")"
                np=$((np + 1))
            else
                echo "FAIL fuzz/replay/$(basename "$f")"
                printf '%s\n' "$out" | grep -E 'ERROR|SUMMARY|invariant|#[0-3] ' | head -n 8 | sed 's/^/    /'
                nf=$((nf + 1))
            fi
        done
    done
    echo "$np passed, $nf failed"
    [ $nf = 0 ]
    exit
fi

mkdir -p "$B/artifacts" "$B/logs"
total=0
found=0
for t in $targets; do
    bin=$B/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing (make fuzz-build)" >&2
        exit 2
    fi
    mkdir -p "$B/corpus/$t"
    dict=()
    [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
    log=$B/logs/$t.log
    before=$(ls "$B/artifacts" | wc -l)
    par=()
    [ "$JOBS" -gt 1 ] && par=(-jobs="$JOBS" -workers="$JOBS")
    echo "fuzz: $t for ${SECS}s (log: $log)"
    FUZZ_IMAGE_MAX_PIXELS=${FUZZ_IMAGE_MAX_PIXELS:-1048576} FUZZ_SKIP_KNOWN=${FUZZ_SKIP_KNOWN:-1} "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=20 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" "${dict[@]}" "${par[@]}" \
        "$B/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    [ "$JOBS" -gt 1 ] && cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    total=$((total + n))
    after=$(ls "$B/artifacts" | wc -l)
    if [ "$rc" != 0 ] || [ "$after" != "$before" ]; then
        found=1
        echo "fuzz: $t: FOUND A PROBLEM (exit $rc) after $n executions:"
        grep -E 'ERROR: |SUMMARY: |invariant violated|Test unit written' "$log" | head -n 6 | sed 's/^/    /'
    else
        echo "fuzz: $t: $n executions, nothing found"
    fi
done
echo "fuzz: $total executions in total"
exit $found
