import threading
import time
import urllib.request

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
    def run_periodic(self, outcomes, **kwargs):
        """Times of fn's calls; each call fails while outcomes say so."""
        calls = []
        done = threading.Event()

        def fn():
            calls.append(time.monotonic())
            if len(calls) == len(outcomes):
                done.set()
            if not outcomes[len(calls) - 1]:
                raise RuntimeError('not yet')
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
