#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ACME provider against a pebble that rejects half of all nonces
# (PEBBLE_WFE_NONCEREJECT=50, set by meson through the harness): every order
# still completes, because badNonce answers are retried with the fresh nonce.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-acme.sh"

[ "${CK_PEBBLE_NONCEREJECT:-0}" -gt 0 ] || ck_skip_all "pebble rejects no nonces (CK_PEBBLE_NONCEREJECT unset)"
ck_acme_config
ck_start_daemon --debug || ck_bail "certkeeperd did not start"

t0=$(ck_now_us)
orders=()
for i in 1 2 3 4 5; do
        orders+=("$(ck_request "nonce$i.example.test" -- provider s acme)")
done
i=0
for o in "${orders[@]}"; do
        i=$((i + 1))
        ck_check_acme_order "$o" "nonce$i.example.test" "nonce$i.example.test" "nonce$i"
done
ck_diag "5 orders with ${CK_PEBBLE_NONCEREJECT}% nonce rejection: $(( ($(ck_now_us) - t0) / 1000 )) ms"
n=$(grep -c 'answered badNonce, retrying' "$CK_DAEMON_LOG")
ck_check "badNonce answers were retried ($n times)" test "$n" -gt 0
ck_check "pebble rejected nonces (its log)" grep -qi 'badNonce\|nonce' "$CK_RUN/pebble/log"
ck_done
