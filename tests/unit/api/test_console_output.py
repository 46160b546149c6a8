"""The os-getConsoleOutput action: the tail of the console log."""

import os
import uuid

import oslo_messaging as messaging

from serialproxy.compute import manager as compute_manager
from tests.unit.api import base

# A console log as virtlogd writes it; control characters included to see
# them replaced, as Nova does.
CONSOLE_LOG = 'boot\x1b[0m ok\nlogin: \x07\nroot\n'


class ConsoleOutputTest(base.APITestCase):
    def action(self, server_id, options=None, **kwargs):
        return self.request('POST', '/v2.1/servers/%s/action' % server_id,
                            body={'os-getConsoleOutput': options or {}},
                            **kwargs)

    def test_whole_log_with_control_characters_replaced(self):
        resp = self.action(self.define(console_log=CONSOLE_LOG))
        self.assertEqual(200, resp.status_int, resp.body)
        self.assertEqual({'output': 'boot?[0m ok\nlogin: ?\nroot\n'},
                         resp.json)

    def test_length_takes_the_last_lines_and_minus_one_all(self):
        server_id = self.define(console_log=CONSOLE_LOG)
        self.assertEqual('root\n', self.action(
            server_id, {'length': 1}).json['output'])
        self.assertEqual('login: ?\nroot\n', self.action(
            server_id, {'length': '2'}).json['output'])
        self.assertEqual(3, self.action(
            server_id, {'length': -1}).json['output'].count('\n'))

    def test_bad_lengths_are_400(self):
        server_id = self.define(console_log=CONSOLE_LOG)
        for length in (-2, 'ten', 1.5, [1]):
            self.assertFault(self.action(server_id, {'length': length}),
                             400, 'badRequest', 'length')

    def test_readers_may_not_read_the_log(self):
        self.assertFault(self.action(self.define(console_log=CONSOLE_LOG),
                                     token='reader'), 403, 'forbidden')

    def test_server_without_console_log_is_404(self):
        self.assertFault(self.action(self.define()), 404, 'itemNotFound',
                         'no serial console log')

    def test_missing_log_file_path_only_for_admins(self):
        server_id = self.define(console_log=CONSOLE_LOG)
        path = os.path.join(self.state_path, server_id + '.log')
        os.unlink(path)
        member = self.action(server_id)
        self.assertFault(member, 404, 'itemNotFound',
                         'no serial console log')
        self.assertNotIn(self.state_path, member.text)
        self.assertNotIn('.log', member.text)
        self.assertFault(self.action(server_id, token='admin'), 404,
                         'itemNotFound', path)

    def test_unknown_server_is_404(self):
        self.assertFault(self.action(str(uuid.uuid4())), 404,
                         'itemNotFound')


class CompatibleComputeWithoutConsoleLog:
    """A compute endpoint of RPC 1.0 that predates get_console_output."""

    target = messaging.Target(version='1.0')

    def __init__(self, real):
        self.get_serial_console = real.get_serial_console
        self.report_instances = real.report_instances


class ConsoleOutputUnsupportedTest(base.APITestCase):
    def compute_endpoint(self, driver, consoleauth_api):
        return CompatibleComputeWithoutConsoleLog(
            compute_manager.ComputeManager(driver, consoleauth_api))

    def test_compute_without_console_log_is_501(self):
        resp = self.request('POST', '/v2.1/servers/%s/action'
                            % self.define(),
                            body={'os-getConsoleOutput': {}})
        self.assertFault(resp, 501, 'notImplemented', 'console output')
