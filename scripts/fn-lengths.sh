#!/bin/sh
# Lists functions longer than N lines (default 80), longest first: LINES FILE:LINE NAME.
# Relies on rustfmt layout: a function ends at the first `}` at its own indentation.
#   scripts/fn-lengths.sh [N] [DIR…]   (default dirs: src core/src generator/src)
n=${1:-80}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- src core/src generator/src
find "$@" -name '*.rs' | sort | xargs awk -v min="$n" '
FNR == 1 { depth = 0 }
match($0, /^ *((pub(\([a-z]+\))? )?(const )?(async )?(unsafe )?fn [A-Za-z0-9_]+)/) && $0 !~ /;[ \t]*$/ {
    indent = $0; sub(/[^ ].*/, "", indent)
    name = $0; sub(/^.*fn /, "", name); sub(/[^A-Za-z0-9_].*/, "", name)
    stack[++depth] = indent "\t" FNR "\t" name
    if ($0 ~ /\}[ \t]*$/ && $0 ~ /\{/) { depth-- }
    next
}
depth > 0 {
    split(stack[depth], f, "\t")
    if ($0 == f[1] "}") {
        len = FNR - f[2] + 1
        if (len > min) printf "%5d %s:%d %s\n", len, FILENAME, f[2], f[3]
        depth--
    }
}' | sort -rn
