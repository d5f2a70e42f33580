#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Disk full and read-only storage: the state directory is a small tmpfs (in
# this test's own mount namespace). Filled up, the daemon answers with
# org.certkeeper1.Error.StorageUnavailable saying "full", does not crash,
# stores no half-written certificate, and when space returns it carries on by
# itself: orders accepted before the outage complete. Remounted read-only,
# it refuses to start saying "read-only", and starts once writable again.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
mount -t tmpfs -o size=8m,mode=0700 certkeeper-state "$CK_STATE_DIR" ||
        ck_skip_all "cannot mount a tmpfs here (needs root in a private mount namespace)"
DB=$CK_STATE_DIR/certkeeper.db
CALL=(/usr/bin/python3 "$CK_HELPERS/call.py")
ck_start_daemon || ck_bail "certkeeperd did not start"

order=$(ck_request before.full.example -- key_algorithm s ec-256)
ck_check "an order completes with room to spare" test "$(ck_wait_order "$order")" = complete

# Orders in flight while the disk fills.
acked=()
for i in 1 2 3; do
        acked+=("$(ck_request "inflight$i.full.example" -- key_algorithm s rsa-3072)")
done
dd if=/dev/zero of="$CK_STATE_DIR/fill" bs=64k >/dev/null 2>&1
ck_check "the state directory is full" test "$(df --output=avail -B1 "$CK_STATE_DIR" | tail -1)" -lt 65536

# Keep asking until the store refuses: SQLite may still find a free page or two.
full_error=
for i in $(seq 1 40); do
        line=$("${CALL[@]}" /org/certkeeper1 org.certkeeper1.Manager RequestCertificate \
                "\"full$i.full.example\", [], {\"key_algorithm\": \"ec-256\"}" --signature 'sasa{sv}')
        case $line in
        ok*) acked+=("$(echo "${line#ok }" | jq -r .)") ;;
        error*) full_error=$line; break ;;
        esac
done
ck_diag "while full: $full_error (after $((${#acked[@]} - 3)) more accepted)"
ck_check "a request on a full disk gets StorageUnavailable" \
        grep -q '^error org.certkeeper1.Error.StorageUnavailable: .*full' <<<"$full_error"
ck_check "the daemon is still running" kill -0 "$CK_DAEMON_PID"
ck_check "reading still works while full (ListOrders)" ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListOrders 'a{sv}' 0
ck_check "downloading still works while full" ck_cert_pem "$(ck_order_cert "$order")"

rm -f "$CK_STATE_DIR/fill"
all_done() {
        local p s
        for p in "${acked[@]}"; do
                s=$(ck_order_status "$p") || return 1
                [ "$s" = complete ] || return 1
        done
}
ck_wait_for "orders accepted before and during the outage complete once space returns" 120 all_done
order2=$(ck_request after.full.example -- key_algorithm s ec-256)
ck_check "a new order completes after the disk had room again" test "$(ck_wait_order "$order2")" = complete

# Read-only. Linux refuses "mount -o remount,ro" (EBUSY) while a file on the
# filesystem is open for writing, as the store is, so a running daemon never
# sees its directory turn read-only that way. The directory is made read-only
# under a stopped daemon: certkeeperd must refuse to start with a message that
# says so (a CA whose store cannot record anything must not take orders), and
# start once it is writable again, finishing the order accepted before.
ro_acked=$(ck_request inflight.ro.example -- key_algorithm s rsa-3072)
ck_stop_daemon
mount -o remount,ro "$CK_STATE_DIR" || ck_bail "cannot remount the tmpfs read-only"
if ck_start_daemon >/dev/null; then
        ck_not_ok "certkeeperd refuses to start on a read-only state directory"
        ck_stop_daemon
else
        ck_ok "certkeeperd refuses to start on a read-only state directory"
fi
ck_check "and says that the state directory is read-only" grep -q 'state directory .* is read-only' "$CK_DAEMON_LOG"
ck_check "the store on the read-only directory is intact" \
        test "$(sqlite3 "file:$DB?mode=ro&immutable=1" 'PRAGMA integrity_check')" = ok
mount -o remount,rw "$CK_STATE_DIR" || ck_bail "cannot remount the tmpfs read-write"
ck_start_daemon || ck_bail "certkeeperd did not start on the writable directory"
acked=("$ro_acked")
ck_wait_for "the order accepted before the read-only spell completes once writable" 120 all_done
order3=$(ck_request after.ro.example -- key_algorithm s ec-256)
ck_check "a new order completes after write access returned" test "$(ck_wait_order "$order3")" = complete

# Nothing half-written.
ck_check "the store is intact" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
ck_check "every complete order has exactly one certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM orders o WHERE status = 'complete' AND
                (SELECT count(*) FROM certificates c WHERE c.order_id = o.id) != 1")" = 0
ck_check "no certificate without a complete order" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM certificates c WHERE NOT EXISTS
                (SELECT 1 FROM orders o WHERE o.id = c.order_id AND o.status = 'complete')")" = 0
ck_ca_pem >"$CK_RUN/ca.pem"
bad=0
for id in $(sqlite3 "$DB" "SELECT id FROM certificates"); do
        ck_cert_pem "/org/certkeeper1/certificate/$id" >"$CK_RUN/one.pem"
        openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/one.pem" >/dev/null 2>&1 || bad=$((bad + 1))
done
ck_check "every stored certificate verifies" test "$bad" = 0
ck_check "one certificate.issued per certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE event = 'certificate.issued'")" = \
             "$(sqlite3 "$DB" "SELECT count(*) FROM certificates")"
ck_stop_daemon
ck_done
