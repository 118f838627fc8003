# bash completion for nnrun (installed by `make install` as
# $(PREFIX)/share/bash-completion/completions/nnrun).
# Commands and options are read from `nnrun --help` and `nnrun COMMAND
# --help`, so this file never goes out of date; arguments complete as files
# (model.json, model.bin, .onnx, images, CSV files, folders).
_nnrun()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local nn=${words[0]}
    if [ "$cword" -eq 1 ]; then
        local cmds
        cmds=$("$nn" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p')
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    local cmd=${words[1]}
    case $prev in
    --device)
        COMPREPLY=($(compgen -W "gpu cpu" -- "$cur"))
        return
        ;;
    --loss)
        COMPREPLY=($(compgen -W "cross_entropy binary_cross_entropy mse" -- "$cur"))
        return
        ;;
    --plot)
        # train --plot: a PNG to write (or a folder to go into)
        COMPREPLY=($(compgen -f -X '!*.[pP][nN][gG]' -- "$cur") $(compgen -d -- "$cur"))
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        local opts
        opts=$("$nn" "$cmd" --help 2>/dev/null | sed -n 's/^  \(--[a-z-]*\).*/\1/p')
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _nnrun nnrun
