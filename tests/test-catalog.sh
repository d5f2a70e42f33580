#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The committed journal catalog equals what the audit table generates, and
# journalctl accepts it.
# usage: test-catalog.sh GENERATED COMMITTED
set -u
n=0 failed=0
check() {
        n=$((n + 1))
        if "${@:2}" >/dev/null 2>&1; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
check "policy/certkeeper.catalog equals the generated catalog (regenerate: build/daemon/gen-catalog > policy/certkeeper.catalog)" cmp "$1" "$2"
# The twelve events of the seed and the eight of deployments (DESIGN.md "Deployments", with pause/resume).
check "twenty events, twenty MESSAGE_IDs" test "$(grep -c '^-- [0-9a-f]\{32\}$' "$1")" = 20
check "the MESSAGE_IDs are unique" test "$(grep '^-- ' "$1" | sort -u | wc -l)" = 20
tmp=$(mktemp -d)
mkdir -p "$tmp/usr/lib/systemd/catalog"
cp "$1" "$tmp/usr/lib/systemd/catalog/"
check "journalctl --update-catalog accepts it" journalctl --root="$tmp" --update-catalog
rm -rf "$tmp"
echo "1..$n"
[ "$failed" = 0 ]
