#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The bash completion of certkeeperctl: verbs, options per verb, option values,
# and IDs from "certkeeperctl list --no-legend" (first column). TAP output.
set -u
COMPLETION=${1:?usage: test-ctl-completion.sh COMPLETION-FILE CERTKEEPERCTL}
CTL=${2:?usage: test-ctl-completion.sh COMPLETION-FILE CERTKEEPERCTL}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-such-bus"

# A stand-in for the daemon's output only where the real client cannot run
# without one: the completion reads IDs from this "certkeeperctl".
mkdir "$TMP/bin"
cat >"$TMP/bin/certkeeperctl" <<'EOS'
#!/bin/bash
case " $* " in
*" deploy list "*) printf 'www  www.example.com active\nmail mail.example.com retrying\n' ;;
*" list "*) printf '7  www.example.com active managed\n12 old.example.com revoked discovered\n' ;;
*" orders "*"--status failed"*) printf '6  bad.example.org local-pki failed\n' ;;
*" orders "*) printf '5  www.example.com local-pki complete\n6  bad.example.org local-pki failed\n' ;;
*" alerts "*) printf '3  expiring\n' ;;
esac
EOS
chmod +x "$TMP/bin/certkeeperctl"

compopt() { :; } # only valid inside a real completion; harmless here
# shellcheck source=/dev/null
. "$COMPLETION"

n=0
fail=0
# expect "WORDS..." "EXPECTED COMPLETIONS (sorted, space-separated)"
expect() {
        local line=$1 want=$2 got
        read -r -a COMP_WORDS <<<"$line"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _certkeeperctl
        got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ *$//')
        n=$((n + 1))
        if [[ $got == "$want" ]]; then
                echo "ok $n - '$line' → $got"
        else
                echo "not ok $n - '$line' → '$got', wanted '$want'"
                fail=1
        fi
}

PATH="$TMP/bin:$PATH"
expect "certkeeperctl re" "request rescan resubmit revoke revoke-request"
expect "certkeeperctl --no-legend li" "list"
expect "certkeeperctl --json = short or" "order orders"
expect "certkeeperctl list --s" "--source --status"
expect "certkeeperctl list --source " "discovered managed"
expect "certkeeperctl orders --status " "complete failed pending processing"
expect "certkeeperctl list --status " "active expired revoked"
expect "certkeeperctl request www.example.com --key ec" "ec-256 ec-384"
expect "certkeeperctl revoke 7 --reason c" "cACompromise cessationOfOperation"
expect "certkeeperctl show " "12 7"
expect "certkeeperctl dep" "deploy"
expect "certkeeperctl deploy " "create delete list pause redeploy reload renew resume show"
expect "certkeeperctl deploy re" "redeploy reload renew resume"
expect "certkeeperctl deploy renew " "mail www"
expect "certkeeperctl --no-legend deploy show w" "www"
expect "certkeeperctl deploy renew www " ""
expect "certkeeperctl deploy create www --key-m" "--key-mode"
expect "certkeeperctl deploy create www --key-algorithm ec" "ec-256 ec-384"
expect "certkeeperctl deploy create www --exec-timeout 30 --re" "--reload --renew-before-days"
expect "certkeeperctl deploy list --state re" "renewing retrying"
expect "certkeeperctl deploy delete www --r" "--remove-files"
expect "certkeeperctl deploy renew www --w" "--wait"
expect "certkeeperctl download 1" "12"
expect "certkeeperctl revoke --reason superseded " "12 7"
expect "certkeeperctl show 7 " ""
expect "certkeeperctl order " "5 6"
expect "certkeeperctl resubmit " "6"
expect "certkeeperctl ack " "3"
expect "certkeeperctl audit --event certificate.revoke." "certificate.revoke.requested certificate.revoke.success"
expect "certkeeperctl ca --" "--crl --help --json= --no-ask-password --no-legend --no-pager --version"
expect "certkeeperctl --json = " "pretty short"

# With the real client and no daemon, ID completion is empty and quiet.
PATH="$(dirname "$CTL"):${PATH#"$TMP/bin:"}"
expect "certkeeperctl show " ""

echo "1..$n"
exit $fail
