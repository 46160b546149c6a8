"""websockify's WebSocket protocol driven from memory, not a socket.

websockify.websocket.WebSocket reads from and writes to a socket-like
object and reports "would block" as WebSocketWantReadError. Giving it an
in-memory buffer instead of a socket makes it a sans-IO codec: the event
loop feeds it bytes and takes the bytes it wants to send.
"""

import errno

from websockify import websocket

# Frames larger than this are refused: one console keystroke or paste is
# small, and a frame must be buffered whole before it can be decoded.
MAX_FRAME_BYTES = 1024 * 1024

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


class _MemorySocket:
    """The socket websockify sees: inbound and outbound byte buffers."""

    def __init__(self):
        self.inbound = bytearray()
        self.outbound = bytearray()
        self.eof = False
        self.closed = False

    def recv(self, size):
        if not self.inbound:
            if self.eof:
                return b''
            raise BlockingIOError(errno.EWOULDBLOCK, 'no data buffered')
        data = bytes(self.inbound[:size])
        del self.inbound[:size]
        return data

    def send(self, data):
        self.outbound += data
        return len(data)

    def close(self):
        self.closed = True


class ServerWebSocket(websocket.WebSocket):
    """The server end of one console websocket, as a codec."""

    def __init__(self):
        super().__init__()
        self._memory = _MemorySocket()

    def select_subprotocol(self, protocols):
        # Offered "binary": say so. Offered nothing: answer with none.
        return 'binary' if 'binary' in protocols else ''

    def accept_request(self, headers):
        """Queue the 101 response for a request already checked."""
        self.accept(self._memory, headers)

    def receive(self, data):
        """Feed bytes from the client; return the messages now complete."""
        memory = self._memory
        memory.inbound += data
        messages = []
        while not self.is_closed:
            try:
                message = self.recvmsg()
            except websocket.WebSocketWantReadError:
                break
            if message is None:
                break
            messages.append(message)
        # What is left is the start of a frame: refuse to buffer a huge one.
        if self.socket is not None and \
                len(self._recv_buffer) + len(memory.inbound) > \
                MAX_FRAME_BYTES:
            self.close_with(CLOSE_TOO_BIG, 'Frame too large')
        return messages

    def receive_eof(self):
        self._memory.eof = True
        self.receive(b'')

    def send_binary(self, data):
        if not self.is_closed and not self._sent_close:
            self.sendmsg(data)

    def close_with(self, code, reason):
        """Start a close handshake with a code and reason for the client."""
        if self.socket is not None and not self._sent_close:
            self.shutdown(None, code, reason)

    def take_outbound(self):
        """Bytes waiting to go to the client; the buffer is emptied."""
        data = bytes(self._memory.outbound)
        self._memory.outbound.clear()
        return data

    @property
    def is_closed(self):
        """True once both sides said close, or the client went away."""
        return self.socket is None

    @property
    def close_sent(self):
        return self._sent_close
