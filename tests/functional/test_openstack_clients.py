"""Existing OpenStack clients, unchanged, get a serial console from us.

openstacksdk and python-openstackclient from PyPI talk to a running
serialproxy-all exactly as they would to Nova: version discovery,
microversion negotiation, finding the server by name, then the console
URL, which we open to reach the guest's shell.

Authentication: here the API runs with auth_strategy = noauth and the
clients use keystoneauth's "admin_token" plugin: a fixed X-Auth-Token
("user_id:project_id", which noauth takes as a member of that project)
and a fixed endpoint. Everything after the token check is the same code
path a Keystone deployment runs; test_keystone.py signs in to a real
Keystone and finds the API in its catalog. python-novaclient takes the
same plugin through a keystoneauth session.

One guest and one serialproxy-all serve every test (a TCG boot is the
slow part); each test opens its own console and closes it, so the console
is free for the next, and reads only its own requests in the API's log.
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from novaclient import api_versions
from novaclient import client as nova_client
import openstack

from tests.harness import fixtures as func_fixtures

PROJECT = 'c11e7500c11e7500c11e7500c11e7500'
USER = '5e1f5e1f5e1f5e1f5e1f5e1f5e1f5e1f'
# noauth reads X-Auth-Token as "user_id:project_id"; not "admin", so the
# caller is a plain member of the project owning the guest.
TOKEN = '%s:%s' % (USER, PROJECT)


class OpenStackClientsTest(func_fixtures.SharedWorldTestCase):
    @classmethod
    def make_world(cls):
        return func_fixtures.AllInOneWithGuest(PROJECT, USER)

    def setUp(self):
        super().setUp()
        self.guest = self.world.guest
        self.deployment = self.world.deployment
        self.endpoint = 'http://127.0.0.1:%d/v2.1' % self.deployment.api_port
        # The services' logs, read when a test fails.
        for name, detail in self.world.getDetails().items():
            self.addDetail(name, detail)
        self.log_start = len(self.deployment.logs())

    def assertRequestLogged(self, path, status=200):
        """This test's requests include POST path, answered status."""
        line = '"POST %s HTTP/1.1" %d' % (path, status)
        # The access log line may land just after the client has its answer.
        func_fixtures.wait_for(
            lambda: line in self.deployment.logs()[self.log_start:], 10,
            'the line %s in the API log' % line)

    def assertAskedLikeNova(self):
        # Negotiated 2.6 or later, so the console came from the
        # remote-consoles API, not the deprecated action.
        self.assertRequestLogged('/v2.1/servers/%s/remote-consoles'
                                 % self.guest.uuid)
        self.assertNotIn('/v2.1/servers/%s/action' % self.guest.uuid,
                         self.deployment.logs()[self.log_start:])

    def assertShellAnswers(self, url):
        self.assertTrue(url.startswith(
            'ws://127.0.0.1:%d/?token=' % self.deployment.proxy_port), url)
        self.assertIsNotNone(func_fixtures.shell_answers(url, 'client'),
                             'the guest never answered')

    def novaclient(self, version):
        """python-novaclient at version, through keystoneauth's session."""
        auth = token_endpoint.Token(self.endpoint, TOKEN)
        return nova_client.Client(version, session=ks_session.Session(
            auth=auth))

    def test_openstacksdk_finds_server_by_name_and_gets_console_url(self):
        conn = openstack.connect(
            auth_type='admin_token',
            auth={'token': TOKEN, 'endpoint': self.endpoint},
            compute_api_version='2', load_yaml_config=False,
            load_envvars=False)
        self.addCleanup(conn.close)
        server = conn.compute.find_server(self.guest.name,
                                          ignore_missing=False)
        self.assertEqual(self.guest.uuid, server.id)
        console = conn.compute.create_console(server, 'serial')
        self.assertEqual('serial', console['type'])
        self.assertAskedLikeNova()
        self.assertShellAnswers(console['url'])

    def test_openstack_cli_shows_serial_console_url(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        cli = [os.path.join(os.path.dirname(sys.executable), 'openstack'),
               '--os-auth-type', 'admin_token', '--os-token', TOKEN,
               '--os-endpoint', self.endpoint,
               '--os-compute-api-version', '2']
        result = subprocess.run(
            cli + ['console', 'url', 'show', '--serial', self.guest.name,
                   '-f', 'json'],
            env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        console = json.loads(result.stdout)
        self.assertEqual('serial', console['type'])
        self.assertAskedLikeNova()
        self.assertShellAnswers(console['url'])

    def test_novaclient_2_1_gets_console_through_the_server_action(self):
        nova = self.novaclient('2.1')
        server = nova.servers.find(name=self.guest.name)
        self.assertEqual(self.guest.uuid, server.id)
        console = nova.servers.get_serial_console(server, 'serial')
        self.assertEqual('serial', console['console']['type'])
        self.assertRequestLogged('/v2.1/servers/%s/action' % self.guest.uuid)
        self.assertShellAnswers(console['console']['url'])

    def test_novaclient_negotiates_and_gets_console_from_remote_consoles(self):
        # As the nova shell does: the newest version both sides know.
        version = api_versions.discover_version(
            self.novaclient('2.1'), api_versions.APIVersion('2.latest'))
        self.assertEqual(api_versions.APIVersion('2.31'), version)
        nova = self.novaclient(version)
        server = nova.servers.find(name=self.guest.name)
        console = nova.servers.get_serial_console(server, 'serial')
        remote = console['remote_console']
        self.assertEqual(('serial', 'serial'),
                         (remote['protocol'], remote['type']))
        self.assertAskedLikeNova()
        self.assertShellAnswers(remote['url'])

    def blueprint_post(self, body):
        """POST the serial-ports blueprint's get-serial-console."""
        url = 'http://127.0.0.1:%d/v2/%s/servers/%s/get-serial-console' % (
            self.deployment.api_port, PROJECT, self.guest.uuid)
        request = urllib.request.Request(
            url, method='POST', headers={'X-Auth-Token': TOKEN,
                                         'Content-Type': 'application/json'},
            data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def test_serial_ports_blueprint_bodies_open_the_console(self):
        # What the blueprint's schema allows, as tools written against it
        # send them: no body, {}, and serial_console null or {}.
        for body in (None, {}, {'serial_console': None},
                     {'serial_console': {}}):
            status, answer = self.blueprint_post(body)
            self.assertEqual(200, status, (body, answer))
            self.assertEqual(['url'], list(answer['serial_console']))
            self.assertShellAnswers(answer['serial_console']['url'])
        # Nothing else: the blueprint has no console type or port index.
        status, answer = self.blueprint_post(
            {'serial_console': {'type': 'serial'}})
        self.assertEqual(400, status)
        self.assertIn('serial_console', answer['badRequest']['message'])
