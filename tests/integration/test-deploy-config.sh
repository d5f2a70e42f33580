#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Deployments declared in deployments.d/ (beside --config FILE): read at start, again on
# SIGHUP and on ReloadDeployments(); Delete refused with ReadOnly; a broken file refused
# with a message naming file, key and value while the others keep working; a removed file
# ends its deployment; a changed file is applied.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live"
dd=$(dirname "$CK_CONF")/deployments.d
mkdir -p "$dd"
cat >"$dd/web.conf" <<EOF
[Deployment]
CommonName=web.example.test
SubjectAlternativeNames=www.web.example.test
KeyMode=0640
Group=certkeeper-submit
EOF
ck_start_daemon || ck_bail "the daemon does not start"

web() { ck_busctl "${CK_MGR[@]}" GetDeploymentByName s "$1" 2>/dev/null | jq -r '.data[0]'; }
exists() { [ -n "$(web "$1")" ]; }

ck_wait_for "a file in deployments.d/ is a deployment at start" 10 exists web
w=$(web web)
ck_check "its Origin is config" test "$(ck_dprop "$w" Origin | tr -d '"')" = config
ck_wait_for "it is deployed" 60 ck_dstate_is "$w" active
ck_check "KeyMode=0640 and Group= from the file" \
        test "$(stat -L -c '%a %G' "$live/web/privkey.pem")" = "640 certkeeper-submit"
ck_check "Delete is refused: ReadOnly" \
        test "$(ck_call_error "$w" org.certkeeper1.Deployment Delete '{}' --signature 'a{sv}')" = \
        org.certkeeper1.Error.ReadOnly

# A new file and a broken one, then SIGHUP.
cat >"$dd/api.conf" <<EOF
[Deployment]
CommonName=api.example.test
EOF
cat >"$dd/broken.conf" <<EOF
[Deployment]
CommonName=broken.example.test
KeyMode=0644
EOF
kill -HUP "$CK_DAEMON_PID"
ck_wait_for "SIGHUP: the new file becomes a deployment" 10 exists api
ck_wait_for "... and is deployed" 60 ck_dstate_is "$(web api)" active
ck_check "the broken file is refused" test -z "$(web broken)"
ck_check "the log names the file, the key and the value" \
        grep -q "broken.conf: \[Deployment\] KeyMode='0644'" "$CK_DAEMON_LOG"
ck_check "the others keep working" ck_dstate_is "$w" active

# ReloadDeployments() says which file was refused.
ck_check "ReloadDeployments() answers InvalidArgument naming the broken file" \
        sh -c "/usr/bin/python3 '$CK_SOURCE_ROOT/tests/integration/call.py' /org/certkeeper1 org.certkeeper1.Manager ReloadDeployments | grep -q 'InvalidArgument.*broken.conf'"

# Changing a file is applied; removing one ends its deployment, its files stay.
sed -i 's/^KeyMode=0640$/KeyMode=0600/' "$dd/web.conf"
rm -f "$dd/broken.conf" "$dd/api.conf"
ck_check "ReloadDeployments() with good files" ck_busctl "${CK_MGR[@]}" ReloadDeployments
ck_wait_for "a changed KeyMode= is written again" 30 \
        sh -c "test \"\$(stat -L -c '%a' '$live/web/privkey.pem')\" = 600"
ck_check "a removed file ends its deployment" test -z "$(web api)"
ck_check "... and its files stay" ck_key_matches "$live/api"
ck_check "the journal has certificate.deployment.deleted for api" \
        ck_journal_has CERTKEEPER_EVENT=certificate.deployment.deleted CERTKEEPER_DEPLOYMENT=api

# A D-Bus deployment's name cannot be taken by a file.
dbusdep=$(ck_deploy_create taken common_name s taken.example.test)
printf '[Deployment]\nCommonName=other.example.test\n' >"$dd/taken.conf"
kill -HUP "$CK_DAEMON_PID"
ck_wait_for "a file named like a D-Bus deployment is refused, saying so" 10 \
        grep -q "taken.conf: a deployment named 'taken' was created over D-Bus" "$CK_DAEMON_LOG"
ck_check "... the D-Bus deployment is unchanged" \
        test "$(ck_dprop "$dbusdep" CommonName | tr -d '"')" = taken.example.test

# A restart reads the files again and keeps the deployments as they were.
rev=$(ck_dprop "$w" Revision)
ck_stop_daemon
ck_start_daemon || ck_bail "the daemon does not start again"
ck_check "after a restart: the file's deployment is still there, same Revision" \
        test "$(ck_dprop "$(web web)" Revision)" = "$rev"

ck_done
