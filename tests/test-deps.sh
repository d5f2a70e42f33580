#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-deps.sh SOURCE_ROOT — every external command the test scripts (and
# tests/run, the harness, the quickstart, .ci/run, bench/run) call, and every
# Python module the test helpers import, comes from a package tools/install-deps
# installs or from one a minimal Debian has (Essential or Priority required,
# as debootstrap --variant=minbase installs). Found by a static scan of command
# positions; a command that is not installed here at all fails too. TAP.
set -u
src=$1
# shellcheck source=../tools/install-deps
source "$src/tools/install-deps"
exec /usr/bin/python3 - "$src" "${CK_DEPS[@]}" <<'PY'
import glob, os, re, shlex, shutil, subprocess, sys

src, deps = sys.argv[1], set(sys.argv[2:])
base = set()
for line in subprocess.run(['dpkg-query', '-W', '-f', '${Package} ${Essential} ${Priority}\n'],
                           capture_output=True, text=True).stdout.splitlines():
    p = line.split()
    if len(p) >= 3 and (p[1] == 'yes' or p[2] == 'required'):
        base.add(p[0])
# What the packages of CK_DEPS pull in (Depends, Pre-Depends) is installed with them.
depends = {}
for line in subprocess.run(['dpkg-query', '-W', '-f', '${Package}\t${Depends}, ${Pre-Depends}\n'],
                           capture_output=True, text=True).stdout.splitlines():
    name, _, rest = line.partition('\t')
    depends[name] = {re.split(r'[\s:(]', a.strip())[0] for d in rest.split(',') for a in d.split('|')[:1] if a.strip()}
closure, todo = set(), list(deps)
while todo:
    p = todo.pop()
    if p not in closure:
        closure.add(p)
        todo.extend(depends.get(p, ()))
deps = closure
# Words the scan takes for commands that the scripts only use as words (text,
# XML element names, Python code in a here-document): not commands they run.
IGNORE = {'as', 'file', 'look', 'node', 'open', 'route', 'size', 'w', 'write'}
builtins = set(subprocess.run(['bash', '-c', 'compgen -b; compgen -k'], capture_output=True,
                              text=True).stdout.split())
files = sorted(set(glob.glob(src + '/tests/**/*.sh', recursive=True)) |
               {src + f for f in ('/tests/run', '/tools/quickstart', '/tools/install-deps', '/.ci/run', '/bench/run')
                if os.path.exists(src + f)})
WRAPPERS = {'env', 'nice', 'timeout', 'setpriv', 'runuser', 'ck_as', 'exec', 'command', 'time', 'xargs',
            'unshare', 'sudo', 'flock', 'ck_check', 'ck_check_fails', 'ck_wait_for', 'ck_poll', 'then', 'do',
            'else', 'elif', '!', 'if', 'while', 'until'}
SPLIT = re.compile(r'\|\||&&|\||;|\$\(|`|\(|\)|\{|\}')
funcs, cmds = set(), {}

def words(seg):
    try:
        return shlex.split(seg, comments=True)
    except ValueError:
        return seg.split()

def scan(text, where):
    for line in text.splitlines():
        if re.match(r'\s*#', line):
            continue
        m = re.match(r'\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)', line)
        if m:
            funcs.add(m.group(1))
        line = re.sub(r'^\s*[^\s()"\']+(\|[^\s()"\']+)*\)\s', ' ', line)   # a case pattern
        for seg in SPLIT.split(line):
            w = words(seg)
            i = 0
            while i < len(w):
                t = w[i]
                if re.match(r'^[A-Za-z_]\w*=', t) or t.startswith('-') or t in ('then', 'do', 'else', '!', 'if', 'while', 'until', 'elif'):
                    i += 1
                    continue
                break
            if i >= len(w):
                continue
            t = w[i]
            name = os.path.basename(t) if t.startswith('/usr/') or t.startswith('/bin/') or t.startswith('/sbin/') else t
            if re.match(r'^[a-z][a-z0-9._+-]*$', name):
                cmds.setdefault(name, where)
            # The command a wrapper runs: the first word that is no option or value.
            if name in WRAPPERS:
                rest = [x for x in w[i + 1:] if not x.startswith('-') and not re.match(r'^[A-Za-z_]\w*=', x)]
                for x in rest[:3]:
                    b = os.path.basename(x)
                    if re.match(r'^[a-z][a-z0-9._+-]*$', b) and shutil.which(b, path='/usr/sbin:/usr/bin:/sbin:/bin'):
                        cmds.setdefault(b, where)
            # bash -c "…": its script too
            for j, x in enumerate(w):
                if x == '-c' and j > 0 and os.path.basename(w[j - 1]) in ('bash', 'sh') and j + 1 < len(w):
                    scan(w[j + 1], where)

for f in files:
    scan(open(f, errors='replace').read(), os.path.relpath(f, src))

n = 0
failed = 0
def report(ok, desc, diag=None):
    global n, failed
    n += 1
    print(('ok' if ok else 'not ok') + ' %d - %s' % (n, desc))
    if not ok:
        failed += 1
        if diag:
            print('# ' + diag)

owner_cache = {}
def owner(path):
    real = os.path.realpath(path)
    for p in (path, real, path.replace('/usr/bin/', '/bin/'), path.replace('/bin/', '/usr/bin/', 1),
              path.replace('/usr/sbin/', '/sbin/'), path.replace('/sbin/', '/usr/sbin/', 1)):
        r = subprocess.run(['dpkg', '-S', p], capture_output=True, text=True)
        if r.returncode == 0:
            # "diversion by dash from: /bin/sh" lines name no owner: skip them.
            for line in r.stdout.splitlines():
                if not line.startswith('diversion by '):
                    return {x.strip() for x in line.split(':')[0].split(',')}
    # alternatives: /usr/bin/x -> /etc/alternatives/x -> the real program
    return set()

report(len(cmds) > 50, 'the scan found the commands of %d files (%d candidates)' % (len(files), len(cmds)))
for c in sorted(cmds):
    if c in IGNORE or c in builtins or c in funcs or c in WRAPPERS - {'env', 'nice', 'timeout', 'setpriv', 'runuser', 'xargs', 'unshare', 'flock', 'sudo'}:
        continue
    path = shutil.which(c, path='/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/polkit-1')
    if not path:
        continue  # a variable-held word, a case label, a program built here
    pk = owner(path)
    if not pk:
        report(False, '%s (%s): from no package' % (c, cmds[c]), path)
        continue
    good = pk & (deps | base)
    report(bool(good), '%s (%s) comes from %s' % (c, cmds[c], ', '.join(sorted(pk))),
           None if good else 'add one of %s to CK_DEPS in tools/install-deps' % ', '.join(sorted(pk)))

# Python modules of the helpers and benchmarks.
mods = {}
for f in sorted(glob.glob(src + '/tests/**/*.py', recursive=True) + glob.glob(src + '/bench/*.py')):
    for m in re.finditer(r'^\s*(?:import|from)\s+([A-Za-z_]\w*)', open(f).read(), re.M):
        mods.setdefault(m.group(1), os.path.relpath(f, src))
import importlib.util
stdlib = set(getattr(sys, 'stdlib_module_names', ()))
for m in sorted(mods):
    if m in stdlib or m == '__future__':
        continue
    spec = importlib.util.find_spec(m)
    if not spec or not spec.origin:
        report(False, 'Python module %s (%s) is not installed' % (m, mods[m]))
        continue
    pk = owner(spec.origin)
    report(bool(pk & (deps | base)), 'Python module %s (%s) comes from %s' % (m, mods[m], ', '.join(sorted(pk)) or 'no package'),
           'add it to CK_DEPS in tools/install-deps')
print('1..%d' % n)
sys.exit(1 if failed else 0)
PY
