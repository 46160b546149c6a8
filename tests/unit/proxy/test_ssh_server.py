"""The SSH front door's rules that need no network: sign-in limits."""

from serialproxy.proxy import ssh_server
from tests.unit import base


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class AuthAttemptsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.attempts = ssh_server.AuthAttempts(3, clock=self.clock)

    def test_address_is_blocked_at_the_limit_of_failures(self):
        for _ in range(2):
            self.attempts.failed('198.51.100.1')
        self.assertFalse(self.attempts.blocked('198.51.100.1'))
        self.attempts.failed('198.51.100.1')
        self.assertTrue(self.attempts.blocked('198.51.100.1'))

    def test_other_addresses_are_not_blocked(self):
        for _ in range(3):
            self.attempts.failed('198.51.100.1')
        self.assertFalse(self.attempts.blocked('198.51.100.2'))

    def test_failures_older_than_a_minute_are_forgotten(self):
        for _ in range(3):
            self.attempts.failed('198.51.100.1')
        self.clock.now += ssh_server.RATE_WINDOW
        self.assertFalse(self.attempts.blocked('198.51.100.1'))
        # Nothing is kept for an address with no recent failures.
        self.assertEqual({}, dict(self.attempts._failures))
