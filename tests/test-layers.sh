#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layers of HACKING.md, checked on the source: the bus layer (daemon/bus/) and the
# daemon's wiring (daemon.c, main.c) hold no SQL — the bus includes no store header, and neither calls a
# sqlite3_*() or store_*() function that reads, writes or opens transactions; each table has
# its owner below them (issue 18).
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
echo "1..$n"
[ "$failed" = 0 ]
