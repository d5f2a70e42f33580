#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two-step revocation and the Local PKI CRL: every error of Revoke in the
# contract's order, a code bound to the user that asked for it (not to the bus
# connection: busctl makes one per call), the
# success (properties, signals, audit), the CRL as openssl reads it, nothing
# un-revokes (not even a restart), the codes leak nowhere, and certificates
# the Local PKI did not issue (an external CA helper, ACME against pebble).
# An expired code needs a clock: tests/unit/test-revocation.c.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

CERT_IFACE=org.certkeeper1.Certificate
REVOKE_PY=$CK_HELPERS/revoke.py

# A test CA for the external CA helper: a certmonger helper signing with openssl x509 -req.
EXT=$CK_RUN/ext-ca
mkdir -p "$EXT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$EXT/ca.key" -out "$EXT/ca.pem" \
        -subj "/CN=Test External CA" -days 30 2>/dev/null || ck_bail "cannot make the external test CA"
cat >"$EXT/helper" <<EOF
#!/bin/sh
# certmonger CA-helper protocol: SUBMIT signs the CSR; anything else is unsupported (6).
[ "\$CERTMONGER_OPERATION" = SUBMIT ] || exit 6
printf '%s\n' "\$CERTMONGER_CSR" >"$EXT/req.\$\$.csr"
openssl x509 -req -in "$EXT/req.\$\$.csr" -CA "$EXT/ca.pem" -CAkey "$EXT/ca.key" -CAcreateserial \
        -days 10 -copy_extensions copy 2>"$EXT/helper.err" || { echo "openssl x509 -req failed"; exit 2; }
EOF
chmod 0755 "$EXT/helper"

ck_polkit_add_rule "$CK_SOURCE_ROOT/policy/50-certkeeper-admin.rules" || ck_bail "cannot install the polkit rule"
ck_write_config "[ExternalCA \"script\"]\nHelper=$EXT/helper\nTimeout=30\n\n[ACME]\nDirectoryURL=$CK_PEBBLE_DIR_URL\nCABundle=$CK_PEBBLE_CA\nHTTPChallengePort=5002"
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ca_pem >"$CK_RUN/ca.pem"

prop() {
        ck_prop "$1" "$CERT_IFACE" "$2" | jq -r .
}

# revoke CERT STEP... — revoke.py's lines; codes handed out are kept in $CK_RUN/codes for the leak checks.
revoke() {
        local out
        out=$(/usr/bin/python3 "$REVOKE_PY" "$@")
        sed -n 's/^ok \([0-9]\{6\}\)$/\1/p' <<<"$out" >>"$CK_RUN/codes"
        echo "$out"
}

# expect DESC LINES N PATTERN — line N of LINES matches the extended regex PATTERN.
expect() {
        local desc=$1 lines=$2 n=$3 pattern=$4 line
        line=$(sed -n "${n}p" <<<"$lines")
        if grep -Eq -- "$pattern" <<<"$line"; then
                ck_ok "$desc"
        else
                ck_not_ok "$desc"
                ck_diag "line $n: '$line', expected /$pattern/"
        fi
}

get_crl() {
        ck_busctl "${CK_MGR[@]}" GetCRL | jq -j '.data[0]'
}

crl_number() {
        openssl crl -in "$1" -noout -crlnumber | sed 's/^crlNumber=0x//' | { read -r h; echo $((16#$h)); }
}

# serial_of PEM — the serial as openssl prints it in a CRL (upper-case hex, even length).
serial_of() {
        openssl x509 -in "$1" -noout -serial | cut -d= -f2
}

# crl_entry CRLTEXT SERIAL — the entry's lines (serial, date, extensions) of `openssl crl -text`.
crl_entry() {
        awk -v s="$2" '
                /^ *Serial Number: / { inside = ($3 == s) }
                /^ *Signature Algorithm:/ { inside = 0 }
                inside' "$1"
}

# ---- certificates to revoke -----------------------------------------------------------------

declare -A cert
for name in kc unspec keep void super; do
        order=$(ck_request "$name.example.com" -- key_algorithm s ec-256)
        ck_check "$name: the order completes" test "$(ck_wait_order "$order" 60)" = complete ||
                ck_bail "no certificate"
        cert[$name]=$(ck_order_cert "$order")
        ck_cert_pem "${cert[$name]}" >"$CK_RUN/$name.pem"
done

get_crl >"$CK_RUN/crl0.pem"
ck_check "GetCRL: openssl reads it and it verifies with the CA" \
        bash -c "openssl crl -in '$CK_RUN/crl0.pem' -CAfile '$CK_RUN/ca.pem' -noout 2>&1 | grep -qx 'verify OK'"
ck_check "GetCRL before any revocation: no entry" \
        bash -c "openssl crl -in '$CK_RUN/crl0.pem' -noout -text | grep -q 'No Revoked Certificates'"
crl0_number=$(crl_number "$CK_RUN/crl0.pem")

# ---- every error, in the contract's order ----------------------------------------------------

c=${cert[kc]}
id=${c##*/}
out=$(revoke "$c" A:revoke:123456:keyCompromise A:request B:revoke:code@A:keyCompromise B:revoke:code@A:bogus \
        A:revoke:wrong:keyCompromise A:revoke:wrong:bogus A:revoke:code:bogus A:revoke:code:keyCompromise \
        A:revoke:code:keyCompromise A:request B:revoke:123456:bogus)
expect "Revoke without RequestRevocation: ConfirmationRequired" "$out" 1 \
        '^error org.certkeeper1.Error.ConfirmationRequired: '
expect "RequestRevocation: a six-digit code" "$out" 2 '^ok [0-9]{6}$'
expect "A's code (root) used by another user B: ConfirmationRequired" "$out" 3 \
        '^error org.certkeeper1.Error.ConfirmationRequired: '
expect "... ConfirmationRequired comes before InvalidReason" "$out" 4 \
        '^error org.certkeeper1.Error.ConfirmationRequired: '
expect "A wrong code: ConfirmationMismatch, 2 tries left" "$out" 5 \
        '^error org.certkeeper1.Error.ConfirmationMismatch: .*2 tries left'
expect "... ConfirmationMismatch comes before InvalidReason (1 try left)" "$out" 6 \
        '^error org.certkeeper1.Error.ConfirmationMismatch: .*1 try left'
expect "The right code with a bad reason: InvalidReason" "$out" 7 \
        "^error org.certkeeper1.Error.InvalidReason: 'bogus' is not a revocation reason"
expect "The right code and keyCompromise: revoked (an InvalidReason does not burn the code)" "$out" 8 '^ok$'
expect "Revoke again with the used code: AlreadyRevoked" "$out" 9 '^error org.certkeeper1.Error.AlreadyRevoked: '
expect "RequestRevocation on a revoked certificate: AlreadyRevoked" "$out" 10 \
        '^error org.certkeeper1.Error.AlreadyRevoked: '
expect "AlreadyRevoked comes first (no code, bad reason, other user)" "$out" 11 \
        '^error org.certkeeper1.Error.AlreadyRevoked: '

# A code voids after three wrong tries; a fresh one works; codes are not accepted across processes.
c=${cert[void]}
out=$(revoke "$c" A:request A:revoke:wrong:superseded A:revoke:12345:superseded A:revoke:0123456:superseded \
        A:revoke:code:superseded A:request)
expect "void: first wrong code: mismatch" "$out" 2 '^error org.certkeeper1.Error.ConfirmationMismatch: .*2 tries left'
expect "void: a five-digit code: mismatch" "$out" 3 '^error org.certkeeper1.Error.ConfirmationMismatch: .*1 try left'
expect "void: a seven-digit code: mismatch, now void" "$out" 4 \
        '^error org.certkeeper1.Error.ConfirmationMismatch: .*void'
expect "void: the right code after 3 wrong tries: ConfirmationRequired (the code is gone)" "$out" 5 \
        '^error org.certkeeper1.Error.ConfirmationRequired: '
expect "void: a new RequestRevocation gives a new code" "$out" 6 '^ok [0-9]{6}$'
last_code=$(sed -n '6s/^ok //p' <<<"$out")
ck_check "void: the certificate is still active" test "$(prop "$c" Status)" = active
out=$(revoke "$c" B:revoke:"$last_code":superseded)
expect "another user cannot use the code" "$out" 1 '^error org.certkeeper1.Error.ConfirmationRequired: '
out=$(revoke "$c" A:revoke:"$last_code":superseded)
expect "the same user confirms from a new connection, as busctl does" "$out" 1 '^ok$'
ck_check "void: now revoked" test "$(prop "$c" Status)" = revoked

# ---- success: properties, signals, audit ------------------------------------------------------

c=${cert[super]}
id=${c##*/}
monitor=$CK_RUN/monitor.json
timeout 60 busctl --system monitor --json=short --match="path=$c" \
        --match="type=signal,interface=org.certkeeper1.Manager,member=CertificateRevoked" >"$monitor" 2>&1 &
monitor_pid=$!
# The monitor is listening once it has seen a call of ours to this path.
ck_poll 10 bash -c "busctl --system get-property org.certkeeper1 '$c' $CERT_IFACE Id >/dev/null; grep -q '\"member\":\"Get\"' '$monitor'" ||
        ck_diag "busctl monitor did not start: $(cat "$monitor")"
before=$(date +%s%6N)
out=$(revoke "$c" A:request A:revoke:code:superseded)
after=$(date +%s%6N)
expect "superseded: revoked" "$out" 2 '^ok$'
ck_wait_for "CertificateRevoked(o $c, s superseded) was emitted" 10 bash -c "
        grep '^{' '$monitor' | jq -e -s 'map(select(.member == \"CertificateRevoked\" and .path == \"/org/certkeeper1\"
                and .payload.data == [\"$c\", \"superseded\"])) | length == 1' >/dev/null"
ck_wait_for "PropertiesChanged on $c names Status, RevokedAt, RevocationReason, RevocationPropagation" 10 bash -c "
        grep '^{' '$monitor' | jq -e -s 'map(select(.member == \"PropertiesChanged\" and .path == \"$c\"
                and .payload.data[0] == \"$CERT_IFACE\")
                | (.payload.data[1] | keys) + .payload.data[2])
                | add // [] | (index(\"Status\") != null) and (index(\"RevokedAt\") != null)
                  and (index(\"RevocationReason\") != null) and (index(\"RevocationPropagation\") != null)' >/dev/null"
kill "$monitor_pid" 2>/dev/null
wait "$monitor_pid" 2>/dev/null
ck_check "Status is revoked" test "$(prop "$c" Status)" = revoked
ck_check "RevocationReason is superseded" test "$(prop "$c" RevocationReason)" = superseded
revoked_at=$(prop "$c" RevokedAt)
ck_check "RevokedAt ($revoked_at) lies within the Revoke call [$before, $after]" \
        test "$revoked_at" -ge "$before" -a "$revoked_at" -le "$after"
ck_check "RevocationPropagation: published in the Local PKI CRL" \
        test "$(prop "$c" RevocationPropagation)" = "published in the Local PKI CRL"
ck_check "Describe carries the revocation" bash -c "
        busctl --system --json=short call org.certkeeper1 '$c' $CERT_IFACE Describe |
                jq -e '.data[0] | .Status.data == \"revoked\" and .RevocationReason.data == \"superseded\"
                        and .RevokedAt.data == $revoked_at' >/dev/null"
ck_check "ListCertificates status=revoked lists it" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListCertificates \
                'a{sv}' 1 status s revoked | jq -e '[.data[0][][0]] | index(\"$c\") != null' >/dev/null"

ck_check "audit: certificate.revoke.requested in the journal" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.revoke.requested CERTKEEPER_CERTIFICATE_ID="$id"
ck_check "audit: certificate.revoke.success with CERTKEEPER_REASON=superseded" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.revoke.success CERTKEEPER_CERTIFICATE_ID="$id" \
        CERTKEEPER_REASON=superseded
ck_check "audit: exactly one revoke.success for the certificate" \
        test "$(ck_journal_count CERTKEEPER_EVENT=certificate.revoke.success CERTKEEPER_CERTIFICATE_ID="$id")" = 1
ck_check "audit: ListAuditEvents has revoke.success with reason superseded" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAuditEvents \
                'a{sv}' 1 event s certificate.revoke.success |
                jq -e '[.data[0][] | select(.[3].certificate_id == \"$id\" and .[3].reason == \"superseded\")]
                        | length == 1' >/dev/null"
ck_check "audit: every revoke.requested so far is in the store (kc 1, void 2, super 1)" bash -c "
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager ListAuditEvents \
                'a{sv}' 1 event s certificate.revoke.requested | jq -e '.data[0] | length == 4' >/dev/null"

c=${cert[kc]}
ck_check "keyCompromise: Status revoked, reason keyCompromise" \
        test "$(prop "$c" Status)/$(prop "$c" RevocationReason)" = revoked/keyCompromise
c=${cert[unspec]}
out=$(revoke "$c" A:request A:revoke:code:)
expect "an empty reason is accepted" "$out" 2 '^ok$'
ck_check "... and recorded as unspecified" test "$(prop "$c" RevocationReason)" = unspecified
ck_check "... audited with CERTKEEPER_REASON=unspecified" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.revoke.success CERTKEEPER_CERTIFICATE_ID="${c##*/}" \
        CERTKEEPER_REASON=unspecified

# ---- the CRL ---------------------------------------------------------------------------------

get_crl >"$CK_RUN/crl.pem"
openssl crl -in "$CK_RUN/crl.pem" -noout -text >"$CK_RUN/crl.txt"
ck_check "the CRL verifies with the CA" \
        bash -c "openssl crl -in '$CK_RUN/crl.pem' -CAfile '$CK_RUN/ca.pem' -noout 2>&1 | grep -qx 'verify OK'"
ck_check "the CRL is v2, issued by the CA, with an AKI" bash -c "
        grep -q 'Version 2 (0x1)' '$CK_RUN/crl.txt' &&
        grep -q 'X509v3 Authority Key Identifier' '$CK_RUN/crl.txt' &&
        [ \"\$(openssl crl -in '$CK_RUN/crl.pem' -noout -issuer -nameopt RFC2253 | cut -d= -f2-)\" = \
          \"\$(openssl x509 -in '$CK_RUN/ca.pem' -noout -subject -nameopt RFC2253 | cut -d= -f2-)\" ]"
ck_check "the CRL's AKI is the CA's SKI" bash -c "
        [ \"\$(grep -A1 'Authority Key Identifier' '$CK_RUN/crl.txt' | tail -1 | sed 's/^ *\(keyid:\)\?//')\" = \
          \"\$(openssl x509 -in '$CK_RUN/ca.pem' -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')\" ]"
n=$(crl_number "$CK_RUN/crl.pem")
ck_check "the CRL number grew with each revocation ($crl0_number -> $n, 4 revocations)" test "$n" -ge $((crl0_number + 4))
ck_check "the CRL lists exactly the 4 revoked certificates" test "$(grep -c 'Serial Number:' "$CK_RUN/crl.txt")" = 4
for name in kc super unspec void; do
        crl_entry "$CK_RUN/crl.txt" "$(serial_of "$CK_RUN/$name.pem")" >"$CK_RUN/entry.$name"
        ck_check "$name: its serial is listed" test -s "$CK_RUN/entry.$name"
done
ck_check "kc: reason code Key Compromise" grep -A1 -q 'CRL Reason Code' "$CK_RUN/entry.kc"
ck_check "kc: ... and it reads Key Compromise" bash -c "grep -A1 'CRL Reason Code' '$CK_RUN/entry.kc' | grep -q 'Key Compromise'"
ck_check "super: reason code Superseded" bash -c "grep -A1 'CRL Reason Code' '$CK_RUN/entry.super' | grep -q Superseded"
ck_check "unspec: no reason code (RFC 5280: unspecified is omitted)" \
        bash -c "! grep -q 'CRL Reason Code' '$CK_RUN/entry.unspec'"
ck_check "kc: revocation date = RevokedAt (to the second)" bash -c "
        d=\$(sed -n 's/^ *Revocation Date: //p' '$CK_RUN/entry.kc')
        [ \$(date -d \"\$d\" +%s) = \$(( \$(busctl --system --json=short get-property org.certkeeper1 '${cert[kc]}' $CERT_IFACE RevokedAt | jq .data) / 1000000 )) ]"
this_update=$(date -d "$(openssl crl -in "$CK_RUN/crl.pem" -noout -lastupdate | cut -d= -f2)" +%s)
next_update=$(date -d "$(openssl crl -in "$CK_RUN/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)
ck_check "nextUpdate is after thisUpdate, by CRLValidityDays (default 7 days)" \
        test $((next_update - this_update)) = $((7 * 86400))
ck_check "thisUpdate is now (within a minute)" test $(( $(date +%s) - this_update )) -lt 60
for name in kc super unspec void; do
        ck_check_fails "openssl verify -crl_check refuses $name" \
                openssl verify -crl_check -CAfile "$CK_RUN/ca.pem" -CRLfile "$CK_RUN/crl.pem" "$CK_RUN/$name.pem"
        ck_check "... because it is revoked" grep -q 'certificate revoked' <<<"$CK_ERR$CK_OUT"
done
for name in keep; do
        ck_check "openssl verify -crl_check accepts $name (not revoked)" \
                openssl verify -crl_check -CAfile "$CK_RUN/ca.pem" -CRLfile "$CK_RUN/crl.pem" "$CK_RUN/$name.pem"
done
ck_check "state/ca/crl.pem is written, mode 0644" test "$(stat -c %a "$CK_STATE_DIR/ca/crl.pem")" = 644
ck_check "state/ca/crl.pem equals GetCRL" cmp "$CK_STATE_DIR/ca/crl.pem" "$CK_RUN/crl.pem"

# ---- other issuers -----------------------------------------------------------------------------

order=$(ck_request ext.example.com -- provider s script key_algorithm s ec-256)
if ck_check "external CA: the order completes" test "$(ck_wait_order "$order" 60)" = complete; then
        c=$(ck_order_cert "$order")
        ck_cert_pem "$c" >"$CK_RUN/ext.pem"
        ck_check "external CA: issued by the test CA" openssl verify -CAfile "$EXT/ca.pem" "$CK_RUN/ext.pem"
        out=$(revoke "$c" A:request A:revoke:code:cessationOfOperation)
        expect "external CA: revoked" "$out" 2 '^ok$'
        ck_check "external CA: Status revoked, reason cessationOfOperation" \
                test "$(prop "$c" Status)/$(prop "$c" RevocationReason)" = revoked/cessationOfOperation
        ck_check "external CA: RevocationPropagation says it was not propagated ($(prop "$c" RevocationPropagation))" \
                test "$(prop "$c" RevocationPropagation)" = "not propagated: the provider cannot revoke"
        ck_check "external CA: not on the Local PKI CRL" bash -c "
                ! openssl crl -in <(busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCRL | jq -r '.data[0]') \
                        -noout -text | grep -q 'Serial Number: $(serial_of "$CK_RUN/ext.pem")\$'"
        cert[ext]=$c
fi

if [ -n "${CK_PEBBLE_DIR_URL:-}" ]; then
        order=$(ck_request acme.example.com -- provider s acme key_algorithm s ec-256)
        if ck_check "ACME: the order completes" test "$(ck_wait_order "$order" 90)" = complete; then
                c=$(ck_order_cert "$order")
                out=$(revoke "$c" A:request A:revoke:code:keyCompromise)
                expect "ACME: revoked" "$out" 2 '^ok$'
                ck_check "ACME: Status revoked at once" test "$(prop "$c" Status)" = revoked
                ck_wait_for "ACME: RevocationPropagation becomes 'propagated to acme' (revokeCert at pebble)" 60 \
                        bash -c "[ \"\$(busctl --system --json=short get-property org.certkeeper1 '$c' $CERT_IFACE RevocationPropagation | jq -r .data)\" = 'propagated to acme' ]" ||
                        ck_diag "RevocationPropagation: $(prop "$c" RevocationPropagation)"
                cert[acme]=$c
        else
                ck_diag "order error: $(ck_prop "$order" org.certkeeper1.Order Error)"
        fi
else
        ck_skip "ACME revocation propagation" "pebble is not running"
fi

# ---- nothing un-revokes ----------------------------------------------------------------------------

out=$(revoke "${cert[kc]}" A:request A:revoke:123456:unspecified)
expect "a second revocation: RequestRevocation answers AlreadyRevoked" "$out" 1 '^error org.certkeeper1.Error.AlreadyRevoked: '
expect "a second revocation: Revoke answers AlreadyRevoked" "$out" 2 '^error org.certkeeper1.Error.AlreadyRevoked: '
ck_check "the reason did not change" test "$(prop "${cert[kc]}" RevocationReason)" = keyCompromise
crl_before=$n
ck_stop_daemon
ck_start_daemon || ck_bail "certkeeperd did not restart"
for name in kc super unspec void ext; do
        [ -n "${cert[$name]:-}" ] || continue
        ck_check "after a restart $name is still revoked" test "$(prop "${cert[$name]}" Status)" = revoked
done
ck_check "after a restart keep is still active" test "$(prop "${cert[keep]}" Status)" = active
get_crl >"$CK_RUN/crl2.pem"
ck_check "after a restart the CRL still lists the 4 Local PKI revocations" \
        test "$(openssl crl -in "$CK_RUN/crl2.pem" -noout -text | grep -c 'Serial Number:')" = 4
ck_check "after a restart the CRL number did not go back ($crl_before -> $(crl_number "$CK_RUN/crl2.pem"))" \
        test "$(crl_number "$CK_RUN/crl2.pem")" -gt "$crl_before"
ck_check "after a restart state/ca/crl.pem equals GetCRL" cmp "$CK_STATE_DIR/ca/crl.pem" "$CK_RUN/crl2.pem"
out=$(revoke "${cert[super]}" A:request A:revoke:123456:keyCompromise)
expect "after a restart: still AlreadyRevoked" "$out" 2 '^error org.certkeeper1.Error.AlreadyRevoked: '

# ---- the codes leak nowhere -------------------------------------------------------------------------

mapfile -t CODES <"$CK_RUN/codes"
ck_check "codes were handed out (${#CODES[@]})" test "${#CODES[@]}" -ge 6
# no_code_in FILE — no code as a whole word in FILE. Not inside a longer run of hex digits: timestamps
# are longer decimal runs, and a six-digit piece of a fingerprint, cursor or boot id would match by
# chance (1 in 16^6 per position). PIDs have at most five digits with the default pid_max (32768).
no_code_in() {
        local file=$1 code
        for code in "${CODES[@]}"; do
                if grep -aqP -- "(?<![0-9A-Fa-f])$code(?![0-9A-Fa-f])" "$file"; then
                        echo "code $code found in $file:"
                        grep -aoP -- ".{0,60}(?<![0-9A-Fa-f])$code(?![0-9A-Fa-f]).{0,60}" "$file" | head -3
                        return 1
                fi
        done
        return 0
}
ck_journal -o json >"$CK_RUN/journal.json"
ck_check "the journal dump holds the revocation audit" grep -q certificate.revoke.requested "$CK_RUN/journal.json"
ck_check "no code in the journal" no_code_in "$CK_RUN/journal.json"
ck_check "no code in the daemon's log" no_code_in "$CK_DAEMON_LOG"
sqlite3 "$CK_STATE_DIR/certkeeper.db" .dump >"$CK_RUN/store.dump"
ck_check "the store dump holds the revocation audit" grep -q certificate.revoke.requested "$CK_RUN/store.dump"
ck_check "no code in the store (sqlite3 .dump)" no_code_in "$CK_RUN/store.dump"
for f in "$CK_STATE_DIR"/certkeeper.db*; do
        ck_check "no code in the raw file $(basename "$f")" no_code_in "$f"
done

ck_stop_daemon
ck_done
