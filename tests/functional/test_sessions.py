"""One user per console, force-disconnect and refusals, for real.

Two proxy processes share consoleauth over RabbitMQ, leases in MariaDB;
the console is a real QEMU guest's serial port.
"""

import http.client
import struct
import time
import urllib.parse

import websocket

from tests.harness import fixtures as func_fixtures
from tests.harness import testcase

LEASE_TTL = 6


def on_port(url, port):
    """The same console URL, on another proxy."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc='127.0.0.1:%d' % port).geturl()


def refusal(url, **kwargs):
    """(status, body) of a refused websocket handshake."""
    try:
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20, **kwargs)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code, (exc.resp_body or b'').decode()
    ws.close()
    raise AssertionError('the handshake was not refused')


def shell_answers(ws, marker):
    ws.send_binary(b'echo %s-$((2+3))\n' % marker.encode())
    return func_fixtures.read_until(
        lambda _: ws.recv_data()[1], (r'\n%s-5\r?\n' % marker).encode(), 30)


def close_frame(ws, timeout=20):
    """(code, reason) of the close frame the server sends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return (struct.unpack('>H', frame.data[:2])[0],
                    frame.data[2:].decode())
    raise AssertionError('no close frame')


class TwoProxiesWorld(testcase.TestCase):
    """A guest, consoleauth, compute, API and two proxies (the second of
    two workers) over RabbitMQ, leases in MariaDB."""

    # {section: {name: value}} added to every service's configuration.
    options = {}
    # Guest(project_id=..., user_id=...): the guest's owner, if any.
    guest_owner = {}

    def setUp(self):
        super().setUp()
        self.guest = self.useFixture(func_fixtures.Guest(**self.guest_owner))
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        options = {'consoleauth': {'session_lease_ttl': LEASE_TTL}}
        options.update(self.options)
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database='mysql', options=options))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-api', 'serialproxy-proxy'):
            self.deployment.start(name)
        self.port_b = func_fixtures.free_port()
        # The other proxy spreads its sessions over two worker processes.
        self.proxy_b = self.deployment.start_proxy('proxy-b', self.port_b,
                                                   workers=2)
        self.deployment.wait_ready()

    def url(self):
        return self.deployment.console_url(self.guest.uuid)

    def connect(self, url):
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20)
        self.addCleanup(ws.close)
        return ws


class TwoProxiesTest(TwoProxiesWorld):
    def test_second_user_on_other_proxy_gets_409_while_first_connected(self):
        first = self.connect(self.url())
        self.assertIsNotNone(shell_answers(first, 'first'))
        status, body = refusal(on_port(self.url(), self.port_b))
        self.assertEqual(409, status)
        self.assertRegex(body, r'^Console in use since \d{4}-\d\d-\d\dT')
        # The page's check answers the same without opening anything.
        status, body = self.check(on_port(self.url(), self.port_b))
        self.assertEqual((409, True), (status, 'in use since' in body))
        self.assertIsNotNone(shell_answers(first, 'still-mine'))

    def check(self, url):
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                          timeout=20)
        conn.request('GET', '/?' + parts.query,
                     headers={'X-Serialproxy-Check': '1'})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()

    def test_console_is_free_as_soon_as_the_first_user_leaves(self):
        # The proxy answers a client's close once consoleauth has the
        # lease back: a connect right behind it, on either proxy, is
        # never refused with 409. Several rounds, as it is a race.
        session = self.connect(self.url())
        for round_ in range(6):
            self.assertIsNotNone(shell_answers(session, 'r%d' % round_))
            url = self.url()  # before the close: nothing in between
            session.close()
            session = self.connect(on_port(url, self.port_b)
                                   if round_ % 2 == 0 else url)
        session.close()

    def test_force_disconnect_closes_the_session_on_its_proxy(self):
        url_b = on_port(self.url(), self.port_b)
        held = self.connect(url_b)
        self.assertIsNotNone(shell_answers(held, 'held'))
        listed = self.deployment.run('serialproxy-manage', 'sessions',
                                     'list', '--instance', self.guest.uuid)
        self.assertIn(self.guest.uuid, listed.stdout)
        self.assertIn('proxy-b', listed.stdout)
        out = self.deployment.run('serialproxy-manage', 'sessions',
                                  'disconnect', self.guest.uuid)
        self.assertIn('Disconnected 1 session', out.stdout)
        self.assertEqual((4001, 'Disconnected by an operator'),
                         close_frame(held))
        # Free at once, from the other proxy too.
        again = self.connect(self.url())
        self.assertIsNotNone(shell_answers(again, 'again'))

    def test_revoked_token_no_longer_opens(self):
        url = self.url()
        held = self.connect(url)
        self.assertIsNotNone(shell_answers(held, 'r'))
        self.deployment.run('serialproxy-manage', 'sessions', 'disconnect',
                            self.guest.uuid, '--revoke-tokens')
        self.assertEqual(4001, close_frame(held)[0])
        status, body = refusal(url)
        self.assertEqual(401, status)

    def test_disconnected_sessions_url_no_longer_opens_by_default(self):
        url = on_port(self.url(), self.port_b)
        held = self.connect(url)
        self.assertIsNotNone(shell_answers(held, 'd'))
        out = self.deployment.run('serialproxy-manage', 'sessions',
                                  'disconnect', self.guest.uuid)
        self.assertEqual(4001, close_frame(held)[0])
        self.assertEqual(401, refusal(url)[0])
        self.assertEqual(
            401, refusal(on_port(url, self.deployment.proxy_port))[0])
        self.assertIn('revoked its token', out.stdout)

    def test_keep_tokens_lets_the_url_open_again(self):
        url = self.url()
        held = self.connect(url)
        self.assertIsNotNone(shell_answers(held, 'k'))
        self.deployment.run('serialproxy-manage', 'sessions', 'disconnect',
                            self.guest.uuid, '--keep-tokens')
        self.assertEqual(4001, close_frame(held)[0])
        self.assertIsNotNone(shell_answers(self.connect(url), 'k2'))

    def test_killed_proxy_frees_its_consoles_within_the_lease_ttl(self):
        held = self.connect(on_port(self.url(), self.port_b))
        self.assertIsNotNone(shell_answers(held, 'k'))
        func_fixtures.crash(self.proxy_b)
        killed_at = time.monotonic()
        url = self.url()
        self.assertEqual(409, refusal(url)[0])

        def opens():
            try:
                return self.connect(url)
            except websocket.WebSocketBadStatusException as exc:
                self.assertEqual(409, exc.status_code)
                return None
        ws = func_fixtures.wait_for(opens, LEASE_TTL + 5, 'the console')
        self.assertLess(time.monotonic() - killed_at, LEASE_TTL + 2)
        self.assertIsNotNone(shell_answers(ws, 'after-kill'))

    def test_unknown_session_disconnect_is_a_clear_cli_error(self):
        out = self.deployment.run('serialproxy-manage', 'sessions',
                                  'disconnect', self.guest.uuid,
                                  '--session', 'no-such-session',
                                  check=False)
        self.assertEqual(1, out.returncode)
        self.assertIn('could not be found', out.stderr)


MAX_SESSION_AGE = 3


class MaxSessionAgeTest(TwoProxiesWorld):
    options = {'console': {'max_session_age': MAX_SESSION_AGE}}

    def test_live_session_is_closed_at_max_session_age(self):
        held = self.connect(self.url())
        opened_at = time.monotonic()
        self.assertIsNotNone(shell_answers(held, 'young'))
        code, reason = close_frame(held, timeout=MAX_SESSION_AGE + 10)
        self.assertEqual(4008, code)
        self.assertIn('longest a console session may last', reason)
        self.assertGreaterEqual(time.monotonic() - opened_at,
                                MAX_SESSION_AGE - 0.5)
        # The console is free again for a new session.
        self.assertIsNotNone(shell_answers(self.connect(self.url()),
                                           'next'))
