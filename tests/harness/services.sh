# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Start and stop the real services certkeeper talks to: a private system bus,
# journald, polkitd, pebble (+ pebble-challtestsrv) and cfssl. Sourced by
# tests/harness/with-services.sh (every integration test) and tools/quickstart.
#
# Every ck_svc_start_* function starts its service in the background, records
# its PID for ck_svc_stop_all, and polls for readiness with a deadline. On
# failure it prints the service's log to stderr and returns non-zero.
#
# Callers set CK_RUN (a private directory, mode 0755) before starting anything.
# Bind mounts and tmpfs mounts are only made when the caller runs in its own
# mount namespace (CK_SVC_PRIVATE_MOUNTS=1), so nothing leaks onto the host.

CK_SVC_PIDS=()
CK_SVC_NAMES=()
CK_SVC_MOUNTS=()
: "${CK_SVC_TIMEOUT:=20}"

ck_svc_source_root() {
        local here
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        echo "${CK_SOURCE_ROOT:-$here}"
}

# Microseconds since the epoch (bash 5's EPOCHREALTIME, no fork).
ck_now_us() {
        local t=${EPOCHREALTIME/./}
        echo "${t/,/}"
}

# ck_poll TIMEOUT_SECONDS CMD... — run CMD until it succeeds (0) or the deadline
# passes (1). Short sleeps between tries; the deadline is the only limit.
ck_poll() {
        local timeout=$1; shift
        local deadline=$(( $(ck_now_us) + ${timeout%.*} * 1000000 ))
        local delay=0.01
        while :; do
                if "$@" >/dev/null 2>&1; then
                        return 0
                fi
                if (( $(ck_now_us) >= deadline )); then
                        return 1
                fi
                sleep "$delay"
                # Back off gently: fast services answer in ~30 ms, slow ones need no 100 polls a second.
                case $delay in 0.01) delay=0.02 ;; 0.02) delay=0.05 ;; 0.05) delay=0.1 ;; esac
        done
}

ck_svc_log() {
        echo "with-services: $*" >&2
}

# ck_svc_register NAME PID — remember a started service for teardown.
ck_svc_register() {
        CK_SVC_NAMES+=("$1")
        CK_SVC_PIDS+=("$2")
}

# ck_svc_fail NAME LOGFILE MESSAGE — report a service that did not come up.
ck_svc_fail() {
        local name=$1 logfile=$2; shift 2
        ck_svc_log "$name: $*"
        if [ -s "$logfile" ]; then
                ck_svc_log "----- $name log ($logfile) -----"
                tail -n 60 "$logfile" >&2
                ck_svc_log "----- end of $name log -----"
        else
                ck_svc_log "$name log is empty"
        fi
        return 1
}

# ck_svc_wait_ready NAME PID LOGFILE CMD... — poll CMD until it succeeds; give up
# early if the process died, and at the deadline.
ck_svc_wait_ready() {
        local name=$1 pid=$2 logfile=$3; shift 3
        local deadline=$(( $(ck_now_us) + CK_SVC_TIMEOUT * 1000000 ))
        local delay=0.01
        while :; do
                if "$@" >/dev/null 2>&1; then
                        return 0
                fi
                if ! kill -0 "$pid" 2>/dev/null || [ "$(ck_proc_state "$pid")" = Z ]; then
                        ck_svc_fail "$name" "$logfile" "exited before it was ready"
                        return 1
                fi
                if (( $(ck_now_us) >= deadline )); then
                        ck_svc_fail "$name" "$logfile" "not ready after ${CK_SVC_TIMEOUT}s"
                        return 1
                fi
                sleep "$delay"
                case $delay in 0.01) delay=0.02 ;; 0.02) delay=0.05 ;; 0.05) delay=0.1 ;; esac
        done
}

# The one-letter state of a process (R, S, Z, ...) or empty if it is gone.
ck_proc_state() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
        stat=${stat##*) }
        echo "${stat%% *}"
}

# ck_svc_mount_bind SRC DST — a bind mount that ck_svc_stop_all undoes.
ck_svc_mount_bind() {
        mount --bind "$1" "$2" || return 1
        CK_SVC_MOUNTS+=("$2")
}

ck_svc_mount_tmpfs() {
        mkdir -p "$1" || return 1
        mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$1" || return 1
        CK_SVC_MOUNTS+=("$1")
}

# ----------------------------------------------------------------------------
# Test users. Idempotent, and serialised with a lock because parallel tests
# each run the harness and useradd refuses to run while /etc/passwd is locked.
ck_svc_ensure_users() {
        (
                flock -w 60 9 || { ck_svc_log "could not lock user creation"; exit 1; }
                getent group certkeeper-admin >/dev/null || groupadd --system certkeeper-admin || exit 1
                getent group certkeeper-submit >/dev/null || groupadd --system certkeeper-submit || exit 1
                getent passwd certkeeper >/dev/null ||
                        useradd --system --user-group --home-dir /var/lib/certkeeper --no-create-home \
                                --shell /usr/sbin/nologin --comment "certkeeper daemon" certkeeper || exit 1
                getent passwd ck-user >/dev/null ||
                        useradd --system --user-group --no-create-home --home-dir / \
                                --shell /usr/sbin/nologin --comment "certkeeper test user" ck-user || exit 1
                getent passwd ck-admin >/dev/null ||
                        useradd --system --user-group --no-create-home --home-dir / \
                                --shell /usr/sbin/nologin --comment "certkeeper test admin" ck-admin || exit 1
                # Membership is checked separately so a user created by an older harness is fixed up.
                id -nG ck-admin | grep -qw certkeeper-admin || usermod -a -G certkeeper-admin ck-admin || exit 1
                id -nG ck-user | grep -qw certkeeper-submit || usermod -a -G certkeeper-submit ck-user || exit 1
                id -nG ck-admin | grep -qw certkeeper-submit || usermod -a -G certkeeper-submit ck-admin || exit 1
        ) 9>"${TMPDIR:-/tmp}/.certkeeper-harness-users.lock"
}

# ----------------------------------------------------------------------------
# System bus: dbus-daemon with the stock default-deny policy plus the project's.
ck_svc_start_bus() {
        local src dir=$CK_RUN/dbus
        src=$(ck_svc_source_root)
        mkdir -p "$dir/system.d" || return 1
        cp "$src/policy/org.certkeeper1.conf" "$dir/system.d/" || return 1
        cat >"$dir/system.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$CK_RUN/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Containers1"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>$dir/system.d</includedir>
</busconfig>
CONF
        dbus-daemon --config-file="$dir/system.conf" --nofork --nopidfile >"$dir/log" 2>&1 &
        local pid=$!
        ck_svc_register bus "$pid"
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$CK_RUN/system_bus_socket"
        ck_svc_wait_ready bus "$pid" "$dir/log" \
                busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
}

# ----------------------------------------------------------------------------
# journald. Needs private tmpfs mounts on /run/systemd/journal and
# /run/log/journal: stale sockets from elsewhere make sd_journal_send fail, and
# the journal files must not mix with the host's.
ck_svc_start_journal() {
        local dir=$CK_RUN/journald
        mkdir -p "$dir" || return 1
        if [ "${CK_SVC_PRIVATE_MOUNTS:-0}" = 1 ]; then
                ck_svc_mount_tmpfs /run/systemd/journal || return 1
                if [ -n "${CK_JOURNAL_DIR:-}" ]; then
                        mkdir -p /run/log/journal "$CK_JOURNAL_DIR" || return 1
                        ck_svc_mount_bind "$CK_JOURNAL_DIR" /run/log/journal || return 1
                else
                        ck_svc_mount_tmpfs /run/log/journal || return 1
                fi
        fi
        # Volatile storage, no rate limit (tests log in bursts), and no kernel
        # log: /dev/kmsg is not namespaced, so reading it would import the host's
        # ring buffer, and journald's own messages would land in the host's dmesg.
        cat >"$dir/journald.conf" <<'CONF'
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToKMsg=no
ForwardToSyslog=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
CONF
        if [ "${CK_SVC_PRIVATE_MOUNTS:-0}" = 1 ] && [ -e /etc/systemd/journald.conf ]; then
                ck_svc_mount_bind "$dir/journald.conf" /etc/systemd/journald.conf || return 1
        fi
        SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald >"$dir/log" 2>&1 &
        local pid=$!
        ck_svc_register journal "$pid"
        ck_svc_wait_ready journal "$pid" "$dir/log" journalctl --sync
}

# ----------------------------------------------------------------------------
# polkitd with the project's actions added to the stock ones and a rules
# directory of our own ($CK_POLKIT_RULES_DIR) that tests may drop files into:
# polkitd picks up new rules without a restart.
ck_svc_start_polkit() {
        local src dir=$CK_RUN/polkit
        src=$(ck_svc_source_root)
        if [ "${CK_SVC_PRIVATE_MOUNTS:-0}" != 1 ]; then
                ck_svc_log "polkit: needs a private mount namespace"
                return 1
        fi
        mkdir -p "$dir/actions" "$dir/rules.d" || return 1
        cp /usr/share/polkit-1/actions/*.policy "$dir/actions/" 2>/dev/null
        cp "$src/policy/org.certkeeper1.policy" "$dir/actions/" || return 1
        chmod 0755 "$dir" "$dir/actions" "$dir/rules.d" || return 1
        chmod 0644 "$dir"/actions/* || return 1
        ck_svc_mount_bind "$dir/actions" /usr/share/polkit-1/actions || return 1
        ck_svc_mount_bind "$dir/rules.d" /etc/polkit-1/rules.d || return 1
        export CK_POLKIT_RULES_DIR=$dir/rules.d
        export CK_POLKIT_LOG=$dir/log
        /usr/lib/polkit-1/polkitd >"$dir/log" 2>&1 &
        local pid=$!
        ck_svc_register polkit "$pid"
        ck_svc_wait_ready polkit "$pid" "$dir/log" ck_svc_name_has_owner org.freedesktop.PolicyKit1
}

ck_svc_name_has_owner() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$1" | grep -qx 'b true'
}

# ----------------------------------------------------------------------------
# pebble-challtestsrv: DNS for pebble's real validation; every name resolves to
# 127.0.0.1, so http-01 reaches http://127.0.0.1:5002 (ACME HTTPChallengePort=5002).
ck_svc_start_challtestsrv() {
        local dir=$CK_RUN/challtestsrv
        mkdir -p "$dir" || return 1
        pebble-challtestsrv -dns01 127.0.0.1:8053 -http01 "" -https01 "" -tlsalpn01 "" \
                -management 127.0.0.1:8055 -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$dir/log" 2>&1 &
        local pid=$!
        ck_svc_register challtestsrv "$pid"
        export CK_CHALLTESTSRV_URL=http://127.0.0.1:8055
        export CK_CHALLTESTSRV_DNS=127.0.0.1:8053
        # Any HTTP answer from the management port means it is serving.
        ck_svc_wait_ready challtestsrv "$pid" "$dir/log" \
                curl -s -o /dev/null --max-time 2 -X POST -d '{}' http://127.0.0.1:8055/clear-request-history
}

# ----------------------------------------------------------------------------
# pebble, the ACME test server. With challtestsrv running it validates for real
# (http-01 against port 5002); otherwise every authorization is valid at once.
ck_svc_start_pebble() {
        local dir=$CK_RUN/pebble with_dns=${1:-}
        mkdir -p "$dir" || return 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 30 -subj /CN=localhost \
                -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
                -addext "extendedKeyUsage=serverAuth" >"$dir/openssl.log" 2>&1 ||
                { ck_svc_fail pebble "$dir/openssl.log" "could not create its TLS certificate"; return 1; }
        cat >"$dir/config.json" <<CONF
{
  "pebble": {
    "listenAddress": "127.0.0.1:14000",
    "managementListenAddress": "127.0.0.1:15000",
    "certificate": "$dir/cert.pem",
    "privateKey": "$dir/key.pem",
    "httpPort": 5002,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
CONF
        local pid
        if [ -n "$with_dns" ]; then
                env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT="${CK_PEBBLE_NONCEREJECT:-0}" \
                        pebble -config "$dir/config.json" -dnsserver "$with_dns" >"$dir/log" 2>&1 &
                pid=$!
        else
                env PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 \
                        PEBBLE_WFE_NONCEREJECT="${CK_PEBBLE_NONCEREJECT:-0}" \
                        pebble -config "$dir/config.json" >"$dir/log" 2>&1 &
                pid=$!
        fi
        ck_svc_register pebble "$pid"
        export CK_PEBBLE_DIR_URL=https://127.0.0.1:14000/dir
        export CK_PEBBLE_CA=$dir/cert.pem
        export CK_PEBBLE_MANAGEMENT_URL=https://127.0.0.1:15000
        ck_svc_wait_ready pebble "$pid" "$dir/log" \
                curl -sf --max-time 2 --cacert "$dir/cert.pem" "$CK_PEBBLE_DIR_URL" || return 1
        # The issuing root is new on every start; keep a copy for tests.
        export CK_PEBBLE_ROOT=$dir/root.pem
        ck_pebble_fetch_root "$CK_PEBBLE_ROOT" ||
                { ck_svc_fail pebble "$dir/log" "could not fetch its issuing root"; return 1; }
}

# ck_pebble_fetch_root [FILE] — pebble's current issuing root (PEM) to FILE or stdout.
ck_pebble_fetch_root() {
        local out=${1:-/dev/stdout}
        curl -sf --max-time 5 --cacert "$CK_PEBBLE_CA" -o "$out" "$CK_PEBBLE_MANAGEMENT_URL/roots/0"
}

# ----------------------------------------------------------------------------
# cfssl: a real external CA with a fresh root, serving its API on port 18888.
ck_svc_start_cfssl() {
        local dir=$CK_RUN/cfssl
        mkdir -p "$dir" || return 1
        cat >"$dir/ca-csr.json" <<'CONF'
{"CN": "certkeeper test external CA", "key": {"algo": "ecdsa", "size": 256},
 "names": [{"O": "certkeeper tests"}]}
CONF
        cat >"$dir/config.json" <<'CONF'
{"signing": {"default": {"expiry": "2160h",
  "usages": ["digital signature", "key encipherment", "server auth", "client auth"]}}}
CONF
        (cd "$dir" && cfssl gencert -initca ca-csr.json 2>"$dir/gencert.log" | cfssljson -bare ca) \
                >>"$dir/gencert.log" 2>&1 && [ -s "$dir/ca.pem" ] ||
                { ck_svc_fail cfssl "$dir/gencert.log" "could not create its CA"; return 1; }
        cfssl serve -address 127.0.0.1 -port 18888 -ca "$dir/ca.pem" -ca-key "$dir/ca-key.pem" \
                -config "$dir/config.json" >"$dir/log" 2>&1 &
        local pid=$!
        ck_svc_register cfssl "$pid"
        export CK_CFSSL_URL=http://127.0.0.1:18888
        export CK_CFSSL_CA=$dir/ca.pem
        ck_svc_wait_ready cfssl "$pid" "$dir/log" \
                curl -sf --max-time 2 -d '{}' "$CK_CFSSL_URL/api/v1/cfssl/info"
}

# ----------------------------------------------------------------------------
# ck_svc_start_list "bus,journal,..." — start the named services in dependency order.
ck_svc_start_list() {
        local list=",$1,"
        local s
        for s in ${1//,/ }; do
                case $s in
                bus|journal|polkit|pebble|challtestsrv|cfssl) ;;
                *) ck_svc_log "unknown service '$s' (known: bus journal polkit pebble challtestsrv cfssl)"
                   return 2 ;;
                esac
        done
        if [[ $list == *,polkit,* && $list != *,bus,* ]]; then
                ck_svc_log "polkit needs the bus: add 'bus' to --services"
                return 2
        fi
        if [[ $list == *,journal,* ]]; then ck_svc_start_journal || return 1; fi
        if [[ $list == *,bus,* ]]; then ck_svc_start_bus || return 1; fi
        if [[ $list == *,polkit,* ]]; then ck_svc_start_polkit || return 1; fi
        if [[ $list == *,challtestsrv,* ]]; then
                ck_svc_start_challtestsrv || return 1
                if [[ $list == *,pebble,* ]]; then ck_svc_start_pebble 127.0.0.1:8053 || return 1; fi
        elif [[ $list == *,pebble,* ]]; then
                ck_svc_start_pebble || return 1
        fi
        if [[ $list == *,cfssl,* ]]; then ck_svc_start_cfssl || return 1; fi
        return 0
}

# Stop every started service, newest first: SIGTERM, a deadline, then SIGKILL.
ck_svc_stop_all() {
        local i pid
        for (( i = ${#CK_SVC_PIDS[@]} - 1; i >= 0; i-- )); do
                pid=${CK_SVC_PIDS[i]}
                kill -TERM "$pid" 2>/dev/null || continue
                if ! ck_poll 5 ck_svc_gone "$pid"; then
                        ck_svc_log "${CK_SVC_NAMES[i]} ignored SIGTERM, killing it"
                        kill -KILL "$pid" 2>/dev/null
                fi
                wait "$pid" 2>/dev/null
        done
        CK_SVC_PIDS=()
        CK_SVC_NAMES=()
        for (( i = ${#CK_SVC_MOUNTS[@]} - 1; i >= 0; i-- )); do
                umount "${CK_SVC_MOUNTS[i]}" 2>/dev/null || umount -l "${CK_SVC_MOUNTS[i]}" 2>/dev/null
        done
        CK_SVC_MOUNTS=()
}

ck_svc_gone() {
        local state
        state=$(ck_proc_state "$1")
        [ -z "$state" ] || [ "$state" = Z ]
}

# ck_svc_namespace_pids — processes in this network namespace other than this
# shell and its ancestors. Only valid inside the harness's private namespace,
# where everything is ours: what a test left running (a daemon whose PID it
# lost, a stray helper) is found here and stopped at teardown.
ck_svc_namespace_pids() {
        local ns self_ns pid p
        local -A keep=()
        ns=$(readlink /proc/self/ns/net) || return 0
        self_ns=$(readlink /proc/1/ns/net 2>/dev/null)
        [ "$ns" != "$self_ns" ] || return 0     # never in the host's namespace
        # From this (sub)shell up: command substitution runs us in a subshell.
        p=$BASHPID
        while [ -n "$p" ] && [ "$p" != 0 ]; do
                keep[$p]=1
                p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        done
        for pid in /proc/[0-9]*; do
                pid=${pid#/proc/}
                [ -n "${keep[$pid]:-}" ] && continue
                [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$ns" ] || continue
                # Our own short-lived helpers (readlink, awk) are children of this subshell.
                [ "$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" = "$BASHPID" ] && continue
                echo "$pid"
        done
}

ck_svc_namespace_empty() {
        local pid
        for pid in $(ck_svc_namespace_pids); do
                ck_svc_gone "$pid" || return 1
        done
        return 0
}

# ck_svc_kill_namespace — SIGTERM everything left in the namespace, SIGKILL at the deadline.
ck_svc_kill_namespace() {
        local pids
        pids=$(ck_svc_namespace_pids)
        [ -n "$pids" ] || return 0
        ck_svc_log "stopping leftover processes: $(for p in $pids; do
                printf '%s(%s) ' "$p" "$(cat /proc/"$p"/comm 2>/dev/null)"; done)"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null
        if ! ck_poll 5 ck_svc_namespace_empty; then
                # shellcheck disable=SC2086
                kill -KILL $(ck_svc_namespace_pids) 2>/dev/null
        fi
}
