#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Deployments and polkit (org.certkeeper1.deploy, auth_admin): ck-user is refused every
# deployment method with AccessDenied naming the action, reads are open, ck-admin is refused
# too until the example rules file (policy/50-certkeeper-admin.rules) is in effect, then may.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
source "$(dirname "$0")/lib-deploy.sh"

[ -n "${CK_POLKIT_RULES_DIR:-}" ] || ck_skip_all "needs polkitd (services polkit)"

live=$CK_RUN/live
mkdir -p -m 0755 "$live"
ck_write_config "[Daemon]\nDeployDirectory=$live"
ck_start_daemon || ck_bail "the daemon does not start"

MGR=/org/certkeeper1
MGR_IF=org.certkeeper1.Manager
DEP_IF=org.certkeeper1.Deployment
call() {
        local user=$1; shift
        ck_as "$user" /usr/bin/python3 "$CK_HELPERS/call.py" "$@"
}
# denied DESC USER ACTION CALL-ARGS...
denied() {
        local desc=$1 user=$2 action=$3; shift 3
        local out
        out=$(call "$user" "$@")
        if [[ $out == "error org.freedesktop.DBus.Error.AccessDenied: "*"$action"* ]]; then
                ck_ok "$desc"
        else
                ck_not_ok "$desc"
                ck_diag "got: $out"
        fi
}

www=$(ck_deploy_create www common_name s www.example.test)
ck_wait_for "root creates a deployment" 60 ck_dstate_is "$www" active

deny_all() {
        local u=$1
        denied "$u: CreateDeployment denied (deploy)" "$u" org.certkeeper1.deploy \
                "$MGR" "$MGR_IF" CreateDeployment "\"evil\", {\"common_name\": \"evil.example.test\"}" --signature 'sa{sv}'
        denied "$u: Renew denied (deploy)" "$u" org.certkeeper1.deploy "$www" "$DEP_IF" Renew '{}' --signature 'a{sv}'
        denied "$u: Redeploy denied (deploy)" "$u" org.certkeeper1.deploy "$www" "$DEP_IF" Redeploy
        denied "$u: Pause denied (deploy)" "$u" org.certkeeper1.deploy "$www" "$DEP_IF" Pause
        denied "$u: Resume denied (deploy)" "$u" org.certkeeper1.deploy "$www" "$DEP_IF" Resume
        denied "$u: Delete denied (deploy)" "$u" org.certkeeper1.deploy "$www" "$DEP_IF" Delete '{}' --signature 'a{sv}'
        denied "$u: ReloadDeployments denied (manage)" "$u" org.certkeeper1.manage "$MGR" "$MGR_IF" ReloadDeployments
}
deny_all ck-user
deny_all ck-admin
ck_check "ck-user reads: ListDeployments" \
        sh -c "ck_as() { setpriv --reuid=\$1 --regid=\$1 --init-groups -- \"\${@:2}\"; }; \
               ck_as ck-user busctl --system --json=short call org.certkeeper1 $MGR $MGR_IF ListDeployments 'a{sv}' 0 | jq -e '.data[0] | length == 1'"
ck_check "ck-user reads: the deployment's properties" \
        ck_as ck-user busctl --system get-property org.certkeeper1 "$www" "$DEP_IF" State
ck_check "nothing was created, paused or deleted by the denied calls" \
        test "$(ck_busctl "$MGR" "$MGR_IF" ListDeployments 'a{sv}' 0 | jq -c '[.data[0][] | .[1] + ":" + .[3]]')" = '["www:active"]'

ck_install_polkit_rules "$CK_SOURCE_ROOT/policy/50-certkeeper-admin.rules" || ck_bail "cannot install the rules"
admin_may() {
        [[ $(call ck-admin "$MGR" "$MGR_IF" CreateDeployment '"adm", {"common_name": "adm.example.test"}' \
                --signature 'sa{sv}') == "ok "* ]]
}
ck_wait_for "with the example rule ck-admin may CreateDeployment" 20 admin_may
adm=$(ck_busctl "$MGR" "$MGR_IF" GetDeploymentByName s adm | jq -r '.data[0]')
ck_wait_for "... which is deployed" 60 ck_dstate_is "$adm" active
ck_check "ck-admin may Renew" test "$(call ck-admin "$www" "$DEP_IF" Renew '{}' --signature 'a{sv}' | cut -c1-2)" = ok
ck_check "the journal records ck-admin's uid for the creation" \
        ck_journal_has CERTKEEPER_EVENT=certificate.deployment.created CERTKEEPER_DEPLOYMENT=adm \
        CERTKEEPER_CALLER_UID="$(id -u ck-admin)"
denied "ck-user is still refused" ck-user org.certkeeper1.deploy "$www" "$DEP_IF" Pause

ck_done
