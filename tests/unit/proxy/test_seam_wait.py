"""How long a resumed session's live output waits for the log: a log
that never reaches it (virtlogd stopped) ends the session to resume
again, rather than join with a hole or hold the client for ever."""

import asyncio

import fixtures

from serialproxy.proxy import console_layer
from tests.unit import base


class StalledSeamSession:
    """A session at its seam whose live output the log never reaches."""

    session_id = 'sid'

    def __init__(self):
        self.at_seam = True
        self.seam_idle = False
        self.seam_holds_live = True
        self.seam = type('Seam', (), {'tail_start': 10, 'decision': None})()
        self.tail_reads = 0

    def seam_tail(self, tail, asked, final=False):
        self.tail_reads += 1
        return []

    def seam_failed(self):
        self.at_seam = False
        return ['told to resume again']


class StalledLog:
    async def console_history(self, console, start):
        return {'data': b'', 'start': start, 'next': start,
                'first_available': 0, 'end': start}


class SeamLogWaitTest(base.TestCase):

    def join(self, session):
        layer = console_layer.ConsoleLayer.__new__(console_layer.ConsoleLayer)
        layer.session = session
        layer.services = StalledLog()
        carried = []
        layer.carry_out = carried.extend
        asyncio.run(asyncio.wait_for(layer._join_seam(None, None), 5))
        return carried

    def test_a_log_that_never_reaches_live_output_fails_the_seam(self):
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.console_layer.SEAM_LOG_WAIT', 0.4))
        logger = self.useFixture(fixtures.FakeLogger(
            name='serialproxy.proxy.console_layer'))
        session = StalledSeamSession()
        self.assertEqual(['told to resume again'], self.join(session))
        self.assertFalse(session.at_seam)
        # It kept reading the log until then, quiet or not (some 6
        # reads in 0.4 s; fewer on a loaded machine).
        self.assertGreater(session.tail_reads, 2)
        self.assertIn('Console session sid: its log did not reach live '
                      'output in 0 s', logger.output)

    def test_a_stalled_log_is_read_less_and_less_often(self):
        # At SEAM_RETRY throughout, 1.5 s of waiting would be 150 reads
        # (an RPC to the compute agent each); backing off to
        # SEAM_RETRY_MAX it is about a dozen.
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.console_layer.SEAM_LOG_WAIT', 1.5))
        session = StalledSeamSession()
        self.assertEqual(['told to resume again'], self.join(session))
        self.assertGreater(session.tail_reads, 3)
        self.assertLess(session.tail_reads, 20)

    def test_a_log_still_growing_is_read_at_once_again(self):
        # The log moves toward the live output held: no backing off.
        session = StalledSeamSession()

        class GrowingLog:
            async def console_history(self, console, start):
                session.log_end = getattr(session, 'log_end', 0) + 1
                if session.tail_reads >= 30:
                    session.at_seam = False  # joined
                return {'data': b'x', 'start': start,
                        'next': session.log_end, 'first_available': 0,
                        'end': session.log_end}
        layer = console_layer.ConsoleLayer.__new__(console_layer.ConsoleLayer)
        layer.session = session
        layer.services = GrowingLog()
        layer.carry_out = [].extend
        began = asyncio.run(self.timed(layer._join_seam(None, None)))
        self.assertGreaterEqual(session.tail_reads, 30)
        # 30 reads at SEAM_RETRY; backing off would take over 3 s.
        self.assertLess(began, 1.5)

    @staticmethod
    async def timed(coro):
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(coro, 5)
        return loop.time() - start

    def test_no_live_output_held_is_no_wait_to_bound(self):
        # An idle guest's seam waits for its next output without end:
        # only held live output starts the clock.
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.console_layer.SEAM_LOG_WAIT', 0.05))
        session = StalledSeamSession()
        session.seam_holds_live = False
        original = session.seam_tail

        def tail_then_leave(*args, **kwargs):
            if session.tail_reads >= 40:
                session.at_seam = False  # the client left
            return original(*args, **kwargs)
        session.seam_tail = tail_then_leave
        self.assertEqual([], self.join(session))
        self.assertGreaterEqual(session.tail_reads, 40)
