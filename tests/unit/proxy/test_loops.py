"""Session loops: threads with descriptor tables of their own, for real."""

import asyncio
import errno
import logging
import os
import resource
import socket
import threading
import time

from serialproxy.proxy import loops
from tests.unit import base


class SessionLoopTest(base.TestCase):
    def start_loop(self, name='test-loop', inherit=()):
        session_loop = loops.SessionLoop(name, inherit=inherit)
        session_loop.start()
        self.addCleanup(session_loop.stop)
        return session_loop

    def on_loop(self, session_loop, function, *args):
        async def call():
            return function(*args)
        return session_loop.run(call()).result(10)

    def test_a_loop_keeps_what_it_inherits_and_closes_the_rest(self):
        kept, dropped = socket.socketpair()
        self.addCleanup(kept.close)
        self.addCleanup(dropped.close)
        session_loop = self.start_loop(inherit=[kept.fileno()])

        def alive(fd):
            try:
                os.fstat(fd)
                return True
            except OSError as exc:
                self.assertEqual(errno.EBADF, exc.errno)
                return False
        self.assertTrue(self.on_loop(session_loop, alive, kept.fileno()))
        self.assertFalse(self.on_loop(session_loop, alive, dropped.fileno()))
        # The main table is untouched.
        self.assertTrue(alive(dropped.fileno()))

    def test_descriptors_a_loop_opens_are_not_in_the_main_table(self):
        session_loop = self.start_loop()
        opened = self.on_loop(session_loop, socket.socket)
        self.addCleanup(self.on_loop, session_loop, opened.close)
        fd = opened.fileno()
        there = self.on_loop(session_loop, lambda: os.fstat(fd).st_ino)
        try:
            here = os.fstat(fd).st_ino
        except OSError:
            here = None
        self.assertNotEqual(there, here)

    def test_two_loops_hold_more_descriptors_than_one_table_allows(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = 256
        self.assertLess(limit, soft)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE,
                        (soft, hard))
        first, second = self.start_loop('one'), self.start_loop('two')
        held = {first: [], second: []}

        def fill(sockets):
            try:
                while True:
                    sockets.append(socket.socket())
            except OSError as exc:
                self.assertEqual(errno.EMFILE, exc.errno)
            return len(sockets)

        counts = [self.on_loop(session_loop, fill, held[session_loop])
                  for session_loop in (first, second)]
        for session_loop, sockets in held.items():
            self.addCleanup(self.on_loop, session_loop,
                            lambda s=sockets: [x.close() for x in s])
        # Each table filled up to the limit, by itself.
        for count in counts:
            self.assertGreater(count, limit - 16)
        self.assertGreater(sum(counts), limit + 200)

    def test_other_threads_wake_a_loop(self):
        session_loop = self.start_loop()
        executor = loops.prestarted_executor(2, 'test-wake')
        self.addCleanup(executor.shutdown)
        ran_on = []
        done = threading.Event()

        def record():
            ran_on.append(threading.current_thread().name)
            done.set()
        executor.submit(session_loop.call, record).result(5)
        self.assertTrue(done.wait(5))
        self.assertEqual(['test-loop'], ran_on)


class HandingBackTest(base.TestCase):
    def test_a_loop_hands_results_back_to_the_loop_it_wakes(self):
        async def scenario():
            main_loop = asyncio.get_running_loop()
            session_loop = loops.SessionLoop('handing-back',
                                             wakes=[main_loop])
            session_loop.start()
            try:
                async def work():
                    # Long enough for the main loop to sleep in epoll_wait:
                    # only a write to its self-pipe wakes it then.
                    await asyncio.sleep(0.3)
                    # Descriptors of its own, possibly at numbers the main
                    # table uses for something else.
                    sockets = [socket.socket() for _ in range(8)]
                    for sock in sockets:
                        sock.close()
                    return threading.current_thread().name
                started = time.monotonic()
                name = await asyncio.wait_for(
                    asyncio.wrap_future(session_loop.run(work())), 10)
                return name, time.monotonic() - started
            finally:
                session_loop.stop()
        name, seconds = asyncio.run(scenario())
        self.assertEqual('handing-back', name)
        # Woken by the result, not by wait_for's own timer.
        self.assertLess(seconds, 3)


class PrestartedExecutorTest(base.TestCase):
    def test_every_thread_exists_before_the_first_task(self):
        def pool_threads():
            return {t for t in threading.enumerate()
                    if t.name.startswith('test-pool')}
        executor = loops.prestarted_executor(4, 'test-pool')
        self.addCleanup(executor.shutdown)
        before = pool_threads()
        self.assertEqual(4, len(before))
        barrier = threading.Barrier(4)
        for future in [executor.submit(barrier.wait, 5) for _ in range(4)]:
            future.result(10)
        self.assertEqual(before, pool_threads())


class RecordingHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append((threading.current_thread().name,
                             record.getMessage()))


class LoggingQueueTest(base.TestCase):
    def test_records_of_a_session_loop_are_written_by_the_writer(self):
        root = logging.getLogger()
        handler = RecordingHandler()
        root.addHandler(handler)
        self.addCleanup(root.removeHandler, handler)
        old_level = root.level
        root.setLevel(logging.INFO)
        self.addCleanup(root.setLevel, old_level)
        queue = loops.LoggingQueue()
        queue.start()
        self.addCleanup(queue.stop)
        self.assertNotIn(handler, root.handlers)

        session_loop = loops.SessionLoop('logging-loop')
        session_loop.start()
        self.addCleanup(session_loop.stop)

        async def log():
            logging.getLogger('serialproxy.test').info('from %s', 'a loop')
        session_loop.run(log()).result(5)
        queue.stop()
        self.assertIn(handler, root.handlers)
        (thread, message), = [r for r in handler.records
                              if r[1] == 'from a loop']
        self.assertNotEqual('logging-loop', thread)

    def test_stop_puts_the_handlers_back(self):
        root = logging.getLogger()
        before = list(root.handlers)
        queue = loops.LoggingQueue()
        queue.start()
        queue.stop()
        self.assertEqual(before, root.handlers)
