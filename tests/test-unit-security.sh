#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-unit-security.sh UNIT [MAX] — systemd-analyze's exposure score of the
# service unit must stay at or below MAX (default 2.0). TAP.
set -u
unit=$1
max=${2:-2.0}

if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        echo "1..0 # SKIP systemd-analyze has no --offline (needs systemd >= 250)"
        exit 0
fi

out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
rc=$?
echo "1..2"
if [ $rc -ne 0 ] && ! grep -q 'Overall exposure level' <<<"$out"; then
        echo "not ok 1 - systemd-analyze security parses $unit"
        sed 's/^/# /' <<<"$out"
        echo "not ok 2 - exposure at most $max # SKIP no score"
        exit 1
fi
echo "ok 1 - systemd-analyze security parses $unit"
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -n "$score" ] && awk -v s="$score" -v m="$max" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
        echo "ok 2 - exposure $score is at most $max"
        exit 0
fi
echo "not ok 2 - exposure '${score:-?}' is at most $max"
grep '✗' <<<"$out" | sed 's/^/# /'
exit 1
