#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Orders and the inventory: for every key type the issued certificate verifies
# against the Local CA, and every property equals what openssl reads from it.
# A CSR order carries the CSR's key and leaves it with the caller.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ca_pem >"$CK_RUN/ca.pem"

# prop CERT NAME — a Certificate property, unquoted for strings.
prop() {
        ck_prop "$1" org.certkeeper1.Certificate "$2" | jq -r 'if type == "array" then join(",") else . end'
}

check_cert() {
        local cert=$1 pemfile=$2 alg=$3 cn=$4 sans=$5
        local txt=$pemfile.txt
        openssl x509 -in "$pemfile" -noout -text >"$txt"

        ck_check "$alg: verifies with openssl against GetCACertificate" \
                openssl verify -CAfile "$CK_RUN/ca.pem" -purpose sslserver "$pemfile"
        ck_check "$alg: CommonName is $cn" test "$(prop "$cert" CommonName)" = "$cn"
        ck_check "$alg: subject CN matches openssl" \
                bash -c "openssl x509 -in '$pemfile' -noout -subject -nameopt RFC2253 | grep -qx 'subject=CN=$cn'"
        local want_sans
        want_sans=$(grep -A1 'Subject Alternative Name' "$txt" | tail -1 | sed 's/DNS://g; s/ //g')
        ck_check "$alg: SubjectAlternativeNames equal the certificate's ($want_sans)" \
                test "$(prop "$cert" SubjectAlternativeNames)" = "$want_sans"
        ck_check "$alg: the SAN holds the CN and the requested names" test "$want_sans" = "$sans"
        ck_check "$alg: Issuer equals openssl's issuer" \
                test "issuer=$(prop "$cert" Issuer)" = "$(openssl x509 -in "$pemfile" -noout -issuer -nameopt RFC2253)"
        ck_check "$alg: Algorithm is $alg" test "$(prop "$cert" Algorithm)" = "$alg"
        local sigalg digest
        sigalg=$(grep -m1 'Signature Algorithm' "$txt" | awk '{print $3}')
        case $sigalg in ecdsa-with-SHA256|sha256WithRSAEncryption) digest=sha256 ;; ecdsa-with-SHA384) digest=sha384 ;; *) digest=$sigalg ;; esac
        ck_check "$alg: Digest is $digest ($sigalg)" test "$(prop "$cert" Digest)" = "$digest"
        local fp
        fp=$(openssl x509 -in "$pemfile" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
        ck_check "$alg: FingerprintSHA256 equals openssl's" test "$(prop "$cert" FingerprintSHA256)" = "$fp"
        local serial
        serial=$(openssl x509 -in "$pemfile" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')
        ck_check "$alg: SerialNumber equals openssl's" test "$(prop "$cert" SerialNumber)" = "$serial"
        ck_check "$alg: the serial is random 128-bit-ish (more than 64 bits)" test "${#serial}" -gt 16
        local nb na
        nb=$(date -d "$(openssl x509 -in "$pemfile" -noout -startdate | cut -d= -f2)" +%s)
        na=$(date -d "$(openssl x509 -in "$pemfile" -noout -enddate | cut -d= -f2)" +%s)
        ck_check "$alg: NotBefore equals openssl's" test "$(prop "$cert" NotBefore)" = "${nb}000000"
        ck_check "$alg: NotAfter equals openssl's" test "$(prop "$cert" NotAfter)" = "${na}000000"
        # The daemon counts whole days from its clock in µs; the window it read its clock in is
        # [before, after + 1 s): either end's count is right (a second boundary may fall inside).
        local before after dte hi lo
        before=$(date +%s)
        dte=$(prop "$cert" DaysUntilExpiry)
        after=$(date +%s)
        hi=$(( (na - before) / 86400 )) lo=$(( (na - after - 1) / 86400 ))
        ck_check "$alg: DaysUntilExpiry is $lo..$hi ($dte)" test "$dte" -ge "$lo" -a "$dte" -le "$hi"
        ck_check "$alg: Status is active, Source managed, Provider local" \
                test "$(prop "$cert" Status)/$(prop "$cert" Source)/$(prop "$cert" Provider)" = active/managed/local
        ck_check "$alg: basicConstraints CA:FALSE, critical" \
                bash -c "grep -A1 'Basic Constraints: critical' '$txt' | grep -q CA:FALSE"
        ck_check "$alg: EKU serverAuth and clientAuth" \
                bash -c "grep -A1 'Extended Key Usage' '$txt' | grep -q 'TLS Web Server Authentication, TLS Web Client Authentication'"
        ck_check "$alg: SKI and AKI present" bash -c "grep -q 'Subject Key Identifier' '$txt' && grep -q 'Authority Key Identifier' '$txt'"
        case $alg in
        rsa-*) ck_check "$alg: keyUsage digitalSignature, keyEncipherment" \
                bash -c "grep -A1 'Key Usage: critical' '$txt' | grep -q 'Digital Signature, Key Encipherment'" ;;
        *) ck_check "$alg: keyUsage digitalSignature only" \
                bash -c "grep -A1 'X509v3 Key Usage: critical' '$txt' | tail -1 | grep -qx ' *Digital Signature'" ;;
        esac
}

n=0
for alg in ec-256 ec-384 ed25519 rsa-2048 rsa-3072 rsa-4096; do
        n=$((n + 1))
        cn=host$n.example.com
        order=$(ck_request "$cn" "alt$n.example.com" "$cn" -- key_algorithm s "$alg" validity_days u 30)
        status=$(ck_wait_order "$order" 120)
        ck_check "$alg: the order completes" test "$status" = complete || continue
        ck_check "$alg: Kind automated, OrderType local-pki, Channel dbus, RequestedBy root" \
                test "$(ck_prop "$order" org.certkeeper1.Order Kind)$(ck_prop "$order" org.certkeeper1.Order OrderType)$(ck_prop "$order" org.certkeeper1.Order Channel)$(ck_prop "$order" org.certkeeper1.Order RequestedBy)" = '"automated""local-pki""dbus""root"'
        ck_check "$alg: Duration = FinishedAt - SubmittedAt" bash -c "
                s=\$(busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order SubmittedAt | jq .data)
                f=\$(busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order FinishedAt | jq .data)
                d=\$(busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Duration | jq .data)
                [ \$f -gt \$s ] && [ \$d = \$((f - s)) ]"
        cert=$(ck_order_cert "$order")
        ck_cert_pem "$cert" >"$CK_RUN/$alg.pem"
        check_cert "$cert" "$CK_RUN/$alg.pem" "$alg" "$cn" "$cn,alt$n.example.com"
        ck_check "$alg: HasPrivateKey is true for an automated order" test "$(prop "$cert" HasPrivateKey)" = true
        ck_check "$alg: validity_days=30 gives 30 days (+5 min backdating)" bash -c "
                nb=\$(date -d \"\$(openssl x509 -in '$CK_RUN/$alg.pem' -noout -startdate | cut -d= -f2)\" +%s)
                na=\$(date -d \"\$(openssl x509 -in '$CK_RUN/$alg.pem' -noout -enddate | cut -d= -f2)\" +%s)
                [ \$((na - nb)) = \$((30 * 86400 + 300)) ]"
done

# A CSR order: the key stays with the caller.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" \
        -subj "/CN=csr.example.com/O=Ignored Org" -addext "subjectAltName=DNS:www.csr.example.com" \
        -addext "basicConstraints=critical,CA:TRUE" -out "$CK_RUN/req.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/req.csr")
ck_check "SubmitCSR: the order completes" test "$(ck_wait_order "$order")" = complete
ck_check "SubmitCSR: Kind is csr" test "$(ck_prop "$order" org.certkeeper1.Order Kind)" = '"csr"'
cert=$(ck_order_cert "$order")
ck_cert_pem "$cert" >"$CK_RUN/csr.pem"
check_cert "$cert" "$CK_RUN/csr.pem" ec-256 csr.example.com "csr.example.com,www.csr.example.com"
ck_check "SubmitCSR: the certificate carries the CSR's public key" \
        test "$(openssl x509 -in "$CK_RUN/csr.pem" -noout -pubkey)" = "$(openssl pkey -in "$CK_RUN/csr.key" -pubout)"
ck_check "SubmitCSR: HasPrivateKey is false" test "$(prop "$cert" HasPrivateKey)" = false
ck_check "SubmitCSR: extensions of the CSR are not copied (CA:TRUE was asked for)" \
        bash -c "openssl x509 -in '$CK_RUN/csr.pem' -noout -text | grep -A1 'Basic Constraints' | grep -q CA:FALSE"
ck_check "SubmitCSR: the subject is the CN only (the O of the CSR is not copied)" \
        bash -c "openssl x509 -in '$CK_RUN/csr.pem' -noout -subject -nameopt RFC2253 | grep -qx 'subject=CN=csr.example.com'"
ck_check "DownloadPEM chain=true adds the CA" \
        bash -c "[ \$(busctl --system --json=short call org.certkeeper1 '$cert' org.certkeeper1.Certificate DownloadPEM 'a{sv}' 1 chain b true | jq -r '.data[0]' | grep -c 'BEGIN CERTIFICATE') = 2 ]"

# Inventory lookups.
fp=$(prop "$cert" FingerprintSHA256)
ck_check "GetCertificateByFingerprint finds it" \
        test "$(ck_busctl "${CK_MGR[@]}" GetCertificateByFingerprint s "$fp" | jq -r '.data[0]')" = "$cert"
FP_COLON=$(openssl x509 -in "$CK_RUN/csr.pem" -noout -fingerprint -sha256 | cut -d= -f2)
ck_check "GetCertificateByFingerprint accepts openssl's colon form" \
        test "$(ck_busctl "${CK_MGR[@]}" GetCertificateByFingerprint s "$FP_COLON" | jq -r '.data[0]')" = "$cert"
ck_check "ListCertificates lists all 7" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 0 | jq '.data[0] | length')" = 7
ck_check "ListCertificates common_name glob filters" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 common_name s 'host[12].*' | jq -c '[.data[0][][1]] | sort')" = '["host1.example.com","host2.example.com"]'
ck_check "ListCertificates expiring_within_days=31 finds the 6 30-day certificates" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 expiring_within_days u 31 | jq '.data[0] | length')" = 6
ck_check "ListCertificates source=discovered is empty, managed has 7" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 source s discovered | jq '.data[0] | length')/$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 source s managed | jq '.data[0] | length')" = 0/7
ck_check "ListCertificates status=active offset=2 limit=3 pages" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 3 status s active offset u 2 limit u 3 | jq '.data[0] | length')" = 3
ck_check "ListCertificates rows carry days until expiry" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 common_name s host1.example.com | jq '.data[0][0][6]')" = 29
ck_check "ListOrders filters by status" \
        test "$(ck_busctl "${CK_MGR[@]}" ListOrders 'a{sv}' 1 status s complete | jq '.data[0] | length')" = 7
ck_check "Describe returns every property" \
        bash -c "busctl --system --json=short call org.certkeeper1 '$cert' org.certkeeper1.Certificate Describe | jq -e '.data[0] | has(\"FingerprintSHA256\") and has(\"DaysUntilExpiry\") and has(\"Paths\") and .HasPrivateKey.data == false'"
ck_check "Describe is audited (certificate.view.accessed)" \
        ck_poll 10 ck_journal_has CERTKEEPER_EVENT=certificate.view.accessed CERTKEEPER_CERTIFICATE_ID="${cert##*/}"
ck_check "CertificateCount and OrderCount are 7" test "$(ck_cert_count)/$(ck_order_count)" = 7/7
ck_done
