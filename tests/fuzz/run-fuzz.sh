#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-fuzz.sh TARGET SEED_CORPUS ARTIFACT_DIR — first replay every seed (each
# input that ever crashed is one), then fuzz for CK_FUZZ_SECONDS (default 30)
# with new inputs kept in a scratch corpus. Exits non-zero on any crash, leak
# or timeout; the input is left in ARTIFACT_DIR. By hand, for longer:
#   CK_FUZZ_SECONDS=3600 meson test -C build-fuzz --suite fuzz fuzz-csr
set -u
target=$1 seeds=$2 artifacts=$3
name=$(basename "$target")
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TMPDIR=$work

echo "$name: replaying $(find "$seeds" -type f | wc -l) seeds"
if ! "$target" -runs=0 -rss_limit_mb=2048 -timeout=20 "$seeds"; then
        echo "$name: a seed input fails"
        exit 1
fi
mkdir "$work/corpus"
echo "$name: fuzzing for ${CK_FUZZ_SECONDS:-30}s"
exec "$target" -max_total_time="${CK_FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -timeout=20 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work/corpus" "$seeds"
