"""A TCP listener that learns, from a trusted load balancer's PROXY
protocol header, who each client is, before the connection's own protocol
reads a byte.

The SSH listener uses it: SSH passes through the balancer as TCP, so
without the header every client has the balancer's address. The header
is read from [console] trusted_proxies only, exactly (never a byte of
what follows it), within a time limit; a trusted peer that sends none, or
a malformed or oversized one, is closed. Any other peer's connection is
handed over at once, untouched.
"""

import asyncio
import socket

from oslo_log import log as logging

from serialproxy.proxy import proxy_protocol

LOG = logging.getLogger(__name__)

BACKLOG = 4096


class ProxiedListener:
    """Accepts on host:port; hands each connection to
    accepted(sock, source), source a proxy_protocol.Source or None."""

    def __init__(self, accepted, trusted_proxies, header_timeout):
        self.accepted = accepted
        self.trusted_proxies = trusted_proxies
        self.header_timeout = header_timeout
        self.sockets = []
        self._tasks = set()

    async def start(self, host, port):
        """Listen on every address of host; each process of a proxy binds
        its own socket on the same port (SO_REUSEPORT)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        # getaddrinfo may repeat an address (one per protocol).
        for family, type_, proto, address in dict.fromkeys(
                (info[0], info[1], info[2], info[4]) for info in infos):
            sock = socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6,
                                    socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
            except OSError:
                sock.close()
                self.close()
                raise
            self.sockets.append(sock)
            self._spawn(self._accept_forever(sock))

    def close(self):
        for task in list(self._tasks):
            task.cancel()
        for sock in self.sockets:
            sock.close()

    def _spawn(self, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_forever(self, listening):
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(listening)
            except OSError as exc:
                LOG.warning('accept() failed: %s', exc)
                await asyncio.sleep(0.1)
                continue
            if peer[0] in self.trusted_proxies:
                self._spawn(self._read_header(sock, peer))
            else:
                self._hand_over(sock, None)

    async def _read_header(self, sock, peer):
        try:
            source = await asyncio.wait_for(read_header(sock),
                                            self.header_timeout)
        except (proxy_protocol.InvalidHeader, OSError,
                asyncio.TimeoutError, EOFError) as exc:
            LOG.info('Closed a connection from trusted proxy %s: no valid '
                     'PROXY protocol header (%s)', peer[0],
                     exc or type(exc).__name__)
            sock.close()
            return
        except asyncio.CancelledError:
            sock.close()  # the listener is closing
            raise
        self._hand_over(sock, source)

    def _hand_over(self, sock, source):
        try:
            self.accepted(sock, source)
        except Exception:
            LOG.exception('Handing over a connection failed')
            sock.close()


async def read_header(sock):
    """The PROXY protocol header at the start of sock, read exactly."""
    loop = asyncio.get_running_loop()
    data = b''
    while True:
        chunk = await loop.sock_recv(sock, proxy_protocol.wanted(data))
        if not chunk:
            raise EOFError('connection closed in the header')
        data += chunk
        parsed = proxy_protocol.parse(data)
        if parsed is not None:
            return parsed[0]
