#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Cockpit page in a real browser: certkeeperd on the harness's private
# system bus (with polkitd), cockpit-ws --local-session serving cockpit/ from
# the source tree (once as root, once as ck-user for the read-only view),
# headless Chromium driven by selenium (tests/browser/drive.py). drive.py prints
# one "ok - …" / "not ok - …" line per check; they become this scenario's TAP.
# Screenshots go to $CK_BUILD_ROOT/browser-screenshots/.
source "$CK_SOURCE_ROOT/tests/integration/lib.sh"

for p in /usr/lib/cockpit/cockpit-ws /usr/bin/chromedriver /usr/bin/chromium; do
        [ -x "$p" ] || { echo "1..0 # SKIP $p is not installed (tools/install-deps installs it)"; exit 0; }
done

ck_write_config "[Policy]
AllowedDomains=*.example.com example.com
AllowedDomainsEnforcement=hard"
ck_start_daemon || ck_bail "certkeeperd did not start"

# cockpit-ws serves DIR/cockpit/NAME/ for XDG_DATA_HOME=DIR.
share=$CK_RUN/share
mkdir -p "$share/cockpit" && chmod 0755 "$CK_RUN" "$share" "$share/cockpit"
ln -s "$CK_SOURCE_ROOT/cockpit" "$share/cockpit/certkeeper"
mkdir -p -m 0700 "$CK_RUN/rt-root" "$CK_RUN/rt-user" && chown ck-user: "$CK_RUN/rt-user"

start_ws() { # start_ws PORT USER LOG
        local user=$2
        if [ "$user" = root ]; then
                XDG_DATA_HOME=$share XDG_RUNTIME_DIR=$CK_RUN/rt-root /usr/lib/cockpit/cockpit-ws --no-tls \
                        --address 127.0.0.1 --port "$1" --local-session=cockpit-bridge </dev/null >"$3" 2>&1 &
        else
                setpriv --reuid="$user" --regid="$user" --init-groups -- env HOME=/ XDG_DATA_HOME="$share" \
                        XDG_RUNTIME_DIR="$CK_RUN/rt-user" DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
                        /usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1 --port "$1" \
                        --local-session=cockpit-bridge </dev/null >"$3" 2>&1 &
        fi
        echo $!
}
ws_up() { curl -sf -o /dev/null "http://127.0.0.1:$1/cockpit/@localhost/certkeeper/manifest.json"; }

WS_ROOT=$(start_ws 9090 root "$CK_RUN/ws-root.log")
WS_USER=$(start_ws 9091 ck-user "$CK_RUN/ws-user.log")
ck_wait_for "cockpit-ws (root) serves the page" 20 ws_up 9090
ck_wait_for "cockpit-ws (ck-user) serves the page" 20 ws_up 9091

export CK_SHOTS=$CK_BUILD_ROOT/browser-screenshots
mkdir -p "$CK_SHOTS"
export CK_DAEMON_PID CK_CONF CERTKEEPERD CK_DAEMON_LOG CK_RUN
export CK_BENCH_FILL=${CK_BENCH_FILL:-$CK_BUILD_ROOT/bench/bench-fill}
while IFS= read -r line; do
        case $line in
        "ok - "*) ck_ok "${line#ok - }" ;;
        "not ok - "*) ck_not_ok "${line#not ok - }" ;;
        *) ck_diag "$line" ;;
        esac
done < <(/usr/bin/python3 "$CK_SOURCE_ROOT/tests/browser/drive.py" 2>&1)

# drive.py stopped and restarted the daemon (the "not running" check) and
# stopped its own one at the end.
CK_DAEMON_PID=
kill "$WS_ROOT" "$WS_USER" 2>/dev/null
wait "$WS_ROOT" "$WS_USER" 2>/dev/null
if [ "$CK_TAP_FAILED" -gt 0 ]; then
        ck_diag_file "$CK_RUN/ws-root.log"
        ck_diag_file "$CK_RUN/ws-user.log"
fi
ck_done
