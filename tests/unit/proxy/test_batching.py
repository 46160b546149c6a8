import asyncio
import concurrent.futures
import threading

from serialproxy import exception
from serialproxy.proxy import batching
from tests.unit import base


class GatedCall:
    """A batch call that blocks until released, recording its batches."""

    def __init__(self):
        self.batches = []
        self.gate = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        self.gate.wait(5)
        return [exception.InvalidToken() if item == 'bad' else item * 2
                for item in items]


class BatcherTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.executor = concurrent.futures.ThreadPoolExecutor(4)
        self.addCleanup(self.executor.shutdown)

    def run_async(self, scenario):
        return asyncio.run(asyncio.wait_for(scenario(), 10))

    def test_a_lone_request_leaves_at_once(self):
        call = GatedCall()
        call.gate.set()

        async def scenario():
            batcher = batching.Batcher(call, self.executor, slots=1)
            return await batcher.submit(21)

        self.assertEqual(42, self.run_async(scenario))
        self.assertEqual([[21]], call.batches)

    def test_requests_arriving_while_slots_are_busy_share_one_call(self):
        call = GatedCall()

        async def scenario():
            batcher = batching.Batcher(call, self.executor, slots=1)
            first = batcher.submit(1)
            await asyncio.sleep(0.05)
            later = [batcher.submit(n) for n in (2, 'bad', 4)]
            call.gate.set()
            results = await asyncio.gather(first, *later,
                                           return_exceptions=True)
            await batcher.drained()
            return results

        results = self.run_async(scenario)
        self.assertEqual([[1], [2, 'bad', 4]], call.batches)
        self.assertEqual([2, 4], results[:2])
        self.assertIsInstance(results[2], exception.InvalidToken)
        self.assertEqual(8, results[3])

    def test_batches_are_cut_at_max_items(self):
        call = GatedCall()
        call.gate.set()

        async def scenario():
            batcher = batching.Batcher(call, self.executor, slots=1,
                                       max_items=2)
            return await asyncio.gather(*(batcher.submit(n)
                                          for n in range(5)))

        self.assertEqual([0, 2, 4, 6, 8], self.run_async(scenario))
        self.assertEqual([[0], [1, 2], [3, 4]], call.batches)

    def test_a_failed_call_fails_each_of_its_requests(self):
        def broken(items):
            raise exception.ServiceUnavailable(service='consoleauth')

        async def scenario():
            batcher = batching.Batcher(broken, self.executor, slots=1)
            return await asyncio.gather(
                *(batcher.submit(n) for n in range(3)),
                return_exceptions=True)

        for result in self.run_async(scenario):
            self.assertIsInstance(result, exception.ServiceUnavailable)

    def test_a_value_nobody_waits_for_goes_to_orphan(self):
        call = GatedCall()
        orphans = []

        async def scenario():
            batcher = batching.Batcher(call, self.executor, slots=1,
                                       orphan=orphans.append)
            abandoned = batcher.submit(5)
            abandoned.cancel()
            call.gate.set()
            await batcher.drained()

        self.run_async(scenario)
        self.assertEqual([10], orphans)
