#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The walk-throughs of README.md work as written, in order, after what the
# quickstart leaves behind (its sample policy, its demo order and certificate
# 1): first the certkeeperctl one (certkeeperctl on PATH, as the quickstart's
# lines put it), then the busctl one. Each line is one TAP test; in the end
# the certificates the README revoked are revoked and the quickstart's demo
# certificate is not.

source "$(dirname "$0")/lib.sh"

# The quickstart's sample configuration: its [Policy] as tools/quickstart writes it.
policy=$(sed -n '/^\[Policy\]$/,/^CONF$/p' "$CK_SOURCE_ROOT/tools/quickstart" | sed '$d')
ck_check "tools/quickstart has a sample [Policy]" test -n "$policy"
ck_write_config "[LocalCA]\nSubject=CN=certkeeper quickstart CA,O=certkeeper\n\n$policy"
ck_start_daemon || ck_bail "certkeeperd did not start"

# The quickstart's demo order: it takes order 1 and certificate 1.
demo=$(busctl --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager \
        RequestCertificate 'sasa{sv}' demo.example.com 1 demo.example.com 0 | jq -r '.data[0]')
ck_check "the quickstart's demo order is order 1" test "$demo" = /org/certkeeper1/order/1
demo_done() {
        busctl get-property org.certkeeper1 "$demo" org.certkeeper1.Order Status | grep -q complete
}
ck_wait_for "and it completes" 30 demo_done

export PATH=$(dirname "$CERTKEEPERCTL"):$PATH
mkdir -p "$CK_RUN/readme" && cd "$CK_RUN/readme" || ck_bail "no work directory"

# block HEADING — the first ```sh block after the line "## HEADING".
block() {
        awk -v h="## $1" '$0 == h {s = 1; next} s && /^```sh/ {b = 1; next} b && /^```/ {exit} b' \
                "$CK_SOURCE_ROOT/README.md"
}
block "certkeeperctl walk-through" >ctl.sh
block "busctl examples" >busctl.sh
ck_check "README.md has a certkeeperctl walk-through" test "$(grep -c '^certkeeperctl\|^[a-z]*=$(certkeeperctl' ctl.sh)" -ge 10
ck_check "README.md has a busctl examples block" test "$(grep -c 'busctl' busctl.sh)" -ge 10
ck_check "the busctl block hard-codes no order or certificate path" \
        bash -c "! grep -E '/org/certkeeper1/(order|certificate)/[0-9]' busctl.sh"

# One shell, so that variables set by a line ($id, $cert, $code) reach the next ones.
run_block() {
        local line
        exec 3<"$1"
        while IFS= read -r line <&3; do
                case $line in ''|'#'*) continue ;; esac
                if eval "$line" >"$CK_RUN/readme/out" 2>&1 </dev/null; then
                        ck_ok "README: ${line:0:100}"
                else
                        ck_not_ok "README: ${line:0:100}"
                        ck_diag_file "$CK_RUN/readme/out"
                fi
        done
        exec 3<&-
}
run_block ctl.sh
ctl_id=${id:-}
run_block busctl.sh

ck_check "the certificate the certkeeperctl walk-through revoked ($ctl_id) is revoked" \
        bash -c "test -n '$ctl_id' && busctl get-property org.certkeeper1 /org/certkeeper1/certificate/$ctl_id org.certkeeper1.Certificate Status | grep -q revoked"
ck_check "the certificate the busctl walk-through revoked (${cert:-}) is revoked" \
        bash -c "test -n '${cert:-}' && busctl get-property org.certkeeper1 '${cert:-}' org.certkeeper1.Certificate Status | grep -q revoked"
ck_check "the walk-through's audit --event revoke.success (a short name) finds its revocation" \
        bash -c "certkeeperctl audit --event revoke.success --json=short | jq -e --arg id '$ctl_id' 'any(.[]; .fields.certificate_id == \$id)'"
ck_check "its overview has the quickstart's demo certificate" \
        bash -c "certkeeperctl overview --json=short | jq -e 'any(.[]; .id == 1 and .common_name == \"demo.example.com\")'"
ck_check "the quickstart's demo certificate is not" \
        bash -c "busctl get-property org.certkeeper1 /org/certkeeper1/certificate/1 org.certkeeper1.Certificate Status | grep -q active"
ck_done
