#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ACME provider over the bus, against pebble (every authorization valid at
# once; real http-01 validation is test-acme-http01.sh, nonce rejection
# test-acme-nonce.sh): automated and CSR orders verify against pebble's root, a
# refused identifier and an unreachable or silent CA fail with a readable Error,
# revocation reaches pebble, the bus answers while ACME work runs, and
# certkeeperctl request --provider acme works end to end.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-acme.sh"

# Small retry settings so that the unreachable CA below fails within seconds.
ck_write_config
{
        echo "[Daemon]"
        echo "StateDirectory=$CK_STATE_DIR"
        echo "SpoolDirectory=$CK_SPOOL_DIR"
        echo "ProviderRetrySec=1"
        echo "ProviderMaxAttempts=4"
        echo "[ACME]"
        echo "DirectoryURL=$CK_PEBBLE_DIR_URL"
        echo "CABundle=$CK_PEBBLE_CA"
        echo "Email=admin@example.test"
        echo "HTTPChallengePort=5002"
} >"$CK_CONF"
ck_start_daemon || ck_bail "certkeeperd did not start"

# --- An automated order.
t0=$(ck_now_us)
order=$(ck_request www.example.test api.example.test -- provider s acme key_algorithm s ec-256)
ck_check_acme_order "$order" www.example.test api.example.test,www.example.test automated
ck_diag "automated ACME order (first: account registration included): $(( ($(ck_now_us) - t0) / 1000 )) ms"
auto_cert=$CK_ACME_CERT
ck_check "automated: HasPrivateKey is true and the key matches the certificate" bash -c "
        [ \"\$(busctl --system --json=short get-property org.certkeeper1 '$auto_cert' org.certkeeper1.Certificate HasPrivateKey | jq .data)\" = true ]"
ck_check "automated: Kind automated, Error empty" \
        test "$(ck_oprop "$order" Kind)/$(ck_oprop "$order" Error)" = automated/
ck_check "the account key is kept sealed in the state directory" \
        bash -c "[ -s '$CK_STATE_DIR/acme/account.key' ] && ! grep -q 'PRIVATE KEY' '$CK_STATE_DIR/acme/account.key'"

# --- An RSA key through ACME (pebble signs it; finalize carries our CSR).
t0=$(ck_now_us)
order=$(ck_request rsa.example.test -- provider s acme key_algorithm s rsa-2048)
ck_check_acme_order "$order" rsa.example.test rsa.example.test rsa
ck_diag "second ACME order (account known): $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "rsa: Algorithm rsa-2048" test "$(ck_cprop "$CK_ACME_CERT" Algorithm)" = rsa-2048

# --- A CSR order: the caller's key, the CSR's names.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" \
        -subj "/CN=csr.example.test" -addext "subjectAltName=DNS:csr.example.test,DNS:alt.csr.example.test" \
        -out "$CK_RUN/req.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/req.csr" provider s acme)
ck_check_acme_order "$order" csr.example.test alt.csr.example.test,csr.example.test csr
csr_cert=$CK_ACME_CERT
ck_check "csr: Kind csr" test "$(ck_oprop "$order" Kind)" = csr
ck_check "csr: the certificate carries the CSR's public key" \
        test "$(openssl x509 -in "$CK_RUN/csr.pem" -noout -pubkey)" = "$(openssl pkey -in "$CK_RUN/csr.key" -pubout)"
ck_check "csr: HasPrivateKey is false" test "$(ck_cprop "$csr_cert" HasPrivateKey)" = false

# --- An identifier pebble refuses (its domainBlocklist, set by the harness).
order=$(ck_request blocked.example.test -- provider s acme)
ck_check "refused identifier: the order fails" test "$(ck_wait_order "$order" 60)" = failed
err=$(ck_oprop "$order" Error)
ck_check "refused identifier: Error carries the ACME problem type ($err)" \
        bash -c "[[ '$err' == *urn:ietf:params:acme:error:rejectedIdentifier* ]]"
ck_check "refused identifier: Error carries pebble's detail" \
        bash -c "[[ '$err' == *blocked.example.test* ]]"
ck_check "refused identifier: an order_failed alert names the order" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
        jq -e --arg o '$order' '[.data[0][] | select(.[1] == \"order_failed\" and .[3] == \$o)] | length == 1'"
ck_check "refused identifier: no certificate was stored" test "$(ck_order_cert "$order")" = /

# --- Revocation propagated to pebble.
serial=$(ck_cprop "$auto_cert" SerialNumber)
ck_check "before revocation pebble says Valid" test "$(ck_pebble_cert_status "$serial")" = Valid
ck_check "RequestRevocation + Revoke(keyCompromise) on the ACME certificate" \
        ck_revoke_cert "$auto_cert" keyCompromise
ck_check "Status revoked at once" test "$(ck_cprop "$auto_cert" Status)" = revoked
propagated() { [ "$(ck_cprop "$auto_cert" RevocationPropagation)" = "propagated to acme" ]; }
ck_wait_for "RevocationPropagation says 'propagated to acme'" 30 propagated ||
        ck_diag "RevocationPropagation: $(ck_cprop "$auto_cert" RevocationPropagation)"
pebble_revoked() { [ "$(ck_pebble_cert_status "$serial")" = Revoked ]; }
ck_check "pebble's management API shows serial $serial revoked" pebble_revoked
ck_check "pebble recorded reason keyCompromise (1)" bash -c "
        curl -sf --cacert '$CK_PEBBLE_CA' '$CK_PEBBLE_MANAGEMENT_URL/cert-status-by-serial/$serial' | jq -e '.Reason == 1'"

# --- Several ACME orders at once while another client lists certificates.
orders=()
for i in 1 2 3 4 5 6; do
        orders+=("$(ck_request "busy$i.example.test" -- provider s acme)")
done
max_ms=0 n_calls=0
while :; do
        ms=$(ck_list_certificates_ms) || { max_ms=99999; break; }
        n_calls=$((n_calls + 1))
        (( ms > max_ms )) && max_ms=$ms
        busy=0
        for o in "${orders[@]}"; do ck_order_done "$o" || busy=1; done
        [ $busy = 0 ] && break
        (( n_calls > 2000 )) && break
done
ck_check "ListCertificates answered $n_calls times while 6 ACME orders ran, slowest ${max_ms} ms (< 1000)" \
        test "$max_ms" -lt 1000
all_ok=1
for o in "${orders[@]}"; do [ "$(ck_order_status "$o")" = complete ] || all_ok=0; done
ck_check "the 6 concurrent ACME orders all complete" test $all_ok = 1

# --- certkeeperctl request --provider acme, waiting for the order.
t0=$(ck_now_us)
ck_check "certkeeperctl request www.example.test --provider acme" \
        "$CERTKEEPERCTL" --timeout=60 request www.example.test --provider acme
ck_diag "certkeeperctl request: $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_diag "$CK_OUT"
ctl_cert=$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 common_name s www.example.test |
        jq -r '[.data[0][] | select(.[2] == "active")] | .[0][0]')
ck_check "the new certificate is in the inventory, active, Provider acme" \
        test "$(ck_cprop "$ctl_cert" Provider)/$(ck_cprop "$ctl_cert" Status)" = acme/active
"$CERTKEEPERCTL" download "${ctl_cert##*/}" -o "$CK_RUN/ctl.pem" >/dev/null 2>&1
"$CERTKEEPERCTL" download "${ctl_cert##*/}" --chain -o "$CK_RUN/ctl.chain.pem" >/dev/null 2>&1
ck_check "certkeeperctl download: it verifies against pebble's root" \
        openssl verify -CAfile "$CK_PEBBLE_ROOT" -untrusted "$CK_RUN/ctl.chain.pem" "$CK_RUN/ctl.pem"

ck_stop_daemon

# --- An unreachable directory URL: bounded retries, then a failed order.
sed -i "s|^DirectoryURL=.*|DirectoryURL=https://127.0.0.1:9/dir|" "$CK_CONF"
ck_start_daemon || ck_bail "certkeeperd did not restart with an unreachable directory"
t0=$(ck_now_us)
order=$(ck_request down.example.test -- provider s acme)
processing() { [ "$(ck_order_status "$order")" = processing ] || [ "$(ck_order_status "$order")" = pending ]; }
ck_check "unreachable: the order stays processing while it retries" processing
ck_check "unreachable: the order fails after bounded retries" test "$(ck_wait_order "$order" 90)" = failed
elapsed_ms=$(( ($(ck_now_us) - t0) / 1000 ))
ck_diag "unreachable: failed after $elapsed_ms ms"
err=$(ck_oprop "$order" Error)
ck_check "unreachable: Error is readable ($err)" \
        bash -c "[[ '$err' == *'unreachable after 4 attempts'* && '$err' == *127.0.0.1:9* ]]"
ck_check "unreachable: a provider_unreachable alert after 3 attempts" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
        jq -e --arg o '$order' '[.data[0][] | select(.[1] == \"provider_unreachable\" and .[3] == \$o)] | length == 1'"
ck_check "unreachable: and an order_failed alert" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
        jq -e --arg o '$order' '[.data[0][] | select(.[1] == \"order_failed\" and .[3] == \$o)] | length == 1'"
ck_stop_daemon

# --- A CA that accepts connections and never answers: the bus stays live and a
# stop is prompt even while a worker waits on it.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 14999)); s.listen(16)
print("ready", flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >"$CK_RUN/silent.log" 2>&1 &
silent_pid=$!
ck_poll 10 grep -q ready "$CK_RUN/silent.log"
sed -i "s|^DirectoryURL=.*|DirectoryURL=https://127.0.0.1:14999/dir|" "$CK_CONF"
ck_start_daemon || ck_bail "certkeeperd did not restart with a silent directory"
orders=()
for i in 1 2 3 4; do orders+=("$(ck_request "silent$i.example.test" -- provider s acme)"); done
in_flight() { [ "$(ck_order_status "${orders[0]}")" = processing ]; }
ck_wait_for "silent CA: the orders are processing" 10 in_flight
max_ms=0
for i in $(seq 20); do
        ms=$(ck_list_certificates_ms) || { max_ms=99999; break; }
        (( ms > max_ms )) && max_ms=$ms
        sleep 0.1
done
ck_check "silent CA: ListCertificates answers 20 times in < 1000 ms each (slowest ${max_ms} ms)" test "$max_ms" -lt 1000
ck_check "silent CA: busctl introspection answers" \
        timeout 5 busctl --system introspect org.certkeeper1 /org/certkeeper1
t0=$(ck_now_us)
ck_stop_daemon
ck_diag "stop with 4 ACME requests hanging: $(( ($(ck_now_us) - t0) / 1000 )) ms"
kill "$silent_pid" 2>/dev/null
wait "$silent_pid" 2>/dev/null

ck_done
