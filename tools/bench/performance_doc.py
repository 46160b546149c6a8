"""Write doc/performance.rst from the figures a `tox -e bench` run saved.

The benchmarks write JSON beside each other (--json); this renders the
page an operator sizes a deployment by: each figure with its baseline
beside it (stock websockify in front of the same guests, websocket
beside SSH, the built-in API server beside uwsgi), the machine the
figures came from and how to make them again on another.

    python -m tools.bench performance_doc RESULTS_DIR doc/performance.rst
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import textwrap

INTRO = (
    'How fast serialproxy opens console sessions, what a held session '
    'costs and how fast it relays, and how fast console URLs are issued, '
    'beside a baseline for each figure, measured on the machine named '
    'below, of the code at commit %s. Written on %s by '
    '``tools/bench/performance_doc.py``, the last step of ``tox -e bench``, '
    'from the figures the benchmarks before it saved '
    '(``test-output/bench/*.json``).')
MACHINE = (
    'The machine: %s. The benchmarks\' own clients, RabbitMQ and the '
    'database share it with the services, and other work on it moves the '
    'figures: compare the rows of one run with each other, not with '
    'another run\'s.')
RERUN = (
    'To measure a deployment of your own, prepare the machine with '
    '``tools/test-setup.sh`` (libvirtd, RabbitMQ, PostgreSQL, the test '
    'guest) and run ``tox -e bench``: about ten minutes of both cores of '
    'a small machine, after which this page is rewritten with the new '
    'figures. Each benchmark of ``tools/bench`` also runs on its own, '
    'with ``--help`` saying what it takes (sessions, openers, workers); '
    'tox.ini shows how ``tox -e bench`` runs each.')

SESSION_INTRO = (
    '``tools/bench/session_setup.py``: each opener takes a fresh '
    'token, opens a websocket session, waits for the first echo, '
    'closes it and takes the next. serialproxy runs as separate '
    'consoleauth and proxy processes over RabbitMQ, consoleauth on '
    'a PostgreSQL database; the baseline, stock websockify, reads a token '
    'file (no RPC, no lease, no single-writer check) in front of the same '
    'echoing guest ports. Only the compute agent is stood in for. Times '
    'run from the connection to the 101 answer.')
CPU_INTRO = (
    'Where the CPU of a new session goes, in milliseconds per session '
    '(the machine\'s column includes whatever else ran there):')
SSH_INTRO = (
    '``tools/bench/ssh_sessions.py``: sessions held at once over the '
    'proxy\'s SSH server (one-time keys pushed through consoleauth as the '
    'API does) and, as the baseline, as many over websockets to the same '
    'proxy and guests; then echo round trips on each. Set-up runs from the '
    'key push or the token to the console\'s first byte.')
HELD_INTRO = (
    '``tools/bench/proxy_sessions.py``: sessions held at once by one '
    'serialproxy-proxy (its [console] workers, %d here), memory per held '
    'session summed over the proxy\'s process tree; beside it stock '
    'websockify, a process per connection, holding as many as it '
    'reasonably can, in front of the same echoing guest ports. Then '
    'round trips of 16 bytes through one session of each and straight to '
    'the guest port (direct TCP, the floor), %d each, taken in turns in '
    'blocks while every session of both is still held.')
HELD_BARS = (
    'The project\'s bars for these figures (issue 23), all of one run: new '
    'sessions at 50 openers at least 1.3x '
    'websockify\'s rate (above), memory per held session within 16 KiB, '
    'and a round trip p50 no worse than websockify\'s.')
API_INTRO = (
    '``tools/bench/api_urls.py`` (serialproxy-all: its built-in '
    'server, in-process messaging, SQLite) and ``tools/bench/'
    'api_uwsgi.py`` (the API under uwsgi beside the built-in server, '
    'the services over RabbitMQ): POST remote-consoles as fast as each '
    'client thread can, each on a keep-alive connection. The "new '
    'session" row opens sessions one after another, each through a fresh '
    'URL, timed from the URL to the 101. The built-in server runs twice, '
    'before and after uwsgi: the difference between its two rows is what '
    'the machine itself moved meanwhile.')


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


def commit():
    """The checkout's commit, as git abbreviates it."""
    try:
        return subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
            text=True, check=True,
            cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def table(header, rows):
    """An RST simple table."""
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


def para(text):
    """text filled to the width of the rest of the docs."""
    return textwrap.fill(text, 79, break_on_hyphens=False)


def heading(title):
    return [title, '-' * len(title), '']


def session_section(rows):
    out = heading('New console sessions') + [para(SESSION_INTRO), '']
    by_openers = {}
    for row in rows:
        by_openers.setdefault(row['openers'], {})[row['path']] = row
    lines = []
    for openers in sorted(by_openers):
        ours = by_openers[openers].get('serialproxy')
        base = by_openers[openers].get('websockify')
        if ours is None:
            continue
        ratio = ('%.2fx' % (ours['per_second'] / base['per_second'])
                 if base else '-')
        lines.append([
            openers, '%.0f' % ours['per_second'],
            '%.0f' % base['per_second'] if base else '-', ratio,
            '%.1f / %.1f' % (ours['p50_ms'], ours['p99_ms']),
            '%.1f / %.1f' % (base['p50_ms'], base['p99_ms'])
            if base else '-',
            ours['failed'] + (base['failed'] if base else 0)])
    out.append(table(
        ['openers', 'sessions/s', 'websockify', 'ratio',
         'p50 / p99 ms', 'websockify p50 / p99', 'failed'], lines))
    out.append('')
    cpu_rows = [row for row in rows if row.get('cpu_ms_per_session')]
    if cpu_rows:
        parts = list(cpu_rows[0]['cpu_ms_per_session'])
        out += [para(CPU_INTRO), '']
        out.append(table(
            ['openers'] + parts,
            [[row['openers']] + ['%.2f' % row['cpu_ms_per_session'][part]
                                 for part in parts]
             for row in cpu_rows]))
        out.append('')
    return out


def section(title, intro, header, rows):
    """A titled section: what was measured, then its table."""
    return heading(title) + [para(intro), '', table(header, rows), '']


def ssh_section(rows):
    return section(
        'SSH beside websocket sessions', SSH_INTRO,
        ['transport', 'sessions', 'set-up p50 / p99 ms',
         'echo p50 / p99 ms'],
        [[row['transport'], row['sessions'],
          '%.2f / %.2f' % (row['setup']['p50_ms'], row['setup']['p99_ms']),
          '%.3f / %.3f' % (row['round_trip']['p50_ms'],
                           row['round_trip']['p99_ms'])]
         for row in rows])


def held_section(held):
    rows = {row['path']: row for row in held['rows']}
    direct = rows['direct TCP']['rtt_p50_us']
    base = rows.get('websockify', {}).get('rtt_p50_us')

    def memory(row):
        if 'rss_kib_per_session' not in row:
            return '-'
        return '%.1f / %.1f' % (row['rss_kib_per_session'],
                                row['pss_kib_per_session'])

    lines = []
    for name in ('serialproxy', 'websockify', 'direct TCP'):
        row = rows.get(name)
        if row is None:
            continue
        p50 = row['rtt_p50_us']
        lines.append([
            name, row['sessions'], memory(row),
            '%.0f / %.0f' % (p50, row['rtt_p99_us']),
            '%.2fx' % (p50 / base) if base else '-',
            '%.2fx' % (p50 / direct), row['failed']])
    return section(
        'Held sessions and round trips',
        HELD_INTRO % (held['workers'], held['round_trips']),
        ['path', 'held', 'KiB each RSS / PSS', 'round trip p50 / p99 us',
         'p50 / websockify', 'p50 / direct', 'failed'], lines) + \
        [para(HELD_BARS), '']


def api_section(rows):
    return section(
        'Console URLs', API_INTRO,
        ['deployment', 'concurrency', 'per s', 'p50 ms', 'p99 ms'],
        [[r['deployment'], r['concurrency'], '%.0f' % r['per_second'],
          '%.1f' % r['p50_ms'], '%.1f' % r['p99_ms']] for r in rows])


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def render(results, today=None, this_machine=None, at_commit=None):
    """The page's text from the JSON files in results."""
    sessions = load(results, 'session_setup.json')
    ssh = load(results, 'ssh_sessions.json')
    held = load(results, 'proxy_sessions.json')
    urls = load(results, 'api_urls.json') + load(results, 'api_uwsgi.json')
    lines = ['===========', 'Performance', '===========', '',
             para(INTRO % (at_commit or commit(),
                           today or datetime.date.today().isoformat())),
             '', para(MACHINE % (this_machine or machine())), '']
    lines += [para(RERUN), '']
    if sessions:
        lines += session_section(sessions)
    if held:
        lines += held_section(held)
    if ssh:
        lines += ssh_section(ssh)
    if urls:
        lines += api_section(urls)
    return '\n'.join(lines)


def main():
    results, output = sys.argv[1:3]
    text = render(results)
    with open(output, 'w') as f:
        f.write(text)
    print('wrote %s' % output)


if __name__ == '__main__':
    main()
