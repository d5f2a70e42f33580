#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hostile bus input (hostile.py): every method with wrong types, empty and
# huge strings, 10,000 SANs, deeply nested variants, unknown and mistyped
# options, object paths that do not exist, clients that disconnect mid-call.
# Each attack must get a named error while the daemon keeps serving others.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"

order=$(ck_request ok.hostile.example -- key_algorithm s ec-256)
ck_check "a certificate to attack is issued" test "$(ck_wait_order "$order")" = complete
cert=$(ck_order_cert "$order")

/usr/bin/python3 "$CK_HELPERS/hostile.py" "$cert" "$order" >"$CK_RUN/hostile.out" 2>"$CK_RUN/hostile.err"
rc=$?
while read -r verdict text; do
        case $verdict in
        PASS) ck_ok "$text" ;;
        FAIL) ck_not_ok "$text" ;;
        NOTE) ck_diag "$text" ;;
        esac
done <"$CK_RUN/hostile.out"
[ -s "$CK_RUN/hostile.err" ] && ck_diag_file "$CK_RUN/hostile.err"
ck_check "hostile.py ran to its end" test "$rc" = 0

# Issue 17 item 6: a key given twice (a dict on the wire may repeat keys; dbus-python cannot send it).
ck_check_fails "RequestCertificate with key_algorithm twice is refused" \
        busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager RequestCertificate \
        'sasa{sv}' twice.hostile.example 0 2 key_algorithm s ec-256 key_algorithm s ed25519
ck_check "with an error naming the key" grep -q "option 'key_algorithm' given twice" <<<"$CK_ERR"
ck_check_fails "DownloadPEM with chain twice is refused" \
        busctl --system call org.certkeeper1 "$cert" org.certkeeper1.Certificate DownloadPEM 'a{sv}' 2 \
        chain b true chain b false
ck_check "with an error naming the option" grep -q "option 'chain' given twice" <<<"$CK_ERR"
ck_check "the daemon never died" kill -0 "$CK_DAEMON_PID"
ck_check "the order from before the attacks is still complete" test "$(ck_order_status "$order")" = complete
open_orders() { sqlite3 "$CK_STATE_DIR/certkeeper.db" "SELECT count(*) FROM orders WHERE status IN ('pending','processing')"; }
all_done() { [ "$(open_orders)" = 0 ]; }
ck_wait_for "orders of clients that went away still finish" 120 all_done
ck_check "no order failed" \
        test "$(sqlite3 "$CK_STATE_DIR/certkeeper.db" "SELECT count(*) FROM orders WHERE status = 'failed'")" = 0
ck_check "the store is intact" test "$(sqlite3 "$CK_STATE_DIR/certkeeper.db" 'PRAGMA integrity_check')" = ok
ck_stop_daemon
ck_done
