#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Names (DESIGN.md): an IP literal is an iPAddress entry, a string with a URI scheme a URI
# entry, anything else a DNS name — in RequestCertificate, SubmitCSR, the spool and the Local
# PKI's certificates (checked with openssl x509 -text and openssl verify -verify_ip /
# -verify_hostname), in policy (AllowedNetworks=, AllowedURIPrefixes=), in every display
# (Order and Certificate SubjectAlternativeNames, certkeeperctl show, discovered certificates),
# and the ListCertificates filter `name` ("which certificates cover this name", certkeeperctl
# list --name).

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

CALL=(/usr/bin/python3 "$CK_HELPERS/call.py")
DISC=$CK_RUN/discovered
mkdir -p "$DISC"

# A third-party certificate with IP SANs where discovery looks, from a CA of its own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/other-ca.key" \
        -subj "/CN=Printer Vendor CA" -days 30 -out "$CK_RUN/other-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/disc.key" \
        -subj /CN=printer.lan -out "$CK_RUN/disc.csr" 2>/dev/null
printf 'subjectAltName=DNS:printer.lan,IP:192.168.7.9,IP:fd00::9\n' >"$CK_RUN/disc.ext"
openssl x509 -req -in "$CK_RUN/disc.csr" -CA "$CK_RUN/other-ca.pem" -CAkey "$CK_RUN/other-ca.key" -set_serial 7 \
        -days 30 -extfile "$CK_RUN/disc.ext" -out "$DISC/printer.pem" 2>/dev/null

ck_write_config "[Policy]
AllowedDomains=*.example.com example.com
AllowedNetworks=10.0.0.0/8 2001:db8::/32
AllowedURIPrefixes=spiffe://example.com/ns/prod/

[Discovery]
Paths=$DISC
RescanIntervalSec=0"
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_ca_pem >"$CK_RUN/ca.pem"

ck_check "GetPolicy shows AllowedNetworks and AllowedURIPrefixes" bash -c "
        ck_busctl() { busctl --system --json=short call org.certkeeper1 \"\$@\"; }
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetPolicy | jq -e '.data[0] |
                .AllowedNetworks.data == [\"10.0.0.0/8\",\"2001:db8::/32\"] and .AllowedNetworksConfigured.data
                and .AllowedNetworksEnforcement.data == \"hard\"
                and .AllowedURIPrefixes.data == [\"spiffe://example.com/ns/prod/\"]'"

# ---- RequestCertificate -------------------------------------------------------------------------
order=$(ck_request 10.0.0.5 2001:DB8:0::5 spiffe://Example.COM/ns/prod/sa/db db.example.com -- key_algorithm s ec-256)
ck_check "RequestCertificate with an IP CN, IPv6, URI and DNS SANs completes" \
        test "$(ck_wait_order "$order")" = complete
ck_check "the order's names are normalised (IPv6 canonical, URI scheme and host lower-case)" \
        test "$(ck_prop "$order" org.certkeeper1.Order SubjectAlternativeNames)" = \
        '["2001:db8::5","spiffe://example.com/ns/prod/sa/db","db.example.com"]'
cert=$(ck_order_cert "$order")
ck_cert_pem "$cert" >"$CK_RUN/ip.pem"
openssl x509 -in "$CK_RUN/ip.pem" -noout -text >"$CK_RUN/ip.txt"
ck_check "openssl x509 -text: iPAddress, URI and DNS entries, each of its type" \
        grep -q "IP Address:10.0.0.5, IP Address:2001:DB8:0:0:0:0:0:5, URI:spiffe://example.com/ns/prod/sa/db, DNS:db.example.com" \
        "$CK_RUN/ip.txt"
ck_check "the subject is the IP address" bash -c "openssl x509 -in '$CK_RUN/ip.pem' -noout -subject -nameopt RFC2253 | grep -qx 'subject=CN=10.0.0.5'"
ck_check "openssl verify -verify_ip 10.0.0.5" openssl verify -CAfile "$CK_RUN/ca.pem" -verify_ip 10.0.0.5 "$CK_RUN/ip.pem"
ck_check "openssl verify -verify_ip 2001:db8::5" openssl verify -CAfile "$CK_RUN/ca.pem" -verify_ip 2001:db8::5 "$CK_RUN/ip.pem"
ck_check "openssl verify -verify_hostname db.example.com" \
        openssl verify -CAfile "$CK_RUN/ca.pem" -verify_hostname db.example.com "$CK_RUN/ip.pem"
ck_check_fails "openssl verify -verify_ip 10.0.0.6 fails" \
        openssl verify -CAfile "$CK_RUN/ca.pem" -verify_ip 10.0.0.6 "$CK_RUN/ip.pem"
ck_check_fails "openssl verify -verify_hostname other.example.com fails" \
        openssl verify -CAfile "$CK_RUN/ca.pem" -verify_hostname other.example.com "$CK_RUN/ip.pem"
ck_check "Certificate SubjectAlternativeNames: the names as they are requested" \
        test "$(ck_prop "$cert" org.certkeeper1.Certificate SubjectAlternativeNames)" = \
        '["10.0.0.5","2001:db8::5","spiffe://example.com/ns/prod/sa/db","db.example.com"]'
ck_check "Certificate CommonName is the IP address" \
        test "$(ck_prop "$cert" org.certkeeper1.Certificate CommonName)" = '"10.0.0.5"'

# A URI alone: no subject, a critical SAN.
order=$(ck_request spiffe://example.com/ns/prod/sa/web -- key_algorithm s ec-256)
ck_check "a URI as the common name completes" test "$(ck_wait_order "$order")" = complete
ck_cert_pem "$(ck_order_cert "$order")" >"$CK_RUN/uri.pem"
ck_check "its subject is empty and the SAN critical, holding the URI" bash -c "
        openssl x509 -in '$CK_RUN/uri.pem' -noout -text >'$CK_RUN/uri.txt'
        grep -q 'Subject: *\$' '$CK_RUN/uri.txt' &&
        grep -A1 'Subject Alternative Name: critical' '$CK_RUN/uri.txt' | grep -q 'URI:spiffe://example.com/ns/prod/sa/web'"
ck_check "and it verifies" openssl verify -CAfile "$CK_RUN/ca.pem" "$CK_RUN/uri.pem"

# ---- refusals -----------------------------------------------------------------------------------
refused() { # DESC NEEDLE CN SAN... — RequestCertificate answered InvalidArgument, naming the value
        local desc=$1 needle=$2 cn=$3; shift 3
        local sans
        sans=$(printf '"%s",' "$@")
        out=$("${CALL[@]}" /org/certkeeper1 org.certkeeper1.Manager RequestCertificate \
                "\"$cn\", [${sans%,}], {\"key_algorithm\": \"ec-256\"}" --signature 'sasa{sv}')
        ck_check "$desc" bash -c '[[ $1 == "error org.certkeeper1.Error.InvalidArgument: "*"$2"* ]]' _ "$out" "$needle"
}
before=$(ck_order_count)
refused "an IPv4 address out of range is refused, named" "'10.0.0.256': not a valid IPv4 address" www.example.com 10.0.0.256
refused "a bad IPv6 address is refused" "'fd00:1:2': not a valid IPv6 address" www.example.com fd00:1:2
refused "an IPv6 address in brackets is refused" "without brackets" www.example.com "[2001:db8::1]"
refused "a URI with a space is refused" "a URI cannot contain ' '" www.example.com "https://www.example.com/a b"
refused "a URI with a wildcard host is refused" "is a wildcard" www.example.com "https://*.example.com/"
refused "host:port is no URI" "contains ':'" www.example.com "www.example.com:443"
ck_check "and none of them made an order" test "$(ck_order_count)" = "$before"

order=$(ck_request www.example.com 10.1.2.3 192.168.1.5 -- key_algorithm s ec-256)
ck_check "an address outside AllowedNetworks: the order fails" test "$(ck_wait_order "$order")" = failed
ck_check "its Error names the address, the networks and the rule" bash -c "
        busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error | jq -r .data |
        grep -F AllowedNetworks | grep -qF \"'192.168.1.5' is in none of 10.0.0.0/8 2001:db8::/32\""
order=$(ck_request www.example.com spiffe://example.com/ns/dev/sa/web -- key_algorithm s ec-256)
ck_check "a URI outside AllowedURIPrefixes: the order fails" test "$(ck_wait_order "$order")" = failed
ck_check "its Error names the URI and the rule" bash -c "
        busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error | jq -r .data |
        grep -qF \"AllowedURIPrefixes: 'spiffe://example.com/ns/dev/sa/web' starts with none of spiffe://example.com/ns/prod/\""

# ---- CSRs: SubmitCSR and the spool ----------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/csr.key" -subj /CN=web.example.com \
        -addext "subjectAltName=DNS:web.example.com,IP:10.1.2.3,IP:2001:db8::7,URI:spiffe://example.com/ns/prod/sa/web" \
        -out "$CK_RUN/web.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/web.csr")
ck_check "SubmitCSR of a CSR with IP and URI SANs completes" test "$(ck_wait_order "$order")" = complete
ck_check "the order lists them" test "$(ck_prop "$order" org.certkeeper1.Order SubjectAlternativeNames)" = \
        '["web.example.com","10.1.2.3","2001:db8::7","spiffe://example.com/ns/prod/sa/web"]'
ck_cert_pem "$(ck_order_cert "$order")" >"$CK_RUN/web.pem"
ck_check "the certificate carries them, each of its type" bash -c "
        openssl x509 -in '$CK_RUN/web.pem' -noout -text |
        grep -q 'DNS:web.example.com, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:7, URI:spiffe://example.com/ns/prod/sa/web'"
ck_check "openssl verify -verify_ip 10.1.2.3" openssl verify -CAfile "$CK_RUN/ca.pem" -verify_ip 10.1.2.3 "$CK_RUN/web.pem"
ck_check "openssl verify -verify_hostname web.example.com" \
        openssl verify -CAfile "$CK_RUN/ca.pem" -verify_hostname web.example.com "$CK_RUN/web.pem"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/bad.key" -subj /CN=bad.example.com \
        -addext "subjectAltName=IP:172.16.0.1" -out "$CK_RUN/bad.csr" 2>/dev/null
order=$(ck_submit_csr "$CK_RUN/bad.csr")
ck_check "a CSR with an address outside AllowedNetworks fails" test "$(ck_wait_order "$order")" = failed
ck_check "naming it" bash -c "busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error |
        jq -r .data | grep -qF \"AllowedNetworks: '172.16.0.1' is in none of\""

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CK_RUN/spool.key" -subj /CN=spool.example.com \
        -addext "subjectAltName=DNS:spool.example.com,IP:10.9.8.7,URI:spiffe://example.com/ns/prod/sa/spool" \
        -out "$CK_RUN/spool.tmp" 2>/dev/null
mv "$CK_RUN/spool.tmp" "$CK_SPOOL_DIR/incoming/ipsan.csr"
ck_wait_for "a spooled CSR with IP and URI SANs is issued" 30 test -s "$CK_SPOOL_DIR/issued/ipsan.crt"
ck_check "issued/ipsan.crt carries the address and the URI" bash -c "
        openssl x509 -in '$CK_SPOOL_DIR/issued/ipsan.crt' -noout -text |
        grep -q 'DNS:spool.example.com, IP Address:10.9.8.7, URI:spiffe://example.com/ns/prod/sa/spool'"
ck_check "and verifies for the address" \
        openssl verify -CAfile "$CK_RUN/ca.pem" -verify_ip 10.9.8.7 "$CK_SPOOL_DIR/issued/ipsan.crt"

# ---- discovered certificates ----------------------------------------------------------------------
ck_busctl "${CK_MGR[@]}" Rescan >/dev/null
disc=$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 source s discovered | jq -r '.data[0][0][0]')
ck_check "the discovered certificate is listed" test -n "$disc" -a "$disc" != null
ck_check "its SubjectAlternativeNames show the IP addresses" \
        test "$(ck_prop "$disc" org.certkeeper1.Certificate SubjectAlternativeNames)" = '["printer.lan","192.168.7.9","fd00::9"]'

# ---- which certificates cover this name -----------------------------------------------------------
order=$(ck_request '*.example.com' -- key_algorithm s ec-256)
ck_check "a wildcard certificate for *.example.com" test "$(ck_wait_order "$order")" = complete
wild=$(ck_order_cert "$order")
ip_cert=$cert
named() { # NAME — the certificate paths ListCertificates name=NAME gives, sorted, space-separated
        ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 name s "$1" | jq -r '[.data[0][][0]] | sort | join(" ")'
}
sorted() { printf '%s\n' "$@" | sort | paste -sd' '; }
ck_check "name 10.0.0.5: the certificate with that IP SAN (its CN)" test "$(named 10.0.0.5)" = "$ip_cert"
ck_check "name 2001:DB8:0::5: by value" test "$(named 2001:DB8:0::5)" = "$ip_cert"
ck_check "name db.example.com: the IP certificate (a DNS SAN) and the wildcard" \
        test "$(named db.example.com)" = "$(sorted "$ip_cert" "$wild")"
ck_check "name DB.Example.COM.: the same" test "$(named DB.Example.COM.)" = "$(sorted "$ip_cert" "$wild")"
ck_check "name a.b.example.com: nothing (a wildcard covers one label)" test "$(named a.b.example.com)" = ""
ck_check "name 192.168.7.9: the discovered certificate" test "$(named 192.168.7.9)" = "$disc"
ck_check "name spiffe://example.com/ns/prod/sa/db: the URI SAN" \
        test "$(named spiffe://example.com/ns/prod/sa/db)" = "$ip_cert"
ck_check "common_name db.example.com finds none of them (it is the CN glob)" \
        test "$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 1 common_name s db.example.com | jq '.data[0] | length')" = 0
out=$("${CALL[@]}" /org/certkeeper1 org.certkeeper1.Manager ListCertificates '{"name": ""}' --signature 'a{sv}')
ck_check "an empty name is InvalidArgument" bash -c '[[ $1 == "error org.certkeeper1.Error.InvalidArgument: name"* ]]' _ "$out"

# ---- certkeeperctl ----------------------------------------------------------------------------------
ids() { "$CERTKEEPERCTL" --no-legend --no-pager list "$@" | awk '{print $1}' | sort -n | paste -sd' '; }
id_of() { echo "${1##*/}"; }
ck_check "certkeeperctl list --name db.example.com" test "$(ids --name db.example.com)" = \
        "$(printf '%s\n' "$(id_of "$ip_cert")" "$(id_of "$wild")" | sort -n | paste -sd' ')"
ck_check "certkeeperctl list --name 10.0.0.5" test "$(ids --name 10.0.0.5)" = "$(id_of "$ip_cert")"
ck_check "certkeeperctl list --name 192.168.7.9 --source discovered" \
        test "$(ids --name 192.168.7.9 --source discovered)" = "$(id_of "$disc")"
ck_check "certkeeperctl list --cn db.example.com finds none" test "$(ids --cn db.example.com)" = ""
ck_check "certkeeperctl show lists the IP and URI SANs" bash -c "
        '$CERTKEEPERCTL' --no-pager show $(id_of "$ip_cert") >'$CK_RUN/show.txt' &&
        grep -q 2001:db8::5 '$CK_RUN/show.txt' && grep -q spiffe://example.com/ns/prod/sa/db '$CK_RUN/show.txt' &&
        grep -q 10.0.0.5 '$CK_RUN/show.txt'"
ck_check "certkeeperctl request 10.20.30.40 --san spiffe://example.com/ns/prod/sa/ctl" \
        "$CERTKEEPERCTL" --no-pager request 10.20.30.40 --san spiffe://example.com/ns/prod/sa/ctl --key ec-256
ck_check "and list --name finds it" test "$(ids --name 10.20.30.40 | wc -w)" = 1

ck_stop_daemon

# ---- a policy that restricts DNS names alone keeps restricting every kind of name -------------------
ck_write_config "[Policy]
AllowedDomains=*.example.com example.com"
ck_start_daemon || ck_bail "certkeeperd did not restart"
order=$(ck_request www.example.com 10.0.0.5 -- key_algorithm s ec-256)
ck_check "AllowedDomains= alone: an IP address fails the order" test "$(ck_wait_order "$order")" = failed
ck_check "naming AllowedDomains and AllowedNetworks=" bash -c "
        busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error | jq -r .data |
        grep -qF \"'10.0.0.5' is an IP address, which none of *.example.com example.com matches (AllowedNetworks= allows IP addresses)\""
order=$(ck_request www.example.com https://app.example.com/login -- key_algorithm s ec-256)
ck_check "a URI whose host AllowedDomains allows completes" test "$(ck_wait_order "$order")" = complete
order=$(ck_request www.example.com urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6 -- key_algorithm s ec-256)
ck_check "a URI without a host fails" test "$(ck_wait_order "$order")" = failed
ck_check "names the list that would allow it" bash -c "
        busctl --system --json=short get-property org.certkeeper1 '$order' org.certkeeper1.Order Error | jq -r .data |
        grep -qF 'AllowedURIPrefixes= allows URIs'"
ck_stop_daemon
ck_done
