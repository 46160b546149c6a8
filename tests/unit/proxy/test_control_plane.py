"""The control plane's replays of recent output: batched per compute
host, each session with its own count of lines."""

import asyncio
import threading

from serialproxy import exception
from serialproxy import rpc
from serialproxy.proxy import console as leased_console
from serialproxy.proxy import control_plane
from serialproxy.proxy import server
from tests.unit import base


def console(instance_uuid, index=0, compute_host='compute-1'):
    return leased_console.Console.from_answer(
        {'instance_uuid': instance_uuid, 'index': index,
         'console_type': 'serial', 'compute_host': compute_host,
         'host': '127.0.0.1', 'port': 10000, 'expires_at': 2e9})


class CountingCompute:
    """get_console_outputs that answers 'uuid:lines' and records each
    call; the first call waits until let_go is set, so that the requests
    made meanwhile leave together in the next."""

    def __init__(self, failing_counts=()):
        self.calls = []
        self.let_go = threading.Event()
        self.failing_counts = failing_counts

    def get_console_outputs(self, ctxt, host, instance_uuids, length=None):
        if not self.calls:
            self.let_go.wait(5)
        self.calls.append((host, list(instance_uuids), length))
        if length in self.failing_counts:
            raise exception.HypervisorUnavailable(host=host)
        return [rpc.batch_value('%s:%d\n' % (uuid, length))
                for uuid in instance_uuids]


class RecentOutputTest(base.TestCase):

    def control_plane(self, compute, **settings):
        plane = control_plane.ControlPlane(
            server.ProxySettings(**settings), None, compute,
            lambda *args: None)
        self.addCleanup(plane.executor.shutdown)
        return plane

    def replays(self, plane, compute, requests):
        """What each (console, lines) request got, the first alone and
        the rest in the one call after it."""
        async def run():
            first = asyncio.ensure_future(plane.recent_output(*requests[0]))
            await asyncio.sleep(0.05)
            rest = [asyncio.ensure_future(plane.recent_output(*request))
                    for request in requests[1:]]
            await asyncio.sleep(0)
            compute.let_go.set()
            return await asyncio.gather(first, *rest)
        return asyncio.run(run())

    def test_sessions_of_one_batch_get_their_own_count_of_lines(self):
        compute = CountingCompute()
        plane = self.control_plane(compute, replay_lines=50)
        got = self.replays(plane, compute, [
            (console('i-0'), None), (console('i-1'), 3),
            (console('i-2'), None), (console('i-3'), 3),
            (console('i-4'), 500)])
        for answer, expected in zip(got, (b'i-0:50', b'i-1:3', b'i-2:50',
                                          b'i-3:3', b'i-4:500')):
            self.assertIn(expected + b'\r\n', answer)
        first, *batch = compute.calls
        self.assertEqual(('compute-1', ['i-0'], 50), first)
        # The batch after it: one call per count, not one per session.
        self.assertEqual(sorted([('compute-1', ['i-1', 'i-3'], 3),
                                 ('compute-1', ['i-2'], 50),
                                 ('compute-1', ['i-4'], 500)]),
                         sorted(batch))

    def test_a_failing_count_leaves_the_others_their_replay(self):
        compute = CountingCompute(failing_counts=(3,))
        plane = self.control_plane(compute, replay_lines=50)
        got = self.replays(plane, compute, [
            (console('i-0'), None), (console('i-1'), 3),
            (console('i-2'), 7)])
        self.assertIn(b'i-0:50', got[0])
        # No replay, and the console still opens.
        self.assertEqual(b'', got[1])
        self.assertIn(b'i-2:7', got[2])

    def test_zero_lines_asks_nothing(self):
        compute = CountingCompute()
        compute.let_go.set()
        plane = self.control_plane(compute, replay_lines=50)
        self.assertEqual(b'', asyncio.run(plane.recent_output(
            console('i-0'), 0)))
        self.assertEqual([], compute.calls)

    def test_lines_asked_for_replay_where_the_default_is_off(self):
        compute = CountingCompute()
        compute.let_go.set()
        plane = self.control_plane(compute, replay_lines=0)
        self.assertEqual(b'', asyncio.run(plane.recent_output(
            console('i-0'))))
        self.assertIn(b'i-0:2', asyncio.run(plane.recent_output(
            console('i-0'), 2)))

    def test_ports_other_than_0_have_no_log_to_replay(self):
        compute = CountingCompute()
        compute.let_go.set()
        plane = self.control_plane(compute, replay_lines=50)
        self.assertEqual(b'', asyncio.run(plane.recent_output(
            console('i-0', index=1), 5)))
        self.assertEqual([], compute.calls)
