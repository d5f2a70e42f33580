#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Load: CLIENTS readers (spread over processes, each a thread on its own bus
connection) list certificates and describe one at random, while a producer
streams orders in (RequestCertificate, ec-256, at ORDER_RATE per second), for
SECONDS. Prints the latency percentiles of Describe and ListCertificates, the
call counts and errors, as text and as one JSON line ("RESULT {...}").

Exits 1 when any call failed or the p99 of Describe exceeds --max-p99-ms.
Talks to whatever certkeeperd owns org.certkeeper1 on the system bus
(DBUS_SYSTEM_BUS_ADDRESS); it needs some certificates to describe.

usage: load.py [--clients 50] [--seconds 60] [--order-rate 5] [--processes 5] [--max-p99-ms 50]
               [--think-ms 0]
"""
import argparse
import json
import multiprocessing
import random
import sys
import threading
import time

import dbus

NAME = 'org.certkeeper1'
MGR = ('/org/certkeeper1', 'org.certkeeper1.Manager')


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def reader(deadline, seed, out, think):
    rng = random.Random(seed)
    describe, listing, errors = [], [], []
    try:
        bus = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
    except dbus.exceptions.DBusException as e:
        out.append(([], [], ['connect: %s' % e.get_dbus_name()]))
        return
    certs = []
    while time.monotonic() < deadline:
        try:
            t0 = time.perf_counter()
            lst = bus.call_blocking(NAME, MGR[0], MGR[1], 'ListCertificates', 'a{sv}', ({},), timeout=30)
            listing.append(time.perf_counter() - t0)
            certs = [str(c[0]) for c in lst] or certs
            for _ in range(4):
                if not certs:
                    break
                path = rng.choice(certs)
                t0 = time.perf_counter()
                bus.call_blocking(NAME, path, 'org.certkeeper1.Certificate', 'Describe', '', (), timeout=30)
                describe.append(time.perf_counter() - t0)
            if think:
                time.sleep(rng.uniform(0.5, 1.5) * think)  # a client's pause between rounds
        except dbus.exceptions.DBusException as e:
            errors.append('%s: %s' % (e.get_dbus_name(), (e.get_dbus_message() or '')[:120]))
    out.append((describe, listing, errors))


def producer(deadline, rate, out):
    bus = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
    orders, errors = [], []
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)  # pacing the stream, not waiting for an event
            continue
        next_at += 1.0 / rate
        n += 1
        try:
            orders.append(str(bus.call_blocking(NAME, MGR[0], MGR[1], 'RequestCertificate', 'sasa{sv}',
                                                ('load%d.bench.example' % n, [], {'key_algorithm': 'ec-256'}),
                                                timeout=30)))
        except dbus.exceptions.DBusException as e:
            errors.append('%s: %s' % (e.get_dbus_name(), (e.get_dbus_message() or '')[:120]))
    out.append((orders, errors))


def process_main(args):
    threads_n, deadline_wall, seed, q, think = args
    deadline = time.monotonic() + (deadline_wall - time.time())
    out = []
    ts = [threading.Thread(target=reader, args=(deadline, seed * 100 + i, out, think)) for i in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    d, l_, e = [], [], []
    for a, b, c in out:
        d += a
        l_ += b
        e += c
    q.put((d, l_, e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--clients', type=int, default=50)
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--order-rate', type=float, default=5)
    ap.add_argument('--processes', type=int, default=5)
    ap.add_argument('--max-p99-ms', type=float, default=50)
    # Each reader does ListCertificates + 4 Describe per round, then pauses about this long
    # (0: back to back, which measures saturation rather than latency).
    ap.add_argument('--think-ms', type=float, default=0)
    a = ap.parse_args()

    deadline_wall = time.time() + a.seconds
    q = multiprocessing.Queue()
    per = [a.clients // a.processes + (1 if i < a.clients % a.processes else 0) for i in range(a.processes)]
    procs = [multiprocessing.Process(target=process_main, args=((n, deadline_wall, i, q, a.think_ms / 1000.0),))
             for i, n in enumerate(per) if n]
    for p in procs:
        p.start()
    prod_out = []
    producer(time.monotonic() + a.seconds, a.order_rate, prod_out)
    describe, listing, errors = [], [], []
    for _ in procs:
        d, l_, e = q.get()
        describe += d
        listing += l_
        errors += e
    for p in procs:
        p.join()
    orders, perrors = prod_out[0]
    errors += perrors

    ms = lambda x: round(x * 1000, 2)  # noqa: E731
    result = {
        'clients': a.clients, 'seconds': a.seconds, 'think_ms': a.think_ms,
        'describe_calls': len(describe), 'list_calls': len(listing), 'orders_submitted': len(orders),
        'errors': len(errors),
        'describe_ms': {'p50': ms(percentile(describe, 50)), 'p95': ms(percentile(describe, 95)),
                        'p99': ms(percentile(describe, 99)), 'max': ms(max(describe or [0]))},
        'list_ms': {'p50': ms(percentile(listing, 50)), 'p95': ms(percentile(listing, 95)),
                    'p99': ms(percentile(listing, 99)), 'max': ms(max(listing or [0]))},
    }
    print('Describe: %d calls, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms' % (
        len(describe), result['describe_ms']['p50'], result['describe_ms']['p95'], result['describe_ms']['p99'],
        result['describe_ms']['max']))
    print('ListCertificates: %d calls, p50 %.2f ms, p99 %.2f ms' % (
        len(listing), result['list_ms']['p50'], result['list_ms']['p99']))
    print('orders submitted: %d, errors: %d' % (len(orders), len(errors)))
    for e in errors[:10]:
        print('error: ' + e)
    print('RESULT ' + json.dumps(result), flush=True)
    if errors or not describe or result['describe_ms']['p99'] > a.max_p99_ms:
        sys.exit(1)


if __name__ == '__main__':
    main()
