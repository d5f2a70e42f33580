#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The manual pages keep up with the code: every method, property and signal of
# dbus/org.certkeeper1.xml, every named error of daemon/bus/bus-errors.h, every
# audit event of daemon/orders/audit-events.h and every alert kind of the store is in
# org.certkeeper1(5); every event's MESSAGE_ID is in certkeeperd(8); every
# section and key of daemon/base/config-keys.c's table is in certkeeper.conf(5); every
# page is installed by man/meson.build and renders without warnings. TAP.
set -u
SRC=${1:?usage: test-man-pages.sh SOURCE_ROOT}
MAN=$SRC/man
n=0
fail=0
ok() {
        n=$((n + 1))
        if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

# documented PAGE NAME — NAME is the subject of a .B/.BR/.BI line (a .TP
# heading, a list item) of PAGE, as a whole word; man escapes '-' as '\-'.
documented() {
        local word
        word=$(sed 's/[.[\*^$]/\\&/g; s/-/\\\\-/g' <<<"$2")
        grep -Eq "^\.(B|BR|BI|IB|RB) (.*[^A-Za-z0-9_])?\"?$word([^A-Za-z0-9_.=]|=|\$)" "$1"
}

# mentioned PAGE TEXT — TEXT appears anywhere in PAGE (after unescaping '\-').
mentioned() {
        sed 's/\\-/-/g' "$1" | grep -qF -- "$2"
}

iface_page=$MAN/org.certkeeper1.5
xml=$SRC/dbus/org.certkeeper1.xml

# section_of IFACE — the lines of org.certkeeper1(5)'s section about IFACE.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
section_of() {
        local short=${1##*.}
        awk -v h=".SH THE $(tr a-z A-Z <<<"$short") INTERFACE" \
                '$0 == h { on = 1; next } on && /^\.SH / { on = 0 } on' "$iface_page" >"$tmp/$short"
        echo "$tmp/$short"
}

# Methods, properties and signals, each in its interface's section.
while read -r iface kind name; do
        documented "$(section_of "$iface")" "$name"
        ok $? "org.certkeeper1(5) documents $kind $iface.$name"
done < <(python3 - "$xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
for i in ET.parse(sys.argv[1]).getroot().findall('interface'):
    for kind in ('method', 'property', 'signal'):
        for e in i.findall(kind):
            print(i.get('name'), kind, e.get('name'))
EOF
)

# Every interface has its own section.
for iface in $(grep -o 'interface name="[^"]*"' "$xml" | cut -d'"' -f2); do
        short=${iface##*.}
        grep -q "^\.SH THE $(tr a-z A-Z <<<"$short") INTERFACE" "$iface_page"
        ok $? "org.certkeeper1(5) has a section for $iface"
done

# Errors.
for e in $(grep -o '"org\.certkeeper1\.Error\.[A-Za-z]*"' "$SRC/daemon/bus/bus-errors.h" | tr -d '"' | sort -u); do
        documented "$iface_page" "$e" || documented "$iface_page" "${e##*.}"
        ok $? "org.certkeeper1(5) documents the error $e"
done

# Audit events and their MESSAGE_IDs.
events=$(tr '\n' ' ' <"$SRC/daemon/orders/audit-events.h" | sed 's/\\ / /g' | grep -Eo '"certificate\.[a-z_.]+", *"[0-9a-f]{32}"')
[ "$(wc -l <<<"$events")" -ge 12 ]
ok $? "audit-events.h lists the events ($(wc -l <<<"$events"))"
while IFS=, read -r ev mid; do
        ev=$(tr -d '" ' <<<"$ev")
        mid=$(tr -d '" ' <<<"$mid")
        documented "$iface_page" "$ev"
        ok $? "org.certkeeper1(5) documents the audit event $ev"
        documented "$MAN/certkeeperd.8" "$ev" && grep -A2 -F -- "$(sed 's/-/\\-/g' <<<"$ev")" "$MAN/certkeeperd.8" | grep -q "$mid"
        ok $? "certkeeperd(8) gives the MESSAGE_ID of $ev ($mid)"
done <<<"$events"

# Alert kinds (the store's CHECK constraint is the list).
kinds=$(grep -o "kind IN ([^)]*)" "$SRC/daemon/store/store-migrate.c" | grep -o "'[a-z_]*'" | tr -d "'")
[ -n "$kinds" ]
ok $? "store-migrate.c lists the alert kinds"
for k in $kinds; do
        mentioned "$iface_page" "$k"
        ok $? "org.certkeeper1(5) names the alert kind $k"
done

# Journal fields.
for f in $(grep -Eo 'FIELD\("[a-z_]+", "[A-Z_]+"' "$SRC/daemon/orders/audit.c" | cut -d'"' -f4) EVENT; do
        documented "$MAN/certkeeperd.8" "CERTKEEPER_$f"
        ok $? "certkeeperd(8) documents the journal field CERTKEEPER_$f"
done

# Configuration: every key of config-keys.c's table, under its section.
conf_page=$MAN/certkeeper.conf.5
keys=$(sed -n '/config_keys\[\] = {/,/^};/p' "$SRC/daemon/base/config-keys.c" |
        grep -Eo '"(Daemon|Deploy|LocalCA|Policy|ACME|ExternalCA|Discovery|Alerts|Metrics)", *"[A-Za-z]+"|POLICY_(KEY|UINT)\("[A-Za-z]+"' |
        sed -E 's/^POLICY_(KEY|UINT)\(/"Policy", /' | tr -d '" ')
[ "$(wc -l <<<"$keys")" -ge 30 ]
ok $? "config-keys.c's table has the keys ($(wc -l <<<"$keys"))"
while IFS=, read -r section key; do
        heading="^\\.SH \\[$section"
        # The key's own entry, after its section's heading.
        sed -n "/$heading/,\$p" "$conf_page" | grep -Eq "^\.(B|BI) $key=" 
        ok $? "certkeeper.conf(5) documents [$section] $key="
done <<<"$keys"
for s in Daemon Deploy LocalCA Policy ACME ExternalCA Discovery Alerts; do
        grep -q "^\.SH \[$s" "$conf_page"
        ok $? "certkeeper.conf(5) has a section [$s]"
done

# Installed and rendering cleanly.
for page in "$MAN"/*.[1-8]; do
        grep -q "'$(basename "$page")'" "$MAN/meson.build"
        ok $? "man/meson.build installs $(basename "$page")"
        if command -v man >/dev/null; then
                warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
                [ -z "$warnings" ]
                ok $? "$(basename "$page") renders without warnings${warnings:+: $warnings}"
        fi
done

echo "1..$n"
exit $fail
