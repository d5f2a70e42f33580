#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile bus input: every method of org.certkeeper1 called with wrong types,
empty and huge strings, 10,000 SANs, deeply nested variants, unknown option
keys, options of the wrong type, object paths that do not exist, and a client
that disconnects mid-call. Each call must be answered with a named error (not
a timeout or a dropped connection), and after each one the daemon must still
answer another client (ListOrders on a separate connection).

Prints one line per attack: "PASS <desc>" or "FAIL <desc>: <why>", and
"NOTE <text>" for what is worth knowing (e.g. the bus refused a message
before the daemon saw it).

usage: hostile.py CERT_PATH ORDER_PATH   (an existing certificate and order)
"""
import sys

import dbus

cert_path, order_path = sys.argv[1], sys.argv[2]
NAME = 'org.certkeeper1'
MGR = ('/org/certkeeper1', 'org.certkeeper1.Manager')
CERT = (cert_path, 'org.certkeeper1.Certificate')
ORDER = (order_path, 'org.certkeeper1.Order')
NO_CERT = ('/org/certkeeper1/certificate/999999999', 'org.certkeeper1.Certificate')
NO_ORDER = ('/org/certkeeper1/order/999999999', 'org.certkeeper1.Order')
# Errors that mean the call was not answered.
UNANSWERED = ('org.freedesktop.DBus.Error.NoReply', 'org.freedesktop.DBus.Error.Timeout',
              'org.freedesktop.DBus.Error.ServiceUnknown', 'org.freedesktop.DBus.Error.NameHasNoOwner',
              'org.freedesktop.DBus.Error.Disconnected')
failures = 0
bus = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
watcher = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)


def out(line):
    print(line, flush=True)


def alive():
    try:
        watcher.call_blocking(NAME, MGR[0], MGR[1], 'ListOrders', 'a{sv}', ({},), timeout=30)
        return True
    except dbus.exceptions.DBusException as e:
        out('NOTE liveness check failed: %s' % e.get_dbus_name())
        return False


def attack(desc, where, method, sig, args, expect=None, conn=None):
    """Call and require a named error (expect: a prefix, a tuple of names, or None for any named error)."""
    global failures
    c = conn or bus
    try:
        c.call_blocking(NAME, where[0], where[1], method, sig, args, timeout=60)
        result = 'a success'
    except dbus.exceptions.DBusException as e:
        name = e.get_dbus_name() or ''
        msg = (e.get_dbus_message() or '')[:160]
        if name in UNANSWERED:
            result = 'unanswered (%s)' % name
        elif name.startswith('org.freedesktop.DBus.Error.') and 'libdbus' in msg.lower():
            result = None
        elif expect is None or name == expect or (isinstance(expect, tuple) and name in expect):
            result = None
        else:
            result = 'got %s: %s' % (name, msg)
        if result is None:
            desc = '%s -> %s' % (desc, name)
    except (TypeError, ValueError) as e:
        # The client library refused to marshal it: nothing reached the daemon.
        out('NOTE %s: the client library refuses to send it (%s)' % (desc, e))
        result = None
    if result is None and alive():
        out('PASS %s' % desc)
    else:
        failures += 1
        out('FAIL %s: %s%s' % (desc, result or 'answered', '' if alive() else '; the daemon is gone'))


INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs'
INVALID = 'org.certkeeper1.Error.InvalidArgument'
NOT_FOUND = ('org.freedesktop.DBus.Error.UnknownObject', 'org.freedesktop.DBus.Error.UnknownMethod',
             'org.certkeeper1.Error.NotFound')
huge = 'a' * (10 * 1024 * 1024)

# Every method with the wrong argument types (and with none).
methods = [
    (MGR, 'RequestCertificate', 'sasa{sv}'), (MGR, 'SubmitCSR', 'sa{sv}'), (MGR, 'ListCertificates', 'a{sv}'),
    (MGR, 'ListOrders', 'a{sv}'), (MGR, 'ListAlerts', 'a{sv}'), (MGR, 'AcknowledgeAlert', 't'),
    (MGR, 'GetCertificateByFingerprint', 's'), (MGR, 'GetCACertificate', ''), (MGR, 'GetCRL', ''),
    (MGR, 'ListAuditEvents', 'a{sv}'), (MGR, 'GetPolicy', ''), (MGR, 'Rescan', ''),
    (CERT, 'Describe', ''), (CERT, 'DownloadPEM', 'a{sv}'), (CERT, 'ExportPFX', 'a{sv}'),
    (CERT, 'RequestRevocation', ''), (CERT, 'Revoke', 'ss'), (ORDER, 'Resubmit', ''),
]
for where, method, sig in methods:
    attack('%s with (i, d) instead of (%s)' % (method, sig), where, method, 'id', (7, 1.5), INVALID_ARGS)
    if sig:
        attack('%s with no arguments' % method, where, method, '', (), INVALID_ARGS)
        good = {'sasa{sv}': ('a.example', [], {}), 'sa{sv}': ('x', {}), 'a{sv}': ({},), 't': (1,), 's': ('x',),
                'ss': ('x', 'y')}[sig]
        attack('%s with an extra argument' % method, where, method, sig + 'u', good + (1,), INVALID_ARGS)
# Methods on objects that do not exist.
for where, method, sig, args in [(NO_CERT, 'Describe', '', ()), (NO_CERT, 'DownloadPEM', 'a{sv}', ({},)),
                                 (NO_CERT, 'ExportPFX', 'a{sv}', ({},)), (NO_CERT, 'RequestRevocation', '', ()),
                                 (NO_CERT, 'Revoke', 'ss', ('x', 'keyCompromise')), (NO_ORDER, 'Resubmit', '', ()),
                                 (('/org/certkeeper1/certificate/abc', CERT[1]), 'Describe', '', ()),
                                 (('/org/certkeeper1/order/-1', ORDER[1]), 'Resubmit', '', ()),
                                 (('/org/certkeeper1/certificate/99999999999999999999999', CERT[1]), 'Describe', '',
                                  ()),
                                 (('/nope', MGR[1]), 'ListOrders', 'a{sv}', ({},))]:
    attack('%s on %s' % (method, where[0]), where, method, sig, args, NOT_FOUND)
attack('an unknown method', MGR, 'Explode', '', (), ('org.freedesktop.DBus.Error.UnknownMethod',))

# Empty and huge strings.
attack('RequestCertificate with an empty CN', MGR, 'RequestCertificate', 'sasa{sv}', ('', [], {}), INVALID)
attack('RequestCertificate with a 10 MB CN', MGR, 'RequestCertificate', 'sasa{sv}', (huge, [], {}), INVALID)
attack('RequestCertificate with a 10 MB SAN', MGR, 'RequestCertificate', 'sasa{sv}',
       ('a.example', [huge], {}), INVALID)
attack('RequestCertificate with 10,000 SANs', MGR, 'RequestCertificate', 'sasa{sv}',
       ('a.example', ['s%d.example' % i for i in range(10000)], {}), INVALID)
attack('SubmitCSR with an empty CSR', MGR, 'SubmitCSR', 'sa{sv}', ('', {}), 'org.certkeeper1.Error.InvalidCSR')
attack('SubmitCSR with a 10 MB CSR', MGR, 'SubmitCSR', 'sa{sv}',
       ('-----BEGIN CERTIFICATE REQUEST-----\n' + huge + '\n-----END CERTIFICATE REQUEST-----\n', {}),
       ('org.certkeeper1.Error.InvalidCSR', INVALID))
attack('GetCertificateByFingerprint with a 10 MB string', MGR, 'GetCertificateByFingerprint', 's', (huge,),
       (INVALID, 'org.certkeeper1.Error.NotFound'))
attack('GetCertificateByFingerprint with an empty string', MGR, 'GetCertificateByFingerprint', 's', ('',),
       (INVALID, 'org.certkeeper1.Error.NotFound'))
attack('Revoke with empty code and reason', CERT, 'Revoke', 'ss', ('', ''), None)
attack('Revoke with a 10 MB code and reason', CERT, 'Revoke', 'ss', (huge, huge), None)
attack('AcknowledgeAlert of an alert that does not exist', MGR, 'AcknowledgeAlert', 't', (2 ** 64 - 1,),
       'org.certkeeper1.Error.NotFound')

# Options: unknown keys, wrong types, deep nesting, a huge key, many entries.
opt_methods = [(MGR, 'RequestCertificate', 'sasa{sv}', ('a.example', [])), (MGR, 'SubmitCSR', 'sa{sv}', ('x',)),
               (MGR, 'ListCertificates', 'a{sv}', ()), (MGR, 'ListOrders', 'a{sv}', ()),
               (MGR, 'ListAlerts', 'a{sv}', ()), (MGR, 'ListAuditEvents', 'a{sv}', ()),
               (CERT, 'DownloadPEM', 'a{sv}', ()), (CERT, 'ExportPFX', 'a{sv}', ())]
option_attacks = [
    ('an unknown option key', {'no_such_option': 'x'}),
    ('an empty option key', {'': 'x'}),
    ('a 1 MB option key', {'k' * (1024 * 1024): 'x'}),
    ('a nested a{sv} as an option', {'key_algorithm': dbus.Dictionary({'a': 'b'}, signature='sv')}),
    ('a variant nested 30 deep', {'validity_days': dbus.String('x', variant_level=30)}),
    ('an array of 100,000 strings', {'dns_names': dbus.Array(['x'] * 100000, signature='s')}),
    ('5,000 option entries', dict(('k%d' % i, dbus.UInt32(i)) for i in range(5000))),
]
wrong_type = {'RequestCertificate': {'key_algorithm': dbus.UInt32(5), 'validity_days': 'ten'},
              'SubmitCSR': {'validity_days': 'ten'}, 'DownloadPEM': {'chain': 'yes'},
              'ExportPFX': {'legacy': dbus.Int32(1)}, 'ListCertificates': {}, 'ListOrders': {}, 'ListAlerts': {},
              'ListAuditEvents': {}}
for where, method, sig, head in opt_methods:
    for desc, opts in option_attacks:
        attack('%s with %s' % (method, desc), where, method, sig, head + (opts,), None)
    for k, v in wrong_type[method].items():
        attack('%s with option %s of the wrong type' % (method, k), where, method, sig, head + ({k: v},), INVALID)
# A variant nested as deep as the client library lets us.
# libdbus (and dbus-daemon) drop a sender whose message nests too deep; the
# daemon never sees it. Each attempt gets a connection of its own.
for level in (60, 200):
    own = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
    try:
        own.call_blocking(NAME, MGR[0], MGR[1], 'RequestCertificate', 'sasa{sv}',
                          ('a.example', [], {'key_algorithm': dbus.String('ec-256', variant_level=level)}),
                          timeout=60)
        verdict = 'a success'
    except dbus.exceptions.DBusException as e:
        verdict = e.get_dbus_name()
    except (TypeError, ValueError) as e:
        verdict = 'refused by the client library (%s)' % e
    if verdict == 'org.freedesktop.DBus.Error.Disconnected':
        out('NOTE a variant nested %d deep: the bus disconnected the sender, the daemon never saw it' % level)
    if verdict != 'a success' and alive():
        out('PASS RequestCertificate with an option nested %d variants deep -> %s' % (level, verdict))
    else:
        failures += 1
        out('FAIL RequestCertificate with an option nested %d variants deep: %s' % (level, verdict))
    try:
        own.close()
    except Exception:  # noqa: BLE001
        pass
for level in ():
    attack('RequestCertificate with an option nested %d variants deep' % level, MGR, 'RequestCertificate',
           'sasa{sv}', ('a.example', [], {'key_algorithm': dbus.String('ec-256', variant_level=level)}), None)

# A client that disconnects in the middle of a call: RequestCertificate rsa-4096 and close at once.
before = len(bus.call_blocking(NAME, MGR[0], MGR[1], 'ListOrders', 'a{sv}', ({},), timeout=30))
for i in range(3):
    c = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
    c.call_async(NAME, MGR[0], MGR[1], 'RequestCertificate', 'sasa{sv}',
                 ('gone%d.example' % i, [], {'key_algorithm': 'rsa-4096'}), None, None)
    c.flush()
    c.close()
if alive():
    out('PASS three clients that disconnect mid-RequestCertificate leave the daemon serving')
else:
    failures += 1
    out('FAIL the daemon stopped serving after clients disconnected mid-call')
after = len(bus.call_blocking(NAME, MGR[0], MGR[1], 'ListOrders', 'a{sv}', ({},), timeout=30))
out('NOTE orders before the disconnecting clients: %d, after: %d' % (before, after))
# The same with Describe and ExportPFX mid-call.
for m, sig, args in (('Describe', '', ()), ('ExportPFX', 'a{sv}', ({},))):
    c = dbus.bus.BusConnection(dbus.bus.BUS_SYSTEM)
    c.call_async(NAME, CERT[0], CERT[1], m, sig, args, None, None)
    c.flush()
    c.close()
if alive():
    out('PASS clients that disconnect mid-Describe and mid-ExportPFX leave the daemon serving')
else:
    failures += 1
    out('FAIL the daemon stopped serving after a client disconnected mid-Describe/ExportPFX')
sys.exit(1 if failures else 0)
