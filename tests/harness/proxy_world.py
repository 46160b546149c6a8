"""A real proxy and consoleauth over RabbitMQ, with stand-in guests.

What tests of the proxy's data path and of its worker processes share:
serialproxy-consoleauth and serialproxy-proxy run as their own processes
over a RabbitMQ vhost of their own; the test process stands in only for
the compute agent (an RPC server answering validate_console_port and
get_console_output, as the benchmarks' world does) and for the
guests' serial ports (TCP servers whose every connection is handed to the
test), and talks to the proxy as a raw websocket client whose frames it
builds and masks itself.

Tokens are issued through consoleauth's own RPC API and never printed:
nothing here puts a token or a console URL into an exception or a detail.
"""

import base64
import os
import socket
import struct
import threading
import uuid

import numpy
from oslo_config import fixture as config_fixture
import oslo_messaging as messaging
import fixtures

from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import rpc
from tests.harness import fixtures as func_fixtures
from tests.harness import measures

GUEST_HOST = '127.0.0.1'
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA


# Processes ----------------------------------------------------------------

tree_rss_kib = measures.tree_rss_kib


def socket_inodes(pid):
    """Inodes of the sockets a process has open."""
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_inode(local_port, remote_port):
    """Inode of the IPv4 TCP socket local_port -> remote_port, or None."""
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            fields = line.split()
            local = int(fields[1].split(':')[1], 16)
            remote = int(fields[2].split(':')[1], 16)
            if (local, remote) == (local_port, remote_port):
                return int(fields[9])
    return None


def worker_of(client, proxy_port, workers):
    """Which worker pid holds the proxy's end of a client's connection."""
    inode = tcp_inode(proxy_port, client.sock.getsockname()[1])
    if inode is None:
        return None
    holders = [pid for pid in workers if inode in socket_inodes(pid)]
    return holders[0] if len(holders) == 1 else None


# The compute agent and the guests ----------------------------------------

class StandInCompute:
    """Answers for a compute agent: every console port is still there.

    console: where get_serial_console says every console is ({'host',
    'port'}); output: every guest's console log. None by default: the
    proxy then sends no history before live output, and the first byte a
    client gets is the guest's.
    """

    target = messaging.Target(version='1.2')

    def __init__(self, console=None, output=''):
        self.console = console
        self.output = output

    def validate_console_port(self, ctxt, instance_uuid, port, index=0):
        return True

    def get_serial_console(self, ctxt, instance_uuid, index=0):
        return dict(self.console, index=index)

    def get_console_output(self, ctxt, instance_uuid, length=None):
        return self.output

    def get_console_outputs(self, ctxt, instance_uuids, length=None):
        return [{'value': self.output}] * len(instance_uuids)


class GuestPort(fixtures.Fixture):
    """A guest's serial port: a TCP server in the test process.

    Every connection the proxy makes is handed to handler(sock) in a
    thread of its own; the socket is closed when the handler returns.
    """

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0

    def _setUp(self):
        self.listener = socket.socket()
        self.listener.bind((GUEST_HOST, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._socks = []
        self._threads = []
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()
        self.addCleanup(self._stop)

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed by _stop
            self.connections += 1
            self._socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,),
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock):
        try:
            self.handler(sock)
        except OSError:
            pass  # the proxy went away: tests assert on what they saw
        finally:
            sock.close()

    def _stop(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(10)
        for thread in self._threads:
            thread.join(10)


def echo(sock):
    """An echoing serial port: a shell with echo on, minus the shell."""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(data)


class ProxyWorld(fixtures.Fixture):
    """consoleauth and a proxy of `workers` processes over RabbitMQ."""

    def __init__(self, workers=2, lease_ttl=30, options=None):
        self.workers = workers
        self.lease_ttl = lease_ttl
        self.options = options or {}

    def _setUp(self):
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        options = {
            'consoleauth': {'session_lease_ttl': self.lease_ttl},
            # Every client of a test comes from 127.0.0.1.
            'console': {'workers': self.workers,
                        'max_sessions_per_address': 1000,
                        'admin_port': 0},
        }
        for section, values in self.options.items():
            options.setdefault(section, {}).update(values)
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, options=options))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        self.deployment.start('serialproxy-consoleauth')
        self.proxy = self.deployment.start('serialproxy-proxy')
        self.port = self.deployment.proxy_port

        conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        conf.config(rpc_call_timeout=30)
        rpc.init(sp_conf.CONF, transport_url=vhost.url)
        self.addCleanup(rpc.cleanup)
        self.compute_server = rpc.get_server(
            messaging.Target(topic='serialproxy-compute',
                             server=self.deployment.host),
            [StandInCompute()])
        self.compute_server.start()
        self.addCleanup(self.compute_server.wait)
        self.addCleanup(self.compute_server.stop)
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()
        self._instances = {}
        self._registry_lock = threading.Lock()
        self.deployment.wait_ready()

    def worker_pids(self):
        return func_fixtures.children(self.proxy.pid)

    def expect_log_error(self, pattern, reason, label=None):
        """An error a service logs because the test makes it happen."""
        self.deployment.expect_log_error(pattern, reason, label)

    def token(self, guest_port):
        """A token for a console of its own at guest_port.

        A port of a host is one instance's, so each stand-in guest port
        is one instance whose every token is another serial index (its
        own console, its own lease). The stand-in agent reports the
        instance with them first, as a compute agent does: the lease
        checks a token's port against that report.
        """
        with self._registry_lock:
            instance = self._instances.setdefault(guest_port, {
                'uuid': str(uuid.uuid4()), 'state': 'running',
                'name': 'guest-%d' % guest_port, 'consoles': []})
            index = len(instance['consoles'])
            instance['consoles'].append({'index': index, 'port': guest_port})
            self.consoleauth.instance_event({}, self.deployment.host,
                                            'started', instance)
        return self.consoleauth.authorize_console(
            {}, instance['uuid'], self.deployment.host, GUEST_HOST,
            guest_port, index=index)

    def connect(self, token, timeout=30, source=None):
        return WebSocketClient(self.port, token, timeout, source=source)


# A websocket client -----------------------------------------------------

class Refused(Exception):
    """The proxy answered the upgrade with something other than 101."""

    def __init__(self, status, body):
        super().__init__('refused with %d: %s' % (status, body))
        self.status = status
        self.body = body


class Closed(Exception):
    """The websocket ended: a close frame (code, reason) or EOF (None)."""

    def __init__(self, code, reason):
        super().__init__('websocket closed: %s %s' % (code, reason))
        self.code = code
        self.reason = reason


def mask(payload, key):
    """payload XOR the 4-byte key repeated (RFC 6455 5.3), with numpy."""
    size = len(payload)
    padded = numpy.zeros(-(-size // 4) * 4, dtype=numpy.uint8)
    padded[:size] = numpy.frombuffer(payload, dtype=numpy.uint8)
    words = padded.view(numpy.uint32)
    words ^= numpy.frombuffer(key, dtype=numpy.uint32)[0]
    return padded[:size].tobytes()


def frame(payload, opcode=OPCODE_BINARY):
    """One masked client frame, FIN set."""
    size = len(payload)
    if size < 126:
        head = struct.pack('!BB', 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack('!BBH', 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack('!BBQ', 0x80 | opcode, 0x80 | 127, size)
    key = os.urandom(4)
    return b''.join((head, key, mask(payload, key)))


def _header(buf, pos):
    """(opcode, header length, payload length) at pos, or None."""
    available = len(buf) - pos
    if available < 2:
        return None
    opcode, length = buf[pos] & 0x0f, buf[pos + 1] & 0x7f
    if buf[pos + 1] & 0x80:
        raise AssertionError('the proxy sent a masked frame')
    if length == 126:
        if available < 4:
            return None
        return opcode, 4, struct.unpack_from('!H', buf, pos + 2)[0]
    if length == 127:
        if available < 10:
            return None
        return opcode, 10, struct.unpack_from('!Q', buf, pos + 2)[0]
    return opcode, 2, length


class WebSocketClient:
    """A console client: raw socket, frames built and parsed here."""

    def __init__(self, port, token, timeout=30, source=None):
        self.sock = socket.create_connection(
            ('127.0.0.1', port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
            'Upgrade: websocket\r\nConnection: Upgrade\r\n'
            'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
            'Sec-WebSocket-Protocol: binary\r\n\r\n'
            % (token, port, key)).encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.sock.close()
                raise Closed(None, 'EOF before the handshake answer')
            data += chunk
        head, rest = data.split(b'\r\n\r\n', 1)
        status = int(head.split(b' ', 2)[1])
        if status != 101:
            try:
                while chunk := self.sock.recv(65536):
                    rest += chunk
            except OSError:
                pass
            self.sock.close()
            raise Refused(status, rest.decode(errors='replace').strip())
        self.buf = bytearray(rest)

    def close(self):
        self.sock.close()

    def send(self, payload):
        self.sock.sendall(frame(payload))

    def pump(self, on_payload, bufsize=1 << 20):
        """One recv(); each whole frame's payload to on_payload(view).

        The view is only valid during the call. Returns the bytes read;
        raises Closed at a close frame or EOF.
        """
        chunk = self.sock.recv(bufsize)
        if not chunk:
            raise Closed(None, 'EOF')
        self.buf += chunk
        self._parse(on_payload)
        return len(chunk)

    def _parse(self, on_payload):
        buf, pos, closed = self.buf, 0, None
        with memoryview(buf) as view:
            while closed is None:
                header = _header(buf, pos)
                if header is None:
                    break
                opcode, head_length, length = header
                end = pos + head_length + length
                if end > len(buf):
                    break
                payload = view[pos + head_length:end]
                if opcode == OPCODE_CLOSE:
                    code = struct.unpack('!H', payload[:2])[0] \
                        if length >= 2 else None
                    closed = Closed(code, bytes(payload[2:]).decode())
                elif opcode == OPCODE_PING:
                    self.sock.sendall(frame(bytes(payload), OPCODE_PONG))
                elif opcode != OPCODE_PONG:
                    on_payload(payload)
                payload.release()
                pos = end
        del buf[:pos]
        if closed is not None:
            raise closed

    def receive(self, size):
        """Exactly size bytes of console output (for small amounts)."""
        data = bytearray()
        while len(data) < size:
            self.pump(data.extend, 65536)
        if len(data) > size:
            raise AssertionError('%d bytes more than the %d expected'
                                 % (len(data) - size, size))
        return bytes(data)
