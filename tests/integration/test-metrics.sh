#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Metrics (DESIGN.md "Metrics"): the daemon's certkeeper.prom passes the real
# promtool; the real prometheus-node-exporter serves it through its textfile
# collector (scraped with curl) without node_textfile_scrape_error; the values
# match the daemon's own D-Bus answers; a new order and a revocation show in the
# next scrapes; a discovered certificate whose CN holds quotes, backslashes and a
# newline is escaped; a deployment's state, next renewal and failed attempts match
# its D-Bus object; the file is 0644 and goes away when the daemon stops.

source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || ck_skip_all "promtool is not installed (package prometheus)"
command -v prometheus-node-exporter >/dev/null ||
        ck_skip_all "prometheus-node-exporter is not installed"

T=$CK_RUN/textfile
DISC=$CK_RUN/disc
PROM=$T/certkeeper.prom
PORT=19100
mkdir -p "$T" "$DISC"
ck_write_config "[Metrics]\nTextfileDirectory=$T\nIntervalSec=60\n[Discovery]\nPaths=$DISC\n"

ck_start_daemon || ck_bail "certkeeperd did not start"

request() { # request CN → the certificate object of a completed ec-256 order
        local o
        o=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager RequestCertificate 'sasa{sv}' "$1" 0 1 \
                key_algorithm s ec-256 | jq -r '.data[0]') || return 1
        ck_poll 30 order_complete "$o" || return 1
        ck_get_property "$o" org.certkeeper1.Order Certificate | jq -r '.data'
}
order_complete() { [ "$(ck_get_property "$1" org.certkeeper1.Order Status | jq -r .data)" = complete ]; }

C1=$(request one.metrics.test) && C2=$(request two.metrics.test)
[ -n "$C1" ] && [ -n "$C2" ] && ck_ok "two certificates issued" || ck_not_ok "two certificates issued"
ID1=$(ck_get_property "$C1" org.certkeeper1.Certificate Id | jq -r .data)

ck_wait_for "certkeeper.prom appears" 20 test -s "$PROM"
ck_check "certkeeper.prom is mode 0644 (node_exporter reads it as its own user)" \
        test "$(stat -c %a "$PROM")" = 644
ck_check "promtool check metrics accepts the file" sh -c "promtool check metrics < '$PROM'"
ck_check "no temporary file is left beside it" test "$(find "$T" -name '.*certkeeper.prom.*' | wc -l)" = 0

prometheus-node-exporter --collector.disable-defaults --collector.textfile \
        --collector.textfile.directory="$T" --web.listen-address="127.0.0.1:$PORT" \
        >"$CK_RUN/node-exporter.log" 2>&1 &
NE_PID=$!
trap 'kill "$NE_PID" 2>/dev/null' EXIT
scrape() { curl -sf "http://127.0.0.1:$PORT/metrics" >"$CK_RUN/scrape.txt"; }
ck_wait_for "node_exporter answers" 20 scrape

# node_exporter sorts the labels by name: match each label on its own.
# lines METRIC LABEL=\"V\"... → the samples of METRIC with all those labels
lines() {
        local m=$1 l out; shift
        out=$(grep -F "$m{" "$CK_RUN/scrape.txt") || return 1
        for l in "$@"; do out=$(grep -F -- "$l" <<<"$out") || return 1; done
        echo "$out"
}
# value METRIC LABEL... → the value of the first such sample
value() { lines "$@" | head -1 | awk '{ print $NF }'; }
# has [VALUE=] METRIC LABEL... — a fresh scrape has such a sample (with that value)
has() {
        local want=
        case $1 in *=*) want=${1#*=}; shift ;; esac
        scrape || return 1
        local v
        v=$(value "$@") || return 1
        [ -n "$v" ] && { [ -z "$want" ] || [ "$v" = "$want" ]; }
}
# The file written at start-up is rewritten a second after the orders.
ck_wait_for "the two certificates show in a scrape" 10 has =2 certkeeper_certificates 'source="managed"' 'status="active"'
ck_check "node_textfile_scrape_error is 0" test "$(grep '^node_textfile_scrape_error' "$CK_RUN/scrape.txt" | awk '{print $2}')" = 0
for m in certkeeper_certificate_not_after_seconds certkeeper_certificate_not_before_seconds \
        certkeeper_certificates certkeeper_orders_total certkeeper_alerts_open certkeeper_ca_not_after_seconds \
        certkeeper_crl_next_update_seconds certkeeper_up certkeeper_info certkeeper_metrics_written_seconds; do
        ck_check "node_exporter serves $m" grep -q "^$m" "$CK_RUN/scrape.txt"
done

# Not-after of every certificate, as ListCertificates says (µs → s).
list=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListCertificates 'a{sv}' 0)
bad=0
while read -r obj na; do
        id=$(ck_get_property "$obj" org.certkeeper1.Certificate Id | jq -r .data)
        got=$(value certkeeper_certificate_not_after_seconds "id=\"$id\"")
        # node_exporter prints 1.804074209e+09: compare as numbers.
        awk -v a="$got" -v b="$((na / 1000000))" 'BEGIN { exit !(a != "" && a + 0 == b + 0) }' || { ck_diag "id $id: scraped '$got', D-Bus $((na / 1000000))"; bad=1; }
done < <(jq -r '.data[0][] | "\(.[0]) \(.[5])"' <<<"$list")
ck_check "not-after of each certificate matches ListCertificates" test "$bad" = 0
n_active=$(jq '[.data[0][] | select(.[2] == "active" and .[3] == "managed")] | length' <<<"$list")
ck_check "certkeeper_certificates{managed,active} matches ListCertificates ($n_active)" \
        test "$(value certkeeper_certificates 'source="managed"' 'status="active"')" = "$n_active"
ck_check "certkeeper_orders_total{local-pki,complete} counts the two orders" \
        test "$(value certkeeper_orders_total 'order_type="local-pki"' 'status="complete"')" = 2
n_alerts=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 | jq '.data[0] | length')
sum_alerts=$(grep '^certkeeper_alerts_open{' "$CK_RUN/scrape.txt" | awk '{ s += $NF } END { print s + 0 }')
ck_check "certkeeper_alerts_open sums to ListAlerts ($n_alerts)" test "$sum_alerts" = "$n_alerts"

# A new order shows in a later scrape (written within a second or so of the change).
C3=$(request three.metrics.test)
ID3=$(ck_get_property "$C3" org.certkeeper1.Certificate Id | jq -r .data)
ck_wait_for "a new certificate shows in the next scrapes" 10 has certkeeper_certificate_not_after_seconds "id=\"$ID3\""
ck_wait_for "certkeeper_orders_total counts it" 10 has =3 certkeeper_orders_total 'order_type="local-pki"' 'status="complete"'

# A revocation shows too.
code=$(ck_busctl "$C1" org.certkeeper1.Certificate RequestRevocation | jq -r '.data[0]')
ck_check "Revoke" ck_busctl "$C1" org.certkeeper1.Certificate Revoke ss "$code" superseded
ck_wait_for "the revoked certificate shows status=\"revoked\"" 10 has certkeeper_certificate_not_after_seconds \
        "id=\"$ID1\"" 'common_name="one.metrics.test"' 'status="revoked"'
ck_wait_for "certkeeper_certificates counts it revoked" 10 has =1 certkeeper_certificates 'source="managed"' \
        'status="revoked"'

# A hostile CN on disk: quotes, backslashes, a newline, braces.
/usr/bin/python3 - "$DISC/hostile.pem" <<'EOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'evil"} 1\nbad{x="\\')])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
EOF
ck_check "Rescan" ck_busctl /org/certkeeper1 org.certkeeper1.Manager Rescan
hostile_known() { ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$HFP" >/dev/null 2>&1; }
HFP=$(openssl x509 -in "$DISC/hostile.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
ck_wait_for "the hostile certificate is discovered" 10 hostile_known
HOBJ=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$HFP" | jq -r '.data[0]')
# The label is the CommonName D-Bus reports, escaped as the exposition format demands.
HLABEL=$(ck_get_property "$HOBJ" org.certkeeper1.Certificate CommonName | jq -r .data |
        /usr/bin/python3 -c 'import sys; v = sys.stdin.read()[:-1]; print("common_name=\"" + v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"")')
ck_diag "expected label: $HLABEL"
ck_wait_for "the hostile CN is escaped in the scrape" 10 has certkeeper_certificate_not_after_seconds "$HLABEL" \
        "fingerprint=\"$HFP\"" 'source="discovered"'
ck_check "the file holds it escaped too" grep -qF "$HLABEL,source=\"discovered\"" "$PROM"
ck_check "node_textfile_scrape_error stays 0" grep -q '^node_textfile_scrape_error 0' "$CK_RUN/scrape.txt"
ck_check "promtool check metrics still accepts the file" sh -c "promtool check metrics < '$PROM'"
ck_check "certkeeper_certificate_files counts its file" \
        grep -q '^certkeeper_certificate_files{id="[0-9]*"} 1' "$PROM"

# A deployment: its state, next renewal and failed attempts, as its D-Bus object says.
mkdir -p "$CK_RUN/deploy"
DEP=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager CreateDeployment 'sa{sv}' web 3 \
        common_name s web.metrics.test key_algorithm s ec-256 directory s "$CK_RUN/deploy/web" | jq -r '.data[0]')
dep_active() { [ "$(ck_get_property "$DEP" org.certkeeper1.Deployment State | jq -r .data)" = active ]; }
ck_wait_for "the deployment becomes active" 30 dep_active
ck_wait_for "certkeeper_deployment_state{name=web,state=active} is 1" 10 has =1 certkeeper_deployment_state \
        'name="web"' 'state="active"'
ck_check "certkeeper_deployment_state{name=web,state=retrying} is 0" \
        test "$(value certkeeper_deployment_state 'name="web"' 'state="retrying"')" = 0
next=$(ck_get_property "$DEP" org.certkeeper1.Deployment NextRenewalAt | jq -r .data)
got=$(value certkeeper_deployment_next_renewal_seconds 'name="web"')
ck_check "certkeeper_deployment_next_renewal_seconds matches NextRenewalAt" \
        awk -v a="$got" -v b="$((next / 1000000))" 'BEGIN { exit !(a != "" && a + 0 == b + 0) }'
ck_check "certkeeper_deployment_failed_attempts is 0" \
        test "$(value certkeeper_deployment_failed_attempts 'name="web"')" = 0

ck_stop_daemon
ck_check "the file is removed when the daemon stops (certkeeper_up disappears)" test ! -e "$PROM"
kill "$NE_PID" 2>/dev/null
wait "$NE_PID" 2>/dev/null
ck_done
