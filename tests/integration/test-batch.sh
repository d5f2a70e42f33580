#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# SubmitCSRs (issue 23): many CSRs in one call, each its own order with its own
# audit record; CSRs that cannot be used are reported per item and the others are
# issued; polkit is asked once per call; more than 1000 CSRs are refused whole with
# LimitExceeded. certkeeperctl submit-csr FILE... uses it.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

CALL=$CK_HELPERS/call.py

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ca_pem >"$CK_RUN/ca.pem"

# polkit: ck-user may request, and every check leaves a line in polkitd's log.
cat >"$CK_RUN/batch.rules" <<'EOF'
polkit.addRule(function(action, subject) {
        if (action.id == "org.certkeeper1.request" && subject.user == "ck-user") {
                polkit.log("certkeeper-batch-check " + action.id);
                return polkit.Result.YES;
        }
});
EOF
ck_polkit_add_rule "$CK_RUN/batch.rules" 60-batch.rules || ck_bail "cannot install the polkit rule"
checks() { grep -c 'certkeeper-batch-check' "$CK_POLKIT_LOG"; }

# CSRs: good ones, a text that is no CSR, and a CSR whose signature is broken.
d=$CK_RUN/csrs
mkdir -p "$d"
chmod 0755 "$d"
for i in 1 2 3 4 5; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k$i.pem" \
                -subj "/CN=batch$i.example.com" -out "$d/good$i.csr" 2>/dev/null || ck_bail "openssl req"
done
printf 'this is not a CSR\n' >"$d/junk.csr"
# Flip one byte inside the signature (the last base64 line before the END line).
python3 - "$d/good1.csr" "$d/badsig.csr" <<'EOF'
import base64, sys
pem = open(sys.argv[1]).read().strip().splitlines()
der = bytearray(base64.b64decode(''.join(pem[1:-1])))
der[-5] ^= 0x01
b64 = base64.b64encode(bytes(der)).decode()
open(sys.argv[2], 'w').write(pem[0] + '\n' + '\n'.join(b64[i:i + 64] for i in range(0, len(b64), 64)) + '\n' + pem[-1] + '\n')
EOF
chmod 0644 "$d"/*.csr

# py_list FILE... — a Python list literal of the files' contents.
py_list() {
        python3 -c 'import sys; print(repr([open(f).read() for f in sys.argv[1:]]))' "$@"
}

audit_submitted() {
        ck_busctl "${CK_MGR[@]}" ListAuditEvents 'a{sv}' 1 event s certificate.request_csr.submitted |
                jq '.data[0] | length'
}

orders_before=$(ck_order_count)
audit_before=$(audit_submitted)
checks_before=$(checks)
files=("$d/good1.csr" "$d/junk.csr" "$d/good2.csr" "$d/good3.csr" "$d/badsig.csr" "$d/good4.csr" "$d/good5.csr")
out=$(ck_as ck-user /usr/bin/python3 "$CALL" /org/certkeeper1 org.certkeeper1.Manager SubmitCSRs \
        "$(py_list "${files[@]}"), {'validity_days': dbus.UInt32(20)}" --signature 'asa{sv}' 2>&1)
ck_check "ck-user: SubmitCSRs with 5 good and 2 bad CSRs succeeds" test "${out%% *}" = ok ||
        ck_diag "$out"
res=${out#ok }
ck_check "one result per CSR (7)" test "$(jq length <<<"$res")" = 7
ck_check "polkit was asked once for the call" test "$(( $(checks) - checks_before ))" = 1
for i in 1 4; do
        ck_check "CSR $i (bad): no order, InvalidCSR with a message" \
                jq -e ".[$i][0] == \"/\" and .[$i][1] == \"org.certkeeper1.Error.InvalidCSR\" and (.[$i][2] | length) > 0" <<<"$res"
done
ck_diag "refusals: $(jq -c '[.[1][2], .[4][2]]' <<<"$res")"
n=0
for i in 0 2 3 5 6; do
        n=$((n + 1))
        order=$(jq -r ".[$i][0]" <<<"$res")
        ck_check "CSR $i (good): an order, no error" jq -e ".[$i][1] == \"\" and .[$i][2] == \"\"" <<<"$res"
        # Answered after the commit: a Local PKI order is complete when the call returns.
        ck_check "CSR $i: the order is complete when the call returns" test "$(ck_order_status "$order")" = complete
        cert=$(ck_order_cert "$order")
        ck_check "CSR $i: the certificate is for batch$n.example.com" \
                test "$(ck_prop "$cert" org.certkeeper1.Certificate CommonName)" = "\"batch$n.example.com\""
        ck_cert_pem "$cert" >"$CK_RUN/batch$n.pem"
        ck_check "CSR $i: it verifies against the CA and holds the CSR's key" bash -c "
                openssl verify -CAfile '$CK_RUN/ca.pem' '$CK_RUN/batch$n.pem' >/dev/null &&
                test \"\$(openssl x509 -in '$CK_RUN/batch$n.pem' -noout -pubkey)\" = \"\$(openssl pkey -in '$d/k$n.pem' -pubout)\""
        ck_check "CSR $i: validity_days=20 applies to every CSR of the call" \
                bash -c "openssl x509 -in '$CK_RUN/batch$n.pem' -noout -checkend $((19 * 86400)) >/dev/null &&
                         ! openssl x509 -in '$CK_RUN/batch$n.pem' -noout -checkend $((21 * 86400)) >/dev/null"
        ck_check "CSR $i: Kind csr, RequestedBy ck-user, Parameters with its CSR and the options" bash -c "
                test \"\$(busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Kind RequestedBy | jq -rs 'map(.data) | join(\"/\")')\" = csr/ck-user &&
                busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Parameters |
                        jq -e '.data.validity_days.data == 20 and (.data.csr.data | startswith(\"-----BEGIN CERTIFICATE REQUEST-----\"))' >/dev/null"
done
ck_check "five orders were created, none for the bad CSRs" test "$(( $(ck_order_count) - orders_before ))" = 5
ck_check "five certificate.request_csr.submitted audit records, one per order" \
        test "$(( $(audit_submitted) - audit_before ))" = 5

# The bound: 1001 CSRs are refused whole, before any order or polkit question.
orders_before=$(ck_order_count)
checks_before=$(checks)
out=$(/usr/bin/python3 - "$d/good1.csr" <<'EOF'
import sys
import dbus
pem = open(sys.argv[1]).read()
m = dbus.Interface(dbus.SystemBus().get_object('org.certkeeper1', '/org/certkeeper1'), 'org.certkeeper1.Manager')
try:
    m.SubmitCSRs(dbus.Array([pem] * 1001, signature='s'), dbus.Dictionary({}, signature='sv'))
    print('ok')
except dbus.exceptions.DBusException as e:
    print('error %s: %s' % (e.get_dbus_name(), e.get_dbus_message()))
EOF
)
ck_check "1001 CSRs: LimitExceeded naming the bound of 1000" \
        bash -c "[[ '$out' == 'error org.certkeeper1.Error.LimitExceeded: '*1000* ]]" || ck_diag "$out"
ck_check "1001 CSRs: no order created" test "$(ck_order_count)" = "$orders_before"
out=$(/usr/bin/python3 "$CALL" /org/certkeeper1 org.certkeeper1.Manager SubmitCSRs "[], {}" --signature 'asa{sv}' 2>&1)
ck_check "no CSRs: an empty result" test "$out" = "ok []" || ck_diag "$out"

# 1000 CSRs: the bound itself is accepted, each CSR an order, all complete at the answer.
openssl ecparam -name prime256v1 -genkey -noout -out "$d/many.key" 2>/dev/null
for i in $(seq 1 40); do
        openssl req -new -key "$d/many.key" -subj "/CN=many$i.example.com" 2>/dev/null
done >"$d/many40.pem"
orders_before=$(ck_order_count)
out=$(/usr/bin/python3 - "$d/many40.pem" <<'EOF'
import re, sys, time
import dbus
pems = re.findall(r'-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----', open(sys.argv[1]).read(), re.S)
pems = (pems * 25)[:1000]
m = dbus.Interface(dbus.SystemBus().get_object('org.certkeeper1', '/org/certkeeper1'), 'org.certkeeper1.Manager')
t = time.time()
res = m.SubmitCSRs(dbus.Array(pems, signature='s'), dbus.Dictionary({}, signature='sv'), timeout=120)
print(len(res), sum(1 for r in res if r[0] != '/' and r[1] == ''), '%.2f' % (time.time() - t))
EOF
)
ck_check "1000 CSRs: 1000 orders in one call" bash -c "[[ '$out' == '1000 1000 '* ]]" || ck_diag "$out"
ck_diag "1000 CSRs answered in ${out##* } s"
ck_check "1000 CSRs: 1000 more orders" test "$(( $(ck_order_count) - orders_before ))" = 1000

# certkeeperctl submit-csr FILE...: one SubmitCSRs call for all files, a result per file.
orders_before=$(ck_order_count)
out=$("$CERTKEEPERCTL" submit-csr "$d/good1.csr" "$d/junk.csr" 2>&1)
ck_check "certkeeperctl submit-csr: a file that is no CSR at all stops it before anything is sent" \
        bash -c "[[ '$out' == *'Nothing was submitted'* ]] && test '$(ck_order_count)' = '$orders_before'" || ck_diag "$out"
audit_before=$(audit_submitted)
"$CERTKEEPERCTL" submit-csr "$d/good1.csr" "$d/badsig.csr" "$d/good2.csr" >"$CK_RUN/ctl.out" 2>&1
rc=$?
out=$(cat "$CK_RUN/ctl.out")
ck_check "certkeeperctl submit-csr with a refused file among good ones exits 1" test "$rc" = 1
ck_check "certkeeperctl submit-csr: the two good files are ordered, one audit record each" \
        test "$(( $(ck_order_count) - orders_before ))/$(( $(audit_submitted) - audit_before ))" = 2/2
ck_check "certkeeperctl submit-csr: the refused file is named with InvalidCSR" \
        bash -c "grep -F '$d/badsig.csr' '$CK_RUN/ctl.out' | grep -q 'InvalidCSR'" || ck_diag "$out"
ck_check "certkeeperctl submit-csr: each good file is named, its order complete" \
        bash -c "grep -A1 -F '$d/good1.csr:' '$CK_RUN/ctl.out' | grep -q complete &&
                 grep -A1 -F '$d/good2.csr:' '$CK_RUN/ctl.out' | grep -q complete" ||
        ck_diag "$out"
out=$("$CERTKEEPERCTL" submit-csr "$d/good3.csr" 2>&1)
ck_check "certkeeperctl submit-csr with one file works as before" bash -c "[[ '$out' == 'Order '*': complete'* ]]" ||
        ck_diag "$out"

ck_done
