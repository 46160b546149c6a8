"""The SSH session layer (ssh_server.ConsoleSSHSession) carrying out the
front end's actions on a channel: the exit status once the release is
answered, SysRq through the proxy and audited, the user told why."""

import asyncio
import types

from serialproxy import exception
from serialproxy import notifications
from serialproxy.proxy import console as leased_console
from serialproxy.proxy import console_core as core
from serialproxy.proxy import session as cs
from serialproxy.proxy import ssh_server
from serialproxy.proxy import ssh_session
from tests.unit import base
from tests.unit import notification_fixture

# As the control plane hands a lease to the SSH front door.
CONSOLE = leased_console.Console.from_answer(
    {'instance_uuid': 'uuid-1', 'index': 0, 'user_id': 'u-1',
     'project_id': 'p-1', 'modes': ['sysrq', 'write'],
     'session_id': 'session-1', 'console_type': 'serial',
     'compute_host': 'compute-1', 'host': '127.0.0.1', 'port': 1,
     'expires_at': 2e9, 'relay_key': 'relay-1'})


class FakeChannel:
    def __init__(self):
        self.stdout = b''
        self.stderr = b''
        self.exit_status = None
        self.reading = True

    def set_write_buffer_limits(self, high=None, low=None):
        self.limit = high

    def write(self, data):
        self.stdout += data

    def write_stderr(self, data):
        self.stderr += data

    def exit(self, status):
        self.exit_status = status

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True


class FakeMetrics:
    def __getattr__(self, name):
        return lambda *args: None


class FakeServices:
    """services.ConsoleServices, as the layer uses it."""

    def __init__(self, close_grace=2.0):
        self.settings = types.SimpleNamespace(
            proxy_host='proxy-1', session=cs.Settings(
                close_grace=close_grace), max_replay_lines=1000)
        self.metrics = FakeMetrics()
        self.sysrq = []
        self.sessions = {}
        self.relays = {}
        self.relayed = [0, 0]
        # Futures of the lease releases asked for, by session id.
        self.releases = {}

    def opened(self, connection):
        pass

    def closed(self, connection):
        pass

    def started(self, connection, relay_key=None):
        self.sessions[connection.session.session_id] = connection
        if relay_key:
            self.relays[relay_key] = connection

    def ended(self, connection, relay_key=None):
        self.sessions.pop(connection.session.session_id, None)
        self.relays.pop(relay_key, None)

    def relayed_to_guest(self, nbytes):
        self.relayed[0] += nbytes

    def relayed_to_client(self, nbytes):
        self.relayed[1] += nbytes

    def recorder(self, console, session_id):
        return None

    async def send_sysrq(self, console, key):
        self.sysrq.append((console.instance_uuid, key))

    def release(self, session_id):
        released = asyncio.get_running_loop().create_future()
        # Retrieved, as the proxy's own callback does (and logs it).
        released.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.releases[session_id] = released
        return released


class FakeGuestTransport:
    def __init__(self):
        self.written = b''
        self.closed = False

    def write(self, data):
        self.written += bytes(data)

    def close(self):
        self.closed = True

    def resume_reading(self):
        pass


class LayerTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.proxy = FakeServices()
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())

    def opened_layer(self, loop_steps=()):
        """A layer whose session is open (authorization short-cut: the
        lease and the guest given as the layer's task would)."""
        server = types.SimpleNamespace(
            front_door=types.SimpleNamespace(services=self.proxy),
            client_address='192.0.2.9:40000', console_closed=lambda: None)
        layer = ssh_server.ConsoleSSHSession(server)
        layer.connection_made(FakeChannel())
        layer.pty_requested('xterm', (80, 24, 0, 0), {})
        layer.requested_at = 0
        self.assertEqual([ssh_session.LeaseConsole(core.WRITE)],
                         layer.session.shell_requested())
        layer.carry_out(layer.session.leased(CONSOLE))
        layer.guest = types.SimpleNamespace(transport=FakeGuestTransport())
        layer.carry_out(layer.session.guest_connected(b'history'))
        return layer

    def in_loop(self, steps):
        """Run steps (callables) in a loop, letting callbacks run after
        each; returns what each returned."""
        async def run():
            results = []
            for step in steps:
                results.append(step())
                for _ in range(3):
                    await asyncio.sleep(0)
            return results
        return asyncio.run(run())


class OpenTest(LayerTestCase):

    def test_open_session_is_the_proxys_and_relays_bytes(self):
        def check():
            layer = self.opened_layer()
            self.assertIs(layer, self.proxy.sessions['session-1'])
            # Its spectators reach it by its relay key.
            self.assertIs(layer, self.proxy.relays['relay-1'])
            self.assertIn(b'connected to console port 0',
                          layer.chan.stderr)
            layer.guest_data(b'output')
            layer.data_received(b'typed', None)
            return layer
        layer, = self.in_loop([check])
        self.assertEqual(b'historyoutput', layer.chan.stdout)
        self.assertEqual(b'typed', layer.guest.transport.written)
        self.assertEqual([5, 6], self.proxy.relayed)


class ExitAfterReleaseTest(LayerTestCase):
    """The user ends the session: its exit status, which their ssh client
    returns on, is sent once consoleauth has the lease back."""

    def test_end_of_input_exits_once_the_lease_is_released(self):
        layer = []
        seen = []
        self.in_loop([
            lambda: layer.append(self.opened_layer()),
            lambda: layer[0].eof_received(),
            lambda: seen.append(layer[0].chan.exit_status),
            lambda: self.proxy.releases['session-1'].set_result(None),
            lambda: seen.append(layer[0].chan.exit_status)])
        self.assertEqual([None, 0], seen)
        self.assertTrue(layer[0].guest.transport.closed)
        self.assertEqual({}, self.proxy.sessions)
        self.assertEqual({}, self.proxy.relays)

    def test_eof_keeps_the_channel_half_open_for_the_exit_status(self):
        kept, = self.in_loop([lambda: self.opened_layer().eof_received()])
        self.assertTrue(kept)

    def test_failed_release_exits_all_the_same(self):
        layer = []
        self.in_loop([
            lambda: layer.append(self.opened_layer()),
            lambda: layer[0].eof_received(),
            lambda: self.proxy.releases['session-1'].set_exception(
                OSError('consoleauth gone'))])
        self.assertEqual(0, layer[0].chan.exit_status)

    def test_proxy_ends_a_session_at_once(self):
        # Force-disconnect, idle, shutdown: the user is told now.
        def close():
            layer = self.opened_layer()
            layer.close_session(4001, 'Disconnected by an operator')
            return layer
        layer, = self.in_loop([close])
        self.assertEqual(ssh_session.EXIT_CLOSED, layer.chan.exit_status)
        self.assertIn(b'Disconnected by an operator', layer.chan.stderr)
        self.assertIn('session-1', self.proxy.releases)


class SysRqTest(LayerTestCase):

    def test_key_after_a_break_is_sent_and_audited(self):
        layer = []
        self.in_loop([
            lambda: layer.append(self.opened_layer()),
            lambda: layer[0].break_received(0),
            lambda: layer[0].data_received(b'hls\n', None)])
        self.assertEqual([('uuid-1', 'h')], self.proxy.sysrq)
        self.assertEqual(b'ls\n', layer[0].guest.transport.written)
        self.assertIn(b'SysRq h sent', layer[0].chan.stderr)
        # Audited as the REST call and the page's menu are.
        (event, body), = self.notes.caught(notifications.SYSRQ_SENT)
        self.assertEqual([], notification_fixture.mismatches(event, body))
        data = body['serialproxy_object.data']
        self.assertEqual(('uuid-1', 'h', 'u-1', '192.0.2.9:40000',
                          'proxy-1'),
                         (data['instance_uuid'], data['sysrq_key'],
                          data['user_id'], data['remote_address'],
                          data['proxy_host']))

    def test_break_before_the_console_opens_is_refused(self):
        server = types.SimpleNamespace(
            front_door=types.SimpleNamespace(services=self.proxy),
            client_address='192.0.2.9:40000')
        layer = ssh_server.ConsoleSSHSession(server)
        layer.connection_made(FakeChannel())
        self.assertFalse(layer.break_received(0))
        self.assertIn(b'needs an open console', layer.chan.stderr)


class RefusalTest(LayerTestCase):
    """What an SSH user is told when their seat is refused."""

    def layer(self):
        server = types.SimpleNamespace(
            front_door=types.SimpleNamespace(services=self.proxy),
            client_address='192.0.2.9:40000',
            console_wanted=('b5d6a0e4-0c4e-4d51-9d7e-5f0e3a3c1a01', 0))
        return ssh_server.ConsoleSSHSession(server)

    def test_watch_only_key_is_told_to_connect_as_a_view_user(self):
        refusal = self.layer()._refusal(
            exception.ModeNotAllowed(mode='write', watch_only=True),
            core.WRITE)
        self.assertEqual(403, refusal.status)
        self.assertEqual('This key may only watch the console: connect as '
                         'b5d6a0e4-0c4e-4d51-9d7e-5f0e3a3c1a01.port0.view',
                         refusal.reason)

    def test_key_that_may_not_watch_names_the_policy(self):
        refusal = self.layer()._refusal(
            exception.ModeNotAllowed(mode='view'), core.VIEW)
        self.assertEqual(403, refusal.status)
        self.assertIn('serialproxy:serial_console:view', refusal.reason)

    def test_nothing_to_watch_says_to_connect_without_view(self):
        refusal = self.layer()._refusal(exception.ConsoleNotInUse(),
                                        core.VIEW)
        self.assertEqual((409, 'not_in_use'), (refusal.status, refusal.kind))
        self.assertIn('connect without .view', refusal.reason)
