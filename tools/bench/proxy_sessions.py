"""Benchmark: concurrent console sessions held by one proxy.

Runs a real serialproxy-consoleauth and serialproxy-proxy over RabbitMQ,
a farm of echoing "guest" serial ports, and raw websocket clients, then
reports the proxy's memory per session and round-trip latency, beside
stock websockify (a process per connection) and direct TCP measured in
the same run on the same machine.

Only the compute agent is stood in for (validate_console_port answers
yes): the proxy, consoleauth, RabbitMQ and the sockets are real.

    python -m tools.bench proxy_sessions --sessions 10000

A session holds two descriptors in the proxy process that serves it. The
proxy runs [console] workers = max(2, needed) processes sharing its port,
where needed is how many the hard open-files limit (each process keeping
64 descriptors back) takes for --sessions, unless --workers says. Its
memory is summed over its process tree: the parent and every worker.

Round trips are measured once every session of both proxies is held,
in blocks that take turns (direct TCP, websockify, serialproxy, then
the other way round), so that whatever else the machine does meanwhile
weighs on each alike; each session echoes a few times first, unmeasured.

The world (proxy, consoleauth, websockify, guests, clients) is
tests/harness/bench_world.py's, shared with throughput.py.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

from tests.harness.bench_world import add_world_arguments, \
    CLIENT_ADDRESSES, raise_open_files_limit, RawSession, Session, World, \
    workers_needed
from tests.harness.measures import memory_kib, percentile
from tests.harness.processes import process_tree


async def open_many(make, count, concurrency):
    """Open count sessions, at most concurrency handshakes at once."""
    sessions, failures, setup = [], [], []
    gate = asyncio.Semaphore(concurrency)

    async def one(i):
        async with gate:
            session = make(i)
            started = time.perf_counter()
            try:
                await session.open()
                await session.echo(b'hi\n')
            except Exception as exc:
                failures.append(str(exc))
                session.close()
                return
            setup.append(time.perf_counter() - started)
            sessions.append(session)
    await asyncio.gather(*(one(i) for i in range(count)))
    return sessions, failures, setup


async def round_trips(session, count=200):
    times = []
    payload = b'0123456789abcdef'
    for _ in range(count):
        started = time.perf_counter()
        await session.echo(payload)
        times.append(time.perf_counter() - started)
    return times


async def interleaved_round_trips(sessions, blocks, per_block, warm_up=20):
    """name -> round-trip times of sessions[name], measured in blocks
    that take turns, every other round in reverse order."""
    times = {name: [] for name in sessions}
    names = list(sessions)
    for name in names:
        await round_trips(sessions[name], warm_up)
    for block in range(blocks):
        for name in (names if block % 2 == 0 else reversed(names)):
            times[name] += await round_trips(sessions[name], per_block)
    return times


async def measure(world, args):
    results = {}

    # Direct TCP: the latency floor.
    raw = RawSession(world.guest_port, None)
    await raw.open()

    # Stock websockify: a forked process per connection.
    idle = memory_kib(world.websockify.pid, tree=True)
    ws_sessions, ws_failures, ws_setup = await open_many(
        lambda i: Session(world.websockify_port, '/',
                          CLIENT_ADDRESSES[i % len(CLIENT_ADDRESSES)]),
        args.websockify_sessions, 50)
    await asyncio.sleep(2)
    held = memory_kib(world.websockify.pid, tree=True)
    results['websockify'] = {
        'sessions': len(ws_sessions), 'failures': len(ws_failures),
        'idle_kib': idle, 'held_kib': held,
        'setup': ws_setup}

    # serialproxy: every session in one event-driven proxy (its workers).
    started = time.perf_counter()
    tokens = world.issue_tokens(args.sessions)
    results['token_seconds'] = time.perf_counter() - started
    idle = memory_kib(world.proxy.pid, tree=True)
    started = time.perf_counter()
    sessions, failures, setup = await open_many(
        lambda i: Session(world.proxy_port, '/?token=' + tokens[i],
                          CLIENT_ADDRESSES[i % len(CLIENT_ADDRESSES)]),
        args.sessions, args.concurrency)
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(args.hold)
    held = memory_kib(world.proxy.pid, tree=True)
    processes = len(process_tree(world.proxy.pid))
    # Every held session still answers after the hold.
    alive = 0
    for session in sessions[::max(1, len(sessions) // 200)]:
        try:
            await asyncio.wait_for(session.echo(b'still\n'), 10)
            alive += 1
        except Exception:
            pass
    results['serialproxy'] = {
        'sessions': len(sessions), 'failures': len(failures),
        'failure_sample': failures[:3], 'idle_kib': idle, 'held_kib': held,
        'setup': setup, 'open_seconds': open_seconds,
        'alive_checked': alive, 'processes': processes,
        'alive_sampled': len(sessions[::max(1, len(sessions) // 200)])}

    # Round trips, every session of both still held.
    measured = {'direct': raw}
    if ws_sessions:
        measured['websockify'] = ws_sessions[0]
    if sessions:
        measured['serialproxy'] = sessions[0]
    times = await interleaved_round_trips(measured, args.rtt_blocks,
                                          args.rtt_per_block)
    results['direct_rtt'] = times['direct']
    results['websockify']['rtt'] = times.get('websockify', [])
    results['serialproxy']['rtt'] = times.get('serialproxy', [])
    for session in sessions + ws_sessions:
        session.close()
    raw.close()
    return results


def per_session(stats):
    n = max(stats['sessions'], 1)
    return ((stats['held_kib'][0] - stats['idle_kib'][0]) / n,
            (stats['held_kib'][1] - stats['idle_kib'][1]) / n)


def report(results, args):
    sp, ws = results['serialproxy'], results['websockify']
    sp_rss, sp_pss = per_session(sp)
    ws_rss, ws_pss = per_session(ws)
    direct = statistics.median(results['direct_rtt']) * 1e6
    lines = [
        'serialproxy: %d of %d sessions held ([console] workers = %d; '
        '%d process(es) in the proxy\'s tree) (%d failed, e.g. %s); %d/%d '
        'sampled still echo after %ss'
        % (sp['sessions'], args.sessions, args.workers, sp['processes'],
            sp['failures'], sp['failure_sample'] or '-',
            sp['alive_checked'], sp['alive_sampled'], args.hold),
        '  opened in %.1fs (%.0f sessions/s); setup p50 %.1f ms, '
        'p99 %.1f ms; tokens issued in %.1fs' % (
            sp['open_seconds'], sp['sessions'] / max(sp['open_seconds'],
                                                     1e-9),
            percentile(sp['setup'], .5) * 1e3,
            percentile(sp['setup'], .99) * 1e3, results['token_seconds']),
        '  proxy tree RSS %d -> %d KiB, PSS %d -> %d KiB: %.1f KiB RSS, '
        '%.1f KiB PSS per session' % (
            sp['idle_kib'][0], sp['held_kib'][0], sp['idle_kib'][1],
            sp['held_kib'][1], sp_rss, sp_pss),
        'websockify (stock, fork per connection): %d sessions, %d failed' % (
            ws['sessions'], ws['failures']),
        '  tree RSS %d -> %d KiB, PSS %d -> %d KiB: %.1f KiB RSS, '
        '%.1f KiB PSS per session' % (
            ws['idle_kib'][0], ws['held_kib'][0], ws['idle_kib'][1],
            ws['held_kib'][1], ws_rss, ws_pss),
        'memory per session, websockify / serialproxy: %.1fx RSS, '
        '%.1fx PSS' % (ws_rss / max(sp_rss, 1e-9),
                       ws_pss / max(sp_pss, 1e-9)),
        'round trip, 16 bytes, %d each in turns, every session held, '
        'p50 (p99) microseconds:' % len(results['direct_rtt']),
        '  direct TCP   %7.0f (%.0f)' % (
            direct, percentile(results['direct_rtt'], .99) * 1e6),
    ]
    for name, stats in (('websockify', ws), ('serialproxy', sp)):
        if stats['rtt']:
            median = statistics.median(stats['rtt']) * 1e6
            lines.append('  %-12s %7.0f (%.0f)  %.1fx direct TCP' % (
                name, median, percentile(stats['rtt'], .99) * 1e6,
                median / direct))
    if sp['rtt'] and ws['rtt']:
        lines.append('  serialproxy / websockify p50: %.2fx' % (
            statistics.median(sp['rtt']) / statistics.median(ws['rtt'])))
    print('\n'.join(lines))


def summary(results, args):
    """What doc/performance.rst shows of a run (performance_doc.py)."""
    direct = results['direct_rtt']
    rows = []
    for name in ('serialproxy', 'websockify'):
        stats = results[name]
        rss, pss = per_session(stats)
        rows.append({
            'path': name, 'sessions': stats['sessions'],
            'failed': stats['failures'],
            'rss_kib_per_session': round(rss, 1),
            'pss_kib_per_session': round(pss, 1),
            'rtt_p50_us': round(statistics.median(stats['rtt']) * 1e6, 1)
            if stats['rtt'] else None,
            'rtt_p99_us': round(percentile(stats['rtt'], .99) * 1e6, 1)
            if stats['rtt'] else None})
    rows.append({'path': 'direct TCP', 'sessions': 1, 'failed': 0,
                 'rtt_p50_us': round(statistics.median(direct) * 1e6, 1),
                 'rtt_p99_us': round(percentile(direct, .99) * 1e6, 1)})
    sp = results['serialproxy']
    return {'workers': args.workers, 'round_trips': len(direct),
            'opened_per_second': round(sp['sessions'] / max(
                sp['open_seconds'], 1e-9), 1),
            'rows': rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sessions', type=int, default=10000)
    parser.add_argument('--websockify-sessions', type=int, default=200,
                        help='websockify forks per connection; a few '
                             'hundred give its per-session cost.')
    parser.add_argument('--concurrency', type=int, default=256,
                        help='handshakes in flight at once')
    parser.add_argument('--hold', type=float, default=5.0,
                        help='seconds to hold every session before '
                             'measuring')
    parser.add_argument('--rtt-blocks', type=int, default=10,
                        help='blocks of round trips each path takes in '
                             'turn')
    parser.add_argument('--rtt-per-block', type=int, default=100,
                        help='round trips in each block')
    parser.add_argument('--json', help='also write the figures here, for '
                                       'doc/performance.rst')
    add_world_arguments(
        parser, '[console] workers of the proxy (processes sharing its '
                'port); 0: max(2, as many as the hard open-files limit '
                'needs for --sessions)')
    args = parser.parse_args()
    raise_open_files_limit()
    if not args.workers:
        args.workers = max(2, workers_needed(args.sessions))
    world = World(args)
    try:
        world.setup()
        results = asyncio.run(measure(world, args))
        report(results, args)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                        exist_ok=True)
            with open(args.json, 'w') as f:
                json.dump(summary(results, args), f, indent=1)
    finally:
        world.teardown()
    if results['serialproxy']['sessions'] < args.sessions:
        sys.exit('not every session opened')


if __name__ == '__main__':
    main()
