#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Scheduled renewal with the test clock (CERTKEEPER_TEST_NOW_USEC): NextRenewalAt is 2/3 of
# the lifetime (1/2 at 10 days or less, or RenewBeforeDays before notAfter) minus a jitter of
# at most 1/20 of the lifetime; it is stable across a restart; restarting the daemon with its
# clock past NextRenewalAt renews on the timer, without any call.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live"
ck_start_daemon || ck_bail "the daemon does not start"

DAY=86400000000
# in_bounds DEPLOYMENT DUE_FRACTION_NUM DUE_FRACTION_DEN [RENEW_BEFORE_DAYS]
in_bounds() {
        local d=$1 num=$2 den=$3 before=${4:-0} cert nb na next due jmax
        cert=$(ck_dprop "$d" Certificate | tr -d '"')
        nb=$(ck_prop "$cert" org.certkeeper1.Certificate NotBefore)
        na=$(ck_prop "$cert" org.certkeeper1.Certificate NotAfter)
        next=$(ck_dprop "$d" NextRenewalAt)
        if [ "$before" -gt 0 ]; then
                due=$((na - before * DAY))
        else
                due=$((nb + (na - nb) / den * num))
        fi
        jmax=$(((na - nb) / 20))
        [ "$next" -le "$due" ] && [ "$next" -ge $((due - jmax - 1000000)) ] || {
                echo "NextRenewalAt $next not in [$((due - jmax)), $due] (notBefore $nb, notAfter $na)" >&2
                return 1
        }
}

d30=$(ck_deploy_create d30 common_name s d30.example.test validity_days u 30)
d8=$(ck_deploy_create d8 common_name s d8.example.test validity_days u 8)
rb=$(ck_deploy_create rb common_name s rb.example.test validity_days u 30 renew_before_days u 5)
for d in "$d30" "$d8" "$rb"; do
        ck_wait_for "$(basename "$d") is deployed" 60 ck_dstate_is "$d" active
done
ck_check "30 days: NextRenewalAt at 2/3 of the lifetime minus at most 1/20 of it" in_bounds "$d30" 2 3
ck_check "8 days (10 or less): at 1/2 of the lifetime minus the jitter" in_bounds "$d8" 1 2
ck_check "RenewBeforeDays=5: 5 days before notAfter minus the jitter" in_bounds "$rb" 0 1 5

next30=$(ck_dprop "$d30" NextRenewalAt)
next8=$(ck_dprop "$d8" NextRenewalAt)
serial=$(ck_serial_of "$live/d8/cert.pem")
ck_stop_daemon
ck_start_daemon || ck_bail "the daemon does not start again"
ck_check "the jitter is stored: NextRenewalAt unchanged after a restart" \
        test "$(ck_dprop "$d30" NextRenewalAt)/$(ck_dprop "$d8" NextRenewalAt)" = "$next30/$next8"
ck_stop_daemon

# The clock one second past d8's renewal time: the timer renews d8, and only d8.
export CERTKEEPER_TEST_NOW_USEC=$((next8 + 1000000))
ck_start_daemon || ck_bail "the daemon does not start with the test clock"
ck_wait_for "past NextRenewalAt, the timer renews d8 (Revision 2)" 60 ck_drevision_is "$d8" 2
ck_wait_for "... and d8 is active again" 30 ck_dstate_is "$d8" active
ck_check "... with a new certificate in its files" test "$(ck_serial_of "$live/d8/cert.pem")" != "$serial"
ck_check "... the new NextRenewalAt is later, within the bounds of the new certificate" \
        sh -c "test $(ck_dprop "$d8" NextRenewalAt) -gt $next8" 
ck_check "... in bounds" in_bounds "$d8" 1 2
ck_check "d30 (not due yet) was left alone" ck_drevision_is "$d30" 1
ck_check "the renewal was audited (certificate.renewal.submitted)" \
        test "$(ck_journal_count CERTKEEPER_EVENT=certificate.renewal.submitted CERTKEEPER_DEPLOYMENT=d8)" -ge 2
ck_stop_daemon
unset CERTKEEPER_TEST_NOW_USEC

ck_done
