#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layers of HACKING.md, checked on the source: the bus layer (daemon/bus/) and the
# daemon's wiring (daemon.c, main.c) hold no SQL — the bus includes no store header, and neither calls a
# sqlite3_*() or store_*() function that reads, writes or opens transactions; each table has
# its owner below them (issue 18), and only that owner (and store-migrate.c) names it in SQL.
src=${1:?usage: test-layers.sh SOURCE_ROOT}
n=0
failed=0
check() {
        n=$((n + 1))
        if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
above=("$src"/daemon/bus/*.[ch] "$src/daemon/daemon.c" "$src/daemon/main.c")
bus=("$src"/daemon/bus/*.[ch])
no_match() {
        local re=$1 hits
        hits=$(grep -nE "$re" "${files[@]}")
        [ -z "$hits" ] || { echo "$hits" | sed 's/^/# /'; return 1; }
}
check "the bus layer has files to check (${#above[@]})" test "${#above[@]}" -ge 8
files=("${bus[@]}")
# (daemon.c opens and closes the store it hands to the modules: store_open()/store_free() only.)
check "no bus file includes store.h or sqlite3.h" no_match '#include [<"](store|sqlite3)\.h[>"]'
files=("${above[@]}")
check "no bus or wiring file calls sqlite3_*()" no_match '\bsqlite3_[a-z_]+\('
check "no bus or wiring file opens, commits or rolls back a transaction" \
        no_match '\bstore_(begin|begin_relaxed|commit|rollback)\('
check "no bus or wiring file prepares or runs a statement" \
        no_match '\bstore_(prepare|exec|exec_cached|step_done|bind_[a-z0-9]+|query_[a-z0-9]+)\('
# Below the bus nothing reaches up: no domain, storage or crypto file includes a bus header
# or the daemon's wiring.
below=()
for f in "$src"/daemon/*/*.[ch]; do case $f in "$src"/daemon/bus/*) ;; *) below+=("$f") ;; esac; done
files=("${below[@]}")
check "the layers below the bus have files to check (${#below[@]})" test "${#below[@]}" -ge 40
check "no file below the bus includes a bus header or daemon.h" \
        no_match '#include "(bus-[a-z-]+|authz|daemon)\.h"'
# Layer 0 is libc only: macro.h is included everywhere (certkeeperctl too), so an OpenSSL or
# SQLite header there would hand both to every file. Their cleanup helpers live in
# openssl-util.h (crypto) and store.h (store).
files=("$src/daemon/base/macro.h")
check "macro.h includes only libc headers" \
        no_match '#include ("|<(openssl|sqlite3|systemd|glib|json-glib|curl)[/.])'
# Each table has one owner (issue 18): a statement naming a table (INSERT … INTO t, UPDATE t,
# DELETE FROM t, FROM t, JOIN t, in a string literal) appears only in its owner's files and in
# store-migrate.c, which creates and migrates them all. Others call the owner's functions.
declare -A owner=(
        [certificates]='daemon/orders/inventory*.c'
        [certificate_paths]='daemon/orders/inventory*.c'
        [certificate_names]='daemon/orders/inventory*.c'
        [keys]='daemon/orders/keystore.c'
        [alerts]='daemon/orders/alerts.c'
        [ca]='daemon/providers/localca.c'
        [orders]='daemon/orders/orders*.c'
        [deployments]='daemon/deploy/deployments*.c'
        [audit]='daemon/orders/audit.c'
        [audit_counts]='daemon/orders/audit.c'
        [alerts_v3]='' # the schema-3 migration's scratch table
)
migrate="$src/daemon/store/store-migrate.c"
mapfile -t tables < <(grep -oE 'CREATE TABLE [a-z_0-9]+' "$migrate" | awk '{print $3}' | sort -u)
check "store-migrate.c creates tables to check (${#tables[@]})" test "${#tables[@]}" -ge 10
every_table_has_owner() {
        local t bad=0
        for t in "${tables[@]}"; do
                [ -n "${owner[$t]+set}" ] || { echo "# table $t has no owner in test-layers.sh"; bad=1; }
        done
        return $bad
}
check "every table has an owner" every_table_has_owner
# "file:line: table" for each table named after INTO/UPDATE/FROM/JOIN inside a string literal,
# and "file:line: <split>" for a literal that ends in one of those words (the table name would
# be in the next literal, out of this check's sight).
sql_tables() {
        awk '{
                line = $0
                while (match(line, /"([^"\\]|\\.)*"/)) {
                        lit = substr(line, RSTART + 1, RLENGTH - 2)
                        line = substr(line, RSTART + RLENGTH)
                        if (lit ~ /(^|[^A-Za-z_])(INTO|UPDATE|FROM|JOIN)[ \t]*$/)
                                print FILENAME ":" FNR ": <split>"
                        rest = lit
                        while (match(rest, /(INTO|UPDATE|FROM|JOIN)[ \t]+[a-z_][a-z_0-9]*/)) {
                                before = RSTART > 1 ? substr(rest, RSTART - 1, 1) : " "
                                word = substr(rest, RSTART, RLENGTH)
                                rest = substr(rest, RSTART + RLENGTH)
                                if (before ~ /[A-Za-z_0-9]/)
                                        continue
                                sub(/^[A-Z]+[ \t]+/, "", word)
                                print FILENAME ":" FNR ": " word
                        }
                }
        }' "$@"
}
owned_by() { # file table
        local g
        for g in ${owner[$2]}; do
                # shellcheck disable=SC2053
                [[ $1 == "$src"/$g ]] && return 0
        done
        return 1
}
tables_in_owners_only() {
        local hit file t bad=0
        local -a daemon_files=()
        for file in "$src"/daemon/*.[ch] "$src"/daemon/*/*.[ch]; do
                [ "$file" = "$migrate" ] || daemon_files+=("$file")
        done
        while IFS= read -r hit; do
                file=${hit%%:*}
                t=${hit##*: }
                if [ "$t" = "<split>" ]; then
                        echo "# $hit: a statement's table name is in the next string literal"
                        bad=1
                elif [ -n "${owner[$t]+set}" ] && ! owned_by "$file" "$t"; then
                        echo "# $hit: table $t belongs to ${owner[$t]:-store-migrate.c only}"
                        bad=1
                fi
        done < <(sql_tables "${daemon_files[@]}")
        return $bad
}
check "each table's statements are in its owner's files only" tables_in_owners_only
echo "1..$n"
[ "$failed" = 0 ]
