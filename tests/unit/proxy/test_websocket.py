import base64
import hashlib
import os
import struct
import tracemalloc

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

    def test_unknown_opcodes_are_refused_with_1003(self):
        ws, _, _ = self.open()
        ws.receive(client_frame(0x3, b'what'))
        (opcode, payload), = server_frames(b''.join(ws.take_outbound()))
        self.assertEqual((0x8, 1003), (opcode,
                                       struct.unpack('>H', payload[:2])[0]))

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
