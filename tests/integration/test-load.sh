#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Load (long, CK_LONG=1): bench/load.py — 50 clients listing and describing
# while orders stream in for CK_LOAD_SECONDS (60): no errors, p99 of Describe
# under 50 ms; then every streamed order completes.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"
[ "${CK_LONG:-0}" = 1 ] || ck_skip_all "a long test: set CK_LONG=1"

ck_write_config
ck_start_daemon || ck_bail "certkeeperd did not start"
DB=$CK_STATE_DIR/certkeeper.db
ck_check "100 certificates to describe" /usr/bin/python3 "$CK_HELPERS/burst.py" "$CK_RUN/seed" 4 25
all_done() { [ "$(sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status IN ('pending','processing')")" = 0 ]; }
ck_wait_for "the seed orders finish" 120 all_done

ck_check "one client alone for 10s (the service time)" \
        /usr/bin/python3 "$CK_SOURCE_ROOT/bench/load.py" --clients 1 --processes 1 --seconds 10 --order-rate 1 --max-p99-ms 1000
ck_diag "$CK_OUT"
# 50 clients, each a round (ListCertificates + 4 Describe) every ~250 ms:
# about 1,000 calls/s offered, on the same 2 cores as the daemon.
ck_check "50 clients for ${CK_LOAD_SECONDS:-60}s: no errors, Describe p99 under 50 ms" \
        /usr/bin/python3 "$CK_SOURCE_ROOT/bench/load.py" --clients 50 --seconds "${CK_LOAD_SECONDS:-60}" \
        --order-rate "${CK_LOAD_ORDER_RATE:-5}" --think-ms 250 --max-p99-ms "${CK_LOAD_MAX_P99_MS:-50}"
ck_diag "$CK_OUT"
# The same 50 back to back: the saturation throughput; reported, not judged on latency.
ck_check "50 clients back to back for 20s: no errors" \
        /usr/bin/python3 "$CK_SOURCE_ROOT/bench/load.py" --clients 50 --seconds 20 --order-rate 5 --max-p99-ms 100000
ck_diag "$CK_OUT"
ck_wait_for "every streamed order completes" 300 all_done
ck_check "no order failed" test "$(sqlite3 "$DB" "SELECT count(*) FROM orders WHERE status = 'failed'")" = 0
ck_check "the store is intact" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
ck_stop_daemon
ck_done
