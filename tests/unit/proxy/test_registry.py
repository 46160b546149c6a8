import types

from serialproxy.proxy import registry
from tests.unit import base


class Counting:
    def __init__(self):
        self.opened = self.closed = 0

    def connection_opened(self):
        self.opened += 1

    def connection_closed(self):
        self.closed += 1


class FakeConnection:
    def __init__(self, session_id, is_open=True):
        self.session = types.SimpleNamespace(
            session_id=session_id, is_open=is_open, bytes_to_guest=3,
            bytes_to_client=5)
        self.closed_with = None

    def close_session(self, code, reason):
        self.closed_with = (code, reason)


class ConnectionRegistryTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.admission = Counting()
        self.metrics = Counting()
        self.registry = registry.ConnectionRegistry(self.admission,
                                                    self.metrics)

    def test_connections_are_counted_in_and_out(self):
        connection = FakeConnection('s-1')
        self.registry.opened(connection)
        self.assertEqual({connection}, self.registry.connections)
        self.registry.closed(connection)
        self.assertEqual(set(), self.registry.connections)
        self.assertEqual((1, 1, 1, 1),
                         (self.admission.opened, self.admission.closed,
                          self.metrics.opened, self.metrics.closed))

    def test_a_relay_key_reaches_its_open_writer_only(self):
        writer = FakeConnection('s-1')
        self.registry.session_started(writer, relay_key='k-1')
        self.assertIs(writer, self.registry.writer_of('k-1'))
        self.assertIsNone(self.registry.writer_of('k-2'))
        writer.session.is_open = False
        self.assertIsNone(self.registry.writer_of('k-1'))
        self.registry.session_ended(writer, relay_key='k-1')
        writer.session.is_open = True
        self.assertIsNone(self.registry.writer_of('k-1'))
        self.assertEqual({}, self.registry.sessions)

    def test_disconnect_closes_the_sessions_held_here_only(self):
        held = FakeConnection('s-1')
        self.registry.session_started(held)
        self.registry.disconnect(['s-1', 'elsewhere'], 4001, 'bye')
        self.assertEqual((4001, 'bye'), held.closed_with)

    def test_renewal_reports_name_every_open_session(self):
        self.registry.session_started(FakeConnection('s-1'))
        self.assertEqual([{'id': 's-1', 'bytes_to_guest': 3,
                           'bytes_to_client': 5}],
                         self.registry.renewal_reports())
