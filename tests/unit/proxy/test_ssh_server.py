"""The SSH front door's rules that need no network: admission of a
connection, one sign-in per key, one console channel per connection, the
grace of a connection without one, SysRq after a break and who may send
it, when a session's exit status is sent."""

import asyncio
import types

import asyncssh
import fixtures

from serialproxy import exception
from serialproxy import notifications
from serialproxy.proxy import admission
from serialproxy.proxy import proxy_protocol
from serialproxy.proxy import session as cs
from serialproxy.proxy import sign_in_failures
from serialproxy.proxy import ssh_server
from tests.unit import base
from tests.unit import notification_fixture


UUID = 'b5d6a0e4-0c4e-4d51-9d7e-5f0e3a3c1a01'
KEY = asyncssh.generate_private_key('ssh-ed25519').convert_to_public()


class FakeTransport:
    def __init__(self):
        self.reading = True
        self.limits = None

    def set_write_buffer_limits(self, high=None, low=None):
        self.limits = high

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True


class FakeConnection:
    def __init__(self, peer=('198.51.100.7', 50000)):
        self.peer = peer
        self.banners = []
        self.disconnected = None
        # asyncssh's own (see stop_reading_a_client_that_does_not_read).
        self._transport = FakeTransport()

    def get_extra_info(self, name):
        return self.peer if name == 'peername' else None

    def send_auth_banner(self, message):
        self.banners.append(message)

    def disconnect(self, code, reason):
        self.disconnected = (code, reason)


class FakeConsoleAuth:
    """check_ssh_key and sign_in_ssh_key of consoleauth: one live key,
    used up by its first sign-in."""

    def __init__(self):
        self.live = True
        self.checked = 0

    def check_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        self.checked += 1
        return self.live

    def sign_in_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        if not self.live:
            raise exception.SSHKeyRefused(ttl=60)
        self.live = False
        return {'claim': 'claim-1'}


class FakeFrontDoor:
    def __init__(self, max_per_address=2, console_grace=0.05):
        self.proxy = types.SimpleNamespace(
            admission=admission.Admission(max_per_address, 10,
                                          capacity=100),
            consoleauth_api=FakeConsoleAuth())
        self.failures = sign_in_failures.SignInFailures(3)
        self.key_ttl = 60
        self.console_grace = console_grace
        self.refusals = []
        # Clients named by a trusted balancer's PROXY header, by peer.
        self.forwarded = {}

    async def call(self, fn, *args):
        return fn(*args)

    def refused(self, kind, status=429):
        self.refusals.append((kind, status))


class ConnectionTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.front_door = FakeFrontDoor()
        self.consoleauth = self.front_door.proxy.consoleauth_api

    def connect(self, peer=('198.51.100.7', 50000)):
        server = ssh_server.ConsoleSSHServer(self.front_door)
        server.connection_made(FakeConnection(peer))
        return server

    async def signed_in(self, server=None):
        server = server or self.connect()
        user = UUID + '.port0'
        server.begin_auth(user)
        if not await server.validate_public_key(user, KEY):
            return server
        server.auth_completed()
        await server.sign_in
        return server


class AdmissionTest(ConnectionTestBase):
    """An SSH connection counts per address from accept to close, as a
    websocket connection does, signing in included."""

    def test_connections_past_the_address_limit_are_refused_at_accept(
            self):
        async def run():
            first, second = self.connect(), self.connect()
            third = self.connect()
            for server in (first, second, third):
                server.begin_auth(UUID + '.port0')
            refused_key = await third.validate_public_key(UUID + '.port0',
                                                          KEY)
            return first, second, third, refused_key
        first, second, third, refused_key = asyncio.run(run())
        self.assertIsNone(first.conn.disconnected)
        self.assertIsNone(second.conn.disconnected)
        # Told when it asks to sign in (after the key exchange, where
        # the client reads it).
        self.assertEqual((asyncssh.DISC_TOO_MANY_CONNECTIONS,
                          'Too many connections from this address'),
                         third.conn.disconnected)
        self.assertFalse(refused_key)
        self.assertEqual(0, self.consoleauth.checked)
        self.assertEqual([('rate_limited', 429)], self.front_door.refusals)
        self.assertEqual(2, self.front_door.proxy.admission.admitted)

    def test_refused_connection_that_never_signs_in_goes_all_the_same(
            self):
        self.useFixture(fixtures.MockPatchObject(
            ssh_server, 'REFUSED_LINGER', 0.05))

        async def run():
            self.connect(), self.connect()
            third = self.connect()
            early = third.conn.disconnected
            await asyncio.sleep(0.1)
            return early, third.conn.disconnected
        early, late = asyncio.run(run())
        self.assertIsNone(early)
        self.assertEqual(asyncssh.DISC_TOO_MANY_CONNECTIONS, late[0])

    def test_other_addresses_are_admitted(self):
        async def run():
            self.connect(), self.connect()
            other = self.connect(('198.51.100.8', 50000))
            await asyncio.sleep(0)
            return other
        self.assertIsNone(asyncio.run(run()).conn.disconnected)

    def test_a_closed_connection_frees_its_place(self):
        async def run():
            first = self.connect()
            self.connect()
            first.connection_lost(None)
            third = self.connect()
            await asyncio.sleep(0)
            return third
        self.assertIsNone(asyncio.run(run()).conn.disconnected)
        self.assertEqual(2, self.front_door.proxy.admission.admitted)


class SignInTest(ConnectionTestBase):
    """Signing in uses the one-time key up: one sign-in per key."""

    def test_key_is_only_checked_before_the_signature_is(self):
        # validate_public_key comes before asyncssh checks the client's
        # signature (and for a query without one): it must not use the
        # key up, or anyone knowing the public key could.
        async def run():
            server = self.connect()
            server.begin_auth(UUID + '.port0')
            ok = await server.validate_public_key(UUID + '.port0', KEY)
            return ok, server
        ok, server = asyncio.run(run())
        self.assertTrue(ok)
        self.assertTrue(self.consoleauth.live)
        self.assertIsNone(server.sign_in)

    def test_signing_in_uses_the_key_up(self):
        async def run():
            return await self.signed_in()
        server = asyncio.run(run())
        self.assertEqual({'claim': 'claim-1'}, server.sign_in.result())
        self.assertFalse(self.consoleauth.live)
        self.assertIsNone(server.conn.disconnected)

    def test_second_sign_in_with_the_key_is_refused(self):
        async def run():
            await self.signed_in()
            return await self.signed_in(self.connect(('198.51.100.7', 50001)))
        second = asyncio.run(run())
        self.assertIsNone(second.sign_in)
        self.assertIn('No live one-time key', second.conn.banners[0])

    def test_sign_in_lost_to_a_racing_one_closes_with_the_reason(self):
        # Both passed the check; the other used the key up first.
        async def run():
            server = self.connect()
            server.begin_auth(UUID + '.port0')
            await server.validate_public_key(UUID + '.port0', KEY)
            self.consoleauth.live = False
            server.auth_completed()
            await server.sign_in
            return server
        server = asyncio.run(run())
        self.assertIsNone(server.sign_in.result())
        code, reason = server.conn.disconnected
        self.assertEqual(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, code)
        self.assertIn('No live one-time key', reason)
        self.assertIsInstance(server.sign_in_error, exception.SSHKeyRefused)


class ConsoleChannelTest(ConnectionTestBase):
    """One console channel per connection; a signed-in connection
    without one is closed after the grace."""

    def test_second_channel_is_refused(self):
        async def run():
            server = await self.signed_in()
            first = server.session_requested()
            error = None
            try:
                server.session_requested()
            except asyncssh.ChannelOpenError as exc:
                error = exc
            return first, error
        first, error = asyncio.run(run())
        self.assertIsInstance(first, ssh_server.ConsoleSSHSession)
        self.assertEqual(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                         error.code)
        self.assertIn('One console channel per connection', error.reason)
        self.assertEqual([('rate_limited', 429)], self.front_door.refusals)

    def test_connection_without_a_channel_is_closed_after_the_grace(self):
        async def run():
            server = await self.signed_in()
            early = server.conn.disconnected
            await asyncio.sleep(0.1)
            return early, server.conn.disconnected
        early, late = asyncio.run(run())
        self.assertIsNone(early)
        self.assertEqual((asyncssh.DISC_BY_APPLICATION,
                          ssh_server.NO_CONSOLE), late)

    def test_connection_with_its_channel_stays(self):
        async def run():
            server = await self.signed_in()
            server.session_requested()
            await asyncio.sleep(0.1)
            return server.conn.disconnected
        self.assertIsNone(asyncio.run(run()))

    def test_connection_whose_channel_closed_goes_after_the_grace(self):
        async def run():
            server = await self.signed_in()
            server.session_requested()
            server.console_closed()
            await asyncio.sleep(0.1)
            return server.conn.disconnected
        self.assertEqual((asyncssh.DISC_BY_APPLICATION,
                          ssh_server.NO_CONSOLE), asyncio.run(run()))

    def test_closed_connection_is_not_closed_again(self):
        async def run():
            server = await self.signed_in()
            server.connection_lost(None)
            server.console_closed()
            await asyncio.sleep(0.1)
            return server.conn.disconnected
        self.assertIsNone(asyncio.run(run()))


class FakeChannel:
    def __init__(self):
        self.stderr = b''
        self.exit_status = None
        # Bytes waiting for a client that does not read them.
        self.unread = 0

    def get_write_buffer_size(self):
        return self.unread

    def write_stderr(self, data):
        self.stderr += data

    def exit(self, status):
        self.exit_status = status


class FakeMetrics:
    def session_closed(self):
        pass


class FakeProxy:
    settings = types.SimpleNamespace(
        proxy_host='proxy-1', session=types.SimpleNamespace(close_grace=2.0))

    def __init__(self):
        self.sysrq = []
        self.sessions = {}
        self.metrics = FakeMetrics()
        # Futures of the lease releases asked for, by session id.
        self.releases = {}

    async def send_sysrq(self, console, key):
        self.sysrq.append((console['instance_uuid'], key))

    def release_lease(self, session_id):
        released = asyncio.get_running_loop().create_future()
        self.releases[session_id] = released
        return released


class SSHSessionTestBase(base.TestCase):
    """An open session of a key whose pusher had modes."""

    modes = ['sysrq']

    def setUp(self):
        super().setUp()
        self.proxy = FakeProxy()
        server = types.SimpleNamespace(
            front_door=types.SimpleNamespace(proxy=self.proxy),
            client_address='192.0.2.9:40000')
        self.ssh = ssh_server.ConsoleSSHSession(server)
        self.ssh.chan = FakeChannel()
        self.ssh.session.console = {'instance_uuid': 'uuid-1', 'index': 0,
                                    'user_id': 'u-1', 'project_id': 'p-1',
                                    'modes': self.modes}
        self.ssh.session.session_id = 'session-1'
        self.ssh.session.is_open = True
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())

    def typed(self, data):
        """What reaches the guest of data typed now, SysRq sent."""
        async def run():
            rest = self.ssh._take_sysrq_key(data)
            await asyncio.sleep(0)
            return rest
        return asyncio.run(run())


class BreakThenKeyTest(SSHSessionTestBase):
    """ssh's ~B, then a key: that key is SysRq, not typed."""

    def test_key_after_a_break_is_sent_as_sysrq_and_not_typed(self):
        self.assertTrue(self.ssh.break_received(0))
        self.assertEqual(b'ls\n', self.typed(b'hls\n'))
        self.assertEqual([('uuid-1', 'h')], self.proxy.sysrq)
        self.assertIn(b'SysRq h sent', self.ssh.chan.stderr)
        # Only the one key: the next is typed.
        self.assertEqual(b'h', self.typed(b'h'))
        self.assertEqual(1, len(self.proxy.sysrq))
        # Audited as the REST call is.
        (event, body), = self.notes.caught(notifications.SYSRQ_SENT)
        self.assertEqual([], notification_fixture.mismatches(event, body))
        data = body['serialproxy_object.data']
        self.assertEqual(('uuid-1', 'h', 'u-1', '192.0.2.9:40000',
                          'proxy-1'),
                         (data['instance_uuid'], data['sysrq_key'],
                          data['user_id'], data['remote_address'],
                          data['proxy_host']))

    def test_line_end_of_the_escape_is_typed_and_the_key_still_awaited(self):
        self.ssh.break_received(0)
        self.assertEqual(b'\r', self.typed(b'\r'))
        self.assertEqual(b'\n', self.typed(b'\nh'))
        self.assertEqual([('uuid-1', 'h')], self.proxy.sysrq)

    def test_key_that_is_no_sysrq_key_is_dropped_with_a_reason(self):
        self.ssh.break_received(0)
        self.assertEqual(b'', self.typed(b'a'))
        self.assertEqual([], self.proxy.sysrq)
        self.assertIn(b"'a' is not a SysRq key", self.ssh.chan.stderr)
        self.assertEqual([], self.notes.caught(notifications.SYSRQ_SENT))

    def test_key_long_after_the_break_is_typed(self):
        self.ssh.break_received(0)
        self.ssh._sysrq_armed_at -= ssh_server.SYSRQ_WINDOW + 1
        self.assertEqual(b'h', self.typed(b'h'))
        self.assertEqual([], self.proxy.sysrq)

    def test_break_before_the_console_opens_is_refused(self):
        self.ssh.session.is_open = False
        self.assertFalse(self.ssh.break_received(0))
        self.assertIn(b'needs an open console', self.ssh.chan.stderr)


class SysRqNotAllowedTest(SSHSessionTestBase):
    """A key whose pusher the SysRq policy did not allow (its console has
    no 'sysrq' mode): a break and a key send nothing, and say why."""

    modes = []

    def test_break_says_sysrq_is_not_allowed_naming_the_policy(self):
        self.assertTrue(self.ssh.break_received(0))
        self.assertIn(b'serialproxy: break: SysRq is not allowed for you '
                      b'on this server (policy '
                      b'serialproxy:serial_console:sysrq)',
                      self.ssh.chan.stderr)
        self.assertNotIn(b'type a SysRq key', self.ssh.chan.stderr)

    def test_key_after_the_break_is_neither_sent_nor_typed(self):
        self.ssh.break_received(0)
        self.assertEqual(b'ls\n', self.typed(b'bls\n'))
        self.assertEqual([], self.proxy.sysrq)
        self.assertIn(b"SysRq 'b' not sent: SysRq is not allowed",
                      self.ssh.chan.stderr)
        self.assertEqual([], self.notes.caught(notifications.SYSRQ_SENT))
        # The break is used up: the next key is typed.
        self.assertEqual(b'b', self.typed(b'b'))

    def test_console_without_modes_may_not_send_sysrq(self):
        # What a consoleauth from before 1.8 answers: no modes at all.
        del self.ssh.session.console['modes']
        self.ssh.break_received(0)
        self.assertEqual(b'', self.typed(b'h'))
        self.assertEqual([], self.proxy.sysrq)

    def test_nmi_alone_does_not_allow_sysrq(self):
        self.ssh.session.console['modes'] = ['nmi']
        self.ssh.break_received(0)
        self.typed(b'h')
        self.assertEqual([], self.proxy.sysrq)


class ExitAfterReleaseTest(SSHSessionTestBase):
    """The user ends the session: its exit status, which their ssh client
    returns on, is sent once consoleauth has the lease back."""

    def run_loop(self, steps):
        async def run():
            for step in steps:
                step()
                await asyncio.sleep(0)
                await asyncio.sleep(0)
        asyncio.run(run())

    def released(self):
        self.proxy.releases['session-1'].set_result(None)

    def test_end_of_input_exits_once_the_lease_is_released(self):
        seen = []
        self.run_loop([
            self.ssh.eof_received,
            lambda: seen.append(self.ssh.chan.exit_status),
            self.released,
            lambda: seen.append(self.ssh.chan.exit_status)])
        self.assertEqual([None, 0], seen)

    def test_eof_keeps_the_channel_half_open_for_the_exit_status(self):
        async def run():
            kept = self.ssh.eof_received()
            self.released()
            await asyncio.sleep(0)
            return kept
        self.assertTrue(asyncio.run(run()))

    def test_failed_release_exits_all_the_same(self):
        def failed():
            self.proxy.releases['session-1'].set_exception(
                OSError('consoleauth gone'))
        self.run_loop([self.ssh.eof_received, failed])
        self.assertEqual(0, self.ssh.chan.exit_status)

    def test_release_not_answered_exits_after_close_grace(self):
        self.proxy.settings = types.SimpleNamespace(
            proxy_host='proxy-1',
            session=types.SimpleNamespace(close_grace=0.05))

        async def run():
            self.ssh.eof_received()
            await asyncio.sleep(0.01)
            early = self.ssh.chan.exit_status
            await asyncio.sleep(0.1)
            return early, self.ssh.chan.exit_status
        self.assertEqual((None, 0), asyncio.run(run()))

    def test_proxy_ends_a_session_at_once(self):
        # Force-disconnect, idle, shutdown: the user is told now.
        async def run():
            self.ssh.close_session(4000, 'Disconnected by an operator')
            return self.ssh.chan.exit_status
        self.assertEqual(ssh_server.EXIT_CLOSED, asyncio.run(run()))
        self.assertIn(b'Disconnected by an operator', self.ssh.chan.stderr)


class MaxSessionAgeTest(SSHSessionTestBase):
    """[console] max_session_age ends an SSH session as it ends a
    websocket one: the same limit at every way in."""

    def setUp(self):
        super().setUp()
        self.proxy.settings = types.SimpleNamespace(
            proxy_host='proxy-1', session=cs.Settings(max_session_age=60))
        self.now = 1000.0
        self.ssh.clock = lambda: self.now
        self.ssh.session.started_at = self.now
        self.ssh._last_activity = self.now

    def tick(self):
        async def run():
            self.ssh.tick()
        asyncio.run(run())

    def test_session_ends_at_max_session_age_with_its_message(self):
        self.now += 59
        self.tick()
        self.assertIsNone(self.ssh.chan.exit_status)
        self.now += 1
        self.tick()
        self.assertEqual(ssh_server.EXIT_CLOSED, self.ssh.chan.exit_status)
        self.assertIn(b'longest a console session may last',
                      self.ssh.chan.stderr)
        self.assertIn('session-1', self.proxy.releases)

    def test_max_session_age_0_lets_it_live_on(self):
        self.proxy.settings.session = cs.Settings()
        self.now += 30 * 86400
        self.ssh._last_activity = self.now
        self.tick()
        self.assertIsNone(self.ssh.chan.exit_status)


class ForwardedClientTest(base.TestCase):
    """The client a trusted balancer's PROXY header named
    (proxied_listener.py) is the connection's client."""

    def connection_from(self, peer, forwarded):
        front_door = FakeFrontDoor()
        front_door.forwarded = forwarded
        server = ssh_server.ConsoleSSHServer(front_door)
        server.connection_made(FakeConnection(peer))
        return server

    def test_named_client_replaces_the_balancer(self):
        forwarded = {('10.0.0.10', 5555): proxy_protocol.Source(
            '198.51.100.7', 4711)}
        server = self.connection_from(('10.0.0.10', 5555), forwarded)
        self.assertEqual(('198.51.100.7', '198.51.100.7:4711'),
                         (server.client_host, server.client_address))
        self.assertEqual({}, forwarded)

    def test_without_a_header_the_peer_is_the_client(self):
        server = self.connection_from(('192.0.2.9', 5555), {})
        self.assertEqual(('192.0.2.9', '192.0.2.9:5555'),
                         (server.client_host, server.client_address))


class ClientThatStopsReadingTest(SSHSessionTestBase):
    """What a client asks for is not answered into memory while it does
    not read."""

    def test_breaks_are_not_answered_while_the_client_does_not_read(self):
        self.ssh.chan.unread = ssh_server.WRITE_BUFFER_HIGH + 1
        for _ in range(1000):
            self.assertTrue(self.ssh.break_received(0))
            self.ssh.exec_requested('ls')
        self.assertEqual(b'', self.ssh.chan.stderr)
        self.ssh.chan.unread = 0
        self.ssh.break_received(0)
        self.assertIn(b'type a SysRq key', self.ssh.chan.stderr)

    def test_connection_stops_reading_past_its_write_buffer_limit(self):
        conn = types.SimpleNamespace(_transport=FakeTransport())
        ssh_server.stop_reading_a_client_that_does_not_read(conn)
        self.assertEqual(ssh_server.WRITE_BUFFER_HIGH,
                         conn._transport.limits)
        # What asyncio calls on the protocol when the buffer fills.
        conn.pause_writing()
        self.assertFalse(conn._transport.reading)
        conn.resume_writing()
        self.assertTrue(conn._transport.reading)
