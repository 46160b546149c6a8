import inspect

import oslo_messaging as messaging

from serialproxy import exception
from serialproxy.proxy import refusals
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy.refusals import RefusalKind
from tests.unit import base


def refusing_errors():
    """Every error class of serialproxy.exception that may refuse a
    console."""
    return [cls for _, cls in inspect.getmembers(exception, inspect.isclass)
            if issubclass(cls, exception.SerialProxyException) and
            cls.refusal_kind is not None]


class RefusalKindTest(base.TestCase):
    def test_a_refusal_without_a_kind_takes_its_statuss(self):
        self.assertIs(RefusalKind.METHOD, Refusal(405, 'x').kind)
        self.assertIs(RefusalKind.INTERNAL, Refusal(418, 'x').kind)
        self.assertIs(RefusalKind.TIMEOUT, Refusal(503, 'x', 'timeout').kind)

    def test_a_kind_outside_the_list_is_a_bug_found_at_once(self):
        self.assertRaises(ValueError, Refusal, 400, 'x', 'no_such_kind')

    def test_every_refusing_error_carries_a_kind_and_a_status(self):
        errors = refusing_errors()
        self.assertIn(exception.SSHKeyRefused, errors)
        for cls in errors:
            self.assertIsInstance(cls.refusal_kind, RefusalKind, cls)
            self.assertTrue(400 <= cls.code < 600, cls)

    def test_errors_are_refused_as_they_say(self):
        cases = [
            (exception.InvalidToken(), 401, 'Invalid or expired token',
             RefusalKind.INVALID_TOKEN),
            (exception.SSHKeyRefused(ttl=60), 401,
             exception.SSHKeyRefused(ttl=60).message,
             RefusalKind.INVALID_TOKEN),
            (exception.ConsoleNotInUse(), 409,
             exception.ConsoleNotInUse().message, RefusalKind.NOT_IN_USE),
            (exception.ModeNotAllowed(mode='take_over'), 403,
             'This console URL does not allow mode=take_over',
             RefusalKind.MODE),
            (exception.TooManySpectators(limit=2), 429,
             'This console already has 2 spectators',
             RefusalKind.MAX_SPECTATORS),
            (exception.DatabaseUnavailable(), 503,
             'Console service unavailable', RefusalKind.UNAVAILABLE),
            (messaging.MessagingTimeout(), 503,
             'Console service unavailable', RefusalKind.UNAVAILABLE),
            (ConnectionResetError(), 503, 'Console unreachable',
             RefusalKind.UNAVAILABLE),
            # Not a refusal: a bug, whose text is never answered.
            (exception.InstanceNotFound(instance_uuid='i-1'), 500,
             'Internal error', RefusalKind.INTERNAL),
        ]
        for error, status, reason, kind in cases:
            refusal = refusals.from_error(error)
            self.assertEqual((status, reason, kind),
                             (refusal.status, refusal.reason, refusal.kind))

    def test_missing_token_is_401(self):
        refusal = refusals.missing_token()
        self.assertEqual((401, 'Missing token', RefusalKind.INVALID_TOKEN),
                         (refusal.status, refusal.reason, refusal.kind))
