#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-install.sh BUILD_ROOT — "meson install --destdir" lays the system files
# where systemd, dbus-daemon and polkitd look, and the installed unit starts
# the installed daemon. TAP.
set -u
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
n=0
failed=0
check() {
        local desc=$1; shift
        local out
        n=$((n + 1))
        if out=$("$@" 2>&1); then
                echo "ok $n - $desc"
        else
                echo "not ok $n - $desc"
                sed 's/^/# /' <<<"$out"
                failed=$((failed + 1))
        fi
}
# One installed file whose path ends in SUFFIX.
installed() {
        local hits
        hits=$(cd "$dest" && find . -path "*$1" -type f | sed 's|^\.||')
        [ "$(wc -l <<<"$hits")" = 1 ] && [ -n "$hits" ] || { echo "expected one */$1, found: ${hits:-none}"; return 1; }
        echo "$hits"
}

check "meson install --destdir succeeds" meson install -C "$build" --no-rebuild --quiet --destdir "$dest"
check "the unit goes to systemd's unit directory" installed /systemd/system/certkeeper.service
check "the bus policy goes to /usr/share/dbus-1/system.d" installed /usr/share/dbus-1/system.d/org.certkeeper1.conf
check "the activation file goes to /usr/share/dbus-1/system-services" \
        installed /usr/share/dbus-1/system-services/org.certkeeper1.service
check "the polkit actions go to /usr/share/polkit-1/actions" \
        installed /usr/share/polkit-1/actions/org.certkeeper1.policy
check "the polkit rule goes to /usr/share/polkit-1/rules.d" \
        installed /usr/share/polkit-1/rules.d/50-certkeeper-admin.rules
check "the reload rule goes to /usr/share/polkit-1/rules.d" \
        installed /usr/share/polkit-1/rules.d/50-certkeeper-reload.rules
check "sysusers.d entry installed as certkeeper.conf" installed /sysusers.d/certkeeper.conf
check "tmpfiles.d entry installed as certkeeper.conf" installed /tmpfiles.d/certkeeper.conf
exec_start() {
        local unit exe
        unit=$(installed /systemd/system/certkeeper.service) || return 1
        exe=$(sed -n 's/^ExecStart=//p' "$dest$unit")
        [ -x "$dest$exe" ] || { echo "ExecStart=$exe is not an installed executable"; return 1; }
}
check "the unit's ExecStart is the installed certkeeperd" exec_start
# The Cockpit page (installed by -Dcockpit=auto when Cockpit is on the build
# host, as here when the browser suite runs): every file index.html loads.
cockpit_page() {
        local manifest dir f
        manifest=$(installed /cockpit/certkeeper/manifest.json) || return 1
        dir=$dest$(dirname "$manifest")
        for f in $(grep -oE '(src|href)="[^".#][^"]*"' "$dir/index.html" | sed -E 's/^[a-z]+="//; s/"$//'); do
                [ -f "$dir/$f" ] || { echo "index.html loads $f, not installed"; return 1; }
        done
}
if [ -d /usr/share/cockpit/base1 ]; then
        check "the Cockpit page goes to DATADIR/cockpit/certkeeper with every file it loads" cockpit_page
fi
echo "1..$n"
[ $failed -eq 0 ]
