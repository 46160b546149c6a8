"""The serial console access switch, enforced on live sessions, for real.

Two proxies (the second of two workers) share consoleauth over RabbitMQ,
switches and leases in MariaDB; two real QEMU guests of one project. A
writer on the first proxy and a spectator on the second watch one guest,
an OpenSSH client uses the other guest's console; turning the project
off ends all three within a second, with close code 4009 and a reason
naming the level; what is refused meanwhile says the same, with 403.
"""

import json
import re
import threading
import time
import urllib.request

import fixtures
from testtools import content
import websocket

from tests.harness import fixtures as func_fixtures
from tests.functional import test_sessions as ts
from tests.functional import test_spectators
from tests.functional import test_ssh_consoles

PROJECT = test_ssh_consoles.PROJECT
ACCESS_DISABLED = 4009
PROJECT_OFF = 'Serial console access is turned off for this project'
CLOUD_OFF = 'Serial console access is turned off for this cloud'
# How long turning access off may take to end every session in scope,
# from the request that turns it off to the client seeing its end.
ENFORCED_WITHIN = 1.0
SESSIONS_ENDED = 'serialproxy_sessions_ended_by_access_switch_total'


class AccessWorld(fixtures.Fixture):
    """Two guests of PROJECT, consoleauth, compute, API and two proxies
    over RabbitMQ; the first proxy serves SSH too."""

    def _setUp(self):
        # guest: the SSH user's (test_ssh_consoles' helpers use it).
        self.writers_guest = self.useFixture(
            func_fixtures.Guest(project_id=PROJECT))
        self.guest = self.useFixture(func_fixtures.Guest(project_id=PROJECT))
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.ssh_port = func_fixtures.free_port()
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database='mysql', options={
                'consoleauth': {'session_lease_ttl': ts.LEASE_TTL},
                'ssh': {'enabled': 'true', 'listen_host': '127.0.0.1',
                        'listen_port': self.ssh_port,
                        'public_host': '127.0.0.1'}}))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        self.consoleauth = self.deployment.start('serialproxy-consoleauth')
        for name in ('serialproxy-compute', 'serialproxy-api',
                     'serialproxy-proxy'):
            self.deployment.start(name)
        self.port_b = func_fixtures.free_port()
        self.deployment.start(
            'serialproxy-proxy', label='proxy-b', DEFAULT={'host': 'proxy-b'},
            serial_console={'serialproxy_port': self.port_b},
            console={'admin_port': 0, 'workers': 2},
            ssh={'listen_port': func_fixtures.free_port()})
        self.deployment.wait_ready()
        for guest in (self.writers_guest, self.guest):
            func_fixtures.wait_for(
                lambda: self.deployment.api_request(
                    'GET', '/v2.1/servers/%s' % guest.uuid)[0] == 200,
                60, 'the guest in the instance registry')

    def restart_consoleauth(self, **overrides):
        self.deployment.stop(self.consoleauth)
        self.consoleauth = self.deployment.start('serialproxy-consoleauth',
                                                 **overrides)
        self.deployment.wait_ready()


class Ending(threading.Thread):
    """Waits for one client's end in the background and notes when it
    came: the close frame of a websocket, the exit of an ssh client."""

    def __init__(self, wait):
        super().__init__(daemon=True)
        self.wait = wait
        self.result = None
        self.at = None

    def run(self):
        try:
            self.result = self.wait()
        except Exception as exc:
            self.result = exc
        self.at = time.monotonic()


class ConsoleAccessTest(test_ssh_consoles.SSHConsoleTestCase):

    @classmethod
    def make_world(cls):
        return AccessWorld()

    def setUp(self):
        super().setUp()
        self.writers_guest = self.world.writers_guest

    def api(self, method, path, body=None, status=200, **kwargs):
        got, reply = self.deployment.api_request(method, path, body,
                                                 **kwargs)
        self.assertEqual(status, got, reply)
        return json.loads(reply) if reply else None

    def set_project(self, enabled):
        return self.api('PUT', '/v2.1/os-serial-console-access/%s' % PROJECT,
                        {'serial_console_access': {'enabled': enabled}})

    def server_access(self, method, guest, enabled=None):
        body = None if enabled is None else {
            'serial_console_access': {'enabled': enabled}}
        return self.api(method, '/v2.1/servers/%s/serial-console/access'
                        % guest.uuid, body)['serial_console_access']

    def url_refused(self, guest, reason):
        status, reply = self.deployment.api_request(
            'POST', '/v2.1/servers/%s/remote-consoles' % guest.uuid,
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}},
            version='2.6')
        self.assertEqual(403, status, reply)
        self.assertEqual(reason, json.loads(reply)['forbidden']['message'])

    def connect(self, url):
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20)
        self.addCleanup(ws.close)
        return ws

    def ended_by_switch(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics'
                                    % self.deployment.admin_port) as resp:
            text = resp.read().decode()
        found = re.search(r'^%s ([0-9.]+)$' % SESSIONS_ENDED, text, re.M)
        return float(found.group(1)) if found else 0.0

    def test_turning_a_project_off_ends_its_sessions_until_it_is_on(self):
        # A writer on proxy 1, a spectator on proxy 2, an SSH user on the
        # project's other server.
        url = self.deployment.console_url(self.writers_guest.uuid)
        writer = self.connect(url)
        self.assertIsNotNone(ts.shell_answers(writer, 'writer'))
        spectator = self.connect(ts.on_port(test_spectators.with_mode(
            self.deployment.console_url(self.writers_guest.uuid), 'view'),
            self.world.port_b))
        ssh, _ = self.open_console()
        self.assertEqual(
            {'write', 'view', 'ssh'},
            {s['mode'] if s['transport'] != 'ssh' else 'ssh'
             for guest in (self.writers_guest, self.guest)
             for s in self.api('GET', '/v2.1/servers/%s/serial-console/'
                               'sessions' % guest.uuid)['sessions']})
        counted = self.ended_by_switch()

        endings = [Ending(lambda: ts.close_frame(writer)),
                   Ending(lambda: ts.close_frame(spectator)),
                   Ending(lambda: (ssh.wait(30), self.stderr_of(ssh)))]
        for ending in endings:
            ending.start()
        turned_off = time.monotonic()
        answer = self.set_project(False)['serial_console_access']
        self.assertEqual((False, 'project'),
                         (answer['enabled'], answer['decided_by']))
        for ending in endings:
            ending.join(30)
        writer_end, spectator_end, (status, stderr) = [
            e.result for e in endings]
        self.assertEqual((ACCESS_DISABLED, PROJECT_OFF), writer_end)
        self.assertEqual((ACCESS_DISABLED, PROJECT_OFF), spectator_end)
        self.assertEqual(2, status, stderr)
        self.assertIn(PROJECT_OFF, stderr)
        took = [round(ending.at - turned_off, 3) for ending in endings]
        self.addDetail('seconds-to-end-writer-spectator-ssh',
                       content.text_content(repr(took)))
        for seconds in took:
            self.assertLessEqual(seconds, ENFORCED_WITHIN)
        # Proxy 1 held the writer and the SSH session.
        self.assertEqual(counted + 2, self.ended_by_switch())

        # Refused while off: new URLs, keys, and the URLs issued before.
        self.url_refused(self.writers_guest, PROJECT_OFF)
        status, body = ts.refusal(url)
        self.assertEqual((403, PROJECT_OFF), (status, body.strip()))
        status, body = self.push(self.key_pair())
        self.assertEqual((403, PROJECT_OFF),
                         (status, body['forbidden']['message']))

        # The server's own switch wins over its project's.
        self.assertEqual('server', self.server_access(
            'PUT', self.writers_guest, True)['decided_by'])
        held = self.connect(self.deployment.console_url(
            self.writers_guest.uuid))
        self.assertIsNotNone(ts.shell_answers(held, 'server-on'))
        self.url_refused(self.guest, PROJECT_OFF)

        # The cloud's forced_off wins over everything: consoleauth ends
        # what it turns off as it starts with it.
        held.settimeout(120)
        ending = Ending(lambda: ts.close_frame(held, timeout=120))
        ending.start()
        self.world.restart_consoleauth(
            console={'access_default': 'forced_off'})
        ending.join(30)
        self.assertEqual((ACCESS_DISABLED, CLOUD_OFF), ending.result)
        self.url_refused(self.writers_guest, CLOUD_OFF)
        self.assertEqual('cloud', self.server_access(
            'GET', self.writers_guest)['decided_by'])

        # Back to the cloud's default, the server's switch unset: its
        # project decides again.
        self.world.restart_consoleauth()
        self.assertEqual('project', self.server_access(
            'DELETE', self.writers_guest)['decided_by'])
        self.url_refused(self.writers_guest, PROJECT_OFF)

        # The project on again, by an operator: every console opens,
        # nothing restarted.
        done = self.deployment.run('serialproxy-manage', 'access', 'enable',
                                   '--project', PROJECT)
        self.assertIn('enabled, decided by the project', done.stdout)
        again = self.connect(self.deployment.console_url(
            self.writers_guest.uuid))
        self.assertIsNotNone(ts.shell_answers(again, 'on-again'))
        ssh, _ = self.open_console()
        ssh.stdin.close()
        self.api('DELETE', '/v2.1/os-serial-console-access/%s' % PROJECT)
