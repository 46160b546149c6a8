"""The SSH front door's rules that need no network: sign-in limits,
SysRq after a break and who may send it, when a session's exit status
is sent."""

import asyncio
import types

from serialproxy import notifications
from serialproxy.proxy import session as cs
from serialproxy.proxy import proxy_protocol
from serialproxy.proxy import ssh_server
from tests.unit import base
from tests.unit import notification_fixture


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class AuthAttemptsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.attempts = ssh_server.AuthAttempts(3, clock=self.clock)

    def test_address_is_blocked_at_the_limit_of_failures(self):
        for _ in range(2):
            self.attempts.failed('198.51.100.1')
        self.assertFalse(self.attempts.blocked('198.51.100.1'))
        self.attempts.failed('198.51.100.1')
        self.assertTrue(self.attempts.blocked('198.51.100.1'))

    def test_other_addresses_are_not_blocked(self):
        for _ in range(3):
            self.attempts.failed('198.51.100.1')
        self.assertFalse(self.attempts.blocked('198.51.100.2'))

    def test_failures_older_than_a_minute_are_forgotten(self):
        for _ in range(3):
            self.attempts.failed('198.51.100.1')
        self.clock.now += ssh_server.RATE_WINDOW
        self.assertFalse(self.attempts.blocked('198.51.100.1'))
        # Nothing is kept for an address with no recent failures.
        self.assertEqual({}, dict(self.attempts._failures))


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
        front_door = types.SimpleNamespace(forwarded=forwarded)
        server = ssh_server.ConsoleSSHServer(front_door)
        server.connection_made(types.SimpleNamespace(
            get_extra_info=lambda name: peer))
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
