#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The foundation: the daemon owns its name, serves a real CA and CRL, keeps the
# CA across restarts, audits to the store and the journal, keeps its state
# private, tells systemd when it is ready, and refuses a bad configuration.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config

# READY=1 through a real notify socket, as systemd would read it.
notify_sock=$CK_RUN/notify.sock
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "w") as out:
    while True:
        msg = s.recv(4096).decode()
        out.write(msg + "\n"); out.flush()
        if "READY=1" in msg:
            break
' "$notify_sock" "$CK_RUN/notify.log" &
notify_pid=$!
ck_poll 10 test -S "$notify_sock"
NOTIFY_SOCKET=$notify_sock ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ok "certkeeperd starts and owns org.certkeeper1"
ck_check "sd_notify READY=1 reaches the notify socket" ck_poll 10 grep -q READY=1 "$CK_RUN/notify.log"
wait $notify_pid 2>/dev/null

ck_check "Version property answers" ck_prop /org/certkeeper1 org.certkeeper1.Manager Version
providers_has_local() {
        ck_prop /org/certkeeper1 org.certkeeper1.Manager Providers |
                jq -e 'any(.[]; .[0] == "local" and .[1] == "local-pki" and (.[2] | test("Local PKI CA")))' >/dev/null
}
ck_wait_for "Providers lists the Local PKI with what it says it is" 10 providers_has_local
ck_check "introspection of /org/certkeeper1 lists the Manager" \
        bash -c 'busctl --system introspect org.certkeeper1 /org/certkeeper1 | grep -q "^org.certkeeper1.Manager"'

ck_ca_pem >"$CK_RUN/ca.pem"
ck_check "GetCACertificate parses with openssl x509" openssl x509 -in "$CK_RUN/ca.pem" -noout -text
openssl x509 -in "$CK_RUN/ca.pem" -noout -text >"$CK_RUN/ca.txt"
ck_check "the CA has CA:TRUE, critical" \
        bash -c "grep -A1 'Basic Constraints: critical' '$CK_RUN/ca.txt' | grep -q 'CA:TRUE'"
ck_check "the CA may sign certificates and CRLs (critical keyUsage)" \
        bash -c "grep -A1 'Key Usage: critical' '$CK_RUN/ca.txt' | grep -q 'Certificate Sign, CRL Sign'"
ck_check "the CA has a subject key identifier" grep -q "Subject Key Identifier" "$CK_RUN/ca.txt"
ck_check "the CA is self-signed and verifies" openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/ca.pem"
ck_check "the CA key is P-256 by default ([LocalCA] KeyAlgorithm=ec-256)" grep -q "prime256v1" "$CK_RUN/ca.txt"
ck_check "the CA certificate is also published as state/ca/ca.pem" \
        test "$(openssl x509 -in "$CK_RUN/ca.pem" -noout -fingerprint -sha256)" = \
        "$(openssl x509 -in "$CK_STATE_DIR/ca/ca.pem" -noout -fingerprint -sha256)"
fp1=$(openssl x509 -in "$CK_RUN/ca.pem" -noout -fingerprint -sha256)

ck_busctl "${CK_MGR[@]}" GetCRL | jq -r '.data[0]' >"$CK_RUN/crl.pem"
ck_check "GetCRL is a CRL signed by the CA" openssl crl -in "$CK_RUN/crl.pem" -CAfile "$CK_RUN/ca.pem" -noout
ck_check "the CRL is v2 with a CRL number" bash -c "openssl crl -in '$CK_RUN/crl.pem' -noout -text | grep -q 'X509v3 CRL Number'"
ck_check "the CRL is written to state/ca/crl.pem, mode 0644" \
        bash -c "[ \"\$(stat -c %a '$CK_STATE_DIR/ca/crl.pem')\" = 644 ]"

# Modes of what holds secrets.
ck_check "the state directory is 0700" bash -c "[ \"\$(stat -c %a '$CK_STATE_DIR')\" = 700 ]"
ck_check "the master key is 0600 and 32 bytes" \
        bash -c "[ \"\$(stat -c %a:%s '$CK_STATE_DIR/master.key')\" = 600:32 ]"
ck_check "the store is 0600" bash -c "[ \"\$(stat -c %a '$CK_STATE_DIR/certkeeper.db')\" = 600 ]"
ck_check "no private key is stored in clear" \
        bash -c "! grep -a -q 'BEGIN PRIVATE KEY\|BEGIN EC PRIVATE KEY' '$CK_STATE_DIR'/certkeeper.db*"
sqlite3 "$CK_STATE_DIR/certkeeper.db" "SELECT hex(sealed) FROM keys ORDER BY id LIMIT 1" | xxd -r -p >"$CK_RUN/sealed.der"
ck_check "the CA key in the store is encrypted PKCS#8 (PBES2, AES-256-CBC)" \
        bash -c "openssl asn1parse -inform DER -in '$CK_RUN/sealed.der' | grep -q PBES2 &&
                 openssl asn1parse -inform DER -in '$CK_RUN/sealed.der' | grep -q aes-256-cbc"

# An audited action reaches the journal with its fixed MESSAGE_ID and fields.
order=$(ck_request audit.example.com)
ck_check "RequestCertificate returns an order path" test "${order#/org/certkeeper1/order/}" != "$order"
status=$(ck_wait_order "$order")
ck_check "the order completes" test "$status" = complete
mid=$("$CK_BUILD_ROOT/daemon/gen-catalog" | awk '/^-- /{id=$2} /^Event: certificate.request_automated.submitted$/{print id}')
journal_has_submit() {
        ck_journal -o json MESSAGE_ID="$mid" | jq -s -e '
                any(.[]; .CERTKEEPER_EVENT == "certificate.request_automated.submitted"
                        and .CERTKEEPER_COMMON_NAME == "audit.example.com"
                        and .CERTKEEPER_CALLER_UID == "0"
                        and (.CERTKEEPER_ORDER_ID | length) > 0
                        and (.CERTKEEPER_CALLER_PID | length) > 0
                        and .SYSLOG_IDENTIFIER == "certkeeperd")' >/dev/null
}
ck_wait_for "the submission reaches journald with its MESSAGE_ID and fields" 10 journal_has_submit
ck_check "the issuance is in the journal too" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.issued CERTKEEPER_COMMON_NAME=audit.example.com
ck_check "ListAuditEvents returns the same events from the store" \
        bash -c "busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAuditEvents 'a{sv}' 1 event s certificate.request_automated.submitted | jq -e '.data[0] | length == 1 and .[0][1] == \"certificate.request_automated.submitted\" and .[0][3].common_name == \"audit.example.com\"'"
ck_check "the journal catalog names every event" \
        bash -c "[ \"\$('$CK_BUILD_ROOT/daemon/gen-catalog' | grep -c '^-- ')\" = 20 ]"

ck_stop_daemon

# Restart: the same CA, nothing regenerated.
ck_start_daemon || ck_bail "certkeeperd did not restart"
ck_check "a restart keeps the same CA" \
        bash -c "[ \"\$(busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCACertificate | jq -r '.data[0]' | openssl x509 -noout -fingerprint -sha256)\" = '$fp1' ]"
ck_check "a restart keeps the inventory" test "$(ck_cert_count)" = 1
ck_stop_daemon

# A master key from systemd's credentials wins over the state directory's.
mkdir -p "$CK_RUN/creds2" "$CK_RUN/state2"
head -c 32 /dev/urandom >"$CK_RUN/creds2/certkeeper.master-key"
ck_write_config
sed -i "s|^StateDirectory=.*|StateDirectory=$CK_RUN/state2|" "$CK_CONF"
CREDENTIALS_DIRECTORY=$CK_RUN/creds2 ck_start_daemon || ck_bail "certkeeperd did not start with a credential"
ck_check "with \$CREDENTIALS_DIRECTORY no master.key is written" test ! -e "$CK_RUN/state2/master.key"
ck_check "the daemon logged where the master key came from" grep -q "Master key from credential" "$CK_DAEMON_LOG"
ck_stop_daemon

# A bad configuration stops the daemon with file, key and what was expected.
ck_write_config "[LocalCA]\nKeyAlgorithm=rsa-1000"
"$CERTKEEPERD" --config "$CK_CONF" >"$CK_RUN/bad.log" 2>&1
rc=$?
ck_check "a bad config value makes certkeeperd exit non-zero" test "$rc" -ne 0
ck_check "the message names the file, the key and what was expected" \
        bash -c "grep -F '$CK_CONF' '$CK_RUN/bad.log' | grep -F 'KeyAlgorithm=rsa-1000' | grep -q 'expected'"
ck_write_config "[Daemon]\nNoSuchKey=1"
"$CERTKEEPERD" --config "$CK_CONF" >"$CK_RUN/bad2.log" 2>&1
ck_check "an unknown key is refused, naming it" grep -q "NoSuchKey" "$CK_RUN/bad2.log"
ck_check "nothing owns org.certkeeper1 after a refused start" ck_name_not_owned

ck_done
