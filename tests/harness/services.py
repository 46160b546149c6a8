"""Service processes a test starts, and what they must leave behind.

A defect that a service logs and swallows, a crash on SIGTERM or an OOM
kill would otherwise stay green: the test asked its questions and got its
answers. So every service started through Services is checked when the
world is torn down:

- it exited on SIGTERM with a clean status (0 unless the fixture says
  otherwise, with a reason) within its drain time;
- it was not killed by a signal the test did not send (an OOM kill is a
  SIGKILL nobody sent);
- its log holds no traceback and no ERROR or CRITICAL record unless the
  test declared it with expect_log_error(pattern, reason).

All problems of all services are reported together, in one
ServiceProblems failure, each with the lines that caused it.
"""

import os
import re
import signal
import subprocess
import time

import fixtures
from testtools import content

from tests.harness import processes

# oslo.log's record head: date, time, pid, level (its exception lines
# carry the same head, with ERROR whatever the record's level).
OSLO_HEAD = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \d+) (\w+) ')
TRACEBACK = 'Traceback (most recent call last)'
ERROR_LEVELS = ('ERROR', 'CRITICAL')
# Error records shown per service; the rest are counted.
SHOWN_PER_SERVICE = 5
# How long a service may take to stop on SIGTERM: an oslo.messaging
# listener waits out its poll, a proxy drains its sessions.
DRAIN_SECONDS = 30


class ServiceProblems(AssertionError):
    """A service crashed, did not stop cleanly or logged an error."""


def problem_blocks(text):
    """The log's error records and tracebacks, each as a list of lines.

    A record of level ERROR or CRITICAL, with the lines of its traceback
    (same time and pid), or a bare traceback printed to stderr with the
    lines that follow it up to the next record.
    """
    blocks, current, current_key = [], None, None
    for line in text.splitlines():
        head = OSLO_HEAD.match(line)
        if head is None:
            if current is not None:
                current.append(line)
            elif TRACEBACK in line:
                current, current_key = [line], None
                blocks.append(current)
            continue
        if head.group(2) in ERROR_LEVELS or TRACEBACK in line:
            if current is not None and head.group(1) == current_key:
                current.append(line)
            else:
                current, current_key = [line], head.group(1)
                blocks.append(current)
        else:
            current = current_key = None
    return blocks


def log_detail(path):
    """A detail reading the log at path when asked; keep() reads it now.

    A fixture whose setUp fails is cleaned up (its directory gone) before
    its details are read: keep() runs in its cleanups.
    """
    kept = []

    def read():
        if kept:
            return kept
        with open(path, 'rb') as f:
            return [f.read()]

    def keep():
        kept[:] = read()
    return content.Content(content.UTF8_TEXT, read), keep


class Service:
    """One started process: its label, its log, how it must end."""

    def __init__(self, label, proc, log_path, drain, clean_exits):
        self.label = label
        self.proc = proc
        self.log_path = log_path
        self.drain = drain
        self.clean_exits = clean_exits
        # Set when the fixture's SIGTERM had to be followed by SIGKILL.
        self.overran = None

    def __iter__(self):
        # Read as the (label, process, log path) it was before.
        return iter((self.label, self.proc, self.log_path))

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def exit_problem(self):
        """What is wrong with how it ended, or None."""
        proc = self.proc
        if self.overran is not None:
            return ('did not exit within %ss of SIGTERM: killed'
                    % self.overran)
        code = proc.returncode
        if code is None:
            return 'still running'
        if getattr(proc, 'killed_by_test', False) and code == -signal.SIGKILL:
            return None
        if getattr(proc, 'stopped_with', None) not in (
                None, signal.SIGTERM) and code == -proc.stopped_with:
            return None  # the test sent that signal on purpose
        if code < 0:
            name = signal.Signals(-code).name
            why = ' (nobody sent it: the OOM killer?)' \
                if code == -signal.SIGKILL else ''
            return 'killed by %s%s' % (name, why)
        if code not in self.clean_exits:
            return 'exited with status %d on SIGTERM' % code
        return None


class Services(fixtures.Fixture):
    """Started processes, their logs as details, a check at the end.

    Cleaning up stops every process still running (SIGTERM to all of a
    phase at once, then the wait, each up to its drain time; processes
    whose label starts with one of stop_last go in a second phase), then
    checks them all and raises ServiceProblems if any failed.
    """

    def __init__(self, directory, stop_last=()):
        self.directory = directory
        self.stop_last = tuple(stop_last)

    def _setUp(self):
        self.started = []
        self.expected = []
        # Cleanups run last first: stop, keep the logs, then check.
        self.addCleanup(self.verify)
        self.addCleanup(self._keep_logs)
        self.addCleanup(self.stop_all)

    def start(self, label, argv, env=None, cwd=None, drain=DRAIN_SECONDS,
              clean_exits=(0,), log_name=None):
        """Start argv, its output in directory/log_name (label.log).

        clean_exits: the exit statuses that are a clean stop (another than
        0 only for a program that answers SIGTERM so, with the reason
        beside the call).
        """
        log_name = log_name or label + '.log'
        log_path = os.path.join(self.directory, log_name)
        with open(log_path, 'wb') as log:
            proc = subprocess.Popen(argv, stdout=log,
                                    stderr=subprocess.STDOUT, env=env,
                                    cwd=cwd)
        service = Service(label, proc, log_path, drain, clean_exits)
        self.started.append(service)
        detail, service.keep_log = log_detail(log_path)
        self.addDetail(log_name, detail)
        return proc

    def service(self, proc):
        for service in self.started:
            if service.proc is proc:
                return service
        raise KeyError(proc.pid)

    def expect_log_error(self, pattern, reason, label=None):
        """Declare an error record the test causes on purpose.

        pattern: a regular expression searched in each error record (its
        traceback included); label: only in that service's log (a prefix
        of its label). reason: why this test makes it happen, shown when
        the check fails for another record.
        """
        if not reason:
            raise ValueError('an expected error needs its reason')
        self.expected.append((re.compile(pattern), reason, label))

    def stop(self, proc, signum=signal.SIGTERM, timeout=DRAIN_SECONDS,
             wait=True):
        """Stop one process now, as the test's own act; SIGKILL is a
        crash the test causes, another signal must still end it cleanly.
        wait=False: return at once, for a test that watches it stop.
        """
        proc.stopped_with = signum
        if signum == signal.SIGKILL:
            proc.killed_by_test = True
        proc.send_signal(signum)
        if wait:
            proc.wait(timeout)

    def check_alive(self):
        for service in self.started:
            proc = service.proc
            if proc.poll() is not None and not getattr(
                    proc, 'killed_by_test', False) and getattr(
                    proc, 'stopped_with', None) is None:
                raise AssertionError('%s exited with %s' % (
                    service.label, proc.returncode))

    def stop_all(self):
        running = [s for s in self.started if s.proc.poll() is None]
        last = [s for s in running if s.label.startswith(self.stop_last)
                ] if self.stop_last else []
        for phase in ([s for s in running if s not in last], last):
            for service in phase:
                service.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            for service in phase:
                deadline = started + service.drain
                try:
                    service.proc.wait(max(0.01,
                                          deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    service.overran = service.drain
                    processes.crash(service.proc)

    def _keep_logs(self):
        # The directory may go right after this fixture.
        for service in self.started:
            service.keep_log()

    def _unexpected(self, service):
        blocks = []
        for block in problem_blocks(service.log()):
            text = '\n'.join(block)
            if not any(pattern.search(text) for pattern, _, label
                       in self.expected
                       if label is None or service.label.startswith(label)):
                blocks.append(text)
        return blocks

    def problems(self):
        """[(label, what is wrong)] of every started service."""
        found = []
        for service in self.started:
            exit_problem = service.exit_problem()
            if exit_problem:
                found.append((service.label, exit_problem))
            blocks = self._unexpected(service)
            for block in blocks[:SHOWN_PER_SERVICE]:
                found.append((service.label, 'logged:\n' + block))
            if len(blocks) > SHOWN_PER_SERVICE:
                found.append((service.label, 'logged %d more error records '
                              '(its log is in the details)'
                              % (len(blocks) - SHOWN_PER_SERVICE)))
        return found

    def verify(self):
        found = self.problems()
        if not found:
            return
        lines = ['%s %s' % problem for problem in found]
        if self.expected:
            lines.append('declared as expected: ' + '; '.join(
                '%s (%s)' % (pattern.pattern, reason)
                for pattern, reason, _ in self.expected))
        raise ServiceProblems('services left problems behind:\n'
                              + '\n'.join(lines))
