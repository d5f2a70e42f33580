#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Deployments whose renewal fails at the CA: an external CA helper (certmonger's helper
# protocol, an openssl CA made here) switched between refusing (exit 2), unreachable
# (exit 3), hanging and working. Refused and unreachable renewals leave the deployment
# retrying with a renewal_failed alert, FailedAttempts and NextAttemptAt growing and
# LastError saying why, until the helper works again (active, Revision + 1). A daemon
# killed with SIGKILL while the renewal's helper hangs issues exactly one certificate
# after its restart, not two.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

SCA=$CK_RUN/switch-ca
mkdir -p "$SCA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$SCA/ca.key" -out "$SCA/ca.pem" \
        -days 30 -subj "/CN=switchable test CA" 2>/dev/null || ck_bail "cannot create the test CA"
echo ok >"$SCA/mode"
cat >"$SCA/helper" <<EOF
#!/bin/bash
# certmonger CA-helper protocol; the behaviour is the word in $SCA/mode:
# ok, refuse (2), unreachable (3), hang (until the mode changes).
set -u
dir=$SCA
EOF
cat >>"$SCA/helper" <<'EOF'
case $CERTMONGER_OPERATION in
IDENTIFY) echo "switchable test CA 1.0"; exit 0 ;;
FETCH-ROOTS) echo "switchable test CA"; cat "$dir/ca.pem"; exit 0 ;;
SUBMIT|POLL) ;;
*) exit 6 ;;
esac
echo "$CERTMONGER_OPERATION $(cat "$dir/mode") $$" >>"$dir/calls.log"
while [ "$(cat "$dir/mode")" = hang ]; do
        echo $$ >"$dir/hanging"
        sleep 0.2
done
case $(cat "$dir/mode") in
refuse) echo "request refused by policy (test)"; exit 2 ;;
unreachable) echo "CA offline for maintenance (test)"; exit 3 ;;
esac
csr=$(mktemp "$dir/csr.XXXXXX")
printf '%s\n' "$CERTMONGER_CSR" >"$csr"
/usr/bin/openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 30 -copy_extensions copyall 2>>"$dir/openssl.log"
rc=$?
rm -f "$csr"
echo "issued $$" >>"$dir/calls.log"
exit $rc
EOF
chmod 0755 "$SCA/helper"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live\nProviderRetrySec=1\nProviderMaxAttempts=2\n[Deploy]\nRetryInitialSec=1\n[ExternalCA \"switch\"]\nHelper=$SCA/helper\nTimeout=300"
ck_start_daemon || ck_bail "the daemon does not start"

mode() { echo "$1" >"$SCA/mode"; }
alert_open() {
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
                jq -e --arg k "$1" '[.data[0][] | select(.[1]==$k)] | length >= 1' >/dev/null
}
failed_ge() { [ "$(ck_dprop "$dep" FailedAttempts)" -ge "$1" ]; }
lasterror() { ck_dprop "$dep" LastError | jq -r .; }

dep=$(ck_deploy_create sw common_name s sw.example.test provider s switch)
ck_check "CreateDeployment with provider switch answers an object path" test -n "$dep" -a "$dep" != null
ck_wait_for "the first certificate is deployed (active, Revision 1)" 60 ck_dstate_is "$dep" active
ck_check "Revision 1" ck_drevision_is "$dep" 1
ck_check "the chain verifies against the test CA" openssl verify -CAfile "$SCA/ca.pem" "$live/sw/cert.pem"

# failing MODE REASON-REGEX REV — Renew while the helper fails with MODE, then let it work.
failing() {
        local m=$1 why=$2 rev=$3 n1 n2 t1 t2 count
        count=$(ck_cert_count)
        mode "$m"
        ck_check "$m: Renew is accepted" ck_busctl "$dep" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0
        ck_wait_for "$m: the deployment is retrying" 60 ck_dstate_is "$dep" retrying
        ck_wait_for "$m: FailedAttempts reaches 1" 60 failed_ge 1
        n1=$(ck_dprop "$dep" FailedAttempts); t1=$(ck_dprop "$dep" NextAttemptAt)
        ck_check "$m: a renewal_failed alert is open (ListAlerts)" alert_open renewal_failed
        ck_check "$m: LastError says why ($why)" sh -c "echo \"\$1\" | grep -Eqi \"\$2\"" _ "$(lasterror)" "$why"
        ck_check "$m: NextAttemptAt is set" test "$t1" -gt 0
        ck_wait_for "$m: FailedAttempts grows (another attempt failed)" 90 failed_ge $((n1 + 1))
        n2=$(ck_dprop "$dep" FailedAttempts); t2=$(ck_dprop "$dep" NextAttemptAt)
        ck_check "$m: NextAttemptAt grows between attempts ($t1 -> $t2)" test "$t2" -gt "$t1"
        ck_check "$m: still retrying, still no new certificate" \
                sh -c "[ \"\$1\" = retrying ] && [ \"\$2\" = \"\$3\" ]" _ "$(ck_dstate "$dep")" "$(ck_cert_count)" "$count"
        ck_check "$m: Revision unchanged while failing" ck_drevision_is "$dep" $((rev))
        mode ok
        ck_wait_for "$m: once the helper works, the deployment is active" 120 ck_dstate_is "$dep" active
        ck_check "$m: Revision $((rev + 1))" ck_drevision_is "$dep" $((rev + 1))
        ck_check "$m: exactly one certificate more" test "$(ck_cert_count)" = $((count + 1))
        ck_check "$m: FailedAttempts back to 0, LastError empty" \
                test "$(ck_dprop "$dep" FailedAttempts)/$(ck_dprop "$dep" LastError)" = '0/""'
        ck_check "$m: the key matches the new certificate" ck_key_matches "$live/sw"
        ck_diag "$m: attempts $n1 -> $n2, NextAttemptAt $t1 -> $t2"
}
failing refuse 'refused|rejected' 1
failing unreachable 'unreachable|offline' 2

# kill -9 while the renewal's helper hangs: after the restart exactly one new certificate.
count=$(ck_cert_count)
rm -f "$SCA/hanging"
mode hang
ck_check "hang: Renew is accepted" ck_busctl "$dep" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0
ck_wait_for "hang: the helper is running and hangs" 60 test -s "$SCA/hanging"
ck_kill9_daemon
ck_start_daemon || ck_bail "the daemon does not start after kill -9"
mode ok
ck_wait_for "hang: after the restart and the helper's release, Revision 4" 120 ck_drevision_is "$dep" 4
ck_wait_for "hang: ... active" 60 ck_dstate_is "$dep" active
ck_check "hang: the key matches the certificate" ck_key_matches "$live/sw"
# Let anything duplicated show itself: wait until no helper of ours still runs.
# (A function, not sh -c: pgrep -f would find the sh whose command line holds the pattern.)
no_helper() { command -v pgrep >/dev/null && ! pgrep -f "$SCA/helper" >/dev/null; }
ck_wait_for "hang: no helper is left running" 60 no_helper
ck_check "hang: exactly ONE new certificate (CertificateCount +1)" test "$(ck_cert_count)" = $((count + 1))
ck_check "hang: Revision stays 4" ck_drevision_is "$dep" 4
ck_diag_file "$SCA/calls.log"

ck_done
