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
Keystone and finds the API in its catalog.
"""

import json
import os
import subprocess
import sys

import openstack
import testtools

from tests.functional import fixtures as func_fixtures

PROJECT = 'c11e7500c11e7500c11e7500c11e7500'
USER = '5e1f5e1f5e1f5e1f5e1f5e1f5e1f5e1f'
# noauth reads X-Auth-Token as "user_id:project_id"; not "admin", so the
# caller is a plain member of the project owning the guest.
TOKEN = '%s:%s' % (USER, PROJECT)


class OpenStackClientsTest(testtools.TestCase):
    def setUp(self):
        super().setUp()
        world = self.useFixture(func_fixtures.AllInOneWithGuest(PROJECT,
                                                                USER))
        self.guest, self.deployment = world.guest, world.deployment
        self.endpoint = 'http://127.0.0.1:%d/v2.1' % self.deployment.api_port

    def assertAskedLikeNova(self):
        # Negotiated 2.6 or later, so the console came from the
        # remote-consoles API, not the deprecated action.
        self.assertIn('"POST /v2.1/servers/%s/remote-consoles HTTP/1.1" 200'
                      % self.guest.uuid, self.deployment.logs())

    def assertShellAnswers(self, url):
        self.assertTrue(url.startswith(
            'ws://127.0.0.1:%d/?token=' % self.deployment.proxy_port), url)
        self.assertIsNotNone(func_fixtures.shell_answers(url, 'client'),
                             'the guest never answered')

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
