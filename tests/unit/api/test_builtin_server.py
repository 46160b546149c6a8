import socket
import threading
import time

import fixtures

from serialproxy.api import builtin_server
from tests.unit import base


class BuiltinServerTest(base.TestCase):
    """The built-in server on a real loopback socket."""

    def serve(self, app, threads=2, client_timeout=5):
        server = builtin_server.make_server(
            '127.0.0.1', 0, app, builtin_server.RequestHandler, threads,
            client_timeout)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    def connect(self, port):
        sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    @staticmethod
    def read_all(sock):
        data = b''
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    @staticmethod
    def echo_body(environ, start_response):
        size = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(size)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'got ' + body]

    def test_head_and_body_sent_in_pieces_reach_the_app(self):
        sock = self.connect(self.serve(self.echo_body))
        for piece in (b'POST / HTTP/1.1\r\nHost: x\r\n',
                      b'Content-Length: 5\r\n\r\nhe', b'llo'):
            sock.sendall(piece)
            time.sleep(0.1)
        answer = self.read_all(sock)
        self.assertTrue(answer.startswith(b'HTTP/1.0 200 OK'), answer)
        self.assertTrue(answer.endswith(b'got hello'), answer)

    def test_socket_that_sends_no_whole_head_is_closed(self):
        port = self.serve(self.echo_body, client_timeout=1)
        idle = self.connect(port)
        half = self.connect(port)
        half.sendall(b'GET / HTTP/1.1\r\n')
        started = time.monotonic()
        self.assertEqual(b'', idle.recv(1024))
        self.assertEqual(b'', half.recv(1024))
        self.assertLess(time.monotonic() - started, 4)

    def test_body_that_stalls_frees_the_worker_after_client_timeout(self):
        log = self.useFixture(fixtures.FakeLogger())
        port = self.serve(self.echo_body, threads=1, client_timeout=1)
        stalled = self.connect(port)
        stalled.sendall(b'POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab')
        time.sleep(0.2)
        started = time.monotonic()
        sock = self.connect(port)
        sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
        self.assertIn(b' 200 OK', self.read_all(sock))
        self.assertLess(time.monotonic() - started, 4)
        self.assertIn('request body timed out', log.output)
        self.assertNotIn('Traceback', log.output)

    def test_requests_beyond_pool_and_backlog_get_503(self):
        release = threading.Event()
        running = threading.Event()
        self.addCleanup(release.set)

        def blocked(environ, start_response):
            running.set()
            release.wait(10)
            start_response('200 OK', [])
            return [b'done']
        port = self.serve(blocked, threads=1)
        held = [self.connect(port)]
        held[0].sendall(b'GET / HTTP/1.0\r\n\r\n')
        self.assertTrue(running.wait(5))
        for _ in range(builtin_server.BACKLOG_PER_THREAD):
            held.append(self.connect(port))
            held[-1].sendall(b'GET / HTTP/1.0\r\n\r\n')
        time.sleep(0.3)
        extra = self.connect(port)
        extra.sendall(b'GET / HTTP/1.0\r\n\r\n')
        answer = self.read_all(extra)
        self.assertTrue(answer.startswith(b'HTTP/1.0 503'), answer)
        release.set()
        self.assertIn(b' 200 OK', self.read_all(held[-1]))
