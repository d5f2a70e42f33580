#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Deployments on real CAs: provider acme (the harness's pebble) and the cfssl external CA
# (certkeeper-cfssl-submit against the harness's cfssl). Each one is deployed, its key
# matches, its chain verifies against the CA's root, and Renew gives Revision 2 with a new
# serial and a new key that matches again.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

CFSSL_SUBMIT=$CK_STAGE_BIN/certkeeper-cfssl-submit
[ -x "$CFSSL_SUBMIT" ] || ck_skip_all "$CFSSL_SUBMIT is not built"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live\nProviderRetrySec=1\nProviderMaxAttempts=4\n[Deploy]\nRetryInitialSec=1
[ACME]\nDirectoryURL=$CK_PEBBLE_DIR_URL\nCABundle=$CK_PEBBLE_CA\nEmail=admin@example.test\nHTTPChallengePort=5002
[ExternalCA \"cfssl\"]\nHelper=$CFSSL_SUBMIT $CK_CFSSL_URL"
ck_start_daemon || ck_bail "the daemon does not start"

# one LABEL PROVIDER CN VERIFY-CMD... — deploy, check, renew, check.
one() {
        local label=$1 provider=$2 cn=$3; shift 3
        local dep dir s1 s2 k1
        dep=$(ck_deploy_create "$label" common_name s "$cn" provider s "$provider")
        ck_check "$label: CreateDeployment with provider $provider" test -n "$dep" -a "$dep" != null
        if ! ck_wait_for "$label: deployed (active)" 120 ck_dstate_is "$dep" active; then
                ck_diag "$label: State $(ck_dstate "$dep"), LastError $(ck_dprop "$dep" LastError)"
                return 1
        fi
        dir=$live/$label
        ck_check "$label: Revision 1" ck_drevision_is "$dep" 1
        ck_check "$label: the key matches the certificate" ck_key_matches "$dir"
        ck_check "$label: the chain verifies against the CA's root" "$@" "$dir"
        ck_check "$label: the certificate's Provider is $provider" \
                test "$(ck_prop "$(ck_dprop "$dep" Certificate | jq -r .)" org.certkeeper1.Certificate Provider | jq -r .)" = "$provider"
        ck_check "$label: the certificate names $cn" \
                sh -c "openssl x509 -in '$dir/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:$cn'"
        s1=$(ck_serial_of "$dir/cert.pem")
        k1=$(openssl pkey -in "$dir/privkey.pem" -pubout | sha256sum)
        ck_check "$label: Renew is accepted" ck_busctl "$dep" "$CK_DEPLOY_IFACE" Renew 'a{sv}' 0
        if ! ck_wait_for "$label: renewed (Revision 2)" 120 ck_drevision_is "$dep" 2; then
                ck_diag "$label: State $(ck_dstate "$dep"), LastError $(ck_dprop "$dep" LastError)"
                return 1
        fi
        ck_wait_for "$label: active again" 30 ck_dstate_is "$dep" active
        s2=$(ck_serial_of "$dir/cert.pem")
        ck_check "$label: a new serial ($s1 -> $s2)" test -n "$s2" -a "$s1" != "$s2"
        ck_check "$label: a new key" test "$(openssl pkey -in "$dir/privkey.pem" -pubout | sha256sum)" != "$k1"
        ck_check "$label: the new key matches the new certificate" ck_key_matches "$dir"
        ck_check "$label: the renewed chain verifies against the CA's root" "$@" "$dir"
}

verify_pebble() { openssl verify -CAfile "$CK_PEBBLE_ROOT" -untrusted "$1/chain.pem" "$1/cert.pem"; }
verify_cfssl() {
        if [ -s "$1/chain.pem" ]; then
                openssl verify -CAfile "$CK_CFSSL_CA" -untrusted "$1/chain.pem" "$1/cert.pem"
        else
                openssl verify -CAfile "$CK_CFSSL_CA" "$1/cert.pem"
        fi
}

one acme acme acme.example.test verify_pebble
one cfssl cfssl cfssl.example.test verify_cfssl

ck_done
