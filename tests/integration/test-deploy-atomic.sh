#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The deployed files change atomically: a reader loops over Directory/privkey.pem and
# Directory/cert.pem (always complete, always parsing) and over Directory/current opened
# once per iteration (the key and the certificate in it always belong together) during
# CK_DEPLOY_RENEWALS (200) Renew(rotate_key=true) calls on the Local PKI, each waited for.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

N=${CK_DEPLOY_RENEWALS:-200}
live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live\n[Deploy]\nRetryInitialSec=1"
ck_start_daemon || ck_bail "the daemon does not start"

dep=$(ck_deploy_create atomic common_name s atomic.example.test)
ck_check "CreateDeployment answers an object path" test -n "$dep" -a "$dep" != null
ck_wait_for "the first certificate is deployed" 60 ck_dstate_is "$dep" active
rev0=$(ck_dprop "$dep" Revision)

out=$(/usr/bin/python3 "$CK_SOURCE_ROOT/tests/integration/deploy-atomic.py" "$dep" "$live/atomic" "$N")
rc=$?
ck_diag "$out"
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$out"; }
ck_check "$N renewals, each waited for (rc $rc)" test "$rc" = 0 -a "$(field renewals)" = "$N"
ck_check "Revision grew by $N" ck_drevision_is "$dep" $((rev0 + N))
ck_check "the reader ran (iterations > $N)" test "$(field iterations)" -gt "$N"
ck_check "zero partial files" test "$(field partial)" = 0
ck_check "zero mismatched key/certificate pairs in current/" test "$(field mismatched)" = 0
ck_check "privkey.pem, cert.pem and current never missing" test "$(field missing)" = 0
ck_check "the key matches the certificate at the end" ck_key_matches "$live/atomic"

ck_done
