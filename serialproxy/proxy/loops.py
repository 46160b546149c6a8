"""Session loops: event loops on threads with descriptor tables of their own.

A session holds two sockets, and RLIMIT_NOFILE caps the descriptor numbers
of one descriptor table, so a host whose hard limit is 20,000 cannot hold
10,000 sessions in one table. A thread that calls unshare(CLONE_FILES) gets
a table of its own under the same limit: N session loops hold N times as
many sessions, still in one process and one address space.

Descriptor numbers mean something only in the table that made them. The
rules that keep them meaningful:

* A session loop (its epoll and its self-pipe) is made in the main thread,
  before its thread leaves the shared table, so any thread can still wake
  it: call_soon_threadsafe writes to the self-pipe by number.
* The loop's thread closes every other descriptor it inherited, except
  the self-pipes of the loops it wakes (the main loop, for results it
  hands back), then only ever uses descriptors it opened itself; it never
  hands one to another thread. Waking a loop whose self-pipe it closed
  would write to whatever socket reused that number.
* Blocking work (RPC) runs on executor threads started in the main thread
  (prestarted_executor), so RPC connections live in the shared table.
* Log records from every thread go through a queue to one writer thread
  of the shared table (route_logging_through_queue).
"""

import asyncio
import concurrent.futures
import copy
import ctypes
import logging
import logging.handlers
import os
import queue
import threading

CLONE_FILES = 0x400

_libc = ctypes.CDLL(None, use_errno=True)


def unshare_descriptor_table():
    """Give the calling thread a private copy of the descriptor table."""
    if _libc.unshare(CLONE_FILES) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, 'unshare(CLONE_FILES): %s' % os.strerror(errno))


def close_inherited_descriptors(keep):
    """Close the calling thread's descriptors that are not in keep."""
    for name in os.listdir('/proc/thread-self/fd'):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listing's own descriptor


def _loop_descriptors(loop):
    # CPython's selector loop: its epoll and the two ends of its self-pipe.
    return {loop._selector.fileno(), loop._ssock.fileno(),
            loop._csock.fileno()}


def _wakeup_descriptor(loop):
    # What call_soon_threadsafe writes to.
    return loop._csock.fileno()


class SessionLoop:
    """An event loop on a thread with a descriptor table of its own."""

    def __init__(self, name, inherit=(), wakes=()):
        """inherit: descriptors (say a listening socket) the loop keeps.

        wakes: other loops this thread calls call_soon_threadsafe on,
        directly or by completing their futures.
        """
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._loop_fds = _loop_descriptors(self.loop)
        self._keep = ({0, 1, 2} | self._loop_fds | set(inherit) |
                      {_wakeup_descriptor(other) for other in wakes})
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        self._started = concurrent.futures.Future()

    def start(self):
        """Start the thread; returns once it has its own table."""
        self._thread.start()
        self._started.result()

    def _run(self):
        try:
            unshare_descriptor_table()
            close_inherited_descriptors(self._keep)
            asyncio.set_event_loop(self.loop)
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            self.loop.run_forever()
        finally:
            self._finish()

    def _finish(self):
        # As asyncio.run ends a loop: what is left runs to its end here,
        # on this thread, so nothing of this table is closed elsewhere.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(
                asyncio.gather(*pending, return_exceptions=True))
        # Backstop for transports nobody closed: CPython's selector loop
        # keeps them by descriptor. Their sockets close on this thread.
        for transport in list(self.loop._transports.values()):
            transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, callback, *args):
        """Run callback on the loop's thread, soon."""
        self.loop.call_soon_threadsafe(callback, *args)

    def run(self, coroutine):
        """Run a coroutine on the loop; a concurrent Future of its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self, timeout=10):
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        # The shared table still holds the loop's first descriptors.
        for fd in self._loop_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def prestarted_executor(workers, thread_name_prefix):
    """A thread pool whose threads all exist before the first task.

    ThreadPoolExecutor starts threads on submit(), from the submitting
    thread, and a new thread shares its creator's descriptor table; started
    here, in the main thread, they all belong to the shared table.
    """
    executor = concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix=thread_name_prefix)
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        executor.submit(barrier.wait)
    barrier.wait()
    return executor


class _PreparedQueueHandler(logging.handlers.QueueHandler):
    """Hands records over merged with their arguments, exc_info kept."""

    def prepare(self, record):
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        return record


class LoggingQueue:
    """Routes the root logger's handlers through a queue and one thread.

    A handler may reopen its file (a watched or rotated log); opened on a
    session loop's thread, the new descriptor would exist in that table
    only. Behind the queue, every write happens on the writer thread.
    """

    def __init__(self):
        self._listener = None
        self._handlers = []

    def start(self):
        root = logging.getLogger()
        self._handlers = list(root.handlers)
        records = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(
            records, *self._handlers, respect_handler_level=True)
        self._listener.start()
        for handler in self._handlers:
            root.removeHandler(handler)
        root.addHandler(_PreparedQueueHandler(records))

    def stop(self):
        if self._listener is None:
            return
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, _PreparedQueueHandler):
                root.removeHandler(handler)
        self._listener.stop()
        for handler in self._handlers:
            root.addHandler(handler)
        self._listener = None
