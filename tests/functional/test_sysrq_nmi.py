"""SysRq and NMI reach a real QEMU guest's kernel, and every console
event arrives on RabbitMQ as its documented notification."""

import json
import queue
import re
import urllib.error
import urllib.parse
import urllib.request

import oslo_messaging as messaging
from oslo_config import cfg
import testtools
import websocket

from serialproxy import notifications
from tests.functional import fixtures as func_fixtures
from tests.unit import notification_fixture

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


class SysRqAndNMITest(testtools.TestCase):
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

    def call(self, path, body, user='admin'):
        """POST as user (noauth: "admin" is an admin, others members)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            'http://127.0.0.1:%d/v2.1/servers/%s/serial-console/%s' % (
                self.deployment.api_port, self.guest.uuid, path),
            data=data, method='POST', headers={
                'Content-Type': 'application/json',
                'X-Auth-Token': user if user == 'admin'
                else '%s:%s' % (user, PROJECT)})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def console(self):
        ws = websocket.create_connection(self.url, subprotocols=['binary'],
                                         timeout=5)
        self.addCleanup(ws.close)
        return ws

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
