"""The worker supervisor, with real processes.

Each test forks a supervisor of its own, in a process group of its own, so
the test runner's signals and children stay untouched. Workers and the
supervisor report through files in a temporary directory.
"""

import functools
import gc
import json
import logging
import os
import signal
import sys
import time

import fixtures

from serialproxy.proxy import workers
from tests.unit import base

TIMEOUT = 10


def record(directory, name, data):
    """Write a report whole: readers never see half of one."""
    path = os.path.join(directory, name)
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f)
    os.rename(path + '.tmp', path)


def running(pid):
    """Alive and not a zombie (which os.kill(pid, 0) would not tell)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


class _Stop(Exception):
    pass


def _started(directory, index):
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    record(directory, 'started-%d-%d' % (index, os.getpid()),
           {'index': index, 'pid': os.getpid(), 'at': time.monotonic(),
            'blocked': sorted(int(s) for s in blocked),
            'sigterm_default': signal.getsignal(signal.SIGTERM) ==
            signal.SIG_DFL,
            # Objects the worker inherited, kept out of its collections.
            'frozen': gc.get_freeze_count()})


def serve(directory, index, ready):
    """A well-behaved worker: drains (here: notes it) on SIGTERM."""
    def on_sigterm(signum, frame):
        record(directory, 'terminated-%d' % os.getpid(), {})
        raise _Stop()

    _started(directory, index)
    signal.signal(signal.SIGTERM, on_sigterm)
    ready()
    try:
        while True:
            signal.pause()
    except _Stop:
        return 0


def serve_reloading(directory, index, ready):
    """A worker that notes each SIGHUP, as the proxy's reloads config."""
    def on_sighup(signum, frame):
        record(directory, 'hup-%d-%d' % (os.getpid(), time.monotonic_ns()),
               {'pid': os.getpid(), 'at': time.monotonic()})
    signal.signal(signal.SIGHUP, on_sighup)
    return serve(directory, index, ready)


def ignore_sigterm(directory, index, ready):
    _started(directory, index)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready()
    while True:
        signal.pause()


def fail_before_ready(directory, index, ready):
    _started(directory, index)
    if index == 1:
        raise RuntimeError('worker %d cannot serve' % index)
    return serve(directory, index, ready)


def crash_loop(directory, index, ready):
    """Serves once, then dies at every start from 'crash' on."""
    _started(directory, index)
    if os.path.exists(os.path.join(directory, 'crash')):
        return 7
    ready()
    while not os.path.exists(os.path.join(directory, 'crash')):
        time.sleep(0.01)
    return 7


class Supervisor:
    def __init__(self, pid, directory):
        self.pid = pid
        self.directory = directory
        self.status = None

    def path(self, name):
        return os.path.join(self.directory, name)

    def reports(self, prefix):
        found = []
        for name in sorted(os.listdir(self.directory)):
            if name.startswith(prefix) and not name.endswith('.tmp'):
                with open(self.path(name)) as f:
                    found.append(json.load(f))
        return found

    def started(self):
        return self.reports('started-')

    def terminated(self):
        """Pids of the workers that noted a SIGTERM, sorted."""
        # A note being written is a .tmp file until it is renamed.
        return sorted(int(name.split('-')[1])
                      for name in os.listdir(self.directory)
                      if name.startswith('terminated-') and
                      not name.endswith('.tmp'))

    def log(self):
        try:
            with open(self.path('supervisor.log')) as f:
                return f.read()
        except FileNotFoundError:
            return ''


class WorkerSupervisorTest(base.TestCase):
    def wait_for(self, predicate, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                self.fail('Timed out waiting for %s' % what)
            time.sleep(0.01)

    def start(self, count, worker_main, **kwargs):
        directory = self.useFixture(fixtures.TempDir()).path
        kwargs.setdefault('stop_timeout', TIMEOUT)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._supervise(directory, count, worker_main, kwargs)
        os.setpgid(pid, pid)  # also done by the child: whoever comes first
        supervisor = Supervisor(pid, directory)
        self.addCleanup(self._kill, supervisor)
        return supervisor

    @staticmethod
    def _supervise(directory, count, worker_main, kwargs):
        status = 70
        try:
            os.setpgid(0, 0)
            # Keep the test runner's stdout (its result stream) clean.
            out = os.open(os.path.join(directory, 'output'),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(out, 1)
            os.dup2(out, 2)
            handler = logging.FileHandler(
                os.path.join(directory, 'supervisor.log'))
            handler.setFormatter(
                logging.Formatter('%(levelname)s %(message)s'))
            logger = logging.getLogger(workers.__name__)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
            # A handler of the parent's own must not leak into workers.
            signal.signal(signal.SIGTERM, lambda signum, frame: None)
            # As a service manager starts it (the test runner may have
            # inherited SIGHUP ignored, which would hide its default).
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            supervisor = None

            def on_worker_exit(pid):
                record(directory, 'exited-%d' % pid,
                       {'pid': pid, 'live': supervisor.worker_pids})

            for hook in ('on_stop', 'on_reload'):
                if hook in kwargs:
                    kwargs[hook] = functools.partial(kwargs[hook], directory)
            supervisor = workers.WorkerSupervisor(
                count, functools.partial(worker_main, directory),
                on_worker_exit=on_worker_exit, **kwargs)
            status = supervisor.run()
        except BaseException:
            logging.getLogger(workers.__name__).exception('supervisor failed')
        finally:
            os._exit(status)

    def _kill(self, supervisor):
        try:
            os.killpg(supervisor.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if supervisor.status is None:
            os.waitpid(supervisor.pid, 0)

    def wait_exit(self, supervisor):
        def reaped():
            pid, status = os.waitpid(supervisor.pid, os.WNOHANG)
            return pid and (status,)
        status, = self.wait_for(reaped, 'the supervisor to exit')
        supervisor.status = os.waitstatus_to_exitcode(status)
        return supervisor.status

    def wait_ready(self, supervisor):
        self.wait_for(lambda: 'Ready: every service' in supervisor.log(),
                      'the Ready line')

    def test_every_index_starts_once_with_default_signals(self):
        supervisor = self.start(3, serve)
        self.wait_ready(supervisor)

        started = supervisor.started()
        self.assertEqual([0, 1, 2], sorted(r['index'] for r in started))
        self.assertEqual(3, len({r['pid'] for r in started}))
        for report in started:
            self.assertNotIn(int(signal.SIGTERM), report['blocked'])
            self.assertNotIn(int(signal.SIGCHLD), report['blocked'])
            self.assertNotIn(int(signal.SIGINT), report['blocked'])
            self.assertTrue(report['sigterm_default'])
        self.assertEqual(1, supervisor.log().count('Ready: every service'))

    def test_workers_leave_the_inherited_objects_to_the_parent(self):
        # Frozen before the fork, the supervisor's objects are never
        # traversed by a worker's collector, whose writes would make the
        # pages it shares with the parent its own: PSS per held session
        # went from 17 to 9 KiB (tools.bench proxy_sessions).
        supervisor = self.start(2, serve)
        self.wait_ready(supervisor)
        for report in supervisor.started():
            self.assertGreater(report['frozen'], 1000, report)

    def test_a_killed_worker_is_replaced_and_the_others_untouched(self):
        supervisor = self.start(2, serve, restart_delay=0)
        self.wait_ready(supervisor)
        first = {r['index']: r['pid'] for r in supervisor.started()}

        os.kill(first[0], signal.SIGKILL)

        def replacement():
            pids = [r['pid'] for r in supervisor.started()
                    if r['index'] == 0 and r['pid'] != first[0]]
            return pids and pids[0]
        self.wait_for(replacement, 'a new worker 0')
        self.assertEqual([first[1]], [r['pid'] for r in supervisor.started()
                                      if r['index'] == 1])
        os.kill(first[1], 0)  # still alive
        exited = supervisor.reports('exited-')
        self.assertEqual([first[0]], [r['pid'] for r in exited])
        # worker_pids, as on_worker_exit saw it: the dead worker is gone.
        self.assertEqual({'1': first[1]}, exited[0]['live'])
        self.assertIn('pid %d) died: killed by signal %d'
                      % (first[0], signal.SIGKILL), supervisor.log())

    def _test_stop_signal_reaches_every_worker(self, signum):
        supervisor = self.start(2, serve)
        self.wait_ready(supervisor)
        pids = sorted(r['pid'] for r in supervisor.started())

        os.kill(supervisor.pid, signum)

        self.assertEqual(0, self.wait_exit(supervisor))
        self.assertEqual(pids, supervisor.terminated())
        self.assertEqual(pids, sorted(
            r['pid'] for r in supervisor.reports('exited-')))
        self.assertNotIn('killing', supervisor.log())

    def test_sigterm_reaches_every_worker(self):
        self._test_stop_signal_reaches_every_worker(signal.SIGTERM)

    def test_on_stop_runs_once_before_the_workers_are_told(self):
        def on_stop(directory):
            record(directory, 'on-stop-%d' % time.monotonic_ns(), {
                'terminated': [name for name in os.listdir(directory)
                               if name.startswith('terminated-')]})
        supervisor = self.start(2, serve, on_stop=on_stop)
        self.wait_ready(supervisor)

        os.kill(supervisor.pid, signal.SIGTERM)

        self.assertEqual(0, self.wait_exit(supervisor))
        self.assertEqual([{'terminated': []}],
                         supervisor.reports('on-stop-'))
        self.assertEqual(2, len(supervisor.terminated()))

    def test_sighup_reloads_the_parent_then_each_worker(self):
        def on_reload(directory):
            record(directory, 'reload-%d' % time.monotonic_ns(), {
                'at': time.monotonic(),
                'hups': [name for name in os.listdir(directory)
                         if name.startswith('hup-')]})
        supervisor = self.start(2, serve_reloading, on_reload=on_reload)
        self.wait_ready(supervisor)
        pids = sorted(r['pid'] for r in supervisor.started())

        for _ in range(2):
            os.kill(supervisor.pid, signal.SIGHUP)
            time.sleep(0.2)

        self.wait_for(lambda: len(supervisor.reports('hup-')) == 4,
                      'two SIGHUPs in each worker')
        reloads = supervisor.reports('reload-')
        self.assertEqual(2, len(reloads))
        self.assertEqual([], reloads[0]['hups'])  # the parent first
        self.assertEqual(sorted(pids * 2), sorted(
            r['pid'] for r in supervisor.reports('hup-')))
        # Nothing stopped or restarted.
        self.assertEqual((0, 0), os.waitpid(supervisor.pid, os.WNOHANG))
        self.assertEqual(pids, sorted(r['pid'] for r in supervisor.started()))
        self.assertEqual(2, supervisor.log().count(
            'Caught SIGHUP, reading the config files again'))
        os.kill(supervisor.pid, signal.SIGTERM)
        self.assertEqual(0, self.wait_exit(supervisor))
        self.assertEqual(pids, supervisor.terminated())

    def test_sighup_kills_no_worker_without_a_handler_of_its_own(self):
        # A worker that has not taken SIGHUP yet (still starting) would
        # die of its default action: the supervisor's children ignore it
        # until they take it.
        supervisor = self.start(2, serve, restart_delay=0)
        self.wait_ready(supervisor)
        pids = sorted(r['pid'] for r in supervisor.started())

        os.kill(supervisor.pid, signal.SIGHUP)
        time.sleep(0.5)

        self.assertEqual((0, 0), os.waitpid(supervisor.pid, os.WNOHANG))
        for pid in pids:
            self.assertTrue(running(pid), pid)
        self.assertEqual(pids, sorted(r['pid'] for r in supervisor.started()))
        self.assertNotIn('died', supervisor.log())
        self.assertEqual([], supervisor.reports('exited-'))
        self.assertEqual([], supervisor.terminated())

    def test_sigint_stops_the_workers_with_sigterm(self):
        self._test_stop_signal_reaches_every_worker(signal.SIGINT)

    def test_workers_are_stopped_when_the_supervisor_is_killed(self):
        supervisor = self.start(2, serve)
        self.wait_ready(supervisor)
        pids = sorted(r['pid'] for r in supervisor.started())

        os.kill(supervisor.pid, signal.SIGKILL)
        self.wait_exit(supervisor)

        # Orphans would go on serving: each is told to stop instead.
        self.wait_for(lambda: supervisor.terminated() == pids,
                      'every worker to get SIGTERM')

    def test_a_worker_ignoring_sigterm_is_killed_after_stop_timeout(self):
        supervisor = self.start(1, ignore_sigterm, stop_timeout=0.5)
        self.wait_ready(supervisor)
        pid = supervisor.started()[0]['pid']

        signalled = time.monotonic()
        os.kill(supervisor.pid, signal.SIGTERM)

        self.assertEqual(0, self.wait_exit(supervisor))
        self.assertGreaterEqual(time.monotonic() - signalled, 0.5)
        self.assertIn('(pid %d) still runs 0.5s after SIGTERM; killing it'
                      % pid, supervisor.log())
        self.assertEqual([pid], [r['pid']
                                 for r in supervisor.reports('exited-')])
        self.assertRaises(ProcessLookupError, os.kill, pid, 0)

    def test_a_worker_failing_before_ready_fails_the_start(self):
        supervisor = self.start(2, fail_before_ready)

        self.assertNotEqual(0, self.wait_exit(supervisor))
        log = supervisor.log()
        self.assertNotIn('Ready: every service', log)
        self.assertIn('RuntimeError: worker 1 cannot serve', log)
        self.assertIn('exited before it was ready: exit status 1', log)
        # Worker 0 may be stopped before it gets to report its start.
        exited = {r['pid'] for r in supervisor.reports('exited-')}
        self.assertEqual(2, len(exited))
        self.assertLessEqual({r['pid'] for r in supervisor.started()},
                             exited)

    def test_a_crash_loop_is_restarted_after_restart_delay(self):
        delay = 0.3
        supervisor = self.start(1, crash_loop, restart_delay=delay)
        self.wait_ready(supervisor)

        record(supervisor.directory, 'crash', {})

        starts = self.wait_for(
            lambda: len(supervisor.started()) >= 4 and supervisor.started(),
            'three restarts')
        times = sorted(r['at'] for r in starts)
        # The first restart may be at once (the worker had served longer
        # than the delay); the crashing ones wait.
        for earlier, later in zip(times[1:], times[2:]):
            self.assertGreaterEqual(later - earlier, delay)
        self.assertIn('died: exit status 7', supervisor.log())
