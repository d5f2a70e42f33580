#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a command on a new pseudo-terminal (its controlling terminal, stdin,
stdout and stderr), copy everything it writes to our stdout unchanged (colour
escapes included) and exit with its exit code.

usage: pty-run.py [--answer A[,A...]] [--timeout SEC] -- CMD ARGS...

--answer: when the command shows a revocation prompt ("Confirmation code:
123456" ... "Type the code"), type the code shown (right), a different
six-digit code (wrong), something that is no code (junk), or just Enter
(cancel). A comma-separated list answers that many prompts in turn (a prompt
is each "Type the code" after the code). Without it nothing is typed.
Exits 124 if the command does not finish within the timeout (default 60 s).
"""
import os
import pty
import re
import select
import signal
import sys
import time

ANSI = re.compile(rb'\x1b\[[0-9;]*[A-Za-z]')
CODE = re.compile(rb'Confirmation code:\s+(\d{3}) ?(\d{3})')


def main():
    args = sys.argv[1:]
    answers = []
    timeout = 60.0
    while args and args[0] != '--':
        if args[0] == '--answer':
            answers = args[1].split(',')
            args = args[2:]
        elif args[0] == '--timeout':
            timeout = float(args[1])
            args = args[2:]
        else:
            sys.exit('pty-run.py: unknown option ' + args[0])
    if not args or len(args) < 2:
        sys.exit('usage: pty-run.py [--answer A[,A...]] -- CMD ARGS...')
    cmd = args[1:]

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)

    out = b''
    answered = 0
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(out)
            sys.stderr.write('pty-run.py: timed out\n')
            sys.exit(124)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            data = b''
        if not data:
            break
        out += data
        if answered < len(answers):
            plain = ANSI.sub(b'', out)
            m = CODE.search(plain)
            if m and plain[m.end():].count(b'Type the code') > answered:
                code = (m.group(1) + m.group(2)).decode()
                answer = answers[answered]
                if answer == 'right':
                    typed = code
                elif answer == 'wrong':
                    typed = '%06d' % ((int(code) + 1 + answered) % 1000000)
                elif answer == 'junk':
                    typed = '12ab'
                else:
                    typed = ''
                os.write(fd, typed.encode() + b'\n')
                answered += 1

    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    if os.WIFEXITED(status):
        sys.exit(os.WEXITSTATUS(status))
    sys.exit(128 + os.WTERMSIG(status))


if __name__ == '__main__':
    main()
