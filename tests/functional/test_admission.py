"""Per-address admission of a real serialproxy-proxy, counted from accept.

A client that opens connections and never sends a request used to hold
as many as it liked: the per-address cap counted parsed upgrades only.
"""

import os
import socket


from tests.harness import proxy_world
from tests.harness import testcase

CAP = 4


class SilentSocketsTest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        # One worker: the cap is per process.
        self.world = self.useFixture(proxy_world.ProxyWorld(
            workers=1,
            options={'console': {'max_sessions_per_address': CAP}}))
        self.guest = self.useFixture(proxy_world.GuestPort(proxy_world.echo))

    def silent_socket(self, source):
        sock = socket.create_connection(('127.0.0.1', self.world.port),
                                        timeout=10,
                                        source_address=(source, 0))
        self.addCleanup(sock.close)
        return sock

    def test_silent_sockets_past_the_cap_are_refused_others_get_in(self):
        held = [self.silent_socket('127.0.0.1') for _ in range(CAP)]
        past = self.silent_socket('127.0.0.1')
        # Without sending a byte, the one past the cap is answered and
        # closed at once, long before the request timeout.
        answer = b''
        while chunk := past.recv(4096):
            answer += chunk
        self.assertTrue(answer.startswith(b'HTTP/1.1 429 '), answer)
        self.assertIn(b'Too many connections from this address', answer)
        # The held ones are still open: nothing came, no EOF.
        for sock in held:
            sock.settimeout(0.2)
            self.assertRaises(socket.timeout, sock.recv, 1)
        # Another address still opens a console, and it works.
        other = self.world.connect(self.world.token(self.guest.port),
                                   source='127.0.0.2')
        self.addCleanup(other.close)
        payload = os.urandom(64)
        other.send(payload)
        self.assertEqual(payload, other.receive(len(payload)))
