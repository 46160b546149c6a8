"""The audit notifications: their envelope, and that sending them never
blocks or fails the caller."""

import threading

from serialproxy import notifications
from serialproxy.proxy import console as leased_console
from tests.unit import base
from tests.unit import notification_fixture


class PayloadTest(base.TestCase):
    def test_payload_has_every_field_and_write_mode_by_default(self):
        body = notifications.payload(instance_uuid='u', index=0)
        self.assertEqual('1.0', body['serialproxy_object.version'])
        self.assertEqual(notifications.PAYLOAD_NAME,
                         body['serialproxy_object.name'])
        data = body['serialproxy_object.data']
        self.assertEqual(set(notifications.FIELDS), set(data))
        self.assertEqual('write', data['mode'])
        self.assertIsNone(data['reason'])

    def test_unknown_field_is_a_programming_error(self):
        self.assertRaises(TypeError, notifications.payload, token='x')

    def test_console_event_takes_who_and_what_from_the_console(self):
        caught = self.useFixture(notification_fixture.CaughtNotifications())
        console = leased_console.Console.from_answer({
            'instance_uuid': 'uuid-1', 'index': 1, 'user_id': 'u',
            'project_id': 'p', 'token': 'never-sent', 'host': '10.0.0.5',
            'port': 10001, 'console_type': 'serial',
            'compute_host': 'compute-1', 'expires_at': 2e9})
        notifications.emit_console_event(
            notifications.SESSION_STARTED, console, 'session-1',
            '203.0.113.7:52814', 'proxy-1', mode='view')
        [(_, body)] = caught.caught(notifications.SESSION_STARTED)
        data = body['serialproxy_object.data']
        self.assertEqual(
            ('uuid-1', 1, 'session-1', 'u', 'p', '203.0.113.7:52814',
             'proxy-1', 'view'),
            (data['instance_uuid'], data['index'], data['session_id'],
             data['user_id'], data['project_id'], data['remote_address'],
             data['proxy_host'], data['mode']))
        self.assertNotIn('never-sent', str(body))

    def test_console_event_of_a_refusal_before_any_console(self):
        caught = self.useFixture(notification_fixture.CaughtNotifications())
        notifications.emit_console_event(
            notifications.SESSION_REFUSED, None, None, '203.0.113.7:1',
            'proxy-1', reason='401 Invalid or expired token')
        [(_, body)] = caught.caught(notifications.SESSION_REFUSED)
        data = body['serialproxy_object.data']
        self.assertIsNone(data['instance_uuid'])
        self.assertEqual('write', data['mode'])

    def test_taken_over_event_is_defined_for_the_take_over_work(self):
        self.assertIn('serial_console.session_taken_over',
                      notifications.EVENT_TYPES)


class EmitTest(base.TestCase):
    def test_no_driver_sends_nothing_and_starts_no_thread(self):
        notifications.reset()
        self.addCleanup(notifications.reset)
        threads = threading.active_count()
        notifications.emit(notifications.URL_ISSUED,
                           notifications.payload())
        self.assertIsInstance(notifications._sender,
                              notifications._NullSender)
        self.assertEqual(threads, threading.active_count())

    def test_no_driver_is_decided_once_not_per_event(self):
        notifications.reset()
        self.addCleanup(notifications.reset)
        made = []
        real = notifications._make_notifier
        self.patch(notifications, '_make_notifier',
                   lambda: made.append(1) or real())
        for _ in range(3):
            notifications.emit(notifications.URL_ISSUED,
                               notifications.payload())
        notifications.flush()
        self.assertEqual([1], made)

    def test_emitted_event_arrives_with_publisher_and_priority(self):
        caught = self.useFixture(notification_fixture.CaughtNotifications())
        notifications.init('serialproxy-proxy', 'proxy-7')
        self.addCleanup(setattr, notifications, '_publisher', None)
        notifications.emit(notifications.SESSION_ENDED,
                           notifications.payload(reason='1000 bye'))
        (event, body), = caught.caught()
        self.assertEqual(notifications.SESSION_ENDED, event)
        self.assertEqual('1000 bye',
                         body['serialproxy_object.data']['reason'])
        self.assertEqual('serialproxy-proxy:proxy-7',
                         notifications._sender.notifier.publisher_id)

    def test_full_queue_drops_instead_of_blocking(self):
        self.useFixture(notification_fixture.CaughtNotifications())
        release = threading.Event()
        self.addCleanup(release.set)
        self.patch(notifications, 'QUEUE_SIZE', 2)
        notifications.emit(notifications.NMI_SENT, notifications.payload())
        sender = notifications._sender
        # The sending thread hangs on a broker that does not answer.
        sender.notifier.info = lambda *args: release.wait(10)
        for _ in range(5):
            notifications.emit(notifications.NMI_SENT,
                               notifications.payload())
        self.assertGreater(sender.dropped, 0)

    def test_a_failing_notifier_is_logged_not_raised(self):
        caught = self.useFixture(notification_fixture.CaughtNotifications())
        notifications.emit(notifications.NMI_SENT, notifications.payload())
        caught.caught()

        def broken(*args):
            raise RuntimeError('broker down')
        notifications._sender.notifier.info = broken
        notifications.emit(notifications.NMI_SENT, notifications.payload())
        notifications.flush()
        self.assertTrue(notifications._sender.thread.is_alive())
