#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Call a certkeeper method with Python-literal arguments and print the outcome
as one line: "ok <result as JSON>" or "error <D-Bus error name>: <message>".
Exits 0 in both cases (the caller asserts on the line); 2 on bad usage.

usage: call.py PATH INTERFACE METHOD [PYTHON_LITERAL_ARGS] [--signature SIG]
e.g.   call.py /org/certkeeper1 org.certkeeper1.Manager RequestCertificate \
               '"a.example", ["b.example"], {"key_algorithm": "ec-256"}' --signature 'sasa{sv}'
"""
import json
import sys

import dbus


def plain(v):
    if isinstance(v, (dbus.Array, list, tuple, dbus.Struct)):
        return [plain(x) for x in v]
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Byte,)):
        return int(v)
    if isinstance(v, (int,)):
        return int(v)
    if isinstance(v, (str,)):
        return str(v)
    return v


def main():
    args = sys.argv[1:]
    sig = None
    if '--signature' in args:
        i = args.index('--signature')
        sig = args[i + 1]
        del args[i:i + 2]
    if len(args) < 3:
        sys.exit(2)
    path, iface, method = args[:3]
    # Test input from our own scripts: eval so that dbus.UInt32(…) and friends can pin types.
    params = eval('(' + args[3] + ',)', {'dbus': dbus}) if len(args) > 3 and args[3].strip() else ()
    bus = dbus.SystemBus()
    obj = bus.get_object('org.certkeeper1', path, introspect=False)
    try:
        ret = obj.get_dbus_method(method, iface)(*params, signature=sig, timeout=120)
        print('ok ' + json.dumps(plain(ret)))
    except dbus.exceptions.DBusException as e:
        print('error %s: %s' % (e.get_dbus_name(), e.get_dbus_message()))


if __name__ == '__main__':
    main()
