"""The console session under any input hypothesis can think of.

Whatever a client sends (frames cut anywhere, fragments, pings between
them, masks missing, control frames too long, close reasons that are not
UTF-8, bytes after a close, or bytes that are not a websocket at all), the
session answers with actions only: no exception escapes, what it buffers
stays within the frame limit, every message that was whole reaches the
guest once and in order, and every close it sends carries a code the page
knows.
"""

import json
import struct

from hypothesis import given
from hypothesis import strategies as st

from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.console import Console
from serialproxy.proxy import session as cs
from tests.unit import base
from tests.unit import hypothesis_profiles  # noqa: F401
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import server_frames
from tests.unit.proxy.test_session import CONSOLE
from tests.unit.proxy.test_session import request

LIMIT = 4096
SETTINGS = cs.Settings(max_frame_bytes=LIMIT, idle_timeout=0)
# What a frame header can take beyond its payload.
MAX_HEADER = 14
KNOWN_CODES = {int(code) for code in CloseCode}

payloads = st.binary(max_size=LIMIT)


def open_session():
    session = cs.ConsoleSession(SETTINGS, clock=lambda: 1000.0)
    actions = session.client_data(request())
    assert any(isinstance(a, cs.Authorize) for a in actions), actions
    session.leased(Console.from_answer(CONSOLE))
    session.guest_connected()
    assert session.is_open
    return session


def cut(data, points):
    """data in pieces, cut at the given offsets."""
    offsets = sorted({p % (len(data) + 1) for p in points})
    pieces, start = [], 0
    for offset in offsets + [len(data)]:
        pieces.append(data[start:offset])
        start = offset
    return pieces


def feed(session, pieces):
    actions = []
    for piece in pieces:
        actions += session.client_data(piece)
        assert session._ws.buffered_bytes <= LIMIT + MAX_HEADER
    return actions


def sent_to_guest(actions):
    return [chunk for a in actions if isinstance(a, cs.SendToGuest)
            for chunk in a.chunks]


def sent_to_client(actions):
    return b''.join(b''.join(a.chunks) for a in actions
                    if isinstance(a, cs.SendToClient))


def close_codes_sent(actions):
    return [struct.unpack('>H', payload[:2])[0]
            for opcode, payload in server_frames(sent_to_client(actions))
            if opcode == 0x8 and len(payload) >= 2]


@st.composite
def fragmented_messages(draw):
    """(messages, wire bytes): each message in fragments, pings between."""
    messages = draw(st.lists(payloads, max_size=6))
    wire, pings = b'', 0
    for message in messages:
        splits = sorted(draw(st.lists(st.integers(0, len(message)),
                                      max_size=3)))
        parts, start = [], 0
        for split in splits + [len(message)]:
            parts.append(message[start:split])
            start = split
        for number, part in enumerate(parts):
            opcode = 0x2 if number == 0 else 0x0
            wire += client_frame(opcode, part, fin=number == len(parts) - 1)
            if draw(st.booleans()):
                wire += client_frame(0x9, b'p%d' % pings)
                pings += 1
    return messages, wire, pings


class SessionPropertiesTest(base.TestCase):
    @given(fragmented_messages(), st.lists(st.integers(0, 10 ** 6),
                                           max_size=20))
    def test_messages_arrive_whole_once_and_in_order_however_cut(
            self, sent, points):
        messages, wire, pings = sent
        session = open_session()
        reads = cut(wire, points)
        actions = feed(session, reads)
        # Empty messages carry nothing for the guest.
        self.assertEqual([m for m in messages if m],
                         sent_to_guest(actions))
        pongs = [int(p[1:]) for opcode, p in
                 server_frames(sent_to_client(actions)) if opcode == 0xA]
        # The last ping of a read is answered, in order, and the last
        # ping always (RFC 6455 section 5.5.3).
        self.assertEqual(sorted(set(pongs)), pongs)
        self.assertLessEqual(len(pongs), len(reads))
        self.assertEqual([pings - 1] if pings else [], pongs[-1:])
        self.assertTrue(session.is_open)

    @given(st.lists(st.binary(max_size=LIMIT * 2), max_size=8))
    def test_any_bytes_end_in_actions_and_known_close_codes(self, pieces):
        session = open_session()
        actions = feed(session, pieces)
        actions += session.client_eof()
        for code in close_codes_sent(actions):
            self.assertIn(code, KNOWN_CODES)
        for action in actions:
            self.assertIsInstance(action, (
                cs.SendToClient, cs.SendToGuest, cs.PauseReading,
                cs.ResumeReading, cs.Ended, cs.ReleaseLease, cs.CloseGuest,
                cs.CloseClient))

    @given(st.integers(0, 0xffff), st.binary(max_size=123),
           st.binary(max_size=64))
    def test_any_close_frame_ends_the_session_cleanly(self, code, reason,
                                                      after):
        session = open_session()
        actions = session.client_data(
            client_frame(0x8, struct.pack('>H', code) + reason))
        # Bytes after a close are not for the guest.
        actions += session.client_data(client_frame(0x2, b'late' + after))
        actions += session.lease_released()
        self.assertEqual([], sent_to_guest(actions))
        # The client's code echoed when a frame may carry it and its
        # reason is text; a protocol error otherwise.
        try:
            reason.decode('utf-8')
            echo = close_codes.may_be_sent(code)
        except UnicodeDecodeError:
            echo = False
        self.assertEqual([code if echo else CloseCode.PROTOCOL_ERROR],
                         close_codes_sent(actions))
        self.assertFalse(session.is_open)
        self.assertTrue(any(isinstance(a, cs.CloseGuest) for a in actions))
        self.assertTrue(any(isinstance(a, cs.ReleaseLease)
                            for a in actions))

    @given(st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xF]),
           st.binary(max_size=300), st.booleans(), st.booleans(),
           st.integers(0, 7))
    def test_odd_frames_are_refused_with_a_code_never_relayed_raw(
            self, opcode, payload, fin, masked, reserved):
        session = open_session()
        frame = bytearray(client_frame(opcode, payload, fin=fin,
                                       mask=masked))
        frame[0] |= reserved << 4
        actions = session.client_data(bytes(frame))
        relayed = sent_to_guest(actions)
        if relayed:
            # Only a whole, masked binary message with no reserved bits.
            self.assertEqual([payload], relayed)
            self.assertEqual((0x2, True, True, 0),
                             (opcode, fin, masked, reserved))
        for code in close_codes_sent(actions):
            self.assertTrue(close_codes.may_be_sent(code), code)

    @given(st.integers(LIMIT + 1, 2 ** 63 - 1), st.binary(max_size=64))
    def test_announced_oversize_is_1009_before_it_is_buffered(
            self, length, following):
        session = open_session()
        header = bytes([0x82, 0x80 | 127]) + struct.pack('>Q', length)
        actions = feed(session, [client_frame(0x2, b'before'),
                                 header + b'mask' + following])
        self.assertEqual([b'before'], sent_to_guest(actions))
        self.assertEqual([CloseCode.MESSAGE_TOO_BIG],
                         close_codes_sent(actions))


def open_writer_with(modes):
    session = cs.ConsoleSession(SETTINGS, clock=lambda: 1000.0)
    session.client_data(request())
    session.leased(Console.from_answer(dict(CONSOLE, modes=modes)))
    session.guest_connected()
    return session


class PageCommandPropertiesTest(base.TestCase):
    @given(st.one_of(st.text(max_size=400),
                     st.fixed_dictionaries({}, optional={
                         'sysrq': st.one_of(st.text(max_size=3),
                                            st.integers(), st.none()),
                         'nmi': st.one_of(st.booleans(), st.none()),
                         'permissions': st.booleans(),
                         'x': st.text(max_size=5)}).map(json.dumps)),
           st.lists(st.sampled_from(['sysrq', 'nmi', 'view']), max_size=3),
           st.lists(st.integers(0, 500), max_size=3))
    def test_text_is_run_or_answered_and_the_session_goes_on(
            self, text, modes, points):
        session = open_writer_with(modes)
        actions = feed(session, cut(client_frame(0x1, text.encode()),
                                    points))
        self.assertEqual([], sent_to_guest(actions))
        self.assertEqual([], close_codes_sent(actions))
        self.assertTrue(session.is_open)
        runs = [a for a in actions if isinstance(a, cs.RunPageCommand)]
        notes = [p for opcode, p in server_frames(sent_to_client(actions))
                 if opcode == 0x1]
        # One answer, or one command to run: never both, never neither.
        self.assertEqual(1, len(runs) + len(notes), (runs, notes))
        for run in runs:
            self.assertIn(run.command.kind, modes)
