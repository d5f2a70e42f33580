#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Discovery: a fixture tree of certificates on disk (PEM, DER, bundles, a trust
# bundle of CAs, duplicates, a symlink loop, links to files, a FIFO, a huge
# file, garbage, a deep tree) becomes inventory entries with source
# "discovered" and their Paths; changes at runtime are seen through signals;
# a managed certificate copied into a scanned path stays managed.

source "$(dirname "$0")/lib.sh"

D=$CK_RUN/disc                # the scanned root
O=$CK_RUN/outside             # not scanned: targets of links
F=$CK_RUN/fixtures            # certificates made for the test, not scanned
MON=$CK_RUN/monitor.json
mkdir -p "$D" "$O" "$F"

# mkleaf NAME [DAYS] — a self-signed leaf (CA:FALSE) in $F/NAME.pem, key in $F/NAME.key.
mkleaf() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1.test" \
                -days "${2:-100}" -addext basicConstraints=critical,CA:FALSE \
                -addext "subjectAltName=DNS:$1.test" -keyout "$F/$1.key" -out "$F/$1.pem" 2>/dev/null
}
# mkca NAME — a CA certificate (CA:TRUE).
mkca() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1 Root" \
                -days 3650 -addext basicConstraints=critical,CA:TRUE -keyout "$F/$1.key" -out "$F/$1.pem" 2>/dev/null
}
fp() {
        openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f'
}
# obj FILE — the certificate object for the certificate in FILE (fails if unknown).
obj() {
        local out
        out=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCertificateByFingerprint s "$(fp "$1")") &&
                jq -er '.data[0]' <<<"$out"
}
prop() { # prop OBJ NAME → the value as compact JSON
        ck_get_property "$1" org.certkeeper1.Certificate "$2" | jq -c '.data'
}
paths_are() { # paths_are FILE JSON-ARRAY
        local o
        o=$(obj "$1") || return 1
        [ "$(prop "$o" Paths)" = "$2" ]
}
present_is() { # present_is FILE true|false
        local o
        o=$(obj "$1") || return 1
        [ "$(prop "$o" Present)" = "$2" ]
}
known() { obj "$1" >/dev/null; }
unknown() { ! obj "$1" >/dev/null 2>&1; }
list_fps() { # list_fps SOURCE → fingerprints of ListCertificates {source: SOURCE}, sorted
        local o
        ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListCertificates 'a{sv}' 1 source s "$1" |
                jq -r '.data[0][][0]' | while read -r o; do prop "$o" FingerprintSHA256 | jq -r .; done | sort
}
rescan() { ck_busctl /org/certkeeper1 org.certkeeper1.Manager Rescan >/dev/null; }

# Signals seen by a bus monitor, as JSON lines.
count_signals() { # count_signals MEMBER [PATH]
        jq -c --arg m "$1" --arg p "${2:-}" \
                'select(.type == "signal" and .member == $m and ($p == "" or .path == $p))' "$MON" 2>/dev/null |
                wc -l
}
added_after() { # added_after N → the object of the (N+1)th CertificateAdded
        jq -r 'select(.type == "signal" and .member == "CertificateAdded") | .payload.data[0]' "$MON" |
                sed -n "$(($1 + 1))p" | grep .
}
more_than() { [ "$(count_signals "$2" "${3:-}")" -gt "$1" ]; }

for n in leaf1 leaf2 leaf3 leaf4 leaf5 leaf6 leaf7 leaf8 leaf9 leaf10 leaf11 leaf12 leaf13 leaf14; do mkleaf "$n"; done
mkca ca1
mkca ca2

# The tree.
mkdir -p "$D/a" "$D/b" "$D/c" "$D/trust" "$D/deep"
cat "$F/leaf1.pem" "$F/leaf1.key" >"$D/a/leaf1.pem"                       # certificate with its key
openssl x509 -in "$F/leaf1.pem" -outform DER -out "$D/a/leaf1.der"        # the same one, DER
{ echo "leaf2 and leaf3, text around them"; cat "$F/leaf2.pem"; echo "junk"; cat "$F/leaf3.pem" "$F/leaf2.pem"; } \
        >"$D/b/bundle.pem"                                                # multi-certificate bundle, a duplicate
cat "$F/ca1.pem" "$F/ca2.pem" >"$D/trust/ca-bundle.crt"                   # a trust bundle: CAs only
cp "$F/leaf4.pem" "$O/leaf4.pem"
ln -s ../../outside/leaf4.pem "$D/c/link-leaf4.pem"                      # a symlink to a file: followed
ln -s .. "$D/b/loop"                                                      # a symlink loop: not followed
ln -s "$D" "$D/c/root-again"
ln -s nowhere.pem "$D/c/dangling.pem"
mkfifo "$D/c/fifo.pem"                                                    # not a regular file
{ cat "$F/leaf5.pem"; head -c $((1024 * 1024)) /dev/zero | tr '\0' 'x'; } >"$D/huge.pem"   # > 1 MiB: skipped
head -c 4096 /dev/urandom >"$D/garbage.der"
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' >"$D/broken.pem"
p=$D/deep; for i in 1 2 3 4 5 6 7; do p=$p/d$i; done                     # $D/deep/d1..d7 is depth 8
mkdir -p "$p/d8" && cp "$F/leaf6.pem" "$p/leaf6.pem" && cp "$F/leaf7.pem" "$p/d8/leaf7.pem"   # depth 9: too deep
cp "$F/leaf8.pem" "$CK_RUN/single.pem"                                   # a root naming a file
cp "$F/leaf12.pem" "$D/unreadable.pem" && chmod 000 "$D/unreadable.pem"
mkdir -p "$CK_RUN/realroot" && ln -s realroot "$CK_RUN/linkroot"         # a root that is a symlink: followed
cp "$F/leaf14.pem" "$CK_RUN/realroot/initial.pem"

ck_write_config "[Discovery]\nPaths=$D $CK_RUN/single.pem $CK_RUN/does-not-exist $CK_RUN/linkroot\nRescanIntervalSec=0"
ck_start_daemon --debug || ck_bail "certkeeperd did not start"

busctl --system monitor org.certkeeper1 --json=short >"$MON" 2>"$MON.err" &
mon_pid=$!
monitor_ready() {
        ck_get_property /org/certkeeper1 org.certkeeper1.Manager Version >/dev/null &&
                grep -q '"member":"Get"' "$MON"
}
ck_poll 10 monitor_ready || ck_bail "busctl monitor did not start"

ck_check "Rescan() answers once the scan is applied" rescan

ck_check "a PEM file with its key: the certificate is discovered" known "$F/leaf1.pem"
ck_check "... seen in both the PEM and the DER file" \
        paths_are "$F/leaf1.pem" "[\"$D/a/leaf1.der\",\"$D/a/leaf1.pem\"]"
o1=$(obj "$F/leaf1.pem")
ck_check "... with Source=discovered" test "$(prop "$o1" Source)" = '"discovered"'
ck_check "... and Present=true" test "$(prop "$o1" Present)" = true
ck_check "bundle: leaf2 once, with one path" paths_are "$F/leaf2.pem" "[\"$D/b/bundle.pem\"]"
ck_check "bundle: leaf3 too" paths_are "$F/leaf3.pem" "[\"$D/b/bundle.pem\"]"
ck_check "a symlink to a file is followed; the link is the path" \
        paths_are "$F/leaf4.pem" "[\"$D/c/link-leaf4.pem\"]"
ck_check "depth 8 is scanned" paths_are "$F/leaf6.pem" "[\"$p/leaf6.pem\"]"
ck_check "depth 9 is not" unknown "$F/leaf7.pem"
ck_check "a file over 1 MiB is skipped" unknown "$F/leaf5.pem"
ck_check "a root naming one file is scanned" paths_are "$F/leaf8.pem" "[\"$CK_RUN/single.pem\"]"
ck_check "CA certificates of a trust bundle are left out" unknown "$F/ca1.pem"
ck_check "... both of them" unknown "$F/ca2.pem"
# We run as root, so mode 000 does not stop us; what matters is that a file is read, not how.
ck_check "a mode-000 file is read by root" known "$F/leaf12.pem"
expected=$(for n in leaf1 leaf2 leaf3 leaf4 leaf6 leaf8 leaf12 leaf14; do fp "$F/$n.pem"; done | sort)
ck_check "ListCertificates source=discovered lists exactly what is on disk" \
        test "$(list_fps discovered)" = "$expected"
ck_check "no link loop was followed (no path through loop/ or root-again/)" \
        bash -c "! grep -E 'loop/|root-again/' <<<\"\$(for o in \$(busctl --system --json=short call org.certkeeper1 \
                /org/certkeeper1 org.certkeeper1.Manager ListCertificates 'a{sv}' 0 | jq -r '.data[0][][0]'); do \
                busctl --system get-property org.certkeeper1 \$o org.certkeeper1.Certificate Paths; done)\""
ck_check "the daemon said why the FIFO was skipped" grep -q "fifo.pem is not a regular file" "$CK_DAEMON_LOG"
ck_check "... and the huge file" grep -q "huge.pem is larger than" "$CK_DAEMON_LOG"

# ---- runtime: add, replace, delete ----
wait_added() { # wait_added N → a new CertificateAdded after the Nth, its object on stdout
        ck_poll 3 more_than "$1" CertificateAdded && added_after "$1"
}
n=$(count_signals CertificateAdded)
t0=$(ck_now_us)
cp "$F/leaf9.pem" "$D/a/new.pem"
if o9=$(wait_added "$n"); then
        ck_ok "a file added at runtime: CertificateAdded within $(( ($(ck_now_us) - t0) / 1000 )) ms"
        ck_check "... for that certificate" test "$o9" = "$(obj "$F/leaf9.pem")"
        ck_check "... with its path" paths_are "$F/leaf9.pem" "[\"$D/a/new.pem\"]"
else
        ck_not_ok "a file added at runtime: CertificateAdded"
fi

o3=$(obj "$F/leaf3.pem")
n3=$(count_signals PropertiesChanged "$o3")
n=$(count_signals CertificateAdded)
cat "$F/leaf2.pem" "$F/leaf10.pem" >"$D/b/bundle.new" && mv "$D/b/bundle.new" "$D/b/bundle.pem"   # replace
ck_wait_for "a replaced bundle: PropertiesChanged for the certificate that left it" 3 \
        more_than "$n3" PropertiesChanged "$o3"
ck_check "... which stays in the inventory, Present=false, no paths" \
        bash -c "[ '$(prop "$o3" Present)' = false ] && [ '$(prop "$o3" Paths)' = '[]' ]"
ck_check "... and the newcomer is added" wait_added "$n"
ck_check "... leaf2 kept its path" paths_are "$F/leaf2.pem" "[\"$D/b/bundle.pem\"]"

n1=$(count_signals PropertiesChanged "$o1")
rm "$D/a/leaf1.der"
ck_wait_for "a deleted duplicate: PropertiesChanged on Paths" 3 more_than "$n1" PropertiesChanged "$o1"
ck_check "... the other file is still listed, still present" \
        bash -c "[ '$(prop "$o1" Paths)' = '[\"$D/a/leaf1.pem\"]' ] && [ '$(prop "$o1" Present)' = true ]"

n=$(count_signals CertificateAdded)
mkdir "$D/newdir" && cp "$F/leaf11.pem" "$D/newdir/x.crt"
ck_check "a new directory is watched and scanned" wait_added "$n"
ck_check "... with the file's path" paths_are "$F/leaf11.pem" "[\"$D/newdir/x.crt\"]"
n=$(count_signals PropertiesChanged "$(obj "$F/leaf11.pem")")
rm -r "$D/newdir"
ck_wait_for "a removed directory: its certificate is no longer present" 3 present_is "$F/leaf11.pem" false

n=$(count_signals CertificateAdded)
cp "$F/leaf13.pem" "$CK_RUN/realroot/new.pem"
ck_check "a file added below a symlinked root is seen" wait_added "$n"
ck_check "... under the root's name" paths_are "$F/leaf13.pem" "[\"$CK_RUN/linkroot/new.pem\"]"
ck_check "... and the root's other certificates are kept" \
        paths_are "$F/leaf14.pem" "[\"$CK_RUN/linkroot/initial.pem\"]"

# ---- a managed certificate copied into a scanned path ----
order=$(ck_busctl /org/certkeeper1 org.certkeeper1.Manager RequestCertificate sasa{sv} managed.test 1 managed.test 0 |
        jq -r '.data[0]')
order_done() {
        [ "$(ck_get_property "$order" org.certkeeper1.Order Status | jq -r .data)" = complete ]
}
if ck_wait_for "a managed certificate is issued" 30 order_done; then
        mo=$(ck_get_property "$order" org.certkeeper1.Order Certificate | jq -r .data)
        ck_busctl "$mo" org.certkeeper1.Certificate DownloadPEM 'a{sv}' 0 | jq -r '.data[0]' >"$F/managed.pem"
        nm=$(count_signals PropertiesChanged "$mo")
        cp "$F/managed.pem" "$D/a/managed.pem"
        ck_wait_for "copied into a scanned path: PropertiesChanged on it" 3 more_than "$nm" PropertiesChanged "$mo"
        ck_check "... it gained the path" test "$(prop "$mo" Paths)" = "[\"$D/a/managed.pem\"]"
        ck_check "... and stays managed" test "$(prop "$mo" Source)" = '"managed"'
        ck_check "ListCertificates source=managed lists it" \
                bash -c "[ \"\$(busctl --system --json=short call org.certkeeper1 /org/certkeeper1 \
                                org.certkeeper1.Manager ListCertificates 'a{sv}' 1 source s managed | \
                        jq -r '.data[0][][0]')\" = '$mo' ]"
        ck_check "... and not as discovered" \
                bash -c "! busctl --system --json=short call org.certkeeper1 /org/certkeeper1 \
                        org.certkeeper1.Manager ListCertificates 'a{sv}' 1 source s discovered | \
                        jq -r '.data[0][][0]' | grep -qx '$mo'"
        rm "$D/a/managed.pem"
        ck_wait_for "removed again: the path goes" 3 bash -c "[ \"\$(busctl --system --json=short get-property \
                org.certkeeper1 '$mo' org.certkeeper1.Certificate Paths | jq -c .data)\" = '[]' ]"
        ck_check "... and a managed certificate stays Present" test "$(prop "$mo" Present)" = true
fi

# ---- restart: what changed while the daemon was down is found by the start-up scan ----
ck_stop_daemon
rm "$D/a/new.pem"
cp "$F/leaf3.pem" "$D/c/back.pem"
ck_start_daemon || ck_bail "certkeeperd did not restart"
ck_check "Rescan() after restart" rescan
ck_check "a file deleted while stopped: not present" present_is "$F/leaf9.pem" false
ck_check "a certificate back on disk: present again" present_is "$F/leaf3.pem" true
ck_check "... with its new path" paths_are "$F/leaf3.pem" "[\"$D/c/back.pem\"]"
ck_check "discovered certificates are never dropped" known "$F/leaf11.pem"

# ---- revocation of a discovered certificate is recorded, not propagated ----
# The confirmation code is bound to the caller's connection: one python3-dbus client for both calls.
revoke() {
        /usr/bin/python3 - "$1" <<'PY'
import dbus, sys
bus = dbus.SystemBus()
c = dbus.Interface(bus.get_object("org.certkeeper1", sys.argv[1]), "org.certkeeper1.Certificate")
c.Revoke(c.RequestRevocation(), "superseded")
PY
}
ck_check "a discovered certificate can be revoked" revoke "$o1"
ck_check "... its status is revoked" test "$(prop "$o1" Status)" = '"revoked"'
ck_check "... not propagated anywhere" \
        bash -c "busctl --system --json=short get-property org.certkeeper1 '$o1' org.certkeeper1.Certificate \
                RevocationPropagation | jq -r .data | grep -q 'not propagated'"

# ---- periodic rescans find a root that appears after start-up (inotify cannot watch it yet) ----
ck_stop_daemon
ck_write_config "[Discovery]\nPaths=$D $CK_RUN/later\nRescanIntervalSec=1"
ck_start_daemon || ck_bail "certkeeperd did not restart"
mkdir -p "$CK_RUN/later" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=later.test \
        -days 30 -addext basicConstraints=critical,CA:FALSE -keyout /dev/null -out "$CK_RUN/later/c.pem" 2>/dev/null
ck_wait_for "RescanIntervalSec=1: a root created later is scanned by the next periodic rescan" 5 \
        known "$CK_RUN/later/c.pem"

kill "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
ck_done
