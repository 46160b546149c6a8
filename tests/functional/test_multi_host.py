"""Consoles of a multi-host site, built from doc/deployment.rst's files.

Two compute hosts (each its own libvirt, agent, port pool and guest), two
console nodes behind HAProxy terminating TLS, the API and two consoleauth
processes over RabbitMQ and PostgreSQL: each in a network namespace of
its own (tests/functional/multi_host.py). Clients connect with wss://
through HAProxy, as browsers would, or straight to one console node
where a test must pick it; over SSH, with OpenSSH's client, through
HAProxy's SSH port.
"""

import http.client
import json
import os
import random
import socket
import ssl
import subprocess
import time
import urllib.parse

import fixtures
from testtools import content
import websocket

from serialproxy.proxy import close_codes
from tests.harness import fixtures as func_fixtures
from tests.functional import multi_host
from tests.functional import test_sessions


class MultiHostTest(func_fixtures.SharedWorldTestCase):
    @classmethod
    def make_world(cls):
        multi_host.require_components()
        return multi_host.Site()

    def setUp(self):
        super().setUp()
        self.site = self.world
        # Every test leaves every console free for the next one.
        self.addCleanup(self._wait_consoles_free)

    def _wait_consoles_free(self):
        for guest in self.site.guests.values():
            func_fixtures.wait_for(
                lambda: not self.site.sessions(guest.uuid), 30,
                'the sessions of %s to end' % guest.name)

    def open(self, url, **kwargs):
        """A websocket to url; wss:// trusts the site's throwaway CA."""
        if url.startswith('wss:'):
            kwargs['sslopt'] = {'ca_certs': self.site.ca,
                                'cert_reqs': ssl.CERT_REQUIRED}
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20, **kwargs)
        self.addCleanup(ws.close)
        return ws

    def on_console_node(self, url, name):
        """The console URL, straight to one console node, past HAProxy."""
        parts = urllib.parse.urlsplit(url)
        return parts._replace(scheme='ws', netloc='%s:%d' % (
            self.site.net.address(name), self.site.proxy_port)).geturl()

    def proxy_of(self, guest):
        """The console node holding the guest's one session."""
        session, = self.site.sessions(guest.uuid)
        return session['proxy_host']

    def tls_refusal(self, url):
        kwargs = {'sslopt': {'ca_certs': self.site.ca}}
        return test_sessions.refusal(url, **kwargs)

    def test_console_urls_are_wss_on_the_load_balancer(self):
        for guest in self.site.guests.values():
            url = self.site.console_url(guest.uuid)
            self.assertEqual('wss://%s/' % self.site.public,
                             url.split('?')[0])

    def test_each_guest_is_its_compute_host_s(self):
        for host, guest in self.site.guests.items():
            self.assertEqual(host, self.site.instance_host(guest.uuid))
            # Its console is on its host's address, from its host's pool.
            self.assertEqual(self.site.net.address(host), guest.address)

    def test_each_console_opens_through_either_console_node(self):
        for host, guest in self.site.guests.items():
            seen = set()
            # HAProxy balances by least connections, round robin among
            # equals: consecutive sessions alternate between the nodes.
            for attempt in range(6):
                ws = self.open(self.site.console_url(guest.uuid))
                self.assertIsNotNone(test_sessions.shell_answers(
                    ws, '%s-%d' % (host, attempt)))
                seen.add(self.proxy_of(guest))
                ws.close()
                self._wait_consoles_free()
                if seen == set(multi_host.CONSOLE_NODES):
                    break
            self.assertEqual(set(multi_host.CONSOLE_NODES), seen, host)

    def test_second_user_gets_409_on_the_other_console_node(self):
        guest = self.site.guests['compute1']
        first = self.open(self.site.console_url(guest.uuid))
        self.assertIsNotNone(test_sessions.shell_answers(first, 'first'))
        holder = self.proxy_of(guest)
        other, = set(multi_host.CONSOLE_NODES) - {holder}

        second_url = self.site.console_url(guest.uuid)
        status, body = test_sessions.refusal(
            self.on_console_node(second_url, other))
        self.assertEqual(409, status, body)
        self.assertIn('Console in use', body)
        # Through HAProxy too, whichever node it picks.
        self.assertEqual(409, self.tls_refusal(second_url)[0])
        self.assertEqual(holder, self.proxy_of(guest))

        first.close()
        # Its lease goes once the close reaches the node; then the second
        # user opens at the first try (a 409 now fails the test).
        func_fixtures.wait_for(lambda: not self.site.sessions(guest.uuid),
                               30, 'the first user\'s lease to go')
        second = self.open(second_url)
        self.assertIsNotNone(test_sessions.shell_answers(second, 'second'))

    def test_force_disconnect_reaches_the_node_holding_the_session(self):
        one, two = self.site.guests['compute1'], self.site.guests['compute2']
        ws_one = self.open(self.site.console_url(one.uuid))
        self.assertIsNotNone(test_sessions.shell_answers(ws_one, 'one'))
        # Least connections: the second session goes to the other node.
        ws_two = self.open(self.site.console_url(two.uuid))
        self.assertIsNotNone(test_sessions.shell_answers(ws_two, 'two'))
        self.assertEqual(set(multi_host.CONSOLE_NODES),
                         {self.proxy_of(one), self.proxy_of(two)})

        for guest, ws, other_ws in ((two, ws_two, ws_one),
                                    (one, ws_one, None)):
            started = time.monotonic()
            status, body = self.site.api_request(
                'DELETE', '/v2.1/servers/%s/serial-console/sessions'
                % guest.uuid)
            self.assertEqual(204, status, body)
            code, reason = test_sessions.close_frame(ws)
            self.assertEqual(close_codes.CloseCode.OPERATOR_DISCONNECT, code)
            self.assertEqual('Disconnected by an operator', reason)
            self.addDetail('disconnect-%s' % guest.name,
                           content.text_content(
                               '%.2f s from DELETE to the close frame'
                               % (time.monotonic() - started)))
            if other_ws is not None:
                # The other node's session goes on.
                self.assertIsNotNone(test_sessions.shell_answers(
                    other_ws, 'still'))

    def test_tokens_stay_out_of_every_log(self):
        guest = self.site.guests['compute2']
        url = self.site.console_url(guest.uuid)
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[
            'token'][0]
        ws = self.open(url)
        self.assertIsNotNone(test_sessions.shell_answers(ws, 'logged'))
        ws.close()
        # HAProxy logs a websocket's request line when it ends.
        func_fixtures.wait_for(
            lambda: '101 ' in self.site.log('haproxy')
            and 'GET / HTTP/1.1' in self.site.log('haproxy'), 10,
            'HAProxy to log the console request')
        for label, _, _ in self.site.processes.started:
            self.assertNotIn(token, self.site.log(label), label)

    def test_sessions_show_the_client_behind_the_load_balancer(self):
        guest = self.site.guests['compute1']
        # HAProxy appends the client's address to what the client sent
        # itself, which the proxies never believe.
        forged = ['X-Forwarded-For: 192.0.2.66']
        ws = self.open(self.site.console_url(guest.uuid), header=forged)
        self.assertIsNotNone(test_sessions.shell_answers(ws, 'forwarded'))
        session, = self.site.sessions(guest.uuid)
        # The test process is the client, on the controller's address.
        self.assertEqual(self.site.controller, session['remote_address'])
        self.assertIn('client %s mode' % self.site.controller,
                      self.site.log(session['proxy_host']))
        ws.close()
        self._wait_consoles_free()
        # Straight to a console node the header comes from a peer the
        # proxy does not trust: ignored, the peer is the client.
        ws = self.open(self.on_console_node(
            self.site.console_url(guest.uuid), 'console1'), header=forged)
        session, = self.site.sessions(guest.uuid)
        self.assertEqual(self.site.controller,
                         session['remote_address'].rsplit(':', 1)[0])

    def test_plain_http_is_redirected_to_https(self):
        conn = http.client.HTTPConnection(
            self.site.public, 80, timeout=10)
        self.addCleanup(conn.close)
        conn.request('GET', '/?x=1')
        response = conn.getresponse()
        self.assertEqual(301, response.status)
        self.assertEqual('https://%s/?x=1' % self.site.public,
                         response.getheader('Location'))

    # Over SSH --------------------------------------------------------------

    def push_key(self, guest):
        """A new key pair, its public half pushed through the API: (path
        of the private key, the API's answer)."""
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'key')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                        '-f', path], check=True)
        with open(path + '.pub') as f:
            public_key = f.read()
        status, body = self.site.api_request(
            'POST', '/v2.1/servers/%s/serial-console/ssh-keys' % guest.uuid,
            {'ssh_key': {'public_key': public_key}})
        self.assertEqual(202, status, body)
        return path, json.loads(body)['ssh_key']

    def ssh(self, key_path, answer):
        """OpenSSH to the answer's host and port, trusting only the host
        keys the API named, as serialproxy-console --ssh does."""
        known_hosts = key_path + '.known_hosts'
        with open(known_hosts, 'w') as f:
            for line in answer['host_keys']:
                f.write('[%s]:%d %s\n' % (answer['host'], answer['port'],
                                          line))
        proc = subprocess.Popen(
            ['ssh', '-tt', '-F', '/dev/null', '-i', key_path,
             '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
             '-o', 'StrictHostKeyChecking=yes',
             '-o', 'UserKnownHostsFile=%s' % known_hosts,
             '-o', 'ConnectTimeout=20', '-p', str(answer['port']),
             '%s@%s' % (answer['user'], answer['host'])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.addCleanup(func_fixtures.terminate, proc, 5)
        return proc

    def ssh_shell_answers(self, proc, name):
        """The guest's shell works out a marker over the ssh client; the
        output up to it, or None."""
        base = random.randrange(10000, 90000)
        proc.stdin.write(b'echo %s-$((%d+42))\n' % (name.encode(), base))
        proc.stdin.flush()
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)

        def recv(size):
            try:
                return os.read(fd, size)
            except BlockingIOError:
                time.sleep(0.05)
                raise socket.timeout()
        return func_fixtures.read_until(
            recv, rb'\n%s-%d\r?\n' % (name.encode(), base + 42), 30)

    def host_key_fingerprints(self, address, port):
        """The SHA-256 fingerprints of the host keys served at address and
        port, as ssh-keyscan sees them before any sign-in."""
        scanned = subprocess.run(
            ['ssh-keyscan', '-T', '10', '-t', 'ed25519,ecdsa', '-p',
             str(port), address], capture_output=True, text=True,
            check=True).stdout
        found = subprocess.run(['ssh-keygen', '-l', '-f', '-'],
                               input=scanned, capture_output=True,
                               text=True, check=True).stdout
        return sorted(line.split()[1] for line in found.splitlines())

    def test_ssh_console_through_the_load_balancer_on_either_node(self):
        guest = self.site.guests['compute1']
        seen = set()
        # Least connections, round robin among equals: consecutive
        # sessions alternate between the console nodes, and the client's
        # strict host key check passes on each.
        for attempt in range(6):
            key_path, answer = self.push_key(guest)
            self.assertEqual((self.site.public, self.site.ssh_port),
                             (answer['host'], answer['port']))
            # The API's host has the guide's keys' .pub files.
            self.assertEqual(self.site.host_key_fingerprints,
                             sorted(answer['host_key_fingerprints']))
            proc = self.ssh(key_path, answer)
            if self.ssh_shell_answers(proc, 'ssh-%d' % attempt) is None:
                func_fixtures.terminate(proc, 5)
                self.fail('no echo over ssh through HAProxy: %s' %
                          proc.stderr.read().decode(errors='replace'))
            session, = self.site.sessions(guest.uuid)
            self.assertEqual('ssh', session['transport'])
            # HAProxy's PROXY header named the client: the test process,
            # on the controller's address.
            self.assertEqual(self.site.controller,
                             session['remote_address'].rsplit(':', 1)[0])
            seen.add(session['proxy_host'])
            proc.stdin.close()
            proc.wait(30)
            stderr = proc.stderr.read().decode(errors='replace')
            self.assertEqual(0, proc.returncode, stderr)
            self.assertIn('connected to console port 0', stderr)
            # No wait for the console to be free: ssh returns once the
            # node has its lease back in consoleauth.
            if seen == set(multi_host.CONSOLE_NODES):
                break
        self.assertEqual(set(multi_host.CONSOLE_NODES), seen)

    def test_every_console_node_serves_the_same_host_keys(self):
        expected = self.site.host_key_fingerprints
        for name in multi_host.CONSOLE_NODES:
            self.assertEqual(expected, self.host_key_fingerprints(
                self.site.net.address(name), self.site.ssh_port), name)
        before = self.site.haproxy_stats('console_ssh')
        for _ in range(4):
            self.assertEqual(expected, self.host_key_fingerprints(
                self.site.public, self.site.ssh_port))
        after = self.site.haproxy_stats('console_ssh')
        # Both console nodes answered some of those through HAProxy.
        for name in multi_host.CONSOLE_NODES:
            self.assertGreater(int(after[name]['stot']),
                               int(before[name]['stot']), name)
