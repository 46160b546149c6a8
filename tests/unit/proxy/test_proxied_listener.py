"""The PROXY-protocol-aware listener on real sockets."""

import asyncio
import socket

from serialproxy.proxy import forwarded
from serialproxy.proxy import proxied_listener
from serialproxy.proxy import proxy_protocol
from tests.unit import base

SSH = b'SSH-2.0-OpenSSH_9.2\r\n'
V1 = b'PROXY TCP4 198.51.100.7 10.0.0.21 4711 2222\r\n'


class ListenerTest(base.TestCase):
    def run_scenario(self, source, sent, header_timeout=5):
        """What the handler got (source, the bytes left for it), or None
        with what the client read when the listener closed it."""
        async def scenario():
            loop = asyncio.get_running_loop()
            handed = loop.create_future()

            def accepted(sock, found):
                handed.set_result((sock, found))
            listener = proxied_listener.ProxiedListener(
                accepted, forwarded.TrustedProxies(['127.0.0.1']),
                header_timeout)
            await listener.start('127.0.0.1', 0)
            port = listener.sockets[0].getsockname()[1]
            client = socket.socket()
            client.setblocking(False)
            client.bind((source, 0))
            await loop.sock_connect(client, ('127.0.0.1', port))
            await loop.sock_sendall(client, sent)
            closed = loop.create_task(loop.sock_recv(client, 1))
            try:
                await asyncio.wait([handed, closed],
                                   timeout=header_timeout + 2,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not handed.done():
                    # Closed with the client's bytes unread: a reset.
                    return None, ('closed' if closed.done() and (
                        isinstance(closed.exception(),
                                   ConnectionResetError) or
                        closed.result() == b'') else 'hanging')
                closed.cancel()
                sock, found = handed.result()
                sock.setblocking(False)
                left = await asyncio.wait_for(
                    loop.sock_recv(sock, 4096), 5)
                sock.close()
                return found, left
            finally:
                listener.close()
                client.close()

        return asyncio.run(scenario())

    def test_trusted_peer_s_header_names_the_client_and_is_consumed(self):
        self.assertEqual((proxy_protocol.Source('198.51.100.7', 4711), SSH),
                         self.run_scenario('127.0.0.1', V1 + SSH))

    def test_v2_header_likewise(self):
        header = (proxy_protocol.V2_SIGNATURE + b'\x21\x11\x00\x0c' +
                  bytes([198, 51, 100, 7, 10, 0, 0, 21]) +
                  b'\x12\x67\x08\xae')
        self.assertEqual((proxy_protocol.Source('198.51.100.7', 4711), SSH),
                         self.run_scenario('127.0.0.1', header + SSH))

    def test_any_other_peer_is_handed_over_untouched(self):
        # A client cannot name itself: its header is SSH's problem.
        self.assertEqual((None, V1 + SSH),
                         self.run_scenario('127.0.0.2', V1 + SSH))

    def test_trusted_peer_without_a_valid_header_is_closed(self):
        for sent in (SSH, b'PROXY TCP4 ' + b'1' * 200,
                     b'PROXY TCP4 198.51.100.7\r\n'):
            self.assertEqual((None, 'closed'),
                             self.run_scenario('127.0.0.1', sent))

    def test_trusted_peer_silent_past_the_timeout_is_closed(self):
        self.assertEqual((None, 'closed'),
                         self.run_scenario('127.0.0.1', b'PROXY ',
                                           header_timeout=0.3))
