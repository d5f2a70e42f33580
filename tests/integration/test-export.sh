#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Downloads: DownloadPEM (leaf, chain) and ExportPFX (default AES-256/PBKDF2/
# SHA-256 MAC and legacy 3DES/SHA-1), each checked with openssl: the password
# opens it, the key matches the certificate, the chain and the friendly name
# are there, a wrong password fails. Passwords are fresh, unambiguous and never
# reach the journal, the daemon's log or the store.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

CERT_IFACE=org.certkeeper1.Certificate
PFX_PY=$CK_HELPERS/pfx.py

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ca_pem >"$CK_RUN/ca.pem"
ca_subject=$(openssl x509 -in "$CK_RUN/ca.pem" -noout -subject -nameopt RFC2253)

prop() {
        ck_prop "$1" "$CERT_IFACE" "$2" | jq -r .
}

# spki FILE KIND — the DER SubjectPublicKeyInfo (hex) of a certificate (x509) or private key (key).
spki() {
        if [ "$2" = x509 ]; then
                openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -pubout -outform DER | od -An -tx1 | tr -d ' \n'
        else
                openssl pkey -in "$1" -pubout -outform DER | od -An -tx1 | tr -d ' \n'
        fi
}

# fingerprints FILE — the sorted SHA-256 fingerprints of every certificate in a PEM bundle.
fingerprints() {
        cat "$1" | awk '/-----BEGIN CERTIFICATE-----/{n++} n {print > (dir "/fp." n)}' dir="$CK_RUN"
        local f
        for f in "$CK_RUN"/fp.[0-9]*; do
                openssl x509 -in "$f" -noout -fingerprint -sha256
                rm -f "$f"
        done | sort
}

# A certificate whose key the daemon holds, per key type (RSA and EC go through different PKCS#12 paths).
declare -A certs cns
for alg in ec-256 rsa-2048; do
        cn=pfx-$alg.example.com
        order=$(ck_request "$cn" -- key_algorithm s "$alg")
        status=$(ck_wait_order "$order" 120)
        ck_check "$alg: the order completes" test "$status" = complete || ck_bail "no certificate to export"
        certs[$alg]=$(ck_order_cert "$order")
        cns[$alg]=$cn
done

# ---- DownloadPEM ---------------------------------------------------------------------------

cert=${certs[ec-256]}
id=${cert##*/}
ck_cert_pem "$cert" >"$CK_RUN/leaf.pem"
ck_check "DownloadPEM: the leaf alone by default" test "$(grep -c 'BEGIN CERTIFICATE' "$CK_RUN/leaf.pem")" = 1
ck_check "DownloadPEM: it is the certificate of FingerprintSHA256" \
        test "$(openssl x509 -in "$CK_RUN/leaf.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)" = \
        "$(prop "$cert" FingerprintSHA256)"
ck_cert_pem "$cert" chain >"$CK_RUN/chain.pem"
ck_check "DownloadPEM chain=true: leaf then the Local CA" bash -c "
        [ \$(grep -c 'BEGIN CERTIFICATE' '$CK_RUN/chain.pem') = 2 ] &&
        openssl x509 -in '$CK_RUN/chain.pem' -noout -fingerprint | cmp -s - <(openssl x509 -in '$CK_RUN/leaf.pem' -noout -fingerprint) &&
        awk '/BEGIN CERT/{n++} n==2' '$CK_RUN/chain.pem' | cmp -s - '$CK_RUN/ca.pem'"
ck_check "DownloadPEM chain=true verifies as a chain" \
        openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/chain.pem"
ck_check "DownloadPEM chain=false is the leaf alone" bash -c "
        busctl --system --json=short call org.certkeeper1 '$cert' $CERT_IFACE DownloadPEM 'a{sv}' 1 chain b false |
                jq -r '.data[0]' | cmp -s - '$CK_RUN/leaf.pem'"
ck_check "DownloadPEM is audited (certificate.download.success)" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.download.success CERTKEEPER_CERTIFICATE_ID="$id"
line=$(ck_dbus_error "$cert" "$CERT_IFACE" DownloadPEM '{"chian": True}' --signature 'a{sv}')
ck_check "DownloadPEM with an unknown option: InvalidArgument ($line)" \
        grep -q '^error org.certkeeper1.Error.InvalidArgument' <<<"$line"
line=$(ck_dbus_error "$cert" "$CERT_IFACE" DownloadPEM '{"chain": "yes"}' --signature 'a{sv}')
ck_check "DownloadPEM with a mistyped option: InvalidArgument ($line)" \
        grep -q '^error org.certkeeper1.Error.InvalidArgument' <<<"$line"

# ---- ExportPFX -----------------------------------------------------------------------------

passwords=()
for alg in ec-256 rsa-2048; do
        cert=${certs[$alg]}
        cn=${cns[$alg]}
        ck_cert_pem "$cert" >"$CK_RUN/$alg.pem"
        for mode in default legacy; do
                t="$alg $mode"
                f=$CK_RUN/$alg-$mode.pfx
                legacy=()
                [ "$mode" = legacy ] && legacy=(-legacy)
                arg=
                [ "$mode" = legacy ] && arg=legacy
                ck_check "$t: ExportPFX answers" test "$(/usr/bin/python3 "$PFX_PY" "$cert" "$f" $arg)" = ok || continue
                pw=$(cat "$f.pass")
                passwords+=("$pw")
                ck_check "$t: the password has >= 20 characters of the unambiguous alphabet ($pw)" \
                        bash -c "[[ '$pw' =~ ^[2-9A-HJ-NP-Za-km-z]{20,}$ ]]"
                ck_check "$t: openssl pkcs12 opens it with the password" \
                        openssl pkcs12 "${legacy[@]}" -in "$f" -passin "file:$f.pass" -nokeys -out "$f.certs"
                ck_check "$t: it holds exactly the leaf and the Local CA (the chain)" \
                        test "$(fingerprints "$f.certs")" = "$(cat "$CK_RUN/$alg.pem" "$CK_RUN/ca.pem" | fingerprints -)"
                ck_check "$t: friendly name = CN ($cn) on the leaf and the key" bash -c "
                        openssl pkcs12 ${legacy[*]} -in '$f' -passin 'file:$f.pass' -nodes 2>/dev/null |
                                grep -c '^ *friendlyName: $cn\$' | grep -qx 2"
                ck_check "$t: the key inside matches the certificate (same SubjectPublicKeyInfo)" bash -c "
                        openssl pkcs12 ${legacy[*]} -in '$f' -passin 'file:$f.pass' -nocerts -nodes -out '$f.key' &&
                        [ -n \"\$(openssl pkey -in '$f.key' -pubout -outform DER | od -An -tx1)\" ]" &&
                        ck_check "$t: key SPKI equals certificate SPKI" \
                                test "$(spki "$f.key" key)" = "$(spki "$CK_RUN/$alg.pem" x509)"
                rm -f "$f.key"
                ck_check_fails "$t: a wrong password fails" \
                        openssl pkcs12 "${legacy[@]}" -in "$f" -passin "pass:${pw}x" -nokeys -noout
                ck_check_fails "$t: an empty password fails" \
                        openssl pkcs12 "${legacy[@]}" -in "$f" -passin "pass:" -nokeys -noout
                openssl pkcs12 "${legacy[@]}" -in "$f" -passin "file:$f.pass" -info -noout >"$f.info" 2>&1
                if [ "$mode" = default ]; then
                        ck_check "$t: -info: MAC is SHA-256" grep -q '^MAC: sha256' "$f.info"
                        ck_check "$t: -info: certificates under PBES2/PBKDF2/AES-256-CBC/hmacWithSHA256" \
                                grep -q '^PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration [0-9]*, PRF hmacWithSHA256' "$f.info"
                        ck_check "$t: -info: key under PBES2/PBKDF2/AES-256-CBC/hmacWithSHA256" \
                                grep -q '^Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration [0-9]*, PRF hmacWithSHA256' "$f.info"
                else
                        ck_check "$t: -info: MAC is SHA-1" grep -q '^MAC: sha1' "$f.info"
                        ck_check "$t: -info: certificates under 3DES" \
                                grep -q '^PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC' "$f.info"
                        ck_check "$t: -info: key under 3DES" \
                                grep -q '^Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC' "$f.info"
                fi
                grep -q '^MAC\|Keybag' "$f.info" || ck_diag_file "$f.info"
        done
done
ck_check "ExportPFX is audited (certificate.download_pfx.success), one entry per export" \
        ck_poll 10 bash -c "[ \$(journalctl --sync; journalctl --directory=/run/log/journal -o json CERTKEEPER_EVENT=certificate.download_pfx.success | grep -c '^{') = 4 ]"

# Two exports of the same certificate: two different passwords.
/usr/bin/python3 "$PFX_PY" "${certs[ec-256]}" "$CK_RUN/again1.pfx" >/dev/null
/usr/bin/python3 "$PFX_PY" "${certs[ec-256]}" "$CK_RUN/again2.pfx" >/dev/null
passwords+=("$(cat "$CK_RUN/again1.pfx.pass")" "$(cat "$CK_RUN/again2.pfx.pass")")
ck_check "two exports of one certificate give two different passwords" \
        test -s "$CK_RUN/again1.pfx.pass" -a "$(cat "$CK_RUN/again1.pfx.pass")" != "$(cat "$CK_RUN/again2.pfx.pass")"
ck_check "all ${#passwords[@]} passwords differ" \
        test "$(printf '%s\n' "${passwords[@]}" | sort -u | wc -l)" = "${#passwords[@]}"
ck_check "the first export's password does not open the second" \
        bash -c "! openssl pkcs12 -in '$CK_RUN/again2.pfx' -passin 'file:$CK_RUN/again1.pfx.pass' -noout 2>/dev/null"

# Exports are built on a worker (PBKDF2 takes a few ms a file): several at once, of both
# keys, each answered with its own file that opens with its own password, while a list
# is answered meanwhile.
pids=()
for i in 1 2 3 4 5 6; do
        alg=ec-256
        [ $((i % 2)) = 0 ] && alg=rsa-2048
        /usr/bin/python3 "$PFX_PY" "${certs[$alg]}" "$CK_RUN/par$i.pfx" >"$CK_RUN/par$i.out" &
        pids+=($!)
done
ck_check "a list is answered while PKCS#12 files are built" \
        ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 0
for p in "${pids[@]}"; do wait "$p"; done
par_ok() {
        local i
        for i in 1 2 3 4 5 6; do
                [ "$(cat "$CK_RUN/par$i.out")" = ok ] || return 1
                openssl pkcs12 -in "$CK_RUN/par$i.pfx" -passin "file:$CK_RUN/par$i.pfx.pass" -nokeys -noout 2>/dev/null ||
                        return 1
        done
}
ck_check "six exports at once: each answered, each file opens with its own password" par_ok
ck_check "and the six passwords differ" \
        test "$(for i in 1 2 3 4 5 6; do cat "$CK_RUN/par$i.pfx.pass"; echo; done | sort -u | wc -l)" = 6

# ---- No private key -------------------------------------------------------------------------

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" \
        -subj "/CN=csr-pfx.example.com" -out "$CK_RUN/req.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/req.csr")
ck_check "SubmitCSR: the order completes" test "$(ck_wait_order "$order")" = complete
csr_cert=$(ck_order_cert "$order")
before=$(ck_journal_count CERTKEEPER_EVENT=certificate.download_pfx.success)
line=$(/usr/bin/python3 "$PFX_PY" "$csr_cert" "$CK_RUN/none.pfx")
ck_check "ExportPFX of a CSR order's certificate: NoPrivateKey ($line)" \
        grep -q '^error org.certkeeper1.Error.NoPrivateKey' <<<"$line"
ck_check "... and nothing was written or audited" \
        test ! -e "$CK_RUN/none.pfx" -a "$(ck_journal_count CERTKEEPER_EVENT=certificate.download_pfx.success)" = "$before"
line=$(ck_dbus_error "${certs[ec-256]}" "$CERT_IFACE" ExportPFX '{"legacy": 1}' --signature 'a{sv}')
ck_check "ExportPFX with a mistyped option: InvalidArgument ($line)" \
        grep -q '^error org.certkeeper1.Error.InvalidArgument' <<<"$line"
line=$(ck_dbus_error /org/certkeeper1/certificate/999999 "$CERT_IFACE" ExportPFX '{}' --signature 'a{sv}')
ck_check "ExportPFX of an unknown certificate: NotFound ($line)" \
        grep -q '^error org.certkeeper1.Error.NotFound' <<<"$line"

# ---- The passwords leak nowhere --------------------------------------------------------------

ck_journal -o json >"$CK_RUN/journal.json"
ck_check "the journal holds the export audit entries (the dump is not empty)" \
        grep -q certificate.download_pfx.success "$CK_RUN/journal.json"
leaks() {
        local file=$1 pw
        for pw in "${passwords[@]}"; do
                if grep -aqF -- "$pw" "$file"; then echo "$pw found in $file"; return 1; fi
        done
        return 0
}
ck_check "no password in the journal (${#passwords[@]} passwords)" leaks "$CK_RUN/journal.json"
ck_check "no password in the daemon's own log" leaks "$CK_DAEMON_LOG"
sqlite3 "$CK_STATE_DIR/certkeeper.db" .dump >"$CK_RUN/store.dump"
ck_check "the store dump holds the audit rows (the dump is not empty)" \
        grep -q certificate.download_pfx.success "$CK_RUN/store.dump"
ck_check "no password in the store (sqlite3 .dump)" leaks "$CK_RUN/store.dump"
for f in "$CK_STATE_DIR"/certkeeper.db*; do
        ck_check "no password in the raw file $(basename "$f")" leaks "$f"
done

ck_stop_daemon
ck_done
