#!/usr/bin/env bash
# tests/fuzz/replay.sh - the fuzzing reproducers in tests/fuzz/crashes/ as
# regression tests, part of tests/run.sh (`make test`):
#
#   crashes/TARGET-NAME       (no extension) the raw input of fuzz_TARGET, run
#                             once through $REPLAY_DIR/fuzz_TARGET (built by
#                             `make test` from tests/fuzz/replay_main.c with the
#                             normal compiler: no libFuzzer or clang needed;
#                             under `make test-asan` with ASan+UBSan)
#   crashes/image-NAME.EXT    an image file: `nnrun infer` with a 1-channel
#                             model must reject it cleanly (exit 65), not crash
#
# Lines "PASS fuzz/replay/NAME", "FAIL fuzz/replay/NAME: why" or "SKIP
# fuzz/replay/NAME: why" (a driver not built), then the summary line.
PREFIX=fuzz/replay
. "$(dirname "$0")/../lib.sh"
REPLAY_DIR=${REPLAY_DIR:-build/replay}
MODEL=$ROOT/tests/fuzz/corpus/modelbin/tiny_cnn.model

for f in "$ROOT"/tests/fuzz/crashes/*; do
    name=$(basename "$f")
    case $name in
    README.md) continue ;;
    *.*)
        nn infer "$MODEL" "$f"
        if [ "$RC" = 65 ] && [ -n "$ERR" ]; then
            pass "$name"
        else
            fail "$name" "nnrun infer gave $(rc_text "$RC"), expected exit 65 with a message" "$ERR"
        fi
        ;;
    *)
        target=${name%%-*}
        bin=$REPLAY_DIR/fuzz_$target
        if [ ! -x "$bin" ]; then
            skip "$name" "$bin is not built (make $bin)"
            continue
        fi
        # a reproducer must not take long either: 10 s per input while fuzzing
        out=$(timeout -k 10 120 "$bin" "$f" 2>&1)
        rc=$?
        if [ "$rc" = 0 ]; then
            pass "$name"
        else
            fail "$name" "fuzz_$target gave $(rc_text "$rc")" \
                "$(printf '%s\n' "$out" | grep -E 'ERROR|SUMMARY|invariant|#[0-3] ' | head -n 8)"
        fi
        ;;
    esac
done
summary
