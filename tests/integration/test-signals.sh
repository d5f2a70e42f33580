#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Clients can follow orders through signals (OrderChanged, PropertiesChanged on
# Status, CertificateAdded, InterfacesAdded), and slow key generation never
# holds up other callers.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config "[Daemon]\nWorkerThreads=1"
ck_start_daemon || ck_bail "certkeeperd did not start"

busctl --system monitor --json=short org.certkeeper1 >"$CK_RUN/monitor.json" 2>/dev/null &
mon=$!
# The monitor is live once it sees a call we make.
ck_poll 10 bash -c "busctl --system call org.certkeeper1 /org/certkeeper1 org.freedesktop.DBus.Peer Ping >/dev/null && grep -q Ping '$CK_RUN/monitor.json'"

order=$(ck_request signals.example.com)
ck_wait_order "$order" >/dev/null
cert=$(ck_order_cert "$order")
signals_for() {
        jq -c --arg o "$1" 'select(.type == "signal" and .payload.data[0] == $o) | [.member, .payload.data[1]]' \
                "$CK_RUN/monitor.json" 2>/dev/null
}
have_complete() { signals_for "$order" | grep -q '"complete"'; }
ck_wait_for "OrderChanged reaches complete" 10 have_complete
# A quick local order (an EC key) is recorded once issued: it was never pending for anyone,
# and is told once, announced first.
ck_check "a quick order: OrderChanged says complete, once" \
        test "$(signals_for "$order" | grep OrderChanged | jq -r '.[1]' | tr '\n' ' ')" = "complete "
ck_check "a quick order: InterfacesAdded comes before its OrderChanged" \
        test "$(signals_for "$order" | jq -r '.[0]' | grep -E '^(InterfacesAdded|OrderChanged)$' | tr '\n' ' ')" = "InterfacesAdded OrderChanged "
# A quick local order is issued before it is recorded: it appears (InterfacesAdded) with its
# final Status, so no PropertiesChanged follows for it. Slow ones change Status later (below).
ck_check "the order is announced (InterfacesAdded) with Status complete" \
        bash -c "jq -e -s --arg p '$order' 'any(.[]; .member == \"InterfacesAdded\" and .payload.data[0] == \$p and .payload.data[1][\"org.certkeeper1.Order\"].Status.data == \"complete\")' '$CK_RUN/monitor.json' >/dev/null"
ck_check "CertificateAdded names the new certificate" \
        bash -c "jq -e -s --arg c '$cert' 'any(.[]; .member == \"CertificateAdded\" and .payload.data[0] == \$c)' '$CK_RUN/monitor.json' >/dev/null"
ck_check "the ObjectManager announces the certificate (InterfacesAdded)" \
        bash -c "jq -e -s --arg c '$cert' 'any(.[]; .member == \"InterfacesAdded\" and .payload.data[0] == \$c)' '$CK_RUN/monitor.json' >/dev/null"

# Slow work on the one worker thread: three RSA-4096 keys. While they are being
# made, other callers are answered: a list, a describe, a property read.
for i in 1 2 3; do
        ck_request "rsa$i.example.com" -- key_algorithm s rsa-4096 >>"$CK_RUN/slow"
done
last=$(tail -1 "$CK_RUN/slow")
answered=0 while_busy=0
for i in $(seq 20); do
        if ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 0 >/dev/null &&
                ck_busctl "$cert" org.certkeeper1.Certificate Describe >/dev/null; then
                answered=$((answered + 1))
                case $(ck_order_status "$last") in pending|processing) while_busy=$((while_busy + 1)) ;; esac
        fi
done
ck_check "every call was answered while RSA-4096 keys were generated" test "$answered" = 20
ck_check "and they were answered while the last order was still open" test "$while_busy" -gt 0
ck_diag "calls answered while the RSA-4096 orders were still open: $while_busy of 20"
ck_wait_for "the RSA-4096 orders complete" 300 ck_order_done "$last"
status_changed() {
        jq -e -s --arg p "$last" 'any(.[]; .type == "signal" and .member == "PropertiesChanged" and .path == $p and (.payload.data[1] | has("Status")))' "$CK_RUN/monitor.json" >/dev/null
}
ck_wait_for "PropertiesChanged on a slow order carries Status" 10 status_changed
ck_check "a slow order: OrderChanged goes pending, processing, complete in order" \
        test "$(signals_for "$last" | grep OrderChanged | jq -r '.[1]' | tr '\n' ' ')" = "pending processing complete "
kill $mon 2>/dev/null
ck_done
