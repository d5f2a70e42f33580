#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Drive the two-step revocation of one certificate over one or more bus
connections. A confirmation code is bound to the connection that asked for it,
so the steps run in this one process.

usage: revoke.py CERT_PATH STEP...
STEP is CONN:request or CONN:revoke:CODE:REASON, where CONN names a private
system bus connection (A, B, ...; opened on first use) and CODE is
  code     the last code this connection received
  code@X   the last code connection X received
  wrong    a six-digit code that differs from this connection's last code
  other literal text (e.g. 12345, "", 0123456).
One line per step: "ok [CODE]" or "error <D-Bus error name>: <message>".
The codes themselves are printed only for request steps (the test needs them
to look for them in the journal and the store).
"""
import sys

import dbus

IFACE = 'org.certkeeper1.Certificate'


def main():
    if len(sys.argv) < 3:
        sys.exit(2)
    path = sys.argv[1]
    conns = {}
    codes = {}

    def cert(name):
        if name not in conns:
            conns[name] = dbus.SystemBus(private=True)
        return conns[name].get_object('org.certkeeper1', path, introspect=False)

    for step in sys.argv[2:]:
        parts = step.split(':', 3)
        name, action = parts[0], parts[1]
        obj = cert(name)
        try:
            if action == 'request':
                code = str(obj.RequestRevocation(dbus_interface=IFACE, timeout=60))
                codes[name] = code
                print('ok ' + code, flush=True)
            elif action == 'revoke':
                spec, reason = parts[2], parts[3]
                if spec == 'code':
                    code = codes.get(name, '')
                elif spec.startswith('code@'):
                    code = codes.get(spec[5:], '')
                elif spec == 'wrong':
                    code = '%06d' % ((int(codes.get(name, '0')) + 1) % 1000000)
                else:
                    code = spec
                obj.Revoke(code, reason, dbus_interface=IFACE, signature='ss', timeout=60)
                print('ok', flush=True)
            else:
                sys.exit(2)
        except dbus.exceptions.DBusException as e:
            print('error %s: %s' % (e.get_dbus_name(), e.get_dbus_message()), flush=True)


if __name__ == '__main__':
    main()
