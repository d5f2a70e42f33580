#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-system-files.sh SOURCE_ROOT — sysusers.d and tmpfiles.d entries apply
# cleanly to an empty root and give the spool the modes and owners the design
# relies on; the bus policy and polkit policy are well-formed XML. TAP.
set -u
src=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
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
mkdir -p "$root/etc"
check "sysusers.d entry applies" systemd-sysusers --root="$root" - <"$src/units/certkeeper.sysusers"
check "it creates the certkeeper user" grep -q '^certkeeper:' "$root/etc/passwd"
check "it creates the certkeeper-submit group" grep -q '^certkeeper-submit:' "$root/etc/group"
check "it creates the certkeeper-admin group" grep -q '^certkeeper-admin:' "$root/etc/group"
check "tmpfiles.d entry applies" systemd-tmpfiles --root="$root" --create - <"$src/units/certkeeper.tmpfiles"

uid=$(awk -F: '$1 == "certkeeper" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "certkeeper" { print $3 }' "$root/etc/group")
sgid=$(awk -F: '$1 == "certkeeper-submit" { print $3 }' "$root/etc/group")
spool=$root/var/spool/certkeeper
expect() {
        [ "$(stat -c '%a %u %g' "$1")" = "$2" ] || { echo "$1: $(stat -c '%a %u %g' "$1"), expected $2"; return 1; }
}
check "spool root is 0755 certkeeper" expect "$spool" "755 $uid $gid"
check "incoming/ is 1730 certkeeper:certkeeper-submit" expect "$spool/incoming" "1730 $uid $sgid"
check "issued/ is 0711 certkeeper (reachable, not listable: issue 17)" expect "$spool/issued" "711 $uid $gid"
check "failed/ is 0711 certkeeper (reachable, not listable: issue 17)" expect "$spool/failed" "711 $uid $gid"
check "/etc/certkeeper is 0755 root" expect "$root/etc/certkeeper" "755 0 0"
check "deployments.d/ is 0755 root (the admin writes, the daemon reads)" \
        expect "$root/etc/certkeeper/deployments.d" "755 0 0"
check "DeployDirectory live/ is 0755 certkeeper" expect "$root/etc/certkeeper/live" "755 $uid $gid"

xml_ok() {
        /usr/bin/python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1"
}
check "org.certkeeper1.conf is well-formed" xml_ok "$src/policy/org.certkeeper1.conf"
check "org.certkeeper1.policy is well-formed" xml_ok "$src/policy/org.certkeeper1.policy"
actions() {
        /usr/bin/python3 - "$src/policy/org.certkeeper1.policy" <<'PY'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
want = {"org.certkeeper1.read": "yes", "org.certkeeper1.request": "auth_admin_keep",
        "org.certkeeper1.export-key": "auth_admin", "org.certkeeper1.revoke": "auth_admin",
        "org.certkeeper1.manage": "auth_admin_keep", "org.certkeeper1.deploy": "auth_admin"}
got = {}
for a in doc.getElementsByTagName("action"):
    any_ = a.getElementsByTagName("allow_any")[0].firstChild.data.strip()
    got[a.getAttribute("id")] = any_
if got != want:
    print("actions/allow_any:", got, "expected", want)
    sys.exit(1)
PY
}
check "polkit actions and their allow_any defaults match DESIGN.md" actions
bus_policy_covers() {
        local iface missing=
        for iface in $(grep -o 'interface name="org\.certkeeper1\.[A-Za-z]*"' "$src/dbus/org.certkeeper1.xml" |
                       sed 's/.*"\(.*\)"/\1/' | sort -u) org.certkeeper1.Deployment; do
                grep -q "send_destination=\"org.certkeeper1\" send_interface=\"$iface\"" \
                        "$src/policy/org.certkeeper1.conf" || missing="$missing $iface"
        done
        [ -z "$missing" ] || { echo "org.certkeeper1.conf does not let anyone call:$missing"; return 1; }
}
check "the bus policy lets callers reach every interface the daemon serves" bus_policy_covers
check "D-Bus activation file names the unit" grep -qx 'SystemdService=certkeeper.service' "$src/units/org.certkeeper1.service"

echo "1..$n"
[ $failed -eq 0 ]
