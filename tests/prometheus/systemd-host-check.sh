#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# By hand, on a throw-away systemd host (booting takes ~10 s, so it is not in the test run):
#     ../shared/recipes/systemd-host.sh "$PWD/tests/prometheus/systemd-host-check.sh"
# Installs certkeeper, enables metrics with contrib/prometheus/certkeeper-metrics.service.conf,
# starts the sandboxed unit and Debian's prometheus-node-exporter.service, and checks that the
# file is written, readable by user prometheus, served without node_textfile_scrape_error, and
# removed on stop. Prints OK lines; exits non-zero on the first failure.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAILED: $*"; journalctl -u certkeeper --no-pager | tail -20; exit 1; }
D=/var/lib/prometheus/node-exporter
cd "$src" || exit 1
meson setup /tmp/ck-host-build --prefix=/usr >/dev/null && ninja -C /tmp/ck-host-build >/dev/null &&
        meson install -C /tmp/ck-host-build >/dev/null 2>&1 || fail "meson install"
systemd-sysusers >/dev/null && systemd-tmpfiles --create >/dev/null 2>&1
systemctl reload dbus
install -D -m 0644 contrib/prometheus/certkeeper-metrics.service.conf /etc/systemd/system/certkeeper.service.d/metrics.conf
mkdir -p /etc/certkeeper/certkeeper.conf.d
printf '[Metrics]\nTextfileDirectory=%s\n' "$D" >/etc/certkeeper/certkeeper.conf.d/metrics.conf
systemctl daemon-reload && systemctl start certkeeper || fail "systemctl start certkeeper"
for _ in $(seq 200); do [ -e "$D/certkeeper.prom" ] && break; sleep 0.05; done
[ -e "$D/certkeeper.prom" ] || fail "no $D/certkeeper.prom"
echo "OK the sandboxed unit writes $D/certkeeper.prom"
runuser -u prometheus -- grep -q '^certkeeper_up 1' "$D/certkeeper.prom" || fail "user prometheus cannot read it"
echo "OK user prometheus reads it"
systemctl start prometheus-node-exporter || fail "node_exporter"
for _ in $(seq 200); do curl -sf 127.0.0.1:9100/metrics >/tmp/scrape && break; sleep 0.05; done
grep -q '^certkeeper_up 1' /tmp/scrape || fail "node_exporter does not serve certkeeper_up"
grep -q '^node_textfile_scrape_error 0' /tmp/scrape || fail "node_textfile_scrape_error"
echo "OK node_exporter serves it, node_textfile_scrape_error 0"
systemctl stop certkeeper
[ ! -e "$D/certkeeper.prom" ] || fail "the file is still there after stop"
echo "OK stopping the daemon removes it"
