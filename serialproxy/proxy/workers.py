"""A pre-fork supervisor for the proxy's worker processes.

The parent opens the public socket, forks the workers and only watches
them: no event loop, no threads, no RPC, so forking stays safe. It takes
its signals synchronously (blocked, then sigtimedwait), so nothing runs
between a signal and the code that handles it, and it alone calls waitpid.
"""

import ctypes
import fcntl
import gc
import os
import signal
import sys
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1

# SIGIO: a readiness pipe got its byte, or lost its writer (O_ASYNC).
# SIGHUP: read the config files again (systemd's ExecReload).
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGIO,
            signal.SIGHUP}


def _describe(status):
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 'killed by signal %d (%s)' % (signum, signal.strsignal(signum))
    return 'exit status %d' % os.waitstatus_to_exitcode(status)


def _stop_with_parent(parent_pid):
    """SIGTERM this worker when the supervisor dies, even by SIGKILL.

    An orphaned worker would go on serving and renewing its leases, and a
    restarted proxy would run beside it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        LOG.warning('prctl(PR_SET_PDEATHSIG) failed: %s',
                    os.strerror(ctypes.get_errno()))
    if os.getppid() != parent_pid:
        # The supervisor died before prctl: no signal will come.
        os.kill(os.getpid(), signal.SIGTERM)


def _flush_stdio():
    # Forked children share stdio buffers: flush before fork so nothing is
    # written twice, and before os._exit so nothing is lost.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class WorkerSupervisor:
    def __init__(self, count, worker_main, on_worker_exit=None,
                 stop_timeout=30.0, restart_delay=1.0, name='proxy worker',
                 on_stop=None, on_reload=None):
        """count workers; worker_main(index, ready) runs in each child.

        worker_main returns the child's exit status; ready() tells the
        parent, through a pipe, that the worker serves. on_worker_exit(pid)
        runs in the parent for every worker that exits (prometheus_client's
        multiprocess mode must learn which pids are dead). on_stop() runs
        in the parent once, as it begins to stop, before the workers are
        told: the proxy closes its copies of the listening sockets there,
        or the kernel would go on queueing connections that no draining
        worker accepts any more, instead of refusing them. on_reload()
        runs in the parent on SIGHUP, before the signal is passed on to
        the workers that serve (one still starting forks from the parent
        after it, or reads the files itself).
        """
        if count < 1:
            raise ValueError('count must be at least 1')
        self._count = count
        self._worker_main = worker_main
        self._on_worker_exit = on_worker_exit
        self._on_stop = on_stop
        self._on_reload = on_reload
        self._stop_timeout = stop_timeout
        self._restart_delay = restart_delay
        self._name = name
        self._workers = {}   # pid: index
        self._started = {}   # index: time.monotonic() of its last fork
        self._pipes = {}     # index: readiness pipe's read end, until read
        self._ready = set()  # indexes whose current worker called ready()
        self._due = {}       # index: time.monotonic() its restart is due
        self._serving = False
        self._old_mask = None
        self._parent_pid = None

    @property
    def worker_pids(self):
        """{index: pid} of the live workers."""
        return {index: pid for pid, index in self._workers.items()}

    def run(self):
        """Serve until SIGTERM or SIGINT; 0 then, non-zero if start fails.
        SIGHUP reloads (on_reload) and is passed on to the workers.

        Logs the 'Ready' line once every worker called ready(): functional
        tests and init scripts wait for exactly that line.
        """
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        self._parent_pid = os.getpid()
        try:
            return self._supervise()
        finally:
            if self._workers:  # only when something raised
                self._stop()
            for fd in self._pipes.values():
                os.close(fd)
            self._pipes.clear()
            # Unblocking a pending SIGIO or SIGTERM would kill us now.
            while signal.sigtimedwait(_SIGNALS, 0):
                pass
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)

    def _supervise(self):
        for index in range(self._count):
            self._spawn(index)
        while True:
            timeout = None
            if self._due:
                timeout = max(0, min(self._due.values()) - time.monotonic())
            info = (signal.sigtimedwait(_SIGNALS, timeout)
                    if timeout is not None else signal.sigwaitinfo(_SIGNALS))
            signum = info.si_signo if info else None
            if signum in (signal.SIGTERM, signal.SIGINT):
                LOG.info('Caught %s, stopping the %ss',
                         signal.Signals(signum).name, self._name)
                self._stop()
                return 0
            if signum == signal.SIGHUP:
                self._reload()
            if signum == signal.SIGIO:
                for index in list(self._pipes):
                    self._poll_ready(index)
            if signum == signal.SIGCHLD:
                for index, pid, status in self._reap():
                    if not self._serving and index not in self._ready:
                        LOG.error('%s %d (pid %d) exited before it was '
                                  'ready: %s', self._name, index, pid,
                                  _describe(status))
                        self._stop()
                        return 1
                    LOG.warning('%s %d (pid %d) died: %s', self._name,
                                index, pid, _describe(status))
                    self._ready.discard(index)
                    self._restart(index)
            now = time.monotonic()
            for index, due in list(self._due.items()):
                if due <= now:
                    del self._due[index]
                    self._spawn(index)

    def _reload(self):
        LOG.info('Caught SIGHUP, reading the config files again')
        if self._on_reload is not None:
            try:
                self._on_reload()
            except Exception:
                LOG.exception('on_reload() failed')
        for pid, index in self._workers.items():
            if index in self._ready:
                os.kill(pid, signal.SIGHUP)

    def _restart(self, index):
        # A worker that dies young is likely to die again: do not spin.
        if time.monotonic() - self._started[index] >= self._restart_delay:
            self._spawn(index)
            return
        LOG.warning('%s %d died within %ss of its start; restarting it in '
                    '%ss', self._name, index, self._restart_delay,
                    self._restart_delay)
        self._due[index] = time.monotonic() + self._restart_delay

    def _spawn(self, index):
        read_fd, write_fd = os.pipe()
        # Set up before fork: a byte written earlier would raise no SIGIO.
        os.set_blocking(read_fd, False)
        fcntl.fcntl(read_fd, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(read_fd, fcntl.F_SETFL,
                    fcntl.fcntl(read_fd, fcntl.F_GETFL) | os.O_ASYNC)
        _flush_stdio()
        # The parent's objects go to the collector's permanent generation:
        # a worker's collections would otherwise write to every page of
        # them and turn the pages it shares with the parent into its own.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            self._child(index, write_fd)  # never returns
        os.close(write_fd)
        self._workers[pid] = index
        self._started[index] = time.monotonic()
        self._pipes[index] = read_fd
        LOG.info('Started %s %d (pid %d)', self._name, index, pid)

    def _child(self, index, write_fd):
        status = 1
        try:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            # Until worker_main takes it: SIGHUP's default would kill it.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
            _stop_with_parent(self._parent_pid)
            for fd in self._pipes.values():  # other workers' pipes
                os.close(fd)
            unwritten = [write_fd]

            def ready():
                try:
                    fd = unwritten.pop()  # atomic: a second call is a no-op
                except IndexError:
                    return
                os.write(fd, b'.')
                os.close(fd)

            status = self._worker_main(index, ready)
        except SystemExit as exc:
            status = exc.code
        except BaseException:
            LOG.exception('%s %d failed', self._name, index)
            status = 1
        finally:
            _flush_stdio()
            if status is None:
                status = 0
            os._exit(status if isinstance(status, int) else 1)

    def _poll_ready(self, index, final=False):
        """Read a readiness byte; final: the worker is gone, stop waiting."""
        try:
            byte = os.read(self._pipes[index], 1)
        except BlockingIOError:
            if not final:
                return
            byte = b''
        os.close(self._pipes.pop(index))
        if not byte:
            return
        self._ready.add(index)
        if self._serving:
            LOG.info('%s %d is serving again', self._name, index)
        elif len(self._ready) == self._count:
            self._serving = True
            LOG.info('Ready: every service of this process is serving')

    def _reap(self):
        """[(index, pid, wait status)] of every worker that exited."""
        exited = []
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            index = self._exited(pid)
            if index is not None:
                exited.append((index, pid, status))
        return exited

    def _exited(self, pid):
        index = self._workers.pop(pid, None)
        if index is None:
            return None
        if index in self._pipes:
            # Its byte may sit unread: SIGCHLD is taken before SIGIO.
            self._poll_ready(index, final=True)
        if self._on_worker_exit is not None:
            try:
                self._on_worker_exit(pid)
            except Exception:
                LOG.exception('on_worker_exit(%d) failed', pid)
        return index

    def _stop(self):
        """SIGTERM every worker; SIGKILL those left after stop_timeout."""
        self._due.clear()
        if self._on_stop is not None:
            on_stop, self._on_stop = self._on_stop, None
            try:
                on_stop()
            except Exception:
                LOG.exception('on_stop failed')
        for pid in self._workers:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while self._workers:
            self._reap()
            timeout = deadline - time.monotonic()
            if not self._workers or timeout <= 0:
                break
            signal.sigtimedwait(_SIGNALS, timeout)
        for pid, index in list(self._workers.items()):
            LOG.warning('%s %d (pid %d) still runs %ss after SIGTERM; '
                        'killing it', self._name, index, pid,
                        self._stop_timeout)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._exited(pid)
