#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start a daemon with NOTIFY_SOCKET and time it to READY=1.

usage: notify-start.py LOG CMD ARGS...
Starts CMD (stdout and stderr appended to LOG, in its own session, left
running), waits up to 120 s for READY=1 on a private notification socket and
prints one JSON object: pid, ready_ms (exec to READY=1). Exits 1 if CMD exits
or the deadline passes first.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

log, cmd = sys.argv[1], sys.argv[2:]
tmp = tempfile.mkdtemp(prefix='bench-notify.')
path = os.path.join(tmp, 'notify')
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
sock.bind(path)
env = dict(os.environ, NOTIFY_SOCKET=path)
with open(log, 'ab') as out:
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                            start_new_session=True)
deadline = t0 + 120
ready = None
while ready is None and time.monotonic() < deadline:
    sock.settimeout(0.05)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        if proc.poll() is not None:
            break
        continue
    if b'READY=1' in data.split(b'\n'):
        ready = time.monotonic()
sock.close()
os.unlink(path)
os.rmdir(tmp)
if ready is None:
    sys.stderr.write('notify-start: %s did not send READY=1 (exit %s)\n' % (cmd[0], proc.poll()))
    sys.exit(1)
print(json.dumps({'pid': proc.pid, 'ready_ms': round((ready - t0) * 1e3, 3)}))
