"""Concurrent requests of one kind carried by one RPC call.

During a burst of new sessions (a proxy restart, a thousand browsers
reconnecting) each RPC round trip costs the proxy, the broker and
consoleauth more CPU than the one lease it carries, and a call carrying
every request that arrived meanwhile costs hardly more than a call
carrying one. Nothing waits for a batch to fill: a request is sent at once
when fewer than `slots` calls are in flight, and otherwise leaves with
the next call, so a lone user pays no latency for it.
"""

import asyncio
import collections

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class Batcher:
    """Turns many awaited requests into few blocking batch calls.

    call(items) runs on executor and returns one result per item, in
    order: a value, or an exception instance that is raised to that
    item's caller alone. An exception raised by call itself is raised to
    every caller of the batch. orphan(result) is given each value whose
    caller stopped waiting (a cancelled task), so that what it holds (a
    lease) can be given back.
    """

    def __init__(self, call, executor, slots=2, max_items=100,
                 orphan=None):
        self._call = call
        self._executor = executor
        self._slots = slots
        self._max_items = max_items
        self._orphan = orphan
        self._waiting = collections.deque()
        self._in_flight = 0
        self._idle_waiters = []

    async def drained(self):
        """Return once every request submitted so far is answered."""
        if self._waiting or self._in_flight:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def submit(self, item):
        """A future of item's result; the request leaves as soon as a
        slot is free."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._dispatch()
        return future

    def _dispatch(self):
        loop = asyncio.get_running_loop()
        while self._waiting and self._in_flight < self._slots:
            batch = [self._waiting.popleft() for _ in range(
                min(self._max_items, len(self._waiting)))]
            self._in_flight += 1
            call = loop.run_in_executor(self._executor, self._call,
                                        [item for item, _ in batch])
            call.add_done_callback(
                lambda done, batch=batch: self._answer(batch, done))

    def _answer(self, batch, done):
        self._in_flight -= 1
        if done.cancelled():
            results = [asyncio.CancelledError()] * len(batch)
        else:
            try:
                results = done.result()
                if len(results) != len(batch):
                    raise RuntimeError('%d answers to %d requests' % (
                        len(results), len(batch)))
            except Exception as exc:
                results = [exc] * len(batch)
        for (_, future), result in zip(batch, results):
            if future.done():
                if not isinstance(result, BaseException) and self._orphan:
                    self._orphan(result)
            elif isinstance(result, asyncio.CancelledError):
                future.cancel()
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._dispatch()
        if not (self._waiting or self._in_flight):
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
