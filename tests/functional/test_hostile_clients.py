"""Hostile clients against a real proxy, while an honest one keeps typing.

The property tests of tests/unit drive the session in memory; here the
same kinds of input go to a real serialproxy-proxy of two workers over
RabbitMQ (proxy_world), on real sockets, down to the I/O layer: frames of
every length form (7-bit, 16-bit and 64-bit, up to 2 MiB), fragmented and
interleaved with control frames, masked or not; requests whose header
lines hold CR, LF, NUL or non-ASCII bytes, past the size and count
limits, or never finished.

The oracle is a model of what RFC 6455 and RFC 9110 ask of the proxy
(hostile_inputs.py, which also makes the inputs): a websocket gets every
message back from the echoing guest before the client says more (a stall
is a failure), and the guest gets the messages before the first bad
frame and nothing after; a bad frame ends the websocket with its close
code and a reason (1009 past max_frame_bytes, 1002 for protocol errors
such as an unmasked client frame, 1007 for text that is not UTF-8); a
bad request gets 400 or 431 with a reason, never a 5xx; no connection is
left silent past the handshake timeout; the proxy's log holds no
traceback and no error; an honest session on the same proxy keeps
echoing and the proxy's memory stays bounded.

The number of examples is the hypothesis profile's
(tests/unit/hypothesis_profiles.py): tox -e functional runs a few dozen
(SERIALPROXY_HYPOTHESIS_PROFILE=functional), tox -e fuzz 20,000.
"""

import base64
import os
import re
import socket
import struct
import threading
import time

from hypothesis import assume
from hypothesis import given
from hypothesis import strategies as st
from testtools import content

from tests.functional import hostile_inputs as hostile
from tests.harness import proxy_world
from tests.unit import hypothesis_profiles  # noqa: F401
from tests.harness import testcase

# Seconds the proxy may take to answer once the client said all it will.
ANSWER_TIMEOUT = 10
# What the two workers may grow by: handling messages of up to 1 MiB
# leaves each a high-water mark of about 8 MiB, flat from then on
# (measured: +14 MiB after 100 such examples, +15 MiB after 800); a
# frame's worth kept per example crosses it within a few dozen examples.
RSS_GROWTH_LIMIT_KIB = 64 * 1024
# The world's [console] handshake_timeout: a client that never finishes
# its request is answered after it.
HANDSHAKE_TIMEOUT = 3
# Echoed bytes the kernel surely holds on loopback while nobody reads.
GUEST_ECHO_BUFFERED = 64 * 1024
# Seconds between the pieces a client sends its frames in.
PIECE_PAUSE = 0.005


# What the proxy answers ------------------------------------------------------

class ServerFrames:
    """Reads the proxy's frames: console bytes, notes, pongs, its close."""

    def __init__(self, sock, buf=b''):
        self.sock = sock
        self.buf = bytearray(buf)
        self.echoed = bytearray()
        self.notes = 0
        self.close = None      # (code or None, reason) once it came
        self.after_close = 0   # frames after the close (must be none)
        self.eof = False

    def read(self, deadline):
        """One recv() and the frames it completes; False past deadline."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        except ConnectionResetError:
            chunk = b''
        if not chunk:
            self.eof = True
        self.buf += chunk
        self._parse()
        return True

    def _parse(self):
        while True:
            header = proxy_world._header(self.buf, 0)
            if header is None:
                return
            opcode, head_length, length = header
            if len(self.buf) < head_length + length:
                return
            payload = bytes(self.buf[head_length:head_length + length])
            del self.buf[:head_length + length]
            if self.close is not None:
                self.after_close += 1
            elif opcode == hostile.CLOSE:
                code = struct.unpack('>H', payload[:2])[0] \
                    if len(payload) >= 2 else None
                self.close = (code, payload[2:].decode('utf-8'))
            elif opcode == hostile.BINARY:
                self.echoed += payload
            elif opcode == hostile.TEXT:
                self.notes += 1

    def until(self, done, what):
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not done():
            if self.eof:
                raise AssertionError('connection ended, waiting for %s'
                                     % what)
            if not self.read(deadline):
                raise AssertionError(
                    'no %s %ds after the client was done (got %d bytes '
                    'back, close %r)' % (what, ANSWER_TIMEOUT,
                                         len(self.echoed), self.close))


class Sender(threading.Thread):
    """Sends bytes while the test reads: a proxy answering a large paste
    must not wait for a client that waits for its own send to finish.

    The bytes go in pieces cut at cuts (offsets), a moment apart, so that
    the proxy reads frames and frame headers cut anywhere.
    """

    def __init__(self, sock, data, cuts=()):
        super().__init__(daemon=True)
        self.sock, self.data = sock, data
        self.cuts = sorted({cut for cut in cuts if 0 < cut < len(data)})
        self.error = None

    def run(self):
        try:
            start = 0
            for cut in self.cuts + [len(self.data)]:
                self.sock.sendall(self.data[start:cut])
                start = cut
                time.sleep(PIECE_PAUSE)
        except OSError as exc:
            self.error = exc  # refused before the end: the close says why


class RecordingEcho:
    """A guest serial port that echoes, remembering what it got."""

    def __init__(self):
        self.received = bytearray()
        self.connected = threading.Event()
        self.ended = threading.Event()

    def __call__(self, sock):
        self.connected.set()
        try:
            proxy_world.echo(RecordingSocket(sock, self.received))
        finally:
            self.ended.set()


class RecordingSocket:
    def __init__(self, sock, received):
        self.sock, self.received = sock, received

    def recv(self, size):
        data = self.sock.recv(size)
        self.received += data
        return data

    def sendall(self, data):
        self.sock.sendall(data)


# The tests -------------------------------------------------------------------

class HostileClientsTest(testcase.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.world = proxy_world.ProxyWorld(workers=2, options={
            'console': {'handshake_timeout': HANDSHAKE_TIMEOUT,
                        'max_frame_bytes': hostile.MAX_FRAME_BYTES}})
        cls.world.setUp()  # cleans up after itself when it fails
        try:
            cls.guest = proxy_world.GuestPort(proxy_world.echo)
            cls.guest.setUp()
            cls.honest = cls.world.connect(cls.world.token(cls.guest.port))
            cls.rss_before = proxy_world.tree_rss_kib(cls.world.proxy.pid)
            cls.log_path = [path for label, _, path
                            in cls.world.deployment.processes
                            if label == 'serialproxy-proxy'][0]
            cls.log_read = 0
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

    def assertLogClean(self):
        """No traceback and no error in what the proxy logged since the
        last look."""
        with open(self.log_path, 'rb') as f:
            f.seek(type(self).log_read)
            new = f.read()
        type(self).log_read += len(new)
        bad = [line for line in new.decode(errors='replace').splitlines()
               if 'Traceback' in line or ' ERROR ' in line]
        if bad:
            self.addDetail('proxy-log', content.text_content(
                new.decode(errors='replace')[-20000:]))
            raise AssertionError('the proxy logged: %s' % bad[:5])

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

    def assertAnsweredSanely(self, answer, statuses=None):
        """An HTTP answer (or none); a 4xx carries its reason."""
        status = re.match(rb'HTTP/1\.1 (\d{3}) ', answer)
        if answer and status is None:
            raise AssertionError('not an HTTP answer: %r' % answer[:200])
        if status:
            code = int(status.group(1))
            if statuses is not None:
                self.assertIn(code, statuses, answer[:300])
            self.assertIn(code // 100, (1, 2, 4), answer[:300])
            if code >= 400:
                head, _, body = answer.partition(b'\r\n\r\n')
                self.assertTrue(body.strip(), 'no reason: %r' % answer)
        elif statuses is not None:
            raise AssertionError('no answer; expected one of %s'
                                 % sorted(statuses))

    def upgrade_request(self, token, extra=b''):
        key = base64.b64encode(os.urandom(16))
        return (b'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                b'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                b'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
                % (token.encode(), key)) + extra

    # HTTP ------------------------------------------------------------------

    @given(st.binary(max_size=3000))
    def test_any_bytes(self, data):
        self.assertAnsweredSanely(self.exchange(data))
        self.assertLogClean()

    @given(st.lists(hostile.header_lines(), max_size=8),
           st.sampled_from([0, 0, 0, hostile.MAX_HEADER_LINES - 6,
                            hostile.MAX_HEADER_LINES + 1, 2000]))
    def test_any_header_lines_around_a_good_token(self, lines, padding):
        lines = [b'X-Pad-%d: p' % i for i in range(padding)] + lines
        token = self.world.token(self.guest.port)
        head = self.upgrade_request(token)
        answer = self.exchange(
            head + b''.join(line + b'\r\n' for line in lines) + b'\r\n')
        self.assertAnsweredSanely(answer,
                                  hostile.expected_statuses(lines, head))
        self.assertLogClean()

    @given(st.binary(min_size=1, max_size=200), st.booleans())
    def test_requests_ended_before_they_are_whole(self, tail, good_start):
        """The client ends its side with half a request: the answer
        comes at once, not after the handshake timeout."""
        start = self.upgrade_request('t0k3n') if good_start else b''
        data = (start + tail).split(b'\r\n\r\n')[0]
        assume(data)  # a connection that sends nothing is not answered
        started = time.monotonic()
        answer = self.exchange(data)
        self.assertAnsweredSanely(answer, {400, 431})
        self.assertLess(time.monotonic() - started, HANDSHAKE_TIMEOUT)
        self.assertLogClean()

    def test_requests_never_finished_are_answered_in_time(self):
        """Clients that keep their side open with half a request (or
        none) get a 400 at the handshake timeout, not silence."""
        starts = [b'', b'G', b'GET /?token=x HTTP/1.1\r\n',
                  self.upgrade_request('t0k3n'),
                  self.upgrade_request('t0k3n', b'X-Long: ' + b'v' * 9000)]
        socks = []
        for start in starts:
            sock = socket.create_connection(('127.0.0.1', self.world.port))
            self.addCleanup(sock.close)
            sock.sendall(start)
            socks.append(sock)
        started = time.monotonic()
        for start, sock in zip(starts, socks):
            sock.settimeout(HANDSHAKE_TIMEOUT + ANSWER_TIMEOUT)
            answer = b''
            while chunk := sock.recv(65536):
                answer += chunk
            self.assertTrue(answer.startswith(b'HTTP/1.1 400 '),
                            (start[:40], answer))
            self.assertIn(b'Request not received in time', answer)
        self.assertLess(time.monotonic() - started, HANDSHAKE_TIMEOUT + 3)
        self.assertLogClean()

    # Websocket -------------------------------------------------------------

    @given(hostile.frame_sequences(), hostile.cut_offsets)
    def test_any_frames_after_a_good_handshake(self, frames, cuts):
        guest = RecordingEcho()
        port = proxy_world.GuestPort(guest)
        port.setUp()
        try:
            with socket.create_connection(('127.0.0.1', self.world.port),
                                          timeout=ANSWER_TIMEOUT) as sock:
                self.check_frames(sock, self.world.token(port.port),
                                  frames, guest, cuts)
        finally:
            port.cleanUp()
        # Whatever came, the honest session on the same proxy still works.
        self.assertHonestEchoes()
        self.assertLogClean()

    def check_frames(self, sock, token, frames, guest, cuts=()):
        expected = hostile.expected_outcome(frames)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(self.upgrade_request(token, b'\r\n'))
        answer = b''
        while b'\r\n\r\n' not in answer:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, 'EOF before the handshake answer')
            answer += chunk
        head, rest = answer.split(b'\r\n\r\n', 1)
        self.assertTrue(head.startswith(b'HTTP/1.1 101 '), head)
        proxy = ServerFrames(sock, rest)
        sender = Sender(sock, b''.join(frame.encode() for frame in frames),
                        cuts)
        sender.start()
        if expected.close_codes is None:
            # Every message echoed before the client says more: a frame
            # the proxy holds until the next read never comes back.
            proxy.until(lambda: len(proxy.echoed) >= len(expected.to_guest)
                        and proxy.notes >= expected.notes,
                        'echo of all %d bytes' % len(expected.to_guest))
            self.assertEqual(expected.to_guest, bytes(proxy.echoed))
            sender.join(ANSWER_TIMEOUT)
            self.assertIsNone(sender.error)
            sock.sendall(hostile.client_frame(
                hostile.CLOSE, struct.pack('>H', hostile.NORMAL)))
            proxy.until(lambda: proxy.close is not None, 'close answer')
            self.assertEqual(hostile.NORMAL, proxy.close[0])
        else:
            proxy.until(lambda: proxy.close is not None,
                        'close frame (one of %s)' % expected.close_codes)
            self.assertIn(proxy.close[0], expected.close_codes,
                          proxy.close)
            if not expected.client_close:
                self.assertTrue(proxy.close[1], 'a close without reason')
            # Echoed: what the guest got before the close, or less.
            self.assertTrue(expected.to_guest.startswith(proxy.echoed),
                            '%d bytes echoed, not a start of the %d sent'
                            % (len(proxy.echoed), len(expected.to_guest)))
            sender.join(ANSWER_TIMEOUT)
            if not expected.client_close:
                try:
                    sock.sendall(hostile.client_frame(hostile.CLOSE, b''))
                except OSError:
                    pass  # the proxy may have ended the connection
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        proxy.until(lambda: proxy.eof, 'end of the connection')
        self.assertEqual(0, proxy.after_close, 'frames after the close')
        self.assertTrue(guest.ended.wait(ANSWER_TIMEOUT),
                        'guest connection not closed')
        # The messages before the first bad frame, nothing after. All of
        # them, unless the guest was still echoing a large paste when the
        # session ended: the proxy no longer reads its output then, and
        # the echo's own sends hold it back.
        received = bytes(guest.received)
        self.assertTrue(expected.to_guest.startswith(received),
                        'the guest got %d bytes, not a start of the %d sent'
                        % (len(received), len(expected.to_guest)))
        if expected.close_codes is None or \
                len(expected.to_guest) <= GUEST_ECHO_BUFFERED:
            self.assertEqual(len(expected.to_guest), len(received),
                             'bytes the guest got')

    def test_zz_honest_session_and_memory_after_it_all(self):
        # Named to run last in the class (stestr orders tests by name).
        self.assertHonestEchoes()
        grown = proxy_world.tree_rss_kib(self.world.proxy.pid) - \
            self.rss_before
        self.assertLess(grown, RSS_GROWTH_LIMIT_KIB)
        self.assertLogClean()


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


class PingFloodTest(testcase.TestCase):
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
