import sys

from oslo_messaging._drivers import common as messaging_common

from serialproxy import exception
from serialproxy import rpc
from tests.unit import base


class SummaryTest(base.TestCase):
    def test_a_remote_failure_is_summed_up_without_its_traceback(self):
        try:
            raise exception.DatabaseUnavailable()
        except exception.DatabaseUnavailable:
            data = messaging_common.serialize_remote_exception(
                sys.exc_info())
        remote = messaging_common.deserialize_remote_exception(
            data, ['serialproxy.exception'])
        self.assertIn('Traceback', str(remote))  # what it arrives with
        self.assertEqual('The console service cannot reach its database; '
                         'try again later.', rpc.summary(remote))

    def test_a_local_failure_is_its_message_or_its_name(self):
        self.assertEqual('boom', rpc.summary(ValueError('boom')))
        self.assertEqual('TimeoutError', rpc.summary(TimeoutError()))
