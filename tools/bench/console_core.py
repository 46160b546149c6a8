"""The console core in memory: bytes in, actions out, no sockets.

Cheap enough to run on every change to serialproxy/proxy: it drives the
websocket front end (session.ConsoleSession) and the SSH one
(ssh_session.SSHConsoleSession) through opening a session, input frames
to the guest and guest output to the client, and prints what each costs
in microseconds of one core, beside the cost of merely copying the same
bytes (the floor any relay pays). Nothing is asserted: compare a run of
the branch with one of main on the same machine.

    python -m tools.bench console_core [--rounds N] [--sessions N]
"""

import argparse
import base64
import os
import statistics
import time

from serialproxy.proxy.console import Console
from serialproxy.proxy import session as websocket_session
from serialproxy.proxy import ssh_session

CONSOLE = {'instance_uuid': 'bench-instance', 'console_type': 'serial',
           'compute_host': 'bench-compute', 'host': '127.0.0.1',
           'port': 10000, 'index': 0, 'expires_at': 2e9,
           'session_id': 'bench-session', 'modes': ['write']}
SIZES = (16, 4096, 65536)


def upgrade_request():
    key = base64.b64encode(os.urandom(16)).decode()
    return ('GET /?token=bench-token HTTP/1.1\r\nHost: proxy.example\r\n'
            'Upgrade: websocket\r\nConnection: Upgrade\r\n'
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n'
            % key).encode()


def client_frame(payload):
    """A masked binary frame, as a browser sends it."""
    size = len(payload)
    if size < 126:
        head = bytes([0x82, 0x80 | size])
    elif size < 65536:
        head = bytes([0x82, 0x80 | 126]) + size.to_bytes(2, 'big')
    else:
        head = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, 'big')
    # A zero mask keeps the payload as it is; the decoder unmasks anyway.
    return head + b'\0\0\0\0' + payload


def open_websocket(settings):
    session = websocket_session.ConsoleSession(settings)
    session.client_data(upgrade_request())
    session.leased(Console.from_answer(CONSOLE))
    session.guest_connected(b'')
    return session


def open_ssh(settings):
    session = ssh_session.SSHConsoleSession(settings)
    session.pty_requested((80, 24, 0, 0))
    session.shell_requested()
    session.leased(Console.from_answer(CONSOLE))
    session.guest_connected(b'')
    return session


def per_call_us(fn, calls):
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def measure(rounds, sessions):
    settings = websocket_session.Settings(idle_timeout=0)
    rows = []
    rows.append(('websocket: open a session', [
        per_call_us(lambda: open_websocket(settings), sessions)
        for _ in range(rounds)]))
    rows.append(('ssh: open a session', [
        per_call_us(lambda: open_ssh(settings), sessions)
        for _ in range(rounds)]))
    ws = open_websocket(settings)
    ssh = open_ssh(settings)
    for size in SIZES:
        payload = os.urandom(size)
        frame = client_frame(payload)
        calls = max(200, 2_000_000 // (size + 64))
        rows.append(('copy %d bytes (floor)' % size, [
            per_call_us(lambda: bytes(bytearray(payload)), calls)
            for _ in range(rounds)]))
        rows.append(('websocket: %d-byte frame to the guest' % size, [
            per_call_us(lambda: ws.client_data(frame), calls)
            for _ in range(rounds)]))
        rows.append(('websocket: %d bytes of output to the client' % size, [
            per_call_us(lambda: ws.guest_data(payload), calls)
            for _ in range(rounds)]))
        rows.append(('ssh: %d bytes of input to the guest' % size, [
            per_call_us(lambda: ssh.client_data(payload), calls)
            for _ in range(rounds)]))
        rows.append(('ssh: %d bytes of output to the client' % size, [
            per_call_us(lambda: ssh.guest_data(payload), calls)
            for _ in range(rounds)]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5,
                        help='runs of each measurement; the median is shown')
    parser.add_argument('--sessions', type=int, default=2000,
                        help='sessions opened per round')
    args = parser.parse_args()
    if args.rounds < 1 or args.sessions < 1:
        parser.error('--rounds and --sessions must be at least 1')
    print('%-48s %12s %12s' % ('console core, in memory', 'median us',
                               'min us'))
    for name, samples in measure(args.rounds, args.sessions):
        print('%-48s %12.2f %12.2f' % (name, statistics.median(samples),
                                       min(samples)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
