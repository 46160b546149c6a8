"""TLS on the proxy's listener, as Nova's proxy offers it.

With a certificate the port speaks TLS, and also plain HTTP: the first
byte a client sends tells which (a TLS ClientHello starts with 0x16, an
HTTP request with a letter). Under ssl_only the connection's protocol
refuses a plain connection (connections.ClientConnection), so that the
refusal is logged and counted as every other one is.
"""

import asyncio
import socket
import ssl

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

TLS_HANDSHAKE_RECORD = b'\x16'
# How often a full loop looks again for room to accept.
ROOM_POLL_SECONDS = 0.05

_MINIMUM_VERSIONS = {
    'tlsv1_1': ssl.TLSVersion.TLSv1_1,
    'tlsv1_2': ssl.TLSVersion.TLSv1_2,
    'tlsv1_3': ssl.TLSVersion.TLSv1_3,
}


class TLSConfigInvalid(Exception):
    pass


def server_context(cert, key=None, minimum_version='default',
                   ciphers=None):
    """An SSLContext for the listener, or a clear start-up error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigInvalid('cannot load certificate %s (key %s): %s'
                               % (cert, key or 'in the same file', exc))
    if minimum_version != 'default':
        context.minimum_version = _MINIMUM_VERSIONS[minimum_version]
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TLSConfigInvalid('invalid ssl_ciphers %r: %s'
                                   % (ciphers, exc))
    return context


def listening_socket(host, port):
    """A bound, listening, non-blocking TCP socket.

    Opened before the worker processes start, so that they all accept
    from it.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class SniffingListener:
    """Accepts connections and starts each as TLS or plain, by peeking.

    Without a context every connection is plain. has_room(starting), when
    given, is asked before each accept with the number of connections
    accepted but not yet handed to their protocol: a worker that is full
    leaves the next connection to the other workers accepting from the
    same socket.
    """

    def __init__(self, protocol_factory, context, first_byte_timeout,
                 has_room=None):
        self.protocol_factory = protocol_factory
        self.context = context
        self.first_byte_timeout = first_byte_timeout
        self.has_room = has_room
        self.starting = 0
        self._handing_over = set()
        self.sock = None
        self._task = None

    def serve(self, sock):
        """Accept from an already listening socket, on the running loop."""
        sock.setblocking(False)
        self.sock = sock
        self._task = asyncio.get_running_loop().create_task(
            self._accept_forever())

    @property
    def sockets(self):
        return [self.sock]

    def is_serving(self):
        return self._task is not None and not self._task.done()

    def close(self):
        if self._task is not None:
            self._task.cancel()
        # Connections not yet handed to a protocol are closed now.
        for task in self._handing_over:
            task.cancel()
        if self.sock is not None:
            self.sock.close()

    async def _accept_forever(self):
        loop = asyncio.get_running_loop()
        while True:
            while self.has_room is not None and \
                    not self.has_room(self.starting):
                await asyncio.sleep(ROOM_POLL_SECONDS)
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError as exc:
                LOG.warning('accept() failed: %s', exc)
                await asyncio.sleep(0.1)
                continue
            self.starting += 1
            task = loop.create_task(self._start_connection(conn))
            self._handing_over.add(task)
            task.add_done_callback(self._handing_over.discard)

    async def _start_connection(self, conn):
        try:
            await self._hand_over(conn)
        except BaseException:
            # Not handed over (cancelled, or a bug): close it now.
            conn.close()
            raise
        finally:
            self.starting -= 1

    async def _hand_over(self, conn):
        loop = asyncio.get_running_loop()
        if self.context is None:
            try:
                await loop.connect_accepted_socket(self.protocol_factory,
                                                   conn)
            except OSError as exc:
                LOG.info('Accepted connection lost at once: %s', exc)
                conn.close()
            return
        try:
            first = await asyncio.wait_for(self._peek(loop, conn),
                                           self.first_byte_timeout)
        except (asyncio.TimeoutError, OSError):
            conn.close()
            return
        is_tls = first == TLS_HANDSHAKE_RECORD
        tls_args = {'ssl': self.context,
                    'ssl_handshake_timeout': self.first_byte_timeout} \
            if is_tls else {}
        try:
            await loop.connect_accepted_socket(self.protocol_factory, conn,
                                               **tls_args)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            LOG.info('TLS handshake failed: %s', exc)
            conn.close()

    @staticmethod
    async def _peek(loop, conn):
        readable = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: readable.done() or
                        readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
        return conn.recv(1, socket.MSG_PEEK)
