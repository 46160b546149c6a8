"""serialproxy-api under uwsgi, as OpenStack APIs are deployed.

uwsgi runs etc/serialproxy/serialproxy-api-uwsgi.ini with three worker
processes; consoleauth, compute and the proxy are processes over RabbitMQ,
the console a real QEMU guest.
"""

import collections
import concurrent.futures
import json
import os
import re
import signal
import urllib.request

from testtools import content
import websocket

from tests.harness import fixtures as func_fixtures
from tests.harness import uwsgi_api
from tests.harness import testcase

# The request log line of serialproxy.api.wsgi_app.AccessLog, in
# oslo.log's default format: time, pid, level, logger, context, message.
ACCESS_LINE = re.compile(
    r'(?m)^\S+ \S+ (?P<pid>\d+) INFO serialproxy\.api\.wsgi_app \[.*?\] '
    r'\S+ "(?P<method>\S+) (?P<path>\S+)" status (?P<status>\d+) .*'
    r'request_id (?P<request_id>req-[0-9a-f-]+)$')


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class UwsgiAPITest(testcase.TestCase):

    def setUp(self):
        super().setUp()
        self.guest = self.useFixture(func_fixtures.Guest())
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database='postgresql'))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-proxy'):
            self.deployment.start(name)
        self.deployment.wait_ready()
        self.uwsgi = self.useFixture(uwsgi_api.UwsgiAPI(self.deployment))

    def ask_console_url(self):
        """x-openstack-request-id and URL of one console URL answer."""
        req = urllib.request.Request(
            'http://127.0.0.1:%d/v2.1/servers/%s/remote-consoles' % (
                self.deployment.api_port, self.guest.uuid),
            data=json.dumps({'remote_console': {
                'protocol': 'serial', 'type': 'serial'}}).encode(),
            method='POST',
            headers={'Content-Type': 'application/json',
                     'OpenStack-API-Version': 'compute 2.6'})
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.assertEqual(200, resp.status)
            return (resp.headers['x-openstack-request-id'],
                    json.loads(resp.read())['remote_console']['url'])

    def test_console_through_uwsgi_workers(self):
        # Each worker built its own application (and RPC transport) after
        # the fork; the master none.
        workers = self.uwsgi.worker_pids()
        self.assertEqual(uwsgi_api.WORKERS, len(workers))
        self.assertEqual(workers, self.uwsgi.loaded_pids())
        self.assertNotIn(self.uwsgi.proc.pid, workers)

        # The first answer waits for the compute agent's first report.
        url = self.deployment.console_url(self.guest.uuid)
        self.assertTrue(url.startswith(
            'ws://127.0.0.1:%d/?token=' % self.deployment.proxy_port), url)

        # Many at once: the workers share them.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: self.ask_console_url(),
                                    range(40)))
        logged = {m['request_id']: m for m in ACCESS_LINE.finditer(
            self.uwsgi.log())}
        serving = collections.Counter()
        for request_id, _ in answers:
            self.assertIn(request_id, logged)
            line = logged[request_id]
            self.assertEqual(('POST', '200'),
                             (line['method'], line['status']))
            serving[int(line['pid'])] += 1
        self.addDetail('requests-per-worker',
                       content.text_content(repr(dict(serving))))
        self.assertTrue(set(serving) <= workers, (serving, workers))
        self.assertGreater(len(serving), 1,
                           'one worker served every request')

        # The last URL opens the guest's shell.
        url = answers[-1][1]
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=10)
        self.addCleanup(ws.close)
        ws.send_binary(b'echo uwsgi-$((6*7))\n')
        output = func_fixtures.read_until(
            lambda _: ws.recv_data()[1], rb'\nuwsgi-42\r?\n', 30)
        self.assertIsNotNone(output, 'the guest never printed uwsgi-42')
        ws.close()

        # A token in a path is logged redacted (uwsgi's own request log
        # is off in the sample).
        token = url.split('token=', 1)[1]
        status, _ = self.deployment.api_request(
            'GET', '/v2.1/os-console-auth-tokens/%s' % token, version='2.31')
        self.assertEqual(200, status)
        self.assertIn('"GET /v2.1/os-console-auth-tokens/***"',
                      self.uwsgi.log())
        for _, answer_url in answers:
            self.assertNotIn(answer_url.split('token=', 1)[1],
                             self.uwsgi.log() + self.deployment.logs())

        # SIGTERM stops the master and its workers (die-on-term).
        self.uwsgi.proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, self.uwsgi.proc.wait(30))
        self.assertIn('goodbye to uWSGI', self.uwsgi.log())
        for pid in workers:
            self.assertFalse(pid_alive(pid), pid)
        self.assertEqual((None, b''), self.deployment.api_request(
            'GET', '/'))
