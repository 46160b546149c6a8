"""The proxy's event loop layer on real sockets, auth stubbed at the edge."""

import asyncio
import json
import os
import resource
import struct
import time
import uuid

import fixtures

from serialproxy import exception
from serialproxy import notifications
from serialproxy.proxy import admission
from serialproxy.proxy import connections
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import metrics
from serialproxy.proxy import server
from serialproxy.proxy import session
from serialproxy import rpc
from tests.unit import base
from tests.unit import notification_fixture
from tests.unit.proxy import fakes
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import open_websocket
from tests.unit.proxy.fakes import server_frames
from tests.unit.proxy.fakes import StubConsoleAuth
from tests.unit.proxy.fakes import install_page_assets as install

CHUNK = 64 * 1024


class FloodingGuest(asyncio.Protocol):
    """A guest printing as fast as the proxy lets it."""

    def __init__(self):
        self.written = 0
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport
        self._write()

    def _write(self):
        if self.paused or self.transport.is_closing():
            return
        self.transport.write(b'y\r\n' * (CHUNK // 3))
        self.written += CHUNK // 3 * 3
        asyncio.get_running_loop().call_soon(self._write)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self._write()


class SlowReaderTest(base.TestCase):
    def test_flooding_guest_and_silent_client_keep_memory_bounded(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest = FloodingGuest()
        guest_server = await loop.create_server(lambda: guest, '127.0.0.1',
                                                0)
        guest_port = guest_server.sockets[0].getsockname()[1]
        auth = StubConsoleAuth(guest_port)
        proxy = make_proxy(auth)
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)

        await asyncio.sleep(1.5)
        connection, = proxy.registry.sessions.values()
        stalled_at = guest.written
        await asyncio.sleep(1.5)
        # Backpressure reached the guest: it could not write any more...
        self.assertEqual(stalled_at, guest.written)
        self.assertTrue(guest.paused)
        self.assertFalse(connection.guest.transport.is_reading())
        # ...and the proxy holds at most its bound, not the flood.
        buffered = connection.transport.get_write_buffer_size()
        self.assertLessEqual(buffered,
                             connections.WRITE_BUFFER_HIGH + 4 * CHUNK)

        # Reading again resumes the flow: the session was slowed, not lost.
        # (Megabytes wait in kernel buffers between guest and proxy first.)
        received = 0
        deadline = loop.time() + 20
        while guest.written <= stalled_at and loop.time() < deadline:
            received += len(await asyncio.wait_for(
                loop.sock_recv(client, CHUNK), 5))
        self.assertGreater(guest.written, stalled_at)
        self.assertGreater(received, 0)

        client.close()
        await asyncio.sleep(0.3)
        self.assertEqual(['session-1'], auth.released)
        await proxy.stop()
        guest_server.close()


class CloseCodesTest(base.TestCase):
    def test_disconnect_sends_code_and_reason_then_frees_the_lease(self):
        asyncio.run(self._scenario(4001, 'Disconnected by an operator'))

    def test_sessions_the_access_switch_ends_are_counted(self):
        name = 'serialproxy_sessions_ended_by_access_switch_total'
        before = metrics.sample_value(name)
        asyncio.run(self._scenario(
            4009, 'Serial console access is turned off for this project'))
        self.assertEqual(before + 1, metrics.sample_value(name))

    async def _scenario(self, code, reason):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = StubConsoleAuth(guest_server.sockets[0].getsockname()[1])
        proxy = make_proxy(auth)
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)
        await asyncio.sleep(0.2)
        proxy.disconnect(['session-1', 'not-mine'], code, reason)
        frame = await asyncio.wait_for(loop.sock_recv(client, 1024), 5)
        self.assertEqual(0x88, frame[0])
        self.assertEqual(code, struct.unpack('>H', frame[2:4])[0])
        self.assertEqual(reason.encode(), frame[4:])
        await asyncio.sleep(0.3)
        self.assertEqual(['session-1'], auth.released)
        self.assertEqual({}, proxy.registry.sessions)
        client.close()
        await proxy.stop()
        guest_server.close()


class CapacityTest(base.TestCase):
    def test_past_its_descriptor_capacity_the_proxy_refuses_with_503(self):
        async def scenario():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            proxy = make_proxy(
                StubConsoleAuth(guest.sockets[0].getsockname()[1]))
            proxy.admission.capacity = 1
            await proxy.start('127.0.0.1', 0)
            first = await open_websocket(loop, proxy.bound_port)
            try:
                await open_websocket(loop, proxy.bound_port)
            except AssertionError as exc:
                refusal = str(exc)
            first.close()
            await asyncio.sleep(0.2)
            # A place freed is a place again.
            second = await open_websocket(loop, proxy.bound_port)
            second.close()
            await proxy.stop()
            guest.close()
            return refusal
        refusal = asyncio.run(scenario())
        self.assertIn('503 Service Unavailable', refusal)

    def test_capacity_follows_the_open_files_limit(self):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertEqual((soft - admission.RESERVED_FILES) // 2,
                         admission.session_capacity())


class GarbageTest(base.TestCase):
    def test_bytes_that_are_not_http_get_400_before_the_timeout(self):
        async def scenario():
            proxy = make_proxy(StubConsoleAuth(1), session_settings=(
                session.Settings(handshake_timeout=30)))
            await proxy.start('127.0.0.1', 0)
            answers = []
            for garbage in (b'\x00\xff\x10\x80', b'SSH-2.0-OpenSSH_9.2\r\n'):
                reader, writer = await asyncio.open_connection(
                    '127.0.0.1', proxy.bound_port)
                writer.write(garbage)
                # Answered when the bytes came, long before the timeout.
                answers.append(await asyncio.wait_for(reader.read(), 5))
                writer.close()
            await proxy.stop()
            return answers
        for answer in asyncio.run(scenario()):
            self.assertTrue(answer.startswith(b'HTTP/1.1 400 '), answer)


class ByteMetricsTest(base.TestCase):
    def test_bytes_reach_the_metrics_when_flushed_not_per_chunk(self):
        proxy = make_proxy(StubConsoleAuth(1))
        before = metrics.sample_value('serialproxy_bytes_total',
                                      {'direction': 'to_guest'})
        proxy.services.relayed_to_guest(10)
        proxy.services.relayed_to_guest(5)
        self.assertEqual(before, metrics.sample_value(
            'serialproxy_bytes_total', {'direction': 'to_guest'}))
        proxy.flush_metrics()
        self.assertEqual(before + 15, metrics.sample_value(
            'serialproxy_bytes_total', {'direction': 'to_guest'}))
        self.assertEqual(0, proxy.relayed.to_guest)


class EchoGuest(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class DrainTest(base.TestCase):
    def test_stopping_proxy_refuses_new_lets_sessions_run_then_1001(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest = await loop.create_server(EchoGuest, '127.0.0.1', 0)
        auth = StubConsoleAuth(guest.sockets[0].getsockname()[1])
        proxy = make_proxy(auth)
        await proxy.start('127.0.0.1', 0)
        port = proxy.bound_port
        client = await open_websocket(loop, port)
        stopping = loop.create_task(proxy.stop(drain_timeout=1.5))
        await asyncio.sleep(0.3)
        # No new connections while draining...
        with self.assertRaises(OSError):
            await asyncio.open_connection('127.0.0.1', port)
        # ...while the open session goes on.
        await loop.sock_sendall(client, client_frame(0x2, b'still here'))
        echoed = await asyncio.wait_for(loop.sock_recv(client, 1024), 5)
        self.assertEqual([(0x2, b'still here')], server_frames(echoed))
        self.assertFalse(stopping.done())
        # Then it is closed with 1001.
        frame = await asyncio.wait_for(loop.sock_recv(client, 1024), 5)
        self.assertEqual((0x8, 1001),
                         (frame[0] & 0x0f,
                          struct.unpack('>H', frame[2:4])[0]))
        await asyncio.wait_for(stopping, 5)
        self.assertEqual(['session-1'], auth.released)
        client.close()
        guest.close()


class ComputeThatMustNotBeAsked:
    """A compute agent the lease path must not call: one round trip."""

    def validate_console_port(self, *args, **kwargs):
        raise AssertionError('validate_console_port on the connect path')

    def get_console_outputs(self, *args, **kwargs):
        raise AssertionError('no replay was configured')


class OneRoundTripTest(base.TestCase):
    def test_a_session_opens_with_one_consoleauth_call_only(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = StubConsoleAuth(guest_server.sockets[0].getsockname()[1])
        proxy = make_proxy(auth, compute=ComputeThatMustNotBeAsked())
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)
        await asyncio.sleep(0.2)
        self.assertEqual(['session-1'], list(proxy.registry.sessions))
        client.close()
        await proxy.stop()
        guest_server.close()


class SlowConsoleAuth(StubConsoleAuth):
    """Answers lease batches after a while; records each batch's size."""

    def __init__(self, port):
        super().__init__(port)
        self.batches = []

    def acquire_sessions(self, ctxt, proxy_host, requests):
        self.batches.append(len(requests))
        time.sleep(0.2)
        return [rpc.batch_value(dict(
            self.check_token(ctxt, request['token']),
            session_id=str(uuid.uuid4()), lease_ttl=30))
            for request in requests]


class BatchedLeasesTest(base.TestCase):
    def test_a_burst_of_new_sessions_shares_few_consoleauth_calls(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = SlowConsoleAuth(guest_server.sockets[0].getsockname()[1])
        # One client address and one token here.
        proxy = make_proxy(auth, max_per_address=100, max_per_token=100)
        await proxy.start('127.0.0.1', 0)
        clients = await asyncio.gather(*(
            open_websocket(loop, proxy.bound_port) for _ in range(30)))
        self.assertEqual(30, len(proxy.registry.sessions))
        self.assertEqual(30, sum(auth.batches))
        # Two calls leave at once; the rest wait for one of them and go
        # together.
        self.assertLessEqual(len(auth.batches), 6, auth.batches)
        for client in clients:
            client.close()
        await proxy.stop()
        # Every lease is given back before the proxy has stopped.
        self.assertEqual(30, len(set(auth.released)))
        guest_server.close()


class PageAssetsReportTest(base.TestCase):
    """What an operator reads at start-up about the page's scripts."""

    def setUp(self):
        super().setUp()
        self.checkout = os.path.join(self.state_path, 'node_modules')
        self.built = os.path.join(self.state_path, 'vendor')
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.page.assets.CHECKOUT_ROOT', self.checkout))
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.page.assets.BUILT_ROOT', self.built))
        self.log = self.useFixture(fixtures.FakeLogger(
            name='serialproxy.proxy.server'))

    def report(self, **settings):
        make_proxy(StubConsoleAuth(1), **settings)._report_page_assets()
        return self.log.output

    def test_installed_copy_is_named(self):
        install(self.built)
        self.assertIn('terminal scripts are served from %s'
                      % os.path.realpath(self.built), self.report())

    def test_neither_copy_names_both_places_and_the_remedies(self):
        output = self.report()
        self.assertIn('The console page cannot work', output)
        for words in (self.built, self.checkout, 'wheel', 'npm ci',
                      'vendor_path'):
            self.assertIn(words, output)

    def test_configured_path_is_blamed_alone(self):
        install(self.built)
        output = self.report(vendor_path=self.checkout)
        self.assertIn('missing under [console] vendor_path', output)
        self.assertNotIn(self.built, output)


class FrameAncestorsSettingsTest(base.TestCase):
    def test_option_reaches_the_session_and_the_page(self):
        self.flags(group='console', frame_ancestors=[
            "'self'", 'https://horizon.example'])
        settings = server.ProxySettings.from_conf(self.conf.conf)
        self.assertTrue(settings.session.frame_ancestors.allows_origin(
            'https://horizon.example'))
        proxy = server.ConsoleProxy(settings, None, None)
        self.addCleanup(proxy.control_plane.executor.shutdown)
        csp = dict(proxy.static.security_headers)['Content-Security-Policy']
        self.assertTrue(csp.endswith(
            "; frame-ancestors 'self' https://horizon.example"), csp)

    def test_bad_entry_stops_the_start_with_its_reason(self):
        self.flags(group='console', frame_ancestors=['horizon.example'])
        exc = self.assertRaises(frame_ancestors.InvalidFrameAncestor,
                                server.ProxySettings.from_conf,
                                self.conf.conf)
        self.assertIn("'horizon.example' is not", str(exc))


class PermittedConsoleAuth(StubConsoleAuth):
    """Tokens whose URL was issued with SysRq allowed, NMI not."""

    def check_token(self, ctxt, token):
        return dict(super().check_token(ctxt, token), modes=['sysrq'],
                    user_id='u-1', project_id='p-1')


class RecordingCompute(fakes.StubCompute):
    def __init__(self):
        super().__init__()
        self.calls = []

    def send_sysrq(self, ctxt, host, instance_uuid, key):
        self.calls.append(('send_sysrq', host, instance_uuid, key))

    def inject_nmi(self, ctxt, host, instance_uuid):
        self.calls.append(('inject_nmi', host, instance_uuid))


class PageCommandsTest(base.TestCase):
    """The page's text frames reach the compute agent as the SSH
    front door's SysRq does, or are answered with an error note."""

    def test_allowed_sysrq_reaches_compute_and_nmi_is_refused(self):
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())
        asyncio.run(self._scenario())

    async def read_frames(self, loop, client, count):
        data = b''
        while len(server_frames(data)) < count:
            data += await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        return server_frames(data)

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest = await loop.create_server(EchoGuest, '127.0.0.1', 0)
        auth = PermittedConsoleAuth(guest.sockets[0].getsockname()[1])
        compute = RecordingCompute()
        proxy = make_proxy(auth, compute=compute)
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)
        await loop.sock_sendall(client,
                                client_frame(0x1, b'{"permissions": true}'))
        self.assertEqual([(0x1, b'{"permissions": ["sysrq"]}')],
                         await self.read_frames(loop, client, 1))
        await loop.sock_sendall(client, client_frame(0x1, b'{"sysrq": "h"}'))
        self.assertEqual([(0x1, b'{"sent": {"sysrq": "h"}}')],
                         await self.read_frames(loop, client, 1))
        self.assertEqual([('send_sysrq', 'c-1', 'i-1', 'h')], compute.calls)
        (event, body), = self.notes.caught(notifications.SYSRQ_SENT)
        self.assertEqual([], notification_fixture.mismatches(event, body))
        data = body['serialproxy_object.data']
        self.assertEqual(('i-1', 'h', 'session-1', 'test-proxy', 'u-1',
                          'write'),
                         (data['instance_uuid'], data['sysrq_key'],
                          data['session_id'], data['proxy_host'],
                          data['user_id'], data['mode']))
        await loop.sock_sendall(client, client_frame(0x1, b'{"nmi": true}'))
        (opcode, payload), = await self.read_frames(loop, client, 1)
        self.assertEqual((0x1, {'error': 'NMI is not allowed with this '
                                         'console URL'}),
                         (opcode, json.loads(payload)))
        self.assertEqual(1, len(compute.calls))
        self.assertEqual([], self.notes.caught(notifications.NMI_SENT))
        # The session goes on: keys still reach the guest.
        await loop.sock_sendall(client, client_frame(0x2, b'still here'))
        self.assertEqual([(0x2, b'still here')],
                         await self.read_frames(loop, client, 1))
        client.close()
        await proxy.stop()
        guest.close()


class OlderConsoleAuth(StubConsoleAuth):
    """A consoleauth before 1.11 beside a newer one: it leases the writer's
    seat to any token, and answers a watch-only token's modes as its
    column holds them, mark included. Nobody writes on the console."""

    def __init__(self, port):
        super().__init__(port)
        self.joined = []

    def check_token(self, ctxt, token):
        return dict(super().check_token(ctxt, token),
                    modes=['view', 'watch_only'])

    def join_session(self, ctxt, token, proxy_host, **kwargs):
        self.joined.append(token)
        raise exception.ConsoleNotInUse()


class WatchOnlyBehindAnOlderConsoleAuthTest(base.TestCase):
    def test_writers_seat_is_given_back_and_the_url_only_watches(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = OlderConsoleAuth(guest_server.sockets[0].getsockname()[1])
        proxy = make_proxy(auth)
        await proxy.start('127.0.0.1', 0)
        reader, writer = await asyncio.open_connection('127.0.0.1',
                                                       proxy.bound_port)
        writer.write(
            b'GET /?token=t HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            b'Upgrade: websocket\r\nConnection: Upgrade\r\n'
            b'Sec-WebSocket-Version: 13\r\n'
            b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
        status = await asyncio.wait_for(reader.readline(), 10)
        body = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await asyncio.sleep(0.2)
        await proxy.stop()
        guest_server.close()
        # Not a writer's 101: the lease went back, a spectator's seat was
        # asked for, and there is nothing to watch.
        self.assertEqual(b'HTTP/1.1 409 Conflict\r\n', status)
        self.assertIn(b'this console URL is watch-only', body)
        self.assertEqual(['session-1'], auth.released)
        self.assertEqual(['t'], auth.joined)


class ConsoleAuthThatMustNotBeAsked:
    def __getattr__(self, name):
        raise AssertionError('consoleauth asked %s for a request without '
                             'a token' % name)


class MissingTokenTest(base.TestCase):
    def test_upgrade_and_check_without_a_token_get_401_unasked(self):
        async def scenario():
            proxy = make_proxy(ConsoleAuthThatMustNotBeAsked())
            await proxy.start('127.0.0.1', 0)
            answers = []
            for extra in (b'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                          b'Sec-WebSocket-Version: 13\r\n'
                          b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
                          b'X-Serialproxy-Check: 1\r\n'):
                reader, writer = await asyncio.open_connection(
                    '127.0.0.1', proxy.bound_port)
                writer.write(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
                             extra + b'\r\n')
                answers.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
            await proxy.stop()
            return answers
        labels = {'status': '401', 'reason': 'invalid_token'}
        before = metrics.sample_value('serialproxy_refusals_total', labels)
        for answer in asyncio.run(scenario()):
            self.assertTrue(answer.startswith(b'HTTP/1.1 401 '), answer)
            self.assertIn(b'Missing token', answer)
        self.assertEqual(2, metrics.sample_value(
            'serialproxy_refusals_total', labels) - before)


class AccessOffConsoleAuth(StubConsoleAuth):
    """consoleauth saying the console's access switch is off."""

    def get_console_access(self, ctxt, instance_uuid=None, project_id=None):
        return {'project_id': 'p', 'server_id': instance_uuid,
                'enabled': False, 'decided_by': 'project',
                'levels': {'cloud': 'enabled', 'project': 'disabled',
                           'server': None}}


class AccessCheckTest(base.TestCase):
    def test_check_of_a_console_whose_access_is_off_says_why(self):
        proxy = make_proxy(AccessOffConsoleAuth(1))
        exc = self.assertRaises(exception.ConsoleAccessDisabled, asyncio.run,
                                proxy.control_plane.check('token'))
        self.assertEqual(
            'Serial console access is turned off for this project',
            exc.message)
