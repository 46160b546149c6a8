"""GET /servers/{id}/serial-console/output: history by byte offset."""

import base64
import os
import uuid

import oslo_messaging as messaging

from serialproxy.compute import manager as compute_manager
from tests.unit.api import base

LOG = 'boot ok\nlogin: root\n'


class SerialConsoleOutputTest(base.APITestCase):
    def get(self, server_id, query='', **kwargs):
        return self.request('GET', '/v2.1/servers/%s/serial-console/output%s'
                            % (server_id, query), **kwargs)

    def page(self, server_id, query='', **kwargs):
        resp = self.get(server_id, query, **kwargs)
        self.assertEqual(200, resp.status_int, resp.body)
        body = resp.json['serial_console_output']
        self.assertEqual({'data', 'start', 'next', 'first_available'},
                         set(body))
        body['data'] = base64.b64decode(body['data'])
        return body

    def test_a_page_by_offset(self):
        self.assertEqual({'data': b'login', 'start': 8, 'next': 13,
                          'first_available': 0},
                         self.page(self.define(console_log=LOG),
                                   '?start=8&max_bytes=5'))

    def test_no_start_is_the_tail_and_negative_bytes_before_the_end(self):
        server_id = self.define(console_log=LOG)
        self.assertEqual(LOG.encode(), self.page(server_id)['data'])
        self.assertEqual(b'root\n', self.page(server_id, '?start=-5')['data'])
        self.assertEqual(b'ro', self.page(
            server_id, '?start=-5&max_bytes=2')['data'])

    def test_start_at_or_past_the_end_is_empty_with_next_the_end(self):
        server_id = self.define(console_log=LOG)
        for start in (len(LOG), 10 ** 15):
            body = self.page(server_id, '?start=%d' % start)
            self.assertEqual((b'', len(LOG)), (body['data'], body['next']))

    def test_max_bytes_is_capped_by_the_server(self):
        self.flags(group='api', console_history_max_bytes=4)
        body = self.page(self.define(console_log=LOG),
                         '?start=0&max_bytes=1000')
        self.assertEqual((b'boot', 4), (body['data'], body['next']))

    def test_pages_read_on_with_start_next_give_the_whole_log(self):
        server_id = self.define(console_log=LOG)
        data, start = b'', 0
        while True:
            body = self.page(server_id, '?start=%d&max_bytes=3' % start)
            if not body['data']:
                break
            data += body['data']
            start = body['next']
        self.assertEqual(LOG.encode(), data)

    def test_bad_pages_are_400_with_a_reason(self):
        server_id = self.define(console_log=LOG)
        for query, reason in [
                ('?start=abc', "start must be an integer, not 'abc'"),
                ('?start=1.5', 'start must be an integer'),
                ('?start=', 'start must be an integer'),
                ('?max_bytes=ten', 'max_bytes must be an integer'),
                ('?max_bytes=0', 'max_bytes must be at least 1'),
                ('?max_bytes=-1', 'max_bytes must be at least 1'),
                ('?start=1&start=2', 'start'),
                ('?offset=3', 'offset'),
                ('?start=' + '9' * 40, 'start')]:
            self.assertFault(self.get(server_id, query), 400, 'badRequest',
                             reason)

    def test_a_reader_of_the_project_may_read_it(self):
        self.assertEqual(LOG.encode(), self.page(
            self.define(console_log=LOG), token='reader')['data'])

    def test_policy_can_refuse_it(self):
        self.use_policy_file({
            'serialproxy:serial_console_output:show': 'role:admin'})
        self.assertFault(self.get(self.define(console_log=LOG)), 403,
                         'forbidden')

    def test_another_projects_server_and_unknown_servers_are_404(self):
        server_id = self.define(console_log=LOG)
        self.assertFault(self.get(server_id, token='other'), 404,
                         'itemNotFound')
        self.assertFault(self.get(str(uuid.uuid4())), 404, 'itemNotFound')

    def test_server_without_console_log_is_404(self):
        self.assertFault(self.get(self.define()), 404, 'itemNotFound',
                         'no serial console log')

    def test_missing_log_is_404_naming_no_path_even_to_admins(self):
        server_id = self.define(console_log=LOG)
        os.unlink(os.path.join(self.state_path, server_id + '.log'))
        for caller in ('member', 'admin'):
            resp = self.get(server_id, token=caller)
            self.assertFault(resp, 404, 'itemNotFound',
                             'no serial console log')
            self.assertNotIn(self.state_path, resp.text)
            self.assertNotIn('.log', resp.text)

    def test_a_stopped_server_keeps_its_history(self):
        self.assertEqual(LOG.encode(), self.page(
            self.define(console_log=LOG, start=False))['data'])


class CompatibleComputeWithoutHistory:
    """A compute endpoint of RPC 1.3, before get_console_history."""

    target = messaging.Target(version='1.3')

    def __init__(self, real):
        self.report_instances = real.report_instances


class SerialConsoleOutputUnsupportedTest(base.APITestCase):
    def compute_endpoint(self, driver, consoleauth_api):
        return CompatibleComputeWithoutHistory(
            compute_manager.ComputeManager(driver, consoleauth_api))

    def test_compute_without_history_is_501(self):
        resp = self.request('GET', '/v2.1/servers/%s/serial-console/output'
                            % self.define())
        self.assertFault(resp, 501, 'notImplemented', 'console output')
