#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Deployments on the Local PKI: the files with their owners and modes, the key matching
# the certificate and the chain verifying (openssl), Renew (new serial, Revision 2, the old
# certificate kept, Exec with exactly its variables), rotate_key=false keeping the key, a
# failing Exec (deploy_failed, retried without a new certificate), pause/resume, delete
# with its files, a restart keeping the schedule, bad specs refused with nothing created,
# and symlinks planted in and above the directory never followed.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live\n[Deploy]\nRetryInitialSec=1"
ck_start_daemon || ck_bail "the daemon does not start"

# An Exec that records its environment, one file per serial.
envdir=$CK_RUN/env
mkdir -p "$envdir"
hook=$CK_RUN/hook.sh
cat >"$hook" <<'EOF'
#!/bin/sh
# $1: where to write; fails while $1/fail exists.
[ -e "$1/fail" ] && { echo "hook refuses: $1/fail exists" >&2; exit 1; }
env | sort >"$1/env-$CERTKEEPER_SERIAL"
EOF
chmod 0755 "$hook"

www=$(ck_deploy_create www common_name s www.example.test subject_alt_names as 1 alt.example.test \
        owner s ck-user exec as 2 "$hook" "$envdir")
ck_check "CreateDeployment answers an object path" test -n "$www" -a "$www" != null
ck_wait_for "the first certificate is deployed (active)" 60 ck_dstate_is "$www" active
dir=$live/www
ck_check "Directory defaults to DeployDirectory/NAME" \
        test "$(ck_dprop "$www" Directory | tr -d '"')" = "$dir"
ck_check "privkey.pem is ck-user's, mode 0600" \
        test "$(stat -L -c '%U %a' "$dir/privkey.pem")" = "ck-user 600"
ck_check "cert.pem, chain.pem, fullchain.pem are 0644" \
        test "$(stat -L -c '%a' "$dir/cert.pem" "$dir/chain.pem" "$dir/fullchain.pem" | sort -u)" = 644
ck_check "combined.pem has the key's mode" test "$(stat -L -c '%a' "$dir/combined.pem")" = 600
ck_check "the key matches the certificate (openssl)" ck_key_matches "$dir"
ck_check "the chain verifies the certificate (openssl verify)" \
        openssl verify -CAfile "$dir/chain.pem" "$dir/cert.pem"
ck_check "fullchain.pem is cert.pem then chain.pem" \
        cmp -s "$dir/fullchain.pem" <(cat "$dir/cert.pem" "$dir/chain.pem")
ck_check "the certificate names www.example.test and alt.example.test" \
        sh -c "openssl x509 -in '$dir/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:alt.example.test'"
ck_check "Revision is 1" ck_drevision_is "$www" 1
ck_check "the files are symlinks into current/, current a revision directory" \
        test "$(readlink "$dir/cert.pem")" = current/cert.pem -a -d "$dir/current"
cert1=$(ck_dprop "$www" Certificate | tr -d '"')
serial1=$(ck_serial_of "$dir/cert.pem")
ck_check "Certificate is the deployed certificate" \
        test "$(ck_prop "$cert1" org.certkeeper1.Certificate SerialNumber | tr -d '"' | tr -d ':' | tr a-f A-F)" = \
        "$(echo "$serial1" | tr a-f A-F)"
ck_check "certkeeperctl show marks the certificate as kept by deployment www" \
        sh -c "'$CERTKEEPERCTL' show '$cert1' | grep -Eq '^ *Deployment:? +www\$'"
ck_check "... and --json has it" \
        sh -c "'$CERTKEEPERCTL' --json=short show '$cert1' | jq -e '.deployment_name == \"www\" and (.deployment | startswith(\"/org/certkeeper1/deployment/\"))'"
ck_check "Certificate.Deployment is the deployment's object" \
        test "$(ck_prop "$cert1" org.certkeeper1.Certificate Deployment | tr -d '"')" = "$www"
ck_check "NextRenewalAt is set" test "$(ck_dprop "$www" NextRenewalAt)" -gt 0
ck_check "ListDeployments lists it, active" \
        sh -c "ck() { busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager \
                ListDeployments 'a{sv}' 0; }; ck | jq -e '.data[0][] | select(.[1]==\"www\" and .[3]==\"active\")'"
ck_check "GetDeploymentByName finds it" \
        test "$(ck_busctl "${CK_MGR[@]}" GetDeploymentByName s www | jq -r '.data[0]')" = "$www"
ck_check "the journal has certificate.deployment.created for www" \
        ck_journal_has CERTKEEPER_EVENT=certificate.deployment.created CERTKEEPER_DEPLOYMENT=www
ck_check "the journal has certificate.deployed for www" \
        ck_journal_has CERTKEEPER_EVENT=certificate.deployed CERTKEEPER_DEPLOYMENT=www

# Renew: a new serial, Revision 2, the previous certificate stays.
count_before=$(ck_cert_count)
order=$(ck_busctl "$www" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0 | jq -r '.data[0]')
ck_check "Renew answers an order" test -n "$order" -a "$order" != null
ck_check "the renewal's Channel is renewal, its Deployment the deployment" \
        test "$(ck_prop "$order" org.certkeeper1.Order Channel | tr -d '"')" = renewal
ck_wait_for "the renewal is deployed (Revision 2)" 60 ck_drevision_is "$www" 2
ck_wait_for "... and the deployment is active again" 30 ck_dstate_is "$www" active
serial2=$(ck_serial_of "$dir/cert.pem")
ck_check "the new certificate has a new serial" test "$serial1" != "$serial2"
ck_check "the key matches the new certificate" ck_key_matches "$dir"
ck_check "a new key (rotate_key defaults to true)" \
        test "$(openssl pkey -in "$dir/current/privkey.pem" -pubout | sha256sum)" != \
        "$(openssl x509 -in "$envdir/../live/www/.rev-1/cert.pem" -noout -pubkey 2>/dev/null | sha256sum)"
ck_check "the previous certificate is still in the inventory" \
        test "$(ck_prop "$cert1" org.certkeeper1.Certificate Status | tr -d '"')" = active
ck_check "one certificate more in the inventory" test "$(ck_cert_count)" = $((count_before + 1))

# The Exec saw exactly its variables.
env2=$envdir/env-$(ck_prop "$(ck_dprop "$www" Certificate | tr -d '"')" org.certkeeper1.Certificate SerialNumber | tr -d '"')
[ -e "$env2" ] || env2=$(ls -t "$envdir"/env-* | head -n 1)
ck_check "Exec ran for the renewal" test -s "$env2"
ck_check "CERTKEEPER_DEPLOYMENT=www" grep -qx 'CERTKEEPER_DEPLOYMENT=www' "$env2"
ck_check "CERTKEEPER_DIRECTORY is the directory" grep -qx "CERTKEEPER_DIRECTORY=$dir" "$env2"
ck_check "CERTKEEPER_CERTIFICATE is the new certificate's object" \
        grep -qx "CERTKEEPER_CERTIFICATE=$(ck_dprop "$www" Certificate | tr -d '"')" "$env2"
ck_check "CERTKEEPER_PREVIOUS_SERIAL is the first certificate's serial" \
        sh -c "grep '^CERTKEEPER_PREVIOUS_SERIAL=' '$env2' | tr -d ':' | tr a-f A-F | grep -qx 'CERTKEEPER_PREVIOUS_SERIAL=$(echo "$serial1" | tr a-f A-F)'"
ck_check "CERTKEEPER_FINGERPRINT is the certificate's SHA-256" \
        grep -qx "CERTKEEPER_FINGERPRINT=$(ck_prop "$(ck_dprop "$www" Certificate | tr -d '"')" org.certkeeper1.Certificate FingerprintSHA256 | tr -d '"')" "$env2"
ck_check "CERTKEEPER_NOT_AFTER is its notAfter in seconds" \
        grep -qx "CERTKEEPER_NOT_AFTER=$(date -d "$(openssl x509 -in "$dir/cert.pem" -noout -enddate | cut -d= -f2)" +%s)" "$env2"
ck_check "PATH and LANG as DESIGN.md says" \
        sh -c "grep -qx 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' '$env2' && grep -qx 'LANG=C.UTF-8' '$env2'"
ck_check "nothing of the daemon's environment leaks into Exec" \
        sh -c "! grep -E '^(DBUS_SYSTEM_BUS_ADDRESS|CK_RUN|HOME|USER)=' '$env2'"
ck_check "the first Exec had an empty CERTKEEPER_PREVIOUS_SERIAL" \
        grep -qx 'CERTKEEPER_PREVIOUS_SERIAL=' "$envdir/env-$(ck_prop "$cert1" org.certkeeper1.Certificate SerialNumber | tr -d '"')"

# rotate_key=false keeps the key.
keep=$(ck_deploy_create keep common_name s keep.example.test rotate_key b false)
ck_wait_for "rotate_key=false: deployed" 60 ck_dstate_is "$keep" active
k1=$(openssl pkey -in "$live/keep/privkey.pem" -pubout | sha256sum)
ck_busctl "$keep" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0 >/dev/null
ck_wait_for "rotate_key=false: renewed" 60 ck_drevision_is "$keep" 2
ck_check "rotate_key=false: the same key after the renewal" \
        test "$(openssl pkey -in "$live/keep/privkey.pem" -pubout | sha256sum)" = "$k1"
ck_check "rotate_key=false: and it matches the new certificate" ck_key_matches "$live/keep"
ck_check "Renew(rotate_key=true) overrides it for once" \
        ck_busctl "$keep" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 1 rotate_key b true
ck_wait_for "... renewed" 60 ck_drevision_is "$keep" 3
ck_check "... with a new key" test "$(openssl pkey -in "$live/keep/privkey.pem" -pubout | sha256sum)" != "$k1"

# A failing Exec: deploy_failed, retried without a new certificate.
touch "$envdir/fail"
cert_before=$(ck_dprop "$www" Certificate)
ck_check "Redeploy is accepted" ck_busctl "$www" "$CK_DEPLOY_IFACE" Redeploy
ck_wait_for "a failing Exec: the deployment is retrying" 30 ck_dstate_is "$www" retrying
ck_check "LastError says the Exec exited with status 1, with its stderr" \
        sh -c "ck_dprop() { busctl --system --json=short get-property org.certkeeper1 '$www' $CK_DEPLOY_IFACE LastError | jq -r .data; }; \
               ck_dprop | grep -q 'exited with status 1' && ck_dprop | grep -q 'hook refuses'"
ck_check "FailedAttempts counts" test "$(ck_dprop "$www" FailedAttempts)" -ge 1
ck_check "NextAttemptAt is in the future of the failure" test "$(ck_dprop "$www" NextAttemptAt)" -gt 0
ck_check "a deploy_failed alert is open" \
        sh -c "busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
               jq -e '[.data[0][] | select(.[1]==\"deploy_failed\")] | length == 1'"
ck_check "the journal has certificate.deploy_failed" ck_journal_has CERTKEEPER_EVENT=certificate.deploy_failed
rm -f "$envdir/fail"
ck_wait_for "once the Exec works, the retry succeeds (active)" 60 ck_dstate_is "$www" active
ck_check "... with the same certificate (no new order)" test "$(ck_dprop "$www" Certificate)" = "$cert_before"
ck_check "... Revision unchanged" ck_drevision_is "$www" 2
ck_check "... FailedAttempts back to 0, LastError empty" \
        test "$(ck_dprop "$www" FailedAttempts)/$(ck_dprop "$www" LastError)" = '0/""'

# Pause and resume.
ck_check "Pause" ck_busctl "$www" "$CK_DEPLOY_IFACE" Pause
ck_check "State is paused" ck_dstate_is "$www" paused
ck_check_fails "Renew is refused while paused" ck_busctl "$www" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0
ck_check "Resume" ck_busctl "$www" "$CK_DEPLOY_IFACE" Resume
ck_wait_for "State is active again" 10 ck_dstate_is "$www" active

# Bad specs: InvalidArgument, nothing created.
n_before=$(ck_busctl "${CK_MGR[@]}" ListDeployments 'a{sv}' 0 | jq '.data[0] | length')
mkdir -p -m 0777 "$CK_RUN/open"
chmod 0777 "$CK_RUN/open"
bad() {
        local desc=$1 name=$2 spec=$3
        ck_check "bad spec ($desc): InvalidArgument" \
                test "$(ck_call_error /org/certkeeper1 org.certkeeper1.Manager CreateDeployment "\"$name\", $spec" \
                        --signature 'sa{sv}')" = org.certkeeper1.Error.InvalidArgument
}
bad "relative directory" rel '{"common_name": "rel.example.test", "directory": "relative/dir"}'
bad "world-writable directory" open "{\"common_name\": \"open.example.test\", \"directory\": \"$CK_RUN/open\"}"
bad "key mode 0644" mode '{"common_name": "mode.example.test", "key_mode": dbus.UInt32(0o644)}'
bad "unknown owner" owner '{"common_name": "owner.example.test", "owner": "no-such-user-here"}'
bad "bad name" 'Bad/Name' '{"common_name": "bad.example.test"}'
bad "renew_before_days not below the lifetime" rb \
        '{"common_name": "rb.example.test", "validity_days": dbus.UInt32(30), "renew_before_days": dbus.UInt32(30)}'
bad "unknown key" unk '{"common_name": "unk.example.test", "colour": "blue"}'
bad "a name that is not a DNS name" dns '{"common_name": "not a host"}'
bad "no common name" nocn '{"directory": "/tmp/x"}'
ck_check "nothing was created by the bad specs" \
        test "$(ck_busctl "${CK_MGR[@]}" ListDeployments 'a{sv}' 0 | jq '.data[0] | length')" = "$n_before"
ck_check "nothing was written into the world-writable directory" test -z "$(ls -A "$CK_RUN/open")"
ck_check "a taken name: Error.Exists" \
        test "$(ck_call_error /org/certkeeper1 org.certkeeper1.Manager CreateDeployment \
                '"www", {"common_name": "x.example.test"}' --signature 'sa{sv}')" = org.certkeeper1.Error.Exists

# Symlinks: one planted above the directory is refused, one inside it is replaced, not followed.
mkdir -p "$CK_RUN/target"
ln -s "$CK_RUN/target" "$live/evil"
bad "a symlink in the directory's path" evil "{\"common_name\": \"evil.example.test\", \"directory\": \"$live/evil/www\"}"
ck_check "nothing was written through the symlink" test -z "$(ls -A "$CK_RUN/target")"
mkdir -p -m 0755 "$live/planted"
echo victim >"$CK_RUN/victim"
ln -s "$CK_RUN/victim" "$live/planted/privkey.pem"
planted=$(ck_deploy_create planted common_name s planted.example.test)
ck_wait_for "a planted privkey.pem symlink: deployed anyway" 60 ck_dstate_is "$planted" active
ck_check "the file the planted link pointed at is untouched" test "$(cat "$CK_RUN/victim")" = victim
ck_check "privkey.pem is now ours (current/privkey.pem)" test "$(readlink "$live/planted/privkey.pem")" = current/privkey.pem

# A restart keeps the schedule (the jitter is stored) and the state.
next_before=$(ck_dprop "$www" NextRenewalAt)
ck_stop_daemon
ck_start_daemon || ck_bail "the daemon does not start again"
ck_check "after a restart: still active" ck_dstate_is "$www" active
ck_check "after a restart: the same NextRenewalAt" test "$(ck_dprop "$www" NextRenewalAt)" = "$next_before"
ck_check "after a restart: Revision kept" ck_drevision_is "$www" 2

# Delete with remove_files.
certs_before=$(ck_cert_count)
ck_check "Delete(remove_files) of a D-Bus deployment" ck_busctl "$planted" "$CK_DEPLOY_IFACE" Delete 'a{sv}' 1 remove_files b true
ck_check "its object is gone" \
        test "$(ck_call_error /org/certkeeper1 org.certkeeper1.Manager GetDeploymentByName '"planted"')" = \
        org.certkeeper1.Error.NotFound
ck_check "its files are gone" test ! -e "$live/planted/privkey.pem" -a ! -e "$live/planted/current"
ck_check "its certificates stay in the inventory" test "$(ck_cert_count)" = "$certs_before"
ck_check "Delete without remove_files keeps the files" ck_busctl "$keep" "$CK_DEPLOY_IFACE" Delete 'a{sv}' 0
ck_check "... the files of keep are still there" ck_key_matches "$live/keep"

ck_done
