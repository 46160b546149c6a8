"""serialproxy-manage access: the API's switches for operators, through
consoleauth's RPC (in process here)."""

import io

import fixtures

from serialproxy.cmd import manage
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from tests.unit.api import base
from tests.unit.cmd import test_manage
from tests.unit import notification_fixture


class ManageAccessTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.cmd.manage._consoleauth',
            consoleauth_rpcapi.ConsoleAuthAPI))
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())).new_value
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())
        self.server_id = self.define()

        self.config_file = self.state_path + '/empty.conf'
        open(self.config_file, 'w').close()

    forget_command = staticmethod(
        test_manage.SerialConsoleAddTest.forget_command)

    def manage(self, *args):
        """main() parses the command line into the process's CONF,
        which the test world parsed already: cleared first, with the
        test notification driver set again."""
        self.stdout.seek(0)
        self.stdout.truncate()
        conf = manage.CONF
        conf.clear()
        conf.set_override('driver', ['test'], 'oslo_messaging_notifications')
        conf.set_override('transport_url', 'fake:/',
                          'oslo_messaging_notifications')
        try:
            status = manage.main(['serialproxy-manage', '--config-file',
                                  self.config_file, *args])
        finally:
            self.forget_command()
        return status, self.stdout.getvalue()

    def test_disable_enable_and_unset_a_project(self):
        status, out = self.manage('access', 'disable', '--project',
                                  base.PROJECT)
        self.assertEqual(0, status)
        self.assertEqual(
            'Serial console access of project %s: disabled, decided by the '
            'project (cloud enabled, project disabled).\n' % base.PROJECT,
            out)
        status, out = self.manage('access', 'list')
        self.assertIn('project %s: disabled' % base.PROJECT, out)
        status, out = self.manage('access', 'enable', '--server',
                                  self.server_id)
        self.assertEqual(0, status)
        self.assertIn('enabled, decided by the server (cloud enabled, '
                      'project disabled, server enabled)', out)
        self.manage('access', 'unset', '--project', base.PROJECT)
        status, out = self.manage('access', 'show', '--project',
                                  base.PROJECT)
        self.assertIn('enabled, decided by the cloud', out)
        changes = [body['serialproxy_object.data'] for _, body in
                   self.notes.caught('serial_console.access_changed')]
        self.assertEqual(
            [('project', None, 'disabled'), ('server', None, 'enabled'),
             ('project', 'disabled', None)],
            [(c['level'], c['old'], c['new']) for c in changes])
        self.assertEqual({'serialproxy-manage'},
                         {c['source'] for c in changes})

    def test_unknown_server_fails_with_a_message(self):
        status, _ = self.manage('access', 'disable', '--server', 'nope')
        self.assertEqual(1, status)
        self.assertIn('could not be found', self.stderr.getvalue())

    def test_project_or_server_is_required(self):
        exc = self.assertRaises(SystemExit, self.manage, 'access',
                                'disable')
        self.assertEqual(2, exc.code)
        self.assertIn('one of the arguments --project --server is '
                      'required', self.stderr.getvalue())
