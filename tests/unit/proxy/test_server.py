"""The proxy's event loop layer on real sockets, auth stubbed at the edge."""

import asyncio
import gc
import itertools
import os
import resource
import struct

from serialproxy.proxy import server
from tests.unit import base
from tests.unit.proxy.fakes import open_websocket
from tests.unit.proxy.fakes import StubCompute
from tests.unit.proxy.fakes import StubConsoleAuth

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
    EVENT_LOOPS = 1

    def test_flooding_guest_and_silent_client_keep_memory_bounded(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest = FloodingGuest()
        guest_server = await loop.create_server(lambda: guest, '127.0.0.1',
                                                0)
        guest_port = guest_server.sockets[0].getsockname()[1]
        auth = StubConsoleAuth(guest_port)
        proxy = server.ConsoleProxy(auth, StubCompute(), 'test-proxy',
                                    event_loops=self.EVENT_LOOPS)
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)

        await asyncio.sleep(1.5)
        connection, = proxy.sessions.values()
        stalled_at = guest.written
        await asyncio.sleep(1.5)
        # Backpressure reached the guest: it could not write any more...
        self.assertEqual(stalled_at, guest.written)
        self.assertTrue(guest.paused)
        self.assertFalse(connection.guest.transport.is_reading())
        # ...and the proxy holds at most its bound, not the flood.
        buffered = connection.transport.get_write_buffer_size()
        self.assertLessEqual(buffered, server.WRITE_BUFFER_HIGH + 4 * CHUNK)

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
    EVENT_LOOPS = 1

    def test_disconnect_sends_code_and_reason_then_frees_the_lease(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = StubConsoleAuth(guest_server.sockets[0].getsockname()[1])
        proxy = server.ConsoleProxy(auth, StubCompute(), 'test-proxy',
                                    event_loops=self.EVENT_LOOPS)
        await proxy.start('127.0.0.1', 0)
        client = await open_websocket(loop, proxy.bound_port)
        await asyncio.sleep(0.2)
        proxy.disconnect(['session-1', 'not-mine'], 4001,
                         'Disconnected by an operator')
        frame = await asyncio.wait_for(loop.sock_recv(client, 1024), 5)
        self.assertEqual(0x88, frame[0])
        self.assertEqual(4001, struct.unpack('>H', frame[2:4])[0])
        self.assertEqual(b'Disconnected by an operator', frame[4:])
        await asyncio.sleep(0.3)
        self.assertEqual(['session-1'], auth.released)
        self.assertEqual({}, proxy.sessions)
        client.close()
        await proxy.stop()
        guest_server.close()


class CapacityTest(base.TestCase):
    def test_past_its_descriptor_capacity_the_proxy_refuses_with_503(self):
        async def scenario():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            proxy = server.ConsoleProxy(
                StubConsoleAuth(guest.sockets[0].getsockname()[1]),
                StubCompute(), 'test-proxy')
            proxy.capacity = 1
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
        self.assertEqual((soft - server.RESERVED_FILES) // 2,
                         server.session_capacity())


class SlowReaderOnSessionLoopsTest(SlowReaderTest):
    """The same, with the session on a loop of its own descriptor table."""

    EVENT_LOOPS = 2


class CloseCodesOnSessionLoopsTest(CloseCodesTest):
    """A disconnect ordered from the main loop reaches a session loop."""

    EVENT_LOOPS = 2


class ManyConsolesAuth(StubConsoleAuth):
    """A console per session, so sessions do not share a lease id."""

    def __init__(self, port):
        super().__init__(port)
        self.ids = itertools.count(1)

    def acquire_session(self, ctxt, token, proxy_host, remote_address):
        return dict(super().acquire_session(ctxt, token, proxy_host,
                                            remote_address),
                    session_id='session-%d' % next(self.ids))


class SessionLoopsCapacityTest(base.TestCase):
    def test_full_loops_leave_connections_to_others_then_refuse(self):
        async def scenario():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            proxy = server.ConsoleProxy(
                ManyConsolesAuth(guest.sockets[0].getsockname()[1]),
                StubCompute(), 'test-proxy', event_loops=2,
                max_per_token=10)
            proxy.capacity = 1
            await proxy.start('127.0.0.1', 0)
            clients = [await open_websocket(loop, proxy.bound_port)
                       for _ in range(2)]
            await asyncio.sleep(0.2)
            # One session on each loop: the full one stopped accepting.
            holders = {c.loop for c in proxy.live_sessions()}
            self.assertEqual({sl.loop for sl in proxy.session_loops},
                             holders)
            try:
                await open_websocket(loop, proxy.bound_port)
                refusal = None
            except AssertionError as exc:
                refusal = str(exc)
            for client in clients:
                client.close()
            await proxy.stop()
            guest.close()
            return refusal
        self.assertIn('503 Service Unavailable', asyncio.run(scenario()))


class RecordingGuest(asyncio.Protocol):
    """A silent guest that notes the descriptors of its connections."""

    descriptors = set()

    def connection_made(self, transport):
        self.descriptors.add(transport.get_extra_info('socket').fileno())


def descriptor_identities():
    """fd -> (device, inode) of the calling thread's descriptor table."""
    table = {}
    for name in os.listdir('/proc/thread-self/fd'):
        try:
            st = os.fstat(int(name))
        except OSError:
            continue
        table[int(name)] = (st.st_dev, st.st_ino)
    return table


class SessionLoopsShutdownTest(base.TestCase):
    def test_stopping_closes_sockets_in_their_own_table_only(self):
        async def scenario():
            loop = asyncio.get_running_loop()
            RecordingGuest.descriptors = set()
            guest = await loop.create_server(RecordingGuest, '127.0.0.1', 0)
            proxy = server.ConsoleProxy(
                ManyConsolesAuth(guest.sockets[0].getsockname()[1]),
                StubCompute(), 'test-proxy', event_loops=2,
                max_per_token=10)
            await proxy.start('127.0.0.1', 0)
            clients = [await open_websocket(loop, proxy.bound_port)
                       for _ in range(4)]
            await asyncio.sleep(0.2)
            expected_to_close = set(RecordingGuest.descriptors)
            expected_to_close.add(proxy.server.sockets[0].fileno())
            for session_loop in proxy.session_loops:
                expected_to_close |= session_loop._loop_fds
            # Earlier tests' garbage is closed now, not during the check.
            gc.collect()
            before = descriptor_identities()
            await proxy.stop()
            del proxy
            gc.collect()
            await asyncio.sleep(0.2)
            after = descriptor_identities()
            for client in clients:
                client.close()
            guest.close()
            return before, after, expected_to_close
        before, after, expected_to_close = asyncio.run(scenario())
        # The session loops' sockets were closed on their loops, in their
        # tables: no close() of their numbers reached the main table.
        changed = {fd for fd, identity in before.items()
                   if fd not in expected_to_close and
                   after.get(fd) != identity}
        self.assertEqual(set(), changed)
