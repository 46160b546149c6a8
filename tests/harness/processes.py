"""Processes and ports on this machine: find, wait for, stop, crash."""

import os
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def children(pid):
    """Pids of the direct children of a process (all its threads')."""
    pids = set()
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except FileNotFoundError:
        return pids
    for task in tasks:
        try:
            with open('/proc/%d/task/%s/children' % (pid, task)) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def process_tree(pid):
    """A process and all its descendants, parents first."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children(current))
    return pids


def crash(proc):
    """SIGKILL a started process and its descendants, as a host crash.

    Descendants first: a proxy worker whose supervisor dies is told to
    stop and would close its sessions cleanly, which is not a crash.
    The process is marked as killed by the test, which the teardown
    check of services.py then accepts.
    """
    proc.killed_by_test = True
    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def terminate(proc, timeout=30):
    """SIGTERM a started process if it still runs; SIGKILL after timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %ss waiting for %s'
                                 % (timeout, what))
        time.sleep(0.2)
