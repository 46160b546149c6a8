"""Benchmark: how fast the proxy sets up new console sessions.

The world of proxy_sessions.py (real consoleauth and proxy over RabbitMQ,
a stand-in compute agent, echoing guest ports). Each opener takes a fresh
token, opens a websocket session, waits for the first echo, closes it,
and takes the next: the setup path (token check, lease, guest
connection) is all that is measured, not holding sessions.

    python tools/bench/session_setup.py --sessions 2000 --openers 1 50
    python tools/bench/session_setup.py --database-url \\
        postgresql+psycopg2://user:pw@127.0.0.1:5432/empty_db

Reports, per number of concurrent openers, new sessions per second and
the p50/p99 setup time (connect to the 101 answer; and to the first echo).
"""

import argparse
import asyncio
import time

from world import add_world_arguments, CLIENT_ADDRESSES, \
    raise_open_files_limit, Session, World


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


async def open_close(world, tokens, openers):
    """Each opener opens and closes sessions until the tokens run out."""
    upgrade, first_echo, failures = [], [], []
    queue = list(reversed(tokens))

    async def opener(n):
        while queue:
            token = queue.pop()
            session = Session(world.proxy_port, '/?token=' + token,
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sessions', type=int, default=2000,
                        help='sessions opened per measurement')
    parser.add_argument('--openers', type=int, nargs='+', default=[1, 50],
                        help='concurrent openers; one measurement each')
    parser.add_argument('--warmup', type=int, default=100)
    add_world_arguments(parser, '[console] workers of the proxy')
    args = parser.parse_args()
    raise_open_files_limit()
    world = World(args)
    lines = []
    try:
        world.setup()
        asyncio.run(open_close(world, world.issue_tokens(args.warmup), 10))
        for openers in args.openers:
            tokens = world.issue_tokens(args.sessions)
            result = asyncio.run(open_close(world, tokens, openers))
            done = len(result['upgrade'])
            lines.append(
                '%3d openers: %d sessions (%d failed%s) in %.1fs: %.0f new '
                'sessions/s; to 101 p50 %.2f ms p99 %.2f ms; to first echo '
                'p50 %.2f ms p99 %.2f ms' % (
                    openers, done, len(result['failures']),
                    ', e.g. %s' % result['failures'][0]
                    if result['failures'] else '',
                    result['seconds'], done / result['seconds'],
                    percentile(result['upgrade'], .5) * 1e3,
                    percentile(result['upgrade'], .99) * 1e3,
                    percentile(result['echo'], .5) * 1e3,
                    percentile(result['echo'], .99) * 1e3))
    finally:
        world.teardown()
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
