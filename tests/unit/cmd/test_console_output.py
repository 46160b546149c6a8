"""serialproxy-console --output against the real API over HTTP."""

import base64
import io
import os
import threading
from wsgiref import simple_server

import fixtures

from serialproxy.cmd import api_client
from serialproxy.cmd import console
from serialproxy.cmd import console_output
from tests.unit.api import base

LOG = b'boot ok\nlogin: root\n'


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ConsoleOutputCommandTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        httpd = simple_server.make_server('127.0.0.1', 0, self.app,
                                          handler_class=_Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        self.api_url = 'http://127.0.0.1:%d' % httpd.server_port
        self.server_id = self.define(console_log=LOG.decode())
        self.log = os.path.join(self.state_path, self.server_id + '.log')

    def run_command(self, *args, server=None):
        stdout = io.TextIOWrapper(io.BytesIO())
        stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', stdout))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        status = console.main(['serialproxy-console', '--output',
                               server or self.server_id,
                               '--api-url', self.api_url,
                               '--token', self.tokens['reader'], *args])
        return status, stdout.buffer.getvalue(), stderr.getvalue()

    def test_prints_the_whole_history_and_the_next_offset(self):
        status, out, err = self.run_command()
        self.assertEqual((0, LOG), (status, out))
        self.assertIn('next offset %d' % len(LOG), err)

    def test_since_starts_at_an_offset_or_before_the_end(self):
        self.assertEqual(LOG[8:], self.run_command('--since', '8')[1])
        self.assertEqual(LOG[-5:], self.run_command('--since', '-5')[1])

    def test_a_refusal_exits_1_with_the_apis_reason(self):
        status, out, err = self.run_command(
            server='00000000-0000-4000-8000-000000000000')
        self.assertEqual((1, b''), (status, out))
        self.assertIn('the API refused: 404', err)

    def test_follow_prints_new_output_as_it_arrives(self):
        def get_page(start):
            return api_client.request(
                self.api_url, self.tokens['reader'], 'GET',
                '/v2.1/servers/%s/serial-console/output?start=%d'
                % (self.server_id, start))['serial_console_output']

        polls = []

        def guest_prints(_interval):
            polls.append(1)
            with open(self.log, 'ab') as f:
                f.write(b'more %d\n' % len(polls))
        got = b''
        for data, _ in console_output.pages(get_page, 0, follow=True,
                                            sleep=guest_prints):
            got += data
            if got.endswith(b'more 2\n'):
                break
        self.assertEqual(LOG + b'more 1\nmore 2\n', got)


class PagesTest(base.base.TestCase):
    """The paging rules, on pages as the API words them."""

    def api(self, log, first=0):
        def get_page(start):
            end = first + len(log)
            if start < 0:
                start = end + start
            start = min(max(start, first), end)
            data = log[start - first:start - first + 4]
            return {'data': base64.b64encode(data).decode(), 'start': start,
                    'next': start + len(data), 'first_available': first}
        return get_page

    def test_a_start_older_than_kept_is_noted(self):
        notes = []
        got = b''.join(d for d, _ in console_output.pages(
            self.api(b'kept bytes', first=100), 3, note=notes.append))
        self.assertEqual(b'kept bytes', got)
        self.assertEqual(['bytes 3 to 100 are no longer kept'], notes)

    def test_a_restarted_log_is_read_from_its_beginning(self):
        notes = []
        pages = console_output.pages(self.api(b'new boot'), 500,
                                     note=notes.append)
        self.assertEqual(b'new boot', b''.join(d for d, _ in pages))
        self.assertEqual(['the console log began again (the server '
                          'restarted)'], notes)
