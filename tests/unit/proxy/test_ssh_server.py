"""The SSH front door's rules that need no network: sign-in limits."""

import asyncio
import types

from serialproxy import notifications
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

    def write_stderr(self, data):
        self.stderr += data


class FakeProxy:
    settings = types.SimpleNamespace(proxy_host='proxy-1')

    def __init__(self):
        self.sysrq = []

    async def send_sysrq(self, console, key):
        self.sysrq.append((console['instance_uuid'], key))


class BreakThenKeyTest(base.TestCase):
    """ssh's ~B, then a key: that key is SysRq, not typed."""

    def setUp(self):
        super().setUp()
        self.proxy = FakeProxy()
        server = types.SimpleNamespace(
            front_door=types.SimpleNamespace(proxy=self.proxy),
            client_address='192.0.2.9:40000')
        self.ssh = ssh_server.ConsoleSSHSession(server)
        self.ssh.chan = FakeChannel()
        self.ssh.session.console = {'instance_uuid': 'uuid-1', 'index': 0,
                                    'user_id': 'u-1', 'project_id': 'p-1'}
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
