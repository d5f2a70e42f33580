# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for deployment scenarios. Source after lib.sh and lib-orders.sh.

CK_DEPLOY_IFACE=org.certkeeper1.Deployment

# ck_deploy_create NAME BUSCTL-A{SV}-ENTRIES... — CreateDeployment; prints the object path.
# Entries as busctl takes them: common_name s www.example.test exec as 2 /bin/true x
ck_deploy_create() {
        local name=$1; shift
        local n=0 args=("$@") i=0
        # Count the entries: KEY TYPE VALUE (an "as" value is COUNT ITEMS...).
        while [ $i -lt ${#args[@]} ]; do
                local type=${args[$((i + 1))]}
                if [ "$type" = as ]; then
                        i=$((i + 3 + args[$((i + 2))]))
                else
                        i=$((i + 3))
                fi
                n=$((n + 1))
        done
        ck_busctl "${CK_MGR[@]}" CreateDeployment 'sa{sv}' "$name" "$n" "$@" | jq -r '.data[0]'
}

# ck_dprop PATH PROP — a Deployment property (jq -c of .data).
ck_dprop() {
        ck_prop "$1" "$CK_DEPLOY_IFACE" "$2"
}

ck_dstate() {
        ck_dprop "$1" State | tr -d '"'
}

ck_dstate_is() {
        [ "$(ck_dstate "$1")" = "$2" ]
}

ck_drevision_is() {
        [ "$(ck_dprop "$1" Revision)" = "$2" ]
}

# ck_key_matches DIR — privkey.pem and cert.pem belong together (openssl).
ck_key_matches() {
        local a b
        a=$(openssl pkey -in "$1/privkey.pem" -pubout 2>/dev/null) || return 1
        b=$(openssl x509 -in "$1/cert.pem" -noout -pubkey 2>/dev/null) || return 1
        [ -n "$a" ] && [ "$a" = "$b" ]
}

ck_serial_of() {
        openssl x509 -in "$1" -noout -serial | cut -d= -f2
}

# ck_call_error PATH IFACE METHOD PYARGS [--signature SIG] — the D-Bus error name of a call
# expected to fail (call.py), or "ok" when it did not.
ck_call_error() {
        /usr/bin/python3 "$CK_SOURCE_ROOT/tests/integration/call.py" "$@" | sed -n -e 's/^error \([^:]*\):.*/\1/p' -e 's/^ok.*/ok/p'
}
