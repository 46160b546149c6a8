"""The proxy-to-proxy relay that carries a console's output to spectators.

Only one connection reaches a guest's serial port (QEMU serves one
client), held by the proxy worker of the console's writer. Each worker
listens on [console] relay_host at an ephemeral port; the writer's lease
in consoleauth records that address and a random relay key. A spectator
(mode=view), whichever proxy or worker it lands on, gets both from
consoleauth's join_session, connects to the relay and sends the key on
one line; from then on the relay connection is the spectator's "guest":
the writer's worker copies every chunk of output to it. Nothing is ever
read back from a spectator but its closing.

The same path serves spectators on the writer's own worker, so there is
one way output reaches spectators. A relay connection whose reader falls
behind by more than its buffer is dropped; the spectator's own proxy
closes its browser with 4007 the same way when the browser falls behind.
"""

import asyncio

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# The key line: a token-sized secret and a newline.
MAX_PREAMBLE = 128
# Seconds a relay connection gets to send its key.
PREAMBLE_TIMEOUT = 5.0


def preamble(relay_key):
    return relay_key.encode('ascii') + b'\n'


async def start(proxy, host):
    """Listen for relay connections; returns the server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: RelayWatcher(proxy), host, 0)


def address_of(server):
    host, port = server.sockets[0].getsockname()[:2]
    return '%s:%d' % (host, port)


def split_address(address):
    host, _, port = address.rpartition(':')
    return host.strip('[]'), int(port)


class RelayWatcher(asyncio.Protocol):
    """One spectator's copy of a writer's output, on the writer's side."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.transport = None
        self.writer = None
        self._line = b''
        self._timer = None

    def connection_made(self, transport):
        self.transport = transport
        self._timer = asyncio.get_running_loop().call_later(
            PREAMBLE_TIMEOUT, transport.abort)

    def data_received(self, data):
        if self.writer is not None:
            return  # a spectator's keys never reach the guest
        self._line += data
        if b'\n' not in self._line:
            if len(self._line) > MAX_PREAMBLE:
                self.transport.abort()
            return
        self._timer.cancel()
        key = self._line.split(b'\n', 1)[0].decode('ascii', 'replace')
        self._line = b''
        writer = self.proxy.relay_keys.get(key)
        if writer is None or not writer.session.is_open:
            # The writer left (or was taken over) before the spectator
            # arrived; never say which key was asked for.
            self.transport.close()
            return
        self.writer = writer
        writer.add_watcher(self)

    def send(self, data, limit):
        """Copy output; a watcher too far behind is dropped, never waited
        for."""
        transport = self.transport
        if transport.get_write_buffer_size() > limit:
            LOG.info('Dropped a spectator relay that fell %d bytes behind',
                     transport.get_write_buffer_size())
            transport.abort()
            return
        transport.write(data)

    def close(self):
        self.transport.close()

    def connection_lost(self, exc):
        if self._timer is not None:
            self._timer.cancel()
        if self.writer is not None:
            self.writer.remove_watcher(self)
            self.writer = None
