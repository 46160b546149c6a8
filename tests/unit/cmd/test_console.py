"""serialproxy-console's websocket session: the pump with a scripted
websocket, and resuming against a fake proxy on a real socket (a thread
that plays one script per connection: the stream note, console bytes,
then a close frame, a TCP reset or an end without a close frame)."""

import base64
import hashlib
import io
import json
import os
import socket
import struct
import threading
import time
import urllib.parse

import fixtures
import websocket

from serialproxy.cmd import console
from tests.unit import base
from tests.unit.proxy import fakes

ABNF = websocket.ABNF
GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class ScriptedWebSocket:
    """Frames to hand out one by one; readable while any are left."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.sent = []
        self.read_end, self.write_end = os.pipe()
        os.write(self.write_end, b'x')
        self.sock = self.read_end

    def recv_frame(self):
        return self.frames.pop(0)

    def send_binary(self, data):
        self.sent.append(data)


class PumpTest(base.TestCase):
    def test_console_bytes_are_written_and_the_proxys_notes_are_not(self):
        frames = [
            ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b'{"spectators": 1}'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b'login: '),
            ABNF(0, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b'{"permis'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CONT, 0, b'sions": []}'),
            ABNF(0, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b'root'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CONT, 0, b'\r\n'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0,
                 (4001).to_bytes(2, 'big') + b'Disconnected'),
        ]
        ws = ScriptedWebSocket(frames)
        self.addCleanup(os.close, ws.read_end)
        self.addCleanup(os.close, ws.write_end)
        stdin_read, stdin_write = os.pipe()
        self.addCleanup(os.close, stdin_read)
        self.addCleanup(os.close, stdin_write)
        stdout = io.BytesIO()
        ending = console._pump(ws, stdin_read, stdout)
        self.assertEqual(console.Ending(
            'closed by the proxy: 4001 Disconnected', False), ending)
        self.assertEqual(b'login: root\r\n', stdout.getvalue())


def note(offset, requested=None, history=0, first_available=0):
    return ('text', json.dumps({'stream': {
        'offset': offset, 'requested': requested,
        'first_available': first_available, 'history': history}}))


def close(code, reason=''):
    return ('close', code, reason)


RESET = ('reset',)
# The connection ends without a close frame (the proxy's process died).
EOF = ('eof',)


class FakeProxy:
    """A websocket server on a real socket: connection n plays
    scripts[n], a list of steps, or refuses the upgrade with
    ('refuse', status, reason). queries holds each upgrade's query."""

    def __init__(self, test, scripts, on_closed=None):
        self.scripts = list(scripts)
        self.queries = []
        # The pings each 'answer' or 'silent' step got from the client.
        self.pings = []
        # The console bytes each connection received (binary frames).
        self.received = []
        self.on_closed = on_closed or (lambda number: None)
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.listener.settimeout(10)
        test.addCleanup(self.listener.close)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        test.addCleanup(self.thread.join, 10)

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/?token=secret-token' % (
            self.listener.getsockname()[1])

    def query(self, n):
        return urllib.parse.parse_qs(self.queries[n])

    def _serve(self):
        while self.scripts:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with sock:
                sock.settimeout(10)
                self._play(sock, self.scripts.pop(0))
            self.on_closed(len(self.queries) - 1)

    def _play(self, sock, script):
        request = b''
        while b'\r\n\r\n' not in request:
            request += sock.recv(4096)
        head = request.decode().split('\r\n')
        self.queries.append(urllib.parse.urlsplit(
            head[0].split(' ')[1]).query)
        self.received.append(b'')
        if script and script[0] == 'refuse':
            _, status, reason = script
            body = reason.encode()
            sock.sendall(b'HTTP/1.1 %d Refused\r\nContent-Length: %d\r\n'
                         b'Connection: close\r\n\r\n%s'
                         % (status, len(body), body))
            self._drain(sock)
            return
        key = [line.split(':', 1)[1].strip() for line in head
               if line.lower().startswith('sec-websocket-key:')][0]
        accept = base64.b64encode(hashlib.sha1(
            (key + GUID).encode()).digest()).decode()
        sock.sendall(('HTTP/1.1 101 Switching Protocols\r\n'
                      'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                      'Sec-WebSocket-Accept: %s\r\n'
                      'Sec-WebSocket-Protocol: binary\r\n\r\n'
                      % accept).encode())
        for step in script:
            kind = step[0]
            if kind == 'text':
                sock.sendall(frame(ABNF.OPCODE_TEXT, step[1].encode()))
            elif kind == 'binary':
                sock.sendall(frame(ABNF.OPCODE_BINARY, step[1]))
            elif kind == 'close':
                sock.sendall(frame(ABNF.OPCODE_CLOSE, struct.pack(
                    '>H', step[1]) + step[2].encode()))
            elif kind == 'answer':
                # Quiet for step[1] seconds, answering pings.
                self.pings.append(self._listen(sock, step[1], True))
            elif kind == 'silent':
                # Nothing at all for step[1] seconds, as a network that
                # died without a reset; then gone.
                self.pings.append(self._listen(sock, step[1], False))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack('ii', 1, 0))
                return
            elif kind == 'reset':
                # A reset: nothing more, no close frame, no FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack('ii', 1, 0))
                return
        self.received[-1] = client_console_bytes(self._drain(sock))

    @staticmethod
    def _listen(sock, seconds, answer):
        """Read the client's frames for seconds, answering its pings
        with pongs when answer; how many pings came."""
        deadline = time.monotonic() + seconds
        pending, pings = b'', 0
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                break
            if not data:
                break
            pending += data
            while len(pending) >= 2:
                size = whole_frame_size(pending)
                if size is None or len(pending) < size:
                    break
                (opcode, payload), = fakes.server_frames(pending[:size])
                pending = pending[size:]
                if opcode == ABNF.OPCODE_PING:
                    pings += 1
                    if answer:
                        sock.sendall(frame(ABNF.OPCODE_PONG, payload))
        sock.settimeout(10)
        return pings

    @staticmethod
    def _drain(sock):
        """End (FIN), then read what the client still sends, so that
        closing sends no reset; what it sent."""
        sock.shutdown(socket.SHUT_WR)
        sent = b''
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                sent += data
        except OSError:
            pass
        return sent


def whole_frame_size(data):
    """The size of the client frame data starts with (masked), or None
    while its header is not all in."""
    length, offset = data[1] & 0x7f, 2
    if length == 126:
        if len(data) < 4:
            return None
        length, offset = struct.unpack('>H', data[2:4])[0], 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, offset = struct.unpack('>Q', data[2:10])[0], 10
    return offset + 4 + length


def client_console_bytes(data):
    """The payloads of the binary frames a client sent."""
    return b''.join(payload for opcode, payload in fakes.server_frames(data)
                    if opcode == ABNF.OPCODE_BINARY)


def frame(opcode, payload):
    """An unmasked frame, as a server sends."""
    return ABNF(1, 0, 0, 0, opcode, 0, payload).format()


def binary(data):
    return ('binary', data)


class ResumeTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatchObject(console, 'BACKOFF_FIRST',
                                                 0.01))
        self.useFixture(fixtures.MockPatchObject(console, 'CONNECT_TIMEOUT',
                                                 5))
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        self.stdin, self.stdin_write = os.pipe()
        self.addCleanup(os.close, self.stdin)
        self.addCleanup(os.close, self.stdin_write)

    def run_console(self, scripts, on_closed=None, **kwargs):
        """(exit status, what the terminal got, the proxy)."""
        proxy = FakeProxy(self, scripts, on_closed)
        stdout = io.BytesIO()
        status = console.run(proxy.url, self.stdin, stdout, **kwargs)
        return status, stdout.getvalue(), proxy


class ResumeTest(ResumeTestCase):

    def test_offsets_are_asked_for_and_counted_across_a_reset(self):
        status, shown, proxy = self.run_console([
            [note(100), binary(b'hello'), binary(b' world'), RESET],
            [note(111, requested=111), binary(b'!'), close(1000)]])
        self.assertEqual(0, status)
        self.assertEqual(b'hello world!', shown)
        self.assertEqual({'token': ['secret-token'], 'offsets': ['1']},
                         proxy.query(0))
        self.assertEqual({'token': ['secret-token'], 'resume': ['111']},
                         proxy.query(1))
        said = self.stderr.getvalue()
        self.assertIn('connection lost (Connection reset by peer); '
                      'reconnecting in 0.0 s to resume at offset 111 '
                      '(1 of 6)', said)
        self.assertIn('reconnected: resuming at offset 111', said)
        self.assertIn('closed by the proxy: 1000', said)
        self.assertNotIn('secret-token', said)

    def test_end_without_a_close_frame_and_going_away_are_resumed(self):
        status, shown, proxy = self.run_console([
            [note(0), binary(b'a'), EOF],
            [note(1, requested=1), binary(b'b'), close(1001, 'shutting')],
            [note(2, requested=2), binary(b'c'), close(4001, 'operator')]])
        self.assertEqual(b'abc', shown)
        self.assertEqual(['1', '2'], [proxy.query(n)['resume'][0]
                                      for n in (1, 2)])
        self.assertIn('closed without a close frame', self.stderr.getvalue())
        self.assertIn('closed by the proxy: 4001 operator',
                      self.stderr.getvalue())

    def test_deliberate_closes_are_not_resumed(self):
        for code in (1000, 4001, 4002, 4006, 4008, 4009):
            self.stderr.truncate(0)
            status, shown, proxy = self.run_console([
                [note(5), binary(b'x'), close(code, 'why')]])
            self.assertEqual(0, status)
            self.assertEqual(b'x', shown)
            self.assertEqual(1, len(proxy.queries))
            self.assertIn('closed by the proxy: %d why' % code,
                          self.stderr.getvalue())
            self.assertNotIn('reconnecting', self.stderr.getvalue())

    def test_since_opens_with_resume(self):
        status, shown, proxy = self.run_console(
            [[note(42, requested=42), binary(b'later'), close(1000)]],
            since=42)
        self.assertEqual({'token': ['secret-token'], 'resume': ['42']},
                         proxy.query(0))
        self.assertEqual(b'later', shown)

    def test_history_loses_its_terminal_queries_but_counts_them(self):
        # Eight bytes of history, a cursor position query cut in two by
        # frames among them; the live one after is left for the terminal
        # to answer. All twelve bytes are counted.
        status, shown, proxy = self.run_console([
            [note(10, requested=10, history=8), binary(b'ab\x1b['),
             binary(b'6ncd\x1b[6n'), RESET],
            [note(22, requested=22), close(1000)]], since=10)
        self.assertEqual(b'abcd\x1b[6n', shown)
        self.assertEqual('22', proxy.query(1)['resume'][0])

    def test_drop_before_the_note_resumes_where_it_asked(self):
        status, shown, proxy = self.run_console([
            [RESET], [note(7, requested=7), binary(b'z'), close(1000)]],
            since=7)
        self.assertEqual(['7', '7'], [proxy.query(n)['resume'][0]
                                      for n in (0, 1)])
        self.assertEqual(b'z', shown)

    def test_history_no_longer_kept_or_a_new_boot_is_said(self):
        self.run_console([[note(500, requested=100, first_available=500),
                           close(1000)]], since=100)
        self.assertIn('bytes 100 to 500 are no longer kept',
                      self.stderr.getvalue())
        self.run_console([[note(30, requested=100), close(1000)]],
                         since=100)
        self.assertIn('the console log began again', self.stderr.getvalue())

    def test_still_held_console_is_tried_again_then_a_new_token_needed(
            self):
        status, shown, proxy = self.run_console([
            [note(0), binary(b'12'), RESET],
            ('refuse', 409, 'Console in use'),
            ('refuse', 401, 'Token expired')])
        self.assertEqual(1, status)
        self.assertEqual(['2', '2'], [proxy.query(n)['resume'][0]
                                      for n in (1, 2)])
        said = self.stderr.getvalue()
        self.assertIn('refused: 409 Console in use; reconnecting', said)
        self.assertIn('refused: 401 Token expired. "serialproxy-console '
                      '--since 2 URL", with a new URL, goes on from here',
                      said)

    def test_reconnections_in_a_row_are_bounded(self):
        status, shown, proxy = self.run_console(
            [[note(3), RESET]] * 3, since=3, reconnects=2)
        self.assertEqual(1, status)
        self.assertEqual(3, len(proxy.queries))
        self.assertIn('gave up after 2 reconnections',
                      self.stderr.getvalue())

    def test_progress_starts_the_count_again(self):
        # Each resumed connection printed something: a session dropped
        # more often than --reconnects goes on.
        scripts = [[note(n, requested=n), binary(b'%d' % n), RESET]
                   for n in range(4)]
        status, shown, proxy = self.run_console(
            scripts + [[note(4, requested=4), close(1000)]], since=0,
            reconnects=1)
        self.assertEqual(0, status)
        self.assertEqual(b'0123', shown)

    def typed_after_the_first_drop(self, data):
        def on_closed(number):
            if number == 0:
                # While the CLI waits to reconnect.
                time.sleep(0.05)
                os.write(self.stdin_write, data)
        return on_closed

    def test_keys_typed_while_down_go_to_the_resumed_session(self):
        self.useFixture(fixtures.MockPatchObject(console, 'BACKOFF_FIRST',
                                                 0.5))
        status, shown, proxy = self.run_console(
            [[note(0), RESET], [note(0, requested=0), EOF],
             [note(0, requested=0), close(1000)]],
            on_closed=self.typed_after_the_first_drop(b'ls\r'))
        self.assertEqual(0, status)
        self.assertEqual([b'', b'ls\r', b''], proxy.received)

    def test_ctrl_close_bracket_while_down_leaves(self):
        self.useFixture(fixtures.MockPatchObject(console, 'BACKOFF_FIRST',
                                                 0.5))
        status, shown, proxy = self.run_console(
            [[note(0), binary(b'a'), RESET]],
            on_closed=self.typed_after_the_first_drop(console.ESCAPE))
        self.assertEqual(0, status)
        self.assertEqual(1, len(proxy.queries))
        self.assertIn('left the console', self.stderr.getvalue())

    def test_a_terminal_that_went_away_is_no_drop_to_resume(self):
        class GoneTerminal:
            def write(self, data):
                raise OSError(5, 'Input/output error')

        proxy = FakeProxy(self, [[note(0), binary(b'x'), EOF]])
        self.assertEqual(0, console.run(proxy.url, self.stdin,
                                        GoneTerminal()))
        self.assertEqual(1, len(proxy.queries))
        self.assertIn('the terminal went away', self.stderr.getvalue())

    def test_proxy_that_tells_no_offsets_is_not_resumed(self):
        for script in ([note(None), binary(b'replay'), RESET],
                       # An older proxy: no note at all.
                       [binary(b'replay'), RESET]):
            self.stderr.truncate(0)
            status, shown, proxy = self.run_console([script])
            self.assertEqual(1, status)
            self.assertEqual(b'replay', shown)
            self.assertEqual(1, len(proxy.queries))
            self.assertIn('not resumed: the proxy tells no stream offsets',
                          self.stderr.getvalue())

    def test_refused_first_connection_says_why(self):
        status, shown, proxy = self.run_console(
            [('refuse', 409, 'Console in use since 2026-12-06')])
        self.assertEqual(1, status)
        self.assertIn('refused: 409 Console in use since 2026-12-06',
                      self.stderr.getvalue())


class KeepaliveTest(ResumeTestCase):

    def test_a_connection_gone_silent_is_found_and_resumed(self):
        # No reset, no FIN: without a ping, the terminal would wait for
        # ever on a network that is gone.
        status, shown, proxy = self.run_console([
            [note(0), binary(b'ab'), ('silent', 1.0)],
            [note(2, requested=2), binary(b'cd'), close(4001, 'operator')]],
            keepalive=0.2)
        self.assertEqual(0, status)
        self.assertEqual(b'abcd', shown)
        self.assertEqual('2', proxy.query(1)['resume'][0])
        self.assertEqual(1, proxy.pings[0])
        self.assertIn('connection lost (no answer to a keepalive ping in '
                      '0.2 s); reconnecting', self.stderr.getvalue())

    def test_a_quiet_console_that_answers_is_kept(self):
        status, shown, proxy = self.run_console([
            [note(0), binary(b'a'), ('answer', 1.2), binary(b'b'),
             close(4001, 'operator')]], keepalive=0.2)
        self.assertEqual(0, status)
        self.assertEqual(b'ab', shown)
        self.assertEqual(1, len(proxy.queries))
        # A ping each 0.2 s of silence (its pong starts the next 0.2 s).
        self.assertGreaterEqual(proxy.pings[0], 3)
        self.assertNotIn('keepalive', self.stderr.getvalue())

    def test_keepalive_0_sends_no_ping(self):
        status, shown, proxy = self.run_console([
            [note(0), ('answer', 0.6), close(4001, 'operator')]],
            keepalive=0)
        self.assertEqual(0, status)
        self.assertEqual([0], proxy.pings)


class ArgumentsTest(base.TestCase):

    def test_resume_url_replaces_what_the_url_asked(self):
        position = console.StreamPosition(since=9)
        url = console.resume_url(
            'wss://proxy:6083/?token=t%2B1&resume=3&offsets=1&mode=view',
            position)
        self.assertEqual({'token': ['t+1'], 'mode': ['view'],
                          'resume': ['9']},
                         urllib.parse.parse_qs(urllib.parse.urlsplit(
                             url).query))

    def test_keepalive_default_and_off(self):
        self.assertEqual(console.KEEPALIVE, console.parse_args(
            ['ws://p/?token=t']).keepalive)
        self.assertEqual(0, console.parse_args(
            ['ws://p/?token=t', '--keepalive', '0']).keepalive)

    def test_since_and_the_urls_resume(self):
        self.assertEqual(5, console.parse_args(
            ['ws://p/?token=t', '--since', '5']).since)
        self.assertEqual(8, console.parse_args(
            ['ws://p/?token=t&resume=8']).since)
        self.assertIsNone(console.parse_args(['ws://p/?token=t']).since)
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        for argv in (['ws://p/?token=t', '--since', '-1'],
                     ['ws://p/?token=t&resume=8', '--since', '5'],
                     ['ws://p/?token=t&resume=x'],
                     ['ws://p/?token=t', '--reconnects', '-1'],
                     ['ws://p/?token=t', '--keepalive', '-1'], []):
            self.assertRaises(SystemExit, console.parse_args, argv)
