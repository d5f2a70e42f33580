#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# policy/50-certkeeper-reload.rules against a real polkitd (issue 19, item 4):
# the user certkeeper may have systemd reload-or-try-restart a service
# (ReloadOrTryRestartUnit, what ReloadUnits= of a deployment calls) and nothing
# else: no other verb of org.freedesktop.systemd1.manage-units, no other systemd
# action, no other user. pkcheck asks polkitd exactly what systemd asks it
# (action org.freedesktop.systemd1.manage-units, details unit and verb), about a
# process running as certkeeper. The end-to-end run on a real systemd host
# (tests/host/test-host-deploy.sh) shows systemd itself accepting it.

source "$(dirname "$0")/lib.sh"

[ -n "${CK_POLKIT_RULES_DIR:-}" ] || ck_skip_all "needs polkitd (services polkit)"
command -v pkcheck >/dev/null || ck_skip_all "pkcheck is missing (package pkexec or polkitd)"
[ -e /usr/share/polkit-1/actions/org.freedesktop.systemd1.policy ] ||
        ck_skip_all "systemd's polkit actions are not installed"

RULE=$CK_SOURCE_ROOT/policy/50-certkeeper-reload.rules
MANAGE=org.freedesktop.systemd1.manage-units

# A process of each user for polkitd to judge (pkcheck --process); setpriv
# itself, not ck_as (a function would put a subshell between $! and sleep).
setpriv --reuid=certkeeper --regid=certkeeper --init-groups -- sleep 600 </dev/null >/dev/null 2>&1 &
ck_pid=$!
setpriv --reuid=ck-user --regid=ck-user --init-groups -- sleep 600 </dev/null >/dev/null 2>&1 &
user_pid=$!
stop_subjects() {
        kill "$ck_pid" "$user_pid" 2>/dev/null
        wait "$ck_pid" "$user_pid" 2>/dev/null
}
trap stop_subjects EXIT
# setpriv has changed its uid and become sleep once /proc says so.
subject_ready() {
        [ "$(awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" = "$(id -u "$2")" ] &&
                [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sleep ]
}
ck_poll 10 subject_ready "$ck_pid" certkeeper || ck_bail "no process running as certkeeper"
ck_poll 10 subject_ready "$user_pid" ck-user || ck_bail "no process running as ck-user"

# allowed PID ACTION [DETAIL VALUE]... — polkitd answers "authorized" (exit 0).
allowed() {
        local pid=$1 action=$2; shift 2
        local args=()
        while [ $# -ge 2 ]; do args+=(--detail "$1" "$2"); shift 2; done
        pkcheck --action-id "$action" --process "$pid" "${args[@]}"
}

ck_check_fails "without the rule, certkeeper may not reload nginx.service" \
        allowed "$ck_pid" $MANAGE unit nginx.service verb reload-or-try-restart

ck_check "the rule loads" ck_polkit_add_rule "$RULE"
ck_check_fails "polkitd logged no error for it" grep -iE 'error|exception' "$CK_POLKIT_LOG"

ck_check "certkeeper may reload-or-try-restart nginx.service" \
        allowed "$ck_pid" $MANAGE unit nginx.service verb reload-or-try-restart
ck_check "certkeeper may reload-or-try-restart a template instance (postfix@-.service)" \
        allowed "$ck_pid" $MANAGE unit postfix@-.service verb reload-or-try-restart
for verb in start stop restart try-restart reload reload-or-restart reload-or-start kill; do
        ck_check_fails "certkeeper may not '$verb' nginx.service" \
                allowed "$ck_pid" $MANAGE unit nginx.service verb "$verb"
done
ck_check_fails "certkeeper may not reload-or-try-restart a target" \
        allowed "$ck_pid" $MANAGE unit multi-user.target verb reload-or-try-restart
ck_check_fails "certkeeper may not manage units without naming the unit and verb" \
        allowed "$ck_pid" $MANAGE
for action in org.freedesktop.systemd1.manage-unit-files org.freedesktop.systemd1.reload-daemon \
        org.freedesktop.systemd1.set-environment org.freedesktop.login1.reboot; do
        ck_check_fails "certkeeper gets nothing else: $action" \
                allowed "$ck_pid" "$action" unit nginx.service verb reload-or-try-restart
done
ck_check_fails "another user (ck-user) may not reload-or-try-restart nginx.service" \
        allowed "$user_pid" $MANAGE unit nginx.service verb reload-or-try-restart

ck_done
