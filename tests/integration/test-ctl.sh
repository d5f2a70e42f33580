#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# certkeeperctl against the real daemon: every command's human and JSON output
# (compared with what busctl and openssl say), exit codes (0, usage 2, not
# found 3, order failed 5), waiting for orders through signals, files written
# by download and export-pfx, the interactive revocation on a pseudo-terminal,
# the scripted one, and colour only on a terminal without NO_COLOR.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

# AllowedDomains is a hard rule: www.evil.org makes an order fail.
# Discovery scans one directory of the test's own, empty until "rescan" below.
mkdir -p "$CK_RUN/disc"
ck_write_config "[Policy]
AllowedDomains=*.example.com example.com
MaxValidityDays=365
MaxValidityDaysEnforcement=soft
[Discovery]
Paths=$CK_RUN/disc"
ck_start_daemon || ck_bail "certkeeperd did not start"

CTL=$CERTKEEPERCTL
PTY=(/usr/bin/python3 "$CK_HELPERS/pty-run.py")
W=$CK_RUN/ctl
mkdir -p "$W"
# Piped output: no colour whatever the environment says.
unset NO_COLOR

# ctl_rc WANT DESC ARGS... — certkeeperctl ARGS exits with WANT; stdout in
# CK_OUT, stderr in CK_ERR.
ctl_rc() {
        local want=$1 desc=$2 rc; shift 2
        CK_OUT=$("$CTL" "$@" 2>"$W/err")
        rc=$?
        CK_ERR=$(cat "$W/err")
        if [ "$rc" = "$want" ]; then
                ck_ok "$desc (exit $want)"
                return 0
        fi
        ck_not_ok "$desc (exit $rc, expected $want)"
        ck_diag "certkeeperctl $*"
        [ -n "$CK_OUT" ] && ck_diag "stdout: $CK_OUT"
        [ -n "$CK_ERR" ] && ck_diag "stderr: $CK_ERR"
        return 1
}

# jq_ok DESC JSON FILTER [ARGS...] — ok if jq -e FILTER is true on JSON.
jq_ok() {
        local desc=$1 json=$2 filter=$3; shift 3
        if jq -e "$@" "$filter" <<<"$json" >/dev/null 2>"$W/jqerr"; then
                ck_ok "$desc"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "jq $filter on: $(head -c 2000 <<<"$json")"
        [ -s "$W/jqerr" ] && ck_diag "$(cat "$W/jqerr")"
        return 1
}

# has DESC TEXT REGEX — ok if a line of TEXT matches the extended REGEX.
has() {
        if grep -Eq -- "$3" <<<"$2"; then
                ck_ok "$1"
                return 0
        fi
        ck_not_ok "$1"
        ck_diag "no line matches /$3/ in:"
        ck_diag "$2"
        return 1
}

# busctl's JSON wraps every variant in {"type", "data"}: unwrap them all.
UNVARIANT='def unv: if type == "object" and has("type") and has("data") then .data | unv
        elif type == "object" then map_values(unv) elif type == "array" then map(unv) else . end;'

# plain TEXT — TEXT without colour escape sequences.
plain() {
        sed 's/\x1b\[[0-9;]*m//g' <<<"$1"
}

cprop() {
        ck_prop "$1" org.certkeeper1.Certificate "$2" | jq -r .
}

oprop() {
        ck_prop "$1" org.certkeeper1.Order "$2" | jq -r .
}

fingerprint_of() {
        openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f
}

# ---------------------------------------------------------------------------
# Usage errors: exit 2, whatever the daemon would say.

ctl_rc 2 "no command is a usage error"
ctl_rc 2 "an unknown command is a usage error" frobnicate
ctl_rc 2 "an unknown option is a usage error" list --frobnicate
ctl_rc 2 "request without a common name is a usage error" request
ctl_rc 2 "request --key with an unknown algorithm is a usage error" request a.example.com --key dsa-1024
ctl_rc 2 "--json=xml is a usage error" list --json=xml
ctl_rc 2 "show with something that is no ID is a usage error" show not-an-id
ctl_rc 2 "revoke --reason with an unknown reason is a usage error" revoke 1 --reason whim
ctl_rc 2 "list --status bogus is a usage error, like --source bogus" list --status bogus
has "naming the statuses" "$CK_ERR" "expected active, expired or revoked"
ctl_rc 2 "list --source bogus: the same exit code" list --source bogus
ctl_rc 2 "orders --status bogus is a usage error" orders --status bogus
has "naming the order statuses" "$CK_ERR" "expected pending, processing, complete or failed"
ctl_rc 2 "request --days 36501 is a usage error" request a.example.com --days 36501
has "giving the daemon's range, 1 to 36500" "$CK_ERR" "from 1 to 36500"
ctl_rc 0 "--help" --help
has "--help lists orders --limit/--offset" "$CK_OUT" "orders \\[--status S\\] \\[--limit N\\] \\[--offset N\\]"
has "--help lists audit --limit, --oldest-first and --reverse" "$CK_OUT" "audit .*\\[--limit N\\] \\[--oldest-first\\] \\[--reverse\\]"
ctl_rc 2 "an option of another command is a usage error" list --chain
has "usage errors say what was wrong" "$CK_ERR" "--chain"

# ---------------------------------------------------------------------------
# status

ck_ca_pem >"$W/ca.pem"
version=$(ck_prop /org/certkeeper1 org.certkeeper1.Manager Version | jq -r .)
ca_subject=$(openssl x509 -in "$W/ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
ca_not_after=$(date -d "$(openssl x509 -in "$W/ca.pem" -noout -enddate | cut -d= -f2)" +%s)
ctl_rc 0 "status" status
has "status shows the daemon's Version" "$CK_OUT" "^ *Version: $version\$"
has "status shows the CA subject as openssl reads it" "$CK_OUT" "^ *CA: $ca_subject\$"
has "status shows the CA's expiry date" "$CK_OUT" "^ *CA expires: $(date -u -d "@$ca_not_after" '+%Y-%m-%d %H:%M:%S') UTC \\(in [0-9]+ days\\)"
has "status counts 0 certificates" "$CK_OUT" "^ *Certificates: 0\$"
ctl_rc 0 "status --json=pretty" status --json=pretty
has "--json=pretty is indented" "$CK_OUT" '^  "version"'
jq_ok "status JSON: version, CA subject and expiry, counts equal busctl and openssl" "$CK_OUT" \
        '.version == $v and .ca_subject == $s and .ca_not_after == ($na | tonumber) * 1000000
         and .certificate_count == 0 and .order_count == 0 and .open_alerts == 0' \
        --arg v "$version" --arg s "$ca_subject" --arg na "$ca_not_after"
# The daemon says where its configuration and its log are (Manager ConfigFile, Unit, LogFile):
# a test's daemon reads $CK_CONF and writes $CK_DAEMON_LOG, not /etc/certkeeper/certkeeper.conf
# and journalctl -u certkeeper.
jq_ok "status JSON: providers are objects, not arrays; config_file and log_file are the daemon's" "$CK_OUT" \
        '(.providers | length) > 0 and all(.providers[]; type == "object" and .name != null and .order_type != null
             and has("description"))
         and any(.providers[]; .name == "local" and .order_type == "local-pki")
         and .config_file == $conf and .log_file == $log and .unit == null' \
        --arg conf "$(realpath "$CK_CONF")" --arg log "$(realpath "$CK_DAEMON_LOG")"
ck_check "the Manager's ConfigFile property is that file" \
        test "$(ck_prop /org/certkeeper1 org.certkeeper1.Manager ConfigFile | jq -r .)" = "$(realpath "$CK_CONF")"
ctl_rc 0 "status" status
has "status names the daemon's config file" "$CK_OUT" "^ *Config: $(realpath "$CK_CONF")\$"
has "and its log" "$CK_OUT" "^ *Log: certkeeperd's log $(realpath "$CK_DAEMON_LOG")\$"
has "the Local CA provider names its CA as RFC 2253, like CA:" "$CK_OUT" "^ *Providers: local \\(local-pki\\): Local PKI CA $ca_subject\$"

# ---------------------------------------------------------------------------
# request: follows the order through signals, prints ID, object and fingerprint.

busctl --system monitor --json=short >"$W/monitor.json" 2>/dev/null &
monitor=$!
ck_poll 10 bash -c "busctl --system --json=short call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListNames | grep -q '\"org.certkeeper1\"' && [ -s '$W/monitor.json' ]"
ctl_rc 0 "request CN --san --key --days" request www.example.com --san alt.example.com --key rsa-3072 --days 42
kill "$monitor" 2>/dev/null
wait "$monitor" 2>/dev/null
req_out=$CK_OUT
cert1_id=$(sed -n 's/^Certificate: *//p' <<<"$req_out")
cert1=/org/certkeeper1/certificate/$cert1_id
order1_id=$(sed -n 's/^Order \([0-9]*\): .*/\1/p' <<<"$req_out")
has "request prints the order as complete" "$req_out" "^Order [0-9]+: complete\$"
has "request prints the certificate's object path" "$req_out" "^Object: +$cert1\$"
ck_check "the printed order's Certificate is the printed certificate" \
        test "$(oprop "/org/certkeeper1/order/$order1_id" Certificate)" = "$cert1"
ck_cert_pem "$cert1" >"$W/cert1.pem"
has "request prints the fingerprint openssl computes" "$req_out" "^Fingerprint: $(fingerprint_of "$W/cert1.pem")\$"
ck_check "--key rsa-3072 gave a 3072-bit RSA key" \
        bash -c "openssl x509 -in '$W/cert1.pem' -noout -text | grep -q 'Public-Key: (3072 bit)'"
ck_check "--san added the name" \
        bash -c "openssl x509 -in '$W/cert1.pem' -noout -ext subjectAltName | grep -q 'DNS:alt.example.com'"
ck_check "--days 42 gave 42 days (+5 min backdating)" bash -c "
        nb=\$(date -d \"\$(openssl x509 -in '$W/cert1.pem' -noout -startdate | cut -d= -f2)\" +%s)
        na=\$(date -d \"\$(openssl x509 -in '$W/cert1.pem' -noout -enddate | cut -d= -f2)\" +%s)
        [ \$((na - nb)) = \$((42 * 86400 + 300)) ]"
has "request prints the expiry date openssl reads" "$req_out" \
        "^Expires: +$(date -u -d "$(openssl x509 -in "$W/cert1.pem" -noout -enddate | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S') UTC"
# Waiting through signals: it subscribed to OrderChanged before the request
# and did not poll the order (at most the initial and the final GetAll).
ck_check "request subscribed to OrderChanged (AddMatch seen on the bus)" \
        bash -c "jq -r 'select(.member == \"AddMatch\") | .payload.data[0]' '$W/monitor.json' | grep -q \"member='OrderChanged'\""
n_getall=$(jq -r --arg p "/org/certkeeper1/order/$order1_id" \
        'select(.member == "GetAll" and .path == $p) | .path' "$W/monitor.json" | wc -l)
ck_check "request did not poll the order ($n_getall GetAll calls)" test "$n_getall" -le 2

ctl_rc 0 "request --json=short" request json.example.com --key ec-256 --json=short
req_json=$CK_OUT
cert2=$(jq -r .certificate <<<"$req_json")
ck_cert_pem "$cert2" >"$W/cert2.pem"
# One naming scheme: an object by its path under its D-Bus name, its number as NAME_id.
jq_ok "request JSON: order, status, certificate and fingerprint equal busctl's" "$req_json" \
        '.status == "complete" and .error == "" and .certificate == $c
         and .certificate_id == ($c | split("/") | last | tonumber) and .fingerprint_sha256 == $fp
         and .order == $o and .order_id == ($o | split("/") | last | tonumber) and .not_after > 0' \
        --arg c "$(oprop "$(jq -r .order <<<"$req_json")" Certificate)" \
        --arg o "$(jq -r .order <<<"$req_json")" --arg fp "$(fingerprint_of "$W/cert2.pem")"
ck_check "--key ec-256 gave an ec-256 certificate" test "$(cprop "$cert2" Algorithm)" = ec-256

ctl_rc 0 "request with a soft policy violation completes" request soft.example.com --key ec-256 --days 400
has "and prints the policy warning" "$CK_OUT" "^Policy warning: .*MaxValidityDays"

ctl_rc 0 "request --no-wait returns at once" request nowait.example.com --key ec-256 --no-wait
nowait_order=$(sed -n 's/^Order \([0-9]*\): .*/\1/p' <<<"$CK_OUT")
# The order may already be complete when certkeeperctl reads it back (Local PKI, ec-256): then it
# shows the certificate; otherwise how to follow the order.
if grep -q "^Order $nowait_order: complete" <<<"$CK_OUT"; then
        has "--no-wait on an order already complete shows its certificate" "$CK_OUT" "^Certificate: [0-9]+\$"
else
        has "--no-wait prints the order and how to follow it" "$CK_OUT" "^Follow it with: certkeeperctl order $nowait_order\$"
fi
ck_check "the --no-wait order completes" test "$(ck_wait_order "/org/certkeeper1/order/$nowait_order")" = complete

# A hard policy rule: the order fails, exit 5, with the rule named.
ctl_rc 5 "request refused by a hard policy rule: order failed" request www.evil.org --key ec-256
failed_out=$CK_OUT
failed_err=$CK_ERR
failed_id=$(sed -n 's/^Order \([0-9]*\): .*/\1/p' <<<"$failed_out")
failed=/org/certkeeper1/order/$failed_id
has "it prints the order as failed" "$failed_out" "^Order [0-9]+: failed\$"
has "stderr says why, naming the rule" "$failed_err" "order $failed_id failed: .*AllowedDomains.*www.evil.org"
has "and how to follow up" "$failed_err" "^Hint: .*certkeeperctl order $failed_id"
ck_check "the daemon has the order as failed" test "$(oprop "$failed" Status)" = failed
ctl_rc 5 "request --json=short of a failing order: exit 5 too" request bad.evil.org --json=short
jq_ok "its JSON has status failed and the daemon's Error" "$CK_OUT" \
        '.status == "failed" and .error == $e and .certificate == null and .certificate_id == null' \
        --arg e "$(oprop "$(jq -r .order <<<"$CK_OUT")" Error)"

# ---------------------------------------------------------------------------
# submit-csr

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/csr.key" \
        -subj "/CN=csr.example.com" -addext "subjectAltName=DNS:csr.example.com,DNS:csr2.example.com" \
        -out "$W/req.csr" 2>/dev/null
ctl_rc 0 "submit-csr FILE (PEM)" submit-csr "$W/req.csr" --days 30
csr_cert_id=$(sed -n 's/^Certificate: *//p' <<<"$CK_OUT")
csr_cert=/org/certkeeper1/certificate/$csr_cert_id
ck_cert_pem "$csr_cert" >"$W/csr.pem"
has "submit-csr prints the fingerprint openssl computes" "$CK_OUT" "^Fingerprint: $(fingerprint_of "$W/csr.pem")\$"
ck_check "the certificate carries the CSR's key" \
        test "$(openssl x509 -in "$W/csr.pem" -noout -pubkey)" = "$(openssl pkey -in "$W/csr.key" -pubout)"
ck_check "the order is a csr order" test "$(oprop "$(cprop "$csr_cert" Order)" Kind)" = csr
openssl req -in "$W/req.csr" -outform DER -out "$W/req.der"
ctl_rc 0 "submit-csr FILE (DER) --json=short" submit-csr "$W/req.der" --json=short
jq_ok "DER: the order completes with the same key" "$CK_OUT" '.status == "complete" and .certificate != null'
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n' >"$W/bad.csr"
ctl_rc 1 "submit-csr of a broken CSR fails" submit-csr "$W/bad.csr"
has "naming org.certkeeper1.Error.InvalidCSR" "$CK_ERR" "\\(org\\.certkeeper1\\.Error\\.InvalidCSR\\)"
ctl_rc 1 "submit-csr of a missing file fails" submit-csr "$W/missing.csr"

# ---------------------------------------------------------------------------
# rescan: a certificate found on disk joins the inventory as discovered.

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=disc.example.com" -days 100 \
        -addext basicConstraints=critical,CA:FALSE -keyout "$W/disc.key" -out "$CK_RUN/disc/site.pem" 2>/dev/null
ctl_rc 0 "rescan" rescan
disc_listed() {
        [ "$("$CTL" list --source discovered --json=short | jq -r '.[0].common_name')" = disc.example.com ]
}
ck_wait_for "list --source discovered shows the certificate found on disk" 20 disc_listed
disc_id=$("$CTL" list --source discovered --json=short | jq -r '.[0].id')
ctl_rc 0 "show of the discovered certificate" show "$disc_id"
has "shows the file it was found in" "$CK_OUT" "^ *Paths: $CK_RUN/disc/site\\.pem\$"
has "and that the daemon holds no key" "$CK_OUT" "^ *HasPrivateKey: no\$"
has "and its fingerprint" "$CK_OUT" "^ *FingerprintSHA256: $(fingerprint_of "$CK_RUN/disc/site.pem")\$"

# ---------------------------------------------------------------------------
# list

ctl_rc 0 "--json alone before the command is --json=short" --json list
jq_ok "one line of JSON, an array" "$CK_OUT" 'type == "array" and length > 0'
ck_check "on one line" test "$(wc -l <<<"$CK_OUT")" = 1

all_rows=$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' 0 | jq -c '.data[0]')
ctl_rc 0 "list" list
has "list has a header" "$CK_OUT" "^ID +COMMON NAME +STATUS +SOURCE +EXPIRES +LEFT +ISSUER\$"
has "list shows certificate $cert1_id with days left" "$CK_OUT" \
        "^$cert1_id +www\\.example\\.com +active +managed +[0-9-]+ [0-9:]+ UTC +in (41|42) days +$ca_subject\$"
has "list ends with a count" "$CK_OUT" "^$(jq length <<<"$all_rows") certificates listed\\.\$"
ctl_rc 0 "list --no-legend" list --no-legend
ck_check "--no-legend drops header and count" \
        test "$(wc -l <<<"$CK_OUT")" = "$(jq length <<<"$all_rows")"
ctl_rc 0 "list --json=short" list --json=short
jq_ok "list JSON equals ListCertificates row by row" "$CK_OUT" \
        '. as $j | ($rows | length) == ($j | length) and
         all(range(0; $j | length); . as $i | $j[$i] as $r | $rows[$i] as $b |
             $r.object == $b[0] and $r.id == ($b[0] | split("/") | last | tonumber) and $r.common_name == $b[1]
             and $r.status == $b[2] and $r.source == $b[3] and $r.issuer == $b[4]
             and $r.not_after == $b[5] and $r.days_until_expiry == $b[6])' --argjson rows "$all_rows"

# list_matches DESC CTL_ARGS -- BUSCTL_FILTER... : the same certificates as ListCertificates with that filter.
list_matches() {
        local desc=$1 a=() want got; shift
        while [ "$1" != -- ]; do a+=("$1"); shift; done
        shift
        want=$(ck_busctl "${CK_MGR[@]}" ListCertificates 'a{sv}' $(($# / 3)) "$@" | jq -c '[.data[0][][0]]')
        got=$("$CTL" list --json=short "${a[@]}" | jq -c '[.[].object]')
        if [ "$want" = "$got" ] && [ "$want" != "[]" ] || [ "${LIST_EMPTY_OK:-}" = 1 ] && [ "$want" = "$got" ]; then
                ck_ok "$desc ($got)"
        else
                ck_not_ok "$desc"
                ck_diag "certkeeperctl: $got; busctl: $want"
        fi
}
list_matches "list --cn GLOB" --cn 'csr*.example.com' -- common_name s 'csr*.example.com'
list_matches "list --cn www.example.com" --cn www.example.com -- common_name s www.example.com
list_matches "list --status active" --status active -- status s active
list_matches "list --source managed" --source managed -- source s managed
list_matches "list --source discovered" --source discovered -- source s discovered
list_matches "list --expiring-within 35" --expiring-within 35 -- expiring_within_days u 35
list_matches "list --limit 2 --offset 1" --limit 2 --offset 1 -- limit u 2 offset u 1
ck_check "list --expiring-within 35 has the 30-day CSR certificate but not the 42-day one" bash -c "
        '$CTL' list --json=short --expiring-within 35 | jq -e 'any(.[]; .id == $csr_cert_id) and all(.[]; .id != $cert1_id)'"

# ---------------------------------------------------------------------------
# show ID and show FINGERPRINT

describe=$(ck_busctl "$cert1" org.certkeeper1.Certificate Describe | jq -c "$UNVARIANT"' .data[0] | unv')
ctl_rc 0 "show ID --json=short" show "$cert1_id" --json=short
jq_ok "show JSON is Describe in snake_case, with the object" "$CK_OUT" \
        '.id == $d.Id and .common_name == $d.CommonName and .subject_alternative_names == $d.SubjectAlternativeNames
         and .fingerprint_sha256 == $d.FingerprintSHA256 and .days_until_expiry == $d.DaysUntilExpiry
         and .not_after == $d.NotAfter and .has_private_key == $d.HasPrivateKey and .order == $d.Order
         and .object == $c and .deployment == null and .deployment_name == null
         and (keys | length) == ($d | keys | length) + 3' --argjson d "$describe" --arg c "$cert1"
jq_ok "none is null: no revocation time, not 0" "$CK_OUT" '.revoked_at == null and $d.RevokedAt == 0' --argjson d "$describe"
jq_ok "show JSON has the key usage and extended key usage" "$CK_OUT" \
        '(.key_usage | index("digitalSignature")) != null and (.extended_key_usage | index("serverAuth")) != null'
ku=$(openssl x509 -in "$W/cert1.pem" -noout -ext keyUsage | sed -n 2p | sed 's/^ *//')
eku=$(openssl x509 -in "$W/cert1.pem" -noout -ext extendedKeyUsage | sed -n 2p | sed 's/^ *//')
jq_ok "as many key usages as openssl lists ($ku; $eku)" "$CK_OUT" \
        '(.key_usage | length) == ($ku | split(", ") | length) and (.extended_key_usage | length) == ($eku | split(", ") | length)' \
        --arg ku "$ku" --arg eku "$eku"
fp1=$(fingerprint_of "$W/cert1.pem")
ctl_rc 0 "show FINGERPRINT --json=short" show "$fp1" --json=short
jq_ok "show by fingerprint finds the same certificate" "$CK_OUT" '.id == ($id | tonumber) and .fingerprint_sha256 == $fp' \
        --arg id "$cert1_id" --arg fp "$fp1"
fp_colon=$(openssl x509 -in "$W/cert1.pem" -noout -fingerprint -sha256 | cut -d= -f2)
ctl_rc 0 "show accepts openssl's colon form of the fingerprint" show "$fp_colon" --json=short
jq_ok "and finds the same certificate" "$CK_OUT" '.id == ($id | tonumber)' --arg id "$cert1_id"
ctl_rc 0 "show ID" show "$cert1_id"
show_out=$CK_OUT
has "show: CommonName" "$show_out" "^ *CommonName: www\\.example\\.com\$"
has "show: the SANs" "$show_out" "^ *alt\\.example\\.com\$"
has "show: Issuer as openssl reads it" "$show_out" \
        "^ *Issuer: $(openssl x509 -in "$W/cert1.pem" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')\$"
has "show: FingerprintSHA256" "$show_out" "^ *FingerprintSHA256: $fp1\$"
has "show: SerialNumber as openssl reads it" "$show_out" \
        "^ *SerialNumber: $(openssl x509 -in "$W/cert1.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')\$"
has "show: NotAfter as openssl reads it, with days left" "$show_out" \
        "^ *NotAfter: $(date -u -d "$(openssl x509 -in "$W/cert1.pem" -noout -enddate | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S') UTC \\(in [0-9]+ days\\)\$"
has "show: Algorithm" "$show_out" "^ *Algorithm: rsa-3072\$"
has "show: HasPrivateKey" "$show_out" "^ *HasPrivateKey: yes\$"
has "show: KeyUsage" "$show_out" "^ *KeyUsage: digitalSignature\$"
has "show: ExtendedKeyUsage" "$show_out" "^ *ExtendedKeyUsage: serverAuth\$"
ctl_rc 3 "show of an unknown ID: not found" show 999999
has "not found names the certificate" "$CK_ERR" "999999"
has "naming org.certkeeper1.Error.NotFound, as for an unknown fingerprint" "$CK_ERR" "org\\.certkeeper1\\.Error\\.NotFound"
ctl_rc 3 "show of an unknown fingerprint: not found" show "$(printf '%064d' 0)"
has "naming org.certkeeper1.Error.NotFound" "$CK_ERR" "org\\.certkeeper1\\.Error\\.NotFound"

# ---------------------------------------------------------------------------
# orders and order

orders=$(ck_busctl "${CK_MGR[@]}" ListOrders 'a{sv}' 0 | jq -c '.data[0]')
ctl_rc 0 "orders --json=short" orders --json=short
jq_ok "orders JSON equals ListOrders row by row" "$CK_OUT" \
        '. as $j | ($rows | length) == ($j | length) and
         all(range(0; $j | length); . as $i | $j[$i] as $r | $rows[$i] as $b |
             $r.object == $b[0] and $r.common_name == $b[1] and $r.order_type == $b[2] and $r.status == $b[3]
             and $r.requested_by == $b[4] and $r.submitted_at == $b[5] and $r.duration == $b[6])' \
        --argjson rows "$orders"
ctl_rc 0 "orders --status failed --json=short" orders --status failed --json=short
jq_ok "only the failed orders" "$CK_OUT" \
        'length == ($rows | map(select(.[3] == "failed")) | length) and length >= 2 and all(.[]; .status == "failed")' \
        --argjson rows "$orders"
ctl_rc 0 "orders" orders
has "orders has a header" "$CK_OUT" "^ID +COMMON NAME +TYPE +STATUS +REQUESTED BY +SUBMITTED +DURATION\$"
has "orders shows the failed order" "$CK_OUT" "^$failed_id +www\\.evil\\.org +local-pki +failed +root +"

ctl_rc 0 "order ID of a failed order" order "$failed_id"
has "order: Status failed" "$CK_OUT" "^ *Status: failed\$"
has "order: the daemon's Error" "$CK_OUT" "^ *Error: $(oprop "$failed" Error | sed 's/[.*[]/\\&/g')\$"
has "order: the original parameters" "$CK_OUT" "^ *Parameters: .*common_name=www\\.evil\\.org"
has "order: the key algorithm asked for" "$CK_OUT" "key_algorithm=ec-256"
ctl_rc 0 "order ID --json=short" order "$failed_id" --json=short
jq_ok "order JSON is the order's properties in snake_case" "$CK_OUT" \
        '.id == $p.Id and .common_name == $p.CommonName and .order_type == $p.OrderType and .requested_by_uid == $p.RequestedByUID
         and .submitted_at == $p.SubmittedAt and .policy_warnings == $p.PolicyWarnings and .object == $o
         and (keys | length) == ($p | keys | length) + 1' --arg o "$failed" \
        --argjson p "$(busctl --system --json=short call org.certkeeper1 "$failed" org.freedesktop.DBus.Properties GetAll s org.certkeeper1.Order | jq -c "$UNVARIANT"' .data[0] | unv')"
jq_ok "with error and parameters; no certificate is null, not \"/\"" "$CK_OUT" \
        '(.error | test("AllowedDomains")) and .parameters.common_name == "www.evil.org" and .certificate == null'
ctl_rc 0 "order ID of a complete order" order "$order1_id"
has "order: its certificate" "$CK_OUT" "^ *Certificate: $cert1\$"
ctl_rc 3 "order of an unknown ID: not found" order 999999
ctl_rc 5 "resubmit of the failed order: it fails again" resubmit "$failed_id"
has "as a new order" "$CK_OUT" "^Order [0-9]+: failed\$"
ck_check "a new order, not the old one" bash -c "! grep -qx 'Order $failed_id: failed' <<<\"\$0\"" "$CK_OUT"
ctl_rc 1 "resubmit of a complete order is refused" resubmit "$order1_id"
has "naming org.certkeeper1.Error.NotFailed" "$CK_ERR" "org\\.certkeeper1\\.Error\\.NotFailed"

# ---------------------------------------------------------------------------
# download

ctl_rc 0 "download ID -o FILE" download "$cert1_id" -o "$W/dl.pem"
ck_check "the file is the certificate (openssl fingerprint)" test "$(fingerprint_of "$W/dl.pem")" = "$fp1"
ck_check "with one certificate" test "$(grep -c 'BEGIN CERTIFICATE' "$W/dl.pem")" = 1
ck_check "mode 0644" test "$(stat -c %a "$W/dl.pem")" = 644
# A download that cannot be written is not asked for, so not audited as one.
downloads() {
        # Repeated downloads by one caller share a row with a count (issue 17): count them all.
        ck_busctl "${CK_MGR[@]}" ListAuditEvents 'a{sv}' 1 event s certificate.download.success |
                jq '[.data[0][] | (.[3].count // "1" | tonumber)] | add // 0'
}
n_dl=$(downloads)
ctl_rc 1 "download does not overwrite a file" download "$cert1_id" -o "$W/dl.pem"
has "and says how to" "$CK_ERR" "--force"
ctl_rc 1 "download into a directory that does not exist fails" download "$cert1_id" -o "$W/no/such/dir.pem"
has "saying why" "$CK_ERR" "cannot write $W/no/such/dir\\.pem: No such file or directory"
ck_check "neither is recorded as certificate.download.success" test "$(downloads)" = "$n_dl"
ctl_rc 0 "download ID -o a new file" download "$cert1_id" -o "$W/dl2.pem"
ck_check "that one is recorded" test "$(downloads)" = "$((n_dl + 1))"
ctl_rc 0 "download --chain -o FILE --force" download "$cert1_id" --chain -o "$W/dl.pem" --force
ck_check "--chain: two certificates" test "$(grep -c 'BEGIN CERTIFICATE' "$W/dl.pem")" = 2
ck_check "--chain: the leaf verifies against the CA in the file" \
        bash -c "openssl verify -CAfile <(sed -n '/END CERTIFICATE/,\$p' '$W/dl.pem' | sed 1d) '$W/cert1.pem'"
ctl_rc 0 "download ID to stdout" download "$cert1_id"
ck_check "stdout has the certificate" test "$CK_OUT" = "$(cat "$W/cert1.pem")"
ctl_rc 3 "download of an unknown ID: not found" download 999999 -o "$W/none.pem"
ck_check "and writes no file" test ! -e "$W/none.pem"

# ---------------------------------------------------------------------------
# export-pfx

ctl_rc 0 "export-pfx ID -o FILE" export-pfx "$cert1_id" -o "$W/c.pfx"
pw=$(sed -n 's/^Password: //p' <<<"$CK_OUT")
has "the password comes with a warning that it is shown once" "$CK_ERR" "shown only once"
ck_check "the file is mode 0600" test "$(stat -c %a "$W/c.pfx")" = 600
ck_check "openssl pkcs12 opens it with the printed password" \
        openssl pkcs12 -in "$W/c.pfx" -passin "pass:$pw" -nodes -out "$W/c.pfx.pem"
ck_check "the certificate in it is the certificate" \
        bash -c "openssl x509 -in '$W/c.pfx.pem' -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f | grep -qx '$fp1'"
ck_check "the key in it matches the certificate" \
        test "$(openssl pkey -in "$W/c.pfx.pem" -pubout)" = "$(openssl x509 -in "$W/cert1.pem" -noout -pubkey)"
ck_check "AES-256-CBC by default" bash -c "openssl pkcs12 -in '$W/c.pfx' -passin 'pass:$pw' -info -noout 2>&1 | grep -q AES-256-CBC"
ck_check_fails "a wrong password does not open it" openssl pkcs12 -in "$W/c.pfx" -passin pass:wrong -noout
ctl_rc 0 "export-pfx --legacy" export-pfx "$cert1_id" -o "$W/legacy.pfx" --legacy
pw2=$(sed -n 's/^Password: //p' <<<"$CK_OUT")
ck_check "a new password each time" test -n "$pw2" -a "$pw2" != "$pw"
ck_check "mode 0600" test "$(stat -c %a "$W/legacy.pfx")" = 600
ck_check "openssl pkcs12 -legacy opens it: 3DES" \
        bash -c "openssl pkcs12 -legacy -in '$W/legacy.pfx' -passin 'pass:$pw2' -info -nodes 2>&1 | grep -q 'pbeWithSHA1And3-KeyTripleDES-CBC'"
# Without -o: a pipe gets the archive and stderr the password; a terminal a file named after
# the certificate, in the current directory, mode 0600, never replaced.
"$CTL" export-pfx "$cert1_id" >"$W/piped.pfx" 2>"$W/piped.err"
rc=$?
ck_check "export-pfx without -o, stdout a pipe: the archive on stdout (exit $rc)" test "$rc" = 0 -a -s "$W/piped.pfx"
pw3=$(sed -n 's/^Password: //p' "$W/piped.err")
ck_check "the password on stderr opens it" openssl pkcs12 -in "$W/piped.pfx" -passin "pass:$pw3" -noout
mkdir -p "$W/pfxdir"
out=$(cd "$W/pfxdir" && "${PTY[@]}" -- "$CTL" export-pfx "$cert1_id")
rc=$?
ck_check "export-pfx without -o on a terminal: a file (exit $rc)" test "$rc" = 0
ck_check "named after the common name, mode 0600" test "$(stat -c %a "$W/pfxdir/www.example.com.pfx")" = 600
has "and it says so" "$(plain "$out")" "^Wrote www\\.example\\.com\\.pfx "
pw4=$(plain "$out" | sed -n 's/^Password: //p' | tr -d '\r')
ck_check "openssl opens it with the printed password" openssl pkcs12 -in "$W/pfxdir/www.example.com.pfx" -passin "pass:$pw4" -noout
out=$(cd "$W/pfxdir" && "${PTY[@]}" -- "$CTL" export-pfx "$cert1_id" 2>&1)
rc=$?
ck_check "a second time it does not replace the file (exit $rc)" test "$rc" = 1
has "saying how to" "$(plain "$out")" "--force"
ctl_rc 1 "export-pfx of a certificate whose key the daemon does not hold" export-pfx "$csr_cert_id" -o "$W/csr.pfx"
has "names org.certkeeper1.Error.NoPrivateKey" "$CK_ERR" "org\\.certkeeper1\\.Error\\.NoPrivateKey"
ck_check "and leaves no file" test ! -e "$W/csr.pfx"

# ---------------------------------------------------------------------------
# revoke, interactively on a pseudo-terminal

ctl_rc 0 "request a certificate to revoke" request revoke-me.example.com --key ec-256 --json=short
rv_id=$(jq -r .certificate_id <<<"$CK_OUT")
rv=/org/certkeeper1/certificate/$rv_id
out=$("${PTY[@]}" --answer cancel -- "$CTL" revoke "$rv_id" --reason superseded)
rc=$?
ck_check "revoke, Enter pressed: cancelled (exit $rc)" test "$rc" = 1
has "it says so" "$out" "not revoked"
ck_check "the certificate is still active" test "$(cprop "$rv" Status)" = active
# One wrong code does not end it: it asks again, says how many tries are
# left, and something that is not six digits costs no try.
out=$("${PTY[@]}" --answer wrong,junk,wrong,cancel -- "$CTL" revoke "$rv_id" --reason superseded)
rc=$?
out=$(plain "$out")
has "revoke shows the certificate and a six-digit code" "$out" "Confirmation code: +[0-9]{6} "
has "and what it revokes" "$out" "CommonName: revoke-me\\.example\\.com"
has "and that its CA is told (the Local CA's CRL)" "$out" "Revocation is immediate and permanent"
has "a wrong code: asked again, 2 tries left" "$out" "does not match \\(2 tries left\\)\\. Type the code"
has "no code at all: asked again" "$out" "That is not a six-digit code\\. Type the code"
has "a second wrong code: 1 try left (not '1 tries')" "$out" "does not match \\(1 try left\\)"
ck_check "then Enter: cancelled (exit $rc)" test "$rc" = 1
ck_check "the certificate is still active" test "$(cprop "$rv" Status)" = active
out=$("${PTY[@]}" --answer wrong,wrong,wrong -- "$CTL" revoke "$rv_id" --reason superseded)
rc=$?
out=$(plain "$out")
ck_check "three wrong codes: refused (exit $rc)" test "$rc" = 1
has "the code is void, and it says how to go on" "$out" "now void"
has "in certkeeperctl's words, not the API's" "$out" "run certkeeperctl revoke $rv_id again"
ck_check "no API method names in what revoke prints" bash -c "! grep -q 'RequestRevocation' <<<\"\$0\"" "$out"
ck_check "the certificate is still active" test "$(cprop "$rv" Status)" = active
out=$("${PTY[@]}" --answer wrong,right -- "$CTL" revoke "$rv_id" --reason superseded)
rc=$?
ck_check "revoke, a wrong then the right code: revoked (exit $rc)" test "$rc" = 0
has "it says so, and that the CRL has it" "$out" "revoked \\(superseded\\): published in the Local PKI CRL"
ck_check "Status is revoked with reason superseded" \
        test "$(cprop "$rv" Status)/$(cprop "$rv" RevocationReason)" = revoked/superseded
ck_check "RevokedAt is set" test "$(cprop "$rv" RevokedAt)" -gt 0
ctl_rc 1 "revoke without a terminal refuses" revoke "$cert1_id"
has "and points to revoke-request" "$CK_ERR" "revoke-request"

# revoke-request + revoke --code, for scripts (separate processes).
ctl_rc 0 "revoke-request ID" revoke-request "$cert2"
code=$CK_OUT
ck_check "prints six digits" bash -c "[[ '$code' =~ ^[0-9]{6}\$ ]]"
wrong=$(printf '%06d' $(( (10#$code + 1) % 1000000 )))
ctl_rc 1 "revoke --code with a wrong code" revoke "$cert2" --code "$wrong" --reason keyCompromise
has "names ConfirmationMismatch" "$CK_ERR" "org\\.certkeeper1\\.Error\\.ConfirmationMismatch"
ck_check "the certificate is still active" test "$(cprop "$cert2" Status)" = active
ctl_rc 0 "revoke --code with the code" revoke "$cert2" --code "$code" --reason keyCompromise
ck_check "Status is revoked with reason keyCompromise" \
        test "$(cprop "$cert2" Status)/$(cprop "$cert2" RevocationReason)" = revoked/keyCompromise
ctl_rc 1 "revoke-request of a revoked certificate" revoke-request "$cert2"
has "names AlreadyRevoked" "$CK_ERR" "org\\.certkeeper1\\.Error\\.AlreadyRevoked"
ctl_rc 0 "revoke-request --json=short" revoke-request "$csr_cert_id" --json=short
jq_ok "JSON has the code" "$CK_OUT" '.code | test("^[0-9]{6}$")'
ctl_rc 1 "revoke --code without a live code" revoke "$cert1_id" --code 123456
has "names ConfirmationRequired" "$CK_ERR" "org\\.certkeeper1\\.Error\\.ConfirmationRequired"
ctl_rc 0 "list --status revoked --json=short" list --status revoked --json=short
jq_ok "lists the two revoked certificates" "$CK_OUT" '[.[].object] | sort == ([$a, $b] | sort)' \
        --arg a "$rv" --arg b "$cert2"

# A discovered certificate: certkeeper cannot tell its CA. revoke says so
# before anything happens and wants --local-only; afterwards it says the CA
# was not told.
ctl_rc 2 "revoke of a discovered certificate without --local-only is refused" revoke "$disc_id" --code 123456
has "saying its CA would not be told" "$CK_ERR" "would not revoke it at its CA: it was discovered on disk"
has "and what --local-only does" "$CK_ERR" "Hint: pass --local-only"
ck_check "the discovered certificate is still active" test "$(cprop "/org/certkeeper1/certificate/$disc_id" Status)" = active
ctl_rc 2 "--local-only on a Local CA certificate is refused (its CRL always has it)" revoke "$cert1_id" --local-only --code 123456
has "saying why" "$CK_ERR" "does not apply"
out=$("${PTY[@]}" --answer cancel -- "$CTL" revoke "$disc_id" --local-only)
rc=$?
out=$(plain "$out")
ck_check "revoke --local-only of a discovered certificate asks, Enter cancels (exit $rc)" test "$rc" = 1
has "the question names the scope" "$out" "Mark this certificate revoked in certkeeper only\\?"
has "and says the CA is not told" "$out" "Its CA will NOT be told: it was discovered on disk"
ctl_rc 0 "revoke-request of a discovered certificate" revoke-request "$disc_id"
dcode=$CK_OUT
has "notes that revoke needs --local-only" "$CK_ERR" "needs --local-only"
ctl_rc 0 "revoke --code --local-only of a discovered certificate" revoke "$disc_id" --code "$dcode" --local-only
has "says it is revoked in certkeeper's inventory only" "$CK_OUT" "marked revoked \\(unspecified\\) in certkeeper's inventory only"
has "and that the CA was not told" "$CK_OUT" "Its CA was NOT told"
ck_check "RevocationPropagation agrees" \
        test "$(cprop "/org/certkeeper1/certificate/$disc_id" RevocationPropagation)" = "not propagated: discovered certificate"

# A discovered certificate whose file is gone is marked in list.
ctl_rc 0 "list --source discovered --json=short, file still there" list --source discovered --json=short
jq_ok "present is true" "$CK_OUT" '.[0].present == true'
rm -f "$CK_RUN/disc/site.pem"
ctl_rc 0 "rescan after the file is removed" rescan
disc_gone() { [ "$(cprop "/org/certkeeper1/certificate/$disc_id" Present)" = false ]; }
ck_wait_for "the daemon notices (Present false)" 20 disc_gone
ctl_rc 0 "list --source discovered" list --source discovered
has "marks it as gone" "$CK_OUT" "^$disc_id +disc\\.example\\.com +revoked +discovered \\(files gone\\) "
ctl_rc 0 "list --source discovered --json=short" list --source discovered --json=short
jq_ok "with present false and source still discovered" "$CK_OUT" '.[0].present == false and .[0].source == "discovered"'

# ---------------------------------------------------------------------------
# ca and ca --crl

ctl_rc 0 "ca" ca
ck_check "ca prints GetCACertificate" test "$CK_OUT" = "$(cat "$W/ca.pem")"
ck_check "openssl parses it as a CA" bash -c "'$CTL' ca | openssl x509 -noout -text | grep -q 'CA:TRUE'"
ctl_rc 0 "ca --crl" ca --crl
printf '%s\n' "$CK_OUT" >"$W/crl.pem"
ck_check "openssl parses the CRL and it verifies against the CA" \
        openssl crl -in "$W/crl.pem" -CAfile "$W/ca.pem" -noout
for c in "$rv" "$cert2"; do
        serial=$(cprop "$c" SerialNumber | tr a-f A-F)
        ck_check "the CRL lists revoked serial $serial" \
                bash -c "openssl crl -in '$W/crl.pem' -noout -text | tr -d ' ' | grep -qi '^SerialNumber:0*$serial\$'"
done
ck_check_fails "openssl verify -crl_check refuses the revoked certificate" \
        openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl.pem" "$W/cert2.pem"
ck_check "and accepts a good one" openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl.pem" "$W/cert1.pem"

# ---------------------------------------------------------------------------
# alerts and ack

alerts=$(ck_busctl "${CK_MGR[@]}" ListAlerts 'a{sv}' 0 | jq -c '.data[0]')
ctl_rc 0 "alerts --json=short" alerts --json=short
jq_ok "alerts JSON equals ListAlerts" "$CK_OUT" \
        '. as $j | ($rows | length) == ($j | length) and ($j | length) >= 2 and
         all(range(0; $j | length); . as $i | $j[$i] as $r | $rows[$i] as $b |
             $r.id == $b[0] and $r.kind == $b[1] and $r.message == $b[2] and $r.subject == $b[3]
             and $r.created_at == $b[4] and $r.acknowledged == $b[5])' --argjson rows "$alerts"
alert=$(jq -r --arg o "$failed" '.[] | select(.[3] == $o) | .[0]' <<<"$alerts")
ctl_rc 0 "alerts" alerts
has "alerts shows the order_failed alert of order $failed_id" "$CK_OUT" "^$alert +order_failed +.* order $failed_id +.*AllowedDomains"
ctl_rc 0 "status counts the open alerts" status --json=short
jq_ok "open_alerts equals ListAlerts" "$CK_OUT" '.open_alerts == ($rows | length)' --argjson rows "$alerts"
ctl_rc 0 "ack ALERT" ack "$alert"
ctl_rc 0 "alerts after ack" alerts --json=short
jq_ok "the acknowledged alert is gone from alerts" "$CK_OUT" 'all(.[]; .id != ($a | tonumber))' --arg a "$alert"
ctl_rc 0 "alerts --all --json=short" alerts --all --json=short
jq_ok "alerts --all lists it as acknowledged" "$CK_OUT" 'any(.[]; .id == ($a | tonumber) and .acknowledged)' --arg a "$alert"
ctl_rc 0 "alerts --all" alerts --all
has "alerts --all has an ACK column" "$CK_OUT" "^ID +KIND +CREATED +SUBJECT +ACK +MESSAGE\$"
has "showing yes for it" "$CK_OUT" "^$alert +order_failed +.* yes +"
ctl_rc 3 "ack of an unknown alert: not found" ack 999999
ctl_rc 2 "ack of something that is no number: usage" ack first

# ---------------------------------------------------------------------------
# audit

audit_all=$(ck_busctl "${CK_MGR[@]}" ListAuditEvents 'a{sv}' 0 | jq -c '.data[0]')
ctl_rc 0 "audit --json=short" audit --json=short
jq_ok "audit JSON equals ListAuditEvents" "$CK_OUT" \
        '. as $j | ($rows | length) == ($j | length) and
         all(range(0; $j | length); . as $i | $j[$i] as $r | $rows[$i] as $b |
             $r.time == $b[0] and $r.event == $b[1] and $r.uid == $b[2] and $r.fields == $b[3])' \
        --argjson rows "$audit_all"
ctl_rc 0 "audit --event certificate.revoke.success --json=short" audit --event certificate.revoke.success --json=short
jq_ok "two revocations, with their reasons" "$CK_OUT" \
        'length == 3 and all(.[]; .event == "certificate.revoke.success") and ([.[].fields.reason] | sort) == ["keyCompromise","superseded","unspecified"]'
ctl_rc 0 "audit --event certificate.issued" audit --event certificate.issued
has "audit has a header" "$CK_OUT" "^TIME +EVENT +USER +SUBJECT +DETAILS\$"
has "and the issuance of certificate $cert1_id, by user name, the subject in a column" "$CK_OUT" \
        "^[0-9-]+ [0-9:]+ [A-Z]+ +certificate\\.issued +root +certificate $cert1_id +common_name=www\\.example\\.com\$"
ctl_rc 0 "audit" audit
audit_text=$CK_OUT
ck_check "audit rows do not repeat the uid or the message (--json has them)" \
        bash -c "! grep -Eq 'caller_uid=|caller_pid=|message=|fingerprint=' <<<\"\$0\"" "$audit_text"
longest=$(awk '{ if (length($0) > n) n = length($0) } END { print n }' <<<"$audit_text")
ck_diag "the longest audit line: $(awk '{ if (length($0) > n) { n = length($0); l = $0 } } END { print l }' <<<"$audit_text")"
ck_check "and stay short (longest line: $longest characters, the reason of a refusal)" test "$longest" -lt 250
ctl_rc 0 "audit --event revoke.success: the short name" audit --event revoke.success --json=short
jq_ok "is certificate.revoke.success" "$CK_OUT" 'length == 3 and all(.[]; .event == "certificate.revoke.success")'
ctl_rc 0 "audit --event policy_hard_fail --json=short" audit --event policy_hard_fail --json=short
jq_ok "a policy refusal names its rule once (message and reason)" "$CK_OUT" \
        'length > 0 and all(.[]; .fields.policy == "AllowedDomains" and (.fields.message | test("rule AllowedDomains: "))
             and (.fields.message | test("AllowedDomains: AllowedDomains") | not)
             and (.fields.reason | startswith("AllowedDomains") | not))'
# --since X --limit N: the newest N by default (said in --help), the first N from X on with
# --oldest-first; --reverse prints newest first.
since1=$(jq -r '.[0][0]' <<<"$audit_all")
matching=$(jq -c --arg s "$since1" 'map(select(.[0] >= ($s | tonumber) or ((.[3].last_time // "0") | tonumber) >= ($s | tonumber)))' <<<"$audit_all")
ctl_rc 0 "audit --since TIME --limit 1" audit --since "$since1" --limit 1 --json=short
jq_ok "is the newest event since then" "$CK_OUT" 'length == 1 and .[0].time == $m[-1][0] and .[0].event == $m[-1][1]' --argjson m "$matching"
ctl_rc 0 "audit --since TIME --limit 1 --oldest-first" audit --since "$since1" --limit 1 --oldest-first --json=short
jq_ok "is the first event since then" "$CK_OUT" 'length == 1 and .[0].time == $m[0][0] and .[0].event == $m[0][1]' --argjson m "$matching"
ctl_rc 0 "audit --since TIME --limit 3 --oldest-first" audit --since "$since1" --limit 3 --oldest-first --json=short
jq_ok "the first three, oldest first" "$CK_OUT" '[.[].time] == [$m[0:3][][0]]' --argjson m "$matching"
ctl_rc 0 "audit --reverse" audit --reverse --json=short
jq_ok "newest first" "$CK_OUT" '[.[].time] == ([$rows[][0]] | reverse)' --argjson rows "$audit_all"
since=$(jq -r '[.[] | select(.[1] == "certificate.download_pfx.success")][0][0]' <<<"$audit_all")
ctl_rc 0 "audit --since TIME (µs)" audit --since "$since" --json=short
jq_ok "only events from then on, the same as ListAuditEvents since" "$CK_OUT" \
        'length > 0 and all(.[]; .time >= ($s | tonumber)) and length == ($rows | map(select(.[0] >= ($s | tonumber))) | length)' \
        --arg s "$since" --argjson rows "$audit_all"
ctl_rc 0 "audit --since '$(date -d @$(( since / 1000000 - 1)) '+%Y-%m-%d %H:%M:%S')' (local time)" \
        audit --since "$(date -d @$(( since / 1000000 - 1)) '+%Y-%m-%d %H:%M:%S')" --json=short
jq_ok "the same events and those of the second before" "$CK_OUT" \
        'all(.[]; ((.fields.last_time // (.time | tostring)) | tonumber) >= ((($s | tonumber) / 1000000 | floor) - 1) * 1000000) and length > ($rows | map(select(.[0] >= ($s | tonumber))) | length) - 1' \
        --arg s "$since" --argjson rows "$audit_all"
ctl_rc 0 "audit --since tomorrow-ish (+1d relative: none)" audit --since "$(date -d '+1 day' '+%Y-%m-%d')" --json=short
jq_ok "no events" "$CK_OUT" 'length == 0'
ctl_rc 1 "audit --event with an unknown event" audit --event no.such.event
has "names InvalidArgument" "$CK_ERR" "org\\.certkeeper1\\.Error\\.InvalidArgument"
has "the daemon lists the valid events" "$CK_ERR" "expected one of certificate\\.request_automated\\.submitted .*certificate\\.revoke\\.requested"
has "and the hint their short names" "$CK_ERR" "^Hint: --event takes one of: .*revoke\\.requested"
ctl_rc 2 "audit --since with a bad time" audit --since yesterday-ish

# ---------------------------------------------------------------------------
# policy

policy=$(ck_busctl "${CK_MGR[@]}" GetPolicy | jq -c "$UNVARIANT"' .data[0] | unv')
ctl_rc 0 "policy --json=short" policy --json=short
jq_ok "policy JSON is GetPolicy in snake_case" "$CK_OUT" \
        '(keys | length) == ($p | keys | length) and .min_rsa_bits == $p.MinRSABits and .max_sans == $p.MaxSANs
         and .allowed_key_algorithms == $p.AllowedKeyAlgorithms and .max_sans_enforcement == $p.MaxSANsEnforcement' \
        --argjson p "$policy"
jq_ok "with the configured rules" "$CK_OUT" \
        '.allowed_domains == ["*.example.com","example.com"] and .max_validity_days == 365 and .max_validity_days_enforcement == "soft"'
ctl_rc 0 "policy" policy
has "policy lists AllowedDomains" "$CK_OUT" "^ *AllowedDomains: \\*\\.example\\.com\$"
has "policy shows the enforcement" "$CK_OUT" "^ *MaxValidityDaysEnforcement: soft\$"

# ---------------------------------------------------------------------------
# status again: the counts follow.

# ---------------------------------------------------------------------------
# overview: per managed certificate, names, expiry, deployment, last order, alerts.

ctl_rc 0 "overview --json=short" overview --json=short
ov=$CK_OUT
jq_ok "overview lists the active managed certificates, as list does" "$ov" \
        '[.[].object] | sort == ($l | map(select(.source == "managed" and .status == "active")) | [.[].object] | sort)' \
        --argjson l "$("$CTL" list --json=short)"
jq_ok "with names, expiry, the order that issued it, no deployment, no alert" "$ov" \
        '.[] | select(.id == ($id | tonumber)) | .common_name == "www.example.com"
             and .subject_alternative_names == ["www.example.com", "alt.example.com"] and .not_after > 0
             and .last_order.object == $o and .last_order.status == "complete" and .deployment == null and .alerts == []' \
        --arg id "$cert1_id" --arg o "/org/certkeeper1/order/$order1_id"
ctl_rc 0 "overview" overview
has "a block per certificate, named" "$CK_OUT" "^www\\.example\\.com \\(certificate $cert1_id\\)\$"
has "its names" "$CK_OUT" "^ *Names: www\\.example\\.com, alt\\.example\\.com\$"
has "its last order" "$CK_OUT" "^ *Last order: $order1_id, complete, submitted "
has "and a count" "$CK_OUT" "^[0-9]+ managed certificates"
jq_ok "every open alert about a listed certificate or its order is in its entry" "$ov" \
        'all($a[]; . as $al | all($ov[]; if (.object == $al.subject or .last_order.object == $al.subject)
                                            then any(.alerts[]; .id == $al.id) else true end))' \
        --argjson a "$("$CTL" alerts --json=short)" --argjson ov "$ov"
ctl_rc 0 "overview --all --json=short" overview --all --json=short
jq_ok "--all adds the revoked ones" "$CK_OUT" 'any(.[]; .object == $c and .status == "revoked")' --arg c "$cert2"

ctl_rc 0 "status --json=short" status --json=short
jq_ok "counts equal CertificateCount and OrderCount" "$CK_OUT" \
        '.certificate_count == ($c | tonumber) and .order_count == ($o | tonumber)' \
        --arg c "$(ck_cert_count)" --arg o "$(ck_order_count)"

# ---------------------------------------------------------------------------
# Bash completion, reading IDs from the real daemon.

complete_words() {
        bash -c '
                compopt() { :; }
                PATH=$1:$PATH
                . "$2"
                shift 2
                COMP_WORDS=("$@")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                _certkeeperctl
                printf "%s\n" "${COMPREPLY[@]}" | sort -n | tr "\n" " " | sed "s/ *\$//"' \
                complete "$W/bin" "$CK_SOURCE_ROOT/completion/certkeeperctl" certkeeperctl "$@"
}
mkdir -p "$W/bin"
ln -sf "$CTL" "$W/bin/certkeeperctl"
want=$("$CTL" list --json=short | jq -r '[.[].id] | sort | map(tostring) | join(" ")')
ck_check "completion of show offers the certificate IDs ($want)" test "$(complete_words show '')" = "$want"
want=$("$CTL" orders --status failed --json=short | jq -r '[.[].id] | sort | map(tostring) | join(" ")')
ck_check "completion of resubmit offers the failed orders ($want)" test "$(complete_words resubmit '')" = "$want"
want=$("$CTL" alerts --json=short | jq -r '[.[].id] | sort | map(tostring) | join(" ")')
ck_check "completion of ack offers the open alerts ($want)" test "$(complete_words ack '')" = "$want"

# ---------------------------------------------------------------------------
# Access denied: exit 4, with the polkit action named (no polkitd runs here,
# so only root is authorized).

out=$(runuser -u nobody -- "$CTL" --no-ask-password audit 2>&1)
rc=$?
ck_check "audit as an unprivileged user: access denied (exit $rc)" test "$rc" = 4
has "naming AccessDenied and the action to ask for" "$out" "org\\.freedesktop\\.DBus\\.Error\\.AccessDenied"
has "and the polkit action" "$out" "^Hint: .*org\\.certkeeper1\\.manage"

# ---------------------------------------------------------------------------
# Providers: one that is not configured is the daemon's error, not an order.

n_orders=$(ck_order_count)
ctl_rc 1 "request --provider acme without [ACME]" request p.example.com --provider acme
has "names the D-Bus error" "$CK_ERR" "\\(org\\.certkeeper1\\.Error\\.[A-Za-z]+\\)\$"
ck_check "and no order was created" test "$(ck_order_count)" = "$n_orders"

# ---------------------------------------------------------------------------
# Colour: only on a terminal, never with NO_COLOR.

ctl_rc 0 "list, piped" list
ck_check "piped output has no escape sequences" bash -c "! grep -q $'\\x1b' <<<\"\$0\"" "$CK_OUT"
out=$("${PTY[@]}" -- "$CTL" list)
ck_check "on a terminal, list is coloured (revoked in red)" bash -c "grep -q $'\\x1b\\[0;31mrevoked' <<<\"\$0\"" "$out"
out=$("${PTY[@]}" -- env NO_COLOR=1 "$CTL" list)
ck_check "on a terminal with NO_COLOR=1, list has no escape sequences" bash -c "! grep -q $'\\x1b' <<<\"\$0\"" "$out"
has "but the same rows" "$out" "revoked"
out=$("${PTY[@]}" -- env NO_COLOR=1 "$CTL" show "$rv_id")
ck_check "show with NO_COLOR=1 on a terminal has no escape sequences" bash -c "! grep -q $'\\x1b' <<<\"\$0\"" "$out"
out=$("${PTY[@]}" -- "$CTL" show "$rv_id")
ck_check "show on a terminal colours the status" bash -c "grep -q $'\\x1b\\[' <<<\"\$0\"" "$out"
out=$("${PTY[@]}" -- env NO_COLOR=1 "$CTL" request nocolor.example.com --key ec-256)
ck_check "request with NO_COLOR=1 on a terminal: no colour" bash -c "! grep -q $'\\x1b\\[[0-9;]*m' <<<\"\$0\"" "$out"

# ---------------------------------------------------------------------------
# With the daemon gone: a clear error, not a hang.

ck_stop_daemon
ctl_rc 1 "status without the daemon fails" status
has "with a hint to check the service" "$CK_ERR" "certkeeperd running"

# ---------------------------------------------------------------------------
# policy without a [Policy] section: a 0 that means "no limit" says so.

ck_write_config ""
ck_start_daemon || ck_bail "certkeeperd did not start again"
ctl_rc 0 "policy with the defaults" policy
has "MaxValidityDays 0 says it means no limit" "$CK_OUT" "^ *MaxValidityDays: 0 \\(no limit\\)\$"
has "AllowedDomains not configured says any name" "$CK_OUT" "^ *AllowedDomains: any \\(not configured\\)\$"
ctl_rc 0 "policy --json=short" policy --json=short
jq_ok "while JSON keeps the number" "$CK_OUT" '.max_validity_days == 0 and .allowed_domains == []'

ck_done
