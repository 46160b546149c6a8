"""websockify's WebSocket protocol driven from memory, not a socket.

websockify.websocket.WebSocket reads from and writes to a socket-like
object and reports "would block" as WebSocketWantReadError. Given an
in-memory buffer instead of a socket it becomes a sans-IO codec: the
session feeds it bytes and takes the bytes it wants to send. Only its
public methods are used (accept, recvmsg, sendmsg, shutdown, and the
socket and close_code attributes its documentation names).

The codec decodes frames only once they are whole. To relay every frame
as soon as its last byte arrives, and to refuse an oversized message
before buffering it, this module reads each frame's header itself (RFC
6455 section 5.2) and hands websockify whole frames only.

websockify refuses text messages; the console page's commands are text
(page/commands.py). A text message's first frame is handed over marked
binary, and the message comes back as str: console bytes are always
binary, so the two are never mistaken for each other.

A message of data (console bytes, the page's text notes) is framed here
(server_frame) and queued on the memory socket behind what websockify
queued (its handshake answer, pongs, close frames): websockify's public
interface sends binary messages only, and framing one costs less than
its call. A short frame of console bytes from the client (a keystroke,
a line: at most SHORT_FRAME_BYTES), whole, unfragmented and outside any
fragmented message, is unmasked here too (RFC 6455 section 5.3); every
other frame goes through websockify. That holds while websockify hands
every frame it sends to the socket whole and at once, and keeps its own
names apart from this subclass's: WebsockifyInterfaceTest in
tests/unit/proxy/test_websocket.py fails when a websockify release
changes either, and tox -e websockify-oldest and -e websockify-newest run
the proxy's unit tests against both ends of the range requirements.txt
allows.
"""

import errno
import struct

from websockify import websocket

from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
DATA_OPCODES = frozenset((OPCODE_TEXT, OPCODE_BINARY))
# First byte of an unfragmented binary message: FIN, no reserved bits.
WHOLE_BINARY_MESSAGE = 0x80 | OPCODE_BINARY
OPCODE_CLOSE = 0x8
CONTROL_OPCODES = frozenset((OPCODE_CLOSE, 0x9, 0xA))
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES | {OPCODE_CONTINUATION}
MAX_CONTROL_PAYLOAD = 125
# Two bytes, eight of extended length, four of mask key.
MAX_HEADER_BYTES = 14
# A piece of a frame at least this large is held as a view of the read
# it came in, not copied (see ServerWebSocket._hold).
BEGUN_VIEW_MIN_BYTES = 16 * 1024
# At most this many unfragmented binary frames, together no larger than
# RUN_BYTES, go to websockify in one piece (see _relay_frames).
RUN_FRAMES = 8
RUN_BYTES = 32 * 1024
# Client frames of console bytes with at most this much payload (a
# 7-bit length: keystrokes, pasted lines) are unmasked here rather than
# by websockify, whose numpy unmasking costs more than a short frame's
# whole relay; larger ones go in runs to websockify (see _relay_frames).
SHORT_FRAME_BYTES = 125
_LENGTH_16 = struct.Struct('>H')
_LENGTH_64 = struct.Struct('>Q')
# First byte of an unfragmented text message: FIN, no reserved bits.
WHOLE_TEXT_MESSAGE = 0x80 | OPCODE_TEXT


def server_frame(first_byte, payload):
    """One frame as a server sends it, unmasked (RFC 6455 section 5.2),
    as a list of chunks: its header, then the payload (not copied)."""
    length = len(payload)
    if length < 126:
        header = bytes((first_byte, length))
    elif length < 1 << 16:
        header = bytes((first_byte, 126)) + _LENGTH_16.pack(length)
    else:
        header = bytes((first_byte, 127)) + _LENGTH_64.pack(length)
    return [header, payload]


def text_frame(payload):
    """One unfragmented text frame as a server sends it, unmasked."""
    return b''.join(server_frame(WHOLE_TEXT_MESSAGE, payload))


def unmask(payload, key):
    """A client frame's payload unmasked with its 4-byte key (RFC 6455
    section 5.3): one XOR of two integers, for short payloads."""
    size = len(payload)
    keystream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, 'little') ^
            int.from_bytes(keystream, 'little')).to_bytes(size, 'little')


class FrameHeader:
    __slots__ = ('fin', 'opcode', 'reserved', 'masked', 'header_length',
                 'payload_length')

    def __init__(self, fin, opcode, reserved, header_length,
                 payload_length, masked=True):
        self.fin = fin
        self.opcode = opcode
        self.reserved = reserved
        self.masked = masked
        self.header_length = header_length
        self.payload_length = payload_length

    @property
    def length(self):
        return self.header_length + self.payload_length


def parse_frame_header(buf, offset=0):
    """The header of the frame at offset, or None until it is all there."""
    available = len(buf) - offset
    if available < 2:
        return None
    first, second = buf[offset], buf[offset + 1]
    header_length = 2 + (4 if second & 0x80 else 0)
    length = second & 0x7f
    if length == 126:
        header_length += 2
        if available < header_length:
            return None
        length, = struct.unpack_from('>H', buf, offset + 2)
    elif length == 127:
        header_length += 8
        if available < header_length:
            return None
        length, = struct.unpack_from('>Q', buf, offset + 2)
    elif available < header_length:
        return None
    return FrameHeader(bool(first & 0x80), first & 0x0f, first & 0x70,
                       header_length, length, bool(second & 0x80))


class _MemorySocket:
    """The socket websockify sees: inbound and outbound byte buffers.

    recv() hands over everything buffered, whatever size is asked: only
    whole frames are ever buffered here, and handing them over in 4 KB
    pieces (websockify asks for 4096) would only copy them many times.
    """

    def __init__(self):
        self.inbound = b''
        self.outbound = []
        self.eof = False
        self.closed = False

    def recv(self, size):
        if not self.inbound:
            if self.eof:
                return b''
            raise BlockingIOError(errno.EWOULDBLOCK, 'no data buffered')
        data, self.inbound = self.inbound, b''
        return data

    def send(self, data):
        self.outbound.append(data)
        return len(data)

    def close(self):
        self.closed = True


class ServerWebSocket(websocket.WebSocket):
    """The server end of one console websocket, as a codec."""

    def __init__(self, max_message_bytes):
        super().__init__()
        self.max_message_bytes = max_message_bytes
        self._memory = _MemorySocket()
        # The frame begun in an earlier read: its pieces so far, their
        # size, and its whole length once its header is in.
        self._begun = []
        self._begun_bytes = 0
        self._begun_length = None
        self._message_bytes = 0
        self._held_start = False
        self._refusing_input = False
        # Whether the message being received began with a text frame.
        self._text_message = False
        # Whether websockify holds the start of a fragmented message:
        # then a new frame is its to refuse, not ours to decode.
        self._fragment_open = False
        # The payload of the last ping not yet answered (handle_ping).
        self._ping_unanswered = None
        self.close_sent = False
        # The code of the close frame we sent, which websockify does not
        # keep (its close_code is the peer's, or 1000 for a local close).
        self.sent_close_code = None

    def select_subprotocol(self, protocols):
        # Offered "binary": say so. Offered nothing: answer with none.
        return 'binary' if 'binary' in protocols else ''

    def accept_request(self, headers, subprotocols):
        """Queue the 101 response for a request already checked.

        subprotocols: the client's offer as the handshake parsed it.
        """
        self.accept(self._memory, _AcceptHeaders(headers, subprotocols))

    def shutdown(self, how, code=CloseCode.NORMAL, reason=None):
        # websockify also calls this itself: to answer a client's close
        # and to refuse a protocol error. It echoes a client's close code
        # as it came, even one no close frame may carry.
        if code is not None and not close_codes.may_be_sent(code):
            code, reason = CloseCode.PROTOCOL_ERROR, 'Invalid close code'
        if not self.close_sent:
            self.close_sent = True
            self.sent_close_code = code
        super().shutdown(how, int(code) if code is not None else None,
                         reason)

    def receive(self, data):
        """Feed bytes from the client; return the messages now complete:
        bytes for a binary message, str for a text one.

        Every message whose last frame is in is returned, however large,
        up to max_message_bytes; a larger one closes the websocket with
        1009 after the messages before it.
        """
        if self._refusing_input or self.is_closed:
            return []
        if type(data) is not bytes:
            # Held pieces may be views of data: it must not change later.
            data = bytes(data)
        messages = []
        offset, problem = 0, None
        if self._begun:
            offset, frame, problem = self._complete_begun(data)
            if frame is not None:
                _, problem = self._relay_frames(frame, 0, messages)
        if problem is None and not self._begun:
            offset, problem = self._relay_frames(data, offset, messages)
            if problem is None and offset < len(data) and \
                    not self.is_closed:
                self._keep_begun(data, offset)
        if problem is not None and not self.is_closed:
            self._refusing_input = True
            self._drop_begun()
            self.shutdown(None, *problem)
        self._answer_ping()
        return messages

    def handle_ping(self, data):
        # Answered once per receive(), for the last ping only (RFC 6455
        # section 5.5.3 allows it): a read full of pings from a client
        # that reads nothing queues one pong, not a pong per ping.
        self._ping_unanswered = data

    def _answer_ping(self):
        data, self._ping_unanswered = self._ping_unanswered, None
        if data is not None and not self.close_sent:
            self.pong(data)

    @property
    def buffered_bytes(self):
        """Bytes of a frame not yet whole, held until the rest comes."""
        return self._begun_bytes

    def receive_eof(self):
        """The client's side of the TCP connection ended."""
        self._memory.eof = True
        self._decode_into([])

    def _keep_begun(self, data, offset):
        """Keep data[offset:], the start of a frame, until it is whole.

        A large piece is kept as a view of data (bytes, which cannot
        change), small ones are copied together: the frame then costs
        one copy when it is joined, and a client trickling bytes costs
        no object per read.
        """
        piece = memoryview(data)[offset:]
        if not self._begun:
            header = parse_frame_header(data, offset)
            self._begun_length = header.length if header else None
        if len(piece) >= BEGUN_VIEW_MIN_BYTES:
            self._begun.append(piece)
        elif self._begun and type(self._begun[-1]) is bytearray:
            self._begun[-1] += piece
        else:
            self._begun.append(bytearray(piece))
        self._begun_bytes += len(piece)

    def _drop_begun(self):
        self._begun = []
        self._begun_bytes = 0
        self._begun_length = None

    def _complete_begun(self, data):
        """Add to the held frame what it lacks from data.

        Returns (bytes of data used, the frame once whole or None, a
        (code, reason) that must end the websocket or None).
        """
        if self._begun_length is None:
            # Its header was cut: at most MAX_HEADER_BYTES, so small.
            head = b''.join(self._begun) + data[:MAX_HEADER_BYTES]
            header = parse_frame_header(head)
            if header is None:
                self._keep_begun(data, 0)
                return len(data), None, None
            problem = self._check_frame(header)
            if problem is not None:
                return 0, None, problem
            self._begun_length = header.length
        lacking = self._begun_length - self._begun_bytes
        if len(data) < lacking:
            self._keep_begun(data, 0)
            return len(data), None, None
        pieces = self._begun
        pieces.append(memoryview(data)[:lacking])
        frame = b''.join(pieces)
        self._drop_begun()
        return lacking, frame, None

    def _relay_frames(self, buf, offset, messages):
        """Hand websockify the whole frames of buf (bytes) from offset on.

        websockify copies what follows a frame each time it decodes one,
        which is quadratic in a read holding many frames: it is given one
        frame at a time, or a short run of small binary ones (a call per
        4 KB frame costs more than those copies). Appends the messages
        completed to messages; returns (offset of the first byte not
        used, a (code, reason) that must end the websocket or None).
        """
        end = len(buf)
        memory = self._memory
        limit = self.max_message_bytes
        problem = None
        run_start = run_frames = 0
        # "while not self.is_closed", without a property call per frame.
        while self.socket is not None or not memory.closed:
            if end - offset < 2:
                break
            second = buf[offset + 1]
            if buf[offset] == WHOLE_BINARY_MESSAGE and second & 0x80 and \
                    not self._held_start:
                # A masked, unfragmented binary frame: nearly every frame
                # a console sees, read here without the bookkeeping that
                # fragments, control frames and protocol errors need.
                length = second & 0x7f
                if length < 126:
                    start = offset + 6
                elif length == 126:
                    start = offset + 8
                    if end < start:
                        break
                    length, = _LENGTH_16.unpack_from(buf, offset + 2)
                else:
                    start = offset + 14
                    if end < start:
                        break
                    length, = _LENGTH_64.unpack_from(buf, offset + 2)
                if length > limit:
                    problem = self._too_big()
                    break
                stop = start + length
                if stop > end:
                    break
                if length <= SHORT_FRAME_BYTES and not self._fragment_open:
                    if run_frames:
                        self._decode_run(buf, run_start, offset, run_frames,
                                         messages)
                        run_frames = 0
                    self._message_bytes = 0
                    self._held_start = False
                    if not self.close_sent:
                        messages.append(unmask(buf[start:stop],
                                               buf[start - 4:start]))
                    offset = stop
                    continue
                if run_frames and stop - run_start > RUN_BYTES:
                    self._decode_run(buf, run_start, offset, run_frames,
                                     messages)
                    run_frames = 0
                if not run_frames:
                    run_start = offset
                run_frames += 1
                offset = stop
                if run_frames == RUN_FRAMES:
                    self._decode_run(buf, run_start, offset, run_frames,
                                     messages)
                    run_frames = 0
                continue
            if run_frames:
                self._decode_run(buf, run_start, offset, run_frames,
                                 messages)
                run_frames = 0
            header = parse_frame_header(buf, offset)
            if header is None:
                break
            problem = self._check_frame(header)
            if problem is not None:
                break
            stop = offset + header.length
            if end < stop:
                break
            self._count_frame(header)
            if header.opcode in DATA_OPCODES:
                self._text_message = header.opcode == OPCODE_TEXT
            held, first_byte = self._hold_empty_start(buf[offset], header)
            if not held:
                if header.opcode not in CONTROL_OPCODES:
                    self._fragment_open = not header.fin
                if header.opcode == OPCODE_TEXT:
                    first_byte = (buf[offset] & 0xf0) | OPCODE_BINARY
                if first_byte is None:
                    memory.inbound = buf[offset:stop]
                else:
                    memory.inbound = bytes((first_byte,)) + \
                        buf[offset + 1:stop]
                before = len(messages)
                self._decode_into(messages)
                if self._text_message and len(messages) > before:
                    problem = self._decode_text(messages)
                    if problem is not None:
                        offset = stop
                        break
            offset = stop
        if run_frames:
            self._decode_run(buf, run_start, offset, run_frames, messages)
        return offset, problem

    def _decode_run(self, buf, start, stop, frames, messages):
        """Append the messages of buf[start:stop], that many whole
        unfragmented binary frames, to messages."""
        self._message_bytes = 0
        self._held_start = False
        self._memory.inbound = buf if start == 0 and stop == len(buf) \
            else buf[start:stop]
        # A frame each call; a frame websockify refuses (one arriving
        # inside a fragmented message) is skipped within a call, and the
        # call that then finds none left wants more.
        for _ in range(frames):
            try:
                message = self.recvmsg()
            except websocket.WebSocketWantReadError:
                break
            if message is not None and not self.close_sent:
                messages.append(message)

    @staticmethod
    def _decode_text(messages):
        """The last message as the str it was sent as; else what must
        end the websocket (RFC 6455 section 8.1)."""
        try:
            messages[-1] = messages[-1].decode('utf-8')
        except UnicodeDecodeError:
            del messages[-1]
            return (CloseCode.INVALID_PAYLOAD,
                    'Text message is not valid UTF-8')
        return None

    def _check_frame(self, header):
        """What must not be buffered, as (code, reason); else None.

        Every protocol error of a frame's header is a 1002 (RFC 6455
        section 7.4.1), found here: websockify answers some with 1003.
        """
        if header.reserved:
            return (CloseCode.PROTOCOL_ERROR,
                    'Reserved bits set without an extension')
        if not header.masked:
            return (CloseCode.PROTOCOL_ERROR, 'Client frame not masked')
        if header.opcode not in KNOWN_OPCODES:
            return (CloseCode.PROTOCOL_ERROR,
                    'Unknown opcode 0x%x' % header.opcode)
        if self._held_start and header.opcode in DATA_OPCODES:
            # websockify never saw the empty first fragment held back
            # (_hold_empty_start), so it cannot tell this frame is out
            # of place.
            return (CloseCode.PROTOCOL_ERROR,
                    'A new message began inside a fragmented one')
        if header.opcode in CONTROL_OPCODES:
            if header.payload_length > MAX_CONTROL_PAYLOAD:
                return (CloseCode.PROTOCOL_ERROR,
                        'Control frame payload over 125 bytes')
            if not header.fin:
                return (CloseCode.PROTOCOL_ERROR, 'Fragmented control frame')
            if header.opcode == OPCODE_CLOSE and header.payload_length == 1:
                return (CloseCode.PROTOCOL_ERROR,
                        'Close frame payload of one byte')
            return None
        before = self._message_bytes \
            if header.opcode == OPCODE_CONTINUATION else 0
        if before + header.payload_length > self.max_message_bytes:
            return self._too_big()
        return None

    def _too_big(self):
        return (CloseCode.MESSAGE_TOO_BIG,
                'Message larger than %d bytes' % self.max_message_bytes)

    def _hold_empty_start(self, first_byte, header):
        """(drop this frame?, first byte to give it instead, or None).

        websockify takes a message whose first fragment is empty for no
        message at all and refuses its continuation, though RFC 6455
        allows both. Such fragments are dropped here and the first
        continuation after them becomes the message's first frame.
        """
        if header.opcode in CONTROL_OPCODES:
            return False, None
        starts = header.opcode != OPCODE_CONTINUATION
        if starts:
            self._held_start = False
        if not header.fin and header.payload_length == 0 and \
                (starts or self._held_start):
            self._held_start = True
            return True, None
        if self._held_start:
            self._held_start = False
            return False, (first_byte & 0x80) | OPCODE_BINARY
        return False, None

    def _count_frame(self, header):
        """Follow the size of a fragmented message, frame by frame."""
        if header.opcode in CONTROL_OPCODES:
            return
        if header.opcode != OPCODE_CONTINUATION:
            self._message_bytes = 0
        self._message_bytes = 0 if header.fin else \
            self._message_bytes + header.payload_length

    def _decode_into(self, messages):
        """Append the messages websockify can decode now to messages."""
        memory = self._memory
        while not self.is_closed and (memory.inbound or self.pending() or
                                      memory.eof):
            try:
                message = self.recvmsg()
            except websocket.WebSocketWantReadError:
                break
            if message is None:
                break
            if not self.close_sent:
                # After our close (websockify's refusal of a frame
                # included), nothing the client sends is its input.
                messages.append(message)

    def send_binary(self, data):
        """Queue one binary message (bytes); nothing once a close was
        sent. Framed here, as websockify's sendmsg would (see the
        module's docstring), without copying data."""
        if type(data) is not bytes:
            raise TypeError('a binary message is bytes, not %s'
                            % type(data).__name__)
        if not self.close_sent:
            self._memory.outbound += server_frame(WHOLE_BINARY_MESSAGE, data)

    def send_text(self, text):
        """Queue one text message: the proxy's status notes to the page,
        which console bytes (always binary) are never mistaken for.

        websockify has no public call for a text message: the frame is
        made here and queued after whatever websockify sent before, which
        the memory socket already holds (see the module's docstring).
        """
        if not self.close_sent:
            self._memory.outbound.append(text_frame(text.encode('utf-8')))

    def close_with(self, code, reason):
        """Start a close handshake with a code and reason for the client."""
        if not self.close_sent and not self.is_closed:
            self.shutdown(None, code, reason)

    def take_outbound(self):
        """Bytes waiting to go to the client, as a list; emptied."""
        chunks = self._memory.outbound
        self._memory.outbound = []
        return chunks

    @property
    def is_closed(self):
        """True once both sides said close, or the client went away."""
        return self.socket is None and self._memory.closed


class _AcceptHeaders:
    """The request headers as accept() reads them, the offer given.

    websockify reads one Sec-WebSocket-Protocol line and splits it on
    commas only; the offer parsed as RFC 6455 reads it is given instead.
    """

    def __init__(self, headers, subprotocols):
        self._headers = headers
        self._subprotocols = ','.join(subprotocols)

    def get(self, name, default=None):
        if name.lower() == 'sec-websocket-protocol':
            return self._subprotocols or default
        return self._headers.get(name, default)
