#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# certkeeperctl's command line without a daemon: usage errors exit 2 before any
# bus is touched, a missing bus is one clear line and exit 1. TAP output.
set -u
CTL=${1:?usage: test-ctl-cli.sh PATH-TO-CERTKEEPERCTL VERSION}
VERSION=${2:?usage: test-ctl-cli.sh PATH-TO-CERTKEEPERCTL VERSION}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# A bus address that cannot work, so nothing here can reach a real daemon.
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-such-bus"
n=0
fail=0

# check EXPECTED_RC STDERR_REGEX -- ARGS...
check() {
        local want=$1 pattern=$2
        shift 3
        n=$((n + 1))
        "$CTL" "$@" >"$TMP/out" 2>"$TMP/err"
        local rc=$?
        if [ "$rc" -eq "$want" ] && grep -Eq -- "$pattern" "$TMP/err"; then
                echo "ok $n - certkeeperctl $* → $rc"
        else
                echo "not ok $n - certkeeperctl $* → $rc (wanted $want, stderr matching /$pattern/)"
                sed 's/^/# /' "$TMP/err"
                fail=1
        fi
}

check 2 "no command given" --
check 2 "unknown command 'frobnicate'" -- frobnicate
check 2 "unknown option '--bogus'" -- list --bogus
check 2 "option --code does not apply to 'list'" -- list --code 123456
check 2 "'show' needs 1 argument" -- show
check 2 "too many arguments for 'status'" -- status extra
check 2 "invalid certificate ID 'abc'" -- show abc
check 2 "invalid order ID '1x'" -- order 1x
check 2 "invalid ID 'x'" -- ack x
check 2 "invalid --key 'rsa-1024'" -- request www.example.com --key rsa-1024
check 2 "invalid --reason 'sorry'" -- revoke 7 --reason sorry
check 2 "invalid --code" -- revoke 7 --code 12345
check 2 "invalid --since 'soon'" -- audit --since soon
check 2 "invalid --json mode 'yaml'" -- list --json=yaml
check 2 "invalid --source 'elsewhere'" -- list --source elsewhere
check 2 "invalid value for --limit" -- list --limit 0
check 2 "invalid value for --days" -- request a.example.com --days 99999999999
check 2 "invalid --timeout" -- request a.example.com --timeout 0
check 2 "exclude each other" -- request a.example.com --timeout 5 --no-wait
check 2 "invalid value for --days: '36501' \\(expected a number from 1 to 36500\\)" -- request a.example.com --days 36501
check 2 "invalid --status 'bogus': expected active, expired or revoked" -- list --status bogus
check 2 "invalid --status 'done': expected pending, processing, complete or failed" -- orders --status done
check 2 "option --oldest-first does not apply to 'list'" -- list --oldest-first
# export-pfx without -o is no usage error: it writes to stdout (a pipe here) or ./CN.pfx.
check 1 "failed to connect to the system bus" -- export-pfx 7
check 1 "failed to connect to the system bus" -- overview --all
check 1 "failed to connect to the system bus" -- audit --event revoke.success --since yesterday --limit 1 --oldest-first --reverse
check 2 "option --output given twice" -- download 7 -o a -o b
check 2 "option '--limit' needs a value" -- list --limit

# Valid command lines reach the bus and fail there: exit 1, one clear line, a hint.
check 1 "^certkeeperctl: failed to connect to the system bus: No such file or directory$" -- list
check 1 "^Hint: .*DBUS_SYSTEM_BUS_ADDRESS" -- status
check 1 "failed to connect to the system bus" -- show 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
check 1 "failed to connect to the system bus" -- audit --since "2026-11-27 10:00" --event certificate.issued --limit 5
check 1 "failed to connect to the system bus" -- request www.example.com --san example.com --san www.example.com --key ec-256 --days 90
# --json alone is --json=short: the next word is the command, not its value.
check 1 "failed to connect to the system bus" -- --json list
check 1 "failed to connect to the system bus" -- list --json
check 1 "failed to connect to the system bus" -- revoke 7 --local-only --code 123456

# --help and --version work without a bus and document the exit codes.
n=$((n + 1))
if "$CTL" --help >"$TMP/help" 2>&1 && grep -q "6  timed out waiting for the order" "$TMP/help" &&
        [ "$("$CTL" --version)" = "certkeeperctl $VERSION" ]; then
        echo "ok $n - --help documents exit codes, --version matches the project"
else
        echo "not ok $n - --help/--version"
        fail=1
fi

echo "1..$n"
exit $fail
