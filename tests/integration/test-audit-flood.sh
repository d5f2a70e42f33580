#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 17 item 1: an unprivileged flood of Describe and DownloadPEM (open to everyone,
# each audited) against a small state directory. Reads of one certificate by one caller
# share one audit row with a count, so the flood leaves the audit table small and root
# able to order afterwards.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
mount -t tmpfs -o size=12m,mode=0700 certkeeper-state "$CK_STATE_DIR" ||
        ck_skip_all "cannot mount a tmpfs here (needs root in a private mount namespace)"
DB=$CK_STATE_DIR/certkeeper.db
id ck-user >/dev/null 2>&1 || ck_skip_all "no user ck-user"
ck_start_daemon || ck_bail "certkeeperd did not start"

order=$(ck_request flood.example -- key_algorithm s ec-256)
ck_check "an order completes" test "$(ck_wait_order "$order")" = complete
cert=$(ck_order_cert "$order")

flood() {
        for _ in $(seq 150); do
                ck_as ck-user busctl --system call org.certkeeper1 "$cert" org.certkeeper1.Certificate Describe >/dev/null || return 1
                ck_as ck-user busctl --system call org.certkeeper1 "$cert" org.certkeeper1.Certificate DownloadPEM 'a{sv}' 0 >/dev/null || return 1
        done
}
pids=()
for _ in 1 2 3 4; do flood & pids+=($!); done
ok=0
for p in "${pids[@]}"; do wait "$p" || ok=1; done
ck_check "1200 reads by an unprivileged caller are answered" test "$ok" = 0

ckuser=$(id -u ck-user)
ck_check "they share two audit rows (one per event)" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE access = 1 AND uid = $ckuser")" = 2
ck_check "whose counts add up to every read" \
        test "$(sqlite3 "$DB" "SELECT sum(count) FROM audit WHERE access = 1 AND uid = $ckuser")" = 1200
ck_check "ListAuditEvents shows the count" \
        bash -c "ck_busctl() { busctl --system --json=short call org.certkeeper1 \"\$@\"; }; ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListAuditEvents 'a{sv}' 1 event s certificate.view.accessed | jq -e '[.data[0][] | select(.[2] == $ckuser)][0][3].count == \"600\"'"
ck_check "the daemon logged no store failure" bash -c "! grep -q 'SQL failed' '$CK_DAEMON_LOG'"

order2=$(ck_request after.flood.example -- key_algorithm s ec-256)
ck_check "root still orders after the flood" test "$(ck_wait_order "$order2")" = complete

ck_stop_daemon
ck_done
