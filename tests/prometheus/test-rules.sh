#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The alerting rules of contrib/prometheus/ pass promtool check rules and their unit tests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
command -v promtool >/dev/null || { echo "1..0 # SKIP promtool is not installed (package prometheus)"; exit 0; }
echo "1..2"
if out=$(promtool check rules "$here/../../contrib/prometheus/certkeeper-rules.yml" 2>&1); then
        echo "ok 1 - promtool check rules contrib/prometheus/certkeeper-rules.yml"
else
        echo "not ok 1 - promtool check rules contrib/prometheus/certkeeper-rules.yml"; sed 's/^/# /' <<<"$out"; rc=1
fi
if out=$(cd "$here" && promtool test rules certkeeper-rules.test.yml 2>&1); then
        echo "ok 2 - promtool test rules certkeeper-rules.test.yml"
else
        echo "not ok 2 - promtool test rules certkeeper-rules.test.yml"; sed 's/^/# /' <<<"$out"; rc=1
fi
exit "${rc:-0}"
