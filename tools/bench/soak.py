"""Soak: many console sessions held for a long time, some of them busy.

Holds --sessions sessions (10,000 by default) through a real
serialproxy-proxy and serialproxy-consoleauth over RabbitMQ for
--minutes (30), in tests/harness/bench_world.py's world (as
proxy_sessions.py opens them, with as many proxy workers as the hard
open-files limit needs; a refused opening is tried twice more, and the
refusals are printed). A tenth of
the sessions carry traffic: each echoes a line of its own every
--echo-seconds (5) through the proxy and an echoing guest port, and the
echo must come back whole within 10 s. Once a minute it samples the
proxy's descriptors (/proc/PID/fd over its process tree), the tree's RSS
and PSS, consoleauth's RSS, and the echoes answered and failed since the
last sample. At the end every held session must still echo.

Verdict: flat when the last sample is within --tolerance percent (5) of
the sample one minute after the sessions were opened (ramp-up done,
caches warm), for descriptors, proxy RSS and PSS and consoleauth RSS;
and every echo answered. The exit status is 1 otherwise.

    python -m tools.bench soak [--sessions 10000] [--minutes 30]
"""

import argparse
import asyncio
import os
import random
import sys
import time

from tests.harness.bench_world import add_world_arguments, \
    CLIENT_ADDRESSES, raise_open_files_limit, Session, World, workers_needed
from tests.harness.measures import memory_kib, percentile
from tests.harness.processes import process_tree
from tools.bench.proxy_sessions import open_many

ECHO_TIMEOUT = 10


def open_descriptors(pid):
    """Descriptors open in a process and its descendants."""
    count = 0
    for p in process_tree(pid):
        try:
            count += len(os.listdir('/proc/%d/fd' % p))
        except FileNotFoundError:
            pass
    return count


def started_process(world, command):
    """The world's process started from command (a bin/ script name)."""
    for _, proc, _ in world.services.started:
        if os.path.basename(proc.args[0]) == command:
            return proc
    raise LookupError(command)


class Traffic:
    """Echo rounds of the busy sessions, counted between samples."""

    def __init__(self):
        self.answered = 0
        self.failures = []
        self.round_trips = []
        self._failures_taken = 0

    def take(self):
        """(answered, failed, round trips) since the last take."""
        taken = (self.answered, len(self.failures) - self._failures_taken,
                 self.round_trips)
        self.answered, self.round_trips = 0, []
        self._failures_taken = len(self.failures)
        return taken

    async def run(self, number, session, interval, stop):
        # Spread the rounds over the interval rather than all at once.
        await asyncio.sleep(random.uniform(0, interval))
        round_ = 0
        while not stop.is_set():
            round_ += 1
            payload = b'soak %d %d\n' % (number, round_)
            started = time.perf_counter()
            try:
                echoed = await asyncio.wait_for(session.echo(payload),
                                                ECHO_TIMEOUT)
            except Exception as exc:
                # The stream is in an unknown state now: stop using it.
                self.failures.append('session %d round %d: %r'
                                     % (number, round_, exc))
                return
            if echoed != payload:
                self.failures.append('session %d round %d: echoed %r'
                                     % (number, round_, echoed[:80]))
                return
            self.answered += 1
            self.round_trips.append(time.perf_counter() - started)
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass


def sample(world, consoleauth, minute, traffic):
    rss, pss = memory_kib(world.proxy.pid, tree=True)
    answered, failed, round_trips = traffic.take()
    return {'minute': minute,
            'fds': open_descriptors(world.proxy.pid),
            'rss': rss, 'pss': pss,
            'consoleauth_rss': memory_kib(consoleauth.pid)[0],
            'answered': answered, 'failed': failed,
            'p99': percentile(round_trips, .99) if round_trips else None}


def print_sample(row):
    print('%6.1f %8d %10d %10d %10d %9d %7d %8s' % (
        row['minute'], row['fds'], row['rss'], row['pss'],
        row['consoleauth_rss'], row['answered'], row['failed'],
        '%.1f' % (row['p99'] * 1e3) if row['p99'] is not None else '-'),
        flush=True)


HEADER = ('%6s %8s %10s %10s %10s %9s %7s %8s' % (
    'minute', 'fds', 'proxy_rss', 'proxy_pss', 'ca_rss', 'echoes',
    'failed', 'p99_ms') + '\n' + ' ' * 16 + '(memory in KiB; echoes and '
    'failures since the previous sample)')

FLAT_METRICS = (('fds', 'proxy descriptors'), ('rss', 'proxy RSS'),
                ('pss', 'proxy PSS'), ('consoleauth_rss', 'consoleauth RSS'))


def verdict(samples, held, checked, traffic, args):
    """Lines of the verdict and whether the soak passed."""
    baseline = samples[1] if len(samples) > 2 else samples[0]
    last = samples[-1]
    lines, passed = [], True
    for key, name in FLAT_METRICS:
        change = 100.0 * (last[key] - baseline[key]) / max(baseline[key], 1)
        flat = abs(change) <= args.tolerance
        passed &= flat
        lines.append('%-16s %s: %d at minute %.0f, %d at minute %.0f '
                     '(%+.1f%%, tolerance %s%%)' % (
                         name, 'flat' if flat else 'NOT FLAT',
                         baseline[key], baseline['minute'], last[key],
                         last['minute'], change, args.tolerance))
    answered = sum(s['answered'] for s in samples)
    passed &= not traffic.failures
    lines.append('echoes           %s: %d answered, %d failed%s' % (
        'all answered' if not traffic.failures else 'FAILED', answered,
        len(traffic.failures), (' e.g. %s' % traffic.failures[:3])
        if traffic.failures else ''))
    all_held = held == checked == args.sessions
    passed &= all_held
    lines.append('sessions         %s: %d of %d opened, %d echoed at the '
                 'end' % ('all held' if all_held else 'NOT ALL HELD', held,
                          args.sessions, checked))
    lines.append('verdict: %s' % ('PASS' if passed else 'FAIL'))
    return lines, passed


async def final_check(sessions, concurrency):
    """How many sessions still echo at the end."""
    gate = asyncio.Semaphore(concurrency)

    async def one(session):
        async with gate:
            try:
                await asyncio.wait_for(session.echo(b'end\n'), ECHO_TIMEOUT)
                return True
            except Exception:
                return False
    return sum(await asyncio.gather(*(one(s) for s in sessions)))


async def open_all(world, tokens, concurrency, attempts=3):
    """Sessions for the tokens; a refused opening is tried again (the
    soak is about holding sessions, session_setup.py about opening them).
    Returns the sessions and every refusal met on the way."""
    sessions, refused, left = [], [], list(tokens)
    for _ in range(attempts):
        opened, failures, _ = await open_many(
            lambda i: Session(world.proxy_port, '/?token=' + left[i],
                              CLIENT_ADDRESSES[i % len(CLIENT_ADDRESSES)]),
            len(left), concurrency)
        sessions += opened
        refused += failures
        held = {session.path for session in opened}
        left = [token for token in left if '/?token=' + token not in held]
        if not left:
            break
    return sessions, refused


async def soak(world, args):
    consoleauth = started_process(world, 'serialproxy-consoleauth')
    tokens = world.issue_tokens(args.sessions)
    started = time.monotonic()
    sessions, refused = await open_all(world, tokens, args.concurrency)
    print('%d of %d sessions opened in %.1fs (%d refusals retried%s); %d '
          'busy, echoing every %ss' % (
              len(sessions), args.sessions, time.monotonic() - started,
              len(refused), ', e.g. %s' % refused[:2] if refused else '',
              len(sessions[::args.busy_every]), args.echo_seconds),
          flush=True)
    traffic = Traffic()
    stop = asyncio.Event()
    busy = [asyncio.ensure_future(traffic.run(n, s, args.echo_seconds,
                                              stop))
            for n, s in enumerate(sessions[::args.busy_every])]
    print(HEADER)
    samples = []
    ramped_up = time.monotonic()
    end = ramped_up + args.minutes * 60
    minute = 0
    while True:
        samples.append(sample(world, consoleauth, minute, traffic))
        print_sample(samples[-1])
        if time.monotonic() >= end - 1:
            break
        next_at = min(end, ramped_up + (minute + 1) * args.sample_seconds)
        await asyncio.sleep(max(0, next_at - time.monotonic()))
        minute = (time.monotonic() - ramped_up) / 60
    stop.set()
    await asyncio.gather(*busy)
    checked = await final_check(sessions, args.concurrency)
    lines, passed = verdict(samples, len(sessions), checked, traffic, args)
    print('\n'.join(lines))
    for session in sessions:
        session.close()
    return passed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sessions', type=int, default=10000)
    parser.add_argument('--minutes', type=float, default=30,
                        help='how long to hold them once all are open')
    parser.add_argument('--busy-every', type=int, default=10,
                        help='every Nth session carries traffic')
    parser.add_argument('--echo-seconds', type=float, default=5,
                        help='seconds between the echoes of a busy session')
    parser.add_argument('--sample-seconds', type=float, default=60)
    parser.add_argument('--tolerance', type=float, default=5,
                        help='percent by which the last sample may differ '
                             'from minute 1 and still be flat')
    parser.add_argument('--concurrency', type=int, default=64,
                        help='handshakes in flight at once')
    add_world_arguments(
        parser, '[console] workers of the proxy; 0: max(2, as many as the '
                'hard open-files limit needs for --sessions)')
    args = parser.parse_args()
    raise_open_files_limit()
    if not args.workers:
        args.workers = max(2, workers_needed(args.sessions))
    print('soak: %d sessions for %s minutes, proxy workers %d' % (
        args.sessions, args.minutes, args.workers), flush=True)
    world = World(args)
    passed = False
    try:
        world.setup()
        passed = asyncio.run(soak(world, args))
    finally:
        world.teardown()
    sys.exit(0 if passed else 1)


if __name__ == '__main__':
    main()
