"""Benchmark: how fast the proxy sets up new console sessions.

The world of proxy_sessions.py (real consoleauth and proxy over RabbitMQ,
consoleauth on a throwaway PostgreSQL database, a stand-in compute agent,
echoing guest ports), and beside it stock websockify reading a token
file: the same guests, no RPC, no lease. Each opener takes a fresh token,
opens a websocket session, waits for the first echo, closes it, and takes
the next: the setup path (token check, lease, guest connection) is all
that is measured, not holding sessions.

    python -m tools.bench session_setup --sessions 2000 --openers 1 50
    python -m tools.bench session_setup --database-server mysql

Reports, per number of concurrent openers and per proxy, new sessions per
second and the p50/p99 setup time (connect to the 101 answer; and to the
first echo), and serialproxy's CPU time per new session in each process
it runs in (the machine's line includes whatever else runs there).
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import time

from tests.harness.bench_world import add_world_arguments, BIN, \
    CLIENT_ADDRESSES, GUEST_ADDRESS, raise_open_files_limit, Session, World
from tests.harness import fixtures as func_fixtures
from tests.harness.measures import cpu_seconds, machine_busy_seconds, \
    percentile
from tests.harness.processes import free_port


def process_cpu(world):
    """CPU seconds so far of each part of the world, by name."""
    pids = {'proxy': [world.proxy.pid],
            'consoleauth': [world.consoleauth_process.pid],
            'rabbitmq': pids_of('beam.smp'), 'postgresql': pids_of('postgres'),
            'guests': [world.guest.pid]}
    usage = {name: sum(cpu_seconds(pid, tree=True) for pid in found)
             for name, found in pids.items()}
    # The openers and the stand-in compute agent run in this process.
    usage['bench clients'] = cpu_seconds(os.getpid())
    usage['machine'] = machine_busy_seconds()
    return usage


def pids_of(command):
    found = subprocess.run(['pgrep', '-x', command], capture_output=True,
                           text=True).stdout.split()
    return [int(pid) for pid in found]


async def open_close(port, tokens, openers):
    """Each opener opens and closes sessions until the tokens run out."""
    upgrade, first_echo, failures = [], [], []
    queue = list(reversed(tokens))

    async def opener(n):
        while queue:
            token = queue.pop()
            session = Session(port, '/?token=' + token,
                              CLIENT_ADDRESSES[n % len(CLIENT_ADDRESSES)])
            started = time.perf_counter()
            try:
                await session.open()
                upgraded = time.perf_counter()
                await session.echo(b'hi\n')
            except Exception as exc:
                failures.append(str(exc))
                continue
            finally:
                session.close()
            upgrade.append(upgraded - started)
            first_echo.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(opener(n) for n in range(openers)))
    return {'seconds': time.perf_counter() - started, 'upgrade': upgrade,
            'echo': first_echo, 'failures': failures}


def start_websockify_with_tokens(world, count):
    """Stock websockify reading count tokens from a token file (no RPC,
    no lease): the baseline of a proxy that maps tokens to ports."""
    path = os.path.join(world.dir, 'websockify-tokens')
    tokens = ['bench%d' % i for i in range(count)]
    with open(path, 'w') as f:
        for i, token in enumerate(tokens):
            f.write('%s: %s:%d\n' % (token, GUEST_ADDRESS, world.guest_ports[
                i % len(world.guest_ports)]))
    port = free_port()
    world.start(os.path.join(BIN, 'websockify'), '--token-plugin',
                'TokenFile', '--token-source', path, '127.0.0.1:%d' % port,
                name='websockify-tokens')
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return port, tokens
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def measure(port, tokens, openers, cpu=lambda: {}):
    """One measurement: its figures as a row of the report."""
    before = cpu()
    result = asyncio.run(open_close(port, tokens, openers))
    after = cpu()
    done = len(result['upgrade'])
    return {
        'openers': openers, 'sessions': done,
        'failed': len(result['failures']),
        'failure': result['failures'][0] if result['failures'] else None,
        'per_second': done / result['seconds'],
        'p50_ms': percentile(result['upgrade'], .5) * 1e3,
        'p99_ms': percentile(result['upgrade'], .99) * 1e3,
        'echo_p50_ms': percentile(result['echo'], .5) * 1e3,
        'echo_p99_ms': percentile(result['echo'], .99) * 1e3,
        'cpu_ms_per_session': {
            name: (after[name] - before[name]) * 1e3 / max(1, done)
            for name in after}}


def report(rows):
    lines = ['%-12s %7s %9s %11s %11s %11s  %s' % (
        'path', 'openers', 'per s', '101 p50 ms', '101 p99 ms',
        'echo p99 ms', 'failed')]
    for row in rows:
        lines.append('%-12s %7d %9.0f %11.1f %11.1f %11.1f  %d%s' % (
            row['path'], row['openers'], row['per_second'], row['p50_ms'],
            row['p99_ms'], row['echo_p99_ms'], row['failed'],
            ' (e.g. %s)' % row['failure'] if row['failure'] else ''))
    for row in rows:
        if row['cpu_ms_per_session']:
            lines.append('CPU ms per new session, %s, %d openers: %s' % (
                row['path'], row['openers'], ', '.join(
                    '%s %.2f' % item
                    for item in row['cpu_ms_per_session'].items())))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sessions', type=int, default=2000,
                        help='sessions opened per measurement')
    parser.add_argument('--openers', type=int, nargs='+', default=[1, 50],
                        help='concurrent openers; one measurement each')
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--database-server', default='postgresql',
                        choices=['postgresql', 'mysql', ''],
                        help='consoleauth gets a throwaway database on this '
                             'server (tools/test-setup.sh sets it up); '
                             '"" for SQLite in the state directory')
    parser.add_argument('--json', help='also write the figures here')
    add_world_arguments(parser, '[console] workers of the proxy')
    args = parser.parse_args()
    raise_open_files_limit()
    database = None
    if args.database_server and not args.database_url:
        database = func_fixtures.SQLDatabase(args.database_server)
        database.setUp()
        args.database_url = database.url
    world = World(args)
    rows = []
    try:
        world.setup()
        websockify_port, websockify_tokens = start_websockify_with_tokens(
            world, args.sessions + args.warmup)
        asyncio.run(open_close(world.proxy_port,
                               world.issue_tokens(args.warmup), 10))
        asyncio.run(open_close(websockify_port,
                               websockify_tokens[:args.warmup], 10))
        websockify_tokens = websockify_tokens[args.warmup:]
        for openers in args.openers:
            rows.append(dict(measure(websockify_port, websockify_tokens,
                                     openers), path='websockify'))
            rows.append(dict(measure(
                world.proxy_port, world.issue_tokens(args.sessions),
                openers, lambda: process_cpu(world)), path='serialproxy',
                database=world.database_backend))
    finally:
        world.teardown()
        if database is not None:
            database.cleanUp()
    print(report(rows))
    if args.json:
        # tox -e bench names test-output/bench/, which a fresh clone lacks.
        os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                    exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
