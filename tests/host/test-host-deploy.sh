#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# End to end on a real systemd host (issue 19, item 6; run by tests/host/run.sh
# inside a booted throw-away container): the installed certkeeper.service (user
# certkeeper, the full sandbox) keeps a deployment for a real nginx.service.
# "certkeeperctl deploy create www --reload nginx.service" puts the key and
# certificate in /etc/certkeeper/live/www, nginx serves them, and after
# "certkeeperctl deploy renew www" a TLS client sees the new serial from nginx,
# which systemd reloaded (not restarted) through ReloadOrTryRestartUnit as the
# polkit rule 50-certkeeper-reload.rules allows.

[ "${CK_HOST:-}" = 1 ] || { echo "1..0 # SKIP runs inside tests/host/run.sh only"; exit 0; }

CK_RUN=$(mktemp -d /run/ck-host.XXXXXX)
DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
CERTKEEPERCTL=$(command -v certkeeperctl)
export CK_RUN DBUS_SYSTEM_BUS_ADDRESS CERTKEEPERCTL
CK_NO_STAGE=1
# shellcheck source=../integration/lib.sh
source "$CK_SOURCE_ROOT/tests/integration/lib.sh"

LIVE=/etc/certkeeper/live
ctl() { certkeeperctl --no-ask-password "$@"; }

on_failure_logs() {
        [ "$CK_TAP_FAILED" -gt 0 ] || return 0
        ck_diag "--- journalctl -u certkeeper -u nginx -u polkit (last lines) ---"
        journalctl --no-pager -n 60 -u certkeeper -u nginx -u polkit 2>&1 | while IFS= read -r l; do echo "#   $l"; done
}

# ---- installation: what a package's maintainer scripts do --------------------
ck_check "certkeeperctl and certkeeperd are installed" \
        test -x "$CERTKEEPERCTL" -a -x /usr/local/libexec/certkeeperd
ck_check "systemd-sysusers creates the certkeeper user" systemd-sysusers
ck_check "systemd-tmpfiles --create certkeeper.conf" systemd-tmpfiles --create certkeeper.conf
uid=$(id -u certkeeper)
ck_check "DeployDirectory $LIVE is 0755 certkeeper" \
        test "$(stat -c '%a %U %G' $LIVE)" = "755 certkeeper certkeeper"
ck_check "deployments.d is 0755 root" \
        test "$(stat -c '%a %U' /etc/certkeeper/deployments.d)" = "755 root"
ck_check "systemctl daemon-reload" systemctl daemon-reload
# The bus policy (who may own org.certkeeper1) arrived after dbus-daemon started.
ck_check "systemctl reload dbus" systemctl reload dbus

# ---- the real service ---------------------------------------------------------
ck_check "systemctl start certkeeper (Type=notify: ready when it returns)" systemctl start certkeeper.service
main_pid=$(systemctl show -P MainPID certkeeper.service)
ck_check "certkeeperd runs as user certkeeper" \
        test "$(ps -o user= -p "$main_pid" 2>/dev/null)" = certkeeper
ck_check "with CAP_CHOWN CAP_DAC_READ_SEARCH CAP_NET_BIND_SERVICE and no other capability" \
        test "$(awk '/^CapEff:/ { print $2 }' "/proc/$main_pid/status")" = 0000000000000405
ck_check "certkeeperctl status answers" ctl status
exposure=$(systemd-analyze security --no-pager certkeeper.service 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
ck_check "systemd-analyze security of the running unit: exposure ${exposure:-?} at most 2.0" \
        awk -v s="${exposure:-99}" 'BEGIN { exit !(s + 0 <= 2.0) }'
# Inside the service's own mount namespace, as its user: DeployDirectory is
# writable, the rest of /etc is not, even where the permissions would allow it.
as_daemon() { nsenter -t "$main_pid" -m -S "$uid" -G "$(id -g certkeeper)" "$@"; }
install -d -o certkeeper -g certkeeper -m 0755 /etc/ck-host-probe
ck_check "the daemon may write $LIVE inside its sandbox" \
        as_daemon sh -c "touch $LIVE/.probe && rm $LIVE/.probe"
ck_check_fails "and not /etc elsewhere (ProtectSystem=strict), though the permissions allow it" \
        as_daemon touch /etc/ck-host-probe/x
rm -rf /etc/ck-host-probe

if ! busctl --system introspect org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager 2>/dev/null |
        grep -q '^\.CreateDeployment '; then
        ck_skip "deploy create, nginx, renew, new serial" "this certkeeperd has no deployment API yet"
        on_failure_logs
        ck_done
fi

# ---- a deployment for nginx -----------------------------------------------------
ck_check "certkeeperctl deploy create www --reload nginx.service --wait" \
        ctl deploy create www --cn www.example.test --san www.example.test --reload nginx.service --wait \
        --timeout 120
ck_diag "$CK_OUT"
ck_check "privkey.pem is 0600 root:root" test "$(stat -L -c '%a %U %G' $LIVE/www/privkey.pem)" = "600 root root"
ck_check "fullchain.pem is 0644" test "$(stat -L -c '%a' $LIVE/www/fullchain.pem)" = 644
key_matches() {
        [ "$(openssl pkey -in $LIVE/www/privkey.pem -pubout)" = "$(openssl x509 -in $LIVE/www/cert.pem -noout -pubkey)" ]
}
ck_check "the key matches the certificate" key_matches

# The Exec runs with no capabilities, though the daemon keeps its three.
ck_check "a deployment with an Exec that records its capabilities" \
        ctl deploy create capsprobe --cn caps.example.test \
        --exec "/bin/sh -c 'grep -E ^Cap\|^NoNewPrivs /proc/self/status >$LIVE/caps.txt'" --wait --timeout 120
ck_check "Exec: no effective, permitted, inheritable or ambient capabilities (issue 17 item 4)" \
        sh -c "grep -qx 'CapEff:[[:space:]]*0000000000000000' $LIVE/caps.txt &&
               grep -qx 'CapInh:[[:space:]]*0000000000000000' $LIVE/caps.txt &&
               grep -qx 'CapPrm:[[:space:]]*0000000000000000' $LIVE/caps.txt &&
               grep -qx 'CapAmb:[[:space:]]*0000000000000000' $LIVE/caps.txt"
ck_check "Exec: no_new_privs" grep -qx 'NoNewPrivs:[[:space:]]*1' "$LIVE/caps.txt"
ck_check "the daemon itself still has CAP_CHOWN" \
        sh -c "test \$(( 0x\$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$main_pid/status) & 1 )) = 1"
[ -e "$LIVE/caps.txt" ] && ck_diag "$(cat "$LIVE/caps.txt")"

ctl ca >"$CK_RUN/ca.pem"
cat >/etc/nginx/sites-enabled/default <<CONF
server {
        listen 127.0.0.1:443 ssl;
        server_name www.example.test;
        ssl_certificate $LIVE/www/fullchain.pem;
        ssl_certificate_key $LIVE/www/privkey.pem;
        location / { return 200 "certkeeper host test\n"; }
}
CONF
ck_check "nginx -t accepts the deployed files" nginx -t -q
ck_check "systemctl start nginx" systemctl start nginx.service
nginx_pid=$(systemctl show -P MainPID nginx.service)

# The serial nginx serves, lowercase hex without leading zeros; the chain must
# verify against the Local CA for the name.
served_serial() {
        local pem
        pem=$(openssl s_client -connect 127.0.0.1:443 -servername www.example.test \
                -CAfile "$CK_RUN/ca.pem" -verify_hostname www.example.test -verify_return_error \
                </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null) || return 1
        pem=${pem#serial=}
        pem=$(tr 'A-F' 'a-f' <<<"$pem" | sed 's/^0*//')
        [ -n "$pem" ] && echo "$pem"
}
deployed_serial() {
        local dep cert s
        dep=$(busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager \
                GetDeploymentByName s www | awk '{ print $2 }' | tr -d '"') || return 1
        cert=$(busctl --system get-property org.certkeeper1 "$dep" org.certkeeper1.Deployment Certificate |
                awk '{ print $2 }' | tr -d '"') || return 1
        s=$(busctl --system get-property org.certkeeper1 "$cert" org.certkeeper1.Certificate SerialNumber |
                awk '{ print $2 }' | tr -d '"') || return 1
        tr 'A-F' 'a-f' <<<"$s" | sed 's/^0*//'
}
serving() { [ "$(served_serial)" = "$1" ]; }

first=$(deployed_serial)
ck_check "the deployment has a certificate" test -n "$first"
ck_wait_for "nginx serves it (serial $first), verified against the Local CA" 30 serving "$first"

ck_check "certkeeperctl deploy renew www --wait" ctl deploy renew www --wait --timeout 120
ck_diag "$CK_OUT"
second=$(deployed_serial)
ck_check "the renewal deployed a new certificate (serial ${second:-none})" \
        test -n "$second" -a "$second" != "$first"
ck_wait_for "nginx serves the new serial" 30 serving "$second"
ck_check "systemd reloaded nginx rather than restarting it (same main PID)" \
        test "$(systemctl show -P MainPID nginx.service)" = "$nginx_pid"
state_json=$(ctl --json=short deploy show www)
ck_check "the deployment is active at revision 2 with no error" \
        jq -e '(.State // .state) == "active" and (.Revision // .revision) == 2 and
               ((.LastError // .last_error) == "")' <<<"$state_json"
ck_check_fails "polkit refused certkeeper nothing" \
        sh -c "journalctl --no-pager -u certkeeper | grep -iE 'access denied|not authorized|interactive authorization'"

on_failure_logs
ck_done
