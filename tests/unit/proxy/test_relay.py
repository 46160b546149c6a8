"""The relay's records, encoded by a watcher and decoded in pieces."""

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import relay
from tests.unit import base


class FakeTransport:
    def __init__(self, buffered=0):
        self.sent = b''
        self.buffered = buffered
        self.aborted = self.closed = False

    def get_write_buffer_size(self):
        return self.buffered

    def writelines(self, chunks):
        self.sent += b''.join(chunks)

    def write(self, data):
        self.sent += data

    def abort(self):
        self.aborted = True

    def close(self):
        self.closed = True


def watcher(transport):
    w = relay.RelayWatcher(registry=None)
    w.transport = transport
    return w


class RelayRecordsTest(base.TestCase):
    def test_output_and_end_survive_any_split(self):
        transport = FakeTransport()
        w = watcher(transport)
        w.send(b'hello', limit=100)
        w.send(b'', limit=100)
        w.send(b'world\r\n', limit=100)
        w.end(CloseCode.OPERATOR_DISCONNECT, 'Disconnected by an operator')
        self.assertTrue(transport.closed)
        wire = transport.sent + b'ignored after the end'
        for size in (1, 2, 3, 7, len(wire)):
            decoder = relay.RelayDecoder()
            events = []
            for start in range(0, len(wire), size):
                events += decoder.feed(wire[start:start + size])
            self.assertEqual(
                [('output', b'hello'), ('output', b''),
                 ('output', b'world\r\n'),
                 ('end', 4001, 'Disconnected by an operator')], events)

    def test_watcher_too_far_behind_is_dropped_not_waited_for(self):
        transport = FakeTransport(buffered=101)
        watcher(transport).send(b'x', limit=100)
        self.assertTrue(transport.aborted)
        self.assertEqual(b'', transport.sent)

    def test_garbage_is_refused(self):
        self.assertRaises(ValueError, relay.RelayDecoder().feed, b'GET /')

    def test_address_round_trip(self):
        self.assertEqual(('::1', 7000), relay.split_address('[::1]:7000'))
        self.assertEqual(('10.0.0.5', 7000),
                         relay.split_address('10.0.0.5:7000'))
