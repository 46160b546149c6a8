"""The teardown check of every started service, shown to fail.

A tiny service started through the same machinery as the real ones
(tests/harness/services.py) misbehaves on purpose: it logs a traceback
or an error, exits non-zero on SIGTERM, does not stop, or dies of a
SIGKILL nobody in the test sent. The check must raise for each, and stay
quiet for a service that stops cleanly or whose error the test declared.
"""

import signal
import sys
import textwrap

import fixtures

from tests.harness import processes
from tests.harness import services
from tests.harness import testcase

# The service: prints what it is given, says it is ready, then waits for
# SIGTERM and answers it as told (an exit status, or "ignore").
SERVICE = textwrap.dedent('''
    import signal, sys, time
    log, on_term = sys.argv[1], sys.argv[2]
    def stop(signum, frame):
        if on_term != 'ignore':
            sys.exit(int(on_term))
    signal.signal(signal.SIGTERM, stop)
    print(log.replace('|', chr(10)), flush=True)
    print('ready', flush=True)
    while True:
        time.sleep(0.05)
''')
ORACLE_HEAD = '2026-12-06 08:00:00.123 4242'
TRACEBACK = ('Traceback (most recent call last):|  File "x.py", line 1, in '
             'serve|ValueError: the console core choked')


class ServiceChecksTest(testcase.TestCase):

    def start(self, log='', on_term='0', drain=10):
        """Services with the tiny service started; its cleanUp is the
        test's to call."""
        self.services = services.Services(
            self.useFixture(fixtures.TempDir()).path)
        self.services.setUp()
        proc = self.services.start(
            'tiny', [sys.executable, '-c', SERVICE, log, on_term],
            drain=drain)
        processes.wait_for(lambda: 'ready' in self.services.service(
            proc).log(), 30, 'the tiny service')
        return proc

    def assertCheckFails(self, *fragments):
        error = self.assertRaises(services.ServiceProblems,
                                  self.services.cleanUp)
        for fragment in fragments:
            self.assertIn(fragment, str(error))
        return error

    def test_a_clean_stop_with_a_quiet_log_passes(self):
        # A DEBUG record may name ERROR (oslo.log prints its own format
        # options at start); only the level counts.
        self.start(log='%s DEBUG oslo_service [-] logging_exception_prefix'
                   ' = %%(process)d ERROR %%(name)s|%s INFO x [-] fine'
                   % (ORACLE_HEAD, ORACLE_HEAD))
        self.services.cleanUp()

    def test_a_traceback_in_the_log_fails(self):
        self.start(log=TRACEBACK)
        self.assertCheckFails('tiny logged', 'ValueError: the console core')

    def test_an_error_record_fails(self):
        self.start(log='%s ERROR serialproxy.proxy.server [-] lost a lease'
                   % ORACLE_HEAD)
        self.assertCheckFails('tiny logged', 'lost a lease')

    def test_an_error_the_test_declared_passes(self):
        self.start(log='%s ERROR serialproxy.proxy.server [-] lost a lease'
                   '|%s ERROR serialproxy.proxy.server [-] Traceback (most '
                   'recent call last):|%s ERROR serialproxy.proxy.server [-]'
                   ' ConnectionResetError' % ((ORACLE_HEAD,) * 3))
        self.services.expect_log_error('lost a lease',
                                       'the test took the lease away')
        self.services.cleanUp()

    def test_a_declared_error_does_not_cover_another(self):
        self.start(log='%s ERROR a [-] lost a lease|2026-12-06 '
                   '08:00:01.456 4243 ERROR b [-] disk full' % ORACLE_HEAD)
        self.services.expect_log_error('lost a lease', 'the test did it')
        error = self.assertCheckFails('disk full',
                                      'lost a lease (the test did it)')
        self.assertNotIn('logged:\n%s ERROR a' % ORACLE_HEAD, str(error))

    def test_an_expected_error_needs_a_reason(self):
        self.start()
        self.assertRaises(ValueError, self.services.expect_log_error,
                          'lost a lease', '')
        self.services.cleanUp()

    def test_a_non_zero_exit_on_sigterm_fails(self):
        self.start(on_term='3')
        self.assertCheckFails('tiny exited with status 3 on SIGTERM')

    def test_a_service_that_outlives_its_drain_fails(self):
        self.start(on_term='ignore', drain=1)
        self.assertCheckFails('tiny did not exit within 1s of SIGTERM')

    def test_a_sigkill_nobody_sent_fails(self):
        proc = self.start()
        proc.send_signal(signal.SIGKILL)  # as the OOM killer would
        proc.wait()
        self.assertCheckFails('tiny killed by SIGKILL (nobody sent it')

    def test_a_crash_the_test_causes_passes(self):
        processes.crash(self.start())
        self.services.cleanUp()

    def test_a_stop_the_test_asks_for_must_still_be_clean(self):
        proc = self.start(on_term='1')
        self.services.stop(proc)
        self.assertCheckFails('tiny exited with status 1 on SIGTERM')
