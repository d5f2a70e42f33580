# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for scenarios that order and inspect certificates. Source after lib.sh.

CK_MGR=(/org/certkeeper1 org.certkeeper1.Manager)

# ck_request CN [SAN...] [-- OPTIONS...] — RequestCertificate; prints the order path.
# OPTIONS are busctl a{sv} entries, e.g. key_algorithm s ec-384.
ck_request() {
        local cn=$1; shift
        local sans=() opts=()
        while [ $# -gt 0 ] && [ "$1" != -- ]; do sans+=("$1"); shift; done
        [ $# -gt 0 ] && shift
        opts=("$@")
        local n_opts=$(( ${#opts[@]} / 3 ))
        ck_busctl "${CK_MGR[@]}" RequestCertificate 'sasa{sv}' "$cn" ${#sans[@]} "${sans[@]}" "$n_opts" "${opts[@]}" |
                jq -r '.data[0]'
}

# ck_submit_csr FILE [OPTIONS...] — SubmitCSR with the file's PEM; prints the order path.
ck_submit_csr() {
        local file=$1; shift
        local n_opts=$(( $# / 3 ))
        # "--": a PEM starts with dashes, which busctl would take for an option.
        busctl --system --json=short call -- org.certkeeper1 "${CK_MGR[@]}" SubmitCSR 'sa{sv}' "$(cat "$file")" \
                "$n_opts" "$@" | jq -r '.data[0]'
}

# ck_prop PATH IFACE PROP — a property's value (jq -c of .data).
ck_prop() {
        busctl --system --json=short get-property org.certkeeper1 "$1" "$2" "$3" | jq -c '.data'
}

ck_order_status() {
        ck_prop "$1" org.certkeeper1.Order Status | tr -d '"'
}

ck_order_done() {
        local s
        s=$(ck_order_status "$1") || return 1
        [ "$s" = complete ] || [ "$s" = failed ]
}

# ck_wait_order PATH [TIMEOUT] — wait until the order is complete or failed; prints the status.
ck_wait_order() {
        ck_poll "${2:-60}" ck_order_done "$1" || { echo timeout; return 1; }
        ck_order_status "$1"
}

# ck_order_cert PATH — the certificate path of a complete order.
ck_order_cert() {
        ck_prop "$1" org.certkeeper1.Order Certificate | tr -d '"'
}

# ck_cert_pem CERTPATH [chain] — DownloadPEM.
ck_cert_pem() {
        if [ "${2:-}" = chain ]; then
                ck_busctl "$1" org.certkeeper1.Certificate DownloadPEM 'a{sv}' 1 chain b true | jq -r '.data[0]'
        else
                ck_busctl "$1" org.certkeeper1.Certificate DownloadPEM 'a{sv}' 0 | jq -r '.data[0]'
        fi
}

# ck_ca_pem — GetCACertificate.
ck_ca_pem() {
        ck_busctl "${CK_MGR[@]}" GetCACertificate | jq -r '.data[0]'
}

ck_order_count() {
        ck_prop /org/certkeeper1 org.certkeeper1.Manager OrderCount
}

ck_cert_count() {
        ck_prop /org/certkeeper1 org.certkeeper1.Manager CertificateCount
}

# ck_error_name CMD... — run a busctl call expected to fail; prints the D-Bus error name
# (busctl prints "Call failed: MESSAGE"; the name comes from a python3-dbus call instead).
ck_dbus_error() {
        /usr/bin/python3 "$CK_HELPERS/call.py" "$@"
}
