"""Benchmark: console throughput both ways, beside websockify and TCP.

For each path, in one run on the same machine:

    direct TCP    the client connects to the guest port itself
    TCP relay     a bare byte relay between client and guest
                  (tcp_relay.py: blocking sockets, no websocket): the
                  floor any user-space proxy starts from on this machine
    websockify    stock websockify from the same environment, token-less,
                  pointing at the same guest port
    serialproxy   the real serialproxy-proxy and serialproxy-consoleauth over
                  RabbitMQ, a token per session (tests/harness/bench_world.py,
                  as proxy_sessions.py runs them)

it measures, in MB/s (MB = 2**20 bytes):

    to guest      the client sends --megabytes as binary websocket frames of
                  64 KiB and of 4 KB (4,096 bytes), masked as a browser
                  must (numpy masks them once per cell, outside the timed
                  part; direct TCP sends the same sizes as plain writes). A
                  TCP sink on the guest side (guest_stream.py) counts them:
                  from the client's first byte sent to the sink's last byte
                  received.
    to client     the guest writes --megabytes into its socket as fast as
                  it goes, in 64 KiB or in 4 KB writes; the client reads
                  frames (direct TCP: the raw stream) until it has them
                  all. The proxy decides the frame size here (what one
                  read from the guest gives); the mean is printed.

Each cell is run --runs times, interleaved across paths, and the best run
counts; the ratios to direct TCP are also given as the median of each
run's own ratio (the paths of one run are measured back to back, so a
busy machine weighs on both sides of such a ratio alike). A cell that
makes no progress for --stall-seconds is reported as "stalled" (later
runs of it are skipped); one still going after --cell-seconds is cut and
reported with the rate it had. CPU use of the
client, the proxy (its whole process tree), the guest and the whole machine
in each best run shows which of them is the limit.

    python -m tools.bench throughput [--megabytes 256] [--runs 3]
"""

import argparse
import asyncio
import os
import sys
import time
import uuid

from websockify import websocket as websockify_websocket
from tests.harness.bench_world import add_world_arguments, GUEST_ADDRESS, \
    raise_open_files_limit, RawSession, Session, World
from tests.harness.measures import cpu_seconds, machine_busy_seconds
from tests.harness.processes import free_port
from tests.harness.proxy_world import frame as masked_frame

HERE = os.path.dirname(os.path.abspath(__file__))

MB = 2 ** 20
SIZES = (('64 KiB', 65536), ('4 KB', 4096))
DIRECTIONS = (('to guest', 'to_guest'), ('to client', 'to_client'))
CELLS = [(direction, label, size) for direction, _ in DIRECTIONS
         for label, size in SIZES]
PATHS = ('direct TCP', 'TCP relay', 'websockify', 'serialproxy')


class BulkSession(Session):
    limit = 4 * MB


class BulkRawSession(RawSession):
    limit = 4 * MB


class BulkRelaySession(BulkRawSession):
    """Through tcp_relay.py, to the same guest port."""

    def __init__(self, port):
        super().__init__(port, None)

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            '127.0.0.1', self.port, limit=self.limit)


class Progress:
    bytes = 0


class Stalled(Exception):
    pass


async def watched(coro, progress, stall, deadline):
    """Run coro; cancel it when progress stops for stall seconds.

    Returns True when coro finished, False when it was cut at deadline.
    """
    task = asyncio.ensure_future(coro)
    seen, seen_at = -1, time.monotonic()
    while True:
        await asyncio.wait([task], timeout=0.25)
        if task.done():
            task.result()
            return True
        now = time.monotonic()
        if progress.bytes != seen:
            seen, seen_at = progress.bytes, now
        if now - seen_at >= stall or now >= deadline:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            if now - seen_at >= stall:
                raise Stalled(progress.bytes)
            return False


async def wait_for_sink(ident, total, stall, deadline, port):
    """(count, first, last) of sink ident once it has total, or gives up."""
    reader, writer = await asyncio.open_connection(GUEST_ADDRESS, port)
    try:
        writer.write(b'wait %s %d %r %r\n' % (ident.encode(), total, stall,
                                              deadline))
        count, first, last = (await reader.readline()).split()
    finally:
        writer.close()
    return int(count), float(first), float(last)


async def to_guest(session, size, total, args, guest_port):
    ident = uuid.uuid4().hex
    session.send(b'sink %s\n' % ident.encode())
    payload = os.urandom(MB)
    # A mebibyte of frames, each masked with a key of its own, sent over
    # and over: the client masks nothing while the clock runs.
    wires = [session.wire(payload[i:i + size]) for i in range(0, MB, size)]
    progress = Progress()
    writer = session.writer

    async def send():
        while progress.bytes < total:
            for wire in wires:
                writer.write(wire)
            progress.bytes += MB
            await writer.drain()

    started = time.monotonic()
    deadline = started + args.cell_seconds
    try:
        whole = await watched(send(), progress, args.stall_seconds,
                              deadline)
    except Stalled:
        # What got through, not what the client wrote into its buffers.
        count, _, _ = await wait_for_sink(ident, 0, 0, 0, guest_port)
        raise Stalled(count)
    count, first, last = await wait_for_sink(
        ident, total if whole else 0, args.stall_seconds, deadline,
        guest_port)
    if whole and count < total:
        raise Stalled(count)
    return {'bytes': count, 'seconds': last - started, 'whole': whole}


async def to_client(session, size, total, args, guest_port):
    progress = Progress()
    frames = 0

    async def receive():
        nonlocal frames
        while progress.bytes < total:
            progress.bytes += len(await session.receive())
            frames += 1

    session.send(b'source %d %d\n' % (total, size))
    started = time.monotonic()
    whole = await watched(receive(), progress, args.stall_seconds,
                          started + args.cell_seconds)
    return {'bytes': progress.bytes, 'seconds': time.monotonic() - started,
            'whole': whole, 'frames': frames}


class _FramesInMemory:
    """The socket websockify reads from: one whole frame per recv()."""

    def __init__(self, frames):
        self.frames = frames
        self.next = 0

    def recv(self, size):
        frame = self.frames[self.next % len(self.frames)]
        self.next += 1
        return frame

    def send(self, data):
        return len(data)


def decoder_ceiling(size, seconds=1.0):
    """MB/s websockify's own decoder gets through frames of size, alone.

    Stock websockify's WebSocket.recvmsg() on masked binary frames held in
    memory: no sockets, no proxy, one core. No proxy that decodes with
    websockify (as serialproxy's design has it) relays to the guest
    faster than this, whatever else it does.
    """
    frames = [masked_frame(os.urandom(size)) for _ in range(16)]
    codec = websockify_websocket.WebSocket()
    codec.socket = _FramesInMemory(frames)
    codec.client = False
    count, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        for _ in range(64):
            codec.recvmsg()
        count += 64
    return count * size / MB / (time.process_time() - started)


def sessions(world, tokens, relay_port):
    """path -> (new client session, pid whose tree is the proxy)."""
    return {
        'direct TCP': (lambda: BulkRawSession(world.guest_port, None), None),
        'TCP relay': (lambda: BulkRelaySession(relay_port),
                      world.relay.pid),
        'websockify': (lambda: BulkSession(world.websockify_port, '/'),
                       world.websockify.pid),
        'serialproxy': (lambda: BulkSession(world.proxy_port,
                                            '/?token=' + tokens.pop()),
                        world.proxy.pid),
    }


async def run_cell(world, make, proxy_pid, direction, size, args):
    session = make()
    await asyncio.wait_for(session.open(), 10)
    try:
        await asyncio.wait_for(session.echo(b'sync\n'), 10)
        cpu = (time.process_time(),
               cpu_seconds(proxy_pid, tree=True) if proxy_pid else 0.0,
               cpu_seconds(world.guest.pid), machine_busy_seconds())
        wall = time.monotonic()
        measure = to_guest if direction == 'to guest' else to_client
        result = await measure(session, size, args.megabytes * MB, args,
                               world.guest_port)
        wall = time.monotonic() - wall
        now = (time.process_time(),
               cpu_seconds(proxy_pid, tree=True) if proxy_pid else 0.0,
               cpu_seconds(world.guest.pid), machine_busy_seconds())
        result['cpu'] = [100 * (b - a) / wall for a, b in zip(cpu, now)]
        result['rate'] = result['bytes'] / MB / max(result['seconds'], 1e-9)
        return result
    finally:
        session.writer.transport.abort()


async def measure(world, args, relay_port):
    tokens = world.issue_tokens(args.runs * len(CELLS) + 1)
    paths = sessions(world, tokens, relay_port)
    results = {}
    for run in range(args.runs):
        for direction, label, size in CELLS:
            for path in PATHS:
                runs = results.setdefault((path, direction, label), [])
                if any('stalled' in r for r in runs):
                    continue
                make, proxy_pid = paths[path]
                try:
                    runs.append(await run_cell(world, make, proxy_pid,
                                               direction, size, args))
                except Stalled as stalled:
                    runs.append({'stalled': stalled.args[0]})
                except Exception as exc:
                    runs.append({'stalled': 0, 'error': repr(exc)})
                print('  run %d, %-9s %-6s %-11s %s' % (
                    run + 1, direction, label, path,
                    describe(runs[-1])), file=sys.stderr, flush=True)
    return results


def describe(result):
    if 'error' in result:
        return 'failed: ' + result['error']
    if 'stalled' in result:
        return 'stalled after %.1f MB' % (result['stalled'] / MB)
    return '%.0f MB/s%s' % (result['rate'],
                            '' if result['whole'] else ' (cut)')


def best(runs):
    done = [r for r in runs if 'rate' in r]
    return max(done, key=lambda r: r['rate']) if done else runs[-1]


def median_ratio(results, path, cell):
    """Median over runs of path's rate over direct TCP's in that run."""
    ratios = sorted(
        ours['rate'] / theirs['rate'] for ours, theirs in zip(
            results[(path, *cell)], results[('direct TCP', *cell)])
        if 'rate' in ours and 'rate' in theirs)
    if not ratios:
        return float('nan')
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else \
        (ratios[middle - 1] + ratios[middle]) / 2


def report(results, args):
    best_of = {key: best(runs) for key, runs in results.items()}

    def rate(path, cell):
        return best_of[(path, cell[0], cell[1])].get('rate')

    def figure(result):
        if 'rate' not in result:
            return 'stalled'
        return '%.0f%s' % (result['rate'], '' if result['whole'] else '*')

    cells = [(d, label) for d, label, _ in CELLS]
    head = '%-26s' + ' %15s' * len(cells)
    out = ['throughput, MB/s (MB = 2**20 bytes), best of %d runs of %d MB '
           'a cell:' % (args.runs, args.megabytes),
           head % ('', 'to guest', '', 'to client', ''),
           head % ('frames / writes of', *(label for _, label in cells))]
    for path in PATHS:
        out.append(head % (path, *(figure(best_of[(path, *cell)])
                                   for cell in cells)))
    for path, other in (('serialproxy', 'websockify'),
                        ('serialproxy', 'direct TCP'),
                        ('TCP relay', 'direct TCP')):
        ratios = []
        for cell in cells:
            ours, theirs = rate(path, cell), rate(other, cell)
            ratios.append('%.2fx' % (ours / theirs) if ours and theirs
                          else '-')
        out.append(head % ('%s / %s' % (path, other), *ratios))
    out.append('median of the runs\' own ratios:')
    for path in ('serialproxy', 'TCP relay'):
        out.append(head % ('  %s / direct TCP' % path, *(
            '%.2fx' % median_ratio(results, path, cell) for cell in cells)))
    out.append('  (* cut at --cell-seconds: the rate so far; stalled: no '
               'byte for %.0fs)' % args.stall_seconds)

    out.append('mean frame the client got (bytes), to client:')
    for path in ('websockify', 'serialproxy'):
        means = []
        for cell in cells[2:]:
            result = best_of[(path, *cell)]
            means.append('%.0f' % (result['bytes'] / result['frames'])
                         if result.get('frames') else '-')
        out.append('  %-24s 64 KiB writes: %s; 4 KB writes: %s' % (
            path, *means))

    out.append('CPU in each best run, %% of one core: client / proxy '
               'tree / guest / whole machine (%d cores)' % os.cpu_count())
    for path in PATHS:
        shares = []
        for cell in cells:
            result = best_of[(path, *cell)]
            shares.append('/'.join('%.0f' % c for c in result['cpu'])
                          if 'cpu' in result else '-')
        out.append(head % (path, *shares))

    out.append("websockify's decoder alone (WebSocket.recvmsg on frames in "
               "memory, one core), the ceiling of any proxy built on it, "
               "to guest:")
    for label, size in SIZES:
        ceiling = decoder_ceiling(size)
        direct = rate('direct TCP', ('to guest', label))
        out.append('  %-7s frames: %5.0f MB/s%s' % (
            label, ceiling, ', %.2fx direct TCP' % (ceiling / direct)
            if direct else ''))

    out.append('bar:')
    cell = ('to guest', '64 KiB')
    ours, theirs = rate('serialproxy', cell), rate('websockify', cell)
    if ours is None or theirs is None:
        verdict, why = 'FAIL', 'no figure'
    else:
        verdict = 'PASS' if ours >= theirs else 'FAIL'
        why = '%.0f vs %.0f MB/s, %.2fx' % (ours, theirs, ours / theirs)
    out.append('  %s  %-50s (%s)' % (
        verdict, 'to guest, 64 KiB frames: serialproxy >= websockify', why))
    # The floor, for the record: the 0.6x-direct-TCP bars were retired
    # once a run on two cores showed a bare TCP relay short of them too.
    out.append('against direct TCP (no bar; a bare TCP relay beside it):')
    for cell in cells:
        ours, direct = rate('serialproxy', cell), rate('direct TCP', cell)
        relay = rate('TCP relay', cell)
        out.append('  %-24s serialproxy %s, TCP relay %s' % (
            '%s, %s' % cell,
            '%.2fx' % (ours / direct) if ours and direct else '-',
            '%.2fx' % (relay / direct) if relay and direct else '-'))
    print('\n'.join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--megabytes', type=int, default=256,
                        help='MB (2**20 bytes) a cell moves')
    parser.add_argument('--runs', type=int, default=3,
                        help='runs of each cell; the best counts')
    parser.add_argument('--stall-seconds', type=float, default=5.0,
                        help='a cell with no progress for this long is '
                             'reported stalled')
    parser.add_argument('--cell-seconds', type=float, default=15.0,
                        help='a cell still going after this long is cut '
                             'and reported with its rate so far')
    add_world_arguments(
        parser, '[console] workers of the proxy; 0: the proxy\'s default '
                '(a session is served by one worker either way)')
    args = parser.parse_args()
    raise_open_files_limit()
    world = World(args, guest='guest_stream.py', guest_ports=1)
    try:
        world.setup()
        relay_port = free_port()
        world.relay = world.start(
            sys.executable, os.path.join(HERE, 'tcp_relay.py'),
            str(relay_port), GUEST_ADDRESS, str(world.guest_port),
            name='relay')
        world.wait_log('relay', 'listening')
        results = asyncio.run(measure(world, args, relay_port))
        report(results, args)
    finally:
        world.teardown()


if __name__ == '__main__':
    main()
