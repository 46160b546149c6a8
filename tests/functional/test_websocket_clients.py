"""Websocket clients written for Nova's serial proxy, unchanged.

noVNC before 1.1, and Nova's own serial console tests, send the token in a
"token" cookie on GET /websockify; websockify-era programs offer the
subprotocols "binary, base64". Against serialproxy-all and a real guest's
shell. One guest and one deployment serve every test here (a TCG boot is
the slow part); each test takes its own console URL and closes its
websocket when done.
"""

import json
import os
import subprocess
import sys
import urllib.parse

import websocket

from tests.harness import fixtures as func_fixtures

PROJECT = '7e57c11e7e57c11e7e57c11e7e57c11e'
USER = '0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c'
# What the previous test's websocket may hold for a moment after its close:
# the proxy releases the console's lease right after the close handshake.
LEASE_RELEASE_SECONDS = 10

# A websocket-client program as a websockify-era user writes it: offers
# binary and base64, prints what the server chose, then uses the shell.
BINARY_BASE64_CLIENT = r'''
import re, sys, websocket
ws = websocket.create_connection(sys.argv[1], timeout=20,
                                 subprotocols=['binary', 'base64'])
print(ws.getsubprotocol(), flush=True)
ws.send_binary(b'echo program-$((40+2))\n')
output = b''
while not re.search(rb'\nprogram-42\r?\n', output):
    output += ws.recv_data()[1]
ws.close()
print('shell answered', flush=True)
'''


class NovaWebsocketClientsTest(func_fixtures.SharedWorldTestCase):
    @classmethod
    def make_world(cls):
        return func_fixtures.AllInOneWithGuest(PROJECT, USER)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deployment = cls.world.deployment

    def setUp(self):
        super().setUp()
        self.issued = []
        self.addCleanup(self.assertNoTokenLogged)

    def token(self):
        """A fresh console token of the guest, as the API issues it."""
        url = self.deployment.console_url(self.world.guest.uuid)
        token = urllib.parse.parse_qs(
            urllib.parse.urlsplit(url).query)['token'][0]
        self.issued.append(token)
        return token

    def proxy_url(self, target):
        return 'ws://127.0.0.1:%d%s' % (self.deployment.proxy_port, target)

    def console_free(self):
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/sessions'
            % self.world.guest.uuid)
        self.assertEqual(200, status, body)
        return json.loads(body)['sessions'] == []

    def connect(self, target, **kwargs):
        """A websocket on target, once the previous one's lease is gone
        (its release follows the close): a 409 then is a failure."""
        func_fixtures.wait_for(self.console_free, LEASE_RELEASE_SECONDS,
                               'the previous session\'s lease to go')
        ws = websocket.create_connection(self.proxy_url(target), timeout=20,
                                         **kwargs)
        self.addCleanup(ws.close)
        return ws

    def refusal(self, target, **kwargs):
        try:
            self.connect(target, **kwargs)
        except websocket.WebSocketBadStatusException as exc:
            return exc.status_code, (exc.resp_body or b'').decode().strip()
        raise AssertionError('the handshake was not refused')

    def assertShellAnswers(self, ws, name):
        ws.send_binary(b'echo %s-$((40+2))\n' % name.encode())
        output = func_fixtures.read_until(
            lambda _: ws.recv_data()[1],
            rb'\n%s-42\r?\n' % name.encode(), 30)
        self.assertIsNotNone(output, 'the guest never answered')
        ws.close()

    def assertNoTokenLogged(self):
        logs = self.deployment.logs()
        for token in self.issued:
            self.assertNotIn(token, logs)

    def test_token_cookie_on_websockify_path_reaches_the_shell(self):
        # As noVNC before 1.1 connects: no query, the token in a cookie.
        ws = self.connect('/websockify', cookie='token=' + self.token(),
                          subprotocols=['binary'])
        self.assertEqual('binary', ws.getsubprotocol())
        self.assertShellAnswers(ws, 'cookie')

    def test_query_token_wins_over_the_cookie(self):
        ws = self.connect('/websockify?token=' + self.token(),
                          cookie='token=bogus-cookie-token')
        self.assertShellAnswers(ws, 'query')
        valid = self.token()
        self.assertEqual((401, 'Invalid or expired token'),
                         self.refusal('/websockify?token=bogus-query-token',
                                      cookie='token=' + valid))
        # The cookie's token was good: the query alone was read.
        self.assertShellAnswers(
            self.connect('/', cookie='token=' + valid), 'cookie-after')

    def test_program_offering_binary_and_base64_gets_binary(self):
        program = subprocess.run(
            [sys.executable, '-c', BINARY_BASE64_CLIENT,
             self.proxy_url('/?token=' + self.token())],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PYTHONPATH=func_fixtures.ROOT))
        self.assertEqual((0, 'binary\nshell answered\n'),
                         (program.returncode, program.stdout),
                         program.stderr)
        # base64 alone is websockify's old text mode: refused, saying so.
        self.assertEqual(
            (400, 'Only the "binary" subprotocol is served'),
            self.refusal('/?token=' + self.token(),
                         subprotocols=['base64']))
