#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Drive the two-step revocation of one certificate over one or more bus
connections. A confirmation code is bound to the user that asked for it: the
connection named B runs as the user in $CK_REVOKE_USER_B (ck-admin, allowed to
revoke by the example polkit rule), every other connection as root.

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
import os
import subprocess
import sys

import dbus

IFACE = 'org.certkeeper1.Certificate'


def main():
    if len(sys.argv) < 3:
        sys.exit(2)
    path = sys.argv[1]
    conns = {}
    codes = {}

    def as_other_user(code, reason):
        """Revoke from a process of another user (its own bus connection)."""
        user = os.environ.get('CK_REVOKE_USER_B', 'ck-admin')
        out = subprocess.run(['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups', '--',
                              '/usr/bin/python3', os.path.join(os.path.dirname(__file__), 'call.py'), path, IFACE,
                              'Revoke', repr(code) + ', ' + repr(reason), '--signature', 'ss'],
                             capture_output=True, text=True, check=False).stdout.strip()
        return 'ok' if out.startswith('ok') else out

    def cert(name):
        if name not in conns:
            conns[name] = dbus.SystemBus(private=True)
        return conns[name].get_object('org.certkeeper1', path, introspect=False)

    for step in sys.argv[2:]:
        parts = step.split(':', 3)
        name, action = parts[0], parts[1]
        if name == 'B':
            if action != 'revoke':
                sys.exit(2)
            spec, reason = parts[2], parts[3]
            code = codes.get(spec[5:], '') if spec.startswith('code@') else spec
            print(as_other_user(code, reason), flush=True)
            continue
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
