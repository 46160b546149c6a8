"""The proxy's own TLS, as a service: serialproxy-proxy with a certificate.

One QEMU guest and one deployment over RabbitMQ (consoleauth, compute,
API) with two proxies of two worker processes each, both given [DEFAULT]
cert and key signed by a throwaway CA: one with ssl_only off, which
answers TLS and plain HTTP on its port, one with ssl_only on. Clients
trust the CA and check the host name, so the certificate the proxy
serves is the one configured. Each test opens its own console session
and closes it, leaving the console free for the next.
"""

import re
import socket
import ssl
import time
import urllib.request

import fixtures
import websocket

from tests.harness import fixtures as func_fixtures
from tests.harness import proxy_world

HANDSHAKE_TIMEOUT = 3
PLAIN_REFUSAL = b'This console proxy only speaks TLS'


class TLSWorld(fixtures.Fixture):
    """The guest, the services, and the two proxies (see module doc)."""

    def _setUp(self):
        self.ca = self.useFixture(func_fixtures.TestCA())
        self.guest = self.useFixture(func_fixtures.Guest())
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        deployment = func_fixtures.Deployment(
            transport_url=vhost.url, options={
                'DEFAULT': {'cert': self.ca.cert, 'key': self.ca.key},
                'console': {'workers': 2,
                            'handshake_timeout': HANDSHAKE_TIMEOUT},
            })
        self.port = deployment.proxy_port
        # The API hands out wss:// URLs of the first proxy.
        deployment.options['serial_console'] = {
            'base_url': 'wss://127.0.0.1:%d/' % self.port}
        self.deployment = self.useFixture(deployment)
        self.ssl_only_port = func_fixtures.free_port()
        self.ssl_only_admin_port = func_fixtures.free_port()
        deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-api'):
            deployment.start(name)
        self.proxy = deployment.start('serialproxy-proxy')
        self.ssl_only_proxy = deployment.start(
            'serialproxy-proxy', label='serialproxy-proxy-ssl-only',
            DEFAULT={'host': 'proxy-ssl-only', 'ssl_only': True},
            serial_console={'serialproxy_port': self.ssl_only_port},
            console={'admin_port': self.ssl_only_admin_port})
        deployment.wait_ready()

    def console_url(self, port=None):
        """A fresh wss:// console URL of the guest, for a proxy's port."""
        url = self.deployment.console_url(self.guest.uuid)
        return url.replace(':%d/' % self.port, ':%d/' % (port or self.port))

    def client_context(self):
        """TLS as a careful client speaks it: the CA, the host name."""
        context = ssl.create_default_context(cafile=self.ca.ca)
        context.check_hostname = True
        return context


class ProxyTLSTest(func_fixtures.SharedWorldTestCase):
    @classmethod
    def make_world(cls):
        return TLSWorld()

    def setUp(self):
        super().setUp()
        for name, detail in self.world.getDetails().items():
            self.addDetail(name, detail)

    def sslopt(self):
        return {'ca_certs': self.world.ca.ca, 'check_hostname': True}

    def tls_socket(self, port):
        sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        return self.world.client_context().wrap_socket(
            sock, server_hostname='127.0.0.1')

    def request(self, sock, raw):
        """Send raw, read the answer to EOF."""
        with sock:
            sock.sendall(raw)
            answer = b''
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    def upgrade(self, url, scheme_host):
        token = re.search(r'token=([^&]+)', url).group(1)
        return ('GET /?token=%s HTTP/1.1\r\nHost: %s\r\n'
                'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                'Sec-WebSocket-Version: 13\r\n\r\n'
                % (token, scheme_host)).encode()

    def metrics(self, admin_port):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics'
                                    % admin_port, timeout=10) as answer:
            return answer.read().decode()

    def test_wss_reaches_the_guest_through_each_proxy(self):
        for port in (self.world.port, self.world.ssl_only_port):
            url = self.world.console_url(port)
            self.assertTrue(url.startswith('wss://127.0.0.1:%d/' % port))
            self.assertIsNotNone(
                func_fixtures.shell_answers(url, 'tls', sslopt=self.sslopt()),
                'no answer from the guest through port %d' % port)

    def test_both_workers_speak_tls(self):
        # The certificate is loaded once, by the parent; every worker
        # process it starts serves it. Connections are held open until
        # each worker holds one of them.
        workers = func_fixtures.children(self.world.proxy.pid)
        self.assertEqual(2, len(workers))
        holders, held = set(), []
        for _ in range(40):
            sock = self.tls_socket(self.world.port)
            self.addCleanup(sock.close)
            held.append(sock)
            holders.add(self.worker_holding(sock, workers))
            if holders == workers:
                break
        self.assertEqual(workers, holders)
        for sock in held:
            answer = self.request(
                sock, b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
            self.assertTrue(answer.startswith(b'HTTP/1.1 200 '), answer[:200])

    def worker_holding(self, sock, workers):
        inode = func_fixtures.wait_for(
            lambda: proxy_world.tcp_inode(self.world.port,
                                          sock.getsockname()[1]),
            10, "the proxy's end of a connection")
        return func_fixtures.wait_for(
            lambda: next((pid for pid in workers
                          if inode in proxy_world.socket_inodes(pid)),
                         None), 10, 'the worker holding a connection')

    def test_plain_websocket_still_served_without_ssl_only(self):
        url = self.world.console_url().replace('wss://', 'ws://')
        self.assertIsNotNone(func_fixtures.shell_answers(url, 'plain'),
                             'no answer over plain ws://')

    def test_ssl_only_refuses_plain_with_a_reason_and_counts_it(self):
        url = self.world.console_url(self.world.ssl_only_port)
        before = self.refusals_counted()
        for raw in (self.upgrade(url, '127.0.0.1'),
                    b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'):
            sock = socket.create_connection(
                ('127.0.0.1', self.world.ssl_only_port), timeout=10)
            answer = self.request(sock, raw)
            self.assertTrue(answer.startswith(b'HTTP/1.1 400 '), answer)
            self.assertIn(PLAIN_REFUSAL, answer)
        func_fixtures.wait_for(
            lambda: self.refusals_counted() == before + 2, 10,
            'two tls_only refusals counted')
        log = self.world.deployment.logs()
        self.assertIn('400 ' + PLAIN_REFUSAL.decode(), log)
        self.assertNotIn(re.search(r'token=([^&]+)', url).group(1), log)
        # The token was not spent: wss with it still opens the console.
        self.assertIsNotNone(func_fixtures.shell_answers(
            url, 'after', sslopt=self.sslopt()))

    def refusals_counted(self):
        for line in self.metrics(self.world.ssl_only_admin_port).split('\n'):
            if line.startswith('serialproxy_refusals_total{') and \
                    'reason="tls_only"' in line and 'status="400"' in line:
                return float(line.split()[-1])
        return 0.0

    def test_websocket_client_gets_the_refusal_status(self):
        url = self.world.console_url(self.world.ssl_only_port)
        exc = self.assertRaises(
            websocket.WebSocketBadStatusException,
            websocket.create_connection, url.replace('wss://', 'ws://'),
            timeout=10)
        self.assertEqual(400, exc.status_code)

    def test_https_page_and_an_untrusted_client(self):
        for port in (self.world.port, self.world.ssl_only_port):
            answer = self.request(self.tls_socket(port),
                                  b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
            self.assertTrue(answer.startswith(b'HTTP/1.1 200 '), answer[:200])
            self.assertIn(b'<html', answer.lower())
        # A client that does not know the CA refuses the proxy's chain.
        self.assertRaises(
            ssl.SSLCertVerificationError,
            ssl.create_default_context().wrap_socket,
            socket.create_connection(('127.0.0.1', self.world.port), 10),
            server_hostname='127.0.0.1')

    def test_silent_clients_are_not_held_past_the_handshake_timeout(self):
        """Nothing at all, half a ClientHello, or TLS and no request: each
        ends by the handshake timeout, the last with a 400 over TLS."""
        silent = socket.create_connection(('127.0.0.1', self.world.port))
        half_hello = socket.create_connection(('127.0.0.1',
                                               self.world.ssl_only_port))
        half_hello.sendall(b'\x16\x03\x01\x02\x00\x01')
        no_request = self.tls_socket(self.world.port)
        started = time.monotonic()
        for sock in (silent, half_hello, no_request):
            self.addCleanup(sock.close)
            sock.settimeout(HANDSHAKE_TIMEOUT + 10)
        for sock in (silent, half_hello):
            try:
                self.assertEqual(b'', sock.recv(4096))
            except ConnectionResetError:
                pass
        answer = b''
        while chunk := no_request.recv(4096):
            answer += chunk
        self.assertTrue(answer.startswith(b'HTTP/1.1 400 '), answer)
        self.assertIn(b'Request not received in time', answer)
        self.assertLess(time.monotonic() - started, HANDSHAKE_TIMEOUT + 3)
