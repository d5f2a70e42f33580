#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Expiry alerts: a discovered and a managed certificate, 40 days before expiry
# in real time; the daemon is restarted with its clock moved forward
# (CERTKEEPER_TEST_NOW_USEC, a test-only knob) to each threshold. One alert per
# certificate and threshold, only the most specific one crossed, audited,
# announced with AlertRaised, never again after acknowledgement; the timer
# fires at the next crossing without a restart.

source "$(dirname "$0")/lib.sh"

D=$CK_RUN/disc
F=$CK_RUN/fixtures
MON=$CK_RUN/monitor.json
DAY=86400000000
mkdir -p "$D" "$F"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=disc.test" -days 40 \
        -addext basicConstraints=critical,CA:FALSE -keyout "$F/disc.key" -out "$D/disc.pem" 2>/dev/null ||
        ck_bail "openssl cannot make the fixture"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=revoked.test" -days 40 \
        -addext basicConstraints=critical,CA:FALSE -keyout "$F/rev.key" -out "$D/rev.pem" 2>/dev/null
rev_fp=$(openssl x509 -in "$D/rev.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gone.test" -days 40 \
        -addext basicConstraints=critical,CA:FALSE -keyout "$F/gone.key" -out "$D/gone.pem" 2>/dev/null
gone_fp=$(openssl x509 -in "$D/gone.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
fp=$(openssl x509 -in "$D/disc.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')

ck_write_config "[Discovery]\nPaths=$D\nRescanIntervalSec=0\n[Alerts]\nExpiryThresholdsDays=30 14 7 1"

# start_at USEC — (re)start the daemon with its clock at USEC ("" = real time).
start_at() {
        [ -n "$CK_DAEMON_PID" ] && ck_stop_daemon
        if [ -n "$1" ]; then
                CERTKEEPER_TEST_NOW_USEC=$1 ck_start_daemon --debug
        else
                ck_start_daemon --debug
        fi || ck_bail "certkeeperd did not start"
        # The start-up scan has run once Rescan() answers; the expiry check after it too.
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager Rescan >/dev/null || ck_bail "Rescan failed"
}
alerts() { # alerts [true] → JSON lines of ListAlerts rows [id, kind, message, subject, created, acked]
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 1 include_acknowledged b "${1:-true}" |
                jq -c '.data[0][]'
}
# thresholds_of OBJ → the warnings raised for OBJ, in order: "30 7 1 expired"
thresholds_of() {
        alerts | jq -r --arg o "$1" 'select(.[1] == "expiring" and .[3] == $o) | .[2]' |
                sed -nE 's/.*\(([0-9]+)-day warning\)$/\1/p; s/.* expired on .*/expired/p' | paste -sd' '
}
count_signals() {
        jq -c 'select(.type == "signal" and .member == "AlertRaised")' "$MON" 2>/dev/null | wc -l
}
more_signals_than() { [ "$(count_signals)" -gt "$1" ]; }

start_at ""
busctl --system monitor org.certkeeper1 --json=short >"$MON" 2>"$MON.err" &
mon_pid=$!
monitor_ready() {
        ck_get_property /org/certkeeper1 org.certkeeper1.Manager Version >/dev/null && grep -q '"member":"Get"' "$MON"
}
ck_poll 10 monitor_ready || ck_bail "busctl monitor did not start"

disc=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$fp" | jq -r '.data[0]')
ck_check "the fixture is discovered" test -n "$disc"
not_after=$(ck_get_property "$disc" org.certkeeper1.Certificate NotAfter | jq -r .data)

order=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager RequestCertificate sasa{sv} managed.test 1 managed.test \
        1 validity_days u 40 | jq -r '.data[0]')
order_done() { [ "$(ck_get_property "$order" org.certkeeper1.Order Status | jq -r .data)" = complete ]; }
ck_wait_for "a managed certificate valid for 40 days is issued" 30 order_done
managed=$(ck_get_property "$order" org.certkeeper1.Order Certificate | jq -r .data)
m_not_after=$(ck_get_property "$managed" org.certkeeper1.Certificate NotAfter | jq -r .data)
ck_check "40 days before expiry: no alert" test -z "$(alerts)"
gone=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$gone_fp" | jq -r '.data[0]')
rm "$D/gone.pem"
ck_check "a discovered certificate whose file is removed" \
        bash -c "busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager Rescan &&
                [ \"\$(busctl --system get-property org.certkeeper1 '$gone' org.certkeeper1.Certificate Present)\" = 'b false' ]"
rev=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$rev_fp" | jq -r '.data[0]')
ck_check "a third certificate is revoked" /usr/bin/python3 - "$rev" <<'PY'
import dbus, sys
bus = dbus.SystemBus()
c = dbus.Interface(bus.get_object("org.certkeeper1", sys.argv[1]), "org.certkeeper1.Certificate")
c.Revoke(c.RequestRevocation(), "superseded")
PY

# 25 days left: the 30-day threshold, for both.
n=$(count_signals)
start_at $((not_after - 25 * DAY))
ck_check "25 days left: the discovered certificate has its 30-day alert" test "$(thresholds_of "$disc")" = 30
ck_check "... the managed one too" test "$(thresholds_of "$managed")" = 30
ck_wait_for "... announced with AlertRaised (twice)" 5 more_signals_than $((n + 1))
ck_check "... and audited as certificate.expiring with id, fingerprint and CN" \
        ck_journal_has CERTKEEPER_EVENT=certificate.expiring CERTKEEPER_CERTIFICATE_ID="${disc##*/}" \
        CERTKEEPER_FINGERPRINT="$fp" CERTKEEPER_COMMON_NAME=disc.test
ck_check "... in the audit trail of the store too" \
        bash -c "busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager \
                ListAuditEvents 'a{sv}' 1 event s certificate.expiring | jq -e '.data[0] | length == 2'"

start_at $((not_after - 25 * DAY))
ck_check "a restart at the same time raises nothing new" test "$(alerts | wc -l)" = 2

for id in $(alerts false | jq -r '.[0]'); do
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager AcknowledgeAlert t "$id" >/dev/null
done
ck_check "acknowledged, no alert is open" test -z "$(alerts false)"
start_at $((not_after - 20 * DAY))
ck_check "after a restart, acknowledged alerts are not raised again" \
        bash -c "[ -z \"\$(busctl --system --json=short call org.certkeeper1 /org/certkeeper1 \
                org.certkeeper1.Manager ListAlerts 'a{sv}' 0 | jq -c '.data[0][]')\" ]"

# The timer: 3 seconds before the 14-day crossing, without a restart.
n=$(count_signals)
start_at $((not_after - 14 * DAY - 3000000))
ck_check "3 s before the 14-day crossing: nothing yet" test "$(thresholds_of "$disc")" = 30
t0=$(ck_now_us)
if ck_poll 15 more_signals_than "$n"; then
        ck_ok "the timer raises the 14-day alert at the crossing ($(( ($(ck_now_us) - t0) / 1000 )) ms later)"
else
        ck_not_ok "the timer raises the 14-day alert at the crossing"
fi
ck_check "... for the discovered certificate" test "$(thresholds_of "$disc")" = "30 14"
ck_check "the daemon does not poll: one check per crossing" \
        test "$(grep -c 'Expiry: next check' "$CK_DAEMON_LOG")" -lt 40

# 5 days left: only the most specific threshold (7), not 14 again.
start_at $((not_after - 5 * DAY))
ck_check "5 days left: the 7-day alert only" test "$(thresholds_of "$disc")" = "30 14 7"
ck_check "... the managed certificate skipped 14 and got 7" \
        bash -c "[[ \"$(thresholds_of "$managed")\" =~ ^30( 14)?\ 7$ ]]"

start_at $((not_after - DAY / 2))
ck_check "12 hours left: the 1-day alert" test "$(thresholds_of "$disc")" = "30 14 7 1"

start_at $((not_after + 3600000000))
ck_check "expired: one last alert" test "$(thresholds_of "$disc")" = "30 14 7 1 expired"
ck_check "... also for the managed certificate" \
        bash -c "[ $m_not_after -gt $((not_after + 3600000000)) ] || [[ \"$(thresholds_of "$managed")\" == *expired ]]"
total=$(alerts | wc -l)
start_at $((not_after + 2 * DAY))
ck_check "later restarts raise nothing more" test "$(alerts | wc -l)" = "$total"
ck_check "the expired certificate's status is expired" \
        test "$(ck_get_property "$disc" org.certkeeper1.Certificate Status | jq -r .data)" = expired

ck_check "a revoked certificate is never warned about" test -z "$(thresholds_of "$rev")"
ck_check "nor a discovered certificate no longer on disk" test -z "$(thresholds_of "$gone")"

kill "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
ck_done
