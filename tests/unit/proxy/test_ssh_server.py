"""The SSH front door's rules that need no network: admission of a
connection, one sign-in per key, one console channel per connection and
its seat, the grace of a connection without one. The console session's
own rules are the SSH front end's (test_ssh_session.py); how the layer
carries out its actions is test_ssh_layer.py's."""

import asyncio
import types

import asyncssh
import fixtures

from serialproxy import exception
from serialproxy.proxy import admission
from serialproxy.proxy import proxy_protocol
from serialproxy.proxy import session as cs
from serialproxy.proxy import sign_in_failures
from serialproxy.proxy import ssh_server
from tests.unit import base


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


class FakeServices:
    """What the SSH front door asks of services.ConsoleServices."""

    def __init__(self, max_per_address):
        self.admission = admission.Admission(max_per_address, 10,
                                             capacity=100)
        self.consoleauth = FakeConsoleAuth()
        self.settings = types.SimpleNamespace(
            proxy_host='proxy-1', session=cs.Settings(),
            max_replay_lines=1000)

    async def check_ssh_key(self, instance_uuid, index, fingerprint):
        return self.consoleauth.check_ssh_key({}, instance_uuid, index,
                                              fingerprint)

    async def sign_in_ssh_key(self, instance_uuid, index, fingerprint):
        return self.consoleauth.sign_in_ssh_key({}, instance_uuid, index,
                                                fingerprint)

    def opened(self, connection):
        pass


class FakeFrontDoor:
    def __init__(self, max_per_address=2, console_grace=0.05):
        self.services = FakeServices(max_per_address)
        self.failures = sign_in_failures.SignInFailures(3)
        self.key_ttl = 60
        self.console_grace = console_grace
        self.refusals = []
        # Clients named by a trusted balancer's PROXY header, by peer.
        self.forwarded = {}

    def refused(self, kind, status=429):
        self.refusals.append((kind, status))


class ConnectionTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.front_door = FakeFrontDoor()
        self.consoleauth = self.front_door.services.consoleauth

    def connect(self, peer=('198.51.100.7', 50000)):
        server = ssh_server.ConsoleSSHServer(self.front_door)
        server.connection_made(FakeConnection(peer))
        return server

    async def signed_in(self, server=None, user=UUID + '.port0'):
        server = server or self.connect()
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
        self.assertEqual(2, self.front_door.services.admission.admitted)

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
        self.assertEqual(2, self.front_door.services.admission.admitted)


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


class UserOptionsTest(ConnectionTestBase):
    """What the user name asks for after its port (replay-lines=N, as
    GCP's), or why the sign-in is refused."""

    def test_replay_lines_go_to_the_console_channel(self):
        async def run():
            server = await self.signed_in(
                user=UUID + '.port0.replay-lines=3')
            return server, server.session_requested()
        server, channel = asyncio.run(run())
        self.assertEqual((UUID, 0), server.console_wanted)
        self.assertEqual(cs.WRITE, channel.session.mode)
        self.assertEqual(3, channel.session.replay_lines)

    def test_view_with_replay_lines_watches(self):
        async def run():
            server = await self.signed_in(
                user=UUID + '.port0.view.replay-lines=0')
            return server.session_requested()
        channel = asyncio.run(run())
        self.assertEqual(cs.VIEW, channel.session.mode)
        self.assertEqual(0, channel.session.replay_lines)

    def test_no_option_leaves_the_proxys_replay(self):
        async def run():
            server = await self.signed_in()
            return server.session_requested()
        self.assertIsNone(asyncio.run(run()).session.replay_lines)

    def test_bad_option_refuses_the_sign_in_with_the_reason(self):
        for user, reason in (
                (UUID + '.port0.replay-lines=x',
                 "replay-lines takes a whole number, 0 or more, not 'x'"),
                (UUID + '.port0.replay-lines=-1',
                 "replay-lines takes a whole number, 0 or more, not '-1'"),
                (UUID + '.port0.lines=5', "unknown option 'lines=5'")):
            self.front_door = FakeFrontDoor()
            self.consoleauth = self.front_door.services.consoleauth

            async def run():
                server = self.connect()
                server.begin_auth(user)
                accepted = await server.validate_public_key(user, KEY)
                return server, accepted
            server, accepted = asyncio.run(run())
            self.assertFalse(accepted, user)
            banner, = server.conn.banners
            self.assertIn('Bad console user name: ' + reason, banner)
            self.assertIn('replay-lines=N', banner)
            # The key was not looked at, so it stays good for a right
            # name.
            self.assertEqual(0, self.consoleauth.checked)
            self.assertTrue(self.consoleauth.live)


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
        self.assertEqual(cs.WRITE, first.session.mode)
        self.assertEqual(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                         error.code)
        self.assertIn('One console channel per connection', error.reason)
        self.assertEqual([('rate_limited', 429)], self.front_door.refusals)

    def test_view_user_gets_a_spectators_channel(self):
        async def run():
            server = await self.signed_in(user=UUID + '.port0.view')
            return server, server.session_requested()
        server, channel = asyncio.run(run())
        self.assertEqual((UUID, 0), server.console_wanted)
        self.assertEqual(cs.VIEW, channel.session.mode)
        self.assertTrue(channel.session.is_spectator)

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


class ClientThatStopsReadingTest(base.TestCase):
    """What a client asks for is not answered into memory while it does
    not read."""

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
