#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Order certificates from several concurrent clients, each on its own bus
connection. Every order path the daemon acknowledges is appended to OUT (one
line, flushed at once), so a test that kills the daemon midway knows exactly
which orders were accepted.

usage: burst.py OUT CLIENTS PER_CLIENT [KEY_ALGORITHM]
Exits 0 when every call was answered, 1 when some failed (e.g. the daemon was
killed), after all threads are done.
"""
import sys
import threading

import dbus

out_path, clients, per_client = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
alg = sys.argv[4] if len(sys.argv) > 4 else 'ec-256'
lock = threading.Lock()
out = open(out_path, 'a', buffering=1)
failures = []


def client(n):
    try:
        bus = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
        mgr = dbus.Interface(bus.get_object('org.certkeeper1', '/org/certkeeper1', introspect=False),
                             'org.certkeeper1.Manager')
        for i in range(per_client):
            path = mgr.RequestCertificate('c%d-%d.burst.example' % (n, i), dbus.Array([], signature='s'),
                                          {'key_algorithm': alg, 'validity_days': dbus.UInt32(10)},
                                          signature='sasa{sv}', timeout=60)
            with lock:
                out.write(str(path) + '\n')
    except dbus.exceptions.DBusException as e:
        with lock:
            failures.append('%d: %s' % (n, e.get_dbus_name()))
    except Exception as e:  # noqa: BLE001 - a test tool: any failure must fail the run
        with lock:
            failures.append('%d: %r' % (n, e))


threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
if failures:
    sys.stderr.write('\n'.join(failures) + '\n')
    sys.exit(1)
