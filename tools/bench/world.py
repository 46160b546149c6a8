"""What the proxy benchmarks share: the world they run in, and its clients.

A real serialproxy-consoleauth and serialproxy-proxy over RabbitMQ (a
vhost of their own), stock websockify as a process, "guest" serial ports
served by a script of the benchmark's choosing (guest_farm.py echoes,
guest_stream.py sinks and sources bulk data), and raw websocket clients.
Only the compute agent is stood in for (BenchCompute: validate_console_port
answers yes).

Not a benchmark itself: proxy_sessions.py and throughput.py import it.
"""

import asyncio
import base64
import concurrent.futures
import configparser
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid

import numpy
from sqlalchemy.engine import url as sa_url
import oslo_messaging as messaging

BIN = os.path.dirname(sys.executable)
HERE = os.path.dirname(os.path.abspath(__file__))
COMPUTE_HOST = 'bench-compute'
# The guests listen here, on several ports as guests would; clients reach
# the proxies from many loopback addresses, as real clients come from many
# hosts. One source and one destination would run loopback out of
# ephemeral ports near 10,000 connections: a limit of the bench, not of
# the proxy.
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


def workers_needed(sessions):
    """Proxy processes the hard open-files limit needs for sessions.

    Each session holds two descriptors in the process that serves it, and
    every process keeps admission.RESERVED_FILES back.
    """
    from serialproxy.proxy import admission
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_process = max(1, (hard - admission.RESERVED_FILES) // 2)
    return max(1, -(-sessions // per_process))


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def add_world_arguments(parser, workers_help):
    parser.add_argument('--state-dir', default='/dev/shm',
                        help='where the SQLite database and logs go; '
                             'tmpfs keeps disk latency out of the figures')
    parser.add_argument('--keep', action='store_true',
                        help='keep the logs and database')
    parser.add_argument('--workers', type=int, default=0,
                        help=workers_help)
    parser.add_argument('--database-url', default=None,
                        help='[database] connection of consoleauth (an '
                             'empty database); default: SQLite in the '
                             'state directory')


# Processes ---------------------------------------------------------------

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


def cpu_seconds(pid, tree=False):
    """User plus system CPU time of a process, or of its live tree."""
    ticks = 0
    for p in (process_tree(pid) if tree else [pid]):
        try:
            with open('/proc/%d/stat' % p) as f:
                # The command name may hold spaces: fields follow its ')'.
                fields = f.read().rsplit(')', 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def machine_busy_seconds():
    """CPU time every core of the machine has spent not idle."""
    with open('/proc/stat') as f:
        jiffies = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest: in user)
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / \
        os.sysconf('SC_CLK_TCK')


# Websocket client ----------------------------------------------------------

def mask(payload, key):
    """payload XOR the 4-byte key, as a client masks (numpy: no byte loop)."""
    data = numpy.frombuffer(payload, numpy.uint8)
    return (data ^ numpy.resize(numpy.frombuffer(key, numpy.uint8),
                                len(data))).tobytes()


def masked_frame(payload):
    """One binary frame, masked with a fresh key, as a browser sends it."""
    key = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes([0x82, 0x80 | length])
    elif length < 65536:
        head = struct.pack('>BBH', 0x82, 0x80 | 126, length)
    else:
        head = struct.pack('>BBQ', 0x82, 0x80 | 127, length)
    return head + key + mask(payload, key)


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

    # asyncio.StreamReader's buffer limit; bulk readers want more.
    limit = 2 ** 16

    def __init__(self, port, path, source='127.0.0.1'):
        self.port = port
        self.path = path
        self.source = source
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            '127.0.0.1', self.port, local_addr=(self.source, 0),
            limit=self.limit)
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

    def wire(self, payload):
        """The bytes that carry payload to the guest."""
        return masked_frame(payload)

    def send(self, payload):
        self.writer.write(self.wire(payload))

    async def receive(self):
        """The next payload from the guest (a frame's)."""
        opcode, data = await read_frame(self.reader)
        if opcode == 0x8:
            raise RuntimeError('closed: %r' % data)
        return data

    async def echo(self, payload):
        """Send payload; read until it comes back (after any history)."""
        self.send(payload)
        received = b''
        while not received.endswith(payload):
            received += await self.receive()
        return received

    def close(self):
        if self.writer is not None:
            self.writer.close()


class RawSession(Session):
    """Direct TCP to the guest: the floor every proxy adds to."""

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            GUEST_ADDRESS, self.port, limit=self.limit)

    def wire(self, payload):
        return payload

    async def receive(self):
        data = await self.reader.read(self.limit)
        if not data:
            raise RuntimeError('closed')
        return data

    async def echo(self, payload):
        self.send(payload)
        return await self.reader.readexactly(len(payload))


# The world ---------------------------------------------------------------

class BenchCompute:
    """Stands in for compute agents: every console port is still valid."""

    target = messaging.Target(version='1.2')
    output = 'serialproxy-guest booted\nserialproxy-guest# '

    # Where get_serial_console says every console is (set by the world).
    console = None

    def validate_console_port(self, ctxt, instance_uuid, port, index=0):
        return True

    def get_serial_console(self, ctxt, instance_uuid, index=0):
        return dict(self.console, index=index)

    def get_console_output(self, ctxt, instance_uuid, length=None):
        return self.output

    def get_console_outputs(self, ctxt, instance_uuids, length=None):
        return [{'value': self.output}] * len(instance_uuids)


class World:
    """RabbitMQ vhost, consoleauth, proxy, websockify, guests; torn down.

    guest: the script serving the guest ports (it is given the address and
    the ports, and must print "listening" when ready). workers: the
    proxy's [console] workers; 0 leaves the proxy's default.
    """

    def __init__(self, args, guest='guest_farm.py', guest_ports=GUEST_PORTS):
        self.args = args
        self.guest_script = os.path.join(HERE, guest)
        self.guest_count = guest_ports
        self.dir = tempfile.mkdtemp(prefix='sp-bench-', dir=args.state_dir)
        self.procs = []
        self.vhost = 'serialproxy-bench-' + uuid.uuid4().hex[:8]
        # The instance of each guest port, as the stand-in agent reports it.
        self.instances = {}

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
        self.guest_ports = [free_port() for _ in range(self.guest_count)]
        self.guest_port = self.guest_ports[0]
        self.proxy_port = free_port()
        self.websockify_port = free_port()
        self.guest = self.start(
            sys.executable, self.guest_script, GUEST_ADDRESS,
            *map(str, self.guest_ports), name='guest')
        console = {'max_sessions_per_address': '1000000',
                   'rpc_workers': '64', 'admin_port': '0'}
        if self.args.workers:
            console['workers'] = str(self.args.workers)
        config = configparser.ConfigParser()
        config.read_dict({
            'DEFAULT': {'transport_url': self.transport_url,
                        'state_path': self.dir, 'host': 'bench-proxy'},
            'serial_console': {'serialproxy_host': '127.0.0.1',
                               'serialproxy_port': str(self.proxy_port)},
            # All clients come from a few loopback addresses here.
            'console': console,
        })
        self.database_backend = 'sqlite'
        if getattr(self.args, 'database_url', None):
            self.database_backend = sa_url.make_url(
                self.args.database_url).get_backend_name()
            config.read_dict({'database': {
                'connection': self.args.database_url}})
        self.ssh_port = None
        if getattr(self.args, 'ssh', False):
            self.ssh_port = free_port()
            config.read_dict({'ssh': {
                'enabled': 'true', 'listen_host': '127.0.0.1',
                'listen_port': str(self.ssh_port),
                'max_auth_attempts_per_minute': '1000'}})
        self.config_file = os.path.join(self.dir, 'bench.conf')
        with open(self.config_file, 'w') as f:
            config.write(f)
        conf = ['--config-file', self.config_file]
        subprocess.run([os.path.join(BIN, 'serialproxy-manage'), *conf,
                        'db', 'sync'], check=True, stdout=subprocess.DEVNULL)
        self.consoleauth_process = self.start(
            os.path.join(BIN, 'serialproxy-consoleauth'), *conf,
            name='consoleauth')
        self.proxy = self.start(os.path.join(BIN, 'serialproxy-proxy'),
                                *conf, name='proxy')
        self.websockify = self.start(
            os.path.join(BIN, 'websockify'),
            '127.0.0.1:%d' % self.websockify_port,
            '%s:%d' % (GUEST_ADDRESS, self.guest_port), name='websockify')
        for name in ('consoleauth', 'proxy'):
            self.wait_log(name, 'Ready: every service')
        self.wait_log('guest', 'listening')

        from serialproxy import conf as sp_conf
        from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
        from serialproxy import rpc
        sp_conf.CONF([], project='serialproxy',
                     default_config_files=[self.config_file])
        rpc.init(sp_conf.CONF)
        compute = BenchCompute()
        compute.console = {'host': GUEST_ADDRESS, 'port': self.guest_port}
        self.compute_server = rpc.get_server(
            messaging.Target(topic='serialproxy-compute',
                             server=COMPUTE_HOST), [compute])
        self.compute_server.start()
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()

    def issue_tokens(self, count):
        """One token per console, each a serial index of its own on one
        of the guest ports. A port of a host is one instance's, and the
        lease checks a token's port against the registry: the stand-in
        agent reports each guest port's instance with its consoles first.
        """
        consoles = []
        for i in range(count):
            port = self.guest_ports[i % len(self.guest_ports)]
            instance = self.instances.setdefault(port, {
                'uuid': str(uuid.uuid4()), 'name': 'bench-%d' % port,
                'state': 'running', 'consoles': []})
            consoles.append((instance['uuid'], port,
                             len(instance['consoles'])))
            instance['consoles'].append({'index': consoles[-1][2],
                                         'port': port})
        for instance in self.instances.values():
            self.consoleauth.instance_event({}, COMPUTE_HOST, 'started',
                                            instance)

        def one(i):
            instance_uuid, port, index = consoles[i]
            return self.consoleauth.authorize_console(
                {}, instance_uuid, COMPUTE_HOST, GUEST_ADDRESS, port,
                index=index)
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
