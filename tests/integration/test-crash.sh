#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crash safety: a seeded mixed workload (orders of every key type, CSR orders,
# revocations, PFX exports) while certkeeperd is killed with SIGKILL at random
# moments, CK_CRASH_KILLS times (20), restarted each time. Then the invariants:
# every acknowledged order exists exactly once and ends complete or failed,
# every certificate verifies against the CA, acknowledged revocations
# persisted, the store passes PRAGMA integrity_check, and the audit trail
# matches the state (one submitted per order, one issued per certificate, one
# revoke.success per revoked certificate).
#
# Replay a run with CK_SEED=<the seed printed in the TAP output>.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

CK_CERT_PREFIX=/org/certkeeper1/certificate
SEED=${CK_SEED:-$(( $(date +%s%N) % 1000000 ))}
if [ "${CK_LONG:-0}" = 1 ]; then KILLS=${CK_CRASH_KILLS:-100}; else KILLS=${CK_CRASH_KILLS:-20}; fi
ck_diag "CK_SEED=$SEED (replay with CK_SEED=$SEED), $KILLS kills"
RANDOM=$SEED

ck_write_config
DB=$CK_STATE_DIR/certkeeper.db
OUT=$CK_RUN/load
mkdir -p "$OUT" "$CK_RUN/csr"
STOP=$CK_RUN/stop-load

# CSRs for SubmitCSR, their keys stay here.
for i in 1 2 3 4; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=csr$i.crash.example" \
                -addext "subjectAltName=DNS:csr$i.crash.example" \
                -keyout "$CK_RUN/csr/$i.key" -out "$CK_RUN/csr/$i.csr" 2>/dev/null ||
                ck_bail "openssl could not make a CSR"
done

ck_start_daemon || ck_bail "certkeeperd did not start"
# The workload's modules first: without them crashload.py dies at import and
# an empty problems file below would prove nothing.
ck_check "the workload's Python modules are installed (python3-cryptography, python3-dbus)" \
        /usr/bin/python3 -c 'import cryptography.x509, dbus'
/usr/bin/python3 "$CK_HELPERS/crashload.py" "$OUT" "$STOP" "$SEED" 3 "$CK_RUN/csr" \
        >"$CK_RUN/load.log" 2>&1 &
load_pid=$!

# Kill at a random moment in 0.3–1.8 s of uptime (the seed picks it), restart
# at once. The pause is the attack's timing, not a wait for an event.
crashes=0
restarts_ok=1
for ((k = 1; k <= KILLS; k++)); do
        delay_ms=$((300 + RANDOM % 1500))
        sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
        if ck_svc_gone "$CK_DAEMON_PID"; then
                ck_diag "certkeeperd died on its own before kill $k"
                ck_diag_file "$CK_DAEMON_LOG"
                restarts_ok=0
                break
        fi
        ck_kill9_daemon
        crashes=$((crashes + 1))
        if ! ck_start_daemon; then
                restarts_ok=0
                break
        fi
done
touch "$STOP"
wait "$load_pid"
ck_diag_file "$CK_RUN/load.log"
ck_check "certkeeperd was killed $KILLS times and restarted every time" test "$restarts_ok$crashes" = "1$KILLS"
[ "$restarts_ok" = 1 ] || ck_bail "certkeeperd did not come back (seed $SEED)"

acked=$(sort -u "$OUT/orders" | wc -l)
ck_diag "acknowledged orders: $acked, revocations: $(sort -u "$OUT/revoked" | wc -l), PFX exports: $(wc -l <"$OUT/pfx")"
ck_check "the workload got orders acknowledged" test "$acked" -ge 20
ck_check "no problem other than the crashes (see $OUT/problems), in a workload that ran" \
        bash -c "test \"\$0\" -ge 20 && test ! -s \"\$1\"" "$acked" "$OUT/problems"
[ -s "$OUT/problems" ] && ck_diag_file "$OUT/problems"

open_orders() { sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status IN ('pending','processing')"; }
all_done() { [ "$(open_orders)" = 0 ]; }
ck_wait_for "every open order finishes after the last restart" 120 all_done

ck_check "the store is intact (PRAGMA integrity_check)" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
ck_check "no foreign key violations" test -z "$(sqlite3 "$DB" 'PRAGMA foreign_key_check')"

# Every acknowledged order exists exactly once and ended complete or failed.
sort -u "$OUT/orders" | sed 's|.*/||' >"$CK_RUN/acked-ids"
sqlite3 "$DB" "SELECT id FROM orders WHERE status IN ('complete','failed')" | sort >"$CK_RUN/done-ids"
missing=$(comm -23 <(sort "$CK_RUN/acked-ids") "$CK_RUN/done-ids" | wc -l)
ck_check "every acknowledged order exists and is complete or failed" test "$missing" = 0
ck_check "every order path was handed out once" test "$(wc -l <"$OUT/orders")" = "$acked"
failed=$(sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status = 'failed'")
ck_diag "orders in the store: $(sqlite3 "$DB" 'SELECT count(*) FROM orders'), failed: $failed"
[ "$failed" != 0 ] && ck_diag "$(sqlite3 "$DB" "SELECT id, error FROM orders WHERE status = 'failed' LIMIT 5")"
ck_check "no order failed (the Local CA cannot be unreachable)" test "$failed" = 0
ck_check "every complete order has exactly one certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM orders o WHERE status = 'complete' AND
                (SELECT count(*) FROM certificates c WHERE c.order_id = o.id) != 1")" = 0
ck_check "no certificate without a complete order" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM certificates c WHERE source = 'managed' AND NOT EXISTS
                (SELECT 1 FROM orders o WHERE o.id = c.order_id AND o.status = 'complete' AND o.certificate_id = c.id)")" = 0
ck_check "every private key belongs to a certificate (or the CA)" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM keys k WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.key_id = k.id)
                AND NOT EXISTS (SELECT 1 FROM ca WHERE ca.key_id = k.id)")" = 0

# Every certificate verifies against its issuer, through the bus (DownloadPEM).
ck_ca_pem >"$CK_RUN/ca.pem"
bad=0 n=0
for id in $(sqlite3 "$DB" "SELECT id FROM certificates WHERE source = 'managed'"); do
        n=$((n + 1))
        ck_cert_pem "$CK_CERT_PREFIX/$id" >"$CK_RUN/one.pem" 2>/dev/null
        # -partial_chain is not used: the chain must end at the CA; revoked ones still verify (no CRL check).
        if ! openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/one.pem" >/dev/null 2>&1; then
                bad=$((bad + 1))
                ck_diag "certificate $id does not verify"
        fi
done
ck_diag "certificates checked: $n"
ck_check "every stored certificate verifies against the CA" test "$bad" = 0

# Revocations persist.
verify_crl() {
        local p
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCRL | jq -r '.data[0]' >"$CK_RUN/crl.pem" || return 1
        for p in $(sort -u "$OUT/revoked"); do
                ck_cert_pem "$p" >"$CK_RUN/rev.pem" || return 1
                openssl verify -crl_check -CRLfile "$CK_RUN/crl.pem" -CAfile "$CK_RUN/ca.pem" "$CK_RUN/rev.pem" \
                        2>&1 | grep -q 'certificate revoked' || { echo "$p is not on the CRL"; return 1; }
        done
}
lost=0
for p in $(sort -u "$OUT/revoked"); do
        [ "$(sqlite3 "$DB" "SELECT revoked_at != 0 FROM certificates WHERE id = ${p##*/}")" = 1 ] || lost=$((lost + 1))
done
ck_check "every acknowledged revocation persisted" test "$lost" = 0
ck_check "acknowledged revocations are on the CRL" verify_crl
ck_check "one certificate.revoke.success per revoked certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE event = 'certificate.revoke.success'")" = \
             "$(sqlite3 "$DB" "SELECT count(*) FROM certificates WHERE revoked_at != 0")"
ck_check "one certificate.issued per certificate" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE event = 'certificate.issued'")" = \
             "$(sqlite3 "$DB" "SELECT count(*) FROM certificates WHERE source = 'managed'")"
ck_check "one submitted record per order" \
        test "$(sqlite3 "$DB" "SELECT count(*) FROM audit WHERE event IN
                ('certificate.request_automated.submitted','certificate.request_csr.submitted')")" = \
             "$(sqlite3 "$DB" "SELECT count(*) FROM orders")"
ck_check "the daemon still answers after all that" ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListOrders 'a{sv}' 0
ck_stop_daemon
ck_done
