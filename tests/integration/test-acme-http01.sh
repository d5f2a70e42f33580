#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ACME provider with real http-01 validation: pebble (without
# PEBBLE_VA_ALWAYS_VALID) resolves every name through pebble-challtestsrv to
# 127.0.0.1 and fetches http://NAME:5002/.well-known/acme-challenge/TOKEN from
# the daemon's built-in responder, which listens only while a challenge is pending.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-acme.sh"

port_listening() { ss -Hltn 'sport = :5002' | grep -q .; }

ck_acme_config
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_check "the responder does not listen before any challenge" bash -c "! ss -Hltn 'sport = :5002' | grep -q ."

t0=$(ck_now_us)
order=$(ck_request www.example.test api.example.test -- provider s acme)
ck_check_acme_order "$order" www.example.test api.example.test,www.example.test http01
ck_diag "http-01 order (2 names, account registration included): $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "pebble looked both names up through challtestsrv (DNS, its history)" bash -c "
        curl -sf -X POST -d '{\"host\":\"www.example.test\"}' '$CK_CHALLTESTSRV_URL/dns-request-history' | jq -e 'length > 0' >/dev/null &&
        curl -sf -X POST -d '{\"host\":\"api.example.test\"}' '$CK_CHALLTESTSRV_URL/dns-request-history' | jq -e 'length > 0' >/dev/null"
ck_check "pebble fetched the tokens over http-01 on port 5002 for both names (its log)" bash -c "
        grep -q 'validate w/ HTTP: http://www.example.test:5002/.well-known/acme-challenge/' '$CK_RUN/pebble/log' &&
        grep -q 'validate w/ HTTP: http://api.example.test:5002/.well-known/acme-challenge/' '$CK_RUN/pebble/log'"
ck_check "the responder stopped listening after the order" bash -c "! ss -Hltn 'sport = :5002' | grep -q ."
ck_check "a stray request to port 5002 finds nobody listening" \
        bash -c "! curl -s --max-time 2 http://127.0.0.1:5002/.well-known/acme-challenge/x"

order=$(ck_submit_csr <(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" \
        -subj /CN=csr.example.test -addext subjectAltName=DNS:csr.example.test 2>/dev/null) provider s acme)
ck_check_acme_order "$order" csr.example.test csr.example.test http01-csr

# A name pebble cannot validate: challtestsrv answers SERVFAIL for it.
curl -sf -X POST -d '{"host":"elsewhere.example.test"}' "$CK_CHALLTESTSRV_URL/set-servfail" >/dev/null
order=$(ck_request elsewhere.example.test -- provider s acme)
ck_check "validation failure: the order fails" test "$(ck_wait_order "$order" 90)" = failed
err=$(ck_oprop "$order" Error)
ck_check "validation failure: Error carries the ACME problem type ($err)" \
        bash -c "[[ '$err' == *urn:ietf:params:acme:error:* && '$err' == *elsewhere.example.test* ]]"
ck_done
