#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The EXAMPLE of certkeeper.conf(5), as printed there, is accepted by the real
# daemon, its drop-in overrides the main file, and the policy it sets is the
# one GetPolicy reports.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

page=$CK_SOURCE_ROOT/man/certkeeper.conf.5
ck_write_config
# The example's .EX blocks in order: the main file, then the drop-in.
examples() {
        sed -n '/^\.SH EXAMPLE/,/^\.SH /p' "$page" | awk -v want="$1" '
                /^\.EX/ { n++; on = (n == want); next }
                /^\.EE/ { on = 0 }
                on' | sed 's/\\-/-/g'
}
conf=$CK_RUN/example.conf
{ examples 1; cat "$CK_CONF"; } >"$conf"
mkdir -p "$conf.d"
examples 2 >"$conf.d/50-policy.conf"
ck_check "the man page has the example and a drop-in" \
        bash -c "grep -q '^\[Policy\]' '$conf' && grep -q '^MaxValidityDaysEnforcement=hard' '$conf.d/50-policy.conf'"
CK_CONF=$conf
ck_start_daemon || ck_bail "certkeeperd does not accept the example of certkeeper.conf(5)"
ck_ok "certkeeperd starts with the example configuration"
policy=$(ck_busctl "${CK_MGR[@]}" GetPolicy | jq -c '.data[0] | map_values(.data)')
ck_check "GetPolicy has the example's rules" jq -e '.AllowedDomains == ["example.com","*.example.com","*.corp.example.com"]
        and .AllowWildcards == false and .MinRSABits == 3072 and .MaxValidityDays == 397
        and .AllowedKeyAlgorithms == ["rsa-3072","rsa-4096","ec-256","ec-384"]
        and .AllowedNetworks == ["10.20.0.0/16","2001:db8:20::/48"] and .AllowedNetworksConfigured
        and .AllowedURIPrefixes == ["spiffe://example.com/ns/prod/"] and .AllowedURIPrefixesEnforcement == "hard"' <<<"$policy"
ck_check "the drop-in overrides MaxValidityDaysEnforcement" jq -e '.MaxValidityDaysEnforcement == "hard"' <<<"$policy"
ck_ca_pem >"$CK_RUN/ca.pem"
ck_check "the Local CA has the example's subject, as openssl -nameopt RFC2253 prints it" \
        bash -c "openssl x509 -in '$CK_RUN/ca.pem' -noout -subject -nameopt RFC2253 | grep -qx 'subject=CN=Example Internal CA,O=Example Ltd,C=DE'"
ck_stop_daemon

# A bad value stops the daemon with the file, the key and what was expected.
printf '[LocalCA]\nKeyAlgorithm=rsa-1000\n' >"$conf.d/60-bad.conf"
: >"$CK_DAEMON_LOG"
CK_DAEMON_START_TIMEOUT=10 ck_start_daemon 2>/dev/null
ck_check "a bad value: certkeeperd does not start" test -z "$CK_DAEMON_PID"
ck_check "and says where and what, as certkeeper.conf(5) shows" \
        grep -q "$conf.d/60-bad.conf: \[LocalCA\] KeyAlgorithm=rsa-1000: expected one of rsa-2048" "$CK_DAEMON_LOG"
ck_done
