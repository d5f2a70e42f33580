#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The busctl one-liners of README.md work as written, in order, against a fresh
# daemon: each line is one TAP test.

source "$(dirname "$0")/lib.sh"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"

mkdir -p "$CK_RUN/readme" && cd "$CK_RUN/readme" || ck_bail "no work directory"
awk '/^## busctl examples/ {s = 1} s && /^```sh/ {b = 1; next} b && /^```/ {exit} b' \
        "$CK_SOURCE_ROOT/README.md" >examples.sh
ck_check "README.md has a busctl examples block" test "$(grep -c '^busctl' examples.sh)" -ge 10

# One shell, so that variables set by a line ($code) reach the next ones.
exec 3<examples.sh
while IFS= read -r line <&3; do
        case $line in ''|'#'*) continue ;; esac
        if eval "$line" >"$CK_RUN/readme/out" 2>&1; then
                ck_ok "README: ${line:0:100}"
        else
                ck_not_ok "README: ${line:0:100}"
                ck_diag_file "$CK_RUN/readme/out"
        fi
done
exec 3<&-
ck_check "the certificate the README revoked is revoked" \
        bash -c "busctl get-property org.certkeeper1 /org/certkeeper1/certificate/1 org.certkeeper1.Certificate Status | grep -q revoked"
ck_done
