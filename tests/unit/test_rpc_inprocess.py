"""serialproxy.rpc_inprocess: serialproxy-all's messaging, as over a broker
but with nobody polling; through rpcapi-style clients and real servers."""

import configparser
import datetime
import os
import queue
import threading
import time

import oslo_messaging as messaging

from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import rpc
from serialproxy import rpc_inprocess
from tests.unit import base
from tests.unit import rpc_fixture

TOPIC = 'inprocess-test'
CTXT = {'request_id': 'req-1', 'user_id': 'u', 'project_id': 'p',
        'roles': ['member'], 'is_admin': False}


class Unexpected(Exception):
    """From a module not in allowed_remote_exmods."""


class Endpoint:
    target = messaging.Target(version='1.1')

    def __init__(self, name):
        self.name = name
        self.seen = queue.Queue()

    def echo(self, ctxt, **kwargs):
        self.seen.put((ctxt, kwargs))
        return {'server': self.name, 'kwargs': kwargs, 'pair': (1, 2)}

    def note(self, ctxt, value):
        self.seen.put(value)

    def not_found(self, ctxt, instance_uuid):
        raise exception.InstanceNotFound(instance_uuid=instance_uuid)

    def unexpected(self, ctxt):
        raise Unexpected('boom')

    def value_error(self, ctxt):
        raise ValueError('bad value')

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return 'late'


class TestAPI:
    """Shaped like serialproxy/*/rpcapi.py."""

    def __init__(self):
        self.client = rpc.get_client(
            messaging.Target(topic=TOPIC, version='1.0'))

    def echo(self, ctxt, host, **kwargs):
        return self.client.prepare(server=host).call(ctxt, 'echo', **kwargs)

    def call(self, ctxt, host, method, timeout=None, version=None,
             **kwargs):
        options = {'server': host}
        if timeout is not None:
            options['timeout'] = timeout
        if version is not None:
            options['version'] = version
        return self.client.prepare(**options).call(ctxt, method, **kwargs)

    def note(self, ctxt, value, host=None, fanout=False):
        cctxt = self.client.prepare(server=host, fanout=fanout)
        cctxt.cast(ctxt, 'note', value=value)


class InProcessRPCTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.flags(rpc_call_timeout=5)
        self.rpc = self.useFixture(rpc_fixture.InProcessRPC())
        self.one = Endpoint('one')
        self.two = Endpoint('two')
        self.rpc.serve(TOPIC, self.one, server='one')
        self.rpc.serve(TOPIC, self.two, server='two')
        self.api = TestAPI()

    def test_serialproxy_all_transport_is_the_in_process_driver(self):
        self.assertIsInstance(rpc._transport()._driver,
                              rpc_inprocess.InProcessDriver)

    def test_call_round_trip_converts_as_json_does_over_a_broker(self):
        when = datetime.datetime(2024, 1, 2, 3, 4, 5)
        result = self.api.echo(CTXT, 'one', numbers=(1, 2), tags={'a'},
                               when=when, raw=b'x')
        expected = {'numbers': [1, 2], 'tags': ['a'],
                    'when': '2024-01-02T03:04:05.000000', 'raw': 'x'}
        self.assertEqual({'server': 'one', 'kwargs': expected,
                          'pair': [1, 2]}, result)
        ctxt, kwargs = self.one.seen.get_nowait()
        self.assertEqual(CTXT, ctxt)
        self.assertEqual(expected, kwargs)

    def test_each_receiver_gets_its_own_copy(self):
        args = {'nested': {'list': [1]}}
        self.api.echo(CTXT, 'one', args=args)
        _, kwargs = self.one.seen.get_nowait()
        self.assertEqual(args, kwargs['args'])
        self.assertIsNot(args['nested'], kwargs['args']['nested'])

    def test_argument_json_cannot_carry_is_refused_before_sending(self):
        self.assertRaises(ValueError, self.api.echo, CTXT, 'one',
                          thing=object())
        self.assertTrue(self.one.seen.empty())

    def test_serialproxy_exception_arrives_as_itself(self):
        exc = self.assertRaises(exception.InstanceNotFound, self.api.call,
                                CTXT, 'one', 'not_found',
                                instance_uuid='abc')
        self.assertEqual({'instance_uuid': 'abc'}, exc.kwargs)
        self.assertIn('Instance abc could not be found.', str(exc))

    def test_unexpected_error_arrives_as_remote_error(self):
        exc = self.assertRaises(messaging.RemoteError, self.api.call,
                                CTXT, 'one', 'unexpected')
        self.assertEqual('Unexpected', exc.exc_type)
        self.assertEqual('boom', exc.value)

    def test_builtin_error_arrives_as_itself_as_over_a_broker(self):
        exc = self.assertRaises(ValueError, self.api.call,
                                CTXT, 'one', 'value_error')
        self.assertIn('bad value', str(exc))

    def test_missing_method_is_a_remote_no_such_method(self):
        exc = self.assertRaises(messaging.RemoteError, self.api.call,
                                CTXT, 'one', 'no_such_thing')
        self.assertEqual('NoSuchMethod', exc.exc_type)
        self.assertTrue(rpc.is_unsupported_method(exc))

    def test_newer_version_is_a_remote_unsupported_version(self):
        exc = self.assertRaises(messaging.RemoteError, self.api.call,
                                CTXT, 'one', 'echo', version='1.2')
        self.assertEqual('UnsupportedVersion', exc.exc_type)
        self.assertTrue(rpc.is_unsupported_method(exc))

    def test_call_to_a_server_nobody_runs_times_out(self):
        began = time.monotonic()
        self.assertRaises(messaging.MessagingTimeout, self.api.call,
                          CTXT, 'nobody', 'echo', timeout=0.2)
        self.assertLess(time.monotonic() - began, 2)

    def test_slow_answer_times_out_and_its_late_reply_is_dropped(self):
        self.assertRaises(messaging.MessagingTimeout, self.api.call,
                          CTXT, 'one', 'slow', timeout=0.1, seconds=0.3)
        time.sleep(0.4)
        self.assertEqual({'server': 'one', 'kwargs': {}, 'pair': [1, 2]},
                         self.api.echo(CTXT, 'one'))

    def test_cast_reaches_the_named_server(self):
        self.api.note(CTXT, 'hello', host='two')
        self.assertEqual('hello', self.two.seen.get(timeout=5))
        self.assertTrue(self.one.seen.empty())

    def test_cast_to_the_topic_reaches_one_server(self):
        self.api.note(CTXT, 'anyone')
        got = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            for endpoint in (self.one, self.two):
                try:
                    got.append(endpoint.seen.get(timeout=0.05))
                except queue.Empty:
                    pass
        time.sleep(0.1)
        self.assertEqual(['anyone'], got)
        self.assertTrue(self.one.seen.empty() and self.two.seen.empty())

    def test_fanout_cast_reaches_every_server(self):
        self.api.note(CTXT, 'all', fanout=True)
        self.assertEqual('all', self.one.seen.get(timeout=5))
        self.assertEqual('all', self.two.seen.get(timeout=5))

    def test_server_queue_keeps_messages_across_a_restart(self):
        server = rpc.get_server(
            messaging.Target(topic=TOPIC, server='three'),
            [Endpoint('three')])
        server.start()
        server.stop()
        server.wait()
        later = Endpoint('three')
        self.api.note(CTXT, 'while away', host='three')
        self.rpc.serve(TOPIC, later, server='three')
        self.assertEqual('while away', later.seen.get(timeout=5))

    def test_real_rpcapi_client_reaches_its_service(self):
        class Compute:
            target = messaging.Target(version='1.1')

            def get_serial_console(self, ctxt, instance_uuid, index=0):
                return {'host': '127.0.0.1', 'port': 10000 + index}

        self.rpc.serve(compute_rpcapi.TOPIC, Compute(), server='c1')
        self.assertEqual(
            {'host': '127.0.0.1', 'port': 10002},
            compute_rpcapi.ComputeAPI().get_serial_console(
                CTXT, 'c1', 'abc', index=2))

    def test_calls_answer_without_polling(self):
        began = time.monotonic()
        for i in range(1000):
            self.api.echo(CTXT, 'one', i=i)
        # oslo.messaging's fake driver needs 50 s for this, its listener
        # sleeping 50 ms between polls; woken at once, this takes about a
        # second, and a loaded machine (CI beside a benchmark) must not
        # make the difference look like a failure.
        self.assertLess(time.monotonic() - began, 20)

    def test_concurrent_callers_each_get_their_own_reply(self):
        results = {}

        def caller(n):
            results[n] = [self.api.echo(CTXT, 'two', n=n)['kwargs']['n']
                          for _ in range(20)]
        threads = [threading.Thread(target=caller, args=(n,))
                   for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual({n: [n] * 20 for n in range(8)}, results)


class NotificationTest(base.TestCase):
    def test_notifications_reach_a_listener(self):
        transport = rpc_inprocess.get_rpc_transport(sp_conf.CONF)
        self.addCleanup(transport.cleanup)
        notifications = messaging.transport.NotificationTransport(
            transport._driver)
        seen = queue.Queue()

        class Endpoint:
            def info(self, ctxt, publisher_id, event_type, payload,
                     metadata):
                seen.put((publisher_id, event_type, payload))

        notifier = messaging.Notifier(notifications, publisher_id='test',
                                      driver='messaging', topics=['n'])
        # Sent before anyone listens: waits in the topic's queue.
        notifier.info({}, 'thing.done', {'ids': (1, 2)})
        listener = messaging.get_notification_listener(
            notifications, [messaging.Target(topic='n')], [Endpoint()],
            executor='threading')
        listener.start()
        self.addCleanup(listener.wait)
        self.addCleanup(listener.stop)
        self.assertEqual(('test', 'thing.done', {'ids': [1, 2]}),
                         seen.get(timeout=5))


class EntryPointTest(base.TestCase):
    def test_setup_cfg_registers_the_driver_for_its_scheme(self):
        setup_cfg = os.path.join(os.path.dirname(__file__), '..', '..',
                                 'setup.cfg')
        config = configparser.ConfigParser()
        config.read(setup_cfg)
        drivers = config['entry_points']['oslo.messaging.drivers']
        name, _, target = drivers.strip().partition('=')
        self.assertEqual(rpc_inprocess.SCHEME, name.strip())
        self.assertEqual('serialproxy.rpc_inprocess:InProcessDriver',
                         target.strip())
