"""Hostile clients against a real proxy, while an honest one keeps typing.

The property tests of tests/unit drive the session in memory; here the
same kinds of input (any bytes, any request, any frames after a good
handshake) go to a real serialproxy-proxy of two workers over RabbitMQ
(proxy_world), on real sockets. For every input the proxy ends the
connection once the client has said all it will (no hang), with a 4xx
or a close code when it answers at all, and never a 5xx; meanwhile an
honest session on the same proxy keeps echoing, and the proxy's memory
stays bounded. tox -e fuzz runs it at length
(SERIALPROXY_HYPOTHESIS_PROFILE=fuzz).
"""

import base64
import os
import re
import socket
import struct
import time

from hypothesis import given
from hypothesis import strategies as st
from testtools import content
import testtools

from tests.functional import proxy_world
from tests.unit import hypothesis_profiles  # noqa: F401

# Seconds the proxy may take to end a connection whose client is done.
ANSWER_TIMEOUT = 10
RSS_GROWTH_LIMIT_KIB = 30 * 1024

frames = st.lists(st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3]),
    st.binary(max_size=2000), st.booleans(), st.booleans(),
    st.integers(0, 7)), max_size=6)


def client_frame(opcode, payload, fin, masked, reserved):
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


class HostileClientsTest(testtools.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.world = proxy_world.ProxyWorld(workers=2)
        cls.world.setUp()  # cleans up after itself when it fails
        try:
            cls.guest = proxy_world.GuestPort(proxy_world.echo)
            cls.guest.setUp()
            cls.honest = cls.world.connect(cls.world.token(cls.guest.port))
            cls.rss_before = proxy_world.tree_rss_kib(cls.world.proxy.pid)
        except Exception:
            cls.world.cleanUp()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.honest.close()
        cls.guest.cleanUp()
        cls.world.cleanUp()
        super().tearDownClass()

    def assertHonestEchoes(self):
        payload = os.urandom(4096)
        self.honest.send(payload)
        self.assertEqual(payload, self.honest.receive(len(payload)))

    def exchange(self, data):
        """Send data, end our side, read all the proxy says until EOF."""
        sock = socket.create_connection(('127.0.0.1', self.world.port),
                                        timeout=ANSWER_TIMEOUT)
        try:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before we were done: the answer says why
            answer = b''
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                except TimeoutError:
                    raise AssertionError(
                        'no end %ds after the client was done; so far: %r'
                        % (ANSWER_TIMEOUT, answer[:200]))
                if not chunk:
                    break
                answer += chunk
            return answer
        finally:
            sock.close()

    def assertAnsweredSanely(self, answer):
        status = re.match(rb'HTTP/1\.1 (\d{3}) ', answer)
        if answer and status is None:
            raise AssertionError('not an HTTP answer: %r' % answer[:200])
        if status:
            self.assertIn(int(status.group(1)) // 100, (1, 2, 4), answer)

    @given(st.binary(max_size=3000))
    def test_any_bytes(self, data):
        self.assertAnsweredSanely(self.exchange(data))

    @given(st.lists(st.text(st.characters(min_codepoint=0x20,
                                          max_codepoint=0x7e),
                            max_size=60), max_size=8))
    def test_any_header_lines_around_a_good_token(self, lines):
        token = self.world.token(self.guest.port)
        request = ['GET /?token=%s HTTP/1.1' % token, 'Host: 127.0.0.1']
        request += lines
        self.assertAnsweredSanely(self.exchange(
            ('\r\n'.join(request) + '\r\n\r\n').encode()))

    @given(frames)
    def test_any_frames_after_a_good_handshake(self, sent):
        token = self.world.token(self.guest.port)
        key = base64.b64encode(os.urandom(16)).decode()
        handshake = (
            'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Upgrade: websocket\r\nConnection: Upgrade\r\n'
            'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
            % (token, key)).encode()
        answer = self.exchange(
            handshake + b''.join(client_frame(*f) for f in sent))
        self.assertTrue(answer.startswith(b'HTTP/1.1 101 '), answer[:200])
        # Whatever came, the honest session on the same proxy still works.
        self.assertHonestEchoes()

    def test_zz_honest_session_and_memory_after_it_all(self):
        # Named to run last in the class (stestr orders tests by name).
        self.assertHonestEchoes()
        grown = proxy_world.tree_rss_kib(self.world.proxy.pid) - \
            self.rss_before
        self.assertLess(grown, RSS_GROWTH_LIMIT_KIB)


# The flood: pings a client sends while it reads nothing.
FLOOD_BYTES = 200 * 1024 * 1024
FLOOD_RSS_GROWTH_LIMIT_KIB = 50 * 1024
# A sendall() of one batch making no progress this long: the proxy
# stopped reading the flooding client.
FLOOD_STALL_SECONDS = 10
# Seconds an echo through the guest may take for the other user while
# the flood goes on.
ROUND_TRIP_LIMIT = 2.0
ROUND_TRIP_EVERY_BYTES = 16 * 1024 * 1024


class PingFloodTest(testtools.TestCase):
    """A client that never reads and sends nothing but pings: what the
    proxy holds for it stays bounded, and another user's session on the
    same (single) worker keeps its round trip."""

    def setUp(self):
        super().setUp()
        self.world = self.useFixture(proxy_world.ProxyWorld(workers=1))
        self.guest = self.useFixture(proxy_world.GuestPort(
            proxy_world.echo))

    def non_reading_client(self):
        """A websocket whose receive window is small (SO_RCVBUF before
        connect), so what it leaves unread backs up into the proxy."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(ANSWER_TIMEOUT)
        sock.connect(('127.0.0.1', self.world.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((
            'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
            'Upgrade: websocket\r\nConnection: Upgrade\r\n'
            'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
            % (self.world.token(self.guest.port), self.world.port,
               key)).encode())
        answer = b''
        while b'\r\n\r\n' not in answer:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, 'EOF before the handshake answer')
            answer += chunk
        self.assertTrue(answer.startswith(b'HTTP/1.1 101 '), answer[:200])
        return sock

    def round_trip(self, honest):
        payload = os.urandom(4096)
        started = time.monotonic()
        honest.send(payload)
        self.assertEqual(payload, honest.receive(len(payload)))
        return time.monotonic() - started

    def test_pings_of_a_client_that_never_reads_hold_no_memory(self):
        honest = self.world.connect(self.world.token(self.guest.port))
        self.addCleanup(honest.close)
        self.round_trip(honest)
        flooder = self.non_reading_client()
        rss_before = proxy_world.tree_rss_kib(self.world.proxy.pid)
        # 8192 pings of 125 bytes each, about 1 MiB a batch.
        batch = proxy_world.frame(b'p' * 125,
                                  proxy_world.OPCODE_PING) * 8192
        flooder.settimeout(FLOOD_STALL_SECONDS)
        sent, since_check, slowest, outcome = 0, 0, 0.0, 'all sent'
        while sent < FLOOD_BYTES:
            try:
                flooder.sendall(batch)
            except TimeoutError:
                outcome = 'the proxy stopped reading'
                break
            except (BrokenPipeError, ConnectionResetError):
                outcome = 'the proxy closed the connection'
                break
            sent += len(batch)
            since_check += len(batch)
            if since_check >= ROUND_TRIP_EVERY_BYTES:
                since_check = 0
                slowest = max(slowest, self.round_trip(honest))
        slowest = max(slowest, self.round_trip(honest))
        grown = proxy_world.tree_rss_kib(self.world.proxy.pid) - rss_before
        figures = ('%d MiB of pings sent (%s); proxy RSS grew %d KiB; '
                   'slowest echo round trip of the other user %.3f s'
                   % (sent >> 20, outcome, grown, slowest))
        self.addDetail('flood', content.text_content(figures))
        if os.environ.get('SERIALPROXY_PRINT_FIGURES'):
            print(figures)
        self.assertLess(grown, FLOOD_RSS_GROWTH_LIMIT_KIB, figures)
        self.assertLess(slowest, ROUND_TRIP_LIMIT, figures)
