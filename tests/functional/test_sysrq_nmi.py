"""SysRq and NMI reach a real QEMU guest's kernel, and every console
event arrives on RabbitMQ as its documented notification."""

import json
import queue
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import oslo_messaging as messaging
from oslo_config import cfg
import websocket

from serialproxy import notifications
from tests.harness import fixtures as func_fixtures
from tests.unit import notification_fixture
from tests.harness import testcase

PROJECT = 'f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1'
MEMBER = 'member-user'


class NotificationListener:
    """Every notification on the vhost's 'notifications' topic."""

    def __init__(self, url):
        self.events = queue.Queue()
        conf = cfg.ConfigOpts()
        conf([])
        transport = messaging.get_notification_transport(conf, url=url)
        self.listener = messaging.get_notification_listener(
            transport, [messaging.Target(topic='notifications')], [self],
            executor='threading')
        self.listener.start()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.events.put((event_type, publisher_id, payload))

    def stop(self):
        self.listener.stop()
        self.listener.wait()

    def wait_for(self, event_type, timeout=30):
        """The first event of event_type; the others seen are kept."""
        seen = []
        try:
            while True:
                event = self.events.get(timeout=timeout)
                if event[0] == event_type:
                    return event
                seen.append(event)
        except queue.Empty:
            raise AssertionError('no %s notification; saw %s' % (
                event_type, [e[0] for e in seen]))
        finally:
            for event in seen:
                self.events.put(event)


class SysRqAndNMITest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.listener = NotificationListener(vhost.url)
        self.addCleanup(self.listener.stop)
        self.guest = self.useFixture(func_fixtures.Guest(
            project_id=PROJECT, user_id=MEMBER))
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, options={
                'oslo_messaging_notifications': {'driver': 'messagingv2'}}))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-api', 'serialproxy-proxy'):
            self.deployment.start(name)
        self.deployment.wait_ready()
        self.url = self.deployment.console_url(self.guest.uuid)
        self.token = urllib.parse.parse_qs(
            urllib.parse.urlsplit(self.url).query)['token'][0]

    def call(self, path, body, user='admin', version=None,
             under='serial-console/'):
        """POST to the server's under + path as user (noauth: "admin" is
        an admin, others members)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {'Content-Type': 'application/json',
                   'X-Auth-Token': user if user == 'admin'
                   else '%s:%s' % (user, PROJECT)}
        if version:
            headers['OpenStack-API-Version'] = 'compute %s' % version
        req = urllib.request.Request(
            'http://127.0.0.1:%d/v2.1/servers/%s/%s%s' % (
                self.deployment.api_port, self.guest.uuid, under, path),
            data=data, method='POST', headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def console(self, url=None):
        ws = websocket.create_connection(url or self.url,
                                         subprotocols=['binary'], timeout=5)
        self.addCleanup(ws.close)
        return ws

    def member_console_url(self):
        """A console URL issued to a member of the owning project."""
        status, body = self.call('remote-consoles', {'remote_console': {
            'protocol': 'serial', 'type': 'serial'}}, user=MEMBER,
            version='2.6', under='')
        self.assertEqual(200, status, body)
        return json.loads(body)['remote_console']['url']

    @staticmethod
    def read_frames(ws, done, timeout=30):
        """Read frames until done(output, notes) is true; return those:
        output the console bytes, notes the text frames as JSON."""
        output, notes = b'', []
        deadline = time.monotonic() + timeout
        while not done(output, notes):
            if time.monotonic() > deadline:
                raise AssertionError('gave up; output %r, notes %r'
                                     % (output[-300:], notes))
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            if opcode == websocket.ABNF.OPCODE_TEXT:
                notes.append(json.loads(data))
            else:
                output += data
        return output, notes

    def read_console(self, ws, pattern, timeout=30):
        return func_fixtures.read_until(lambda _: ws.recv_data()[1],
                                        pattern, timeout)

    def check_event(self, event_type, **expected):
        event, publisher, body = self.listener.wait_for(event_type)
        self.assertEqual(
            [], notification_fixture.mismatches(event_type, body))
        self.assertNotIn(self.token, json.dumps(body))
        data = body['serialproxy_object.data']
        for key, value in expected.items():
            self.assertEqual(value, data[key], key)
        return publisher, data

    def test_sysrq_h_prints_the_kernels_help_on_the_console(self):
        ws = self.console()
        status, body = self.call('sysrq', {'sysrq': {'key': 'h'}},
                                 user=MEMBER)
        self.assertEqual((202, b''), (status, body))
        output = self.read_console(ws, rb'sysrq: HELP ?:', 20)
        self.assertIsNotNone(output, 'no SysRq help on the console')
        publisher, _ = self.check_event(
            notifications.SYSRQ_SENT, sysrq_key='h', user_id=MEMBER,
            instance_uuid=self.guest.uuid)
        self.assertTrue(publisher.startswith('serialproxy-api:'),
                        publisher)

    def test_the_console_page_sends_sysrq_over_its_websocket(self):
        # What the page's menu does: a member's URL allows SysRq, not NMI.
        ws = self.console(self.member_console_url())
        ws.send('{"permissions": true}')
        _, notes = self.read_frames(ws, lambda output, notes: notes)
        self.assertEqual([{'permissions': ['sysrq']}], notes)
        ws.send('{"nmi": true}')
        _, notes = self.read_frames(ws, lambda output, notes: notes)
        self.assertEqual(
            [{'error': 'NMI is not allowed with this console URL'}], notes)
        ws.send('{"sysrq": "h"}')
        output, notes = self.read_frames(
            ws, lambda output, notes: notes and
            re.search(rb'sysrq: HELP ?:', output))
        self.assertEqual([{'sent': {'sysrq': 'h'}}], notes)
        publisher, data = self.check_event(
            notifications.SYSRQ_SENT, sysrq_key='h', user_id=MEMBER,
            project_id=PROJECT, instance_uuid=self.guest.uuid, index=0,
            mode='write')
        self.assertTrue(publisher.startswith('serialproxy-proxy:'),
                        publisher)
        self.assertIsNotNone(data['session_id'])
        # The session went on: the shell still answers.
        ws.send_binary(b'echo page-$((40+3))\n')
        self.assertIsNotNone(self.read_console(ws, rb'\npage-43\r?\n'))
        # No NMI was sent.
        self.assertRaises(AssertionError, self.listener.wait_for,
                          notifications.NMI_SENT, 1)

    def test_nmi_is_reported_by_the_kernel(self):
        ws = self.console()
        self.assertEqual((202, b''), self.call('nmi', None)[:2])
        output = self.read_console(
            ws, rb'(?i)(uhhuh|nmi received)', 20)
        self.assertIsNotNone(output, 'no NMI report on the console')
        self.check_event(notifications.NMI_SENT, user_id='admin')

    def test_take_over_is_announced_with_the_session_it_replaced(self):
        self.console()
        _, first = self.check_event(notifications.SESSION_STARTED,
                                    mode='write')
        taker = websocket.create_connection(
            self.url + '&mode=take_over', subprotocols=['binary'],
            timeout=10)
        self.addCleanup(taker.close)
        publisher, taken = self.check_event(
            notifications.SESSION_TAKEN_OVER, mode='take_over',
            instance_uuid=self.guest.uuid, index=0, user_id='admin')
        self.assertTrue(publisher.startswith('serialproxy-proxy:'),
                        publisher)
        self.assertEqual('replaced session %s' % first['session_id'],
                         taken['reason'])
        self.assertNotEqual(first['session_id'], taken['session_id'])
        _, ended = self.check_event(notifications.SESSION_ENDED,
                                    session_id=first['session_id'])
        self.assertTrue(ended['reason'].startswith('4006 '), ended)

    def test_refusals_are_clear(self):
        status, body = self.call('sysrq', {'sysrq': {'key': 'a'}})
        self.assertEqual(400, status)
        self.assertIn(b'sysrq/key', body)
        status, body = self.call('nmi', {'nmi': {}}, user=MEMBER)
        self.assertEqual(403, status, body)
        self.guest.virsh('destroy', self.guest.name)

        def refused():
            status, body = self.call('sysrq', {'sysrq': {'key': 'h'}})
            return (status, body) if status == 409 else None
        status, body = func_fixtures.wait_for(refused, 30, '409')
        self.assertIn(b'not running', body)

    def test_console_session_events_arrive_with_their_payloads(self):
        self.check_event(notifications.URL_ISSUED, user_id='admin',
                         instance_uuid=self.guest.uuid)
        ws = self.console()
        ws.send_binary(b'echo ev-$((40+2))\n')
        self.assertIsNotNone(self.read_console(ws, rb'\nev-42\r?\n'))
        publisher, started = self.check_event(
            notifications.SESSION_STARTED, instance_uuid=self.guest.uuid,
            index=0, user_id='admin', mode='write')
        self.assertTrue(publisher.startswith('serialproxy-proxy:'),
                        publisher)
        # The console is in use: a second client is refused.
        self.assertRaises(websocket.WebSocketBadStatusException,
                          websocket.create_connection, self.url,
                          subprotocols=['binary'], timeout=5)
        _, refused = self.check_event(notifications.SESSION_REFUSED)
        self.assertTrue(re.match(r'409 ', refused['reason']), refused)
        status, _ = self.deployment.api_request(
            'DELETE', '/v2.1/servers/%s/serial-console/sessions'
            % self.guest.uuid)
        self.assertEqual(204, status)
        self.check_event(notifications.FORCE_DISCONNECTED,
                         session_id=started['session_id'])
        _, ended = self.check_event(notifications.SESSION_ENDED,
                                    session_id=started['session_id'])
        self.assertGreater(ended['bytes_to_guest'], 0)
        self.assertGreater(ended['bytes_to_client'], 0)
        self.assertIsNotNone(ended['duration'])
