#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The external CA provider over the bus: certkeeper-cfssl-submit against the
# harness's cfssl server, certmonger's own local-submit unchanged, and a
# scripted helper (a real openssl CA written here) for every exit code of
# certmonger's CA-helper protocol: 0 issued, 1 wait + POLL, 5 wait with a delay,
# 2 rejected, 3 unreachable then success, 4 under-configured, 6 unsupported; a
# helper that hangs (killed at Timeout=, the bus answers meanwhile), one that
# floods stdout, and a restart while an order waits on its cookie.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-acme.sh"   # ck_oprop, ck_cprop, ck_list_certificates_ms

# no_process PATTERN — no process's command line matches PATTERN (pgrep -f).
# Fails when pgrep itself is missing (procps): "! pgrep" must not pass then.
no_process() {
        command -v pgrep >/dev/null || { echo "pgrep is not installed (procps)" >&2; return 1; }
        ! pgrep -f "$1" >/dev/null
}
ck_check "pgrep is installed (procps, from tools/install-deps)" command -v pgrep

CFSSL_SUBMIT=$CK_STAGE_BIN/certkeeper-cfssl-submit
[ -x "$CFSSL_SUBMIT" ] || ck_skip_all "$CFSSL_SUBMIT is not built"

# --- The scripted CA: a real openssl CA, its behaviour chosen by the CN.
SCA=$CK_RUN/scripted-ca
mkdir -p "$SCA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$SCA/ca.key" -out "$SCA/ca.pem" \
        -days 30 -subj "/CN=scripted test CA" 2>/dev/null || ck_bail "cannot create the scripted CA"
cat >"$SCA/helper" <<EOF
#!/bin/bash
# certmonger CA-helper protocol. Every call is logged to calls.log.
set -u
dir=$SCA
EOF
cat >>"$SCA/helper" <<'EOF'
cn=${CERTMONGER_REQ_SUBJECT:-}; cn=${cn#*CN=}; cn=${cn%%,*}
echo "$CERTMONGER_OPERATION ${cn:-} ${CERTMONGER_CA_COOKIE:-} nick=${CERTMONGER_CA_NICKNAME:-}" >>"$dir/calls.log"
sign() {
        local csr ext
        csr=$(mktemp "$dir/csr.XXXXXX")
        printf '%s\n' "$CERTMONGER_CSR" >"$csr"
        /usr/bin/openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
                -days 30 -copy_extensions copyall 2>>"$dir/openssl.log"
        local rc=$?
        rm -f "$csr"
        return $rc
}
case $CERTMONGER_OPERATION in
IDENTIFY) echo "scripted test CA 1.0"; exit 0 ;;
FETCH-ROOTS) echo "scripted test CA"; cat "$dir/ca.pem"; exit 0 ;;
SUBMIT|POLL) ;;
*) exit 6 ;;
esac
if [ "$CERTMONGER_OPERATION" = POLL ]; then
        case ${CERTMONGER_CA_COOKIE:-} in
        cookie-*) sign && exit 0; exit 3 ;;
        *) echo "unknown cookie"; exit 2 ;;
        esac
fi
case $cn in
issue*) sign && exit 0; exit 3 ;;
wait*) echo "cookie-$cn"; exit 1 ;;
delay*) echo 1; echo "cookie-$cn"; exit 5 ;;
reject*) echo "request for $cn denied: names starting with reject are not allowed"; exit 2 ;;
flaky*)
        n=$(cat "$dir/flaky.count" 2>/dev/null || echo 0)
        echo $((n + 1)) >"$dir/flaky.count"
        if [ "$n" -lt 3 ]; then echo "CA offline for maintenance (try $((n + 1)))"; exit 3; fi
        sign && exit 0; exit 3 ;;
underconf*) echo "no signing profile configured for $cn"; exit 4 ;;
unsupported*) exit 6 ;;
hang*) exec -a "ck-hang-$dir" /bin/sleep 600 ;;
flood*) exec -a "ck-flood-$dir" /usr/bin/yes "flooding the daemon with output" ;;
*) echo "unexpected request $cn"; exit 2 ;;
esac
EOF
chmod 0755 "$SCA/helper"

ck_write_config
cat >"$CK_CONF" <<EOF
[Daemon]
StateDirectory=$CK_STATE_DIR
SpoolDirectory=$CK_SPOOL_DIR
ProviderRetrySec=1
ProviderMaxAttempts=4

[ExternalCA "cfssl"]
Helper=$CFSSL_SUBMIT $CK_CFSSL_URL

[ExternalCA "script"]
Helper=$SCA/helper
Timeout=10

[ExternalCA "hang"]
Helper=$SCA/helper
Timeout=2

[ExternalCA "hang-long"]
Helper=$SCA/helper
Timeout=300

[ExternalCA "certmonger-local"]
Helper=/usr/lib/certmonger/local-submit -d $CK_RUN/local-ca
EOF
mkdir -p "$CK_RUN/local-ca"
ck_start_daemon || ck_bail "certkeeperd did not start"

# ck_check_ext_order ORDER PROVIDER CN CAFILE LABEL — complete, OrderType
# external-ca, verifies against CAFILE. Leaves the certificate path in CERT.
CERT=
ck_check_ext_order() {
        local order=$1 provider=$2 cn=$3 cafile=$4 label=$5 status
        status=$(ck_wait_order "$order" "${6:-60}")
        if ! ck_check "$label: the order completes" test "$status" = complete; then
                ck_diag "Status $status, Error: $(ck_oprop "$order" Error)"
                return 1
        fi
        ck_check "$label: OrderType external-ca, Provider $provider" \
                test "$(ck_oprop "$order" OrderType)/$(ck_oprop "$order" Provider)" = "external-ca/$provider"
        CERT=$(ck_order_cert "$order")
        ck_cert_pem "$CERT" >"$CK_RUN/$label.pem"
        ck_check "$label: the certificate verifies against the CA" \
                openssl verify -CAfile "$cafile" "$CK_RUN/$label.pem"
        ck_check "$label: its subject is CN=$cn, Provider $provider" bash -c "
                openssl x509 -in '$CK_RUN/$label.pem' -noout -subject -nameopt RFC2253 | grep -q 'CN=$cn' &&
                [ \"\$(busctl --system --json=short get-property org.certkeeper1 '$CERT' org.certkeeper1.Certificate Provider | jq -r .data)\" = '$provider' ]"
}

# ck_check_failed ORDER LABEL PATTERN... — failed, and Error contains every PATTERN.
ck_check_failed() {
        local order=$1 label=$2; shift 2
        local status err p ok=1
        status=$(ck_wait_order "$order" 60)
        err=$(ck_oprop "$order" Error)
        ck_check "$label: the order fails" test "$status" = failed || { ck_diag "Error: $err"; return 1; }
        for p in "$@"; do [[ $err == *"$p"* ]] || ok=0; done
        ck_check "$label: Error says why ($err)" test $ok = 1
        ck_check "$label: an order_failed alert for it" bash -c "
                busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
                jq -e --arg o '$order' '[.data[0][] | select(.[1] == \"order_failed\" and .[3] == \$o)] | length == 1' >/dev/null"
}

alert_for() {   # alert_for KIND ORDER
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
                jq -e --arg k "$1" --arg o "$2" '[.data[0][] | select(.[1] == $k and .[3] == $o)] | length == 1' >/dev/null
}

# --- exit 1 first: the order waits on its cookie (POLL 30 s after SUBMIT), and
# the daemon restarts meanwhile. The POLL is checked at the end.
t_wait=$(ck_now_us)
wait_order=$(ck_request wait1.example.test -- provider s script)
waiting() {
        [ "$(ck_order_status "$wait_order")" = processing ] && grep -q '^SUBMIT wait1.example.test' "$SCA/calls.log" &&
                [ "$(sqlite3 "file:$CK_STATE_DIR/certkeeper.db?mode=ro" "SELECT cookie FROM orders WHERE id = ${wait_order##*/}")" = cookie-wait1.example.test ]
}
ck_wait_for "exit 1: the order waits (processing), its cookie stored" 20 waiting
ck_stop_daemon
ck_start_daemon || ck_bail "certkeeperd did not restart"
ck_check "exit 1: after the restart the order still waits" test "$(ck_order_status "$wait_order")" = processing

delay_order=$(ck_request delay1.example.test -- provider s script)
flaky_order=$(ck_request flaky1.example.test -- provider s script)

# --- cfssl through certkeeper-cfssl-submit: automated and CSR.
t0=$(ck_now_us)
order=$(ck_request cfssl.example.test www.cfssl.example.test -- provider s cfssl)
ck_check_ext_order "$order" cfssl cfssl.example.test "$CK_CFSSL_CA" cfssl-automated
ck_diag "cfssl automated order: $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "cfssl-automated: the SAN holds both names" bash -c "
        openssl x509 -in '$CK_RUN/cfssl-automated.pem' -noout -ext subjectAltName | grep -q 'DNS:cfssl.example.test' &&
        openssl x509 -in '$CK_RUN/cfssl-automated.pem' -noout -ext subjectAltName | grep -q 'DNS:www.cfssl.example.test'"
ck_check "cfssl-automated: HasPrivateKey true" test "$(ck_cprop "$CERT" HasPrivateKey)" = true
ck_check "cfssl-automated: DownloadPEM chain=true carries the cfssl CA" \
        bash -c "busctl --system --json=short call org.certkeeper1 '$CERT' org.certkeeper1.Certificate DownloadPEM 'a{sv}' 1 chain b true |
                jq -r '.data[0]' | grep -q \"\$(sed -n 2p '$CK_CFSSL_CA')\""
openssl req -new -newkey rsa:2048 -nodes -keyout "$CK_RUN/cfssl-csr.key" -subj /CN=csr.cfssl.example.test \
        -addext subjectAltName=DNS:csr.cfssl.example.test -out "$CK_RUN/cfssl.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/cfssl.csr" provider s cfssl)
ck_check_ext_order "$order" cfssl csr.cfssl.example.test "$CK_CFSSL_CA" cfssl-csr
ck_check "cfssl-csr: the certificate carries the CSR's key" \
        test "$(openssl x509 -in "$CK_RUN/cfssl-csr.pem" -noout -pubkey)" = "$(openssl pkey -in "$CK_RUN/cfssl-csr.key" -pubout)"

# --- certmonger's local-submit, unchanged.
if [ -x /usr/lib/certmonger/local-submit ]; then
        order=$(ck_request local.example.test -- provider s certmonger-local)
        status=$(ck_wait_order "$order" 60)
        if ck_check "local-submit: the order completes" test "$status" = complete; then
                cert=$(ck_order_cert "$order")
                ck_cert_pem "$cert" >"$CK_RUN/local.pem"
                ck_cert_pem "$cert" chain >"$CK_RUN/local.chain.pem"
                # FETCH-ROOTS gave the chain; its last certificate is local-submit's self-signed CA.
                awk '/BEGIN CERT/{n++} {print > "'"$CK_RUN"'/local.part" n}' "$CK_RUN/local.chain.pem"
                last=$(ls "$CK_RUN"/local.part* | sort -V | tail -1)
                ck_check "local-submit: DownloadPEM chain=true adds the CA from FETCH-ROOTS" \
                        test "$(grep -c 'BEGIN CERTIFICATE' "$CK_RUN/local.chain.pem")" -ge 2
                ck_check "local-submit: the leaf verifies against local-submit's self-signed CA" \
                        openssl verify -CAfile "$last" "$CK_RUN/local.pem"
                ck_check "local-submit: that CA is the one in its data directory" \
                        bash -c "openssl x509 -in '$last' -noout -subject | grep -qi 'local'"
        else
                ck_diag "Error: $(ck_oprop "$order" Error)"
        fi
        identified() {
                ck_prop /org/certkeeper1 org.certkeeper1.Manager Providers |
                        jq -e 'any(.[]; .[0] == "certmonger-local" and .[1] == "external-ca" and (.[2] | length) > 0)' >/dev/null
        }
        ck_wait_for "Manager.Providers shows what local-submit answered to IDENTIFY" 30 identified
        ck_check "Manager.Providers lists the cfssl helper as an external CA" \
                bash -c "busctl --system --json=short get-property org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager Providers | jq -e '.data | any(.[]; .[0] == \"cfssl\" and .[1] == \"external-ca\")' >/dev/null"
else
        ck_skip "local-submit" "/usr/lib/certmonger/local-submit is not installed"
fi

# --- Every exit code of the scripted helper.
order=$(ck_request issue1.example.test -- provider s script)
ck_check_ext_order "$order" script issue1.example.test "$SCA/ca.pem" exit0
ck_check "exit0: the helper saw CERTMONGER_CA_NICKNAME=script" grep -q "^SUBMIT issue1.example.test  nick=script$" "$SCA/calls.log"
ck_check "exit0: the chain was completed from FETCH-ROOTS" grep -q "^FETCH-ROOTS " "$SCA/calls.log"
ck_check "exit0: DownloadPEM chain=true ends with the scripted CA" \
        bash -c "busctl --system --json=short call org.certkeeper1 '$CERT' org.certkeeper1.Certificate DownloadPEM 'a{sv}' 1 chain b true |
                jq -r '.data[0]' | grep -c 'BEGIN CERTIFICATE' | grep -qx 2 &&
                busctl --system --json=short call org.certkeeper1 '$CERT' org.certkeeper1.Certificate DownloadPEM 'a{sv}' 1 chain b true |
                jq -r '.data[0]' | grep -q \"\$(sed -n 2p '$SCA/ca.pem')\""

order=$(ck_request reject1.example.test -- provider s script)
ck_check_failed "$order" "exit 2 (rejected)" "request for reject1.example.test denied"

order=$(ck_request underconf1.example.test -- provider s script)
ck_check_failed "$order" "exit 4 (under-configured)" "no signing profile configured"

order=$(ck_request unsupported1.example.test -- provider s script)
ck_check_failed "$order" "exit 6 (unsupported)" "script"

t0=$(ck_now_us)
order=$(ck_request flood1.example.test -- provider s script)
ck_check_failed "$order" "flooding helper" "flooded its output" "stdout"
ck_diag "flooding helper: failed after $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "flooding helper: it is gone" no_process "^ck-flood-$SCA "

# exit 5: wait with a delay of 1 s, then POLL with the cookie.
ck_check_ext_order "$delay_order" script delay1.example.test "$SCA/ca.pem" "exit 5 (wait with delay)"
ck_check "exit 5: the helper was polled with its cookie" grep -q "^POLL delay1.example.test cookie-delay1.example.test" "$SCA/calls.log"

# exit 3 three times, then issued: retried with backoff, an alert after 3 attempts.
ck_check_ext_order "$flaky_order" script flaky1.example.test "$SCA/ca.pem" "exit 3 (unreachable) then 0" 60
ck_check "exit 3: submitted 4 times" test "$(grep -c '^SUBMIT flaky1' "$SCA/calls.log")" = 4
ck_check "exit 3: a provider_unreachable alert after 3 attempts" alert_for provider_unreachable "$flaky_order"

# A helper that hangs: killed at Timeout=2 each attempt; the bus answers meanwhile.
hang_order=$(ck_request hang1.example.test -- provider s hang)
# (named after this test's directory: tests running in parallel share the PID namespace)
hanging() { pgrep -f "^ck-hang-$SCA 600" >/dev/null; }
if ck_wait_for "hang: the helper is running" 20 hanging; then
        max_ms=0
        for i in $(seq 10); do
                ms=$(ck_list_certificates_ms) || { max_ms=99999; break; }
                (( ms > max_ms )) && max_ms=$ms
        done
        ck_check "hang: ListCertificates answers while the helper hangs (slowest of 10: ${max_ms} ms)" test "$max_ms" -lt 1000
        ck_check "hang: busctl introspect answers while the helper hangs" \
                timeout 5 busctl --system introspect org.certkeeper1 /org/certkeeper1
        ck_check "hang: the order is processing" test "$(ck_order_status "$hang_order")" = processing
        # Killed at Timeout= and tried again: the order says so (issue 17, the hung helper).
        retried() { [ "$(ck_prop "$hang_order" org.certkeeper1.Order Attempts)" -ge 1 ]; }
        if ck_wait_for "hang: after the kill the order counts its Attempts" 30 retried; then
                ck_check "hang: ... its NextAttemptAt is set while it waits" \
                        sh -c "s=\$(busctl --system --json=short get-property org.certkeeper1 $hang_order org.certkeeper1.Order Status | jq -r .data); \
                               [ \"\$s\" != processing ] || [ \$(busctl --system --json=short get-property org.certkeeper1 $hang_order org.certkeeper1.Order NextAttemptAt | jq .data) -gt 0 ]"
                ck_check "hang: ... and its Error says why" \
                        sh -c "busctl --system get-property org.certkeeper1 $hang_order org.certkeeper1.Order Error | grep -q 'was killed'"
        fi
fi
ck_check_failed "$hang_order" "hang" "did not finish SUBMIT within 2 s and was killed" "unreachable after 4 attempts"
ck_check "hang: no helper left behind" no_process "^ck-hang-$SCA 600"

# --- exit 1, continued: POLL after the restart completes the order.
ck_check_ext_order "$wait_order" script wait1.example.test "$SCA/ca.pem" "exit 1 (wait, restart, POLL)" 90
ck_diag "exit 1 order: complete $(( ($(ck_now_us) - t_wait) / 1000 )) ms after submission (polls 30 s after SUBMIT)"
ck_check "exit 1: submitted once, completed by POLL with the cookie" bash -c "
        [ \$(grep -c '^SUBMIT wait1.example.test' '$SCA/calls.log') = 1 ] &&
        grep -q '^POLL wait1.example.test cookie-wait1.example.test' '$SCA/calls.log'"
ck_check "exit 1: exactly one certificate for wait1.example.test" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 common_name s wait1.example.test | jq '.data[0] | length')" = 1

# --- A stop while a helper hangs (Timeout=300): prompt, the helper killed, and
# the order left open to resume on the next start.
hang_order=$(ck_request hang2.example.test -- provider s hang-long)
if ck_wait_for "stop: a helper with Timeout=300 hangs" 20 hanging; then
        t0=$(ck_now_us)
        ck_stop_daemon
        ms=$(( ($(ck_now_us) - t0) / 1000 ))
        ck_check "stop: certkeeperd stopped in ${ms} ms (< 5000) without waiting for the helper" test "$ms" -lt 5000
        ck_check "stop: the helper was killed" no_process "^ck-hang-$SCA 600"
        ck_check "stop: the order stays open for the next start" \
                test "$(sqlite3 "file:$CK_STATE_DIR/certkeeper.db?mode=ro" "SELECT status FROM orders WHERE id = ${hang_order##*/}")" = processing
fi

ck_done
