#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# dbus/org.certkeeper1.xml is exactly what the daemon serves.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

mkdir -p -m 0755 "$CK_RUN/live"
ck_write_config "[Daemon]\nDeployDirectory=$CK_RUN/live"
ck_start_daemon || ck_bail "certkeeperd did not start"
order=$(ck_request introspect.example)
ck_wait_order "$order" >/dev/null
deployment=$(ck_busctl "${CK_MGR[@]}" CreateDeployment 'sa{sv}' intro 1 common_name s intro.example | jq -r '.data[0]')
py=$CK_HELPERS/introspect.py
/usr/bin/python3 "$py" /org/certkeeper1 "$order" "$(ck_order_cert "$order")" "$deployment" >"$CK_RUN/served.xml"
/usr/bin/python3 "$py" --canonical "$CK_SOURCE_ROOT/dbus/org.certkeeper1.xml" >"$CK_RUN/file.xml"
if diff -u "$CK_RUN/file.xml" "$CK_RUN/served.xml" >"$CK_RUN/diff"; then
        ck_ok "the served introspection equals dbus/org.certkeeper1.xml"
else
        ck_not_ok "the served introspection equals dbus/org.certkeeper1.xml (run tools/update-introspection)"
        ck_diag_file "$CK_RUN/diff" 60
fi
ck_check "the node enumerators list the order and the certificate (busctl tree)" \
        bash -c "busctl --system tree --list org.certkeeper1 | grep -qx '$order' &&
                 busctl --system tree --list org.certkeeper1 | grep -qx '$(ck_order_cert "$order")'"
ck_check "the ObjectManager returns both objects with their interfaces" \
        bash -c "busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.freedesktop.DBus.ObjectManager GetManagedObjects |
                 jq -e '.data[0] | length >= 4 and (.[\"$deployment\"] | has(\"org.certkeeper1.Deployment\")) and (.[\"$order\"] | has(\"org.certkeeper1.Order\"))' >/dev/null"
for iface in Manager Order Certificate Deployment; do
        ck_check "the file describes org.certkeeper1.$iface" grep -q "interface name=\"org.certkeeper1.$iface\"" "$CK_RUN/file.xml"
done
ck_done
