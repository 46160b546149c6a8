"""Write doc/performance.rst from the figures a `tox -e bench` run saved.

The benchmarks write JSON beside each other (--json); this renders the
tables an operator compares deployments by, with the machine they came
from and the command that made them, so the page is never older than the
last run that wrote it.

    python tools/bench/performance_doc.py RESULTS_DIR doc/performance.rst
"""

import datetime
import json
import os
import platform
import sys
import textwrap

# Bars of the control-plane issue, shown beside the figures.
SESSION_RATE_BAR = 500
SESSION_P99_BAR_MS = 50
SESSION_VS_WEBSOCKIFY_BAR = 1.5
API_RATE_BAR = 200
API_P99_BAR_MS = 100
ALL_URL_P50_BAR_MS = 10
ALL_SESSION_P50_BAR_MS = 20

SESSION_INTRO = (
    '``tools/bench/session_setup.py``: each opener takes a fresh '
    'token, opens a websocket session, waits for the first echo, '
    'closes it and takes the next. serialproxy runs as separate '
    'consoleauth and proxy processes over RabbitMQ, consoleauth on '
    'a PostgreSQL database; stock websockify reads a token file '
    '(no RPC, no lease) in front of the same echoing guest ports. '
    'Only the compute agent is stood in for.')
HEADER = (
    'Written on %s by ``tools/bench/performance_doc.py``, the last step of '
    '``tox -e bench``, from the figures the benchmarks before it saved '
    '(``test-output/bench/*.json``), on this machine: %s. The benchmarks\' '
    'own clients share the machine with the services, and other work on '
    'it moves the figures; compare rows of one run, not runs.')
API_INTRO = (
    '``tools/bench/api_urls.py`` (serialproxy-all, its built-in '
    'server and in-process messaging) and ``tools/bench/'
    'api_uwsgi.py`` (the API under uwsgi, the services over '
    'RabbitMQ): POST remote-consoles as fast as each client thread '
    'can, each on a keep-alive connection. The new sessions of the last '
    'row are opened one after another, each through a fresh URL; their '
    'times run from the URL to the 101.')


def machine():
    model = 'unknown CPU'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as f:
        memory_kib = int(f.readline().split()[1])
    return '%d cores (%s), %.0f GiB, Linux %s, Python %s' % (
        os.cpu_count(), model, memory_kib / 2 ** 20, platform.release(),
        platform.python_version())


def table(header, rows):
    """An RST grid-free simple table."""
    widths = [max(len(str(cell)) for cell in column)
              for column in zip(header, *rows)]
    rule = '  '.join('=' * width for width in widths)
    lines = [rule, '  '.join(str(cell).ljust(width)
                             for cell, width in zip(header, widths)), rule]
    for row in rows:
        lines.append('  '.join(str(cell).ljust(width)
                               for cell, width in zip(row, widths)))
    lines.append(rule)
    return '\n'.join(line.rstrip() for line in lines)


def para(text, bullet=False):
    """text filled to the width of the rest of the docs."""
    return textwrap.fill(text, 79, break_on_hyphens=False,
                         subsequent_indent='  ' if bullet else '')


def verdict(passed):
    return 'PASS' if passed else 'FAIL'


def session_section(rows):
    out = ['New console sessions', '--------------------', '',
           para(SESSION_INTRO), '']
    out.append(table(
        ['proxy', 'openers', 'sessions/s', '101 p50 ms', '101 p99 ms',
         'failed'],
        [[r['path'], r['openers'], '%.0f' % r['per_second'],
          '%.1f' % r['p50_ms'], '%.1f' % r['p99_ms'], r['failed']]
         for r in rows]))
    out.append('')
    for row in rows:
        if row['path'] != 'serialproxy':
            continue
        baseline = [r for r in rows if r['path'] == 'websockify' and
                    r['openers'] == row['openers']]
        ratio = (row['per_second'] / baseline[0]['per_second']
                 if baseline else float('nan'))
        cpu = ', '.join('%s %.2f' % item
                        for item in row['cpu_ms_per_session'].items())
        line = ('- %d opener%s: %.2fx websockify\'s rate. CPU per new '
                'session, ms: %s.' % (
                    row['openers'], '' if row['openers'] == 1 else 's',
                    ratio, cpu))
        if row['openers'] >= 50:
            line += (' Bars: %d sessions/s %s, p99 under %d ms %s, %.1fx '
                     'websockify %s.' % (
                         SESSION_RATE_BAR,
                         verdict(row['per_second'] >= SESSION_RATE_BAR),
                         SESSION_P99_BAR_MS,
                         verdict(row['p99_ms'] < SESSION_P99_BAR_MS),
                         SESSION_VS_WEBSOCKIFY_BAR,
                         verdict(ratio >= SESSION_VS_WEBSOCKIFY_BAR)))
        out.append(para(line, bullet=True))
    return out


def api_section(rows):
    out = ['Console URLs', '------------', '',
           para(API_INTRO), '']
    out.append(table(
        ['deployment', 'concurrency', 'per s', 'p50 ms', 'p99 ms'],
        [[r['deployment'], r['concurrency'], '%.0f' % r['per_second'],
          '%.1f' % r['p50_ms'], '%.1f' % r['p99_ms']] for r in rows]))
    out.append('')
    for row in rows:
        if row['deployment'].endswith('new session'):
            out.append(para('- %s: p50 under %d ms %s.' % (
                row['deployment'], ALL_SESSION_P50_BAR_MS,
                verdict(row['p50_ms'] < ALL_SESSION_P50_BAR_MS)),
                bullet=True))
        elif (row['deployment'].startswith('serialproxy-all') and
              row['concurrency'] == 1):
            out.append(para('- %s, a console URL: p50 under %d ms %s.' % (
                row['deployment'], ALL_URL_P50_BAR_MS,
                verdict(row['p50_ms'] < ALL_URL_P50_BAR_MS)), bullet=True))
        if row['concurrency'] >= 10:
            out.append(para(
                '- %s at concurrency %d: %d URLs/s %s, p99 under %d ms %s.'
                % (row['deployment'], row['concurrency'], API_RATE_BAR,
                   verdict(row['per_second'] >= API_RATE_BAR),
                   API_P99_BAR_MS, verdict(row['p99_ms'] < API_P99_BAR_MS)),
                bullet=True))
    return out


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def main():
    results, output = sys.argv[1:3]
    sessions = load(results, 'session_setup.json')
    urls = load(results, 'api_urls.json') + load(results, 'api_uwsgi.json')
    lines = ['===========', 'Performance', '===========', '',
             para(HEADER % (datetime.date.today().isoformat(),
                            machine())), '']
    if sessions:
        lines += session_section(sessions) + ['']
    if urls:
        lines += api_section(urls) + ['']
    with open(output, 'w') as f:
        f.write('\n'.join(lines))
    print('wrote %s' % output)


if __name__ == '__main__':
    main()
