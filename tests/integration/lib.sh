# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Helpers for integration scenarios (tests/integration/test-*.sh). A scenario
# runs under tests/harness/with-services.sh, sources this file, and reports TAP:
#
#       source "$(dirname "$0")/lib.sh"
#       ck_write_config
#       ck_start_daemon
#       ck_check "GetCACertificate answers" ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCACertificate
#       ck_stop_daemon
#       ck_done
#
# Environment from meson: CERTKEEPERD, CERTKEEPERCTL, CK_SOURCE_ROOT,
# CK_BUILD_ROOT; from the harness: CK_RUN, DBUS_SYSTEM_BUS_ADDRESS and the
# service variables (see with-services.sh). CK_DAEMON_WRAPPER (e.g. "valgrind
# --error-exitcode=99 --leak-check=full") is put in front of certkeeperd.

set -u

: "${CK_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CK_BUILD_ROOT:=$CK_SOURCE_ROOT/build}"
: "${CERTKEEPERD:=$CK_BUILD_ROOT/daemon/certkeeperd}"
: "${CERTKEEPERCTL:=$CK_BUILD_ROOT/tools/certkeeperctl}"
export CK_SOURCE_ROOT CK_BUILD_ROOT CERTKEEPERD CERTKEEPERCTL

if [ -z "${CK_RUN:-}" ] || [ -z "${DBUS_SYSTEM_BUS_ADDRESS:-}" ]; then
        # A TAP skip: meson's TAP protocol counts exit 77 as an error.
        echo "1..0 # SKIP not running under tests/harness/with-services.sh"
        exit 0
fi

# shellcheck source=../harness/services.sh
source "$CK_SOURCE_ROOT/tests/harness/services.sh"

# What other users run (ck-user, ck-admin, nobody, certkeeper: certkeeperctl,
# certkeeperd, the helper programs and the Python helpers) is run from copies
# in $CK_STAGE, inside the harness's world-readable $CK_RUN, never from the
# checkout: a checkout in /root (mode 0700) is reachable by root alone.
# CERTKEEPERD and CERTKEEPERCTL name the copies; CK_HELPERS is the directory
# of tests/integration/*.py, CK_STAGE_BIN of the programs.
CK_STAGE=$CK_RUN/stage
CK_STAGE_BIN=$CK_STAGE/bin
CK_HELPERS=$CK_STAGE/helpers
ck__stage() {
        local f
        mkdir -p "$CK_STAGE_BIN" "$CK_HELPERS" && chmod 0755 "$CK_STAGE" "$CK_STAGE_BIN" "$CK_HELPERS" || return 1
        for f in "$CERTKEEPERD" "$CERTKEEPERCTL" "$CK_BUILD_ROOT/tools/certkeeper-cfssl-submit"; do
                [ -e "$f" ] || continue
                install -m 0755 "$f" "$CK_STAGE_BIN/" || return 1
        done
        install -m 0644 "$CK_SOURCE_ROOT"/tests/integration/*.py "$CK_HELPERS/" || return 1
        [ -e "$CERTKEEPERD" ] && CERTKEEPERD=$CK_STAGE_BIN/$(basename "$CERTKEEPERD")
        [ -e "$CERTKEEPERCTL" ] && CERTKEEPERCTL=$CK_STAGE_BIN/$(basename "$CERTKEEPERCTL")
        # The one thing that could still stop another user: a $CK_RUN below a
        # private directory (TMPDIR=/root/tmp). One line that says so, not a
        # dozen failures that look unrelated.
        if ! (cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- test -r "$CK_HELPERS/call.py"); then
                echo "Bail out! $CK_RUN is not reachable by other users (is TMPDIR=${TMPDIR:-/tmp} below a private directory?); the tests run programs as ck-user, ck-admin and nobody from there"
                exit 1
        fi
}
# CK_NO_STAGE=1: the scenario runs the installed programs only (tests/host/).
if [ "${CK_NO_STAGE:-0}" != 1 ] && ! ck__stage; then
        echo "Bail out! cannot stage the programs other users run into $CK_STAGE"
        exit 1
fi
export CK_STAGE CK_STAGE_BIN CK_HELPERS CERTKEEPERD CERTKEEPERCTL

CK_TAP_COUNT=0
CK_TAP_FAILED=0
CK_DAEMON_PID=
CK_CONF=$CK_RUN/certkeeper.conf
CK_STATE_DIR=$CK_RUN/state
CK_SPOOL_DIR=$CK_RUN/spool
CK_DAEMON_LOG=$CK_RUN/daemon.log
export CK_CONF CK_STATE_DIR CK_SPOOL_DIR CK_DAEMON_LOG

# ---------------------------------------------------------------------------
# TAP

# ck_ok DESC / ck_not_ok DESC — one test line.
ck_ok() {
        CK_TAP_COUNT=$((CK_TAP_COUNT + 1))
        echo "ok $CK_TAP_COUNT - $*"
}

ck_not_ok() {
        CK_TAP_COUNT=$((CK_TAP_COUNT + 1))
        CK_TAP_FAILED=$((CK_TAP_FAILED + 1))
        echo "not ok $CK_TAP_COUNT - $*"
}

# ck_diag TEXT... — a TAP comment; multi-line text becomes several comments.
ck_diag() {
        local line
        while IFS= read -r line; do
                echo "# $line"
        done <<<"$*"
}

# ck_diag_file FILE [LINES] — the tail of a file as TAP comments.
ck_diag_file() {
        [ -e "$1" ] || { ck_diag "($1 does not exist)"; return 0; }
        ck_diag "--- $1 ---"
        tail -n "${2:-40}" "$1" | while IFS= read -r line; do echo "#   $line"; done
}

# ck_check DESC CMD... — ok if CMD exits 0; else not ok with CMD's output.
# CMD runs in this shell (not a subshell), so functions like ck_start_daemon
# keep their effects. Its stdout is kept in CK_OUT, its stderr in CK_ERR.
CK_OUT=
CK_ERR=
ck__run() {
        local rc
        "$@" >"$CK_RUN/.ck_check.out" 2>"$CK_RUN/.ck_check.err"
        rc=$?
        CK_OUT=$(cat "$CK_RUN/.ck_check.out")
        CK_ERR=$(cat "$CK_RUN/.ck_check.err")
        return $rc
}

ck_check() {
        local desc=$1; shift
        local rc
        ck__run "$@"
        rc=$?
        if [ $rc -eq 0 ]; then
                ck_ok "$desc"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "command: $* (exit $rc)"
        [ -n "$CK_OUT" ] && ck_diag "stdout: $CK_OUT"
        [ -n "$CK_ERR" ] && ck_diag "stderr: $CK_ERR"
        return 1
}

# ck_check_fails DESC CMD... — ok if CMD exits non-zero (an expected refusal,
# e.g. a D-Bus error; check its name in CK_ERR afterwards).
ck_check_fails() {
        local desc=$1; shift
        if ! ck__run "$@"; then
                ck_ok "$desc"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "command unexpectedly succeeded: $*"
        [ -n "$CK_OUT" ] && ck_diag "stdout: $CK_OUT"
        return 1
}

# ck_skip DESC REASON — a skipped test line.
ck_skip() {
        CK_TAP_COUNT=$((CK_TAP_COUNT + 1))
        echo "ok $CK_TAP_COUNT - $1 # SKIP $2"
}

# ck_skip_all REASON — skip the whole scenario (before any test line).
ck_skip_all() {
        echo "1..0 # SKIP $*"
        exit 0
}

# ck_bail REASON — stop the scenario (TAP "Bail out!"), print the daemon log.
ck_bail() {
        echo "Bail out! $*"
        [ -e "$CK_DAEMON_LOG" ] && ck_diag_file "$CK_DAEMON_LOG"
        [ -n "$CK_DAEMON_PID" ] && kill -KILL "$CK_DAEMON_PID" 2>/dev/null
        exit 1
}

# ck_done — print the plan, stop a daemon still running, exit 1 if anything failed.
ck_done() {
        if [ -n "$CK_DAEMON_PID" ]; then
                ck_stop_daemon
        fi
        echo "1..$CK_TAP_COUNT"
        if [ "$CK_TAP_FAILED" -gt 0 ]; then
                ck_diag "$CK_TAP_FAILED of $CK_TAP_COUNT failed"
                [ -s "$CK_DAEMON_LOG" ] && ck_diag_file "$CK_DAEMON_LOG"
                exit 1
        fi
        exit 0
}

# ---------------------------------------------------------------------------
# Waiting

# ck_wait_for DESC TIMEOUT CMD... — a test line: ok once CMD succeeds within
# TIMEOUT seconds (polled with short sleeps), not ok at the deadline.
ck_wait_for() {
        local desc=$1 timeout=$2; shift 2
        if ck_poll "$timeout" "$@"; then
                ck_ok "$desc"
                return 0
        fi
        ck_not_ok "$desc"
        ck_diag "still false after ${timeout}s: $*"
        return 1
}

# ---------------------------------------------------------------------------
# Configuration and daemon

# ck_write_config [EXTRA] — $CK_CONF with state and spool inside $CK_RUN, plus
# EXTRA (more ini text, e.g. "[ACME]\nDirectoryURL=..."). Creates the
# directories as systemd (StateDirectory=) and tmpfiles.d would.
ck_write_config() {
        mkdir -p -m 0700 "$CK_STATE_DIR"
        ck_make_spool "$CK_SPOOL_DIR"
        {
                echo "[Daemon]"
                echo "StateDirectory=$CK_STATE_DIR"
                echo "SpoolDirectory=$CK_SPOOL_DIR"
                if [ $# -gt 0 ]; then
                        echo
                        printf '%b\n' "$*"
                fi
        } >"$CK_CONF"
}

# ck_make_spool DIR — the layout of units/certkeeper.tmpfiles, owned by the
# user the daemon runs as here (root): incoming/ 1730 group certkeeper-submit.
ck_make_spool() {
        mkdir -p "$1/incoming" "$1/issued" "$1/failed"
        chmod 0755 "$1"
        chmod 0711 "$1/issued" "$1/failed"
        chgrp certkeeper-submit "$1/incoming"
        chmod 1730 "$1/incoming"
}

ck_name_owned() {
        ck_svc_name_has_owner org.certkeeper1
}

# ck_start_daemon [ARGS...] — start certkeeperd in the background (stderr to
# $CK_DAEMON_LOG) and wait up to 20 s for org.certkeeper1 on the bus.
# Returns non-zero (with the log as diagnostics) if it exits or never appears.
ck_start_daemon() {
        local deadline
        if [ -n "$CK_DAEMON_PID" ]; then
                ck_diag "ck_start_daemon: a daemon is already running (pid $CK_DAEMON_PID)"
                return 1
        fi
        echo "--- start $(date -u +%T.%N)" >>"$CK_DAEMON_LOG"
        # shellcheck disable=SC2086 # the wrapper is a command line
        ${CK_DAEMON_WRAPPER:-} "$CERTKEEPERD" --config "$CK_CONF" "$@" </dev/null >>"$CK_DAEMON_LOG" 2>&1 &
        CK_DAEMON_PID=$!
        deadline=$(( $(ck_now_us) + ${CK_DAEMON_START_TIMEOUT:-20} * 1000000 ))
        while ! ck_name_owned; do
                if ck_svc_gone "$CK_DAEMON_PID"; then
                        wait "$CK_DAEMON_PID"
                        ck_diag "certkeeperd exited with $? before taking org.certkeeper1"
                        ck_diag_file "$CK_DAEMON_LOG"
                        CK_DAEMON_PID=
                        return 1
                fi
                if (( $(ck_now_us) >= deadline )); then
                        ck_diag "certkeeperd did not take org.certkeeper1 within ${CK_DAEMON_START_TIMEOUT:-20}s"
                        ck_diag_file "$CK_DAEMON_LOG"
                        return 1
                fi
                sleep 0.02
        done
        return 0
}

# ck_wait_daemon_exit TIMEOUT — wait for the daemon to exit; its exit code in
# CK_DAEMON_RC. Returns 1 (and kills it) at the deadline.
CK_DAEMON_RC=
ck_wait_daemon_exit() {
        local timeout=$1
        if ! ck_poll "$timeout" ck_svc_gone "$CK_DAEMON_PID"; then
                kill -KILL "$CK_DAEMON_PID" 2>/dev/null
                wait "$CK_DAEMON_PID" 2>/dev/null
                CK_DAEMON_RC=timeout
                CK_DAEMON_PID=
                return 1
        fi
        wait "$CK_DAEMON_PID"
        CK_DAEMON_RC=$?
        CK_DAEMON_PID=
        return 0
}

# ck_stop_daemon — SIGTERM, wait (deadline 20 s), and a test line that it exited 0.
ck_stop_daemon() {
        if [ -z "$CK_DAEMON_PID" ]; then
                ck_not_ok "certkeeperd stops cleanly (it was not running)"
                return 1
        fi
        kill -TERM "$CK_DAEMON_PID" 2>/dev/null
        ck_wait_daemon_exit 20
        if [ "$CK_DAEMON_RC" = 0 ]; then
                ck_ok "certkeeperd stops cleanly on SIGTERM"
                return 0
        fi
        ck_not_ok "certkeeperd stops cleanly on SIGTERM"
        ck_diag "exit status: $CK_DAEMON_RC"
        ck_diag_file "$CK_DAEMON_LOG"
        return 1
}

# ck_kill9_daemon — SIGKILL (a crash), wait for it to be gone. No test line.
ck_kill9_daemon() {
        [ -n "$CK_DAEMON_PID" ] || return 0
        kill -KILL "$CK_DAEMON_PID" 2>/dev/null
        ck_wait_daemon_exit 10
        # The bus forgets the name when the connection closes; wait for that too.
        ck_poll 10 ck_name_not_owned
}

ck_name_not_owned() {
        ! ck_name_owned
}

# ---------------------------------------------------------------------------
# Calling

# ck_busctl PATH INTERFACE METHOD [SIGNATURE ARGS...] — a call to the daemon, JSON out.
ck_busctl() {
        busctl --system --json=short call org.certkeeper1 "$@"
}

# ck_get_property PATH INTERFACE PROPERTY — the property as JSON.
ck_get_property() {
        busctl --system --json=short get-property org.certkeeper1 "$@"
}

# ck_as USER CMD... — run CMD as USER (with their groups), from $CK_RUN: the
# test's own working directory may be in a checkout USER cannot enter. Run
# programs and helpers from $CK_STAGE_BIN and $CK_HELPERS (see above).
ck_as() {
        local user=$1; shift
        (cd "$CK_RUN" && setpriv --reuid="$user" --regid="$user" --init-groups -- "$@")
}

# ck_polkit_add_rule FILE [NAME] — put a polkit .rules file into effect and
# wait (deadline 10 s) until polkitd has reloaded. The file appears in one
# rename: polkitd reloads on every inotify event and would otherwise read a
# half-written file (and polkitd 122 has been seen to stall on that).
ck_polkit_add_rule() {
        local src=$1 name=${2:-$(basename "$1")} before
        before=$(grep -c 'Finished loading' "$CK_POLKIT_LOG")
        cp "$src" "$CK_RUN/.rule.tmp" && chmod 0644 "$CK_RUN/.rule.tmp" || return 1
        mv -f "$CK_RUN/.rule.tmp" "$CK_POLKIT_RULES_DIR/$name" || return 1
        ck_poll 10 ck__polkit_reloaded "$before"
}

# ck_polkit_remove_rule NAME — the reverse, with the same wait.
ck_polkit_remove_rule() {
        local before
        before=$(grep -c 'Finished loading' "$CK_POLKIT_LOG")
        rm -f "$CK_POLKIT_RULES_DIR/$1" || return 1
        ck_poll 10 ck__polkit_reloaded "$before"
}

ck__polkit_reloaded() {
        local finished last
        finished=$(grep -c 'Finished loading' "$CK_POLKIT_LOG")
        last=$(grep -E 'Reloading rules|Finished loading' "$CK_POLKIT_LOG" | tail -n 1)
        [ "$finished" -gt "$1" ] && [[ $last == *Finished* ]]
}

# ck_install_polkit_rules FILE — the same as ck_polkit_add_rule (older name).
ck_install_polkit_rules() {
        ck_polkit_add_rule "$@"
}

# ck_journal ARGS... — journalctl over the private journal of this test only
# (after a sync, so everything sent so far is there).
ck_journal() {
        journalctl --sync 2>/dev/null
        journalctl --directory=/run/log/journal --no-pager "$@"
}

# ck_journal_count MATCH... — how many entries match journalctl MATCHes
# (FIELD=VALUE, ANDed), e.g. ck_journal_count CERTKEEPER_EVENT=certificate.issued
ck_journal_count() {
        ck_journal -o json "$@" | grep -c '^{'
}

# ck_journal_has MATCH... — true if at least one entry matches. (Note for jq
# users: jq 1.6's -e looks at the last input only; slurp with -s instead.)
ck_journal_has() {
        [ "$(ck_journal_count "$@")" -gt 0 ]
}
