#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# certkeeperctl's documentation keeps up with the program: every command and
# option in --help is in the manual page and the bash completion, and the
# manual page formats without warnings. TAP output.
set -u
CTL=${1:?usage: test-ctl-docs.sh CERTKEEPERCTL MANPAGE COMPLETION}
MAN=${2:?}
COMPLETION=${3:?}
shift 3 # the rest: more manual pages to check for warnings
n=0
fail=0
ok() {
        n=$((n + 1))
        if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

help=$("$CTL" --help)
commands=$(sed -n '/^Commands:/,/^Options:/p' <<<"$help" | grep -Eo '^  [a-z][a-z-]+' | sort -u)
options=$(grep -Eo -- '--[a-z][a-z-]+' <<<"$help" | sort -u)
[ "$(wc -l <<<"$commands")" -ge 18 ]
ok $? "--help lists the commands ($(wc -l <<<"$commands"))"

for c in $commands; do
        grep -q "^\.B $(sed 's/-/\\\\-/g' <<<"$c")\b" "$MAN"
        ok $? "manual page documents command $c"
        grep -q "\b$c\b" "$COMPLETION"
        ok $? "completion knows command $c"
done
for o in $options; do
        grep -q -- "$(sed 's/-/\\\\-/g' <<<"$o")" "$MAN"
        ok $? "manual page documents option $o"
        grep -q -- "$o\b" "$COMPLETION"
        ok $? "completion knows option $o"
done

if command -v groff >/dev/null; then
        for page in "$MAN" "$@"; do
                warnings=$(groff -man -ww -z "$page" 2>&1)
                [ -z "$warnings" ]
                ok $? "$(basename "$page") formats without warnings${warnings:+: $warnings}"
        done
fi

echo "1..$n"
exit $fail
