"""The walking skeleton end to end: API URL, proxy, a real guest's shell."""

import os
import socket
import urllib.parse

import fixtures
import websocket

from tests.harness import fixtures as func_fixtures
from tests.harness import testcase


class ConsolePathMixin:
    """The scenario; subclasses deploy the services their own way."""

    def deploy(self):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        log_dir = self.useFixture(fixtures.TempDir()).path
        self.guest = self.useFixture(func_fixtures.Guest(
            serial_log=os.path.join(log_dir, 'console.log')))
        self.deployment = self.deploy()
        self.deployment.wait_ready()

    def get_console_url(self):
        return self.deployment.console_url(self.guest.uuid)

    def test_guest_shell_answers_through_the_proxy(self):
        url = self.get_console_url()
        self.assertTrue(url.startswith(
            'ws://127.0.0.1:%d/?token=' % self.deployment.proxy_port), url)
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=5)
        self.addCleanup(ws.close)
        self.assertEqual('binary', ws.getsubprotocol())
        ws.send_binary(b'echo hello-$((6*7))\n')

        def recv(_size):
            opcode, data = ws.recv_data()
            self.assertEqual(websocket.ABNF.OPCODE_BINARY, opcode)
            return data
        output = func_fixtures.read_until(recv, rb'\nhello-42\r?\n', 30)
        self.assertIsNotNone(output, 'the guest never printed hello-42')

        # The token never shows in any service's log.
        token = urllib.parse.parse_qs(
            urllib.parse.urlsplit(url).query)['token'][0]
        ws.close()
        self.assertNotIn(token, self.deployment.logs())

    def test_recent_console_output_greets_a_new_session(self):
        ws = websocket.create_connection(self.get_console_url(),
                                         subprotocols=['binary'], timeout=5)
        self.addCleanup(ws.close)
        # Before anyone types: the boot banner from the console log.
        output = func_fixtures.read_until(
            lambda _: ws.recv_data()[1],
            rb'(?s)recent console output.*serialproxy-guest booted', 20)
        self.assertIsNotNone(output, 'no recent output on connect')
        self.assertNotIn(b'\x1b[6n', output)

    def test_client_offering_no_subprotocol_is_served(self):
        ws = websocket.create_connection(self.get_console_url(), timeout=5)
        self.addCleanup(ws.close)
        ws.send_binary(b'echo sub-$((1+1))\n')
        output = func_fixtures.read_until(
            lambda _: ws.recv_data()[1], rb'\nsub-2\r?\n', 30)
        self.assertIsNotNone(output)

    def test_bad_token_is_refused_with_401_before_upgrade(self):
        self.get_console_url()
        with socket.create_connection(
                ('127.0.0.1', self.deployment.proxy_port), timeout=10) as s:
            s.sendall(b'GET /?token=not-a-token HTTP/1.1\r\n'
                      b'Host: 127.0.0.1\r\nUpgrade: websocket\r\n'
                      b'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
                      b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
            reply = func_fixtures.read_until(s.recv, rb'\r\n\r\n.*\n', 20)
        self.assertTrue(reply.startswith(b'HTTP/1.1 401 '), reply)
        self.assertNotIn(b'not-a-token', reply)


class AllInOneTest(ConsolePathMixin, testcase.TestCase):
    """serialproxy-all: one process, in-process messaging, SQLite."""

    def deploy(self):
        deployment = self.useFixture(func_fixtures.Deployment())
        deployment.start('serialproxy-all')
        return deployment


class SeparateServicesOverRabbitTest(ConsolePathMixin, testcase.TestCase):
    """Four processes talking over a real RabbitMQ, tokens in PostgreSQL."""

    def deploy(self):
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database='postgresql'))
        deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-api', 'serialproxy-proxy'):
            deployment.start(name)
        return deployment
