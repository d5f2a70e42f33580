#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The harness itself, without the daemon: every service it starts answers, and
# the test cannot reach outside its network namespace.

source "$(dirname "$0")/lib.sh"

ck_check "private system bus answers GetId" \
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
ck_check "bus address points into the run directory" \
        test "$DBUS_SYSTEM_BUS_ADDRESS" = "unix:path=$CK_RUN/system_bus_socket"
ck_check "a test user can reach the bus" \
        ck_as ck-user busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
ck_check_fails "nobody may own org.certkeeper1 except root and certkeeper" \
        ck_as ck-user /usr/bin/python3 -c '
import dbus, sys
bus = dbus.SystemBus()
bus.request_name("org.certkeeper1")'

# journald: one message through each transport certkeeperd or a helper may use.
tag=ck-harness-$$-$RANDOM
# /dev/log may not exist here (systemd is not PID 1): name journald's syslog socket.
ck_check "logger reaches journald (syslog)" \
        logger --socket-errors=on -u /run/systemd/journal/dev-log -t "$tag" "hello via syslog"
ck_check "systemd-cat reaches journald (stdout stream)" \
        bash -c "echo 'hello via stdout' | systemd-cat -t '$tag'"
ck_check "logger --journald reaches journald (native protocol, as sd_journal_send)" \
        bash -c "printf 'MESSAGE=hello via native\nSYSLOG_IDENTIFIER=%s\nCERTKEEPER_EVENT=harness.probe\n' '$tag' |
                 logger --journald"
journal_has() {
        ck_journal -o json SYSLOG_IDENTIFIER="$tag" | jq -s -e --arg m "$1" 'any(.[]; .MESSAGE == $m)' >/dev/null
}
ck_wait_for "journalctl -o json reads the syslog message back" 10 journal_has "hello via syslog"
ck_wait_for "journalctl -o json reads the stdout message back" 10 journal_has "hello via stdout"
ck_wait_for "journalctl -o json reads the native message back" 10 journal_has "hello via native"
ck_check "a custom field can be matched" ck_journal_has CERTKEEPER_EVENT=harness.probe SYSLOG_IDENTIFIER="$tag"
journal_uid_ok() {
        local entries
        entries=$(ck_journal -o json SYSLOG_IDENTIFIER="$tag" MESSAGE="hello via native")
        jq -s -e 'length == 1 and all(.[]; ._UID == "0" and (._PID | length > 0))' <<<"$entries" >/dev/null &&
                return 0
        jq -c '{MESSAGE, _UID, _PID, _TRANSPORT}' <<<"$entries"
        return 1
}
ck_check "the journal records the sender's _UID and _PID" journal_uid_ok

# polkitd with the project's actions.
ck_check "polkitd owns org.freedesktop.PolicyKit1" ck_svc_name_has_owner org.freedesktop.PolicyKit1
ck_check "polkitd knows org.certkeeper1.request" pkaction --action-id org.certkeeper1.request
ck_check "org.certkeeper1.read is allowed for any caller" \
        bash -c "pkaction --verbose --action-id org.certkeeper1.read | grep -Eq 'implicit any: +yes'"
ck_check "org.certkeeper1.export-key needs an administrator" \
        bash -c "pkaction --verbose --action-id org.certkeeper1.export-key | grep -Eq 'implicit any: +auth_admin$'"
ck_check "polkit rules directory is exported and writable" test -d "$CK_POLKIT_RULES_DIR" -a -w "$CK_POLKIT_RULES_DIR"

# Authorization through the real polkitd, for a caller without a session:
# ck-user is refused the request action, until a rule grants it to its group.
check_auth() {
        # $1 user, $2 action; prints polkit's (is_authorized, is_challenge, details).
        ck_as "$1" /usr/bin/python3 - "$2" <<'PY'
import dbus, sys
bus = dbus.SystemBus()
pk = dbus.Interface(bus.get_object("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority"),
                    "org.freedesktop.PolicyKit1.Authority")
subject = ("system-bus-name", {"name": dbus.String(bus.get_unique_name())})
ok, challenge, details = pk.CheckAuthorization(subject, sys.argv[1], {}, 0, "")
sys.exit(0 if ok else 1)
PY
}
ck_check "ck-user may read" check_auth ck-user org.certkeeper1.read
ck_check_fails "ck-user may not request without a rule" check_auth ck-user org.certkeeper1.request
ck_check_fails "ck-admin may not revoke without a rule" check_auth ck-admin org.certkeeper1.revoke
ck_check "the example admin rule is loaded by polkitd" \
        ck_polkit_add_rule "$CK_SOURCE_ROOT/policy/50-certkeeper-admin.rules"
ck_check "with the rule, ck-admin may revoke" check_auth ck-admin org.certkeeper1.revoke
ck_check "with the rule, ck-admin may export keys" check_auth ck-admin org.certkeeper1.export-key
ck_check_fails "with the rule, ck-user still may not request" check_auth ck-user org.certkeeper1.request
ck_check "the rule is removed again" ck_polkit_remove_rule 50-certkeeper-admin.rules
ck_check_fails "without the rule, ck-admin may not revoke" check_auth ck-admin org.certkeeper1.revoke

# pebble over TLS, trusted through CK_PEBBLE_CA only.
ck_check "pebble's directory answers over TLS with CK_PEBBLE_CA" \
        bash -c 'curl -sf --cacert "$CK_PEBBLE_CA" "$CK_PEBBLE_DIR_URL" | jq -e .newOrder'
ck_check_fails "pebble's certificate is not trusted without CK_PEBBLE_CA" \
        curl -sf --max-time 5 "$CK_PEBBLE_DIR_URL"
ck_check "pebble's issuing root was fetched" openssl x509 -in "$CK_PEBBLE_ROOT" -noout -subject
ck_check "ck_pebble_fetch_root gives the same root" \
        ck_pebble_fetch_root "$CK_RUN/root-again.pem"
ck_check "... and it is the same root" cmp "$CK_RUN/root-again.pem" "$CK_PEBBLE_ROOT"

# Real http-01 validation (pebble -dnsserver challtestsrv): lego, the reference
# client, answers on port 5002 and pebble looks the name up through challtestsrv.
if [[ ,$CK_SERVICES, == *,challtestsrv,* ]]; then
        ck_check "lego gets a certificate from pebble with real http-01 validation" \
                env LEGO_CA_CERTIFICATES="$CK_PEBBLE_CA" timeout 60 lego --accept-tos \
                --server "$CK_PEBBLE_DIR_URL" --email harness@example.com --domains acme.example.com \
                --path "$CK_RUN/lego" --http --http.port 127.0.0.1:5002 run
        ck_check "pebble resolved the name through challtestsrv" \
                bash -c 'curl -sf -d "{\"host\":\"acme.example.com\"}" "$CK_CHALLTESTSRV_URL/dns-request-history" |
                         jq -e "length > 0"'
        ck_check "the certificate chains to pebble's root" \
                bash -c 'openssl verify -CAfile "$CK_PEBBLE_ROOT" \
                         -untrusted "$CK_RUN/lego/certificates/acme.example.com.issuer.crt" \
                         "$CK_RUN/lego/certificates/acme.example.com.crt"'
fi

# cfssl signs a CSR and its CA verifies the result.
csr_dir=$CK_RUN/harness-csr
mkdir -p "$csr_dir"
ck_check "a CSR is generated" \
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=harness.example.com \
        -addext subjectAltName=DNS:harness.example.com \
        -keyout "$csr_dir/key.pem" -out "$csr_dir/req.csr"
sign_with_cfssl() {
        jq -n --rawfile csr "$csr_dir/req.csr" '{certificate_request: $csr}' |
                curl -sf --max-time 10 -d @- "$CK_CFSSL_URL/api/v1/cfssl/sign" |
                jq -er 'select(.success) | .result.certificate' >"$csr_dir/cert.pem"
}
ck_check "cfssl signs the CSR" sign_with_cfssl
ck_check "cfssl's certificate verifies against CK_CFSSL_CA" \
        openssl verify -CAfile "$CK_CFSSL_CA" "$csr_dir/cert.pem"
ck_check "cfssl's certificate carries the requested name" \
        bash -c "openssl x509 -in '$csr_dir/cert.pem' -noout -ext subjectAltName | grep -q DNS:harness.example.com"

# Isolation: loopback only, no way out.
ck_check "loopback is up" bash -c "ip -o link show lo | grep -q 'UP'"
ck_check "there is no default route" bash -c "! ip route show default | grep -q ."
ck_check_fails "nothing outside is routable" ip route get 192.0.2.1
ck_check_fails "a connection outside fails at once" curl -s --max-time 5 http://192.0.2.1/

# Test users exist as the tests expect.
ck_check "ck-admin is in certkeeper-admin" bash -c "id -nG ck-admin | grep -qw certkeeper-admin"
ck_check "ck-user is in certkeeper-submit" bash -c "id -nG ck-user | grep -qw certkeeper-submit"
ck_check "the certkeeper user exists" getent passwd certkeeper

# The helpers write a config with everything inside the run directory.
ck_write_config "[LocalCA]\nValidityDays=30"
ck_check "ck_write_config keeps state and spool inside CK_RUN" \
        grep -qx "StateDirectory=$CK_RUN/state" "$CK_CONF"
ck_check "ck_write_config appends extra text" grep -qx "ValidityDays=30" "$CK_CONF"
ck_check "the spool's incoming directory is 1730 root:certkeeper-submit" \
        bash -c "test \"\$(stat -c '%a %U %G' '$CK_SPOOL_DIR/incoming')\" = '1730 root certkeeper-submit'"
ck_check "a submitter can drop a file into incoming/" \
        ck_as ck-user bash -c "echo x > '$CK_SPOOL_DIR/incoming/probe.csr'"
ck_check_fails "a submitter cannot list incoming/" ck_as ck-user ls "$CK_SPOOL_DIR/incoming"
ck_check_fails "a non-member cannot drop a file into incoming/" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- bash -c "echo x > '$CK_SPOOL_DIR/incoming/nobody.csr'"

# ck_wait_for fails at its deadline (so a broken wait cannot pass).
(
        CK_TAP_COUNT=0
        ck_wait_for "inner" 1 false >/dev/null
)
ck_check "ck_wait_for reports a timeout as a failure" test $? -ne 0

ck_done
