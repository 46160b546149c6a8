"""What hostile websocket and HTTP clients send, and what the proxy must
answer: the inputs (hypothesis strategies) and the oracle (a model of RFC
6455 and RFC 9110 as the proxy applies them) of test_hostile_clients.py.

Nothing here opens a socket; the numbers are the oracle's own, not read
from serialproxy: the tests know the proxy only from outside.
"""

import dataclasses
import os
import re
import struct

from hypothesis import strategies as st

from tests.harness import proxy_world

# [console] max_frame_bytes: the proxy's default, which the tests set.
MAX_FRAME_BYTES = 1024 * 1024
BIGGEST_FRAME = 2 * 1024 * 1024
# Bytes one sequence sends at most, so that an example takes a moment.
SEQUENCE_BUDGET = 3 * 1024 * 1024
# The proxy's request limits (proxy/handshake.py).
MAX_REQUEST_BYTES = 16 * 1024
MAX_HEADER_LINES = 100

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
CONTROL = (CLOSE, PING, PONG)
KNOWN_OPCODES = (CONTINUATION, TEXT, BINARY) + CONTROL
NORMAL, PROTOCOL_ERROR, INVALID_PAYLOAD, MESSAGE_TOO_BIG = \
    1000, 1002, 1007, 1009


def may_be_sent(code):
    """Whether a close frame may carry code (RFC 6455 section 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or \
        3000 <= code <= 4999


# Frames and what the proxy must make of them -------------------------------

@dataclasses.dataclass(frozen=True)
class Frame:
    """A client frame; its payload is pattern repeated to length bytes,
    so that a 2 MiB frame prints as a line when hypothesis reports it."""

    opcode: int
    length: int
    pattern: bytes = b'\x00'
    fin: bool = True
    masked: bool = True
    reserved: int = 0

    @property
    def payload(self):
        times = -(-self.length // len(self.pattern))
        return (self.pattern * times)[:self.length]

    def encode(self):
        return client_frame(self.opcode, self.payload, self.fin,
                            self.masked, self.reserved)


def client_frame(opcode, payload, fin=True, masked=True, reserved=0):
    """Any frame a client could send, in the length form its size takes."""
    head = bytes([(0x80 if fin else 0) | reserved << 4 | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 65536:
        head += bytes([mask_bit | 126]) + struct.pack('>H', size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack('>Q', size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + proxy_world.mask(payload, key)


@dataclasses.dataclass
class Outcome:
    """What the proxy must do with a sequence of frames.

    to_guest: the console bytes the guest gets (and echoes back): every
    binary message before the first bad frame. close_codes: the codes of
    the close frame the proxy must send, or None when the frames are
    all good and the websocket goes on. client_close: the client's own
    close frame came (its code or None), which the proxy answers. notes:
    how many text messages the proxy answers (a note each, at least).
    """

    to_guest: bytes = b''
    close_codes: set = None
    client_close: bool = False
    notes: int = 0


def frame_problems(frame, message_opcode, message_bytes):
    """Close codes a frame calls for, given the message it may continue.

    A frame with several faults may be refused for any of them.
    """
    codes = set()
    if frame.reserved or not frame.masked:
        codes.add(PROTOCOL_ERROR)
    if frame.opcode not in KNOWN_OPCODES:
        codes.add(PROTOCOL_ERROR)
    elif frame.opcode in CONTROL:
        if frame.length > 125 or not frame.fin:
            codes.add(PROTOCOL_ERROR)
        if frame.opcode == CLOSE:
            codes |= close_problems(frame.payload)
    else:
        if (frame.opcode == CONTINUATION) == (message_opcode is None):
            # A continuation of nothing, or a new message inside one.
            codes.add(PROTOCOL_ERROR)
        before = message_bytes if frame.opcode == CONTINUATION else 0
        if before + frame.length > MAX_FRAME_BYTES:
            codes.add(MESSAGE_TOO_BIG)
    return codes


def close_problems(body):
    """RFC 6455 sections 5.5.1 and 7.4: a body is empty or a valid code
    and a UTF-8 reason."""
    if len(body) == 1:
        return {PROTOCOL_ERROR}
    if len(body) >= 2:
        code, = struct.unpack('>H', body[:2])
        if not may_be_sent(code):
            return {PROTOCOL_ERROR}
        try:
            body[2:].decode('utf-8')
        except UnicodeDecodeError:
            # RFC 6455 section 8.1 fails the connection: 1007 says why,
            # 1002 that a close frame was wrong.
            return {PROTOCOL_ERROR, INVALID_PAYLOAD}
    return set()


def expected_outcome(frames):
    """The model: what the proxy must make of these frames, in order."""
    outcome = Outcome()
    to_guest = bytearray()
    message_opcode, message = None, bytearray()
    for frame in frames:
        codes = frame_problems(frame, message_opcode, len(message))
        if codes:
            outcome.close_codes = codes
            break
        if frame.opcode == CLOSE:
            body = frame.payload
            outcome.client_close = True
            outcome.close_codes = {
                struct.unpack('>H', body[:2])[0] if body else None}
            break
        if frame.opcode in CONTROL:
            continue
        if frame.opcode != CONTINUATION:
            message_opcode = frame.opcode
        message += frame.payload
        if not frame.fin:
            continue
        if message_opcode == BINARY:
            to_guest += message
        else:
            try:
                message.decode('utf-8')
            except UnicodeDecodeError:
                outcome.close_codes = {INVALID_PAYLOAD}
                break
            outcome.notes += 1
        message_opcode, message = None, bytearray()
    outcome.to_guest = bytes(to_guest)
    return outcome


# Strategies ------------------------------------------------------------------

# Every length form, and the sizes where the proxy's code paths turn.
lengths = st.one_of(
    st.integers(0, 125),
    st.integers(126, 0xffff),
    st.integers(0x10000, MAX_FRAME_BYTES),
    st.integers(0x10000, BIGGEST_FRAME),
    st.sampled_from([0, 1, 125, 126, 127, 4095, 4096, 4097, 0xffff,
                     0x10000, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1,
                     BIGGEST_FRAME]))
patterns = st.binary(min_size=1, max_size=16)
text_patterns = st.one_of(
    st.text(min_size=1, max_size=8).map(lambda text: text.encode('utf-8')),
    st.text(st.characters(max_codepoint=0x7f), min_size=1,
            max_size=8).map(str.encode),
    patterns)
control_frames = st.builds(Frame, opcode=st.sampled_from([PING, PONG]),
                           length=st.integers(0, 125), pattern=patterns)
close_code_values = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
                     1009, 1011, 1012, 1015, 1016, 2999, 3000, 4000, 4999,
                     5000]),
    st.integers(0, 0xffff))
close_bodies = st.one_of(
    st.just(b''),
    st.binary(min_size=1, max_size=1),
    st.builds(lambda code, reason: struct.pack('>H', code) + reason,
              close_code_values,
              st.one_of(st.text(max_size=20).map(str.encode),
                        st.binary(max_size=40))))
close_frames = close_bodies.map(
    lambda body: Frame(CLOSE, len(body), body or b'\x00'))


@st.composite
def messages(draw):
    """One data message, maybe fragmented, control frames between its
    fragments."""
    opcode = draw(st.sampled_from([BINARY] * 4 + [TEXT]))
    pattern = draw(text_patterns if opcode == TEXT else patterns)
    pieces = draw(st.lists(lengths, min_size=1, max_size=3))
    frames = []
    for i, length in enumerate(pieces):
        if i:
            frames += draw(st.lists(control_frames, max_size=2))
        frames.append(Frame(opcode if i == 0 else CONTINUATION, length,
                            pattern, fin=i == len(pieces) - 1))
    return frames


def _unmasked(frame, draw):
    return dataclasses.replace(frame, masked=False)


def _reserved(frame, draw):
    return dataclasses.replace(frame, reserved=draw(st.integers(1, 7)))


def _unknown_opcode(frame, draw):
    return dataclasses.replace(frame, opcode=draw(st.sampled_from(
        [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])))


def _fragmented_control(frame, draw):
    return Frame(draw(st.sampled_from(CONTROL)), draw(st.integers(0, 125)),
                 fin=False)


def _oversized_control(frame, draw):
    return Frame(draw(st.sampled_from(CONTROL)),
                 draw(st.sampled_from([126, 127, 200, 0xffff, 0x10000])))


def _flipped_fin(frame, draw):
    return dataclasses.replace(frame, fin=not frame.fin)


def _continuation(frame, draw):
    return dataclasses.replace(frame, opcode=CONTINUATION)


FAULTS = (_unmasked, _reserved, _unknown_opcode, _fragmented_control,
          _oversized_control, _flipped_fin, _continuation)


@st.composite
def frame_sequences(draw):
    """Messages, control frames between them, maybe a fault and a close."""
    frames, total = [], 0
    for message in draw(st.lists(messages(), min_size=1, max_size=3)):
        size = sum(frame.length for frame in message)
        if frames and total + size > SEQUENCE_BUDGET:
            break
        frames += draw(st.lists(control_frames, max_size=1)) + message
        total += size
    # Half the sequences have no fault: every byte must come back.
    if draw(st.sampled_from([False, True])):
        where = draw(st.integers(0, len(frames) - 1))
        fault = draw(st.sampled_from(FAULTS))
        frames[where] = fault(frames[where], draw)
    if draw(st.sampled_from([False] * 5 + [True])):
        frames.insert(draw(st.integers(0, len(frames))), draw(close_frames))
    return frames


# Where the bytes of a sequence are cut into pieces: in the first frame
# header often, anywhere in a few MiB otherwise.
cut_offsets = st.lists(st.one_of(st.integers(1, 16),
                                 st.integers(1, SEQUENCE_BUDGET)),
                       max_size=4)


# HTTP: header lines and what a request with them must get -------------------

# RFC 9110 section 5.1: a field name is a token; section 5.5: a value
# holds no CTL but HTAB.
HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
FORBIDDEN_IN_VALUE = re.compile(rb'[\x00-\x08\x0a-\x1f\x7f]')
header_names = st.sampled_from([
    'Origin', 'Cookie', 'Sec-WebSocket-Protocol', 'X-Forwarded-For',
    'X-Forwarded-Proto', 'Content-Length', 'X-Anything']) | \
    st.from_regex(rb"\A[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}\Z")
# Bytes a header line may not hold (RFC 9110 section 5.5) and bytes it
# may (obs-text), placed anywhere in a line.
odd_bytes = st.sampled_from([b'\r', b'\n', b'\x00', b'\x01', b'\x7f',
                             b'\t', b'\x80', b'\xe9', b'\xff',
                             '\u00e9'.encode(), '\u2603'.encode()])


@st.composite
def header_lines(draw):
    kind = draw(st.integers(0, 4))
    if kind == 0:  # printable, of any shape
        return draw(st.text(st.characters(min_codepoint=0x20,
                                          max_codepoint=0x7e),
                            max_size=60)).encode()
    name = draw(header_names)
    if isinstance(name, str):
        name = name.encode()
    value = draw(st.binary(max_size=40).map(
        lambda b: bytes(c for c in b if 0x21 <= c <= 0x7e)))
    line = name + b': ' + value
    if kind == 1:  # well formed
        return line
    if kind == 2:  # one odd byte somewhere
        at = draw(st.integers(0, len(line)))
        return line[:at] + draw(odd_bytes) + line[at:]
    if kind == 3:  # long: near and past the request size limit
        return name + b': ' + b'v' * draw(st.sampled_from(
            [1000, 8000, MAX_REQUEST_BYTES - 100,
             MAX_REQUEST_BYTES + 1]))
    return draw(st.sampled_from([b' ', b'\t'])) + line  # obs-fold


def expected_statuses(lines, head):
    """The statuses a good websocket request plus lines may get.

    Past the size or the line count limit, a 431; a line that is not
    "token: value" without CTLs, a 400; otherwise the request stands
    (101), or an Origin or subprotocol line refuses it (403, 400). An
    empty line ends the request early: what follows is the websocket's.
    """
    request = head + b''.join(line + b'\r\n' for line in lines) + b'\r\n'
    end = request.find(b'\r\n\r\n')
    # Bytes that cannot be a request may be refused as soon as they come.
    early = {400} if b'\n\n' in request[:end + 2] else set()
    if end > MAX_REQUEST_BYTES:
        return early | {431}
    lines = request[:end].split(b'\r\n')[1:]
    if len(lines) > MAX_HEADER_LINES:
        return early | {431}
    for line in lines:
        name, sep, value = line.partition(b':')
        if not sep or not HEADER_NAME.fullmatch(name) or \
                FORBIDDEN_IN_VALUE.search(value):
            return {400}
    return early | {101, 400, 403}
