"""Every refusal before the 101, and the time limits after it, for real.

serialproxy-all with a real guest; a real HTTP client and a real websocket
client; each refusal's status and reason as a client sees them.
"""

import http.client
import socket
import struct
import time
import urllib.parse

import websocket

from tests.harness import fixtures as func_fixtures
from tests.harness import testcase


def connect(url, source='127.0.0.1', **kwargs):
    """A websocket from a chosen loopback source address."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(20)
    sock.connect((parts.hostname, parts.port))
    return websocket.create_connection(url, socket=sock, timeout=20,
                                       subprotocols=['binary'], **kwargs)


def refusal(url, **kwargs):
    try:
        connect(url, **kwargs).close()
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code, (exc.resp_body or b'').decode().strip()
    raise AssertionError('the handshake was not refused')


def raw_get(port, target, headers=()):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=20)
    conn.putrequest('GET', target, skip_host=True, skip_accept_encoding=True)
    conn.putheader('Host', '127.0.0.1:%d' % port)
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    return resp.status, resp.read().decode('utf-8', 'replace'), resp


UPGRADE = (('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
           ('Sec-WebSocket-Version', '13'),
           ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='))


class AllInOneWithGuest(testcase.TestCase):
    """A serialproxy-all of its own for each test, one guest for them all.

    Each test's options and limits start afresh; the guest's boot is the
    part worth sharing.
    """
    options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.guest = func_fixtures.Guest()
        with testcase.limited():
            cls.guest.setUp()

    @classmethod
    def tearDownClass(cls):
        cls.guest.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.deployment = self.useFixture(
            func_fixtures.Deployment(options=self.options))
        self.deployment.start('serialproxy-all')
        self.deployment.wait_ready()
        self.port = self.deployment.proxy_port
        self.issued = []
        self.addCleanup(self.assertNoTokenLogged)

    def url(self):
        url = self.deployment.console_url(self.guest.uuid)
        self.issued.append(url.split('token=')[1])
        return url

    def assertNoTokenLogged(self):
        logs = self.deployment.logs()
        self.assertIn('DEBUG', logs)  # the services did log at debug level
        for token in self.issued:
            self.assertNotIn(token, logs)


class RefusalsTest(AllInOneWithGuest):
    options = {'console': {'allowed_origins': 'dashboard.example',
                           'max_sessions_per_address': 1,
                           'max_sessions_per_token': 1}}

    def test_double_slash_path_is_400(self):
        status, body, _ = raw_get(self.port, '//evil.example/?token=x',
                                  UPGRADE)
        self.assertEqual((400, 'Path must not start with //'),
                         (status, body.strip()))
        status, _, _ = raw_get(self.port, '//evil.example/')
        self.assertEqual(400, status)

    def test_missing_token_is_401(self):
        url = 'ws://127.0.0.1:%d/' % self.port
        self.assertEqual((401, 'Missing token'), refusal(url))

    def test_unknown_token_is_401_without_echoing_it(self):
        url = 'ws://127.0.0.1:%d/?token=made-up-token' % self.port
        status, body = refusal(url)
        self.assertEqual((401, 'Invalid or expired token'), (status, body))
        self.assertNotIn('made-up-token', body)

    def test_foreign_origin_is_403_allowed_origin_opens(self):
        url = self.url()
        self.assertEqual((403, 'Origin not allowed'),
                         refusal(url, origin='http://evil.example'))
        self.assertEqual(
            (403, 'Origin scheme does not match the connection'),
            refusal(url, origin='https://dashboard.example'))
        connect(url, origin='http://dashboard.example').close()

    def test_missing_origin_is_a_non_browser_client_and_opens(self):
        url = self.url()
        ws = connect(url, suppress_origin=True)
        ws.close()

    def test_second_connection_with_the_same_token_is_429(self):
        url = self.url()
        held = connect(url, source='127.0.0.1')
        self.addCleanup(held.close)
        self.assertEqual((429, 'Too many sessions for this token'),
                         refusal(url, source='127.0.0.2'))

    def test_second_connection_from_the_same_address_is_429(self):
        held = connect(self.url(), source='127.0.0.1')
        self.addCleanup(held.close)
        self.assertEqual((429, 'Too many connections from this address'),
                         refusal(self.url(), source='127.0.0.1'))
        # From elsewhere the same console says why it cannot open.
        status, body = refusal(self.url(), source='127.0.0.3')
        self.assertEqual(409, status)
        self.assertIn('Console in use since', body)

    def test_plain_get_serves_the_page_and_no_listing(self):
        status, body, resp = raw_get(self.port, '/?token=whatever')
        self.assertEqual(200, status)
        self.assertIn('text/html', resp.getheader('Content-Type'))
        self.assertIn('<html', body.lower())
        self.assertEqual(404, raw_get(self.port, '/../setup.cfg')[0])

    def test_paths_no_file_can_have_are_404_without_traceback(self):
        for target in ('/%00', '/vendor/%00'):
            self.assertEqual(404, raw_get(self.port, target)[0], target)
        self.assertNotIn('Traceback', self.deployment.logs())

    def test_metrics_count_refusals_and_bytes_without_tokens(self):
        url = self.url()
        self.assertEqual(401, refusal(url + 'x')[0])
        ws = connect(url)
        ws.send_binary(b'echo m\n')
        ws.close()
        status, text, _ = raw_get(self.deployment.admin_port, '/metrics')
        self.assertEqual(200, status)
        # Refusals are counted by kind, never by their text.
        refusals = [line for line in text.splitlines()
                    if line.startswith('serialproxy_refusals_total{')]
        self.assertEqual(1, len(refusals), refusals)
        self.assertIn('reason="invalid_token"', refusals[0])
        self.assertIn('status="401"', refusals[0])
        self.assertRegex(refusals[0], r'\} 1(\.0)?$')
        self.assertRegex(text, r'serialproxy_bytes_total\{direction='
                               r'"to_guest"\} [1-9]')
        self.assertNotIn(url.split('token=')[1], text)
        self.assertEqual(200, raw_get(self.deployment.admin_port,
                                      '/healthcheck')[0])
        # Not on the public port.
        self.assertEqual(404, raw_get(self.port, '/metrics')[0])

    def test_check_answers_what_the_upgrade_would(self):
        check = (('X-Serialproxy-Check', '1'),)
        status, body, _ = raw_get(self.port, '/?token=nope', check)
        self.assertEqual((401, 'Invalid or expired token'),
                         (status, body.strip()))
        token = self.url().split('token=')[1]
        status, body, _ = raw_get(self.port, '/?token=' + token, check)
        self.assertEqual((200, 'ok'), (status, body.strip()))
        # The check opened nothing: the console is still free.
        connect('ws://127.0.0.1:%d/?token=%s' % (self.port, token)).close()


def close_frame(ws, timeout):
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise AssertionError('no close frame in %ss' % timeout)
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return (struct.unpack('>H', frame.data[:2])[0],
                    frame.data[2:].decode())


class TimeLimitsTest(AllInOneWithGuest):
    IDLE = 4
    TOKEN_TTL = 12
    options = {'console': {'idle_timeout': IDLE,
                           'enforce_session_timeout': 'true'},
               'consoleauth': {'token_ttl': TOKEN_TTL}}

    def test_idle_session_is_closed_with_4003(self):
        ws = connect(self.url())
        started = time.monotonic()
        self.assertEqual((4003, 'Idle timeout'),
                         close_frame(ws, self.IDLE + 5))
        self.assertGreaterEqual(time.monotonic() - started, self.IDLE - 0.5)

    def test_busy_session_ends_when_its_token_expires_with_4002(self):
        issued = time.time()
        ws = connect(self.url())
        ws.settimeout(0.5)
        while time.time() - issued < self.TOKEN_TTL + 5:
            ws.send_binary(b'\n')  # stay busy: never idle
            try:
                # Everything the guest printed, until quiet.
                while time.time() - issued < self.TOKEN_TTL + 5:
                    frame = ws.recv_frame()
                    if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                        code = struct.unpack('>H', frame.data[:2])[0]
                        self.assertEqual((4002, 'Token expired'),
                                         (code, frame.data[2:].decode()))
                        self.assertGreaterEqual(time.time() - issued,
                                                self.TOKEN_TTL - 1)
                        return
            except websocket.WebSocketTimeoutException:
                pass
        self.fail('the session outlived its token')

    def test_expired_token_is_401(self):
        url = self.url()
        time.sleep(self.TOKEN_TTL + 1)
        self.assertEqual((401, 'Invalid or expired token'), refusal(url))
