"""Failed SSH sign-ins per address, in a sliding minute, shared by the
processes forked after the table was made."""

import os

from serialproxy.proxy import sign_in_failures
from tests.unit import base


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class SignInFailuresTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.failures = sign_in_failures.SignInFailures(3, clock=self.clock)

    def test_address_is_blocked_at_the_limit_of_failures(self):
        for _ in range(2):
            self.failures.failed('198.51.100.1')
        self.assertFalse(self.failures.blocked('198.51.100.1'))
        self.failures.failed('198.51.100.1')
        self.assertTrue(self.failures.blocked('198.51.100.1'))

    def test_other_addresses_are_not_blocked(self):
        for _ in range(3):
            self.failures.failed('198.51.100.1')
        self.assertFalse(self.failures.blocked('198.51.100.2'))

    def test_failures_older_than_a_minute_are_forgotten(self):
        for _ in range(3):
            self.failures.failed('198.51.100.1')
        self.clock.now += sign_in_failures.RATE_WINDOW
        self.assertFalse(self.failures.blocked('198.51.100.1'))

    def test_the_minute_slides(self):
        # Two failures, then one 40 s later: blocked until the first two
        # are a minute old, not for a fixed minute from the first.
        self.failures.failed('198.51.100.1')
        self.failures.failed('198.51.100.1')
        self.clock.now += 40
        self.failures.failed('198.51.100.1')
        self.assertTrue(self.failures.blocked('198.51.100.1'))
        self.clock.now += 20
        self.assertFalse(self.failures.blocked('198.51.100.1'))
        self.failures.failed('198.51.100.1')
        self.assertFalse(self.failures.blocked('198.51.100.1'))
        self.failures.failed('198.51.100.1')
        self.assertTrue(self.failures.blocked('198.51.100.1'))

    def test_many_addresses_in_a_small_table_block_none_by_mistake(self):
        small = sign_in_failures.SignInFailures(3, slots=16,
                                                clock=self.clock)
        for n in range(200):
            small.failed('203.0.113.%d' % n)
        self.assertFalse(any(small.blocked('203.0.113.%d' % n)
                             for n in range(200)))
        for _ in range(3):
            small.failed('198.51.100.1')
        self.assertTrue(small.blocked('198.51.100.1'))

    def test_failures_in_a_forked_worker_block_the_address_in_others(self):
        # As the proxy's parent does: the table is made, then workers
        # fork; what one worker counts the others see.
        failures = sign_in_failures.SignInFailures(3)
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(3):
                    failures.failed('198.51.100.1')
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(0, status)
        self.assertTrue(failures.blocked('198.51.100.1'))
        self.assertFalse(failures.blocked('198.51.100.2'))
