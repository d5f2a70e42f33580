#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/host/run.sh BUILD_ROOT SCENARIO — run a scenario on a real systemd
# host: this machine's own Debian booted as a throw-away container
# (../shared/TESTING.md, "A whole systemd host"). Every write goes to a tmpfs:
# an overlay with lowerdir=/ and its upper and work directories in that tmpfs
# is the container's root; the built certkeeper is installed into it with
# "meson install --destdir"; systemd-nspawn boots it with a private network;
# SCENARIO (tests/host/test-*.sh, TAP) runs inside with nsenter once the
# system is up; then the container is powered off and the tmpfs unmounted.
#
# systemd is only ever booted on that private root: booting it in a plain mount
# namespace that shares /tmp with the host would let its tmpfiles empty the
# host's /tmp.
#
# Prints "1..0 # SKIP REASON" and exits 0 where it cannot run: not root, no
# systemd-nspawn, no overlayfs, nginx not installed, a sanitizer build (the
# host run installs the plain build), or systemd-nspawn unable to start even a
# plain program here (e.g. inside a container without the privileges).
#
# Environment: CK_HOST_KEEP=1 keeps the container's root and logs after a
# failure (printed); CK_HOST_BOOT_TIMEOUT (60) and CK_HOST_TIMEOUT (420)
# bound the boot and the scenario, in seconds.
set -u
build=$(cd "$1" && pwd) || exit 1
scenario=$(readlink -f "$2") || exit 1
src=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
name=$(basename "$scenario" .sh)

skip() {
        echo "1..0 # SKIP $*"
        exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (mounts and systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (package systemd-container)"
command -v nsenter >/dev/null || skip "nsenter is missing (package util-linux)"
[ -x /usr/sbin/nginx ] || skip "nginx is not installed (package nginx-light)"
[ -x /lib/systemd/systemd ] || skip "systemd is not installed"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
sanitize=$(/usr/bin/python3 -c 'import json, sys
print({o["name"]: o["value"] for o in json.load(open(sys.argv[1]))}.get("b_sanitize", "none"))' \
        "$build/meson-info/intro-buildoptions.json" 2>/dev/null)
[ "${sanitize:-none}" = none ] || skip "a sanitizer build ($sanitize); the systemd host run installs the plain build"

base=$(mktemp -d /var/tmp/ck-host.XXXXXX) || exit 1
root=$base/root
ns=
console=$base.console
failed=1

cleanup() {
        if [ -n "$ns" ] && kill -0 "$ns" 2>/dev/null; then
                # SIGTERM: nspawn asks the container's systemd to power off.
                kill -TERM "$ns" 2>/dev/null
                for _ in $(seq 1 100); do kill -0 "$ns" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$ns" 2>/dev/null
                wait "$ns" 2>/dev/null
        fi
        if [ "$failed" != 0 ] && [ "${CK_HOST_KEEP:-0}" = 1 ]; then
                echo "# kept: $base (root $root, console $console); umount $root $base to remove it" >&2
                return
        fi
        umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null
        umount "$base" 2>/dev/null || umount -l "$base" 2>/dev/null
        rmdir "$base" 2>/dev/null
        rm -f "$console"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

bail() {
        echo "Bail out! $*"
        if [ -s "$console" ]; then
                echo "# --- container console (last lines) ---"
                tail -n 30 "$console" | sed 's/^/#   /'
        fi
        exit 1
}

mount -t tmpfs -o mode=0755 tmpfs "$base" || skip "cannot mount a tmpfs here"
mkdir -p "$base/upper" "$base/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$root" ||
        skip "cannot mount an overlay of / here"

# Can systemd-nspawn run anything at all here? If not, this is no machine for
# this test (a SKIP); if it can and the boot fails later, that is a failure.
if ! out=$(timeout 60 systemd-nspawn --quiet -D "$root" --register=no --keep-unit --private-network \
                /bin/true 2>&1); then
        skip "systemd-nspawn cannot run a program here: $(tail -n 1 <<<"$out")"
fi

# The host's own state must not leak in: the container starts without
# certkeeper's state, configuration or an earlier installation (removing
# them in the overlay only hides them from the container).
rm -rf "$root/var/lib/certkeeper" "$root/var/spool/certkeeper" "$root/etc/certkeeper"
# Services enabled on the host that this test has no use for would only slow
# the boot down (databases, monitoring); the scenario starts what it needs.
for w in "$root"/etc/systemd/system/*.wants/*; do
        [ -L "$w" ] || continue
        rm -f "$w"
done

if ! out=$(meson install -C "$build" --no-rebuild --quiet --destdir "$root" 2>&1); then
        echo "not ok 1 - meson install into the container's root"
        sed 's/^/# /' <<<"$out"
        echo "1..1"
        exit 1
fi

# The scenario and the helpers it sources, at the same relative paths.
inside=/root/ck-host
mkdir -p "$root$inside/tests/host" "$root$inside/tests/integration" "$root$inside/tests/harness"
cp "$src"/tests/host/*.sh "$root$inside/tests/host/"
cp "$src/tests/integration/lib.sh" "$root$inside/tests/integration/"
cp "$src/tests/harness/services.sh" "$root$inside/tests/harness/"
cp "$scenario" "$root$inside/tests/host/"

systemd-nspawn --quiet -D "$root" --machine="ck-host-$$" --register=no --keep-unit --private-network \
        --boot >"$console" 2>&1 &
ns=$!

# The container's PID 1 (systemd): nspawn's child (systemd 252), or that
# child's child where nspawn keeps an intermediate process.
leader=
deadline=$((SECONDS + ${CK_HOST_BOOT_TIMEOUT:-60}))
while [ $SECONDS -lt $deadline ]; do
        kill -0 "$ns" 2>/dev/null || bail "systemd-nspawn exited during the boot"
        for c in $(pgrep -P "$ns") $(for p in $(pgrep -P "$ns"); do pgrep -P "$p"; done); do
                if [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ]; then
                        leader=$c
                        break
                fi
        done
        [ -n "$leader" ] && break
        sleep 0.1
done
[ -n "$leader" ] || bail "the container's systemd did not appear within ${CK_HOST_BOOT_TIMEOUT:-60}s"
boot_start=$SECONDS
# Until its manager answers, systemctl fails at once; then --wait blocks until
# the boot is over.
state=
while [ $SECONDS -lt $deadline ]; do
        state=$(timeout $((deadline - SECONDS + 1)) nsenter -t "$leader" -a systemctl is-system-running --wait \
                2>/dev/null)
        case $state in
        running | degraded) break ;;
        esac
        kill -0 "$ns" 2>/dev/null || bail "systemd-nspawn exited during the boot"
        sleep 0.1
done
case $state in
running | degraded) ;;
*) bail "the container did not finish booting within ${CK_HOST_BOOT_TIMEOUT:-60}s (state '${state:-none}')" ;;
esac
echo "# booted in $((SECONDS - boot_start))s (state $state)"
if [ "$state" = degraded ]; then
        nsenter -t "$leader" -a systemctl --failed --no-legend --plain 2>&1 | sed 's/^/# failed unit: /'
fi

timeout -k 10 "${CK_HOST_TIMEOUT:-420}" nsenter -t "$leader" -a \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        CK_HOST=1 CK_SOURCE_ROOT="$inside" \
        bash "$inside/tests/host/$(basename "$scenario")"
failed=$?
[ $failed = 124 ] && echo "Bail out! $name did not finish within ${CK_HOST_TIMEOUT:-420}s"
exit $failed
