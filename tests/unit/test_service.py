import logging
import threading
import time
import urllib.request

import fixtures
import oslo_messaging as messaging

from serialproxy import exception
from serialproxy import service
from tests.unit import base


class ComputeServiceStartTest(base.TestCase):
    def test_bad_port_range_stops_the_agent_with_the_reason(self):
        self.flags(group='serial_console', port_range='20000:10000')
        exc = self.assertRaises(SystemExit, service.compute_service_or_exit,
                                'serialproxy-compute')
        self.assertEqual(
            "serialproxy-compute: [serial_console] port_range '20000:10000' "
            "is not valid: lo must be below hi. Expected \"lo:hi\" with "
            "1 <= lo < hi <= 65535.", exc.code)

    def test_unusable_pool_path_stops_the_agent_with_the_path(self):
        self.flags(group='compute', port_pool_path='/proc/no/pool.sqlite')
        exc = self.assertRaises(SystemExit, service.compute_service_or_exit,
                                'serialproxy-compute')
        self.assertIn('/proc/no/pool.sqlite', exc.code)


class PeriodicTest(base.TestCase):
    def run_periodic(self, outcomes, failure=RuntimeError('not yet'),
                     **kwargs):
        """Times of fn's calls; each call fails while outcomes say so."""
        calls = []
        done = threading.Event()

        def fn():
            calls.append(time.monotonic())
            if len(calls) == len(outcomes):
                done.set()
            if not outcomes[len(calls) - 1]:
                raise failure
        periodic = service.Periodic(name='test', fn=fn, **kwargs)
        started = time.monotonic()
        periodic.start()
        self.addCleanup(periodic.stop)
        self.assertTrue(done.wait(30))
        return started, calls

    def test_first_run_at_once_then_retried_sooner_than_the_interval(self):
        started, calls = self.run_periodic(
            [False, False, True], interval=3600, first_delay=0,
            retry_interval=0.05)
        # At once, then twice at the retry interval: never the hour.
        self.assertLess(calls[-1] - started, 20)
        self.assertGreaterEqual(calls[1] - calls[0], 0.05)

    def test_success_waits_the_interval_again(self):
        started, calls = self.run_periodic(
            [False, True, True], interval=0.5, first_delay=0,
            retry_interval=0.01)
        self.assertLess(calls[1] - calls[0], 0.4)
        self.assertGreaterEqual(calls[2] - calls[1], 0.5)

    def test_without_options_every_run_waits_the_interval(self):
        started, calls = self.run_periodic([False, True], interval=0.2)
        self.assertGreaterEqual(calls[0] - started, 0.2)
        self.assertGreaterEqual(calls[1] - calls[0], 0.2)

    def test_no_run_after_stop(self):
        calls = []
        periodic = service.Periodic(0.05, lambda: calls.append(1), 'test',
                                    first_delay=0)
        periodic.start()
        self.addCleanup(periodic.stop)
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(len(calls), 2)
        periodic.stop()
        # A run under way when stop() was called may finish.
        time.sleep(0.1)
        stopped_at = len(calls)
        time.sleep(0.3)
        self.assertEqual(stopped_at, len(calls))

    def test_failed_run_is_logged_with_its_task(self):
        logs = self.useFixture(fixtures.FakeLogger(level=logging.ERROR))
        self.run_periodic([False, True], interval=3600, first_delay=0,
                          retry_interval=0.05)
        self.assertIn('Periodic task test failed; next try in 0.05s',
                      logs.output)
        self.assertIn('RuntimeError: not yet', logs.output)

    def test_an_outage_is_a_warning_without_a_traceback(self):
        # A broker that does not answer in time, under load or restarting:
        # the next try is the remedy, not an operator's page.
        logs = self.useFixture(fixtures.FakeLogger(
            level=logging.WARNING, format='%(levelname)s %(message)s'))
        self.run_periodic(
            [False, True], failure=messaging.MessagingTimeout(
                'Timed out waiting for a reply to message ID 45fb'),
            interval=3600, first_delay=0, retry_interval=0.05)
        self.assertIn('WARNING Periodic task test failed; next try in '
                      '0.05s: Timed out waiting for a reply', logs.output)
        self.assertNotIn('Traceback', logs.output)
        self.assertEqual([], [r for r in logs.output.splitlines()
                              if r.startswith('ERROR')])

    def test_a_hypervisor_away_is_a_warning_too(self):
        logs = self.useFixture(fixtures.FakeLogger(
            level=logging.WARNING, format='%(levelname)s %(message)s'))
        self.run_periodic(
            [False, True],
            failure=exception.HypervisorUnavailable(host='cmp-1'),
            interval=3600, first_delay=0, retry_interval=0.05)
        self.assertIn('WARNING Periodic task test failed; next try in '
                      '0.05s: The compute host cmp-1 cannot reach its '
                      'hypervisor.', logs.output)
        self.assertNotIn('Traceback', logs.output)


class APIServiceStopTest(base.TestCase):
    """SIGTERM's stop(): requests in flight finish, new ones are not taken."""

    def slow_app(self, started, seconds):
        def app(environ, start_response):
            started.set()
            time.sleep(seconds)
            start_response('200 OK', [('Content-Type', 'text/plain')])
            self.finished.set()
            return [b'finished']
        return app

    def serve(self, seconds, drain_timeout):
        started = threading.Event()
        self.finished = threading.Event()
        api = service.APIService('127.0.0.1', 0,
                                 app=self.slow_app(started, seconds),
                                 drain_timeout=drain_timeout)
        api.start()
        url = 'http://127.0.0.1:%d/' % api.httpd.server_address[1]
        answers = []

        def ask():
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    answers.append((response.status, response.read()))
            except OSError as exc:
                answers.append(exc)
        client = threading.Thread(target=ask)
        client.start()
        self.assertTrue(started.wait(5))
        return api, url, client, answers

    def test_request_in_flight_finishes_and_new_ones_are_refused(self):
        api, url, client, answers = self.serve(1.0, drain_timeout=10)
        api.stop()
        # Not merely still running in a daemon thread: done before stop()
        # returned, so the process may exit.
        self.assertTrue(self.finished.is_set())
        client.join(10)
        self.assertEqual([(200, b'finished')], answers)
        self.assertRaises(OSError, urllib.request.urlopen, url, timeout=2)

    def test_drain_timeout_bounds_the_wait(self):
        api, _, client, _ = self.serve(3.0, drain_timeout=0.3)
        started = time.monotonic()
        api.stop()
        self.assertLess(time.monotonic() - started, 2)
        self.assertFalse(self.finished.is_set())
        client.join(10)


class RPCServiceStopTest(base.TestCase):
    """SIGTERM's stop(): calls being answered get rpc_drain_timeout."""

    class Server:
        """An RPC server whose last call ends when `finished` is set."""

        def __init__(self):
            self.finished = threading.Event()
            self.stopped = False

        def start(self):
            pass

        def stop(self):
            self.stopped = True

        def wait(self):
            self.finished.wait()

    def test_a_call_that_ends_in_time_is_waited_for(self):
        server = self.Server()
        logs = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        threading.Timer(0.2, server.finished.set).start()
        started = time.monotonic()
        service.RPCService(server).stop(drain_timeout=10)
        self.assertTrue(server.stopped)
        self.assertTrue(server.finished.is_set())
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual('', logs.output)

    def test_a_call_stuck_past_the_drain_is_left(self):
        # A reply retried to a caller that died waits a minute.
        server = self.Server()
        self.addCleanup(server.finished.set)
        self.flags(rpc_drain_timeout=0)
        logs = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        started = time.monotonic()
        service.RPCService(server).stop()
        self.assertLess(time.monotonic() - started, 5)
        self.assertFalse(server.finished.is_set())
        self.assertIn('RPC calls still running 0s after the stop',
                      logs.output)
