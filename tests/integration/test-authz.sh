#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Authorization (issue 7, DESIGN.md "Authorization") against a real polkitd:
# an unprivileged user reads but is denied everything else with AccessDenied
# naming the action; a member of certkeeper-admin under the example rules file
# may do everything; root always may; the journal and the store record the
# real uid of each caller; the interactive flag; who may own the bus name; the
# per-caller abuse limits; a caller that leaves while polkit is thinking.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

[ -n "${CK_POLKIT_RULES_DIR:-}" ] || ck_skip_all "needs polkitd (services polkit)"

CALL=$CK_HELPERS/call.py
MAX_PENDING=3

# External CAs that answer deterministically: "hold" keeps every order waiting
# for an hour (certmonger's exit 5: delay, cookie), "reject" refuses at once.
cat >"$CK_RUN/hold-helper" <<'EOF'
#!/bin/sh
case "$CERTMONGER_OPERATION" in
SUBMIT|POLL) echo 3600; echo held; exit 5 ;;
*) exit 6 ;;
esac
EOF
cat >"$CK_RUN/reject-helper" <<'EOF'
#!/bin/sh
case "$CERTMONGER_OPERATION" in
SUBMIT|POLL) echo "rejected by the test CA"; exit 2 ;;
*) exit 6 ;;
esac
EOF
chmod 0755 "$CK_RUN/hold-helper" "$CK_RUN/reject-helper"

ck_write_config "[ExternalCA \"hold\"]\nHelper=$CK_RUN/hold-helper\n[ExternalCA \"reject\"]\nHelper=$CK_RUN/reject-helper"
sed -i "/^\[Daemon\]\$/a MaxPendingOrdersPerCaller=$MAX_PENDING" "$CK_CONF"
# --debug: the test reads what authz does with answers nobody came back for.
ck_start_daemon --debug || ck_bail "certkeeperd did not start"

# call USER PATH IFACE METHOD [ARGS [--signature SIG]] — call.py as USER (root: directly).
call() {
        local user=$1; shift
        if [ "$user" = root ]; then
                /usr/bin/python3 "$CALL" "$@"
        else
                ck_as "$user" /usr/bin/python3 "$CALL" "$@"
        fi
}

# expect_ok DESC USER CALL-ARGS... — the call succeeds; its JSON result in RESULT.
RESULT=
expect_ok() {
        local desc=$1 user=$2; shift 2
        local out
        out=$(call "$user" "$@" 2>&1)
        if [[ $out == "ok "* ]]; then
                RESULT=${out#ok }
                ck_ok "$desc"
                return 0
        fi
        RESULT=
        ck_not_ok "$desc"
        ck_diag "$user: $*: $out"
        return 1
}

# expect_authorized DESC USER CALL-ARGS... — the call gets past authorization:
# it succeeds or fails for another reason (Rescan without discovery support).
expect_authorized() {
        local desc=$1 user=$2; shift 2
        local out
        out=$(call "$user" "$@" 2>&1)
        if [[ $out == "ok "* ]] || { [[ $out == "error "* ]] && [[ $out != *AccessDenied* ]] &&
                                      [[ $out != *InteractiveAuthorizationRequired* ]]; }; then
                ck_ok "$desc"
                [[ $out == "ok "* ]] || ck_diag "$out"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "$user: $*: $out"
        return 1
}

# expect_error DESC ERROR-NAME TEXT USER CALL-ARGS... — the call fails with
# that D-Bus error and the message contains TEXT.
expect_error() {
        local desc=$1 name=$2 text=$3 user=$4; shift 4
        local out
        out=$(call "$user" "$@" 2>&1)
        if [[ $out == "error $name: "* ]] && [[ $out == *"$text"* ]]; then
                ck_ok "$desc"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "$user: $*"
        ck_diag "expected: error $name: ...$text..."
        ck_diag "got: $out"
        return 1
}

MGR=/org/certkeeper1
MGR_IF=org.certkeeper1.Manager
CERT_IF=org.certkeeper1.Certificate
ORDER_IF=org.certkeeper1.Order
DENIED=org.freedesktop.DBus.Error.AccessDenied

# --- Set-up by root: a certificate with a key, a failed order and its alert.
order=$(ck_request setup.example.org) || ck_bail "root cannot request a certificate"
[ "$(ck_wait_order "$order")" = complete ] || ck_bail "the set-up order did not complete"
CERT=$(ck_order_cert "$order")
failed=$(ck_request rejected.example.org -- provider s reject)
[ "$(ck_wait_order "$failed")" = failed ] || ck_bail "the order to the rejecting CA did not fail"

alert_id() {
        ck_busctl "$MGR" "$MGR_IF" ListAlerts 'a{sv}' 0 |
                jq -e --arg o "$1" '[.data[0][] | select(.[3] == $o and .[5] == false)][0][0]'
}
ck_poll 20 alert_id "$failed" || ck_bail "no alert for the failed order $failed"
ALERT=$(alert_id "$failed")

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" \
        -subj /CN=csr.example.org -out "$CK_RUN/csr.pem" 2>/dev/null || ck_bail "openssl cannot make a CSR"
CSR_LIT=$(python3 -c 'import sys; print(repr(open(sys.argv[1]).read()))' "$CK_RUN/csr.pem")

# --- An unprivileged user reads everything public.
ck_check "ck-user: ListCertificates" ck_as ck-user busctl --system call org.certkeeper1 "$MGR" "$MGR_IF" \
        ListCertificates 'a{sv}' 0
expect_ok "ck-user: ListOrders" ck-user "$MGR" "$MGR_IF" ListOrders '{}' --signature 'a{sv}'
expect_ok "ck-user: ListAlerts" ck-user "$MGR" "$MGR_IF" ListAlerts '{}' --signature 'a{sv}'
expect_ok "ck-user: GetCACertificate" ck-user "$MGR" "$MGR_IF" GetCACertificate
expect_ok "ck-user: GetCRL" ck-user "$MGR" "$MGR_IF" GetCRL
expect_ok "ck-user: GetPolicy" ck-user "$MGR" "$MGR_IF" GetPolicy
expect_ok "ck-user: Describe" ck-user "$CERT" "$CERT_IF" Describe &&
        ck_check "ck-user: Describe names the certificate" \
                test "$(jq -r '.common_name // .CommonName // empty' <<<"$RESULT")" = setup.example.org
expect_ok "ck-user: DownloadPEM" ck-user "$CERT" "$CERT_IF" DownloadPEM '{}' --signature 'a{sv}' &&
        ck_check "ck-user: DownloadPEM equals root's" test "$(jq -r . <<<"$RESULT")" = "$(ck_cert_pem "$CERT")"
ck_check "ck-user: reads properties" ck_as ck-user busctl --system get-property org.certkeeper1 "$CERT" \
        "$CERT_IF" FingerprintSHA256

# --- ... and is denied everything else, naming the action.
deny_all() {
        local user=$1
        expect_error "$user: RequestCertificate denied (request)" "$DENIED" org.certkeeper1.request "$user" \
                "$MGR" "$MGR_IF" RequestCertificate '"denied.example.org", [], {}' --signature 'sasa{sv}'
        expect_error "$user: SubmitCSR denied (request)" "$DENIED" org.certkeeper1.request "$user" \
                "$MGR" "$MGR_IF" SubmitCSR "$CSR_LIT, {}" --signature 'sa{sv}'
        expect_error "$user: ExportPFX denied (export-key)" "$DENIED" org.certkeeper1.export-key "$user" \
                "$CERT" "$CERT_IF" ExportPFX '{}' --signature 'a{sv}'
        expect_error "$user: RequestRevocation denied (revoke)" "$DENIED" org.certkeeper1.revoke "$user" \
                "$CERT" "$CERT_IF" RequestRevocation
        expect_error "$user: Revoke denied (revoke)" "$DENIED" org.certkeeper1.revoke "$user" \
                "$CERT" "$CERT_IF" Revoke '"123456", "key_compromise"' --signature ss
        expect_error "$user: AcknowledgeAlert denied (manage)" "$DENIED" org.certkeeper1.manage "$user" \
                "$MGR" "$MGR_IF" AcknowledgeAlert "$ALERT" --signature t
        expect_error "$user: ListAuditEvents denied (manage)" "$DENIED" org.certkeeper1.manage "$user" \
                "$MGR" "$MGR_IF" ListAuditEvents '{}' --signature 'a{sv}'
        expect_error "$user: Rescan denied (manage)" "$DENIED" org.certkeeper1.manage "$user" \
                "$MGR" "$MGR_IF" Rescan
        expect_error "$user: Order.Resubmit denied (request)" "$DENIED" org.certkeeper1.request "$user" \
                "$failed" "$ORDER_IF" Resubmit
}
deny_all ck-user
# Without the rules file the group means nothing: the defaults want an admin.
deny_all ck-admin

ck_check "nothing was ordered, revoked or acknowledged by the denied calls" \
        test "$(ck_busctl "$MGR" "$MGR_IF" ListOrders 'a{sv}' 0 | jq '.data[0] | length')" = 2
ck_check "the alert is still unacknowledged" alert_id "$failed"
ck_check "the certificate is still active" test "$(ck_prop "$CERT" "$CERT_IF" Status)" = '"active"'

# --- The interactive flag. polkitd (no agent, no session) answers
# is_challenge=true for the auth_admin actions whether the flag is set or not.
# Without the flag that is a plain AccessDenied (checked above); with the flag
# and no agent to ask, InteractiveAuthorizationRequired naming the action.
out=$(ck_as ck-user gdbus call --system --interactive --dest org.certkeeper1 --object-path "$MGR" \
        --method "$MGR_IF.Rescan" 2>&1)
case $out in
*org.freedesktop.DBus.Error.InteractiveAuthorizationRequired*org.certkeeper1.manage*)
        ck_ok "gdbus --interactive without an agent: InteractiveAuthorizationRequired naming the action" ;;
*)
        ck_not_ok "gdbus --interactive without an agent: InteractiveAuthorizationRequired naming the action"
        ck_diag "gdbus: $out" ;;
esac
out=$(ck_as ck-user busctl --system --allow-interactive-authorization=yes call org.certkeeper1 "$MGR" \
        "$MGR_IF" ListAuditEvents 'a{sv}' 0 2>&1)
ck_check "busctl --allow-interactive-authorization=yes: refused, no agent, naming the action" \
        grep -q 'needs to authenticate for org.certkeeper1.manage, but no polkit authentication agent' <<<"$out"
ck_diag "busctl said: $out"
out=$(ck_as ck-user gdbus call --system --dest org.certkeeper1 --object-path "$MGR" --method "$MGR_IF.Rescan" 2>&1)
ck_check "gdbus without --interactive: AccessDenied" \
        grep -q 'org.freedesktop.DBus.Error.AccessDenied.*org.certkeeper1.manage' <<<"$out"

# --- The example rules file makes certkeeper-admin administrators (polkitd
# picks it up without a restart: wait for it).
ck_install_polkit_rules "$CK_SOURCE_ROOT/policy/50-certkeeper-admin.rules" ||
        ck_bail "cannot install the rules file"
admin_may_audit() {
        [[ $(call ck-admin "$MGR" "$MGR_IF" ListAuditEvents '{}' --signature 'a{sv}') == "ok "* ]]
}
ck_wait_for "polkitd loads 50-certkeeper-admin.rules: ck-admin may ListAuditEvents" 20 admin_may_audit

# allow_all USER — every guarded method succeeds; the uid is recorded.
allow_all() {
        local user=$1 uid cn ord st cert pfx
        uid=$(id -u "$user")
        cn=$user-auto.example.org
        expect_ok "$user: RequestCertificate" "$user" "$MGR" "$MGR_IF" RequestCertificate \
                "\"$cn\", [], {}" --signature 'sasa{sv}'
        ord=$(jq -r . <<<"$RESULT")
        st=$(ck_wait_order "$ord")
        ck_check "$user: the order completes" test "$st" = complete
        ck_check "$user: the order's RequestedBy is $user" \
                test "$(ck_prop "$ord" "$ORDER_IF" RequestedBy)" = "\"$user\""
        ck_check "$user: the journal records the submission with CERTKEEPER_CALLER_UID=$uid" \
                ck_journal_has CERTKEEPER_EVENT=certificate.request_automated.submitted \
                CERTKEEPER_COMMON_NAME="$cn" CERTKEEPER_CALLER_UID="$uid"
        ck_check "$user: the journal entry comes from the daemon (_UID=$(id -u)), not from the caller" \
                ck_journal_has CERTKEEPER_EVENT=certificate.request_automated.submitted \
                CERTKEEPER_COMMON_NAME="$cn" _UID="$(id -u)"
        cert=$(ck_order_cert "$ord")

        expect_ok "$user: SubmitCSR" "$user" "$MGR" "$MGR_IF" SubmitCSR "$CSR_LIT, {}" --signature 'sa{sv}'
        ord=$(jq -r . <<<"$RESULT")
        ck_check "$user: the CSR order completes" test "$(ck_wait_order "$ord")" = complete

        expect_ok "$user: ExportPFX" "$user" "$cert" "$CERT_IF" ExportPFX '{}' --signature 'a{sv}'
        pfx=$RESULT
        ck_check "$user: the PFX opens with its password" pfx_opens "$pfx" "$CK_RUN/$user.pfx"

        expect_ok "$user: RequestRevocation" "$user" "$cert" "$CERT_IF" RequestRevocation
        # The code is bound to the connection that asked: ask and confirm on one.
        out=$(run_as "$user" /usr/bin/python3 -I -c '
import dbus, sys
bus = dbus.SystemBus()
c = bus.get_object("org.certkeeper1", sys.argv[1], introspect=False)
code = c.RequestRevocation(dbus_interface="org.certkeeper1.Certificate")
c.Revoke(code, "superseded", dbus_interface="org.certkeeper1.Certificate")
print("revoked")' "$cert" 2>&1)
        ck_check "$user: RequestRevocation + Revoke on one connection" test "$out" = revoked || ck_diag "$out"
        ck_check "$user: the certificate is revoked" test "$(ck_prop "$cert" "$CERT_IF" Status)" = '"revoked"'
        ck_check "$user: the journal records the revocation with CERTKEEPER_CALLER_UID=$uid" \
                ck_journal_has CERTKEEPER_EVENT=certificate.revoke.success CERTKEEPER_CERTIFICATE_ID="${cert##*/}" \
                CERTKEEPER_CALLER_UID="$uid"

        expect_ok "$user: ListAuditEvents" "$user" "$MGR" "$MGR_IF" ListAuditEvents '{}' --signature 'a{sv}'
        ck_check "$user: the store records the submission with uid $uid" \
                jq -e --arg cn "$cn" --argjson uid "$uid" \
                'any(.[]; .[1] == "certificate.request_automated.submitted" and .[2] == $uid and .[3].common_name == $cn)' \
                <<<"$RESULT"
        ck_check "$user: the store records the revocation with uid $uid" \
                jq -e --arg id "${cert##*/}" --argjson uid "$uid" \
                'any(.[]; .[1] == "certificate.revoke.success" and .[2] == $uid and .[3].certificate_id == $id)' \
                <<<"$RESULT"

        expect_authorized "$user: Rescan" "$user" "$MGR" "$MGR_IF" Rescan
        expect_ok "$user: Order.Resubmit" "$user" "$failed" "$ORDER_IF" Resubmit
        ord=$(jq -r . <<<"$RESULT")
        ck_check "$user: the resubmitted order is requested by $user" \
                test "$(ck_prop "$ord" "$ORDER_IF" RequestedBy)" = "\"$user\""
        ck_check "$user: it fails again at the rejecting CA" test "$(ck_wait_order "$ord")" = failed
        failed=$ord
}

# pfx_opens RESULT FILE — ExportPFX's [bytes, password] is a PKCS#12 file with a key.
pfx_opens() {
        /usr/bin/python3 -I -c 'import json, sys; open(sys.argv[2], "wb").write(bytes(json.loads(sys.argv[1])[0]))' \
                "$1" "$2" || return 1
        openssl pkcs12 -in "$2" -passin "pass:$(jq -r '.[1]' <<<"$1")" -nodes 2>/dev/null | grep -q 'PRIVATE KEY'
}

run_as() {
        local user=$1; shift
        if [ "$user" = root ]; then "$@"; else ck_as "$user" "$@"; fi
}

allow_all ck-admin
expect_ok "ck-admin: AcknowledgeAlert" ck-admin "$MGR" "$MGR_IF" AcknowledgeAlert "$ALERT" --signature t
acked=$(ck_busctl "$MGR" "$MGR_IF" ListAlerts 'a{sv}' 1 include_acknowledged b true 2>/dev/null |
        jq --argjson id "$ALERT" '[.data[0][] | select(.[0] == $id)][0][5]')
ck_check "the alert is acknowledged (ListAlerts)" test "$acked" = true

# ck-user is still not an administrator.
deny_all ck-user

allow_all root
ck_poll 20 alert_id "$failed" && ALERT=$(alert_id "$failed")
expect_ok "root: AcknowledgeAlert" root "$MGR" "$MGR_IF" AcknowledgeAlert "$ALERT" --signature t

# --- Only the daemon's user (and root) may own the name.
own_name() {
        ck_as "$1" /usr/bin/python3 -I -c '
import dbus
try:
    dbus.SystemBus().request_name("org.certkeeper1", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
    print("owned")
except dbus.exceptions.DBusException as e:
    print(e.get_dbus_name())' 2>&1
}
for u in ck-user ck-admin; do
        out=$(own_name $u)
        ck_check "$u cannot own org.certkeeper1 (AccessDenied)" test "$out" = "$DENIED" || ck_diag "$out"
done

# The bus lets anyone call the daemon's interfaces, and nothing else.
expect_error "the bus refuses ck-user a call to an interface the daemon does not serve" "$DENIED" \
        "Rejected send message" ck-user "$MGR" org.certkeeper1.Debug Rescan
expect_error "... and root too (the default-deny policy binds everyone)" "$DENIED" "Rejected send message" \
        root "$MGR" org.certkeeper1.Debug Rescan

# --- Abuse limit: open orders per caller. The "hold" CA keeps them pending.
for i in $(seq 1 "$MAX_PENDING"); do
        expect_ok "ck-admin: pending order $i of $MAX_PENDING" ck-admin "$MGR" "$MGR_IF" RequestCertificate \
                "\"held$i.example.org\", [], {\"provider\": \"hold\"}" --signature 'sasa{sv}'
done
ck_check "the held orders are still open" bash -c \
        "busctl --system --json=short call org.certkeeper1 $MGR $MGR_IF ListOrders 'a{sv}' 0 |
         jq -e '[.data[0][] | select((.[1] | startswith(\"held\")) and (.[3] == \"pending\" or .[3] == \"processing\"))] | length == $MAX_PENDING'"
expect_error "ck-admin: order $((MAX_PENDING + 1)) is refused with LimitExceeded" org.certkeeper1.Error.LimitExceeded \
        "the limit is $MAX_PENDING" ck-admin "$MGR" "$MGR_IF" RequestCertificate \
        '"one-too-many.example.org", [], {}' --signature 'sasa{sv}'
expect_error "ck-admin: a CSR order over the limit too" org.certkeeper1.Error.LimitExceeded \
        "the limit is $MAX_PENDING" ck-admin "$MGR" "$MGR_IF" SubmitCSR "$CSR_LIT, {}" --signature 'sa{sv}'
expect_ok "root is not bound by the per-caller limit" root "$MGR" "$MGR_IF" RequestCertificate \
        '"root-after-limit.example.org", [], {}' --signature 'sasa{sv}'

# --- Abuse limit: live revocation codes per user, over all their connections.
# Certificates to ask about (root orders them: root has no limit).
certs=()
for i in $(seq 1 17); do
        o=$(ck_request "rev$i.example.org")
        [ "$(ck_wait_order "$o")" = complete ] || ck_bail "order rev$i did not complete"
        certs+=("$(ck_order_cert "$o")")
done
out=$(ck_as ck-admin /usr/bin/python3 -I - "${certs[@]}" <<'EOF' 2>&1
import sys, time
import dbus
import dbus.bus

addr = __import__("os").environ["DBUS_SYSTEM_BUS_ADDRESS"]
IF = "org.certkeeper1.Certificate"

def ask(conn, path):
    try:
        conn.get_object("org.certkeeper1", path, introspect=False).RequestRevocation(dbus_interface=IF)
        return "ok"
    except dbus.exceptions.DBusException as e:
        return e.get_dbus_name()

a = dbus.bus.BusConnection(addr)
first = [ask(a, p) for p in sys.argv[1:17]]
print("first16", "ok" if first == ["ok"] * 16 else first)
print("17th", ask(a, sys.argv[17]))
b = dbus.bus.BusConnection(addr)
print("other-connection", ask(b, sys.argv[17]))
a.close()
# Codes belong to the user, not to the connection: closing one frees nothing.
print("after-close", ask(b, sys.argv[17]))
EOF
)
ck_diag "$out"
ck_check "ck-admin: 16 revocation codes are granted" grep -qx 'first16 ok' <<<"$out"
ck_check "ck-admin: the 17th is refused with LimitExceeded" \
        grep -qx '17th org.certkeeper1.Error.LimitExceeded' <<<"$out"
ck_check "ck-admin: a new connection gets no fresh allowance" \
        grep -qx 'other-connection org.certkeeper1.Error.LimitExceeded' <<<"$out"
ck_check "ck-admin: closing the connection frees nothing (codes belong to the user)" \
        grep -qx 'after-close org.certkeeper1.Error.LimitExceeded' <<<"$out"

# --- Abuse limit: calls waiting for polkit, per uid. Each is a call the bus
# counts against the daemon's connection; one user must not use up the room
# for everyone's checks. polkitd is stopped so the calls stay waiting.
cat >"$CK_RUN/flood.py" <<'EOF'
import collections, sys
import dbus
import dbus.lowlevel
n, method, gate = int(sys.argv[1]), sys.argv[2], sys.argv[3]
path, iface = (sys.argv[4], "org.certkeeper1.Certificate") if len(sys.argv) > 4 else \
    ("/org/certkeeper1", "org.certkeeper1.Manager")
bus = dbus.SystemBus()
results = collections.Counter()
def done(reply):
    name = reply.get_error_name() if isinstance(reply, dbus.lowlevel.ErrorMessage) else None
    results[name.rsplit(".", 1)[1] if name else "ok"] += 1
pending = []
for i in range(n):
    m = dbus.lowlevel.MethodCallMessage("org.certkeeper1", path, iface, method)
    if method == "ListAuditEvents":
        m.append(dbus.Dictionary({}, signature="sv"), signature="a{sv}")
    pending.append(bus.send_message_with_reply(m, done, 60, require_main_loop=False))
bus.get_object("org.certkeeper1", "/org/certkeeper1", introspect=False).GetCACertificate(
    dbus_interface="org.certkeeper1.Manager")
print("sent", flush=True)
open(gate).read()
for p in pending:
    p.block()
print(" ".join("%s=%d" % kv for kv in sorted(results.items())), flush=True)
EOF
chmod 0644 "$CK_RUN/flood.py"
POLKIT_PID=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s org.freedesktop.PolicyKit1 | awk '{print $2}')
if [ -n "$POLKIT_PID" ] && kill -STOP "$POLKIT_PID"; then
        mkfifo -m 0644 "$CK_RUN/flood-gate"
        ck_as ck-user /usr/bin/python3 -I "$CK_RUN/flood.py" 24 Rescan "$CK_RUN/flood-gate" >"$CK_RUN/flood-user.out" 2>&1 &
        flooder=$!
        ck_wait_for "ck-user has 24 Rescan calls in (polkit stopped)" 20 grep -qx sent "$CK_RUN/flood-user.out"
        ck_as ck-admin /usr/bin/python3 -I "$CK_RUN/flood.py" 1 ListAuditEvents "$CK_RUN/flood-gate" \
                >"$CK_RUN/flood-admin.out" 2>&1 &
        other=$!
        ck_wait_for "ck-admin's call is in too" 20 grep -qx sent "$CK_RUN/flood-admin.out"
        kill -CONT "$POLKIT_PID"
        echo >"$CK_RUN/flood-gate"
        wait "$flooder" "$other"
        ck_check "ck-user: 16 calls wait for polkit (then AccessDenied), 8 more get LimitExceeded at once" \
                grep -qx 'AccessDenied=16 LimitExceeded=8' "$CK_RUN/flood-user.out"
        ck_diag "ck-user: $(tail -1 "$CK_RUN/flood-user.out")"
        ck_check "ck-admin is not held back by ck-user's flood" grep -qx 'ok=1' "$CK_RUN/flood-admin.out"
        ck_diag "ck-admin: $(tail -1 "$CK_RUN/flood-admin.out")"
        ck_check "afterwards ck-user is back to a plain AccessDenied" bash -c \
                "[[ \$(setpriv --reuid=ck-user --regid=ck-user --init-groups /usr/bin/python3 '$CALL' $MGR $MGR_IF Rescan) == 'error $DENIED: '* ]]"
else
        ck_skip "calls waiting for polkit, per uid" "cannot find polkitd's pid"
fi

# --- A caller that leaves while polkit is thinking. polkitd is stopped so the
# query stays pending; a read call on the same connection, answered after the
# guarded call was dispatched (one connection's messages keep their order),
# proves the daemon has asked polkit before the caller goes on.
cat >"$CK_RUN/pending.py" <<'EOF'
import sys
import dbus
import dbus.lowlevel
bus = dbus.SystemBus()
m = dbus.lowlevel.MethodCallMessage("org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager", sys.argv[1])
if sys.argv[1] == "RequestCertificate":
    m.append("gone.example.org", dbus.Array([], signature="s"), dbus.Dictionary({}, signature="sv"),
             signature="sasa{sv}")
answer = []
def done(reply):
    if isinstance(reply, dbus.lowlevel.ErrorMessage):
        answer.append("%s: %s" % (reply.get_error_name(), (reply.get_args_list() or [""])[0]))
    else:
        answer.append("ok")
pending = bus.send_message_with_reply(m, done, 60, require_main_loop=False)
bus.get_object("org.certkeeper1", "/org/certkeeper1", introspect=False).GetCACertificate(
    dbus_interface="org.certkeeper1.Manager")
print("sent", flush=True)
if len(sys.argv) > 2:
    open(sys.argv[2]).read()  # hold the connection until the test opens the gate
    pending.block()
    print("answer", answer[0], flush=True)
EOF
chmod 0644 "$CK_RUN/pending.py"
if [ -n "$POLKIT_PID" ] && kill -STOP "$POLKIT_PID"; then
        ck_check "ck-user's Rescan is pending at polkit when ck-user exits" \
                test "$(ck_as ck-user /usr/bin/python3 -I "$CK_RUN/pending.py" Rescan)" = sent
        ck_check "ck-admin's RequestCertificate is pending at polkit when ck-admin exits" \
                test "$(ck_as ck-admin /usr/bin/python3 -I "$CK_RUN/pending.py" RequestCertificate)" = sent
        kill -CONT "$POLKIT_PID"
        # polkitd cannot resolve a departed name: the daemon hears that and answers the void.
        ck_wait_for "polkit's answers about both departed callers reach the daemon" 20 \
                bash -c "[ \$(grep -c 'Could not get UID of name' '$CK_DAEMON_LOG') -ge 2 ]"
        ck_check "the daemon still answers" ck_busctl "$MGR" "$MGR_IF" ListAuditEvents 'a{sv}' 0
        ck_check "no order was made for the departed caller" bash -c \
                "! busctl --system --json=short call org.certkeeper1 $MGR $MGR_IF ListOrders 'a{sv}' 0 |
                   grep -q gone.example.org"

        # The certificate is revoked while ck-admin's RequestRevocation waits for
        # polkit: the call comes back, answers AlreadyRevoked before asking for
        # the answer, and the answer is dropped (not kept for good).
        victim=${certs[16]}
        mkfifo -m 0644 "$CK_RUN/revoke-gate"
        kill -STOP "$POLKIT_PID"
        ck_as ck-admin /usr/bin/python3 -I "$CK_RUN/flood.py" 1 RequestRevocation "$CK_RUN/revoke-gate" "$victim" \
                >"$CK_RUN/revoke-race.out" 2>&1 &
        racer=$!
        ck_wait_for "ck-admin's RequestRevocation waits for polkit" 20 grep -qx sent "$CK_RUN/revoke-race.out"
        out=$(/usr/bin/python3 -I -c '
import dbus, sys
c = dbus.SystemBus().get_object("org.certkeeper1", sys.argv[1], introspect=False)
c.Revoke(c.RequestRevocation(dbus_interface="org.certkeeper1.Certificate"), "superseded",
         dbus_interface="org.certkeeper1.Certificate")
print("revoked")' "$victim" 2>&1)
        ck_check "meanwhile root revokes the certificate" test "$out" = revoked || ck_diag "$out"
        dropped_before=$(grep -c 'polkit answers no handler came back for' "$CK_DAEMON_LOG")
        kill -CONT "$POLKIT_PID"
        echo >"$CK_RUN/revoke-gate"
        wait "$racer"
        ck_check "ck-admin's call is answered AlreadyRevoked" grep -qx 'AlreadyRevoked=1' "$CK_RUN/revoke-race.out"
        ck_diag "ck-admin: $(tail -1 "$CK_RUN/revoke-race.out")"
        ck_wait_for "the unused polkit answer is dropped" 20 \
                bash -c "[ \$(grep -c 'polkit answers no handler came back for' '$CK_DAEMON_LOG') -gt $dropped_before ]"

        # A daemon stopped with a query still pending shuts down cleanly (no leak under ASan).
        mkfifo -m 0644 "$CK_RUN/gate"
        kill -STOP "$POLKIT_PID"
        ck_as ck-admin /usr/bin/python3 -I "$CK_RUN/pending.py" Rescan "$CK_RUN/gate" >"$CK_RUN/pending.out" 2>&1 &
        holder=$!
        ck_wait_for "ck-admin's Rescan is pending at polkit, ck-admin still connected" 20 \
                grep -qx sent "$CK_RUN/pending.out"
        ck_stop_daemon
        kill -CONT "$POLKIT_PID"
        echo >"$CK_RUN/gate"
        wait "$holder"
        # sd-bus closes the connection when the loop exits; the bus then tells the caller.
        ck_check "the waiting caller is told the daemon left (NoReply from the bus, not a timeout)" \
                grep -q '^answer org.freedesktop.DBus.Error.NoReply: .*disconnected' "$CK_RUN/pending.out"
        ck_diag "$(cat "$CK_RUN/pending.out")"
else
        ck_skip "callers leaving while polkit is pending" "cannot find polkitd's pid"
fi

ck_done
