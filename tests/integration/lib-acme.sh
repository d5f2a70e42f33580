# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for the ACME scenarios (pebble from the harness). Source after
# lib.sh and lib-orders.sh.

# ck_acme_config [EXTRA] — a config with [ACME] pointing at the harness's pebble.
ck_acme_config() {
        ck_write_config "[ACME]\nDirectoryURL=$CK_PEBBLE_DIR_URL\nCABundle=$CK_PEBBLE_CA\nEmail=admin@example.test\nHTTPChallengePort=5002${1:+\n$1}"
}

# ck_oprop ORDER PROP — an Order property, strings unquoted.
ck_oprop() {
        ck_prop "$1" org.certkeeper1.Order "$2" | jq -r .
}

# ck_cprop CERT PROP — a Certificate property, strings unquoted.
ck_cprop() {
        ck_prop "$1" org.certkeeper1.Certificate "$2" | jq -r .
}

# ck_check_acme_order ORDER CN SANS LABEL — the order completed through the ACME
# provider, and its certificate verifies against pebble's current issuing root.
# Leaves the certificate path in CK_ACME_CERT, its PEM in $CK_RUN/LABEL.pem.
CK_ACME_CERT=
ck_check_acme_order() {
        local order=$1 cn=$2 sans=$3 label=$4 status
        status=$(ck_wait_order "$order" 120)
        if ! ck_check "$label: the order completes" test "$status" = complete; then
                ck_diag "Error: $(ck_oprop "$order" Error)"
                return 1
        fi
        ck_check "$label: OrderType acme, Provider acme" \
                test "$(ck_oprop "$order" OrderType)/$(ck_oprop "$order" Provider)" = acme/acme
        CK_ACME_CERT=$(ck_order_cert "$order")
        local pem=$CK_RUN/$label.pem
        ck_cert_pem "$CK_ACME_CERT" >"$pem"
        ck_cert_pem "$CK_ACME_CERT" chain >"$pem.chain"
        # pebble: root -> intermediate -> leaf. The chain must carry the intermediate.
        ck_check "$label: the leaf with its chain verifies against pebble's issuing root (/roots/0)" \
                openssl verify -CAfile "$CK_PEBBLE_ROOT" -untrusted "$pem.chain" "$pem"
        ck_check "$label: the leaf alone does not verify against the root (the chain is what links them)" \
                bash -c "! openssl verify -CAfile '$CK_PEBBLE_ROOT' '$pem' >/dev/null 2>&1"
        ck_check "$label: Provider acme, Source managed, Status active" \
                test "$(ck_cprop "$CK_ACME_CERT" Provider)/$(ck_cprop "$CK_ACME_CERT" Source)/$(ck_cprop "$CK_ACME_CERT" Status)" = acme/managed/active
        local got
        got=$(openssl x509 -in "$pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ' | tr ',' '\n' | sed 's/^DNS://' | sort | paste -sd, -)
        ck_check "$label: the certificate names exactly $sans (got $got)" test "$got" = "$sans"
        ck_check "$label: Issuer is pebble's intermediate" \
                bash -c "ck=\$(busctl --system --json=short get-property org.certkeeper1 '$CK_ACME_CERT' org.certkeeper1.Certificate Issuer | jq -r .data); [[ \$ck == *Pebble\ Intermediate* ]]"
        local serial
        serial=$(openssl x509 -in "$pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')
        ck_check "$label: SerialNumber equals openssl's" test "$(ck_cprop "$CK_ACME_CERT" SerialNumber)" = "$serial"
}

# ck_pebble_cert_status SERIAL_HEX — pebble's management API view of a certificate ("Valid", "Revoked").
ck_pebble_cert_status() {
        curl -sf --max-time 5 --cacert "$CK_PEBBLE_CA" "$CK_PEBBLE_MANAGEMENT_URL/cert-status-by-serial/$1" |
                jq -r .Status
}

# ck_list_certificates_ms — how long one ListCertificates takes, in ms (fails if it fails).
ck_list_certificates_ms() {
        local t0 t1
        t0=$(ck_now_us)
        ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 0 >/dev/null || return 1
        t1=$(ck_now_us)
        echo $(( (t1 - t0) / 1000 ))
}

# ck_revoke_cert CERT REASON — RequestRevocation and Revoke on one bus
# connection (the code is bound to the caller that asked for it).
ck_revoke_cert() {
        /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, dbus
bus = dbus.SystemBus()
cert = dbus.Interface(bus.get_object('org.certkeeper1', sys.argv[1], introspect=False), 'org.certkeeper1.Certificate')
code = cert.RequestRevocation()
cert.Revoke(code, sys.argv[2])
PY
}
