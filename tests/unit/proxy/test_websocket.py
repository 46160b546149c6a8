import ast
import base64
import hashlib
import inspect
import os
import re
import struct
import textwrap
import tracemalloc

from websockify import websocket as wsw

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import handshake
from serialproxy.proxy import websocket
from tests.unit import base
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import server_frames

MAX = 1024 * 1024

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class ServerWebSocketTest(base.TestCase):
    def open(self, *protocols):
        """protocols: Sec-WebSocket-Protocol header lines, if any."""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ['GET /?token=t HTTP/1.1', 'Host: h', 'Upgrade: websocket',
                 'Connection: Upgrade', 'Sec-WebSocket-Version: 13',
                 'Sec-WebSocket-Key: ' + key]
        lines += ['Sec-WebSocket-Protocol: ' + line for line in protocols]
        request, _ = handshake.parse_request(
            ('\r\n'.join(lines) + '\r\n\r\n').encode())
        ws = websocket.ServerWebSocket(MAX)
        ws.accept_request(request.headers,
                          handshake.offered_subprotocols(request))
        return ws, key, b''.join(ws.take_outbound()).decode()

    def test_accept_answers_101_with_key_and_binary_subprotocol(self):
        ws, key, reply = self.open('binary')
        expected = base64.b64encode(hashlib.sha1(
            key.encode() + GUID).digest()).decode()
        self.assertTrue(reply.startswith('HTTP/1.1 101 '))
        self.assertIn('Sec-WebSocket-Accept: %s\r\n' % expected, reply)
        self.assertIn('Sec-WebSocket-Protocol: binary\r\n', reply)

    def test_binary_is_chosen_from_any_form_of_the_offer(self):
        for lines in (['binary, base64'], ['base64 ,binary'],
                      ['base64', 'binary'], ['base64,', ' binary']):
            _, _, reply = self.open(*lines)
            self.assertTrue(reply.startswith('HTTP/1.1 101 '), lines)
            self.assertIn('Sec-WebSocket-Protocol: binary\r\n', reply, lines)
            self.assertNotIn('base64', reply)

    def test_client_offering_no_subprotocol_gets_none(self):
        _, _, reply = self.open()
        self.assertNotIn('Sec-WebSocket-Protocol', reply)

    def test_binary_messages_in_any_split_come_out_whole(self):
        ws, _, _ = self.open('binary')
        wire = client_frame(0x2, b'echo hi\n') + client_frame(0x2, b'ls\n')
        received = []
        for i in range(len(wire)):
            received += ws.receive(wire[i:i + 1])
        self.assertEqual([b'echo hi\n', b'ls\n'], received)

    # A stream of every kind of frame the buffering must carry: empty,
    # tiny, each header form (7, 16 and 64-bit lengths), exactly the limit,
    # fragments with an empty start, and pings between them.
    def mixed_stream(self):
        big = os.urandom(MAX)
        parts = [
            (client_frame(0x2, b''), [b'']),
            (client_frame(0x2, b'a'), [b'a']),
            (client_frame(0x2, b'x' * 125), [b'x' * 125]),
            (client_frame(0x9, b'p1'), []),
            (client_frame(0x2, b'y' * 126), [b'y' * 126]),
            (client_frame(0x2, b'', fin=False) +
             client_frame(0x0, b'frag', fin=False) +
             client_frame(0x9, b'p2') +
             client_frame(0x0, b'ment'), [b'fragment']),
            (client_frame(0x2, b'z' * 70000), [b'z' * 70000]),
            (client_frame(0x2, big), [big]),
            (client_frame(0x2, b'last'), [b'last']),
        ]
        wire = b''.join(frame for frame, _ in parts)
        expected = [m for _, messages in parts for m in messages]
        return wire, expected

    def pongs(self, ws):
        return [payload for opcode, payload in
                server_frames(b''.join(ws.take_outbound())) if opcode == 0xA]

    def test_stream_cut_in_two_at_every_byte_comes_out_whole(self):
        wire, expected = self.mixed_stream()
        # Every cut within the headers and small frames, and a sample of
        # those inside the large payloads.
        small_part = len(wire) - MAX - 70000
        cuts = list(range(0, 400)) + list(range(400, len(wire), 9973)) + \
            [len(wire) - n for n in range(1, 60)] + [small_part]
        for cut in cuts:
            ws, _, _ = self.open()
            received = ws.receive(wire[:cut]) + ws.receive(wire[cut:])
            self.assertEqual(expected, received, cut)
            # Each read's last ping is answered (RFC 6455 section 5.5.3).
            self.assertIn(self.pongs(ws), ([b'p1', b'p2'], [b'p2']), cut)
            self.assertFalse(ws.close_sent, cut)

    def test_stream_in_reads_of_any_size_comes_out_whole(self):
        wire, expected = self.mixed_stream()
        for size in (1, 2, 3, 7, 13, 14, 15, 4096, 65536, 65550, 262144):
            if size < 13:
                # Byte by byte through the small frames only: the large
                # ones would take minutes a byte at a time.
                stream = wire[:400]
                want = expected[:5]
            else:
                stream, want = wire, expected
            ws, _, _ = self.open()
            received = []
            for start in range(0, len(stream), size):
                received += ws.receive(stream[start:start + size])
            self.assertEqual(want, received, size)

    def test_message_of_exactly_the_limit_is_relayed(self):
        payload = os.urandom(MAX)
        ws, _, _ = self.open()
        wire = client_frame(0x2, payload)
        self.assertEqual([payload], ws.receive(wire[:MAX // 3]) +
                         ws.receive(wire[MAX // 3:]))
        self.assertFalse(ws.close_sent)

    def test_frame_over_the_limit_after_a_split_one_is_refused(self):
        ws, _, _ = self.open()
        first = client_frame(0x2, b'ok' * 1000)
        wire = first + client_frame(0x2, os.urandom(MAX + 1))
        received = ws.receive(wire[:1000])
        # The oversized header arrives in the read that completes first.
        received += ws.receive(wire[1000:len(first) + 20])
        self.assertEqual([b'ok' * 1000], received)
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, CloseCode.MESSAGE_TOO_BIG),
                         (opcode, struct.unpack('>H', payload[:2])[0]))
        self.assertEqual([], ws.receive(wire[len(first) + 20:]))

    def test_close_in_the_middle_of_a_read_stops_what_follows(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'before') + \
            client_frame(0x8, struct.pack('>H', 1000)) + \
            client_frame(0x2, b'after')
        self.assertEqual([b'before'], ws.receive(wire[:5]) +
                         ws.receive(wire[5:]))
        self.assertTrue(ws.is_closed)

    def test_fragmented_message_is_joined(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'ab', fin=False) + client_frame(0x0, b'cd')
        self.assertEqual([b'abcd'], ws.receive(wire))

    def test_guest_output_goes_out_as_unmasked_binary_frames(self):
        ws, _, _ = self.open()
        ws.send_binary(b'\x1b[32mhello\r\n')
        self.assertEqual([(0x2, b'\x1b[32mhello\r\n')],
                         server_frames(b''.join(ws.take_outbound())))

    def test_ping_is_answered_with_pong(self):
        ws, _, _ = self.open()
        self.assertEqual([], ws.receive(client_frame(0x9, b'p1')))
        self.assertEqual([(0xA, b'p1')],
                         server_frames(b''.join(ws.take_outbound())))

    def test_client_close_is_echoed_and_ends_the_socket(self):
        ws, _, _ = self.open()
        ws.receive(client_frame(0x8, struct.pack('>H', 1000) + b'bye'))
        self.assertTrue(ws.is_closed)
        self.assertEqual(1000, ws.close_code)
        self.assertEqual([(0x8, struct.pack('>H', 1000) + b'bye')],
                         server_frames(b''.join(ws.take_outbound())))

    def test_server_close_carries_code_and_reason(self):
        ws, _, _ = self.open()
        ws.close_with(4001, 'Disconnected by an operator')
        self.assertEqual(
            [(0x8, struct.pack('>H', 4001) + b'Disconnected by an operator')],
            server_frames(b''.join(ws.take_outbound())))
        self.assertFalse(ws.is_closed)
        ws.receive(client_frame(0x8, struct.pack('>H', 4001)))
        self.assertTrue(ws.is_closed)

    def test_text_messages_come_out_as_str_between_binary_ones(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'ls\n') + \
            client_frame(0x1, '{"sysrq": "h"} é'.encode()) + \
            client_frame(0x2, b'{"sysrq": "h"}')
        received = []
        for i in range(len(wire)):
            received += ws.receive(wire[i:i + 1])
        self.assertEqual([b'ls\n', '{"sysrq": "h"} é',
                          b'{"sysrq": "h"}'], received)
        self.assertEqual([str, bytes], [type(m) for m in received[1:]])
        self.assertEqual([], ws.take_outbound())

    def test_fragmented_text_with_a_ping_between_is_one_str(self):
        ws, _, _ = self.open()
        # An empty first fragment, which websockify alone would refuse.
        received = ws.receive(
            client_frame(0x1, b'', fin=False) +
            client_frame(0x0, b'{"nmi"', fin=False) +
            client_frame(0x9, b'p') +
            client_frame(0x0, b': true}'))
        self.assertEqual(['{"nmi": true}'], received)
        self.assertEqual([(0xA, b'p')],
                         server_frames(b''.join(ws.take_outbound())))
        # The next message is binary again.
        self.assertEqual([b'x'], ws.receive(client_frame(0x2, b'x')))

    def test_text_that_is_not_utf8_closes_with_1007(self):
        ws, _, _ = self.open()
        received = ws.receive(client_frame(0x2, b'before') +
                              client_frame(0x1, b'\xff\xfe') +
                              client_frame(0x2, b'after'))
        self.assertEqual([b'before'], received)
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, 1007), (opcode,
                                       struct.unpack('>H', payload[:2])[0]))

    def test_frame_protocol_errors_are_refused_with_1002(self):
        # RFC 6455 sections 5.2, 5.5 and 7.4.1 (websockify says 1003 to
        # the first two, and takes a 1-byte close for one without code).
        for wire in (client_frame(0x3, b'what'),
                     client_frame(0x9, b'ping', fin=False),
                     client_frame(0x8, b'\x03')):
            ws, _, _ = self.open()
            ws.receive(wire)
            (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
            self.assertEqual((0x8, 1002), (opcode, struct.unpack(
                '>H', payload[:2])[0]), wire)
            self.assertTrue(payload[2:])

    def test_nothing_after_a_protocol_error_is_input(self):
        # websockify refuses a new message inside a fragmented one, and
        # goes on decoding: a continuation then completes a message.
        ws, _, _ = self.open()
        received = ws.receive(client_frame(0x2, b'a', fin=False) +
                              client_frame(0x2, b'b') +
                              client_frame(0x0, b'c'))
        self.assertEqual([], received)
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual(1002, struct.unpack('>H', payload[:2])[0])

    def test_unmasked_client_frame_is_a_protocol_error(self):
        ws, _, _ = self.open()
        ws.receive(b'\x82\x02hi')
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, 1002), (opcode,
                                       struct.unpack('>H', payload[:2])[0]))

    def test_oversized_frame_is_refused_before_it_is_buffered(self):
        ws, _, _ = self.open()
        header = b'\x82\xff' + struct.pack('>Q', 1 << 40) + os.urandom(4)
        ws.receive(header)
        ws.receive(b'x' * MAX)
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, CloseCode.MESSAGE_TOO_BIG),
                         (opcode, struct.unpack('>H', payload[:2])[0]))

    def test_eof_without_close_ends_abnormally(self):
        ws, _, _ = self.open()
        ws.receive_eof()
        self.assertTrue(ws.is_closed)
        self.assertEqual(1006, ws.close_code)

    def test_frame_trickled_a_byte_a_read_costs_no_object_per_read(self):
        ws, _, _ = self.open()
        payload = os.urandom(70000)
        wire = client_frame(0x2, payload)
        half = len(wire) // 2
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(half):
                self.assertEqual([], ws.receive(wire[i:i + 1]))
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertEqual(half, ws.buffered_bytes)
        # The bytes themselves and a growing buffer's slack; an object per
        # read would be over a megabyte.
        self.assertLess(held, 2 * half)
        self.assertEqual([payload], ws.receive(wire[half:]))
        self.assertEqual(0, ws.buffered_bytes)

    def test_frame_begun_in_a_buffer_the_caller_reuses_comes_out_intact(self):
        ws, _, _ = self.open()
        payload = os.urandom(100000)
        wire = client_frame(0x2, b'first') + client_frame(0x2, payload)
        read = bytearray(wire[:60000])
        self.assertEqual([b'first'], ws.receive(read))
        read[:] = b'\0' * len(read)
        self.assertEqual([payload], ws.receive(wire[60000:]))

    def test_frame_in_three_reads_with_a_whole_read_inside_comes_out(self):
        ws, _, _ = self.open()
        payloads = [os.urandom(300000), b'after']
        wire = b''.join(client_frame(0x2, p) for p in payloads)
        received = ws.receive(wire[:50000]) + ws.receive(wire[50000:250000])
        self.assertEqual([], received)
        self.assertEqual(250000, ws.buffered_bytes)
        self.assertEqual(payloads, ws.receive(wire[250000:]))

    def test_oversized_length_in_a_header_cut_in_three_is_refused(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'ok') + b'\x82\xff' + \
            struct.pack('>Q', MAX + 1) + os.urandom(4)
        received = ws.receive(wire[:9]) + ws.receive(wire[9:12])
        self.assertEqual([b'ok'], received)
        self.assertFalse(ws.close_sent)
        ws.receive(wire[12:] + b'x' * 1000)
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, CloseCode.MESSAGE_TOO_BIG),
                         (opcode, struct.unpack('>H', payload[:2])[0]))
        self.assertEqual(0, ws.buffered_bytes)
        self.assertEqual([], ws.receive(b'x' * 1000))

    def test_many_small_frames_in_one_read_come_out_in_order(self):
        ws, _, _ = self.open()
        payloads = [os.urandom(n) for n in
                    [0, 1, 5000, 3, 125, 126, 4096] * 20 + [70000, 9]]
        wire = b''.join(client_frame(0x2, p) for p in payloads)
        self.assertEqual(payloads, ws.receive(wire))
        self.assertFalse(ws.close_sent)

    def test_frame_over_the_limit_after_small_ones_in_one_read(self):
        ws, _, _ = self.open()
        payloads = [b'a' * n for n in range(1, 12)]
        wire = b''.join(client_frame(0x2, p) for p in payloads) + \
            b'\x82\xff' + struct.pack('>Q', MAX + 1) + os.urandom(4)
        self.assertEqual(payloads, ws.receive(wire))
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, CloseCode.MESSAGE_TOO_BIG),
                         (opcode, struct.unpack('>H', payload[:2])[0]))

    def test_whole_frames_inside_a_fragmented_message_are_refused(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'ab', fin=False) + \
            client_frame(0x2, b'cd') + client_frame(0x2, b'ef')
        self.assertNotIn(b'abcd', ws.receive(wire))
        opcodes_codes = [(opcode, struct.unpack('>H', payload[:2])[0])
                         for opcode, payload in
                         server_frames(b''.join(ws.take_outbound()))]
        self.assertEqual((0x8, CloseCode.PROTOCOL_ERROR), opcodes_codes[0])

    def test_short_frames_are_unmasked_as_sent_and_in_order(self):
        # Frames up to SHORT_FRAME_BYTES are unmasked here, longer ones
        # by websockify: mixed in one read, they come out as sent.
        ws, _, _ = self.open()
        limit = websocket.SHORT_FRAME_BYTES
        payloads = [os.urandom(size) for size in
                    (0, 1, 3, 4, 5, limit - 1, limit, limit + 1, 7, 70000,
                     2, 4096, limit)]
        received = ws.receive(b''.join(client_frame(0x2, payload)
                                       for payload in payloads))
        self.assertEqual(payloads, received)
        self.assertEqual([], ws.take_outbound())

    def test_unmask_is_the_xor_of_the_key_repeated(self):
        key = b'\x01\x02\x04\x80'
        self.assertEqual(b'', websocket.unmask(b'', key))
        self.assertEqual(bytes([0x01 ^ 0x61, 0x02 ^ 0x62, 0x04 ^ 0x63,
                                0x80 ^ 0x64, 0x01 ^ 0x65]),
                         websocket.unmask(b'abcde', key))

    def test_short_frame_after_a_fragmented_message_is_input(self):
        ws, _, _ = self.open()
        wire = client_frame(0x2, b'ab', fin=False) + \
            client_frame(0x0, b'cd') + client_frame(0x2, b'ef')
        self.assertEqual([b'abcd', b'ef'], ws.receive(wire))
        self.assertEqual([], ws.take_outbound())

    def test_short_frame_inside_a_fragmented_text_message_is_refused(self):
        ws, _, _ = self.open()
        self.assertEqual([], ws.receive(client_frame(0x1, b'{"a"',
                                                     fin=False)))
        # In another read: the fragment's state outlives the read.
        self.assertEqual([], ws.receive(client_frame(0x2, b'x')))
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, CloseCode.PROTOCOL_ERROR),
                         (opcode, struct.unpack('>H', payload[:2])[0]))

    def test_a_new_message_after_an_empty_first_fragment_is_refused(self):
        # Found by tox -e fuzz at 20,000 examples: the empty fragment is
        # held back from websockify, which then took the next message for
        # a whole one, and the client heard nothing.
        for second in (b'', b'x', b'y' * 200):
            for opcode in (0x1, 0x2):
                with self.subTest(size=len(second), opcode=opcode):
                    ws, _, _ = self.open()
                    wire = client_frame(0x2, b'', fin=False) + \
                        client_frame(opcode, second)
                    self.assertEqual([], ws.receive(wire))
                    (code, payload), = server_frames(
                        b''.join(ws.take_outbound()))
                    self.assertEqual(
                        (0x8, CloseCode.PROTOCOL_ERROR),
                        (code, struct.unpack('>H', payload[:2])[0]))

    def test_an_empty_first_fragment_then_its_continuation_is_input(self):
        ws, _, _ = self.open()
        self.assertEqual([b'ab'], ws.receive(
            client_frame(0x2, b'', fin=False) + client_frame(0x0, b'ab')))
        self.assertEqual([], ws.take_outbound())

    def test_short_frames_after_our_close_are_not_input(self):
        ws, _, _ = self.open()
        ws.close_with(1000, 'bye')
        self.assertEqual([], ws.receive(client_frame(0x2, b'late')))


class TextFrameTest(base.TestCase):
    def test_text_notes_go_out_as_text_frames_in_order_with_binary(self):
        ws, _, _ = ServerWebSocketTest.open(self)
        ws.send_binary(b'before')
        ws.send_text('{"spectators": 1} é')
        ws.send_binary(b'after')
        self.assertEqual([(0x2, b'before'),
                          (0x1, '{"spectators": 1} é'.encode()),
                          (0x2, b'after')],
                         server_frames(b''.join(ws.take_outbound())))

    def test_text_frames_of_every_length_form_parse_back(self):
        for length in (0, 125, 126, 65535, 65536):
            frame = websocket.text_frame(b'x' * length)
            header = websocket.parse_frame_header(frame)
            self.assertEqual((True, websocket.OPCODE_TEXT, length,
                              len(frame)),
                             (header.fin, header.opcode,
                              header.payload_length, header.length))

    def test_binary_frames_of_every_length_form_parse_back(self):
        for length in (0, 125, 126, 65535, 65536):
            ws, _, _ = ServerWebSocketTest.open(self)
            payload = os.urandom(length)
            ws.send_binary(payload)
            self.assertEqual([(0x2, payload)],
                             server_frames(b''.join(ws.take_outbound())))

    def test_binary_frames_are_websockifys_own(self):
        # Framed here as websockify's sendmsg frames them.
        for length in (0, 125, 126, 65535, 65536):
            ours, _, _ = ServerWebSocketTest.open(self)
            theirs, _, _ = ServerWebSocketTest.open(self)
            payload = os.urandom(length)
            ours.send_binary(payload)
            theirs.sendmsg(payload)
            self.assertEqual(b''.join(theirs.take_outbound()),
                             b''.join(ours.take_outbound()))

    def test_a_binary_message_is_bytes(self):
        ws, _, _ = ServerWebSocketTest.open(self)
        self.assertRaises(TypeError, ws.send_binary, bytearray(b'x'))

    def test_no_binary_is_sent_after_a_close(self):
        ws, _, _ = ServerWebSocketTest.open(self)
        ws.close_with(1000, 'bye')
        ws.take_outbound()
        ws.send_binary(b'late')
        self.assertEqual([], ws.take_outbound())

    def test_no_text_is_sent_after_a_close(self):
        ws, _, _ = ServerWebSocketTest.open(self)
        ws.close_with(1000, 'bye')
        ws.take_outbound()
        ws.send_text('late')
        self.assertEqual([], ws.take_outbound())


class WebsockifyInterfaceTest(base.TestCase):
    """What ServerWebSocket counts on in websockify beyond its documented
    methods. Each test fails when a websockify release changes that
    under it (tox -e websockify-oldest, -newest)."""

    # websockify's hooks the subclass overrides, on purpose.
    OVERRIDDEN = frozenset({'select_subprotocol', 'handle_ping', 'shutdown'})

    @staticmethod
    def _names_of_the_subclass(context=ast.Store):
        """What ServerWebSocket's source names on self: with ast.Store,
        every attribute and method it defines or sets; with ast.Load,
        every one it reads or calls."""
        tree = ast.parse(textwrap.dedent(
            inspect.getsource(websocket.ServerWebSocket)))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and context is ast.Store:
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and \
                    isinstance(node.ctx, context) and \
                    isinstance(node.value, ast.Name) and \
                    node.value.id == 'self':
                names.add(node.attr)
        return names - {'__init__'}

    def test_the_subclass_uses_no_private_name_of_websockifys(self):
        private = {name for name in set(dir(wsw.WebSocket)) |
                   set(vars(wsw.WebSocket())) if name.startswith('_')}
        self.assertEqual(
            set(), self._names_of_the_subclass(ast.Load) & private)

    def test_the_hooks_the_subclass_overrides_are_websockifys(self):
        for name in self.OVERRIDDEN:
            self.assertTrue(callable(getattr(wsw.WebSocket, name, None)),
                            name)

    def test_no_other_name_of_the_subclass_is_one_of_websockifys(self):
        # A name both used would have one overwrite the other's state.
        websockify_names = set(dir(wsw.WebSocket)) | \
            set(vars(wsw.WebSocket()))
        shared = (self._names_of_the_subclass() & websockify_names) - \
            self.OVERRIDDEN
        self.assertEqual(set(), shared)

    def test_the_documented_attributes_read_are_there(self):
        ws = wsw.WebSocket()
        for name in ('socket', 'close_code', 'close_reason'):
            self.assertIn(name, vars(ws))

    def test_each_frame_sent_reaches_the_socket_whole_at_once(self):
        # send_text queues its frame behind what websockify handed the
        # memory socket: nothing may wait in websockify's own buffer.
        ws, _, _ = ServerWebSocketTest.open(self)
        ws.sendmsg(b'abc')
        self.assertEqual([b'\x82\x03abc'], ws.take_outbound())
        ws.pong(b'p')
        self.assertEqual([b'\x8a\x01p'], ws.take_outbound())
        ws.close_with(1000, 'bye')
        self.assertEqual([b'\x88\x05\x03\xe8bye'], ws.take_outbound())

    def test_tox_tests_the_oldest_websockify_requirements_allow(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))))
        with open(os.path.join(root, 'requirements.txt')) as f:
            lowest, = re.findall(r'^websockify>=([0-9.]+)', f.read(), re.M)
        with open(os.path.join(root, 'tox.ini')) as f:
            pinned, = re.findall(r'^\s+websockify==([0-9.]+)$', f.read(),
                                 re.M)
        self.assertEqual(lowest, pinned)
