#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issuance policy over the bus: a hard rule fails the order with the rule named,
# an alert and a journal entry; a soft rule lets it through with a warning.
# Failed orders can be resubmitted; alerts can be acknowledged.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config "[Policy]
AllowedDomains=*.example.com example.com
AllowWildcards=false
MaxValidityDays=30
MaxValidityDaysEnforcement=soft
MinRSABits=3072"
ck_start_daemon || ck_bail "certkeeperd did not start"
CALL=(/usr/bin/python3 "$CK_HELPERS/call.py")

ck_check "GetPolicy shows the configured rules" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetPolicy |
        jq -e '.data[0] | .AllowedDomains.data == [\"*.example.com\",\"example.com\"] and .AllowWildcards.data == false
                and .MaxValidityDays.data == 30 and .MaxValidityDaysEnforcement.data == \"soft\"
                and .MinRSABits.data == 3072 and .AllowedDomainsEnforcement.data == \"hard\"'"

# Watch AlertRaised while the hard failure happens.
busctl --system monitor --json=short --match "type='signal',interface='org.certkeeper1.Manager',member='AlertRaised'" \
        --match "type='method_call',interface='org.freedesktop.DBus.Peer',member='Ping'" \
        >"$CK_RUN/alerts.json" 2>/dev/null &
mon=$!
# The monitor is live once it sees a call we make (the refusal below takes a millisecond).
ck_poll 10 bash -c "busctl --system call org.certkeeper1 /org/certkeeper1 org.freedesktop.DBus.Peer Ping >/dev/null &&
        grep -q Ping '$CK_RUN/alerts.json'"

order=$(ck_request www.evil.org)
ck_check "a name outside AllowedDomains: the order fails" test "$(ck_wait_order "$order")" = failed
ck_check "its Error names the rule and the value" \
        bash -c "ck_prop() { busctl --system --json=short get-property org.certkeeper1 \$1 org.certkeeper1.Order \$2 | jq -r .data; }; ck_prop '$order' Error | grep 'AllowedDomains' | grep -q 'www.evil.org'"
alert_listed() {
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 0 |
                jq -e --arg o "$order" '.data[0] | any(.[]; .[1] == "order_failed" and .[3] == $o and (.[2] | test("AllowedDomains")))' >/dev/null
}
ck_wait_for "an order_failed alert points at the order" 10 alert_listed
ck_wait_for "AlertRaised was emitted" 10 grep -q order_failed "$CK_RUN/alerts.json"
kill $mon 2>/dev/null
ck_wait_for "the journal has certificate.policy_hard_fail with CERTKEEPER_POLICY=AllowedDomains" 10 \
        ck_journal_has CERTKEEPER_EVENT=certificate.policy_hard_fail CERTKEEPER_POLICY=AllowedDomains
ck_wait_for "and certificate.order_failed" 10 ck_journal_has CERTKEEPER_EVENT=certificate.order_failed
ck_check "no certificate was issued" test "$(ck_cert_count)" = 0

order=$(ck_request '*.example.com')
ck_check "a wildcard with AllowWildcards=false fails" test "$(ck_wait_order "$order")" = failed
ck_check "naming AllowWildcards" bash -c "busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error | jq -r .data | grep -q AllowWildcards"

order=$(ck_request www.example.com -- key_algorithm s rsa-2048)
ck_check "a 2048-bit RSA key under MinRSABits=3072 fails" test "$(ck_wait_order "$order")" = failed

order=$(ck_request www.example.com -- validity_days u 60)
ck_check "MaxValidityDays is soft: the order completes" test "$(ck_wait_order "$order")" = complete
ck_check "as requested: 60 days" bash -c "
        cert=\$(busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Certificate | jq -r .data)
        busctl --system --json=short call org.certkeeper1 \$cert org.certkeeper1.Certificate DownloadPEM 'a{sv}' 0 | jq -r '.data[0]' > '$CK_RUN/soft.pem'
        nb=\$(date -d \"\$(openssl x509 -in '$CK_RUN/soft.pem' -noout -startdate | cut -d= -f2)\" +%s)
        na=\$(date -d \"\$(openssl x509 -in '$CK_RUN/soft.pem' -noout -enddate | cut -d= -f2)\" +%s)
        [ \$((na - nb)) = \$((60 * 86400 + 300)) ]"
ck_check "PolicyWarnings explains the soft violation" \
        bash -c "busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order PolicyWarnings | jq -e '.data | length == 1 and (.[0] | test(\"MaxValidityDays\") and test(\"60\"))'"
ck_wait_for "the journal has certificate.policy_soft_fail for MaxValidityDays" 10 \
        ck_journal_has CERTKEEPER_EVENT=certificate.policy_soft_fail CERTKEEPER_POLICY=MaxValidityDays

# Resubmit.
failed=$(ck_busctl "${CK_MGR[@]}" ListOrders 'a{sv}' 1 status s failed | jq -r '.data[0][0][0]')
out=$("${CALL[@]}" "$order" org.certkeeper1.Order Resubmit '')
ck_check "Resubmit of a complete order is refused with NotFailed" \
        bash -c "[[ '$out' == 'error org.certkeeper1.Error.NotFailed'* ]]"
new=$(ck_busctl "$failed" org.certkeeper1.Order Resubmit | jq -r '.data[0]')
ck_check "Resubmit of a failed order makes a new order" test "$new" != "$failed"
ck_check "with the same parameters" test "$(ck_prop "$new" org.certkeeper1.Order Parameters)" = "$(ck_prop "$failed" org.certkeeper1.Order Parameters)"
ck_check "which fails again for the same reason" test "$(ck_wait_order "$new")" = failed

# Alerts: acknowledge one, it leaves the open list but stays in the full one.
first=$(ck_busctl "${CK_MGR[@]}" ListAlerts 'a{sv}' 0 | jq '.data[0][0][0]')
open_before=$(ck_busctl "${CK_MGR[@]}" ListAlerts 'a{sv}' 0 | jq '.data[0] | length')
ck_check "AcknowledgeAlert succeeds" ck_busctl "${CK_MGR[@]}" AcknowledgeAlert t "$first"
ck_check "the acknowledged alert is no longer listed" \
        test "$(ck_busctl "${CK_MGR[@]}" ListAlerts 'a{sv}' 0 | jq '.data[0] | length')" = $((open_before - 1))
ck_check "include_acknowledged shows it, acknowledged" \
        bash -c "busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAlerts 'a{sv}' 1 include_acknowledged b true | jq -e '.data[0] | any(.[]; .[0] == $first and .[5] == true)'"
ck_done
