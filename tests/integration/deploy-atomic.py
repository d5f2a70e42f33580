#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Atomic deployment files under load.

usage: deploy-atomic.py DEPLOYMENT-PATH DIRECTORY RENEWALS

A reader process loops over DIRECTORY/privkey.pem and DIRECTORY/cert.pem (each must be a
complete PEM that parses) and over DIRECTORY/current opened once per iteration (O_DIRECTORY,
then openat privkey.pem and cert.pem: the key must match the certificate), while this process
calls Renew(rotate_key=true) RENEWALS times, waiting for each Revision. Prints one line
"renewals=N iterations=N partial=N mismatched=N missing=N vanished=N firsterror=..." and
exits 0 (the caller asserts on the numbers); 1 when a renewal does not land in time.
"""
import multiprocessing
import os
import sys
import time

import dbus
from cryptography import x509
from cryptography.hazmat.primitives import serialization

IFACE = "org.certkeeper1.Deployment"
PUB = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_at(dirfd, name):
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def reader(directory, stop, out):
    n = {"iterations": 0, "partial": 0, "mismatched": 0, "missing": 0, "vanished": 0}
    first = ""
    top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    while not stop.is_set():
        n["iterations"] += 1
        # The names in the directory (symlinks into current/): each complete and parsing.
        for name, load in (("privkey.pem", lambda b: serialization.load_pem_private_key(b, None)),
                           ("cert.pem", x509.load_pem_x509_certificate)):
            try:
                data = read_at(top, name)
            except FileNotFoundError:
                n["missing"] += 1
                first = first or f"{name} missing"
                continue
            try:
                load(data)
            except Exception as e:  # noqa: BLE001 - any parse failure is a partial file
                n["partial"] += 1
                first = first or f"{name} does not parse ({len(data)} bytes): {e}"
        # current/ opened once: the pair inside it belongs together.
        try:
            cur = os.open("current", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=top)
        except FileNotFoundError:
            n["missing"] += 1
            first = first or "current missing"
            continue
        try:
            try:
                kdata = read_at(cur, "privkey.pem")
                cdata = read_at(cur, "cert.pem")
            except FileNotFoundError:
                # A revision pruned under a reader that lingered in it.
                n["vanished"] += 1
                continue
            try:
                key = serialization.load_pem_private_key(kdata, None)
                cert = x509.load_pem_x509_certificate(cdata)
            except Exception as e:  # noqa: BLE001
                n["partial"] += 1
                first = first or f"current/: does not parse: {e}"
                continue
            if key.public_key().public_bytes(*PUB) != cert.public_key().public_bytes(*PUB):
                n["mismatched"] += 1
                first = first or f"current/: key and certificate do not match ({cert.serial_number:x})"
        finally:
            os.close(cur)
    os.close(top)
    n["firsterror"] = first
    out.put(n)


def main():
    path, directory, renewals = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bus = dbus.SystemBus()
    obj = bus.get_object("org.certkeeper1", path)
    dep = dbus.Interface(obj, IFACE)
    props = dbus.Interface(obj, "org.freedesktop.DBus.Properties")

    stop = multiprocessing.Event()
    out = multiprocessing.Queue()
    proc = multiprocessing.Process(target=reader, args=(directory, stop, out))
    proc.start()
    done, rc = 0, 0
    t0 = time.monotonic()
    try:
        for _ in range(renewals):
            rev = int(props.Get(IFACE, "Revision"))
            dep.Renew(dbus.Dictionary({"rotate_key": dbus.Boolean(True)}, signature="sv"))
            deadline = time.monotonic() + 60
            while int(props.Get(IFACE, "Revision")) <= rev:
                if time.monotonic() > deadline:
                    print(f"renewal {done + 1}: Revision still {rev} after 60s", file=sys.stderr)
                    rc = 1
                    break
                time.sleep(0.02)
            if rc:
                break
            # The next Renew is refused while one is under way: wait for active.
            while str(props.Get(IFACE, "State")) != "active":
                if time.monotonic() > deadline:
                    print(f"renewal {done + 1}: not active again after 60s", file=sys.stderr)
                    rc = 1
                    break
                time.sleep(0.02)
            if rc:
                break
            done += 1
    finally:
        stop.set()
        n = out.get(timeout=60)
        proc.join()
    print(f"renewals={done} seconds={time.monotonic() - t0:.0f} iterations={n['iterations']} "
          f"partial={n['partial']} mismatched={n['mismatched']} missing={n['missing']} "
          f"vanished={n['vanished']} firsterror={n['firsterror']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
