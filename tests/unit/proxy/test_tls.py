import asyncio
import socket
import ssl
import subprocess

from serialproxy.proxy import metrics
from serialproxy.proxy import tls
from tests.unit import base
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import StubConsoleAuth


class TLSListenerTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.cert = '%s/proxy.pem' % self.state_path
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
             '-keyout', self.cert, '-out', self.cert, '-days', '1',
             '-subj', '/CN=127.0.0.1'],
            check=True, capture_output=True)

    def serve(self, scenario, ssl_only=False, minimum_version='default'):
        context = tls.server_context(self.cert,
                                     minimum_version=minimum_version)

        async def run():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            proxy = make_proxy(
                StubConsoleAuth(guest.sockets[0].getsockname()[1]),
                ssl_context=context, ssl_only=ssl_only)
            await proxy.start('127.0.0.1', 0)
            try:
                return await loop.run_in_executor(None, scenario,
                                                  proxy.bound_port)
            finally:
                await proxy.stop()
                guest.close()
        return asyncio.run(run())

    @staticmethod
    def request(port, raw, use_tls, max_version=None):
        sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        if use_tls:
            client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client.check_hostname = False
            client.verify_mode = ssl.CERT_NONE
            if max_version:
                client.maximum_version = max_version
            sock = client.wrap_socket(sock)
        with sock:
            sock.sendall(raw)
            reply = b''
            while chunk := sock.recv(65536):
                reply += chunk
        return reply

    PAGE = b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

    def test_tls_and_plain_share_the_port_without_ssl_only(self):
        def scenario(port):
            return (self.request(port, self.PAGE, use_tls=True),
                    self.request(port, self.PAGE, use_tls=False))
        secure, plain = self.serve(scenario)
        self.assertTrue(secure.startswith(b'HTTP/1.1 200 OK'))
        self.assertTrue(plain.startswith(b'HTTP/1.1 200 OK'))

    def test_ssl_only_refuses_plain_with_a_reason_and_counts_it(self):
        def scenario(port):
            return (self.request(port, self.PAGE, use_tls=True),
                    self.request(port, self.PAGE, use_tls=False))
        labels = {'status': '400', 'reason': 'tls_only'}
        before = metrics.sample_value('serialproxy_refusals_total', labels)
        secure, plain = self.serve(scenario, ssl_only=True)
        self.assertTrue(secure.startswith(b'HTTP/1.1 200 OK'))
        self.assertTrue(plain.startswith(b'HTTP/1.1 400 '))
        self.assertIn(b'only speaks TLS', plain)
        self.assertEqual(1, metrics.sample_value(
            'serialproxy_refusals_total', labels) - before)

    def test_minimum_version_refuses_older_clients(self):
        def scenario(port):
            try:
                self.request(port, self.PAGE, use_tls=True,
                             max_version=ssl.TLSVersion.TLSv1_2)
            except (ssl.SSLError, ConnectionError) as exc:
                return exc
        self.assertIsInstance(
            self.serve(scenario, minimum_version='tlsv1_3'),
            (ssl.SSLError, ConnectionError))

    def test_websocket_over_tls_matches_https_origins(self):
        upgrade = (b'GET /?token=t HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                   b'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                   b'Sec-WebSocket-Version: 13\r\n'
                   b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                   b'Origin: %s\r\n\r\n')

        def scenario(port):
            def first_line(origin):
                sock = socket.create_connection(('127.0.0.1', port), 10)
                client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                client.check_hostname = False
                client.verify_mode = ssl.CERT_NONE
                with client.wrap_socket(sock) as conn:
                    conn.sendall(upgrade % origin)
                    return conn.recv(4096).split(b'\r\n')[0]
            return (first_line(b'https://127.0.0.1'),
                    first_line(b'http://127.0.0.1'))
        https, http = self.serve(scenario)
        self.assertTrue(https.startswith(b'HTTP/1.1 101'), https)
        self.assertTrue(http.startswith(b'HTTP/1.1 403'), http)

    def test_unreadable_cert_is_a_clear_start_up_error(self):
        exc = self.assertRaises(tls.TLSConfigInvalid, tls.server_context,
                                '/nonexistent/cert.pem')
        self.assertIn('cannot load certificate /nonexistent/cert.pem',
                      str(exc))

    def test_bad_cipher_list_is_a_clear_start_up_error(self):
        self.assertRaises(tls.TLSConfigInvalid, tls.server_context,
                          self.cert, ciphers='NOT-A-CIPHER')
