#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Least privilege (issue 7): certkeeperd runs as the system user "certkeeper"
# with only the capabilities units/certkeeper.service grants (CAP_CHOWN and
# CAP_DAC_READ_SEARCH, ambient, in a bounding set of just those, no new
# privileges), its state directory owned by that user as StateDirectory=
# makes it. It takes org.certkeeper1 (the bus policy lets its user own it),
# issues, keeps its files private, and restarts from its own store. Other
# users cannot take the name even when it is free.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

getent passwd certkeeper >/dev/null || ck_skip_all "no user certkeeper (the harness creates it)"
CK_UID=$(id -u certkeeper)
CK_GID=$(id -g certkeeper)

ck_write_config
# What StateDirectory=certkeeper and tmpfiles.d/certkeeper.conf would do.
chown certkeeper:certkeeper "$CK_STATE_DIR"
chmod 0700 "$CK_STATE_DIR"
chown certkeeper:certkeeper "$CK_SPOOL_DIR" "$CK_SPOOL_DIR/incoming" "$CK_SPOOL_DIR/issued" "$CK_SPOOL_DIR/failed"
chgrp certkeeper-submit "$CK_SPOOL_DIR/incoming"
chmod 1730 "$CK_SPOOL_DIR/incoming"

# The unit's User=, CapabilityBoundingSet=, AmbientCapabilities= and NoNewPrivileges=.
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$CK_BUILD_ROOT/units/certkeeper.service")
AMBIENT=$(sed -n 's/^AmbientCapabilities=//p' "$CK_BUILD_ROOT/units/certkeeper.service")
ck_check "the unit bounds and grants the same capabilities ($CAPS)" test -n "$CAPS" -a "$CAPS" = "$AMBIENT"
ck_check "the unit runs as User=certkeeper" grep -qx 'User=certkeeper' "$CK_BUILD_ROOT/units/certkeeper.service"
setpriv_caps=$(for c in $CAPS; do c=${c#CAP_}; printf '+%s,' "${c,,}"; done)
setpriv_caps=${setpriv_caps%,}
# The expected capability mask, from the numbers in linux/capability.h.
declare -A CAPNUM=([CAP_CHOWN]=0 [CAP_DAC_OVERRIDE]=1 [CAP_DAC_READ_SEARCH]=2 [CAP_FOWNER]=3
                   [CAP_SETGID]=6 [CAP_SETUID]=7 [CAP_NET_BIND_SERVICE]=10)
mask=0
for c in $CAPS; do mask=$(( mask | (1 << ${CAPNUM[$c]}) )); done
want_mask=$(printf '%016x' "$mask")

CK_DAEMON_WRAPPER="setpriv --reuid=certkeeper --regid=certkeeper --init-groups --no-new-privs \
--inh-caps=-all,$setpriv_caps --ambient-caps=-all,$setpriv_caps --bounding-set=-all,$setpriv_caps -- \
${CK_DAEMON_WRAPPER:-}"
ck_start_daemon || ck_bail "certkeeperd did not start as user certkeeper"
ck_ok "certkeeperd starts as user certkeeper and takes org.certkeeper1"

status() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$CK_DAEMON_PID/status"; }
ck_check "it runs with uid certkeeper ($CK_UID) for real, effective, saved and fs uid" \
        test "$(status Uid)" = "$CK_UID	$CK_UID	$CK_UID	$CK_UID"
ck_check "and gid certkeeper ($CK_GID)" test "$(status Gid)" = "$CK_GID	$CK_GID	$CK_GID	$CK_GID"
ck_check "its effective capabilities are exactly $CAPS" test "$(status CapEff)" = "$want_mask"
ck_check "its bounding set is exactly $CAPS" test "$(status CapBnd)" = "$want_mask"
ck_check "no new privileges" test "$(status NoNewPrivs)" = 1
owner=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixUser s org.certkeeper1 | awk '{print $2}')
ck_check "org.certkeeper1 belongs to uid $CK_UID on the bus" test "$owner" = "$CK_UID"

order=$(ck_request unprivileged.example.org www.unprivileged.example.org)
ck_check "root's order is issued by the unprivileged daemon" test "$(ck_wait_order "$order")" = complete
cert=$(ck_order_cert "$order")
ck_ca_pem >"$CK_RUN/ca.pem"
ck_cert_pem "$cert" >"$CK_RUN/leaf.pem"
ck_check "the certificate verifies against the CA" openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/leaf.pem"
ck_check "the journal entry comes from uid $CK_UID, the caller was root" \
        ck_journal_has CERTKEEPER_EVENT=certificate.request_automated.submitted _UID="$CK_UID" CERTKEEPER_CALLER_UID=0

others=$(find "$CK_STATE_DIR" ! -user certkeeper -printf '%p %u\n')
ck_check "everything in the state directory belongs to certkeeper" test -z "$others" || ck_diag "$others"
# The CA certificate and the CRL are public (and still behind the 0700 directory).
open=$(find "$CK_STATE_DIR" -perm /077 ! -path "$CK_STATE_DIR/ca/ca.pem" ! -path "$CK_STATE_DIR/ca/crl.pem" \
        -printf '%p %m\n')
ck_check "nothing but the CA certificate and CRL is open to group or others" test -z "$open" ||
        ck_diag "$open"
ck_check "the state directory stays 0700" test "$(stat -c %a "$CK_STATE_DIR")" = 700
ck_check "ck-user cannot look into the state directory" bash -c "! setpriv --reuid=ck-user --regid=ck-user \
        --init-groups ls '$CK_STATE_DIR' >/dev/null 2>&1"

# No polkitd on this bus: authorization fails closed, reading stays open.
out=$(setpriv --reuid=ck-user --regid=ck-user --init-groups /usr/bin/python3 \
        "$CK_HELPERS/call.py" /org/certkeeper1 org.certkeeper1.Manager RequestCertificate \
        '"nopolkit.example.org", [], {}' --signature 'sasa{sv}' 2>&1)
ck_check "without polkitd a user's RequestCertificate is AccessDenied naming the action" \
        grep -q '^error org.freedesktop.DBus.Error.AccessDenied: .*org.certkeeper1.request' <<<"$out" || ck_diag "$out"
ck_check "... while reading needs no polkit" setpriv --reuid=ck-user --regid=ck-user --init-groups \
        busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCACertificate

# The spool as the unit runs it (issue 17): a submitter's results go to a directory of their own,
# handed over with CAP_CHOWN and written through the group (there is no CAP_DAC_OVERRIDE).
user_uid=$(id -u ck-user)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/spool.key" \
        -subj /CN=spool.unprivileged.example.org -out "$CK_RUN/spool.csr" 2>/dev/null && chmod 0644 "$CK_RUN/spool.csr"
ck_as ck-user bash -c "cat >'$CK_SPOOL_DIR/incoming/spool.csr'" <"$CK_RUN/spool.csr"
ck_wait_for "ck-user's CSR is issued into issued/$user_uid/" 30 test -f "$CK_SPOOL_DIR/issued/$user_uid/spool.csr"
ck_check "issued/$user_uid/ belongs to ck-user, group certkeeper, mode 0770" \
        test "$(stat -c '%U %G %a' "$CK_SPOOL_DIR/issued/$user_uid")" = "ck-user certkeeper 770"
ck_check "the certificate there belongs to ck-user" \
        test "$(stat -c %U "$CK_SPOOL_DIR/issued/$user_uid/spool.crt" "$CK_SPOOL_DIR/issued/$user_uid/spool.chain.pem" |
                sort -u)" = ck-user
ck_check "issued/ itself is not listable (0711)" test "$(stat -c %a "$CK_SPOOL_DIR/issued")" = 711

ck_stop_daemon
ck_start_daemon || ck_bail "certkeeperd did not restart as user certkeeper"
ck_check "after a restart it serves the certificate from its own store" \
        test "$(ck_prop "$cert" org.certkeeper1.Certificate CommonName)" = '"unprivileged.example.org"'
ck_stop_daemon

# The name is free now: only certkeeper (and root) may take it.
own_name() {
        setpriv --reuid="$1" --regid="$1" --init-groups /usr/bin/python3 -I -c '
import dbus
try:
    r = dbus.SystemBus().request_name("org.certkeeper1", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
    print("owned" if r == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER else "reply %d" % r)
except dbus.exceptions.DBusException as e:
    print(e.get_dbus_name())' 2>&1
}
for u in ck-user ck-admin; do
        out=$(own_name $u)
        ck_check "$u cannot own the free name org.certkeeper1" test "$out" = org.freedesktop.DBus.Error.AccessDenied ||
                ck_diag "$out"
done
out=$(own_name certkeeper)
ck_check "user certkeeper may own it" test "$out" = owned || ck_diag "$out"

# A state directory the user cannot use stops the daemon with a message naming it.
chown root:root "$CK_STATE_DIR"
echo "--- start (state directory owned by root)" >>"$CK_DAEMON_LOG"
# shellcheck disable=SC2086 # the wrapper is a command line
timeout 30 $CK_DAEMON_WRAPPER "$CERTKEEPERD" --config "$CK_CONF" </dev/null >"$CK_RUN/denied.log" 2>&1
rc=$?
ck_check "with a state directory owned by root it refuses to start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
ck_check "and says which directory" grep -q "$CK_STATE_DIR" "$CK_RUN/denied.log" || ck_diag_file "$CK_RUN/denied.log"
chown certkeeper:certkeeper "$CK_STATE_DIR"

ck_done
