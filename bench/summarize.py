#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Summarize one bench/run: tables (median, min, max over the rounds), ratios
paired round by round (ours/peer computed per round, then median/min/max of
those), and the targets of issue 9 judged on the medians.

usage: summarize.py RESULTS.jsonl SUMMARY.json [LATEST.md|''] COMMAND
"""
import json
import statistics
import sys
from collections import defaultdict

jsonl, summary_path, latest_path, command = sys.argv[1:5]
rows = [json.loads(line) for line in open(jsonl) if line.strip()]

# (bench, case) -> {round: row}
by = defaultdict(dict)
for r in rows:
    by[(r['bench'], r['case'])][r['round']] = r

# What each case is about, in table order: (bench, case, metric, unit, label)
METRICS = [
    ('issue', 'csr-1', 'per_second', '/s', 'SubmitCSR, 1 sequential client'),
    ('issue', 'csr-1', 'p50_ms', 'ms', '  order latency p50'),
    ('issue', 'csr-1', 'p99_ms', 'ms', '  order latency p99'),
    ('issue', 'csr-8', 'per_second', '/s', 'SubmitCSR, 8 clients'),
    ('issue', 'csr-8', 'p50_ms', 'ms', '  order latency p50'),
    ('issue', 'csr-8', 'p99_ms', 'ms', '  order latency p99'),
    ('issue', 'csrs-batch', 'per_second', '/s', 'SubmitCSRs (batch), certificates/s'),
    ('issue', 'csrs-batch', 'p50_ms', 'ms', '  call to its last order complete, p50'),
    ('issue', 'request-ec256-8', 'per_second', '/s', 'RequestCertificate ec-256, 8 clients'),
    ('issue', 'request-ec256-8', 'p99_ms', 'ms', '  order latency p99'),
    ('issue', 'request-rsa2048-8', 'per_second', '/s', 'RequestCertificate rsa-2048, 8 clients'),
    ('issue', 'ca-call-idle', 'p99_ms', 'ms', 'GetCACertificate p99, idle'),
    ('issue', 'ca-call-during-rsa', 'p99_ms', 'ms', 'GetCACertificate p99, during rsa-2048 orders'),
    ('peers', 'cfssl-sign-1', 'per_second', '/s', 'cfssl serve sign, 1 connection'),
    ('peers', 'cfssl-sign-4', 'per_second', '/s', 'cfssl serve sign, 4 connections'),
    ('peers', 'cfssl-sign-8', 'per_second', '/s', 'cfssl serve sign, 8 connections'),
    ('peers', 'cfssl-db-sign-1', 'per_second', '/s', 'cfssl serve -db-config (SQLite certdb) sign, 1 connection'),
    ('peers', 'cfssl-db-sign-8', 'per_second', '/s', 'cfssl serve -db-config (SQLite certdb) sign, 8 connections'),
    ('peers', 'buslimit-1', 'per_second', '/s', 'bus-bound limit (reply + an order\'s signals, no work), 1 client'),
    ('peers', 'buslimit-1', 'p50_ms', 'ms', '  latency p50'),
    ('peers', 'buslimit-8', 'per_second', '/s', 'bus-bound limit, 8 clients'),
    ('peers', 'buslimit-batch', 'per_second', '/s', 'bus-bound limit, SubmitCSRs (batch)'),
    ('peers', 'cfssl-newcert-4', 'per_second', '/s', 'cfssl serve newcert (P-256), 4 connections'),
    ('peers', 'certmonger', 'per_second', '/s', 'certmonger getcert -c local -w, sequential'),
    ('peers', 'openssl-ca', 'per_second', '/s', 'openssl ca, one process per CSR'),
    ('peers', 'limit-1', 'per_second', '/s', 'in-process limit (OpenSSL only), 1 thread'),
    ('peers', 'limit-2', 'per_second', '/s', 'in-process limit (OpenSSL only), 2 threads'),
    ('peers', 'ours-inprocess-1', 'ours_in_process_per_s', '/s', 'ours in-process (csr_parse + ca_sign_leaf + cert_info), 1 thread'),
    ('peers', 'ours-inprocess-1', 'csr_parse_us', 'us', '  csr_parse'),
    ('peers', 'ours-inprocess-1', 'ca_sign_leaf_us', 'us', '  ca_sign_leaf'),
    ('peers', 'ours-inprocess-1', 'cert_info_from_x509_us', 'us', '  cert_info_from_x509'),
    ('peers', 'ours-inprocess-2', 'per_second', '/s', 'ours in-process, 2 threads (one Local CA)'),
    ('peers', 'rsa2048-keygen-2', 'per_second', '/s', 'RSA-2048 key generation, 2 threads'),
    ('spool', 'files', 'per_second', '/s', 'spool: CSR files renamed in -> certificates'),
    ('spool', 'files', 'seconds', 's', '  all issued in'),
    ('spool', 'cfssl-sign-8', 'per_second', '/s', '  cfssl serve sign, 8 connections, right after each spool round'),
    ('inventory', 'startup', 'ready_ms', 'ms', 'start to READY=1'),
    ('inventory', 'startup', 'rss_kib', 'KiB', 'RSS after start'),
    ('inventory', 'rss-after-list', 'rss_kib', 'KiB', 'RSS after full lists'),
    ('inventory', 'list', 'p50_ms', 'ms', 'ListCertificates, full'),
    ('inventory', 'list-status', 'p50_ms', 'ms', 'ListCertificates status=active'),
    ('inventory', 'list-expiring', 'p50_ms', 'ms', 'ListCertificates expiring_within_days=30'),
    ('inventory', 'describe', 'p50_ms', 'ms', 'Describe random, p50'),
    ('inventory', 'describe', 'p99_ms', 'ms', 'Describe random, p99'),
    ('inventory', 'fingerprint', 'p50_ms', 'ms', 'GetCertificateByFingerprint, p50'),
    ('inventory', 'fingerprint', 'p99_ms', 'ms', 'GetCertificateByFingerprint, p99'),
    ('metrics', 'write', 'cpu_ms', 'ms', 'certkeeper.prom with the inventory, daemon CPU per write'),
    ('metrics', 'write', 'loop_cpu_ms', 'ms', '  on the loop (reading pages)'),
    ('metrics', 'write', 'worker_cpu_ms', 'ms', '  on the worker (format, write, fsync)'),
    ('metrics', 'write', 'bytes', 'B', '  file size'),
    ('metrics', 'ca-call-during-writes', 'p99_ms', 'ms', 'GetCACertificate p99 while the file is rewritten every second'),
    ('deploy', 'create', 'per_second', '/s', 'CreateDeployment until all active (Local PKI, ec-256)'),
    ('deploy', 'startup', 'ready_ms', 'ms', 'start-up with the deployments, nothing due (READY=1)'),
    ('deploy', 'startup', 'rss_kib', 'KiB', '  RSS after start'),
    ('deploy', 'startup-all-due', 'ready_ms', 'ms', 'start-up with every deployment due (READY=1)'),
    ('deploy', 'renew-all-due', 'per_second', '/s', 'all deployments due at once: renewed and deployed'),
    ('deploy', 'renew-all-due', 'seconds', 's', '  READY=1 to the last one active again'),
    ('deploy', 'calls-during-renewal', 'list_p50_ms', 'ms', '  meanwhile ListDeployments p50'),
    ('deploy', 'calls-during-renewal', 'list_p99_ms', 'ms', '  meanwhile ListDeployments p99'),
    ('deploy', 'calls-during-renewal', 'list_max_ms', 'ms', '  meanwhile ListDeployments max'),
    ('deploy', 'calls-during-renewal', 'describe_p50_ms', 'ms', '  meanwhile Certificate.Describe p50'),
    ('deploy', 'calls-during-renewal', 'describe_p99_ms', 'ms', '  meanwhile Certificate.Describe p99'),
    ('deploy', 'calls-during-renewal', 'describe_max_ms', 'ms', '  meanwhile Certificate.Describe max'),
    ('deploy', 'calls-idle', 'list_p50_ms', 'ms', 'ListDeployments, idle daemon, p50'),
    ('deploy', 'calls-idle', 'list_p99_ms', 'ms', 'ListDeployments, idle daemon, p99'),
    ('deploy', 'calls-idle', 'describe_p50_ms', 'ms', 'Certificate.Describe, idle daemon, p50'),
]
for case in sorted({c for (b, c) in by if b == 'crl'}):
    if case.startswith('inprocess-'):
        METRICS.append(('crl', case, 'crl_seconds', 's', 'CRL in-process (query + ca_make_crl), %s revoked'
                        % case.split('-')[1]))
    elif case.startswith('revoke-call-'):
        METRICS.append(('crl', case, 'p50_ms', 'ms', 'Revoke call (regenerates the CRL), %s revoked'
                        % case.split('-')[2]))

# (label, numerator (bench, case), denominator (bench, case), metric)
RATIOS = [
    ('ours 8 clients / cfssl sign 4 conn', ('issue', 'csr-8'), ('peers', 'cfssl-sign-4')),
    ('ours 8 clients / cfssl sign 8 conn', ('issue', 'csr-8'), ('peers', 'cfssl-sign-8')),
    ('ours 1 client / cfssl sign 1 conn', ('issue', 'csr-1'), ('peers', 'cfssl-sign-1')),
    ('ours 8 clients / cfssl -db-config sign 8 conn', ('issue', 'csr-8'), ('peers', 'cfssl-db-sign-8')),
    ('ours 1 client / cfssl -db-config sign 1 conn', ('issue', 'csr-1'), ('peers', 'cfssl-db-sign-1')),
    ('ours 8 clients / bus-bound limit 8 clients', ('issue', 'csr-8'), ('peers', 'buslimit-8')),
    ('ours 1 client / bus-bound limit 1 client', ('issue', 'csr-1'), ('peers', 'buslimit-1')),
    ('ours SubmitCSRs / bus-bound limit SubmitCSRs', ('issue', 'csrs-batch'), ('peers', 'buslimit-batch')),
    ('ours SubmitCSRs / cfssl sign 8 conn', ('issue', 'csrs-batch'), ('peers', 'cfssl-sign-8')),
    ('ours SubmitCSRs / ours in-process 2 threads', ('issue', 'csrs-batch'), ('peers', 'ours-inprocess-2')),
    ('spool 10,000 files / cfssl sign 8 conn', ('spool', 'files'), ('spool', 'cfssl-sign-8')),
    ('ours 1 client / certmonger', ('issue', 'csr-1'), ('peers', 'certmonger')),
    ('ours 1 client / openssl ca', ('issue', 'csr-1'), ('peers', 'openssl-ca')),
    ('ours 8 clients / limit 2 threads', ('issue', 'csr-8'), ('peers', 'limit-2')),
    ('ours 1 client / limit 1 thread', ('issue', 'csr-1'), ('peers', 'limit-1')),
    ('ours ec-256 request / cfssl newcert 4 conn', ('issue', 'request-ec256-8'), ('peers', 'cfssl-newcert-4')),
    ('ours rsa-2048 request / RSA keygen 2 threads', ('issue', 'request-rsa2048-8'), ('peers', 'rsa2048-keygen-2')),
]


def values(bench, case, metric):
    return [r[metric] for _, r in sorted(by.get((bench, case), {}).items()) if metric in r]


def med(bench, case, metric):
    v = values(bench, case, metric)
    return statistics.median(v) if v else None


def fmt(x):
    if x is None:
        return '-'
    if abs(x) >= 100:
        return '%.0f' % x
    if abs(x) >= 10:
        return '%.1f' % x
    return '%.3g' % x


out = []
summary = {'command': command, 'results': jsonl, 'tables': [], 'ratios': [], 'targets': [], 'skipped': []}
table = ['| benchmark | unit | median | min | max | rounds |', '|---|---|---|---|---|---|']
for bench, case, metric, unit, label in METRICS:
    v = values(bench, case, metric)
    if not v:
        continue
    table.append('| %s | %s | %s | %s | %s | %d |' % (label, unit, fmt(statistics.median(v)), fmt(min(v)),
                                                    fmt(max(v)), len(v)))
    summary['tables'].append({'bench': bench, 'case': case, 'metric': metric, 'unit': unit, 'label': label,
                              'median': statistics.median(v), 'min': min(v), 'max': max(v), 'n': len(v)})
out += ['## Results', ''] + table + ['']

ratio_lines = ['| ratio (paired per round) | median | min | max | rounds |', '|---|---|---|---|---|']
for label, num, den in RATIOS:
    a, b = by.get(num, {}), by.get(den, {})
    rs = [a[k]['per_second'] / b[k]['per_second'] for k in sorted(a) if k in b and b[k].get('per_second')]
    if not rs:
        continue
    ratio_lines.append('| %s | %s | %s | %s | %d |' % (label, fmt(statistics.median(rs)), fmt(min(rs)), fmt(max(rs)),
                                                       len(rs)))
    summary['ratios'].append({'label': label, 'median': statistics.median(rs), 'min': min(rs), 'max': max(rs)})
out += ['## Ratios', ''] + ratio_lines + ['']


def ratio_median(num, den):
    a, b = by.get(num, {}), by.get(den, {})
    rs = [a[k]['per_second'] / b[k]['per_second'] for k in sorted(a) if k in b and b[k].get('per_second')]
    return statistics.median(rs) if rs else None


targets = []


def target(what, value, ok, goal):
    targets.append((what, value, goal, None if value is None else ok(value)))


target('8 clients >= 1.3x cfssl (8 conn, same run)', ratio_median(('issue', 'csr-8'), ('peers', 'cfssl-sign-8')),
       lambda v: v >= 1.3, '>= 1.3x')
target('SubmitCSR 8 clients >= 0.8x the bus-bound limit', ratio_median(('issue', 'csr-8'), ('peers', 'buslimit-8')),
       lambda v: v >= 0.8, '>= 0.8x')
target('SubmitCSR 8 clients >= 2x cfssl -db-config (8 conn)',
       ratio_median(('issue', 'csr-8'), ('peers', 'cfssl-db-sign-8')), lambda v: v >= 2, '>= 2x')
target('SubmitCSRs >= 1.3x cfssl sign 8 conn (no database)',
       ratio_median(('issue', 'csrs-batch'), ('peers', 'cfssl-sign-8')), lambda v: v >= 1.3, '>= 1.3x')
target('SubmitCSRs >= 0.8x ours in-process, 2 threads',
       ratio_median(('issue', 'csrs-batch'), ('peers', 'ours-inprocess-2')), lambda v: v >= 0.8, '>= 0.8x')
target('spool 10,000 files >= 1.0x cfssl sign 8 conn (no database)',
       ratio_median(('spool', 'files'), ('spool', 'cfssl-sign-8')), lambda v: v >= 1.0, '>= 1.0x')
target('1 sequential client latency p50 <= 1.8 ms', med('issue', 'csr-1', 'p50_ms'), lambda v: v <= 1.8, '<= 1.8 ms')
target('8 clients >= 3,500/s', med('issue', 'csr-8', 'per_second'), lambda v: v >= 3500, '>= 3500/s')
target('1 sequential client >= 1,200/s', med('issue', 'csr-1', 'per_second'), lambda v: v >= 1200, '>= 1200/s')
target('1 sequential client >= 1,000x certmonger', ratio_median(('issue', 'csr-1'), ('peers', 'certmonger')),
       lambda v: v >= 1000, '>= 1000x')
target('RequestCertificate ec-256 >= 2,500/s', med('issue', 'request-ec256-8', 'per_second'),
       lambda v: v >= 2500, '>= 2500/s')
target('RequestCertificate rsa-2048 >= 90% of keygen on 2 cores',
       ratio_median(('issue', 'request-rsa2048-8'), ('peers', 'rsa2048-keygen-2')), lambda v: v >= 0.9, '>= 0.9x')
target('other calls during rsa-2048: p99 < 10 ms', med('issue', 'ca-call-during-rsa', 'p99_ms'),
       lambda v: v < 10, '< 10 ms')
target('spool 10,000 CSRs in <= 4 s', med('spool', 'files', 'seconds'), lambda v: v <= 4, '<= 4 s')
target('ListCertificates 100,000 rows <= 100 ms', med('inventory', 'list', 'p50_ms'), lambda v: v <= 100, '<= 100 ms')
target('metrics file, 100,000 certificates, < 200 ms daemon CPU', med('metrics', 'write', 'cpu_ms'), lambda v: v < 200, '< 200 ms')
target('start-up READY <= 300 ms', med('inventory', 'startup', 'ready_ms'), lambda v: v <= 300, '<= 300 ms')
target('RSS after start <= 40 MiB', med('inventory', 'startup', 'rss_kib'), lambda v: v <= 40 * 1024, '<= 40960 KiB')
target('start-up with the deployments < 500 ms', med('deploy', 'startup', 'ready_ms'), lambda v: v < 500, '< 500 ms')
target('start-up with every deployment due < 500 ms', med('deploy', 'startup-all-due', 'ready_ms'), lambda v: v < 500,
       '< 500 ms')
target('ListDeployments p99 < 50 ms while all renew', med('deploy', 'calls-during-renewal', 'list_p99_ms'),
       lambda v: v < 50, '< 50 ms')
target('Describe p99 < 50 ms while all renew', med('deploy', 'calls-during-renewal', 'describe_p99_ms'),
       lambda v: v < 50, '< 50 ms')
big = [c for (b, c) in by if b == 'crl' and c.startswith('revoke-call-')]
if big:
    biggest = max(big, key=lambda c: int(c.split('-')[2]))
    target('CRL with %s revoked <= 1 s (Revoke call)' % biggest.split('-')[2], med('crl', biggest, 'p50_ms'),
           lambda v: v <= 1000, '<= 1000 ms')
tl = ['| target | median here | goal | met |', '|---|---|---|---|']
for what, value, goal, ok in targets:
    tl.append('| %s | %s | %s | %s |' % (what, fmt(value), goal, {None: 'not measured', True: 'yes',
                                                                 False: '**no**'}[ok]))
    summary['targets'].append({'target': what, 'median': value, 'goal': goal, 'met': ok})
out += ['## Targets (judged on the medians of this run)', ''] + tl + ['']
for (b, c), rs in sorted(by.items()):
    if c.endswith('skipped'):
        why = next(iter(rs.values())).get('why', '')
        out.append('- skipped: %s %s: %s' % (b, c, why))
        summary['skipped'].append({'bench': b, 'case': c, 'why': why})

text = '\n'.join(out) + '\n'
print(text)
json.dump(summary, open(summary_path, 'w'), indent=1)
if latest_path:
    with open(latest_path, 'w') as f:
        f.write('# Latest benchmark run\n\nCommand: `%s` (raw: `%s`)\n\n' % (command, jsonl.split('/')[-1]))
        f.write('Load average at the end (1, 5, 15 min): %s\n\n' % ' '.join(open('/proc/loadavg').read().split()[0:3]))
        f.write(text)
