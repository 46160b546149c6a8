"""The proxy's event loop layer on real sockets, auth stubbed at the edge."""

import asyncio
import base64
import os
import socket
import struct

from serialproxy.proxy import server
from tests.unit import base

CHUNK = 64 * 1024


class StubConsoleAuth:
    """consoleauth as the proxy sees it: one console, always free."""

    def __init__(self, port):
        self.port = port
        self.released = []

    def check_token(self, ctxt, token):
        return {'instance_uuid': 'i-1', 'console_type': 'serial',
                'compute_host': 'c-1', 'host': '127.0.0.1',
                'port': self.port, 'index': 0, 'expires_at': 2e9}

    def acquire_session(self, ctxt, token, proxy_host, remote_address):
        return {'session_id': 'session-1', 'lease_ttl': 30}

    def release_session(self, ctxt, session_id):
        self.released.append(session_id)

    def renew_sessions(self, ctxt, proxy_host, sessions):
        return []


class StubCompute:
    def validate_console_port(self, ctxt, host, instance_uuid, port,
                              index=0):
        return True


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


async def open_websocket(loop, port):
    """A client socket that completes the handshake, then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ('127.0.0.1', port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        'GET /?token=t HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'
        'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        'Sec-WebSocket-Key: %s\r\n\r\n' % key).encode())
    head = b''
    while not head.endswith(b'\r\n\r\n'):
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b'HTTP/1.1 101'), head
    return sock


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
        proxy = server.ConsoleProxy(auth, StubCompute(), 'test-proxy')
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
    def test_disconnect_sends_code_and_reason_then_frees_the_lease(self):
        asyncio.run(self._scenario())

    async def _scenario(self):
        loop = asyncio.get_running_loop()
        guest_server = await loop.create_server(asyncio.Protocol,
                                                '127.0.0.1', 0)
        auth = StubConsoleAuth(guest_server.sockets[0].getsockname()[1])
        proxy = server.ConsoleProxy(auth, StubCompute(), 'test-proxy')
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
