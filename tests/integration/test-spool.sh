#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The spool directory (DESIGN.md "Spool directory"): drop a CSR into incoming/,
# get a certificate in issued/ or a reason in failed/. Every wait is for a file
# to appear (inotifywait with a deadline), never a fixed sleep.

source "$(dirname "$0")/lib.sh"

ck_write_config "[Policy]\nAllowedDomains=*.example.com example.com"
IN=$CK_SPOOL_DIR/incoming
ISSUED=$CK_SPOOL_DIR/issued
FAILED=$CK_SPOOL_DIR/failed
WORK=$CK_RUN/spool-work
DB=$CK_STATE_DIR/certkeeper.db
mkdir -p "$WORK"
chmod 0755 "$WORK"

openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/key.pem" 2>/dev/null ||
        ck_bail "cannot make a key"

# mkcsr CN OUT [DER] — a CSR for CN (also as DNS SAN) signed with the shared key.
mkcsr() {
        openssl req -new -key "$WORK/key.pem" -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
                -outform "${3:-PEM}" -out "$2" 2>/dev/null
}

# exists PATH — true for anything there, a dangling symlink too.
exists() {
        [ -e "$1" ] || [ -L "$1" ]
}

# wait_path PATH [TIMEOUT] — until PATH exists: inotifywait on its directory (or, until that is
# made, on the directory above), with a deadline.
wait_path() {
        local path=$1 timeout=${2:-30} dir base deadline
        deadline=$(( $(ck_now_us) + timeout * 1000000 ))
        until exists "$path"; do
                (( $(ck_now_us) < deadline )) || return 1
                dir=$(dirname "$path")
                base=$(basename "$path")
                if [ ! -d "$dir" ]; then
                        base=$(basename "$dir")
                        dir=$(dirname "$dir")
                fi
                inotifywait -qq -t 1 -e close_write,moved_to,create --include "/${base//./\\.}\$" "$dir" 2>/dev/null
        done
        return 0
}

# wait_result NAME [UID] — the CSR NAME (e.g. x.csr) has left incoming/ for issued/ or failed/
# (root's), or for issued/UID/ or failed/UID/ (any other owner's, made on first use).
wait_result() {
        local deadline sub=${2:+/$2} d dirs
        deadline=$(( $(ck_now_us) + 30 * 1000000 ))
        until exists "$ISSUED$sub/$1" || exists "$FAILED$sub/$1"; do
                (( $(ck_now_us) < deadline )) || return 1
                dirs=()
                for d in "$ISSUED$sub" "$FAILED$sub" ${sub:+"$ISSUED" "$FAILED"}; do [ -d "$d" ] && dirs+=("$d"); done
                inotifywait -qq -t 1 -e moved_to,create --include "/(${1//./\\.}|[0-9]+)\$" "${dirs[@]}" 2>/dev/null
        done
        return 0
}

CA=$WORK/ca.pem
chmod 0755 "$ISSUED" "$FAILED"   # as an older version (and tmpfiles.d) made them
ck_start_daemon || ck_bail "certkeeperd did not start"
ck_busctl /org/certkeeper1 org.certkeeper1.Manager GetCACertificate | jq -r '.data[0]' >"$CA"
ck_check "the Local CA certificate is fetched" openssl x509 -in "$CA" -noout

# order_of NAME — the newest order with this spool name, from the store (read-only).
order_of() {
        sqlite3 -readonly "$DB" "SELECT id FROM orders WHERE spool_name = '$1' ORDER BY id DESC LIMIT 1"
}
orders_for() {
        sqlite3 -readonly "$DB" "SELECT count(*) FROM orders WHERE spool_name = '$1'"
}
order_prop() {
        ck_get_property "/org/certkeeper1/order/$1" org.certkeeper1.Order "$2" | jq -r .data
}

# check_issued NAME CN [DIR] — outputs there (in DIR, default issued/), modes, the CSR moved,
# verified against the CA.
check_issued() {
        local name=$1 cn=$2 base=${1%.csr} ISSUED=${3:-$ISSUED}
        ck_check "$name: issued/$base.crt, $base.chain.pem and $base.csr are there, incoming/ is empty of it" \
                bash -c "test -s '$ISSUED/$base.crt' -a -s '$ISSUED/$base.chain.pem' -a -f '$ISSUED/$name' \
                        -a ! -e '$IN/$name'"
        ck_check "$name: the certificate verifies against GetCACertificate" \
                openssl verify -CAfile "$CA" "$ISSUED/$base.crt"
        ck_check "$name: the chain file starts with the leaf and holds the CA" \
                bash -c "openssl x509 -in '$ISSUED/$base.chain.pem' -noout -subject | grep -q 'CN *= *$cn' &&
                        grep -c 'BEGIN CERTIFICATE' '$ISSUED/$base.chain.pem' | grep -qx 2 &&
                        openssl verify -CAfile '$CA' '$ISSUED/$base.chain.pem'"
        ck_check "$name: the certificate is for $cn" \
                bash -c "openssl x509 -in '$ISSUED/$base.crt' -noout -ext subjectAltName | grep -q 'DNS:$cn'"
        ck_check "$name: results are mode 0644" \
                bash -c "test \"\$(stat -c %a '$ISSUED/$base.crt' '$ISSUED/$base.chain.pem' | sort -u)\" = 644"
}

# ---- PEM written in place, DER renamed in --------------------------------------------------------

mkcsr pem.example.com "$IN/pem.csr"
ck_check "a PEM CSR written in place is taken" wait_result pem.csr
check_issued pem.csr pem.example.com
id=$(order_of pem.csr)
ck_check "pem.csr: exactly one order" test "$(orders_for pem.csr)" = 1
ck_check "pem.csr: the order is complete, channel spool, requested by root" \
        test "$(order_prop "$id" Status) $(order_prop "$id" Channel) $(order_prop "$id" RequestedBy)" = \
        "complete spool root"
ck_check "pem.csr: the order's Parameters name the spool file" \
        bash -c "ck_get_property /org/certkeeper1/order/$id org.certkeeper1.Order Parameters |
                jq -e '.data.spool_name.data == \"pem.csr\"'"
ck_check "pem.csr: audit certificate.request_csr.submitted for the order" \
        ck_journal_has CERTKEEPER_EVENT=certificate.request_csr.submitted CERTKEEPER_ORDER_ID="$id"

mkcsr der.example.com "$WORK/der.csr" DER
# A temp name with a dot is left alone until it is renamed to its real name.
mv "$WORK/der.csr" "$IN/.der.csr.part"
mv "$IN/.der.csr.part" "$IN/der.csr"
ck_check "a DER CSR renamed into incoming/ is taken" wait_result der.csr
check_issued der.csr der.example.com

mkcsr renamed.example.com "$WORK/renamed.csr"
mv "$WORK/renamed.csr" "$IN/renamed.csr"
ck_check "a PEM CSR renamed into incoming/ is taken" wait_result renamed.csr
check_issued renamed.csr renamed.example.com

echo "not mine" >"$IN/readme.txt"
echo "temp" >"$IN/.hidden.csr"

# ---- refused input: no order, failed/NAME.error --------------------------------------------------

# check_refused NAME PATTERN [DIR] — failed/NAME and failed/BASE.error (in DIR, default failed/)
# explaining (PATTERN), no order.
check_refused() {
        local name=$1 pattern=$2 base=${1%.csr} FAILED=${3:-$FAILED}
        # The report is written first, the entry moved last: wait for the entry.
        ck_check "$name: refused, the entry itself moved to failed/" wait_path "$FAILED/$name"
        ck_check "$name: failed/$base.error is written, incoming/$name is gone" \
                bash -c "test -f '$FAILED/$base.error' && ! { [ -e '$IN/$name' ] || [ -L '$IN/$name' ]; }"
        ck_check "$name: the error says why ($pattern) and that no order was created" \
                bash -c "grep -Eq '$pattern' '$FAILED/$base.error' && grep -q 'no order was created' '$FAILED/$base.error' &&
                        test \$(wc -l <'$FAILED/$base.error') = 1"
        ck_check "$name: no order" test "$(orders_for "$name")" = 0
}

echo "this is not a CSR" >"$IN/garbage.csr"
check_refused garbage.csr "not a usable CSR"
ck_check "garbage.csr: the CSR is in failed/" test -f "$FAILED/garbage.csr"

# A file whose owner may not submit (issue 17: the owner is the requester): nobody is neither root
# nor in certkeeper-submit; a file of theirs renamed into incoming/ by someone else is refused.
mkcsr notmine.example.com "$WORK/notmine.csr" && chown nobody "$WORK/notmine.csr" && chmod 0644 "$WORK/notmine.csr"
mv "$WORK/notmine.csr" "$IN/notmine.csr"
nobody_uid=$(id -u nobody)
check_refused notmine.csr "belongs to nobody \\(uid [0-9]+\\), who may not submit" "$FAILED/$nobody_uid"
ck_check "notmine.csr: failed/$nobody_uid/ is not handed to nobody, who may not submit (root's, 0700)" \
        test "$(stat -c '%U %a' "$FAILED/$nobody_uid")" = "root 700"

# Issue 17 item 2: a name that is not UTF-8 would become the order's SpoolName, a D-Bus string.
mkcsr notutf8.example.com "$WORK/notutf8.csr"
bad=$(printf 'x\xff.csr')
mv "$WORK/notutf8.csr" "$IN/$bad"
check_refused "$bad" "not valid UTF-8"
ck_check "GetManagedObjects still answers after a name that is not UTF-8" \
        busctl --system call org.certkeeper1 /org/certkeeper1 org.freedesktop.DBus.ObjectManager GetManagedObjects

mkcsr damaged.example.com "$WORK/damaged.der" DER
size=$(stat -c %s "$WORK/damaged.der")
# Flip the last byte: inside the signature value, the structure stays intact.
last=$(od -An -tu1 -j $((size - 1)) -N1 "$WORK/damaged.der" | tr -d ' ')
{ head -c $((size - 1)) "$WORK/damaged.der"; printf "\\$(printf %03o $(( last ^ 1 )))"; } >"$WORK/damaged.csr"
ck_check "the damaged CSR differs from the original in one byte" \
        test "$(cmp -l "$WORK/damaged.der" "$WORK/damaged.csr" | wc -l)" = 1
mv "$WORK/damaged.csr" "$IN/damaged.csr"
check_refused damaged.csr "signature"

mkcsr target.example.com "$WORK/target.csr"
ln -s "$WORK/target.csr" "$IN/link.csr"
check_refused link.csr "symbolic link"
ck_check "link.csr: failed/link.csr is the symlink itself, its target untouched" \
        bash -c "test -L '$FAILED/link.csr' -a -f '$WORK/target.csr'"

mkfifo "$IN/fifo.csr"
check_refused fifo.csr "FIFO"
ck_check "fifo.csr: failed/fifo.csr is the FIFO" test -p "$FAILED/fifo.csr"
ck_check "the daemon is not blocked by the FIFO: a D-Bus call answers" \
        timeout 10 busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCACertificate

head -c 70000 /dev/zero | tr '\0' A >"$IN/big.csr"
check_refused big.csr "at most 65536 bytes"

mkdir "$IN/dir.csr"
check_refused dir.csr "directory"
ck_check "dir.csr: failed/dir.csr is the directory" test -d "$FAILED/dir.csr"

mkcsr hardlink.example.com "$WORK/hard.csr"
ln "$WORK/hard.csr" "$IN/hardlink.csr"
check_refused hardlink.csr "hard links"

# ---- sidecar -------------------------------------------------------------------------------------

printf '[Request]\nValidityDays=10\nProvider=local\n' >"$IN/side.conf"
mkcsr side.example.com "$WORK/side.csr"
mv "$WORK/side.csr" "$IN/side.csr"
ck_check "a CSR with a sidecar is taken" wait_result side.csr
check_issued side.csr side.example.com
validity_days() {
        local nb na
        nb=$(date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s)
        na=$(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s)
        echo $(( (na - nb + 43200) / 86400 ))
}
ck_check "side.csr: the sidecar's ValidityDays=10 applied" test "$(validity_days "$ISSUED/side.crt")" = 10
ck_check "side.csr: the sidecar moved with the CSR" bash -c "test -f '$ISSUED/side.conf' -a ! -e '$IN/side.conf'"
ck_check "pem.csr (no sidecar) got the default 90 days" test "$(validity_days "$ISSUED/pem.crt")" = 90

printf '[Request]\nColour=blue\n' >"$IN/badside.conf"
mkcsr badside.example.com "$WORK/badside.csr"
mv "$WORK/badside.csr" "$IN/badside.csr"
check_refused badside.csr "Colour"
ck_check "badside.csr: the sidecar moved with the CSR to failed/" \
        bash -c "test -f '$FAILED/badside.conf' -a ! -e '$IN/badside.conf'"

# ---- a submitter who is not root -----------------------------------------------------------------

user_uid=$(id -u ck-user)
mkcsr user.example.com "$WORK/user.csr"
ck_check "ck-user can write into incoming/ (group certkeeper-submit)" \
        ck_as ck-user bash -c "umask 077; cat >'$IN/user.csr'" <"$WORK/user.csr"
ck_check "ck-user's CSR is taken" wait_result user.csr "$user_uid"
check_issued user.csr user.example.com "$ISSUED/$user_uid"
id=$(order_of user.csr)
ck_check "user.csr: RequestedBy is ck-user, RequestedByUID its uid" \
        test "$(order_prop "$id" RequestedBy) $(order_prop "$id" RequestedByUID)" = "ck-user $user_uid"
ck_check "user.csr: the results belong to ck-user" \
        bash -c "test \"\$(stat -c %U '$ISSUED/$user_uid/user.crt' '$ISSUED/$user_uid/user.chain.pem' | sort -u)\" = ck-user"
ck_check "user.csr: ck-user can read its certificate" ck_as ck-user cat "$ISSUED/$user_uid/user.crt"
ck_check "user.csr: the audit record carries ck-user's uid" \
        ck_journal_has CERTKEEPER_EVENT=certificate.request_csr.submitted CERTKEEPER_ORDER_ID="$id" \
        CERTKEEPER_CALLER_UID="$user_uid"

# A sidecar of another (non-root) user does not apply to ck-user's CSR.
printf '[Request]\nValidityDays=5\n' | ck_as ck-admin bash -c "cat >'$IN/usersc.conf'"
mkcsr usersc.example.com "$WORK/usersc.csr"
ck_as ck-user bash -c "cat >'$IN/usersc.csr'" <"$WORK/usersc.csr"
check_refused usersc.csr "sidecar applies only to its owner" "$FAILED/$user_uid"

# ---- two users, one name: each user's results are their own (issue 17 item 3) ------------------------

admin_uid=$(id -u ck-admin)
for u in admin user; do
        openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$u.key" 2>/dev/null ||
                ck_bail "cannot make a key"
done
# drop USER NAME CN [KEY] — USER writes a CSR for CN (signed with KEY, default that user's key) into
# incoming/NAME.
drop() {
        local who=$1 name=$2 cn=$3 key=${4:-$WORK/${1#ck-}.key}
        openssl req -new -key "$key" -subj "/CN=$cn" -addext "subjectAltName=DNS:$cn" -out "$WORK/drop.csr" \
                2>/dev/null && chmod 0644 "$WORK/drop.csr" &&
                ck_as "$who" bash -c "cat >'$IN/$name'" <"$WORK/drop.csr"
}
# certifies CERT KEY — the certificate is for that key.
certifies() {
        test "$(openssl x509 -in "$1" -noout -pubkey | sha256sum)" = "$(openssl pkey -in "$2" -pubout | sha256sum)"
}
sum_of() {
        sha256sum "$@" | awk '{print $1}' | tr '\n' ' '
}

ck_check "issued/ and failed/ of an older version (0755) are made unlistable: 0711" \
        test "$(stat -c %a "$ISSUED" "$FAILED" | sort -u)" = 711

# ck-admin first, then ck-user; then the other way round under another name.
for order in "ck-admin ck-user" "ck-user ck-admin"; do
        read -r first second <<<"$order"
        name=www-${first#ck-}.csr
        base=${name%.csr}
        first_uid=$(id -u "$first") second_uid=$(id -u "$second")
        drop "$first" "$name" "$base.example.com"
        ck_check "$name by $first: issued in issued/$first_uid/" wait_result "$name" "$first_uid"
        check_issued "$name" "$base.example.com" "$ISSUED/$first_uid"
        before=$(sum_of "$ISSUED/$first_uid/$base".{crt,chain.pem,csr})
        drop "$second" "$name" "$base.example.com"
        ck_check "$name by $second after $first: issued in issued/$second_uid/" wait_result "$name" "$second_uid"
        check_issued "$name" "$base.example.com" "$ISSUED/$second_uid"
        ck_check "$name: $first's results are untouched by $second's drop" \
                test "$(sum_of "$ISSUED/$first_uid/$base".{crt,chain.pem,csr})" = "$before"
        ck_check "$name: $first's certificate is for $first's key" \
                certifies "$ISSUED/$first_uid/$base.crt" "$WORK/${first#ck-}.key"
        ck_check "$name: $second's certificate is for $second's key" \
                certifies "$ISSUED/$second_uid/$base.crt" "$WORK/${second#ck-}.key"
        ck_check "$name: each user's results belong to that user" \
                test "$(stat -c %U "$ISSUED/$first_uid/$base".{crt,chain.pem,csr} | sort -u) $(stat -c %U \
                        "$ISSUED/$second_uid/$base".{crt,chain.pem,csr} | sort -u)" = "$first $second"
        ck_check "$name: nothing under that name in issued/ itself (root's)" test ! -e "$ISSUED/$base.crt"
        ck_check "$name: two orders, requested by each user" \
                test "$(sqlite3 -readonly "$DB" "SELECT group_concat(requested_by, ' ') FROM
                        (SELECT requested_by FROM orders WHERE spool_name = '$name' ORDER BY id)")" = "$first $second"
done

ck_check "a user's directory is theirs, mode 0770" \
        test "$(stat -c '%U %a' "$ISSUED/$user_uid" "$ISSUED/$admin_uid" | tr '\n' ' ')" = "ck-user 770 ck-admin 770 "
ck_check_fails "ck-user cannot list issued/" ck_as ck-user ls "$ISSUED"
ck_check_fails "ck-user cannot list failed/" ck_as ck-user ls "$FAILED"
ck_check_fails "ck-user cannot list ck-admin's issued/$admin_uid/" ck_as ck-user ls "$ISSUED/$admin_uid"
ck_check_fails "ck-user cannot read ck-admin's results even by name" \
        ck_as ck-user cat "$ISSUED/$admin_uid/www-admin.crt"
ck_check_fails "ck-user cannot remove ck-admin's results" ck_as ck-user rm -f "$ISSUED/$admin_uid/www-admin.crt"
lists() {
        ck_as "$1" ls "$2" | grep -qx "$3"
}
ck_check "ck-user lists its own issued/$user_uid/" lists ck-user "$ISSUED/$user_uid" www-admin.crt
ck_check "ck-user reaches root's results by name (issued/ is 0711)" ck_as ck-user cat "$ISSUED/pem.crt"

# Root's drop of the same name lands in issued/ itself and touches neither user's results.
before=$(sum_of "$ISSUED/$admin_uid/www-admin.crt" "$ISSUED/$user_uid/www-admin.crt")
mkcsr www-admin.example.com "$IN/www-admin.csr"
ck_check "root's www-admin.csr: issued in issued/ itself" wait_result www-admin.csr
check_issued www-admin.csr www-admin.example.com
ck_check "root's www-admin.csr: both users' results are untouched" \
        test "$(sum_of "$ISSUED/$admin_uid/www-admin.crt" "$ISSUED/$user_uid/www-admin.crt")" = "$before"

# A failure is removed by its owner's later success only.
drop ck-admin ff.csr ff.evil.test
ck_check "ck-admin's ff.csr fails (policy): failed/$admin_uid/ff.error" wait_path "$FAILED/$admin_uid/ff.csr"
ck_check "... owned by ck-admin, naming the policy" \
        bash -c "test \"\$(stat -c %U '$FAILED/$admin_uid/ff.error')\" = ck-admin && grep -q policy '$FAILED/$admin_uid/ff.error'"
drop ck-user ff.csr ff.example.com
ck_check "ck-user's good ff.csr is issued" wait_result ff.csr "$user_uid"
ck_check "... and ck-admin's failure report stays" test -f "$FAILED/$admin_uid/ff.error" -a -f "$FAILED/$admin_uid/ff.csr"
drop ck-user ff2.csr ff2.evil.test
ck_check "ck-user's ff2.csr fails" wait_path "$FAILED/$user_uid/ff2.csr"
ck_check "ck-user removes its own results (its directory)" \
        ck_as ck-user rm "$FAILED/$user_uid/ff2.csr"
serial1=$(openssl x509 -in "$ISSUED/$user_uid/ff.crt" -noout -serial)
ck_check "ck-user removes its own issued/$user_uid/ff.csr to drop the name again" \
        ck_as ck-user rm "$ISSUED/$user_uid/ff.csr"
drop ck-user ff2.csr ff2.example.com
ck_check "ck-user's later good ff2.csr is issued" wait_result ff2.csr "$user_uid"
ck_check "... and removes ck-user's own earlier failure" test ! -e "$FAILED/$user_uid/ff2.error"
drop ck-user ff.csr ff.example.com
ck_check "ck-user's second ff.csr is issued" wait_result ff.csr "$user_uid"
ck_check "... and replaces its own certificate" \
        test "$(openssl x509 -in "$ISSUED/$user_uid/ff.crt" -noout -serial)" != "$serial1"

# ---- names too long for their results (issue 17): refused with a report all the same --------------

long245=$(printf 'l%.0s' {1..245})
mkcsr long.example.com "$WORK/long.csr"
cp "$WORK/long.csr" "$IN/$long245.csr"
check_refused "$long245.csr" "at most 240 are taken"
# 251 bytes + .csr is as long as a file name can be: NAME.error would not fit; the report is
# failed/<first 240 bytes>~<8 hex digits of the SHA-256 of NAME.csr>.error.
long251=$(printf 'm%.0s' {1..251})
hash=$(printf '%s' "$long251.csr" | sha256sum | cut -c1-8)
short=${long251:0:240}~$hash.error
cp "$WORK/long.csr" "$IN/$long251.csr"
ck_check "a 251-byte name: the CSR moves to failed/" wait_path "$FAILED/$long251.csr"
ck_check "... with the report failed/<240 bytes>~$hash.error saying why and naming the file" \
        bash -c "grep -q 'at most 240 are taken.*; no order was created' '$FAILED/$short' &&
                grep -qF '$long251.csr' '$FAILED/$short'"
ck_check "... and no order" test "$(orders_for "$long251.csr")" = 0

# ---- policy hard-fail ----------------------------------------------------------------------------

mkcsr evil.test "$WORK/evil.csr"
mv "$WORK/evil.csr" "$IN/evil.csr"
ck_check "a CSR outside AllowedDomains is answered" wait_result evil.csr
id=$(order_of evil.csr)
ck_check "evil.csr: one failed order" \
        test "$(orders_for evil.csr) $(order_prop "$id" Status) $(order_prop "$id" Channel)" = "1 failed spool"
ck_check "evil.csr: failed/evil.csr and failed/evil.error" test -f "$FAILED/evil.csr" -a -f "$FAILED/evil.error"
ck_check "evil.csr: the error names the policy and the order" \
        bash -c "grep -q 'policy' '$FAILED/evil.error' && grep -q '/org/certkeeper1/order/$id)' '$FAILED/evil.error' &&
                test \$(wc -l <'$FAILED/evil.error') = 1"
ck_check "evil.csr: audit certificate.policy_hard_fail" \
        ck_journal_has CERTKEEPER_EVENT=certificate.policy_hard_fail CERTKEEPER_ORDER_ID="$id"
ck_check "evil.csr: nothing in issued/" test ! -e "$ISSUED/evil.crt"

# ---- the same bytes again later are a new request; a later success clears an old failure ----------

cp "$ISSUED/pem.csr" "$WORK/again.csr"
cp "$WORK/again.csr" "$IN/again.csr"
ck_check "again.csr is taken" wait_result again.csr
serial1=$(openssl x509 -in "$ISSUED/again.crt" -noout -serial)
rm -f "$ISSUED/again.csr"
cp "$WORK/again.csr" "$IN/again.csr"
ck_check "the same CSR dropped again is taken again" wait_result again.csr
ck_check "... as a second order" test "$(orders_for again.csr)" = 2
ck_check "... with a new certificate" \
        test "$(openssl x509 -in "$ISSUED/again.crt" -noout -serial)" != "$serial1"

mkcsr fixed.example.com "$IN/badside.csr"
rm -f "$FAILED/badside.csr"
ck_check "a good CSR under a failed name is issued" wait_path "$ISSUED/badside.csr"
ck_check "... and the old failure report is gone" test ! -e "$FAILED/badside.error"

ck_check "files with other names are left alone" test -f "$IN/readme.txt" -a -f "$IN/.hidden.csr"

# ---- files present at start-up; an inotify queue overflow ----------------------------------------

ck_stop_daemon
mkcsr offline.example.com "$IN/offline.csr"
ck_start_daemon || ck_bail "certkeeperd did not restart"
ck_check "a CSR dropped while the daemon was stopped is taken at start-up" wait_result offline.csr
check_issued offline.csr offline.example.com

# Stop the daemon's loop, queue more inotify events than the kernel keeps, then drop a CSR whose
# event is lost: only the rescan after IN_Q_OVERFLOW can find it.
max_events=$(cat /proc/sys/fs/inotify/max_queued_events)
if [ "$max_events" -le 50000 ]; then
        kill -STOP "$CK_DAEMON_PID"
        (cd "$IN" && seq -f '.pad%g' 1 $(( max_events / 2 + 100 )) | xargs touch)
        mkcsr overflow.example.com "$WORK/overflow.csr"
        mv "$WORK/overflow.csr" "$IN/overflow.csr"
        kill -CONT "$CK_DAEMON_PID"
        ck_check "after an inotify queue overflow the rescan takes the CSR" wait_result overflow.csr
        check_issued overflow.csr overflow.example.com
        (cd "$IN" && find . -maxdepth 1 -name '.pad*' -delete)
else
        ck_skip "inotify queue overflow" "max_queued_events is $max_events"
fi

# ---- 1,000 files at once, kill -9 in the middle, restart ------------------------------------------

N=${CK_SPOOL_FLOOD:-1000}
mkdir -p "$WORK/flood"
t0=$(ck_now_us)
# One process for all when python3-cryptography is there (seconds less under a sanitizer), else openssl.
if ! /usr/bin/python3 - "$WORK/key.pem" "$WORK/flood" "$N" 2>/dev/null <<'PY'
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
for i in range(1, int(sys.argv[3]) + 1):
    cn = "f%d.example.com" % i
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
           .sign(key, hashes.SHA256()))
    open("%s/f%d.csr" % (sys.argv[2], i), "wb").write(csr.public_bytes(serialization.Encoding.PEM))
PY
then
        seq 1 "$N" | xargs -P 4 -I{} openssl req -new -key "$WORK/key.pem" -subj "/CN=f{}.example.com" \
                -addext "subjectAltName=DNS:f{}.example.com" -out "$WORK/flood/f{}.csr" 2>/dev/null
fi
ck_diag "made $N CSRs in $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "$N CSRs are ready" test "$(find "$WORK/flood" -name 'f[0-9]*.csr' | wc -l)" = "$N"

count_done() {
        find "$ISSUED" "$FAILED" -maxdepth 1 -name 'f[0-9]*.csr' | wc -l
}
at_least_done() {
        [ "$(count_done)" -ge "$1" ]
}
t0=$(ck_now_us)
(cd "$WORK/flood" && find . -name 'f[0-9]*.csr' -print0 | xargs -0 mv -t "$IN")
ck_check "a D-Bus call answers during the flood within 2 s" \
        timeout 2 busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCACertificate
ck_wait_for "the flood is being taken" 60 at_least_done $(( N / 10 ))
ck_kill9_daemon
done_at_kill=$(count_done)
left=$(find "$IN" -maxdepth 1 -name 'f[0-9]*.csr' | wc -l)
ck_diag "killed with $done_at_kill done and $left still in incoming/ after $(( ($(ck_now_us) - t0) / 1000 )) ms"
ck_check "the kill came in the middle (files were still waiting)" test "$left" -gt 0
ck_check "nothing was lost by the crash" test $(( done_at_kill + left )) = "$N"

t1=$(ck_now_us)
ck_start_daemon || ck_bail "certkeeperd did not restart after kill -9"
ck_check "a D-Bus call answers within 2 s while the restart takes the backlog" \
        timeout 2 busctl --system call org.certkeeper1 /org/certkeeper1 org.certkeeper1.Manager GetCACertificate
ck_wait_for "after the restart every file is answered" 300 at_least_done "$N"
t2=$(ck_now_us)
ck_diag "restart to last result: $(( (t2 - t1) / 1000 )) ms; $N files in $(( (t2 - t0) / 1000 )) ms including the crash"
ck_check "incoming/ holds none of them" test "$(find "$IN" -maxdepth 1 -name 'f[0-9]*.csr' | wc -l)" = 0

every_file_once() {
        local i bad=0
        for ((i = 1; i <= N; i++)); do
                if [ -e "$ISSUED/f$i.csr" ] && [ -e "$FAILED/f$i.csr" ]; then bad=$((bad + 1)); fi
                if [ ! -e "$ISSUED/f$i.csr" ] && [ ! -e "$FAILED/f$i.csr" ]; then bad=$((bad + 1)); fi
                if [ -e "$ISSUED/f$i.csr" ] && [ ! -s "$ISSUED/f$i.crt" ]; then bad=$((bad + 1)); fi
        done
        [ "$bad" = 0 ] || { echo "$bad files missing, doubled or without certificate"; return 1; }
}
ck_check "every file is in issued/ or failed/, exactly once" every_file_once
ck_check "all of them were issued" test "$(find "$ISSUED" -maxdepth 1 -name 'f[0-9]*.csr' | wc -l)" = "$N"
ck_check "every certificate verifies against the CA" \
        bash -c "cd '$ISSUED' && openssl verify -CAfile '$CA' f[0-9]*.crt | grep -c ': OK\$' | grep -qx '$N'"

# ---- a submitter at its limit of open orders waits; nobody else does, nothing fails -----------------

ck_stop_daemon
ck_write_config "MaxPendingOrdersPerCaller=1\n[Policy]\nAllowedDomains=*.example.com example.com"
mkdir -p "$WORK/limit"
for i in 1 2 3 4 5 6 7 8; do mkcsr "u$i.example.com" "$WORK/limit/u$i.csr"; done
mkcsr rootside.example.com "$WORK/limit/rootside.csr"
chmod 0644 "$WORK/limit"/*.csr
# Dropped while the daemon is down, so that they are all taken together at start: a quick
# order finishes in about a millisecond, and files dropped one by one under a running
# daemon may each be done before the next arrives (then no one ever waits).
ck_check "ck-user drops 8 CSRs at once" \
        ck_as ck-user bash -c "for i in 1 2 3 4 5 6 7 8; do cat '$WORK/limit/u'\$i.csr >'$IN/.u'\$i.tmp &&
                mv '$IN/.u'\$i.tmp '$IN/u'\$i.csr; done"
mv "$WORK/limit/rootside.csr" "$IN/rootside.csr"
ck_start_daemon --debug || ck_bail "certkeeperd did not start with MaxPendingOrdersPerCaller=1"
all_user_issued() {
        local i
        for i in 1 2 3 4 5 6 7 8; do [ -e "$ISSUED/$user_uid/u$i.csr" ] || return 1; done
}
ck_wait_for "with one open order allowed, all 8 are issued in turn" 60 all_user_issued
ck_check "root's CSR meanwhile is issued too" wait_result rootside.csr
ck_check "the limit was reached: some waited for ck-user's earlier orders" \
        grep -q "Spool: incoming/u[0-9].csr waits: uid $user_uid already has" "$CK_DAEMON_LOG"
ck_check "none of them failed, one order each" \
        test "$(ls "$FAILED" "$FAILED/$user_uid" | grep -c '^u[0-9]')" = 0 -a \
        "$(sqlite3 -readonly "$DB" "SELECT count(*) FROM orders WHERE spool_name GLOB 'u[0-9].csr'")" = 8

ck_stop_daemon
ck_check "one order per file in the store" \
        test "$(sqlite3 -readonly "$DB" "SELECT count(*), count(DISTINCT spool_name) FROM orders
                WHERE spool_name GLOB 'f[0-9]*.csr'")" = "$N|$N"
ck_check "one certificate per file in the inventory" \
        test "$(sqlite3 -readonly "$DB" "SELECT count(*) FROM certificates WHERE common_name GLOB 'f[0-9]*.example.com'")" = "$N"
ck_check "the orders are complete, channel spool" \
        test "$(sqlite3 -readonly "$DB" "SELECT count(*) FROM orders WHERE spool_name GLOB 'f[0-9]*.csr'
                AND status = 'complete' AND channel = 'spool'")" = "$N"

# ---- SIGTERM in the middle of a flood: files being read or written are dropped cleanly ---------------
# (the spool's worker jobs are discarded at shutdown; under a sanitizer a leak fails the clean stop).
# The first flood's CSRs again under other names: new requests, for the same subjects.

ck_start_daemon || ck_bail "certkeeperd did not start for the second flood"
M=500
mkdir -p "$WORK/flood2"
for ((i = 1; i <= M; i++)); do cp "$ISSUED/f$i.csr" "$WORK/flood2/g$i.csr"; done
count_g() {
        find "$ISSUED" "$FAILED" -maxdepth 1 -name 'g[0-9]*.csr' | wc -l
}
g_at_least() {
        [ "$(count_g)" -ge "$1" ]
}
(cd "$WORK/flood2" && find . -name 'g[0-9]*.csr' -print0 | xargs -0 mv -t "$IN")
ck_wait_for "the second flood is being taken" 60 g_at_least 1
ck_stop_daemon
left=$(find "$IN" -maxdepth 1 -name 'g[0-9]*.csr' | wc -l)
ck_diag "stopped with $(count_g) done and $left still in incoming/"
ck_check "the stop came in the middle (files were still waiting)" test "$left" -gt 0
ck_check "nothing was lost by the stop" test $(( $(count_g) + left )) = "$M"
ck_start_daemon || ck_bail "certkeeperd did not restart after SIGTERM"
ck_wait_for "after the restart every file of the second flood is answered" 300 g_at_least "$M"
ck_check "incoming/ holds none of them" test "$(find "$IN" -maxdepth 1 -name 'g[0-9]*.csr' | wc -l)" = 0
ck_check "all of them were issued, one order each" \
        test "$(find "$ISSUED" -maxdepth 1 -name 'g[0-9]*.crt' | wc -l)|$(sqlite3 -readonly "$DB" \
                "SELECT count(*), count(DISTINCT spool_name) FROM orders WHERE spool_name GLOB 'g[0-9]*.csr'")" = "$M|$M|$M"
ck_stop_daemon

ck_done
