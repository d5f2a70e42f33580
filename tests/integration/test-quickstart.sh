#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/quickstart as a new admin runs it (--no-build: the tree meson built):
# it prints the lines that put certkeeperctl on PATH with its completion, its
# sample policy shows a hard refusal and a soft warning, pebble issues when
# it is installed, --config FILE runs with one's own configuration, and the
# last line says the cleanup is done (and it is).

source "$(dirname "$0")/lib.sh"

QS=$CK_SOURCE_ROOT/tools/quickstart

# has DESC TEXT REGEX — ok if a line of TEXT matches the extended REGEX.
has() {
        if grep -Eq -- "$3" <<<"$2"; then
                ck_ok "$1"
                return 0
        fi
        ck_not_ok "$1"
        ck_diag "no line matches /$3/ in:"
        ck_diag "$2"
        return 1
}

plain() {
        sed 's/\x1b\[[0-9;]*m//g' <<<"$1"
}

out=$(plain "$("$QS" --no-build --no-wait </dev/null 2>&1)")
rc=$?
ck_check "quickstart --no-build --no-wait exits 0" test "$rc" = 0 || ck_diag "$out"
has "it prints the line that puts certkeeperctl on PATH" "$out" "^ +export PATH=$CK_BUILD_ROOT/tools:\\\$PATH\$"
has "and the one for its bash completion" "$out" "^ +source $CK_SOURCE_ROOT/completion/certkeeperctl\$"
has "and the bus to use" "$out" "^ +export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/tmp/certkeeper-quickstart\\.[^/]+/system_bus_socket\$"
has "the demo order completes" "$out" "Status +\"complete\""
has "the hard rule refuses www.example.org" "$out" "order [0-9]+ failed: .*AllowedDomains"
has "the soft rule warns about 365 days" "$out" "Policy warning: .*MaxValidityDays"
has "the audit shows certificate.policy_hard_fail" "$out" "certificate\\.policy_hard_fail"
has "and certificate.policy_soft_fail" "$out" "certificate\\.policy_soft_fail"
if command -v pebble >/dev/null; then
        has "pebble is the ACME provider" "$out" "acme \\(acme\\)"
        ck_check "the ACME order completes" \
                bash -c "sed -n '/request acme\\.example\\.com/,/==>/p' <<<\"\$0\" | grep -q 'Order [0-9]*: complete'" "$out"
else
        ck_skip "pebble is the ACME provider" "pebble is not installed"
fi
last=$(tail -n 1 <<<"$out")
has "the last line says the cleanup is done" "$last" "^==> Stopped: .* is removed\$"
run_dir=$(sed -n 's/^Files: *config \(\/tmp\/certkeeper-quickstart\.[^/]*\)\/certkeeper\.conf.*/\1/p' <<<"$out")
ck_check "its temporary directory ($run_dir) is gone" bash -c "test -n '$run_dir' && test ! -e '$run_dir'"

# --config FILE: one's own configuration (state and spool still in the temporary directory).
mkdir -p "$CK_RUN/own"
cat >"$CK_RUN/own/my.conf" <<'CONF'
[LocalCA]
Subject=CN=My Own Quickstart CA,O=Example

[Daemon]
StateDirectory=/nonexistent/must-not-be-used
CONF
out=$(plain "$("$QS" --no-build --no-wait --config "$CK_RUN/own/my.conf" </dev/null 2>&1)")
rc=$?
ck_check "quickstart --config FILE exits 0" test "$rc" = 0 || ck_diag "$out"
has "the daemon runs with that file (its CA)" "$out" "CA: +CN=My Own Quickstart CA"
ck_check "no sample policy demo with one's own file" bash -c "! grep -q 'www.example.org' <<<\"\$0\"" "$out"
ck_check "and its StateDirectory was overridden" test ! -e /nonexistent/must-not-be-used

ck_check_fails "quickstart --config with a file that does not exist is refused" "$QS" --no-build --config /nonexistent.conf
has "saying so" "$CK_ERR" "not a readable file"
ck_done
