#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A seeded mixed workload for the crash test: D-Bus orders of every key type,
CSR orders, revocations (RequestRevocation + Revoke) and PFX exports, from
several threads, until STOP_FILE exists. The daemon is killed underneath it
at random moments: a call that fails is retried on a new connection.

Every acknowledgement is appended to a log in OUT_DIR at once (line-buffered):
  orders    order paths the daemon returned
  revoked   certificate paths whose Revoke() returned success
  pfx       certificate paths exported (PFX parsed with the returned password)
Problems that are not a crash (a PFX that does not parse, an unexpected
error name) go to OUT_DIR/problems; the test fails on any.

usage: crashload.py OUT_DIR STOP_FILE SEED THREADS CSR_DIR
"""
import os
import random
import sys
import threading
import time

import dbus
from cryptography.hazmat.primitives.serialization import pkcs12

out_dir, stop_file, seed, nthreads, csr_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
csrs = [open(os.path.join(csr_dir, f)).read() for f in sorted(os.listdir(csr_dir)) if f.endswith('.csr')]
lock = threading.Lock()
logs = {name: open(os.path.join(out_dir, name), 'a', buffering=1) for name in ('orders', 'revoked', 'pfx', 'problems')}
counts = {'ok': 0, 'errors': 0}
completed = []   # certificate paths of orders seen complete
revoking = set()  # certificate paths a thread is revoking now
# Errors a crash explains: the daemon is gone or went away mid-call.
CRASH_ERRORS = ('org.freedesktop.DBus.Error.NoReply', 'org.freedesktop.DBus.Error.ServiceUnknown',
                'org.freedesktop.DBus.Error.NameHasNoOwner', 'org.freedesktop.DBus.Error.Disconnected',
                'org.freedesktop.DBus.Error.UnknownObject', 'org.certkeeper1.Error.NotFound',
                'org.freedesktop.DBus.Error.Timeout')
MAX_OPEN = 10
KEYS = ['ec-256', 'ec-384', 'ed25519', 'rsa-2048', 'rsa-3072', 'rsa-4096']
KEY_WEIGHTS = [6, 4, 4, 3, 1, 0.3]


def log(name, line):
    with lock:
        logs[name].write(line + '\n')


def stopped():
    return os.path.exists(stop_file)


def worker(n):
    rng = random.Random(seed * 1000 + n)
    bus = None
    i = 0
    while not stopped():
        i += 1
        try:
            if bus is None:
                bus = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
            mgr = dbus.Interface(bus.get_object('org.certkeeper1', '/org/certkeeper1', introspect=False),
                                 'org.certkeeper1.Manager')
            op = rng.random()
            if op < 0.60:
                # Keep the backlog small: the daemon spends most of this test restarting,
                # and every open order has to finish before the invariants are checked.
                open_orders = sum(1 for o in mgr.ListOrders({}, signature='a{sv}', timeout=30)
                                  if str(o[3]) in ('pending', 'processing'))
                if open_orders >= MAX_OPEN:
                    op = 0.65
            if op < 0.45:
                alg = rng.choices(KEYS, KEY_WEIGHTS)[0]
                path = mgr.RequestCertificate('t%d-%d.crash.example' % (n, i),
                                              dbus.Array(['san%d.crash.example' % i], signature='s'),
                                              {'key_algorithm': alg, 'validity_days': dbus.UInt32(30)},
                                              signature='sasa{sv}', timeout=30)
                log('orders', str(path))
            elif op < 0.60:
                path = mgr.SubmitCSR(rng.choice(csrs), {'validity_days': dbus.UInt32(30)}, signature='sa{sv}',
                                     timeout=30)
                log('orders', str(path))
            elif op < 0.70:
                # Find complete orders to act on.
                for o in mgr.ListOrders({}, signature='a{sv}', timeout=30):
                    if str(o[3]) == 'complete':
                        order = bus.get_object('org.certkeeper1', o[0], introspect=False)
                        c = order.Get('org.certkeeper1.Order', 'Certificate',
                                      dbus_interface='org.freedesktop.DBus.Properties', timeout=30)
                        if str(c) != '/':
                            with lock:
                                if str(c) not in completed:
                                    completed.append(str(c))
            elif op < 0.85:
                # One thread at a time per certificate: a second RequestRevocation by the same
                # user replaces the first code, and the first Revoke() then rightly mismatches.
                with lock:
                    free = [c for c in completed if c not in revoking]
                    target = rng.choice(free) if free else None
                    if target:
                        revoking.add(target)
                if target:
                    try:
                        cert = dbus.Interface(bus.get_object('org.certkeeper1', target, introspect=False),
                                              'org.certkeeper1.Certificate')
                        try:
                            code = cert.RequestRevocation(timeout=30)
                            cert.Revoke(code, 'keyCompromise', timeout=30)
                            log('revoked', target)
                        except dbus.exceptions.DBusException as e:
                            # Revoked already (by another thread, or before a crash): fine.
                            if e.get_dbus_name() != 'org.certkeeper1.Error.AlreadyRevoked':
                                raise
                    finally:
                        with lock:
                            revoking.discard(target)
            else:
                with lock:
                    target = rng.choice(completed) if completed else None
                if target:
                    cert = dbus.Interface(bus.get_object('org.certkeeper1', target, introspect=False),
                                          'org.certkeeper1.Certificate')
                    try:
                        pfx, password = cert.ExportPFX({}, signature='a{sv}', timeout=30)
                    except dbus.exceptions.DBusException as e:
                        # CSR orders have no key here; a revoked certificate may be refused.
                        if e.get_dbus_name() in ('org.certkeeper1.Error.NoPrivateKey',
                                                 'org.certkeeper1.Error.AlreadyRevoked'):
                            continue
                        raise
                    try:
                        pkcs12.load_key_and_certificates(bytes(pfx), str(password).encode())
                        log('pfx', target)
                    except Exception as e:  # noqa: BLE001
                        log('problems', 'PFX of %s does not parse: %r' % (target, e))
            with lock:
                counts['ok'] += 1
        except dbus.exceptions.DBusException as e:
            with lock:
                counts['errors'] += 1
            name = e.get_dbus_name()
            # LimitExceeded: the per-caller cap on open orders, a refusal, not a fault.
            if name not in CRASH_ERRORS and name != 'org.certkeeper1.Error.LimitExceeded':
                log('problems', '%s: %s' % (name, e.get_dbus_message()))
            try:
                if bus is not None:
                    bus.close()
            except Exception:  # noqa: BLE001
                pass
            bus = None
            time.sleep(0.05)  # back off while the daemon restarts


threads = [threading.Thread(target=worker, args=(n,)) for n in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print('calls answered: %d, failed (crash): %d' % (counts['ok'], counts['errors']))
