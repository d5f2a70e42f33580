#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ExportPFX over the system bus: write the PKCS#12 bytes to OUT and the
password to OUT.pass (mode 0600). Prints "ok" or "error <D-Bus error name>: <message>".

usage: pfx.py CERT_PATH OUT [legacy]
"""
import os
import sys

import dbus


def main():
    if len(sys.argv) < 3:
        sys.exit(2)
    path, out = sys.argv[1], sys.argv[2]
    opts = dbus.Dictionary({}, signature='sv')
    if len(sys.argv) > 3 and sys.argv[3] == 'legacy':
        opts['legacy'] = dbus.Boolean(True)
    bus = dbus.SystemBus()
    obj = bus.get_object('org.certkeeper1', path, introspect=False)
    try:
        pfx, password = obj.ExportPFX(opts, dbus_interface='org.certkeeper1.Certificate', signature='a{sv}',
                                      byte_arrays=True, timeout=120)
    except dbus.exceptions.DBusException as e:
        print('error %s: %s' % (e.get_dbus_name(), e.get_dbus_message()))
        return
    with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), 'wb') as f:
        f.write(bytes(pfx))
    with open(os.open(out + '.pass', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), 'w') as f:
        f.write(str(password))
    print('ok')


if __name__ == '__main__':
    main()
