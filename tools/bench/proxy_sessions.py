"""Benchmark: concurrent console sessions held by one proxy process.

Runs a real serialproxy-consoleauth and serialproxy-proxy over RabbitMQ,
a farm of echoing "guest" serial ports, and raw websocket clients, then
reports the proxy's memory per session and round-trip latency, beside
stock websockify (a process per connection) and direct TCP measured in
the same run on the same machine.

Only the compute agent is stood in for (validate_console_port answers
yes): the proxy, consoleauth, RabbitMQ and the sockets are real.

    python tools/bench/proxy_sessions.py --sessions 10000

A session holds two descriptors in the proxy; where the hard open-files
limit is below twice --sessions, the proxy is given enough session loops
([console] event_loops: threads of the same process, each with a
descriptor table of its own) to hold them, unless --event-loops says.
"""

import argparse
import asyncio
import base64
import concurrent.futures
import configparser
import os
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

import oslo_messaging as messaging

BIN = os.path.dirname(sys.executable)
COMPUTE_HOST = 'bench-compute'
# The guest farm listens here, on several ports as guests would; clients
# reach the proxies from many loopback addresses, as real clients come
# from many hosts. One source and one destination would run loopback out
# of ephemeral ports near 10,000 connections: a limit of the bench, not
# of the proxy.
GUEST_ADDRESS = '127.0.0.2'
GUEST_PORTS = 8
CLIENT_ADDRESSES = ['127.0.1.%d' % i for i in range(1, 33)]


def raise_open_files_limit(wanted=200000):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def event_loops_needed(sessions):
    """Session loops one proxy process needs under the hard limit."""
    from serialproxy.proxy import server
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_loop = (hard - server.RESERVED_FILES) // 2
    return max(1, -(-sessions // per_loop))


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# Memory ------------------------------------------------------------------

def process_tree(pid):
    """pid and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir('/proc/%d/task' % current):
                with open('/proc/%d/task/%s/children' % (current, task)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def memory_kib(pid, tree=False):
    """(RSS, PSS) in KiB of a process, or summed over its process tree."""
    rss = pss = 0
    for p in (process_tree(pid) if tree else [pid]):
        try:
            with open('/proc/%d/smaps_rollup' % p) as f:
                for line in f:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return rss, pss


# Websocket client ----------------------------------------------------------

def masked_frame(payload):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x82, 0x80 | len(payload)]) + mask + masked


async def read_frame(reader):
    head = await reader.readexactly(2)
    length = head[1] & 0x7f
    if length == 126:
        length, = struct.unpack('>H', await reader.readexactly(2))
    elif length == 127:
        length, = struct.unpack('>Q', await reader.readexactly(8))
    return head[0] & 0x0f, await reader.readexactly(length)


class Session:
    """One websocket console client."""

    def __init__(self, port, path, source='127.0.0.1'):
        self.port = port
        self.path = path
        self.source = source
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            '127.0.0.1', self.port, local_addr=(self.source, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((
            'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary'
            '\r\n\r\n' % (self.path, self.port, key)).encode())
        head = await self.reader.readuntil(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 101'):
            reason = await self.reader.read(200)
            raise RuntimeError('%s: %s' % (head.split(b'\r\n')[0].decode(),
                                           reason.decode().strip()))

    async def echo(self, payload):
        """Send payload; read until it comes back (after any history)."""
        self.writer.write(masked_frame(payload))
        received = b''
        while not received.endswith(payload):
            opcode, data = await read_frame(self.reader)
            if opcode == 0x8:
                raise RuntimeError('closed: %r' % data)
            received += data
        return received

    def close(self):
        if self.writer is not None:
            self.writer.close()


class RawSession(Session):
    """Direct TCP to the guest farm: the floor every proxy adds to."""

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            GUEST_ADDRESS, self.port)

    async def echo(self, payload):
        self.writer.write(payload)
        return await self.reader.readexactly(len(payload))


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


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))]


# The world ---------------------------------------------------------------

class BenchCompute:
    """Stands in for compute agents: every console port is still valid."""

    target = messaging.Target(version='1.1')

    def validate_console_port(self, ctxt, instance_uuid, port, index=0):
        return True

    def get_console_output(self, ctxt, instance_uuid, length=None):
        return 'serialproxy-guest booted\nserialproxy-guest# '


class World:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix='sp-bench-', dir=args.state_dir)
        self.procs = []
        self.vhost = 'serialproxy-bench-' + uuid.uuid4().hex[:8]

    def start(self, *cmd, name):
        log = open(os.path.join(self.dir, name + '.log'), 'wb')
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def wait_log(self, name, text, timeout=60):
        deadline = time.monotonic() + timeout
        path = os.path.join(self.dir, name + '.log')
        while time.monotonic() < deadline:
            with open(path, errors='replace') as f:
                if text in f.read():
                    return
            time.sleep(0.2)
        raise RuntimeError('%s did not log %r; see %s' % (name, text, path))

    def setup(self):
        subprocess.run(['rabbitmqctl', '-q', 'add_vhost', self.vhost],
                       check=True)
        subprocess.run(['rabbitmqctl', '-q', 'set_permissions', '-p',
                        self.vhost, 'guest', '.*', '.*', '.*'], check=True)
        self.transport_url = 'rabbit://guest:guest@127.0.0.1:5672/' + \
            self.vhost
        self.guest_ports = [free_port() for _ in range(GUEST_PORTS)]
        self.guest_port = self.guest_ports[0]
        self.proxy_port = free_port()
        self.websockify_port = free_port()
        self.guest_farm = self.start(
            sys.executable, os.path.join(os.path.dirname(__file__),
                                         'guest_farm.py'),
            GUEST_ADDRESS, *map(str, self.guest_ports), name='guest-farm')
        config = configparser.ConfigParser()
        config.read_dict({
            'DEFAULT': {'transport_url': self.transport_url,
                        'state_path': self.dir, 'host': 'bench-proxy'},
            'serial_console': {'serialproxy_host': '127.0.0.1',
                               'serialproxy_port': str(self.proxy_port)},
            # All clients come from 127.0.0.1 here.
            'console': {'max_sessions_per_address': '1000000',
                        'rpc_workers': '64', 'admin_port': '0',
                        'event_loops': str(self.args.event_loops)},
        })
        self.config_file = os.path.join(self.dir, 'bench.conf')
        with open(self.config_file, 'w') as f:
            config.write(f)
        conf = ['--config-file', self.config_file]
        subprocess.run([os.path.join(BIN, 'serialproxy-manage'), *conf,
                        'db', 'sync'], check=True, stdout=subprocess.DEVNULL)
        self.start(os.path.join(BIN, 'serialproxy-consoleauth'), *conf,
                   name='consoleauth')
        self.proxy = self.start(os.path.join(BIN, 'serialproxy-proxy'),
                                *conf, name='proxy')
        self.websockify = self.start(
            os.path.join(BIN, 'websockify'),
            '127.0.0.1:%d' % self.websockify_port,
            '%s:%d' % (GUEST_ADDRESS, self.guest_port), name='websockify')
        for name in ('consoleauth', 'proxy'):
            self.wait_log(name, 'Ready: every service')
        self.wait_log('guest-farm', 'listening')

        from serialproxy import conf as sp_conf
        from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
        from serialproxy import rpc
        sp_conf.CONF([], project='serialproxy',
                     default_config_files=[self.config_file])
        rpc.init(sp_conf.CONF)
        self.compute_server = rpc.get_server(
            messaging.Target(topic='serialproxy-compute',
                             server=COMPUTE_HOST), [BenchCompute()])
        self.compute_server.start()
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()

    def issue_tokens(self, count):
        """One token per console, each a distinct instance on the farm."""
        def one(i):
            return self.consoleauth.authorize_console(
                {}, str(uuid.uuid4()), COMPUTE_HOST, GUEST_ADDRESS,
                self.guest_ports[i % len(self.guest_ports)], index=0)
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            return list(pool.map(one, range(count)))

    def teardown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if getattr(self, 'compute_server', None) is not None:
            self.compute_server.stop()
            self.compute_server.wait()
        subprocess.run(['rabbitmqctl', '-q', 'delete_vhost', self.vhost],
                       stdout=subprocess.DEVNULL)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


async def measure(world, args):
    results = {}

    # Direct TCP: the latency floor.
    raw = RawSession(world.guest_port, None)
    await raw.open()
    results['direct_rtt'] = await round_trips(raw)
    raw.close()

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
        'setup': ws_setup,
        'rtt': await round_trips(ws_sessions[0]) if ws_sessions else []}
    for session in ws_sessions:
        session.close()

    # serialproxy: every session in one process.
    started = time.perf_counter()
    tokens = world.issue_tokens(args.sessions)
    results['token_seconds'] = time.perf_counter() - started
    idle = memory_kib(world.proxy.pid)
    started = time.perf_counter()
    sessions, failures, setup = await open_many(
        lambda i: Session(world.proxy_port, '/?token=' + tokens[i],
                          CLIENT_ADDRESSES[i % len(CLIENT_ADDRESSES)]),
        args.sessions, args.concurrency)
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(args.hold)
    held = memory_kib(world.proxy.pid)
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
        'alive_checked': alive,
        'alive_sampled': len(sessions[::max(1, len(sessions) // 200)]),
        'rtt': await round_trips(sessions[0]) if sessions else []}
    for session in sessions:
        session.close()
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
        'serialproxy: %d of %d sessions held in one process, %d session '
        'loop(s) (%d failed, e.g. %s); %d/%d sampled still echo after %ss'
        % (sp['sessions'], args.sessions, args.event_loops, sp['failures'],
            sp['failure_sample'] or '-', sp['alive_checked'],
            sp['alive_sampled'], args.hold),
        '  opened in %.1fs (%.0f sessions/s); setup p50 %.1f ms, '
        'p99 %.1f ms; tokens issued in %.1fs' % (
            sp['open_seconds'], sp['sessions'] / max(sp['open_seconds'],
                                                     1e-9),
            percentile(sp['setup'], .5) * 1e3,
            percentile(sp['setup'], .99) * 1e3, results['token_seconds']),
        '  proxy RSS %d -> %d KiB, PSS %d -> %d KiB: %.1f KiB RSS, '
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
        'round trip, 16 bytes, p50 (p99) microseconds:',
        '  direct TCP   %7.0f (%.0f)' % (
            direct, percentile(results['direct_rtt'], .99) * 1e6),
    ]
    for name, stats in (('websockify', ws), ('serialproxy', sp)):
        if stats['rtt']:
            median = statistics.median(stats['rtt']) * 1e6
            lines.append('  %-12s %7.0f (%.0f)  %.1fx direct TCP' % (
                name, median, percentile(stats['rtt'], .99) * 1e6,
                median / direct))
    print('\n'.join(lines))


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
    parser.add_argument('--state-dir', default='/dev/shm',
                        help='where the SQLite database and logs go; '
                             'tmpfs keeps disk latency out of the figures')
    parser.add_argument('--keep', action='store_true',
                        help='keep the logs and database')
    parser.add_argument('--event-loops', type=int, default=0,
                        help='[console] event_loops of the proxy; 0: as '
                             'many as the hard open-files limit needs')
    args = parser.parse_args()
    raise_open_files_limit()
    if not args.event_loops:
        args.event_loops = event_loops_needed(args.sessions)
    world = World(args)
    try:
        world.setup()
        results = asyncio.run(measure(world, args))
        report(results, args)
    finally:
        world.teardown()
    if results['serialproxy']['sessions'] < args.sessions:
        sys.exit('not every session opened')


if __name__ == '__main__':
    main()
