"""What the proxy's unit tests stand in for: its RPC peers, a client, the
page's npm files."""

import base64
import os
import socket
import struct

from serialproxy import exception
from serialproxy import rpc
from serialproxy.proxy.page import assets as page_assets
from serialproxy.proxy import server
from serialproxy.proxy import session


def make_proxy(auth, compute=None, ssl_context=None, session_settings=None,
               **settings):
    """A ConsoleProxy with its settings' defaults, but those given."""
    return server.ConsoleProxy(
        server.ProxySettings(
            session=session_settings or session.Settings(),
            proxy_host='test-proxy', **settings),
        auth, compute or StubCompute(), ssl_context=ssl_context)


class StubConsoleAuth:
    """consoleauth as the proxy sees it: one console, always free."""

    def __init__(self, port):
        self.port = port
        self.released = []

    def check_token(self, ctxt, token):
        return {'instance_uuid': 'i-1', 'console_type': 'serial',
                'compute_host': 'c-1', 'host': '127.0.0.1',
                'port': self.port, 'index': 0, 'expires_at': 2e9}

    def acquire_sessions(self, ctxt, proxy_host, requests):
        return [rpc.batch_value(dict(
            self.check_token(ctxt, request['token']),
            session_id='session-1', lease_ttl=30)) for request in requests]

    def release_sessions(self, ctxt, session_ids):
        self.released.extend(session_ids)

    def renew_sessions(self, ctxt, proxy_host, sessions, timeout=None):
        return []


class StubCompute:
    def __init__(self, console_output=None):
        self.console_output = console_output

    def validate_console_port(self, ctxt, host, instance_uuid, port,
                              index=0):
        return True

    def get_console_outputs(self, ctxt, host, instance_uuids, length=None):
        if self.console_output is None:
            return [rpc.batch_error(exception.ConsoleLogNotFound(
                instance_uuid=uuid, reason='no log configured'))
                for uuid in instance_uuids]
        return [rpc.batch_value(self.console_output)] * len(instance_uuids)


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


def client_frame(opcode, payload, fin=True, mask=True):
    """A frame as a browser sends it: masked, unless told otherwise."""
    head = bytes([opcode | (0x80 if fin else 0)])
    mask_bit = 0x80 if mask else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    elif len(payload) < 65536:
        head += bytes([mask_bit | 126]) + struct.pack('>H', len(payload))
    else:
        head += bytes([mask_bit | 127]) + struct.pack('>Q', len(payload))
    if not mask:
        return head + payload
    key = os.urandom(4)
    size = len(payload)
    keystream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, 'big') ^
              int.from_bytes(keystream, 'big')).to_bytes(size, 'big')
    return head + key + masked


def server_frames(data):
    """(opcode, payload) of each frame the server sent (unmasked), or a
    client (masked: the payload is given unmasked)."""
    frames = []
    while data:
        opcode, length = data[0] & 0x0f, data[1] & 0x7f
        offset = 2
        if length == 126:
            length, = struct.unpack('>H', data[2:4])
            offset = 4
        elif length == 127:
            length, = struct.unpack('>Q', data[2:10])
            offset = 10
        key = b''
        if data[1] & 0x80:
            key, offset = data[offset:offset + 4], offset + 4
        payload = data[offset:offset + length]
        if key:
            payload = bytes(byte ^ key[i % 4]
                            for i, byte in enumerate(payload))
        frames.append((opcode, payload))
        data = data[offset + length:]
    return frames


def install_page_assets(root, names=None):
    """Files standing in for the page's npm files under root."""
    for name in names or page_assets.SERVED.values():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('/* %s */' % name)
