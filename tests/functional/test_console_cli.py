"""serialproxy-console on a real QEMU guest, its connection dropping.

The CLI runs under a pty, as in a user's terminal, and reaches the proxy
through a TCP forwarder of the test's that resets every connection it
carries now and then (RST both ways, no close frame: a network that
drops) while the guest prints `seq 1 COUNT`. The CLI resumes each time
from the offset it counted; what reaches its terminal holds every number
once, in order. A quiet console keeps its connection: the proxy answers
the CLI's keepalive pings.
"""

import os
import pty
import random
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from tests.functional import test_console_history
from tests.harness import fixtures as func_fixtures

COUNT = 200000
# Bytes of the sequence between two resets, and the most resets.
RESET_EVERY = 96 * 1024
MAX_RESETS = 8
CTRL_CLOSE_BRACKET = b'\x1d'


class DroppingForwarder(threading.Thread):
    """Forwards 127.0.0.1:port to the proxy; reset() drops every
    connection it carries with a TCP reset both ways. One thread, with
    non-blocking sockets, so that a reset closes sockets nothing else
    is reading (a socket closed under another thread's recv would send
    no reset until that returned)."""

    def __init__(self, target_port):
        super().__init__(daemon=True)
        self.target = ('127.0.0.1', target_port)
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.peer = {}
        self.waiting = {}
        self.resets = 0
        self.dropped = 0
        self._reset_wanted = threading.Event()
        self._reset_done = threading.Event()
        self._stopping = threading.Event()

    def reset(self, timeout=10):
        self._reset_done.clear()
        self._reset_wanted.set()
        if not self._reset_done.wait(timeout):
            raise AssertionError('the forwarder did not reset')
        return self.dropped

    def stop(self):
        self._stopping.set()
        self.join(10)
        for sock in list(self.peer):
            sock.close()
        self.listener.close()

    def run(self):
        while not self._stopping.is_set():
            if self._reset_wanted.is_set():
                self.dropped = len(self.peer) // 2
                for sock in list(self.peer):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack('ii', 1, 0))
                    self._forget(sock)
                if self.dropped:
                    # Between the CLI's connections there is nothing to
                    # drop, and nothing for it to notice.
                    self.resets += 1
                self._reset_wanted.clear()
                self._reset_done.set()
            writers = [sock for sock, data in self.waiting.items() if data]
            readable, writable, _ = select.select(
                [self.listener, *self.peer], writers, [], 0.05)
            for sock in readable:
                if sock is self.listener:
                    self._accept()
                elif sock in self.peer:
                    self._read(sock)
            for sock in writable:
                if sock in self.waiting:
                    self._write(sock)

    def _accept(self):
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.target, timeout=10)
        for sock in (client, upstream):
            sock.setblocking(False)
            self.waiting[sock] = bytearray()
        self.peer[client], self.peer[upstream] = upstream, client

    def _read(self, sock):
        try:
            data = sock.recv(65536)
        except OSError:
            data = b''
        if not data:
            # One side ended: so does the other, as a forwarder's would.
            other = self.peer[sock]
            self._forget(sock)
            self._forget(other)
            return
        self.waiting[self.peer[sock]] += data

    def _write(self, sock):
        try:
            sent = sock.send(self.waiting[sock])
        except BlockingIOError:
            return
        except OSError:
            self._forget(sock)
            return
        del self.waiting[sock][:sent]

    def _forget(self, sock):
        if self.peer.pop(sock, None) is not None:
            self.waiting.pop(sock, None)
            sock.close()


class TerminalReader(threading.Thread):
    """Everything the CLI writes to its terminal (a pty's master)."""

    def __init__(self, master_fd):
        super().__init__(daemon=True)
        self.master_fd = master_fd
        self.output = bytearray()
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                data = os.read(self.master_fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.output += data

    def snapshot(self):
        with self.lock:
            return bytes(self.output)


class ConsoleCLIResumeTest(func_fixtures.SharedWorldTestCase):

    @classmethod
    def make_world(cls):
        return test_console_history.HistoryWorld()

    def start_cli(self, url, *options):
        """The CLI on url, under a pty: (process, terminal, stderr
        file)."""
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        stderr = tempfile.TemporaryFile()
        self.addCleanup(stderr.close)
        proc = subprocess.Popen(
            [sys.executable, '-m', 'serialproxy.cmd.console', url,
             *options],
            stdin=slave, stdout=slave, stderr=stderr,
            start_new_session=True)
        os.close(slave)
        self.addCleanup(func_fixtures.terminate, proc, 5)
        terminal = TerminalReader(master)
        terminal.start()
        return proc, terminal, stderr

    def test_dropped_connections_are_resumed_with_every_line_once(self):
        deployment = self.world.deployment
        forwarder = DroppingForwarder(deployment.proxy_port)
        forwarder.start()
        self.addCleanup(forwarder.stop)
        url = urllib.parse.urlsplit(deployment.console_url(
            self.world.guest.uuid))
        url = url._replace(netloc='127.0.0.1:%d' % forwarder.port).geturl()
        proc, terminal, stderr = self.start_cli(url)

        def said():
            stderr.seek(0)
            return stderr.read().decode(errors='replace')
        func_fixtures.wait_for(lambda: 'connected' in said(), 30,
                               'the CLI connected')
        tag = random.randrange(10 ** 6, 10 ** 7)
        start = b'start-%d\r\n' % (tag + 1)
        done = b'done-%d\r\n' % (tag + 1)
        # $((...)) keeps the markers out of the echoed command line.
        os.write(terminal.master_fd,
                 b'echo start-$((%d+1)); seq 1 %d; echo done-$((%d+1))\r'
                 % (tag, COUNT, tag))
        resets_mid_output = 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            output = terminal.snapshot()
            if done in output:
                break
            if proc.poll() is not None:
                self.fail('the CLI ended (exit status %d) before the guest '
                          'finished: %s' % (proc.returncode, said()[-2000:]))
            printed = output.partition(start)[2]
            if printed and forwarder.resets < MAX_RESETS and \
                    len(printed) > RESET_EVERY * (forwarder.resets + 1):
                if forwarder.reset():
                    resets_mid_output += 1
            time.sleep(0.02)
        else:
            self.fail('the guest never finished: %s\n%s' % (
                said()[-2000:], deployment.logs()[-3000:]))
        # Each reset is told: as a lost connection, or as a connect that
        # failed when it hit a reconnect still under way; and the CLI
        # resumed after the last. A reset just as the last bytes got
        # through is told after they are on the terminal: waited for
        # before leaving.

        def told_and_resumed():
            lines = [line for line in said().splitlines()
                     if line.startswith('serialproxy-console: ')]
            told = sum(1 for line in lines
                       if 'connection lost' in line or
                       'cannot connect' in line)
            return told >= resets_mid_output and \
                'reconnected: resuming at offset' in lines[-1]
        try:
            func_fixtures.wait_for(told_and_resumed, 30,
                                   'every reset told and resumed')
        except AssertionError as exc:
            self.fail('%s: %d resets; the CLI said:\n%s'
                      % (exc, resets_mid_output, said()))
        os.write(terminal.master_fd, CTRL_CLOSE_BRACKET)
        self.assertEqual(0, proc.wait(30), said())
        self.assertGreaterEqual(resets_mid_output, 2, said())
        self.assertNotIn('token=', said())
        output = terminal.snapshot()
        sequence = output.partition(start)[2].partition(done)[0]
        expected = b''.join(b'%d\r\n' % n for n in range(1, COUNT + 1))
        if sequence != expected:
            at = next((i for i, (a, b) in enumerate(zip(sequence, expected))
                       if a != b), min(len(sequence), len(expected)))
            self.fail('the terminal got %d bytes of the sequence, %d '
                      'expected; they differ at %d: %r instead of %r\n%s'
                      % (len(sequence), len(expected), at,
                         sequence[max(0, at - 40):at + 40],
                         expected[max(0, at - 40):at + 40], said()))
        # Lines are whole: no number is missing or twice.
        numbers = [int(n) for n in re.findall(rb'(\d+)\r\n', sequence)]
        self.assertEqual(list(range(1, COUNT + 1)), numbers)

    def test_the_proxy_answers_keepalive_pings_of_a_quiet_console(self):
        # Pinged after 0.5 s of silence, the proxy must answer within
        # 0.5 s, or the CLI takes the connection as lost: a proxy that
        # did not would have every quiet console reconnect each minute.
        url = self.world.deployment.console_url(self.world.guest.uuid)
        proc, terminal, stderr = self.start_cli(url, '--keepalive', '0.5')

        def said():
            stderr.seek(0)
            return stderr.read().decode(errors='replace')
        func_fixtures.wait_for(lambda: 'connected' in said(), 30,
                               'the CLI connected')
        time.sleep(4)  # the guest says nothing: some 4 pings
        tag = random.randrange(10 ** 6, 10 ** 7)
        os.write(terminal.master_fd, b'echo ka-$((%d+1))\r' % tag)
        func_fixtures.wait_for(
            lambda: b'ka-%d\r\n' % (tag + 1) in terminal.snapshot(), 30,
            'the guest to answer')
        os.write(terminal.master_fd, CTRL_CLOSE_BRACKET)
        self.assertEqual(0, proc.wait(30), said())
        self.assertNotIn('keepalive', said())
        self.assertNotIn('reconnect', said())
        self.assertEqual(1, said().count('connected'), said())
