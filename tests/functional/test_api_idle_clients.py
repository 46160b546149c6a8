"""Idle and slow clients against the built-in API server of serialproxy-api.

Sockets that connect and never send a request must not take the server's
threads nor stop it answering others: a real serialproxy-api over
RabbitMQ, real sockets.
"""

import socket
import time

from testtools import content

from tests.harness import fixtures as func_fixtures
from tests.harness import testcase

IDLE_CLIENTS = 300
# Threads of the process beside its request workers: main, listener,
# oslo.messaging and logging. Generous, and far below one per socket.
THREADS_LIMIT = 64


def threads_of(pid):
    with open('/proc/%d/status' % pid) as status:
        for line in status:
            if line.startswith('Threads:'):
                return int(line.split()[1])
    raise AssertionError('no Threads line for process %d' % pid)


class IdleClientsTest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url,
            options={'api': {'client_timeout': 5}}))
        self.api = self.deployment.start('serialproxy-api')
        self.deployment.wait_ready()

    def connect(self):
        sock = socket.create_connection(
            ('127.0.0.1', self.deployment.api_port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def timed_get_root(self):
        started = time.monotonic()
        status, body = self.deployment.api_request('GET', '/')
        return status, time.monotonic() - started

    def test_api_answers_with_bounded_threads_while_sockets_idle(self):
        idle = [self.connect() for _ in range(IDLE_CLIENTS)]
        # One of them has sent half a request and stalls (slowloris).
        idle[0].sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        time.sleep(0.5)
        status, took = self.timed_get_root()
        threads = threads_of(self.api.pid)
        self.addDetail('measured', content.text_content(
            'GET / with %d idle sockets: %.3f s; process threads: %d'
            % (len(idle), took, threads)))
        self.assertEqual(200, status)
        self.assertLess(took, 2.0)
        self.assertLess(threads, THREADS_LIMIT)

    def test_noauth_is_a_warning_at_start_and_loopback_is_not(self):
        logs = self.deployment.logs()
        self.assertIn('WARNING serialproxy.insecure_settings [-] [api] '
                      'auth_strategy = noauth', logs)
        self.assertNotIn('without TLS', logs)

    def test_idle_socket_is_closed_after_client_timeout(self):
        sock = self.connect()
        started = time.monotonic()
        # The server closes the socket: recv sees the end, not a timeout.
        self.assertEqual(b'', sock.recv(1024))
        self.assertLess(time.monotonic() - started, 5 + 2)
        status, _ = self.timed_get_root()
        self.assertEqual(200, status)
