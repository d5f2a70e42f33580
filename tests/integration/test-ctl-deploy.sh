#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# certkeeperctl's deploy commands (issue 19, item 5) against the real daemon:
# create (with --wait), list, show, renew (--wait, --no-rotate-key), redeploy,
# pause, resume, delete (--remove-files), reload; --json for each; usage errors
# (exit 2) before any call; the daemon's refusals with their exit codes and
# hints (Exists, ReadOnly, InvalidArgument, NotFound); a failing Exec is exit 7.

source "$(dirname "$0")/lib.sh"

DEPLOY=$CK_RUN/live
mkdir -p -m 0755 "$DEPLOY" "$CK_RUN/deployments.d"
ck_write_config "[Deploy]\nRetryInitialSec=3600"
sed -i "/^\[Daemon\]\$/a DeployDirectory=$DEPLOY" "$CK_CONF"
ck_start_daemon || ck_bail "certkeeperd did not start"

# ctl ARGS... — certkeeperctl; its stdout and stderr are also kept in OUT and
# ERR for the checks that follow (ck_check sets CK_OUT/CK_ERR anew each time).
OUT=
ERR=
ctl() {
        local rc
        "$CERTKEEPERCTL" --no-ask-password "$@" >"$CK_RUN/.ctl.out" 2>"$CK_RUN/.ctl.err"
        rc=$?
        OUT=$(cat "$CK_RUN/.ctl.out")
        ERR=$(cat "$CK_RUN/.ctl.err")
        cat "$CK_RUN/.ctl.out"
        cat "$CK_RUN/.ctl.err" >&2
        return $rc
}
# exits CODE CMD... — CMD exits with exactly CODE.
exits() {
        local want=$1 rc; shift
        "$@"
        rc=$?
        [ $rc = "$want" ] || { echo "exit $rc, expected $want" >&2; return 1; }
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
pubkey() { openssl pkey -in "$1" -pubout; }

# ---- usage errors: exit 2, no call ----------------------------------------------
ck_check "deploy without a command is a usage error" exits 2 ctl deploy
ck_check "an unknown deploy command is a usage error" exits 2 ctl deploy frobnicate www
ck_check "a bad name is refused before any call" exits 2 ctl deploy create Bad.Name --cn x.example.test
ck_check "so is a name starting with a dot" exits 2 ctl deploy show .hidden
ck_check "deploy create needs --cn" exits 2 ctl deploy create www
ck_check "--key-mode must be octal" exits 2 ctl deploy create www --cn www.example.test --key-mode 0968
ck_check "--dir must be absolute" exits 2 ctl deploy create www --cn www.example.test --dir live/www
ck_check "--exec must parse like shell words" exits 2 ctl deploy create www --cn www.example.test --exec "'unclosed"
ck_check "--timeout needs --wait" exits 2 ctl deploy renew www --timeout 5
ck_check "--state takes a deployment state" exits 2 ctl deploy list --state complete
ck_check "--remove-files is for delete only" exits 2 ctl deploy pause www --remove-files

# ---- create --wait ------------------------------------------------------------------
cat >"$CK_RUN/hook" <<HOOK
#!/bin/sh
printf '%s\n' "\$@" >"$CK_RUN/hook.args"
env >"$CK_RUN/hook.env"
HOOK
chmod 0755 "$CK_RUN/hook"
ck_check "deploy create www --wait (with --exec, two words)" \
        ctl deploy create www --cn www.example.test --san www.example.test --san alt.example.test \
        --exec "$CK_RUN/hook 'first arg' second" --key-algorithm ec-256 --wait --timeout 60
ck_check "it says the deployment is active at revision 1" grep -q 'Deployment www: active, revision 1' <<<"$OUT"
ck_check "the files are there" test -s "$DEPLOY/www/privkey.pem" -a -s "$DEPLOY/www/fullchain.pem"
ck_check "Exec got its arguments as two words, quotes honoured" \
        test "$(cat "$CK_RUN/hook.args")" = "$(printf 'first arg\nsecond')"
ck_check "Exec saw CERTKEEPER_DEPLOYMENT=www" grep -qx 'CERTKEEPER_DEPLOYMENT=www' "$CK_RUN/hook.env"
ck_check "deploy create of a taken name: exit 1, Error.Exists and a hint" \
        exits 1 ctl deploy create www --cn www.example.test
ck_check "... naming the error" grep -q 'org.certkeeper1.Error.Exists' <<<"$ERR"
ck_check "... with a hint" grep -q '^Hint: certkeeperctl deploy list' <<<"$ERR"
ck_check "a key mode readable by others: InvalidArgument, exit 1" \
        exits 1 ctl deploy create loose --cn loose.example.test --key-mode 0644
ck_check "... naming the error" grep -q 'org.certkeeper1.Error.InvalidArgument' <<<"$ERR"
ck_check_fails "... and nothing was created" ctl deploy show loose

# ---- list, show ---------------------------------------------------------------------------
ck_check "deploy list" ctl deploy list
ck_check "lists www with its CN and state" grep -qE '^www +www\.example\.test +active ' <<<"$OUT"
ck_check "with a legend" grep -q '^1 deployment listed\.$' <<<"$OUT"
ck_check "deploy list --json=short" ctl --json=short deploy list
ck_check "JSON: name, object, state, not_after, next_renewal_at, last_error" \
        jq -e '.[0] | .name == "www" and (.object | startswith("/org/certkeeper1/deployment/")) and
               .state == "active" and .not_after > 0 and .next_renewal_at > 0 and .last_error == ""' <<<"$OUT"
ck_check "deploy list --state retrying is empty" ctl --json=short deploy list --state retrying
ck_check "... an empty array" jq -e 'length == 0' <<<"$OUT"
ck_check "deploy show www" ctl deploy show www
ck_check "shows KeyMode in octal" grep -qE '^ *KeyMode: 0600$' <<<"$OUT"
ck_check "shows the directory" grep -qE "^ *Directory: $DEPLOY/www\$" <<<"$OUT"
ck_check "shows the Exec words one per line" grep -qE '^ +first arg$' <<<"$OUT"
ck_check "deploy show --json=short www" ctl --json=short deploy show www
ck_check "JSON: the D-Bus properties in snake_case, and the object" \
        jq -e '.name == "www" and .state == "active" and .revision == 1 and .key_mode == 384 and
               .exec_timeout_sec > 0 and .last_error == "" and .next_attempt_at == null and
               (.certificate | startswith("/org/certkeeper1/certificate/")) and
               (.object | startswith("/org/certkeeper1/deployment/"))' <<<"$OUT"
ck_check "deploy show of an unknown name: exit 3" exits 3 ctl deploy show nosuch

# ---- renew -------------------------------------------------------------------------------------
fp1=$(fingerprint "$DEPLOY/www/cert.pem")
key1=$(pubkey "$DEPLOY/www/privkey.pem")
ck_check "deploy renew www --wait --json=short" ctl --json=short deploy renew www --wait --timeout 60
ck_check "JSON: active, revision 2, the order and the certificate" \
        jq -e '. as $d | .name == "www" and .state == "active" and .revision == 2 and .order_id > 0 and
               ($d.order | endswith("/\($d.order_id)")) and .certificate_id > 0 and
               ($d.certificate | endswith("/\($d.certificate_id)")) and .last_error == ""' <<<"$OUT"
ck_check "a new certificate is in the files" test "$(fingerprint "$DEPLOY/www/cert.pem")" != "$fp1"
ck_check "and a new key (rotate_key defaults to true)" test "$(pubkey "$DEPLOY/www/privkey.pem")" != "$key1"
key2=$(pubkey "$DEPLOY/www/privkey.pem")
ck_check "deploy renew www --no-rotate-key --wait" ctl deploy renew www --no-rotate-key --wait --timeout 60
ck_check "says revision 3" grep -q 'Deployment www: active, revision 3' <<<"$OUT"
ck_check "the key is kept" test "$(pubkey "$DEPLOY/www/privkey.pem")" = "$key2"
ck_check "deploy renew without --wait returns the order" ctl deploy renew www
ck_check "... and says how to follow it" grep -q '^Follow it with: certkeeperctl order [0-9]*, certkeeperctl deploy show www$' <<<"$OUT"
deployed_revision() { [ "$(ctl --json=short deploy show www | jq '.revision')" = "$1" ]; }
ck_wait_for "... which completes (revision 4)" 60 deployed_revision 4

# ---- redeploy, pause, resume ----------------------------------------------------------------------
rm -f "$CK_RUN/hook.args"
ck_check "deploy redeploy www --wait" ctl deploy redeploy www --wait --timeout 60
ck_check "Exec ran again" test -s "$CK_RUN/hook.args"
ck_check "deploy pause www" ctl deploy pause www
ck_check "the state is paused" test "$(ctl --json=short deploy show www | jq -r .state)" = paused
ck_check "deploy renew of a paused deployment fails (exit 1)" exits 1 ctl deploy renew www
ck_check "deploy resume www --json=short" ctl --json=short deploy resume www
ck_check "JSON: the action done" jq -e '.name == "www" and .action == "resume"' <<<"$OUT"
ck_check "the state is active" test "$(ctl --json=short deploy show www | jq -r .state)" = active

# ---- a failing Exec: exit 7 --------------------------------------------------------------------------
ck_check "deploy create with a failing Exec and --wait: exit 7 (the deployment failed)" \
        exits 7 ctl deploy create broken --cn broken.example.test --exec /bin/false --wait --timeout 60
ck_check "... saying so" grep -q 'certkeeperctl: deployment broken failed' <<<"$ERR"
ck_check "... pointing at the daemon's real log, not journalctl -u certkeeper" \
        grep -q "^Hint: .*certkeeperd's log $(realpath "$CK_DAEMON_LOG") has the details" <<<"$ERR"
ck_check "alerts: the deploy_failed alert's subject is the deployment" ctl --json=short alerts
ck_check "... not null" jq -e --arg d "$(ctl --json=short deploy show broken | jq -r .object)" \
        'any(.[]; .kind == "deploy_failed" and .subject == $d)' <<<"$OUT"
ck_check "deploy list shows it retrying with its error" ctl deploy list --state retrying
ck_check "... there" grep -qE '^broken +broken\.example\.test +retrying .*[^ ]' <<<"$OUT"

# ---- overview: the deployment that keeps each certificate, its last order, its alerts ---------------
ck_check "overview --json=short" ctl --json=short overview
ck_check "www's certificate is kept by deployment www, active, its last order the deployment's" \
        jq -e --arg c "$(ctl --json=short deploy show www | jq -r .certificate)" \
              --arg o "$(ctl --json=short deploy show www | jq -r .order)" \
              '[.[] | select(.object == $c)] | length == 1 and .[0].deployment.name == "www"
               and .[0].deployment.state == "active" and .[0].deployment.next_renewal_at > 0
               and .[0].last_order.object == $o' <<<"$OUT"
ck_check "the certificates its renewals replaced are left out (one entry for www.example.test)" \
        jq -e '[.[] | select(.common_name == "www.example.test")] | length == 1' <<<"$OUT"
ck_check "broken's certificate shows its deployment retrying and the deploy_failed alert" \
        jq -e '[.[] | select(.deployment.name == "broken")] | length == 1 and .[0].deployment.state == "retrying"
               and any(.[0].alerts[]; .kind == "deploy_failed")' <<<"$OUT"
ck_check "overview --all --json=short" ctl --json=short overview --all
ck_check "--all lists the replaced ones too" \
        jq -e '[.[] | select(.common_name == "www.example.test")] | length >= 4' <<<"$OUT"
ck_check "overview" ctl overview
ck_check "... a Deployment line for www" grep -qE '^ *Deployment: www \(active; next renewal in ' <<<"$OUT"
ck_check "... an Alerts line with broken's alert" grep -qE '^ *Alerts: [0-9]+ deploy_failed: ' <<<"$OUT"
ck_check "... and what was left out" grep -qE '^[0-9]+ managed certificates \(and [0-9]+ replaced by a deployment.s renewal\)' <<<"$OUT"

# ---- files in deployments.d: ReadOnly -------------------------------------------------------------------
printf '[Deployment]\nCommonName=cfg.example.test\n' >"$CK_RUN/deployments.d/cfg.conf"
ck_check "deploy reload reads deployments.d" ctl deploy reload
ck_check "the file's deployment is there" ctl --json=short deploy show cfg
ck_check "... from config" jq -e '.origin == "config"' <<<"$OUT"
ck_check "deploy delete of it: exit 1, Error.ReadOnly" exits 1 ctl deploy delete cfg
ck_check "... with a hint naming deployments.d" grep -q '^Hint: .*deployments.d' <<<"$ERR"
ck_check "... the daemon's own, beside its config file (not /etc/certkeeper)" \
        grep -q "^Hint: it is declared in $(dirname "$(realpath "$CK_CONF")")/deployments.d/: remove" <<<"$ERR"

# ---- hints for a caller polkit refuses (auth_admin, no agent) -------------------------------------------
out=$(ck_as ck-user "$CERTKEEPERCTL" deploy create nope --cn nope.example.test 2>&1)
rc=$?
ck_check "an unprivileged deploy create that may ask: refused (exit $rc)" test "$rc" = 4
ck_check "... InteractiveAuthorizationRequired, the hint naming a polkit agent" \
        grep -q "^Hint: .*polkit agent" <<<"$out"
ck_check "... and not telling to drop --no-ask-password, which was not given" \
        bash -c '! grep -q -- "--no-ask-password" <<<"$0"' "$out"
out=$(ck_as ck-user "$CERTKEEPERCTL" --no-ask-password deploy create nope --cn nope.example.test 2>&1)
rc=$?
ck_check "with --no-ask-password: AccessDenied (exit $rc)" test "$rc" = 4
ck_check "... and then the hint says to drop it" grep -q "^Hint: .*drop --no-ask-password" <<<"$out"

# ---- delete ----------------------------------------------------------------------------------------------
ck_check "deploy delete www --remove-files" ctl deploy delete www --remove-files
ck_check "it is gone (deploy show: exit 3)" exits 3 ctl deploy show www
ck_check_fails "and so are its files" test -e "$DEPLOY/www/cert.pem"
ck_check "deploy delete broken keeps its files" ctl deploy delete broken
ck_check "deploy list still lists cfg" ctl --no-legend deploy list
ck_check "... only" test "$(awk '{ print $1 }' <<<"$OUT" | tr '\n' ' ')" = "cfg "

ck_stop_daemon
ck_done
