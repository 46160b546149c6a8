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
import struct

from oslo_log import log as logging

from serialproxy.proxy.close_codes import CloseCode

LOG = logging.getLogger(__name__)

# Relay records: output is b'D' + length + bytes; the writer's end is
# b'E' + close code + length + reason, so that spectators end with what
# ended the writer (an operator's 4001 reaches them before the cast).
_OUTPUT = b'D'
_END = b'E'
_LENGTH = struct.Struct('>I')
_END_HEAD = struct.Struct('>HI')
# Writer's close codes spectators end with too; any other end of the
# writer (it left, was taken over) is "nothing more to watch".
SHARED_ENDS = frozenset((CloseCode.OPERATOR_DISCONNECT,
                         CloseCode.CONSOLE_GONE, CloseCode.GOING_AWAY,
                         CloseCode.ACCESS_DISABLED))

# The key line: a token-sized secret and a newline.
MAX_PREAMBLE = 128
# Seconds a relay connection gets to send its key.
PREAMBLE_TIMEOUT = 5.0


def preamble(relay_key):
    return relay_key.encode('ascii') + b'\n'


async def start(registry, host):
    """Listen for relay connections; returns the server. registry: the
    process's registry.ConnectionRegistry, where writers are found."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: RelayWatcher(registry), host, 0)


def address_of(server):
    host, port = server.sockets[0].getsockname()[:2]
    return ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)


def split_address(address):
    host, _, port = address.rpartition(':')
    return host.strip('[]'), int(port)


class RelayWatcher(asyncio.Protocol):
    """One spectator's copy of a writer's output, on the writer's side."""

    def __init__(self, registry):
        self.registry = registry
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
        writer = self.registry.writer_of(key)
        if writer is None:
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
        transport.writelines((_OUTPUT + _LENGTH.pack(len(data)), data))

    def end(self, code, reason):
        """The writer's session ended: say how, then close."""
        encoded = reason.encode('utf-8')[:1024]
        self.transport.write(_END + _END_HEAD.pack(int(code), len(encoded)))
        self.transport.write(encoded)
        self.transport.close()

    def connection_lost(self, exc):
        if self._timer is not None:
            self._timer.cancel()
        if self.writer is not None:
            self.writer.remove_watcher(self)
            self.writer = None


class RelayDecoder:
    """The spectator's side of the records, fed bytes as they come.

    feed() returns a list of ('output', bytes) and ('end', code,
    reason); bytes after an end record are ignored.
    """

    def __init__(self):
        self._buffer = bytearray()
        self.ended = False

    def feed(self, data):
        self._buffer += data
        events = []
        while not self.ended and self._buffer:
            kind = bytes(self._buffer[:1])
            if kind == _OUTPUT:
                head = 1 + _LENGTH.size
                if len(self._buffer) < head:
                    break
                length, = _LENGTH.unpack_from(self._buffer, 1)
                if len(self._buffer) < head + length:
                    break
                events.append(('output', bytes(self._buffer[head:head +
                                                            length])))
                del self._buffer[:head + length]
            elif kind == _END:
                head = 1 + _END_HEAD.size
                if len(self._buffer) < head:
                    break
                code, length = _END_HEAD.unpack_from(self._buffer, 1)
                if len(self._buffer) < head + length:
                    break
                reason = bytes(self._buffer[head:head + length]).decode(
                    'utf-8', 'replace')
                events.append(('end', code, reason))
                self.ended = True
                self._buffer.clear()
            else:
                raise ValueError('not a relay record')
        return events
