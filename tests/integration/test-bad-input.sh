#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Input that cannot be parsed is answered with the named error of the contract,
# a message quoting the bad value, and no order. The daemon stays up.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"

CALL=(/usr/bin/python3 "$CK_HELPERS/call.py")

# refused DESC ERROR_NAME QUOTE METHOD ARGS [SIGNATURE] — the call fails with ERROR_NAME,
# the message contains QUOTE, and the order count does not move.
refused() {
        local desc=$1 name=$2 quote=$3 method=$4 args=$5 sig=${6:-}
        local before after out
        before=$(ck_order_count)
        out=$("${CALL[@]}" /org/certkeeper1 org.certkeeper1.Manager "$method" "$args" ${sig:+--signature "$sig"})
        after=$(ck_order_count)
        if [[ $out == "error $name: "*"$quote"* ]] && [ "$before" = "$after" ]; then
                ck_ok "$desc"
        else
                ck_not_ok "$desc"
                ck_diag "expected: error $name (…$quote…), no new order"
                ck_diag "got: $out; orders $before -> $after"
        fi
}

R=RequestCertificate
SIG='sasa{sv}'
IA=org.certkeeper1.Error.InvalidArgument
refused "a CN with a space" $IA "'ex ample.com'" $R '"ex ample.com", [], {}' "$SIG"
refused "two wildcards" $IA "*.*.example.com" $R '"*.*.example.com", [], {}' "$SIG"
refused "a wildcard not leftmost" $IA "foo.*.example.com" $R '"ok.example.com", ["foo.*.example.com"], {}' "$SIG"
refused "a partial wildcard label" $IA "a*.example.com" $R '"a*.example.com", [], {}' "$SIG"
refused "a label of 64 characters" $IA "$(printf 'a%.0s' {1..64})" $R "\"$(printf 'a%.0s' {1..64}).example.com\", [], {}" "$SIG"
refused "a name over 253 characters" $IA "253" $R "\"$(for i in {1..26}; do printf 'abcdefghi.'; done)example.com\", [], {}" "$SIG"
refused "a raw UTF-8 IDN (A-labels only)" $IA "xn--" $R '"bücher.example", [], {}' "$SIG"
refused "a leading hyphen" $IA "-bad.example.com" $R '"-bad.example.com", [], {}' "$SIG"
refused "an empty label" $IA "a..example.com" $R '"a..example.com", [], {}' "$SIG"
refused "an empty common name and no SAN" $IA "common name" $R '"", [], {}' "$SIG"
refused "more than 1000 SANs" $IA "1000" $R "\"many.example.com\", [$(for i in $(seq 1001); do printf '"h%d.example.com",' "$i"; done)], {}" "$SIG"
refused "an unknown option" $IA "'colour'" $R '"a.example.com", [], {"colour": "blue"}' "$SIG"
refused "an option of the wrong type" $IA "validity_days" $R '"a.example.com", [], {"validity_days": "ten"}' "$SIG"
refused "an unknown key algorithm" $IA "'rsa-1024'" $R '"a.example.com", [], {"key_algorithm": "rsa-1024"}' "$SIG"
refused "an unknown provider" $IA "'nosuchca'" $R '"a.example.com", [], {"provider": "nosuchca"}' "$SIG"
refused "validity_days=0" $IA "validity_days=0" $R '"a.example.com", [], {"validity_days": dbus.UInt32(0)}' "$SIG"
refused "validity_days over 100 years" $IA "36501" $R '"a.example.com", [], {"validity_days": dbus.UInt32(36501)}' "$SIG"
refused "acme without [ACME] configured" org.certkeeper1.Error.ProviderUnavailable "DirectoryURL" $R \
        '"a.example.com", [], {"provider": "acme"}' "$SIG"

S=SubmitCSR
IC=org.certkeeper1.Error.InvalidCSR
refused "a CSR that is not a CSR" $IC "" $S '"hello world", {}' 'sa{sv}'
refused "an empty CSR" $IC "" $S '"", {}' 'sa{sv}'
refused "a CSR over 64 KiB" $IC "" $S "\"$(head -c 70000 /dev/zero | tr '\0' A)\", {}" 'sa{sv}'

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/k" -subj "/CN=sig.example.com" \
        -outform DER -out "$CK_RUN/good.der" 2>/dev/null
# Flip a byte inside the signature (the last bytes of the DER).
python3 -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-5] ^= 0x55
open(sys.argv[2], "wb").write(b)' "$CK_RUN/good.der" "$CK_RUN/bad.der"
openssl req -inform DER -in "$CK_RUN/bad.der" -out "$CK_RUN/bad.csr" 2>/dev/null
refused "a CSR with a damaged signature" $IC "signature" $S "\"\"\"$(cat "$CK_RUN/bad.csr")\"\"\", {}" 'sa{sv}'
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/k2" -subj "/CN=bad name.example" \
        -out "$CK_RUN/badname.csr" 2>/dev/null
refused "a CSR whose CN is not a DNS name" $IC "bad name.example" $S "\"\"\"$(cat "$CK_RUN/badname.csr")\"\"\", {}" 'sa{sv}'
refused "an unknown SubmitCSR option" $IA "'key_algorithm'" $S \
        "\"\"\"$(openssl req -inform DER -in "$CK_RUN/good.der")\"\"\", {\"key_algorithm\": \"ec-256\"}" 'sa{sv}'

refused "GetCertificateByFingerprint with a non-hex value" $IA "expected 64 hex digits" \
        GetCertificateByFingerprint '"zz"' 's'
refused "GetCertificateByFingerprint of an unknown certificate" org.certkeeper1.Error.NotFound "no certificate" \
        GetCertificateByFingerprint "\"$(printf '0%.0s' {1..64})\"" 's'
refused "ListCertificates with an unknown status" $IA "'bogus'" ListCertificates '{"status": "bogus"}' 'a{sv}'
refused "ListAuditEvents with an unknown event" $IA "'no.such.event'" ListAuditEvents '{"event": "no.such.event"}' 'a{sv}'
refused "AcknowledgeAlert of an unknown alert" org.certkeeper1.Error.NotFound "no alert 4242" AcknowledgeAlert \
        'dbus.UInt64(4242)' 't'

out=$("${CALL[@]}" /org/certkeeper1/certificate/999 org.certkeeper1.Certificate Describe '')
ck_check "a certificate that does not exist is NotFound, as by fingerprint" \
        bash -c "[[ '$out' == 'error org.certkeeper1.Error.NotFound'* ]]"
out=$("${CALL[@]}" /org/certkeeper1/order/0x1 org.certkeeper1.Order Resubmit '')
ck_check "a malformed order path is an unknown object" \
        bash -c "[[ '$out' == 'error org.freedesktop.DBus.Error.UnknownObject'* ]]"

# What is fine after all: normalisation of case and the trailing dot.
order=$(ck_request "WWW.Example.COM." "Alt.Example.com." -- validity_days u 5)
ck_check "an upper-case name with a trailing dot is accepted" test "$(ck_wait_order "$order")" = complete
ck_check "it is normalised to lower case without the dot" \
        test "$(ck_prop "$(ck_order_cert "$order")" org.certkeeper1.Certificate SubjectAlternativeNames)" = '["www.example.com","alt.example.com"]'
order=$(ck_request "*.wild.example.com" "xn--bcher-kva.example" -- validity_days u 5)
ck_check "a leftmost wildcard and an A-label are accepted" test "$(ck_wait_order "$order")" = complete
ck_check "the daemon is still up and answering" ck_busctl "${CK_MGR[@]}" ListOrders 'a{sv}' 0
ck_check "only the two good requests made orders" test "$(ck_order_count)" = 2
ck_done
