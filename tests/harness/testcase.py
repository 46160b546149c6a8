"""The test case every suite derives from: each test has a time limit.

OS_TEST_TIMEOUT (seconds; tox.ini sets it per environment, unset or 0
means none) bounds each test, its setUp and cleanups included, and the
class-level set-up of a shared world: a hang fails one test with a
TimeoutException and its traceback instead of stalling the run.
"""

import contextlib
import os

import fixtures
import testtools


def time_limit():
    """OS_TEST_TIMEOUT in seconds; 0 for none."""
    value = os.environ.get('OS_TEST_TIMEOUT', '0')
    try:
        return int(value)
    except ValueError:
        raise ValueError('OS_TEST_TIMEOUT must be whole seconds, not %r'
                         % value)


@contextlib.contextmanager
def limited():
    """The same limit around code outside a test (setUpClass)."""
    limit = time_limit()
    if limit <= 0:
        yield
        return
    with fixtures.Timeout(limit, gentle=True):
        yield


class TestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        limit = time_limit()
        if limit > 0:
            self.useFixture(fixtures.Timeout(limit, gentle=True))
