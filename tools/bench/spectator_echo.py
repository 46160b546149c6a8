"""Benchmark: a writer's echo round trip, alone and beside a stuck spectator.

A spectator (mode=view) that reads nothing must never slow the console's
writer: the proxy drops it once its buffer is full rather than wait for
it. This measures what the writer sees, in the benchmarks' world
(tests/harness/bench_world.py: a real proxy and consoleauth over
RabbitMQ, echoing guest ports): --rounds rounds, each --echoes round trips
alone and then as many with a spectator whose receive window is 4 KiB and
who never reads, so that the machine's load weighs on both alike.
Printed: the median and p99 of each, and their ratio beside the bar the
design sets (median with the spectator at most 1.2 times the median alone,
plus a millisecond of clock and scheduler noise).

    python -m tools.bench spectator_echo [--rounds 4] [--echoes 50]
"""

import argparse
import asyncio
import base64
import os
import socket

from tests.harness.bench_world import add_world_arguments, COMPUTE_HOST, \
    GUEST_ADDRESS, Session, World
from tests.harness.measures import percentile

BAR_RATIO = 1.2
BAR_NOISE_SECONDS = 0.001


def stuck_spectator(port, token):
    """A spectator that opens its websocket and never reads again."""
    sock = socket.socket()
    # Set before connecting, so the window is small from the start: what
    # it does not read backs up into the proxy.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(('127.0.0.1', port))
    sock.sendall((
        'GET /?token=%s&mode=view HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
        'Upgrade: websocket\r\nConnection: Upgrade\r\n'
        'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
        'Sec-WebSocket-Protocol: binary\r\n\r\n'
        % (token, port, base64.b64encode(os.urandom(16)).decode())).encode())
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise RuntimeError('the spectator was refused')
        head += chunk
    if not head.startswith(b'HTTP/1.1 101'):
        raise RuntimeError('the spectator was refused: %s'
                           % head.split(b'\r\n')[0].decode())
    return sock


async def round_trips(session, label, count):
    times = []
    loop = asyncio.get_running_loop()
    for number in range(count):
        payload = b'%s-%d\n' % (label.encode(), number)
        started = loop.time()
        await asyncio.wait_for(session.echo(payload), 30)
        times.append(loop.time() - started)
    return times


async def measure(world, args):
    writer_token, = world.issue_tokens(1)
    instance = world.instances[world.guest_ports[0]]
    writer = Session(world.proxy_port, '/?token=' + writer_token)
    await writer.open()
    alone, watched = [], []
    try:
        await round_trips(writer, 'warm', args.echoes)
        for rnd in range(args.rounds):
            alone += await round_trips(writer, 'alone%d' % rnd, args.echoes)
            token = world.consoleauth.authorize_console(
                {}, instance['uuid'], COMPUTE_HOST, GUEST_ADDRESS,
                world.guest_ports[0], index=0, modes=['view'])
            spectator = stuck_spectator(world.proxy_port, token)
            try:
                watched += await round_trips(writer, 'watched%d' % rnd,
                                             args.echoes)
            finally:
                spectator.close()
    finally:
        writer.close()
    return alone, watched


def report(alone, watched):
    alone_p50, watched_p50 = percentile(alone, .5), percentile(watched, .5)
    print('writer echo round trip over %d each (ms):' % len(alone))
    print('  %-26s p50 %7.3f  p99 %7.3f' % (
        'alone', alone_p50 * 1e3, percentile(alone, .99) * 1e3))
    print('  %-26s p50 %7.3f  p99 %7.3f' % (
        'beside a stuck spectator', watched_p50 * 1e3,
        percentile(watched, .99) * 1e3))
    bar = alone_p50 * BAR_RATIO + BAR_NOISE_SECONDS
    print('  ratio of medians %.2fx; bar: %.3f ms (%s)' % (
        watched_p50 / alone_p50, bar * 1e3,
        'within' if watched_p50 <= bar else 'ABOVE'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--echoes', type=int, default=50,
                        help='round trips per round and case')
    add_world_arguments(parser, '[console] workers of the proxy')
    args = parser.parse_args()
    world = World(args, guest_ports=1)
    try:
        world.setup()
        alone, watched = asyncio.run(measure(world, args))
    finally:
        world.teardown()
    report(alone, watched)


if __name__ == '__main__':
    main()
