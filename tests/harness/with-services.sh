#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# with-services.sh [--services=bus,journal,polkit,pebble,challtestsrv,cfssl] [--keep] [--tap] CMD ARGS...
#
# Runs CMD in its own mount and network namespace with real services started
# for it (see ../../../shared/TESTING.md and tests/harness/services.sh), then
# tears them down and returns CMD's exit code. bus and journal are always on.
#
# Exported to CMD: CK_RUN (private run directory, removed afterwards unless
# --keep or CK_KEEP_RUN=1, or CK_KEEP_FAILED=1 and CMD failed), DBUS_SYSTEM_BUS_ADDRESS, CK_POLKIT_RULES_DIR,
# CK_PEBBLE_DIR_URL, CK_PEBBLE_CA, CK_PEBBLE_ROOT, CK_PEBBLE_MANAGEMENT_URL,
# CK_CHALLTESTSRV_URL, CK_CHALLTESTSRV_DNS, CK_CFSSL_URL, CK_CFSSL_CA.
# When not root (namespaces, bind mounts and polkitd need it) the test is
# skipped: exit 77, or with --tap (meson's TAP protocol counts any non-zero
# exit as an error) a "1..0 # SKIP" plan and exit 0.

set -u

self=$(readlink -f "${BASH_SOURCE[0]}")

skip() {
        echo "with-services: $*; skipping" >&2
        if [ "$tap" = 1 ]; then
                echo "1..0 # SKIP $*"
                exit 0
        fi
        exit 77
}
tap=0
for arg in "$@"; do
        case $arg in --tap) tap=1 ;; -*) ;; *) break ;; esac
done

if [ "$(id -u)" != 0 ]; then
        skip "needs root (namespaces, bind mounts, polkitd)"
fi

if [ -z "${CK_HARNESS_INSIDE:-}" ]; then
        unshare --mount --net --propagation private -- true 2>/dev/null ||
                skip "cannot create mount and network namespaces here"
        export CK_HARNESS_INSIDE=1
        exec unshare --mount --net --propagation private -- /bin/bash "$self" "$@"
fi

# shellcheck source=services.sh
source "$(dirname "$self")/services.sh"

services=bus,journal
keep=${CK_KEEP_RUN:-0}
while [ $# -gt 0 ]; do
        case $1 in
        --services=*) [ -n "${1#--services=}" ] && services=bus,journal,${1#--services=} ;;
        --keep) keep=1 ;;
        --tap) ;;
        --) shift; break ;;
        -*) echo "with-services: unknown option $1" >&2; exit 2 ;;
        *) break ;;
        esac
        shift
done
if [ $# -eq 0 ]; then
        echo "usage: with-services.sh [--services=bus,journal,polkit,pebble,challtestsrv,cfssl] CMD ARGS..." >&2
        exit 2
fi
# Deduplicate while keeping the order.
services=$(tr ',' '\n' <<<"$services" | awk 'NF && !seen[$0]++' | paste -sd, -)

ip link set lo up || { echo "with-services: cannot bring up lo" >&2; exit 1; }

CK_RUN=$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-test.XXXXXX") || exit 1
chmod 0755 "$CK_RUN"  # the bus socket and spool must be reachable for polkitd and test users
export CK_RUN
export CK_SVC_PRIVATE_MOUNTS=1

cmd_pid=
cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        if [ -n "${cmd_pid:-}" ] && kill -0 "$cmd_pid" 2>/dev/null; then
                # Interrupted while CMD still runs: stop it first.
                kill -TERM "$cmd_pid" 2>/dev/null
                ck_poll 10 ck_svc_gone "$cmd_pid" || kill -KILL "$cmd_pid" 2>/dev/null
                wait "$cmd_pid" 2>/dev/null
        fi
        ck_svc_stop_all
        ck_svc_kill_namespace
        if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
                # The services' side of a failure, for meson's test log.
                local log
                for log in "$CK_RUN"/*/log; do
                        [ -s "$log" ] || continue
                        echo "----- ${log#"$CK_RUN"/} (last lines) -----" >&2
                        tail -n 25 "$log" >&2
                done
                [ "${CK_KEEP_FAILED:-0}" = 1 ] && keep=1
        fi
        if [ "$keep" = 1 ]; then
                echo "with-services: kept $CK_RUN" >&2
        else
                rm -rf "$CK_RUN"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ck_svc_ensure_users || { echo "with-services: could not create the test users" >&2; exit 1; }
ck_svc_start_list "$services" || { echo "with-services: services did not start ($services)" >&2; exit 1; }
export CK_SERVICES=$services

# Not exec: the trap must run after CMD to tear the services down. CMD runs in
# the background so SIGTERM from meson's timeout reaches the trap at once.
"$@" &
cmd_pid=$!
wait "$cmd_pid"
rc=$?
cmd_pid=
exit $rc
