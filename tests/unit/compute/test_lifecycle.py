"""Lifecycle events from libvirt's test driver, on the real event loop."""

import logging
import threading
import time
import uuid

import fixtures
import libvirt
import oslo_messaging as messaging

from serialproxy.compute import lifecycle
from tests.unit import base
from tests.unit.compute.test_libvirt_driver import DOMAIN
from tests.unit.compute.test_libvirt_driver import TEST_URI


class Recorder:
    def __init__(self, fail_first=False, failure=None):
        self.events = []
        self.resyncs = 0
        self.fail_first = fail_first
        self.failure = failure or RuntimeError('handler failed')
        self.changed = threading.Condition()

    def on_event(self, instance_uuid, event):
        with self.changed:
            self.events.append((instance_uuid, event))
            self.changed.notify_all()
        if self.fail_first and len(self.events) == 1:
            raise self.failure

    def on_resync(self):
        with self.changed:
            self.resyncs += 1
            self.changed.notify_all()

    def wait(self, predicate, timeout=10):
        with self.changed:
            if not self.changed.wait_for(predicate, timeout):
                raise AssertionError('no such event within %ss: %s'
                                     % (timeout, self.events))


class LifecycleEventsTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)

    def listen(self, recorder):
        events = lifecycle.LifecycleEvents(TEST_URI, recorder.on_event,
                                           recorder.on_resync,
                                           reconnect_interval=1)
        events.start()
        self.addCleanup(events.stop)
        return events

    def cycle(self):
        instance_uuid = str(uuid.uuid4())
        dom = self.conn.defineXML(DOMAIN % {
            'name': 'vm-' + instance_uuid[:8], 'uuid': instance_uuid,
            'devices': ''})
        dom.create()
        dom.destroy()
        dom.undefine()
        return instance_uuid

    def of(self, recorder, instance_uuid):
        return [e for u, e in recorder.events if u == instance_uuid]

    def test_events_arrive_in_order(self):
        recorder = Recorder()
        self.listen(recorder)
        instance_uuid = self.cycle()
        recorder.wait(lambda: 'undefined' in self.of(recorder,
                                                     instance_uuid))
        self.assertEqual(['defined', 'started', 'stopped', 'undefined'],
                         self.of(recorder, instance_uuid))
        self.assertEqual(0, recorder.resyncs)

    def test_a_failing_handler_does_not_stop_the_events(self):
        log = self.useFixture(fixtures.FakeLogger())
        recorder = Recorder(fail_first=True)
        self.listen(recorder)
        instance_uuid = self.cycle()
        recorder.wait(lambda: 'undefined' in self.of(recorder,
                                                     instance_uuid))
        self.assertIn('Handling event defined of instance %s failed'
                      % instance_uuid, log.output)

    def test_an_event_consoleauth_did_not_answer_is_a_warning(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        recorder = Recorder(fail_first=True,
                            failure=messaging.MessagingTimeout(
                                'Timed out waiting for a reply'))
        self.listen(recorder)
        instance_uuid = self.cycle()
        recorder.wait(lambda: 'undefined' in self.of(recorder,
                                                     instance_uuid))
        self.assertIn('Handling event defined of instance %s failed, the '
                      'next reconciliation repairs it: Timed out waiting for '
                      'a reply' % instance_uuid, log.output)
        self.assertNotIn('Traceback', log.output)

    def test_lost_connection_reconnects_resyncs_and_listens_again(self):
        recorder = Recorder()
        events = self.listen(recorder)
        # What libvirt calls when libvirtd goes away.
        events._closed(events._conn, libvirt.VIR_CONNECT_CLOSE_REASON_EOF,
                       None)
        recorder.wait(lambda: recorder.resyncs == 1)
        time.sleep(0.1)
        instance_uuid = self.cycle()
        recorder.wait(lambda: 'undefined' in self.of(recorder,
                                                     instance_uuid))
        self.assertEqual(1, self.of(recorder, instance_uuid).count(
            'defined'))
