#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-unit-security.sh UNIT [MAX] — systemd-analyze's exposure score of the
# service unit must stay at or below MAX (default 2.0), and the file system is
# read-only to the daemon but for exactly the paths it must write: the spool
# and DeployDirectory (DESIGN.md, "Deployments"). TAP.
set -u
unit=$1
max=${2:-2.0}

if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        echo "1..0 # SKIP systemd-analyze has no --offline (needs systemd >= 250)"
        exit 0
fi

echo "1..3"
failed=0
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
rc=$?
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [ $rc -ne 0 ] && ! grep -q 'Overall exposure level' <<<"$out"; then
        echo "not ok 1 - systemd-analyze security parses $unit"
        sed 's/^/# /' <<<"$out"
        echo "not ok 2 - exposure at most $max # SKIP no score"
        failed=1
else
        echo "ok 1 - systemd-analyze security parses $unit"
        if [ -n "$score" ] && awk -v s="$score" -v m="$max" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
                echo "ok 2 - exposure $score is at most $max"
        else
                echo "not ok 2 - exposure '${score:-?}' is at most $max"
                grep '✗' <<<"$out" | sed 's/^/# /'
                failed=1
        fi
fi

# Writable paths, read off the unit itself.
writable=$(sed -n 's/^ReadWritePaths=//p' "$unit" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')
want="/etc/certkeeper/live /var/spool/certkeeper "
desc="ProtectSystem=strict and ReadWritePaths= exactly the spool and DeployDirectory"
if grep -qx 'ProtectSystem=strict' "$unit" && [ "$writable" = "$want" ]; then
        echo "ok 3 - $desc"
else
        echo "not ok 3 - $desc"
        echo "# ReadWritePaths: '$writable', expected '$want'"
        failed=1
fi
exit $failed
