#!/usr/bin/env bash
# tests/install.sh - `make install` / `make uninstall`, the man page nnrun(1)
# against every command's --help, and the bash completion.
#
# Installs into a temporary DESTDIR (PREFIX /usr/local): the binary, the man
# page and the completion must land there and work; the man page must have a
# section per command of `nnrun --help`, every option of that command's
# --help in it, and every exit code main.c's usage lists; the completion must
# complete commands and options; `make uninstall` must remove exactly what
# was installed. PASS/FAIL lines, then "N passed, N failed".
PREFIX=install
. "$(dirname "$0")/lib.sh"

D=$T/root
P=/usr/local
if make -s -C "$ROOT" install PREFIX=$P DESTDIR="$D" >"$T/make.log" 2>&1; then
    pass make-install
else
    fail make-install "make install failed" "$(tail -n 5 "$T/make.log")"
fi
BIN=$D$P/bin/nnrun MAN=$D$P/share/man/man1/nnrun.1 COMP=$D$P/share/bash-completion/completions/nnrun
for f in "$BIN" "$MAN" "$COMP"; do
    [ -f "$f" ] || fail "files" "$f was not installed"
done
if [ -x "$BIN" ] && "$BIN" --version | grep -q '^nnrun [0-9]'; then pass binary-runs; else fail binary-runs "$BIN --version"; fi
if [ "$(stat -c %a "$MAN" 2>/dev/null)" = 644 ] && [ "$(stat -c %a "$BIN" 2>/dev/null)" = 755 ]; then
    pass modes
else
    fail modes "expected 755 for the binary and 644 for the man page"
fi

# the man page renders without warnings
if command -v groff >/dev/null 2>&1; then
    W=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)
    if [ -z "$W" ]; then pass man-renders; else fail man-renders "groff warnings" "$W"; fi
else
    echo "SKIP $PREFIX/man-renders: groff is not installed"
fi

# every command and option of --help is in the man page, in its command's section
missing=""
cmds=$("$NNRUN" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p')
[ -n "$cmds" ] || missing="(no commands in nnrun --help)"
for c in $cmds; do
    sec=$(awk -v c="$c" '/^\.SS /{on = index($0, "\"nnrun " c " ") == 5 || $0 == ".SS \"nnrun " c "\""} /^\.SH /{on = 0} on' "$MAN")
    if [ -z "$sec" ]; then
        missing="$missing section:$c"
        continue
    fi
    for o in $("$NNRUN" "$c" --help | sed -n 's/^  --\([a-z-]*\).*/\1/p'); do
        [ "$o" = help ] && continue
        grep -qF -- "\\-\\-$(printf '%s' "$o" | sed 's/-/\\-/g')" <<<"$sec" || missing="$missing $c:--$o"
    done
done
if [ -z "$missing" ]; then pass man-covers-help; else fail man-covers-help "missing from nnrun.1:$missing"; fi
codes=$(sed -n '/Exit codes:/,/);/p' "$ROOT/src/main.c" | grep -o '[0-9][0-9]* [A-Za-z]' | cut -d' ' -f1)
exits=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$MAN")
missing=""
for c in $codes; do
    grep -qx "\.B $c" <<<"$exits" || missing="$missing $c"
done
if [ -n "$codes" ] && [ -z "$missing" ]; then pass man-exit-codes; else fail man-exit-codes "exit codes missing:${missing:- (none parsed)}"; fi

# the completion: commands, a command's options, a value list
complete_words() { # COMP_WORDS... -> COMPREPLY, one per line
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); PATH="$(dirname "$NNRUN_BIN"):$PATH"
             _nnrun; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@"
}
export NNRUN_BIN=$BIN
R1=$(complete_words nnrun ex)
R2=$(complete_words nnrun import --l)
R3=$(complete_words nnrun import --loss m)
if [ "$R1" = export ] && [ "$R2" = --loss ] && [ "$R3" = mse ]; then
    pass completion
else
    fail completion "got '$R1', '$R2', '$R3' (want export, --loss, mse)"
fi

# uninstall removes exactly what install put there
if make -s -C "$ROOT" uninstall PREFIX=$P DESTDIR="$D" >"$T/make.log" 2>&1 && [ ! -e "$BIN" ] && [ ! -e "$MAN" ] &&
    [ ! -e "$COMP" ]; then
    pass make-uninstall
else
    fail make-uninstall "files left after make uninstall" "$(find "$D" -type f)"
fi
summary
