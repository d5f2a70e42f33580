#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# 200 requests from 8 concurrent clients all complete with distinct serials; a
# kill -9 in the middle of another burst, then a restart, loses no accepted
# order and issues none twice.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"
DB=$CK_STATE_DIR/certkeeper.db
BURST=(/usr/bin/python3 "$CK_HELPERS/burst.py")

ck_check "8 clients x 25 requests are all acknowledged" "${BURST[@]}" "$CK_RUN/burst1" 8 25
ck_check "200 order paths came back, all different" \
        test "$(sort -u "$CK_RUN/burst1" | wc -l)" = 200
all_done() {
        [ "$(sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status IN ('pending','processing')")" = 0 ]
}
ck_wait_for "all 200 orders finish" 120 all_done
ck_check "all 200 are complete" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status = 'complete'")" = 200
ck_check "200 certificates, 200 distinct serials" \
        test "$(sqlite3 "$DB" "SELECT count(*) || '/' || count(DISTINCT serial) FROM certificates")" = 200/200
ck_check "each order has its own certificate" \
        test "$(sqlite3 "$DB" "SELECT count(DISTINCT order_id) FROM certificates")" = 200
ck_ca_pem >"$CK_RUN/ca.pem"
bad=0
for p in $(shuf -n 20 --random-source=<(yes) "$CK_RUN/burst1"); do
        ck_cert_pem "$(ck_order_cert "$p")" >"$CK_RUN/one.pem"
        openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/one.pem" >/dev/null 2>&1 || bad=$((bad + 1))
done
ck_check "a sample of 20 verifies with openssl" test "$bad" = 0

# A crash in the middle of a burst.
"${BURST[@]}" "$CK_RUN/burst2" 8 10 rsa-2048 2>/dev/null &
burst_pid=$!
accepted_some() { [ "$(wc -l <"$CK_RUN/burst2" 2>/dev/null || echo 0)" -ge 20 ]; }
ck_poll 60 accepted_some
ck_kill9_daemon
wait $burst_pid
accepted=$(sort -u "$CK_RUN/burst2" | wc -l)
ck_diag "acknowledged before the crash: $accepted"
ck_check "some orders were acknowledged before the crash" test "$accepted" -ge 20
ck_check "the store is intact after kill -9" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
ck_start_daemon || ck_bail "certkeeperd did not restart"
ck_wait_for "every open order resumes and finishes" 300 all_done
missing=0
while read -r p; do
        [ "$(ck_order_status "$p")" = complete ] || missing=$((missing + 1))
done < <(sort -u "$CK_RUN/burst2")
ck_check "every acknowledged order exists and is complete" test "$missing" = 0
ck_check "no order was issued twice" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM (SELECT order_id FROM certificates GROUP BY order_id HAVING count(*) > 1)")" = 0
ck_check "every complete order has exactly one certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM orders o WHERE status = 'complete' AND (SELECT count(*) FROM certificates c WHERE c.order_id = o.id) != 1")" = 0
ck_check "every private key belongs to a certificate (or the CA)" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM keys k WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.key_id = k.id) AND NOT EXISTS (SELECT 1 FROM ca WHERE ca.key_id = k.id)")" = 0
ck_check "one issued audit record per certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE event = 'certificate.issued'")" = "$(sqlite3 "$DB" "SELECT count(*) FROM certificates")"
ck_check "the store is intact" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
ck_done
