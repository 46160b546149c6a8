"""What the proxy benchmarks share: the world they run in, and its clients.

A real serialproxy-consoleauth and serialproxy-proxy over RabbitMQ (a
vhost of their own), stock websockify as a process, "guest" serial ports
served by a script of the benchmark's choosing (guest_farm.py echoes,
guest_stream.py sinks and sources bulk data), and raw websocket clients.
Only the compute agent is stood in for (proxy_world.StandInCompute:
validate_console_port answers yes).

Not a benchmark itself: tools/bench's proxy benchmarks import it.
"""

import asyncio
import base64
import concurrent.futures
import configparser
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid

from sqlalchemy.engine import url as sa_url
import oslo_messaging as messaging

from tests.harness import processes
from tests.harness import proxy_world
from tests.harness import services

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


# Websocket client ----------------------------------------------------------

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
        return proxy_world.frame(payload)

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

# What the stand-in compute agent says every guest printed.
GUEST_OUTPUT = 'serialproxy-guest booted\nserialproxy-guest# '


class World:
    """RabbitMQ vhost, consoleauth, proxy, websockify, guests; torn down.

    guest: the script serving the guest ports (it is given the address and
    the ports, and must print "listening" when ready). workers: the
    proxy's [console] workers; 0 leaves the proxy's default.
    compute_class: the stand-in compute agent (self.compute once set up).
    """

    compute_class = proxy_world.StandInCompute

    def __init__(self, args, guest='guest_farm.py', guest_ports=GUEST_PORTS):
        self.args = args
        self.guest_script = os.path.join(HERE, guest)
        self.guest_count = guest_ports
        self.dir = tempfile.mkdtemp(prefix='sp-bench-', dir=args.state_dir)
        # The benchmark's services, checked as a test's are at teardown.
        self.services = services.Services(self.dir)
        self.services.setUp()
        self.vhost = 'serialproxy-bench-' + uuid.uuid4().hex[:8]
        # The instance of each guest port, as the stand-in agent reports it.
        self.instances = {}

    def start(self, *cmd, name):
        return self.services.start(name, cmd)

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
        self.guest_ports = [processes.free_port()
                            for _ in range(self.guest_count)]
        self.guest_port = self.guest_ports[0]
        self.proxy_port = processes.free_port()
        self.websockify_port = processes.free_port()
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
            self.ssh_port = processes.free_port()
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
        self.compute = compute = self.compute_class(
            console={'host': GUEST_ADDRESS, 'port': self.guest_port},
            output=GUEST_OUTPUT)
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
        """Stop everything; what a service left behind (a traceback, an
        unclean exit) is printed: a figure measured beside it is suspect.
        """
        try:
            self.services.cleanUp()
        except services.ServiceProblems as exc:
            print('WARNING: %s' % exc, file=sys.stderr)
        if getattr(self, 'compute_server', None) is not None:
            self.compute_server.stop()
            self.compute_server.wait()
        subprocess.run(['rabbitmqctl', '-q', 'delete_vhost', self.vhost],
                       stdout=subprocess.DEVNULL)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
