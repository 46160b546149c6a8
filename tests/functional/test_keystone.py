"""Signing in with a real Keystone, as a cloud's users do.

Keystone from PyPI (its own venv, tools/test-setup.sh) runs under uwsgi on
SQLite; our API is in its catalog as service type compute, and
serialproxy-all validates tokens with keystonemiddleware configured as a
deployer would ([keystone_authtoken] with a service user, no memcached).
The openstack CLI signs in with a password and finds the API through the
catalog alone. One Keystone, one serialproxy-all and one guest serve every
test of the class.
"""

import json
import os
import subprocess
import threading
import time

import fixtures

from tests.harness import fixtures as func_fixtures
from tests.functional import keystone_fixtures

OPENSTACK = os.path.join(func_fixtures.BIN, 'openstack')
CONSOLE = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}
# Seconds the expiring token lives: enough to use it once on a busy machine.
LIFETIME = 10


class KeystoneWorld(fixtures.Fixture):
    """Keystone, serialproxy-all signing in to it, and a guest of its
    project "demo" in the instance registry."""

    def _setUp(self):
        deployment = func_fixtures.Deployment(
            options={'api': {'auth_strategy': 'keystone'}})
        self.compute_url = 'http://127.0.0.1:%d/v2.1' % deployment.api_port
        # The guest boots while Keystone starts, and gets its owner once
        # Keystone has made the project: the two slow parts overlap.
        self.guest = func_fixtures.Guest()
        self.boot_failure = None
        booting = threading.Thread(target=self._boot)
        booting.start()
        try:
            self.keystone = self.useFixture(
                keystone_fixtures.Keystone(self.compute_url))
        finally:
            booting.join()
            if self.boot_failure is None:
                self.addCleanup(self.guest.cleanUp)
        if self.boot_failure is not None:
            raise self.boot_failure
        self.guest.set_owner(self.keystone.project_ids['demo'],
                             self.keystone.user_ids['demo-member'])
        deployment.options['keystone_authtoken'] = (
            self.keystone.authtoken_options())
        self.deployment = self.useFixture(deployment)
        deployment.start('serialproxy-all')
        deployment.wait_ready()
        admin = self.keystone.session('admin')
        func_fixtures.wait_for(lambda: self._registered(admin), 60,
                               'the guest in the instance registry')

    def _boot(self):
        try:
            self.guest.setUp()  # cleans up after itself when it fails
        except BaseException as exc:  # raised again by _setUp
            self.boot_failure = exc

    def _registered(self, admin):
        self.deployment.check_alive()
        status, _, _ = self.request(admin.get_token(), 'GET', '')
        return status == 200

    def request(self, token, method, path, body=None):
        """One call about the guest: path is under /servers/{id}."""
        return keystone_fixtures.compute_request(
            '%s/servers/%s%s' % (self.compute_url, self.guest.uuid, path),
            token, method, body)

    def cli(self, user, *args):
        """The openstack CLI signed in as user with its password."""
        return subprocess.run(
            [OPENSTACK, *args], env=self.keystone.cli_environ(user),
            capture_output=True, text=True, timeout=120)


class KeystoneTest(func_fixtures.SharedWorldTestCase):
    @classmethod
    def make_world(cls):
        return KeystoneWorld()

    def setUp(self):
        super().setUp()
        for name, detail in self.world.getDetails().items():
            self.addDetail(name, detail)

    def token(self, user):
        return self.world.keystone.session(user).get_token()

    def test_cli_with_password_gets_a_console_that_opens(self):
        result = self.world.cli('demo-member', 'console', 'url', 'show',
                                '--serial', self.world.guest.name,
                                '-f', 'json')
        self.assertEqual(0, result.returncode, result.stderr)
        console = json.loads(result.stdout)
        self.assertEqual('serial', console['type'])
        deployment = self.world.deployment
        self.assertTrue(console['url'].startswith(
            'ws://127.0.0.1:%d/?token=' % deployment.proxy_port),
            console['url'])
        # Found through the catalog and asked as the member whose token
        # keystonemiddleware validated: the API logged who called.
        keystone = self.world.keystone
        self.assertRegex(
            deployment.logs(),
            r'\[\S+ req-\S+ %s %s [^]]*\] \S+ '
            r'"POST /v2.1/servers/%s/remote-consoles HTTP/1.1" 200' % (
                keystone.user_ids['demo-member'],
                keystone.project_ids['demo'], self.world.guest.uuid))
        self.assertIsNotNone(
            func_fixtures.shell_answers(console['url'], 'keystone'),
            'the guest never answered')

    def test_token_of_another_project_gets_404(self):
        token = self.token('other-member')
        status, _, body = self.world.request(token, 'POST',
                                             '/remote-consoles', CONSOLE)
        self.assertEqual(404, status, body)
        self.assertIn(b'itemNotFound', body)
        status, _, body = self.world.request(token, 'GET', '')
        self.assertEqual(404, status, body)

    def test_reader_may_see_the_server_but_gets_403_for_a_console(self):
        token = self.token('demo-reader')
        status, _, body = self.world.request(token, 'GET', '')
        self.assertEqual(200, status, body)
        status, _, body = self.world.request(token, 'POST',
                                             '/remote-consoles', CONSOLE)
        self.assertEqual(403, status, body)
        self.assertIn(b'serialproxy:remote_consoles:create', body)
        # The CLI shows the refusal as it would Nova's.
        result = self.world.cli('demo-reader', 'console', 'url', 'show',
                                '--serial', self.world.guest.uuid)
        self.assertNotEqual(0, result.returncode, result.stdout)
        self.assertIn('ForbiddenException: 403', result.stderr)
        self.assertIn('serialproxy:remote_consoles:create', result.stderr)

    def test_expired_token_gets_401(self):
        token, expires = self.world.keystone.expiring_token(
            'demo-member', LIFETIME)
        self.assertLess(expires.timestamp(), time.time() + LIFETIME + 1)
        status, _, body = self.world.request(token, 'GET', '')
        self.assertEqual(200, status, body)
        time.sleep(max(0, expires.timestamp() - time.time()) + 1)
        # The same token, once expired (keystonemiddleware has it cached).
        status, headers, body = self.world.request(
            token, 'POST', '/remote-consoles', CONSOLE)
        self.assertEqual(401, status, body)
        # keystonemiddleware names where to sign in instead.
        self.assertEqual('Keystone uri="%s"' % self.world.keystone.url,
                         headers['WWW-Authenticate'])
        self.assertNotIn(token.encode(), body)
        self.assertNotIn(token, self.world.deployment.logs())
