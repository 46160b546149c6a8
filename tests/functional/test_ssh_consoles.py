"""Serial consoles over SSH, with Debian's OpenSSH client, for real.

serialproxy-all with [ssh] enabled and a QEMU guest: keys pushed through
the API, `ssh -tt` to the proxy's SSH server, the guest's shell answering;
one writer per console across SSH and websocket; spectators and take-over
across both doors; force-disconnect; keys refused for the wrong server,
port or time; SysRq after a break only for
whom the policy allows it; reconnecting the moment a session ended; host
key checks; hostile clients.
"""

import asyncio
import base64
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import asyncssh
import fixtures
import websocket

from tests.functional import test_sessions as ts
from tests.harness import fixtures as func_fixtures
from tests.harness import proxy_world

KEY_TTL = 15
MAX_AUTH_FAILURES = 12
IDLE_TIMEOUT = 8
# [ssh] console_grace: a signed-in connection without a console goes.
CONSOLE_GRACE = 4
# Second console channels asked for at once on one connection.
EXTRA_CHANNELS = 4
# [console] max_sessions_per_address: SSH connections count from accept.
MAX_PER_ADDRESS = 8
# The guest's owners; noauth makes MEMBER a member (not an admin) of it.
PROJECT = 'a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5'
MEMBER = 'ssh-member'
# Sessions ended and started again in a row, none waiting for the last.
RECONNECTS = 6


def sysrq_for_admins_only(world):
    """The [oslo_policy] options of a policy file that keeps SysRq for
    admins, as a site may: MEMBER may push keys and type in the console,
    not send SysRq."""
    path = os.path.join(world.useFixture(fixtures.TempDir()).path,
                        'policy.yaml')
    with open(path, 'w') as f:
        f.write('"serialproxy:serial_console:sysrq": "role:admin"\n')
    return {'oslo_policy': {'policy_file': path}}


class SSHWorld(func_fixtures.AllInOneWithGuest):
    """serialproxy-all with its SSH server on a free port, and a guest."""

    # [console] options beyond the time limits every world has.
    console_options = {}
    # Whether virtlogd keeps the guest's console log (the replay's).
    serial_log = False

    def _setUp(self):
        if shutil.which('ssh') is None:
            raise AssertionError('OpenSSH client missing: apt-get install '
                                 'openssh-client (tools/test-setup.sh)')
        self.ssh_port = func_fixtures.free_port()
        self.guest = self.useFixture(func_fixtures.Guest(
            project_id=PROJECT, user_id=MEMBER,
            serial_log=self.serial_log and os.path.join(
                self.useFixture(fixtures.TempDir()).path, 'console.log')))
        self.deployment = self.useFixture(func_fixtures.Deployment(
            options={**sysrq_for_admins_only(self),
                     'console': {'idle_timeout': IDLE_TIMEOUT,
                                 'enforce_session_timeout': 'true',
                                 'max_sessions_per_address':
                                     MAX_PER_ADDRESS,
                                 **self.console_options},
                     'ssh': {
                'enabled': 'true', 'listen_host': '127.0.0.1',
                'listen_port': self.ssh_port, 'public_host': '127.0.0.1',
                'key_ttl': KEY_TTL, 'console_grace': CONSOLE_GRACE,
                'max_auth_attempts_per_minute': MAX_AUTH_FAILURES}}))
        self.deployment.start('serialproxy-all')
        self.deployment.wait_ready()
        func_fixtures.wait_for(self._guest_registered, 60,
                               'the guest in the instance registry')


class SSHConsoleTestCase(func_fixtures.SharedWorldTestCase):
    """What the tests of an SSH world share: keys, ssh, reading."""

    def setUp(self):
        super().setUp()
        self.deployment = self.world.deployment
        self.guest = self.world.guest
        self.dir = tempfile.mkdtemp(prefix='sp-ssh-test-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        # Leave the console free for the next test.
        self.addCleanup(self.deployment.api_request, 'DELETE',
                        '/v2.1/servers/%s/serial-console/sessions'
                        % self.guest.uuid)

    def key_pair(self, key_type='ed25519'):
        path = os.path.join(self.dir, 'key-%d' % random.randrange(1 << 30))
        subprocess.run(['ssh-keygen', '-q', '-t', key_type, '-N', '',
                        '-f', path], check=True)
        return path

    def push(self, key_path, server=None, index=0, user=None):
        """Push the key as user (a member of the guest's project), or as
        the admin."""
        with open(key_path + '.pub') as f:
            public_key = f.read()
        status, body = self.deployment.api_request(
            'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
            % (server or self.guest.uuid),
            {'ssh_key': {'public_key': public_key, 'index': index}},
            token=user and '%s:%s' % (user, PROJECT))
        return status, json.loads(body or b'{}')

    def pushed(self, **kwargs):
        key_path = self.key_pair()
        status, body = self.push(key_path, **kwargs)
        self.assertEqual(202, status, body)
        return key_path, body['ssh_key']

    def known_hosts(self, answer, lines=None):
        path = os.path.join(self.dir, 'known_hosts')
        with open(path, 'w') as f:
            for line in lines or answer['host_keys']:
                f.write('[%s]:%d %s\n' % (answer['host'], answer['port'],
                                          line))
        return path

    def ssh_command(self, key_path, answer, user=None, known_hosts=None,
                    extra=()):
        return ['ssh', '-tt', '-F', '/dev/null', '-i', key_path,
                '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
                '-o', 'StrictHostKeyChecking=yes',
                '-o', 'UserKnownHostsFile=%s' % (
                    known_hosts or self.known_hosts(answer)),
                '-o', 'ConnectTimeout=20', '-p', str(answer['port']),
                *extra, '%s@%s' % (user or answer['user'], answer['host'])]

    def start_ssh(self, key_path, answer, **kwargs):
        proc = subprocess.Popen(
            self.ssh_command(key_path, answer, **kwargs),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.addCleanup(func_fixtures.terminate, proc, 5)
        return proc

    def run_ssh(self, key_path, answer, stdin=b'', timeout=60, **kwargs):
        return subprocess.run(
            self.ssh_command(key_path, answer, **kwargs), input=stdin,
            capture_output=True, timeout=timeout)

    def read_until(self, proc, pattern, timeout=30):
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)

        def recv(_):
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    time.sleep(0.02)
                    continue
                return data
            raise socket.timeout()
        return func_fixtures.read_until(recv, pattern, timeout)

    def shell_answers(self, proc, name='ssh'):
        base = random.randrange(10000, 90000)
        proc.stdin.write(b'echo %s-$((%d+42))\n' % (name.encode(), base))
        proc.stdin.flush()
        return self.read_until(
            proc, rb'\n%s-%d\r?\n' % (name.encode(), base + 42))

    def open_console(self, **kwargs):
        key_path, answer = self.pushed(**kwargs)
        proc = self.start_ssh(key_path, answer)
        if self.shell_answers(proc) is None:
            func_fixtures.terminate(proc, 5)
            self.fail('no echo over ssh: %s\n%s' % (
                proc.stderr.read().decode(errors='replace'),
                self.deployment.logs()[-3000:]))
        return proc, answer

    def stderr_of(self, proc, timeout=30):
        proc.wait(timeout)
        return proc.stderr.read().decode(errors='replace')


class SSHConsoleTest(SSHConsoleTestCase):

    @classmethod
    def make_world(cls):
        return SSHWorld(project_id=None, user_id=None)

    # The console -----------------------------------------------------------

    def test_pushed_key_opens_the_console_and_echo_round_trips(self):
        proc, answer = self.open_console()
        self.assertEqual(self.guest.uuid + '.port0', answer['user'])
        proc.stdin.close()
        stderr = self.stderr_of(proc)
        self.assertEqual(0, proc.returncode, stderr)
        self.assertIn('connected to console port 0', stderr)

    def test_terminal_size_is_given_as_an_stty_hint(self):
        # script(1) gives ssh a terminal of a known size, as a user's is.
        key_path, answer = self.pushed()
        command = ' '.join(self.ssh_command(key_path, answer))
        # Its input stays open: an end of input would reach the guest's
        # shell as a Ctrl-D through the terminal.
        proc = subprocess.Popen(
            ['script', '-qec', 'stty rows 30 cols 100; %s' % command,
             '/dev/null'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.addCleanup(func_fixtures.terminate, proc, 5)
        self.assertIsNotNone(self.read_until(
            proc, rb'stty rows 30 cols 100'))

    def test_break_then_h_is_sysrq_help_from_the_guest_kernel(self):
        proc, _ = self.open_console()
        # ssh's escape ~B, at the start of a line, sends an RFC 4335 break;
        # the key after it is SysRq, as on a real serial line, not typed.
        proc.stdin.write(b'\r~B')
        proc.stdin.flush()
        time.sleep(0.5)
        proc.stdin.write(b'h')
        proc.stdin.flush()
        if self.read_until(proc, rb'sysrq: HELP') is None:
            func_fixtures.terminate(proc, 5)
            self.fail('no SysRq help from the guest: %s\n%s' % (
                proc.stderr.read().decode(errors='replace'),
                self.deployment.logs()[-3000:]))
        self.assertTrue(self.shell_answers(proc, 'after-break'))
        proc.stdin.close()
        stderr = self.stderr_of(proc)
        self.assertIn('type a SysRq key', stderr)
        self.assertIn('SysRq h sent', stderr)

    def test_break_without_the_sysrq_policy_is_refused_and_sends_nothing(
            self):
        # The world's policy keeps SysRq for admins; MEMBER may still
        # push a key and use the console.
        proc, _ = self.open_console(user=MEMBER)
        proc.stdin.write(b'\r~B')
        proc.stdin.flush()
        time.sleep(0.5)
        proc.stdin.write(b'h')
        proc.stdin.flush()
        # The guest's kernel prints nothing (the replay of an earlier
        # test's help was read before the shell answered). Half the idle
        # timeout: a help that was sent prints within a second, and a
        # longer silence would end the session before the shell answers.
        self.assertIsNone(self.read_until(proc, rb'sysrq: HELP',
                                          IDLE_TIMEOUT / 2))
        # Nor was the key typed: the shell runs the next line as it is.
        self.assertTrue(self.shell_answers(proc, 'after-refusal'))
        proc.stdin.close()
        stderr = self.stderr_of(proc)
        self.assertEqual(0, proc.returncode, stderr)
        self.assertIn('SysRq is not allowed for you on this server '
                      '(policy serialproxy:serial_console:sysrq)', stderr)
        self.assertNotIn('SysRq h sent', stderr)
        self.assertNotIn('type a SysRq key', stderr)

    def test_key_opens_its_console_once(self):
        key_path, answer = self.pushed()
        first = self.run_ssh(key_path, answer, stdin=b'')
        self.assertEqual(0, first.returncode, first.stderr)
        second = self.run_ssh(key_path, answer)
        self.assertEqual(255, second.returncode)
        self.assertIn(b'No live one-time key', second.stderr)

    def test_ssh_session_is_listed_with_its_transport(self):
        self.open_console()
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/sessions'
            % self.guest.uuid)
        session, = json.loads(body)['sessions']
        self.assertEqual('ssh', session['transport'])
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics'
                                    % self.deployment.admin_port) as resp:
            scrape = resp.read().decode()
        counted = re.search(r'^serialproxy_ssh_sessions_total (\S+)$',
                            scrape, re.M)
        self.assertGreaterEqual(float(counted.group(1)), 1)
        active = re.search(r'^serialproxy_sessions_active (\S+)$', scrape,
                           re.M)
        self.assertEqual(1, float(active.group(1)))

    def consoleauth_slow_to_write(self, seconds):
        """Another writer holds consoleauth's SQLite file for seconds:
        what consoleauth is asked to write meanwhile (a lease release)
        waits, as it would behind a busy database or broker."""
        other = sqlite3.connect(
            os.path.join(self.deployment.dir, 'serialproxy.sqlite'),
            timeout=10, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute('BEGIN IMMEDIATE')
        timer = threading.Timer(seconds, other.execute, ['COMMIT'])
        timer.start()
        self.addCleanup(timer.join)

    def test_new_session_right_after_the_last_ended_opens_every_time(self):
        # Each next key is pushed while the session before it is open, so
        # the next ssh starts the moment the last returned, with no retry:
        # the lease must be back in consoleauth by then, also when
        # consoleauth takes its time (every other round).
        key_path, answer = self.pushed()
        for number in range(RECONNECTS):
            proc = self.start_ssh(key_path, answer)
            if self.shell_answers(proc, 'round%d' % number) is None:
                func_fixtures.terminate(proc, 5)
                self.fail('round %d: no echo: %s' % (
                    number, proc.stderr.read().decode(errors='replace')))
            key_path, answer = self.pushed()
            if number % 2:
                self.consoleauth_slow_to_write(0.5)
            proc.stdin.close()
            stderr = self.stderr_of(proc)
            self.assertEqual(0, proc.returncode,
                             'round %d: %s' % (number, stderr))
            self.assertIn('connected to console port 0', stderr)

    def test_second_ssh_user_and_browser_get_in_use(self):
        self.open_console()
        key_path, answer = self.pushed()
        second = self.run_ssh(key_path, answer)
        self.assertEqual(1, second.returncode)
        self.assertRegex(second.stderr.decode(),
                         r'Console in use since \d{4}-')
        url = self.deployment.console_url(self.guest.uuid)
        error = self.assertRaises(
            websocket.WebSocketBadStatusException,
            websocket.create_connection, url, subprotocols=['binary'],
            timeout=20)
        self.assertEqual(409, error.status_code)

    def test_browser_session_keeps_ssh_out(self):
        url = self.deployment.console_url(self.guest.uuid)
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20)
        self.addCleanup(ws.close)
        key_path, answer = self.pushed()
        refused = self.run_ssh(key_path, answer)
        self.assertEqual(1, refused.returncode)
        self.assertIn(b'Console in use since', refused.stderr)

    def test_force_disconnect_ends_the_session_with_its_message(self):
        proc, _ = self.open_console()
        status, _ = self.deployment.api_request(
            'DELETE', '/v2.1/servers/%s/serial-console/sessions'
            % self.guest.uuid)
        self.assertEqual(204, status)
        stderr = self.stderr_of(proc)
        self.assertEqual(2, proc.returncode, stderr)
        self.assertIn('Disconnected by an operator', stderr)

    # Spectators and take-over, across the doors -------------------------

    def websocket_to(self, mode):
        url = self.deployment.console_url(self.guest.uuid) + '&mode=' + mode
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20)
        self.addCleanup(ws.close)
        return ws

    def test_websocket_spectator_watches_an_ssh_writer(self):
        # An SSH writer's lease names its proxy's relay: a websocket
        # spectator is seated (it was refused with 409 before).
        proc, _ = self.open_console()
        spectator = self.websocket_to('view')
        proc.stdin.write(b'echo WATCHED-$((2+3))\n')
        proc.stdin.flush()
        self.assertIsNotNone(func_fixtures.read_until(
            lambda _: spectator.recv_data()[1], rb'\nWATCHED-5\r?\n', 30))
        # Its keys reach nothing: a later round trip proves the spy's
        # line never arrived.
        spectator.send_binary(b'echo SPY-$((40+2))\n')
        after = self.shell_answers(proc, 'after')
        self.assertIsNotNone(after)
        self.assertNotIn(b'SPY-42', after)
        # The writer leaves: nothing more to watch.
        proc.stdin.close()
        self.assertEqual(0, proc.wait(30))
        self.assertEqual(1000, ts.close_frame(spectator)[0])

    def test_ssh_view_user_watches_a_websocket_writer_and_types_nothing(self):
        writer = self.websocket_to('write')
        self.assertIsNotNone(ts.shell_answers(writer, 'writer'))
        key_path, answer = self.pushed()
        watcher = self.start_ssh(key_path, answer,
                                 user=answer['user'] + '.view')
        # Printed until the watcher, seated a moment later, sees it.
        for attempt in range(10):
            writer.send_binary(b'echo WATCHED-$((%d+5))\n' % attempt)
            if self.read_until(watcher, rb'\nWATCHED-%d\r?\n' % (attempt + 5),
                               timeout=3) is not None:
                break
        else:
            self.fail('the .view user saw nothing: %s' % self.stderr_of(
                watcher, timeout=5))
        watcher.stdin.write(b'echo SPY-$((40+2))\n')
        watcher.stdin.flush()
        after = ts.shell_answers(writer, 'after')
        self.assertIsNotNone(after)
        self.assertNotIn(b'SPY-42', after)
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/sessions'
            % self.guest.uuid)
        self.assertEqual(['view', 'write'], sorted(
            s['mode'] for s in json.loads(body)['sessions']))
        # The writer leaves: the watcher is told and exits.
        writer.close()
        stderr = self.stderr_of(watcher)
        self.assertEqual(2, watcher.returncode, stderr)
        self.assertIn('watching console port 0', stderr)
        self.assertIn('nothing more to watch', stderr)

    def test_view_user_without_a_writer_is_told_there_is_nothing_to_watch(
            self):
        key_path, answer = self.pushed()
        refused = self.run_ssh(key_path, answer,
                               user=answer['user'] + '.view')
        self.assertEqual(1, refused.returncode, refused.stderr)
        self.assertIn(b'nothing to watch; connect without .view',
                      refused.stderr)

    def test_websocket_take_over_ends_the_ssh_writer_with_its_message(self):
        proc, _ = self.open_console()
        taker = self.websocket_to('take_over')
        self.assertIsNotNone(ts.shell_answers(taker, 'taker'))
        stderr = self.stderr_of(proc)
        self.assertEqual(2, proc.returncode, stderr)
        self.assertIn('taken over by another user', stderr)

    def test_serialproxy_console_ssh_opens_the_console(self):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'serialproxy.cmd.console', '--ssh',
             self.guest.uuid, '--api-url',
             'http://127.0.0.1:%d' % self.deployment.api_port],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.addCleanup(func_fixtures.terminate, proc, 5)
        self.assertIsNotNone(self.shell_answers(proc, 'cli'))
        proc.stdin.close()
        stderr = self.stderr_of(proc)
        self.assertEqual(0, proc.returncode, stderr)
        self.assertIn('connected to console port 0', stderr)

    def test_idle_session_ends_with_its_message(self):
        proc, _ = self.open_console()
        stderr = self.stderr_of(proc, timeout=IDLE_TIMEOUT + 15)
        self.assertEqual(2, proc.returncode, stderr)
        self.assertIn('Idle timeout', stderr)

    def test_session_ends_when_its_key_expires(self):
        # [console] enforce_session_timeout: the key's expiry is the
        # session's, as a token's is a websocket session's.
        proc, _ = self.open_console()
        deadline = time.monotonic() + KEY_TTL + 15
        while proc.poll() is None and time.monotonic() < deadline:
            self.shell_answers(proc, 'busy')
            time.sleep(2)
        stderr = self.stderr_of(proc)
        self.assertEqual(2, proc.returncode, stderr)
        self.assertIn('one-time key of this session expired', stderr)

    # One sign-in per key, one console per connection ------------------

    def signed_in_master(self, key_path, answer):
        """An ssh connection signed in with the key and no console
        channel (-N), whose control socket lets other ssh commands open
        channels on it; returns (process, control socket path)."""
        control = os.path.join(self.dir, 'control')
        proc = self.start_ssh(key_path, answer, extra=[
            '-N', '-o', 'ControlMaster=yes', '-o',
            'ControlPath=%s' % control])
        func_fixtures.wait_for(lambda: os.path.exists(control) or
                               proc.poll() is not None, 30,
                               'the ssh connection signed in')
        self.assertIsNone(proc.poll(), self.stderr_of(proc)
                          if proc.poll() is not None else '')
        return proc, control

    def connections_open(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics'
                                    % self.deployment.admin_port) as resp:
            scrape = resp.read().decode()
        found = re.search(r'^serialproxy_connections_open (\S+)$', scrape,
                          re.M)
        return float(found.group(1)) if found else 0.0

    def test_second_sign_in_with_the_same_key_is_refused(self):
        key_path, answer = self.pushed()
        self.signed_in_master(key_path, answer)
        second = self.run_ssh(key_path, answer)
        self.assertEqual(255, second.returncode, second.stderr)
        self.assertIn(b'No live one-time key', second.stderr)

    def test_connection_gets_one_console_channel(self):
        key_path, answer = self.pushed()
        master, control = self.signed_in_master(key_path, answer)
        before = self.connections_open()
        # consoleauth slow to lease: every channel asked for meanwhile is
        # waiting at once, and counted if the proxy took it.
        self.consoleauth_slow_to_write(2.5)
        channels = [subprocess.Popen(
            self.ssh_command(key_path, answer, extra=[
                '-o', 'ControlMaster=no', '-o', 'ControlPath=%s' % control]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE) for _ in range(EXTRA_CHANNELS + 1)]
        for proc in channels:
            self.addCleanup(func_fixtures.terminate, proc, 5)
        time.sleep(1.5)
        during = self.connections_open()
        outcomes = [proc.communicate(b'', timeout=60) for proc in channels]
        codes = sorted(proc.returncode for proc in channels)
        self.assertLessEqual(during, before + 1)
        self.assertEqual([0] + [255] * EXTRA_CHANNELS, codes, outcomes)
        for (_, stderr), proc in zip(outcomes, channels):
            if proc.returncode == 255:
                self.assertIn(b'Session open refused by peer', stderr)
        # The master connection is told why; once its console ended it
        # has none, and the proxy closes it after the grace.
        stderr = self.stderr_of(master, timeout=CONSOLE_GRACE + 20)
        self.assertEqual(EXTRA_CHANNELS, stderr.count(
            'administratively prohibited: One console channel per '
            'connection'), stderr)
        self.assertIn('No console channel opened', stderr)

    def test_connections_still_signing_in_count_per_address(self):
        # Connections that never sign in (they would until the login
        # timeout) fill the address's places, as websocket ones do.
        held = []
        for _ in range(MAX_PER_ADDRESS):
            sock = socket.create_connection(('127.0.0.1',
                                             self.world.ssh_port), 10)
            self.addCleanup(sock.close)
            sock.settimeout(10)
            self.assertTrue(sock.recv(64).startswith(b'SSH-2.0-'))
            held.append(sock)
        key_path, answer = self.pushed()
        refused = self.run_ssh(key_path, answer)
        self.assertEqual(255, refused.returncode, refused.stderr)
        self.assertIn(b'Too many connections from this address',
                      refused.stderr)
        # A place freed is a place to sign in.
        held.pop().close()
        func_fixtures.wait_for(
            lambda: self.run_ssh(key_path, answer).returncode == 0, 10,
            'a sign-in once a place is free')

    def test_signed_in_connection_without_a_console_is_closed(self):
        key_path, answer = self.pushed()
        proc = self.start_ssh(key_path, answer, extra=['-N'])
        started = time.monotonic()
        stderr = self.stderr_of(proc, timeout=CONSOLE_GRACE + 20)
        self.assertEqual(255, proc.returncode, stderr)
        self.assertIn('No console channel opened', stderr)
        self.assertGreaterEqual(time.monotonic() - started, CONSOLE_GRACE)

    # Keys that must not open it ----------------------------------------

    def test_expired_key_is_refused(self):
        key_path, answer = self.pushed()
        time.sleep(KEY_TTL + 1)
        refused = self.run_ssh(key_path, answer)
        self.assertEqual(255, refused.returncode)
        self.assertIn(b'No live one-time key', refused.stderr)

    def test_key_of_another_server_is_refused(self):
        key_path, answer = self.pushed()
        other = '7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b.port0'
        refused = self.run_ssh(key_path, answer, user=other)
        self.assertEqual(255, refused.returncode)
        self.assertIn(b'No live one-time key', refused.stderr)

    def test_key_for_port_0_does_not_open_port_1(self):
        key_path, answer = self.pushed()
        refused = self.run_ssh(key_path, answer,
                               user=self.guest.uuid + '.port1')
        self.assertEqual(255, refused.returncode)
        self.assertIn(b'console port 1', refused.stderr)

    # Host keys -------------------------------------------------------------

    def test_host_keys_match_their_fingerprints(self):
        _, answer = self.pushed()
        fingerprints = []
        for line in answer['host_keys']:
            out = subprocess.run(['ssh-keygen', '-l', '-f', '-'],
                                 input=line.encode(), capture_output=True,
                                 check=True).stdout.decode()
            fingerprints.append(out.split()[1])
        self.assertEqual(answer['host_key_fingerprints'], fingerprints)

    def test_wrong_host_key_fails_verification(self):
        key_path, answer = self.pushed()
        other = self.key_pair()
        with open(other + '.pub') as f:
            wrong = ' '.join(f.read().split()[:2])
        refused = self.run_ssh(key_path, answer, known_hosts=self.known_hosts(
            answer, lines=[wrong]))
        self.assertEqual(255, refused.returncode)
        self.assertIn(b'REMOTE HOST IDENTIFICATION HAS CHANGED',
                      refused.stderr)

    # Hostile input ---------------------------------------------------------

    def test_unknown_key_types_are_refused_by_the_api(self):
        status, body = self.deployment.api_request(
            'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
            % self.guest.uuid,
            {'ssh_key': {'public_key': 'ssh-dss AAAAB3NzaC1kc3MAAACBAP'}})
        self.assertEqual(400, status)
        self.assertIn(b'ssh-dss', body)

    def test_huge_user_name_is_refused(self):
        key_path, answer = self.pushed()
        refused = self.run_ssh(key_path, answer, user='x' * 5000)
        self.assertEqual(255, refused.returncode)

    def test_commands_and_subsystems_are_refused(self):
        key_path, answer = self.pushed()
        command = self.ssh_command(key_path, answer) + ['uname -a']
        refused = subprocess.run(command, capture_output=True, timeout=60)
        self.assertNotEqual(0, refused.returncode)
        self.assertIn(b'exec request failed', refused.stderr)
        key_path, answer = self.pushed()
        refused = subprocess.run(
            self.ssh_command(key_path, answer, extra=['-s']) + ['sftp'],
            capture_output=True, timeout=60)
        self.assertNotEqual(0, refused.returncode)

    def test_port_forwarding_is_refused(self):
        key_path, answer = self.pushed()
        forward = self.run_ssh(key_path, answer, extra=[
            '-o', 'ExitOnForwardFailure=yes', '-R',
            '%d:127.0.0.1:22' % func_fixtures.free_port()])
        self.assertNotEqual(0, forward.returncode)
        self.assertIn(b'forwarding failed', forward.stderr)

    def test_many_failed_sign_ins_are_rate_limited(self):
        key_path, answer = self.pushed()
        stranger = self.key_pair()
        for _ in range(MAX_AUTH_FAILURES):
            self.run_ssh(stranger, answer)
        limited = self.run_ssh(key_path, answer)
        self.assertEqual(255, limited.returncode)
        self.assertIn(b'Too many failed sign-ins', limited.stderr)
        # A minute later the address may try again.
        time.sleep(61)
        key_path, answer = self.pushed()
        self.assertEqual(0, self.run_ssh(key_path, answer).returncode)


class SSHOverRabbitWorld(func_fixtures.AllInOneWithGuest):
    """The four services as processes over RabbitMQ, the proxy with two
    workers that each serve SSH on the same port."""

    def _setUp(self):
        self.ssh_port = func_fixtures.free_port()
        self.guest = self.useFixture(func_fixtures.Guest(
            project_id=PROJECT, user_id=MEMBER))
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, options={
                **sysrq_for_admins_only(self),
                'console': {'workers': 2},
                'ssh': {'enabled': 'true', 'listen_host': '127.0.0.1',
                        'listen_port': self.ssh_port,
                        'public_host': '127.0.0.1',
                        'console_grace': CONSOLE_GRACE,
                        'max_auth_attempts_per_minute':
                            MAX_AUTH_FAILURES}}))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-proxy', 'serialproxy-api'):
            self.deployment.start(name)
        self.deployment.wait_ready()
        func_fixtures.wait_for(self._guest_registered, 60,
                               'the guest in the instance registry')


class SSHReplayWorld(SSHWorld):
    """An SSH world whose guest has a console log to replay."""
    serial_log = True


class SSHReplayLinesTest(SSHConsoleTestCase):
    """replay-lines=N in the user name (GCP's option) chooses how many
    lines of the console log a session is shown first."""

    @classmethod
    def make_world(cls):
        return SSHReplayWorld(project_id=None, user_id=None)

    def guest_printed_last(self, tag, count=5):
        """The guest prints tag-1 .. tag-count as the last lines of its
        console log: from a background job, so that no prompt follows."""
        proc, _ = self.open_console()
        proc.stdin.write(b'(sleep 1; for i in $(seq 1 %d); do echo %s-$i; '
                         b'done) &\n' % (count, tag))
        proc.stdin.flush()
        last = b'%s-%d\r\n' % (tag, count)
        self.assertIsNotNone(self.read_until(proc, re.escape(last)))
        proc.stdin.close()
        self.stderr_of(proc)

        def logged():
            # The log lags the socket a little.
            status, body = self.deployment.api_request(
                'GET', '/v2.1/servers/%s/serial-console/output?start=-64'
                % self.guest.uuid)
            return status == 200 and base64.b64decode(json.loads(body)[
                'serial_console_output']['data']).endswith(last)
        func_fixtures.wait_for(logged, 20, 'the lines in the console log')

    def replayed_to(self, user_suffix, key=None):
        """What a session of <id>.port0<user_suffix> was shown before the
        shell answered, and its stderr."""
        key_path, answer = key or self.pushed()
        proc = self.start_ssh(key_path, answer,
                              user=answer['user'] + user_suffix)
        shown = self.shell_answers(proc)
        proc.stdin.close()
        stderr = self.stderr_of(proc)
        self.assertIsNotNone(shown, stderr)
        self.assertEqual(0, proc.returncode, stderr)
        return shown, stderr

    def test_replay_lines_in_the_user_name_choose_the_replay(self):
        tag = b'RL%d' % random.randrange(10000, 99999)
        self.guest_printed_last(tag)
        # A bad value refuses the sign-in, says why, and leaves the key
        # unused, for the right name.
        key = self.pushed()
        refused = self.run_ssh(*key,
                               user=key[1]['user'] + '.replay-lines=x')
        self.assertEqual(255, refused.returncode)
        self.assertIn(b"Bad console user name: replay-lines takes a whole "
                      b"number, 0 or more, not 'x'", refused.stderr)
        shown, _ = self.replayed_to('.replay-lines=3', key=key)
        banner = b'[recent console output]\x1b[0m\r\n'
        self.assertIn(banner, shown)
        replay = shown.split(banner, 1)[1].split(b'\r\n\x1b[2m[live]', 1)[0]
        self.assertEqual(b'%s-3\r\n%s-4\r\n%s-5\r\n' % (tag, tag, tag),
                         replay)
        # None at all with 0 (the proxy's own replay_lines is 50).
        shown, _ = self.replayed_to('.replay-lines=0')
        self.assertNotIn(b'recent console output', shown)
        self.assertNotIn(b'%s-5' % tag, shown)


class SSHProxyWorkersTest(SSHConsoleTest):
    """Host keys, sessions and disconnects through serialproxy-proxy's
    workers, with orders crossing RabbitMQ."""

    @classmethod
    def make_world(cls):
        return SSHOverRabbitWorld(project_id=None, user_id=None)

    def test_every_worker_shows_the_host_keys_the_api_names(self):
        self.assertEqual(2, self.deployment.logs().count(
            'SSH console server listening'))
        # Strict host key checking on each of several connections, which
        # the kernel spreads over the workers.
        for _ in range(6):
            key_path, answer = self.pushed()
            done = self.run_ssh(key_path, answer)
            self.assertEqual(0, done.returncode, done.stderr)

    # test_many_failed_sign_ins_are_rate_limited runs here too: the
    # kernel spreads the failures over both workers, which count them
    # together. Only these of SSHConsoleTest's do not: the rest are the
    # same code path.
    test_expired_key_is_refused = None
    # Connections per address are a worker's count, as websocket ones
    # are: this world keeps the default limit.
    test_connections_still_signing_in_count_per_address = None
    test_idle_session_ends_with_its_message = None
    test_session_ends_when_its_key_expires = None


MAX_SESSION_AGE = 3


class SSHMaxAgeWorld(SSHWorld):
    console_options = {'max_session_age': MAX_SESSION_AGE}


class SSHMaxSessionAgeTest(SSHConsoleTestCase):
    """[console] max_session_age ends SSH sessions as websocket ones."""

    @classmethod
    def make_world(cls):
        return SSHMaxAgeWorld(project_id=None, user_id=None)

    def test_busy_session_ends_at_max_session_age_with_its_message(self):
        proc, _ = self.open_console()
        opened_at = time.monotonic()
        deadline = opened_at + MAX_SESSION_AGE + 15
        while proc.poll() is None and time.monotonic() < deadline:
            self.shell_answers(proc, 'busy')
            time.sleep(0.5)
        stderr = self.stderr_of(proc)
        self.assertEqual(2, proc.returncode, stderr)
        self.assertIn('longest a console session may last', stderr)
        self.assertGreaterEqual(time.monotonic() - opened_at,
                                MAX_SESSION_AGE - 1)


# Breaks an SSH client that never reads sends, each answered on stderr.
BREAKS = 200000
BREAK_FLOOD_RSS_GROWTH_LIMIT_KIB = 50 * 1024
# Seconds without the proxy taking any of what is left to send: it
# stopped reading this client.
FLOOD_STALL_SECONDS = 5
# Seconds the proxy may go on reading a client that reads nothing.
FLOOD_READ_SECONDS = 60
STOPPED_READING = 'the proxy stopped reading'


class NeverIdleSSHWorld(SSHWorld):
    # Breaks, and the keys after them, are not activity: the session
    # lasts as long as the flood.
    console_options = {'idle_timeout': 0}


class SSHClientThatNeverReadsTest(func_fixtures.SharedWorldTestCase):
    """An SSH client that reads nothing and sends break after break: the
    proxy does not queue their answers without limit."""

    @classmethod
    def make_world(cls):
        return NeverIdleSSHWorld(project_id=None, user_id=None)

    def test_breaks_of_a_client_that_never_reads_hold_no_memory(self):
        deployment = self.world.deployment
        self.addCleanup(deployment.api_request, 'DELETE',
                        '/v2.1/servers/%s/serial-console/sessions'
                        % self.world.guest.uuid)
        tmp = self.useFixture(fixtures.TempDir()).path
        key_path = os.path.join(tmp, 'key')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                        '-f', key_path], check=True)
        with open(key_path + '.pub') as f:
            status, body = deployment.api_request(
                'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
                % self.world.guest.uuid,
                {'ssh_key': {'public_key': f.read(), 'index': 0}})
        self.assertEqual(202, status, body)
        answer = json.loads(body)['ssh_key']
        proxy, = [proc for label, proc, _ in deployment.processes
                  if label == 'serialproxy-all']
        outcome, grown = asyncio.run(
            self.flood_breaks(answer, key_path, proxy.pid))
        figures = ('%d breaks sent (%s): the proxy grew %d KiB'
                   % (BREAKS, outcome, grown))
        if os.environ.get('SERIALPROXY_PRINT_FIGURES'):
            print(figures)
        self.assertLess(grown, BREAK_FLOOD_RSS_GROWTH_LIMIT_KIB, figures)
        # The answers are bounded because the client is not read: read,
        # it would grow the proxy by about 190 bytes a break without end
        # (200,000 breaks grew it by 37 MiB), at asyncssh's pace.
        self.assertEqual(STOPPED_READING, outcome, figures)

    async def flood_breaks(self, answer, key_path, proxy_pid):
        """(whether the proxy took them all, its growth in KiB)."""
        # A small receive window, so that what it does not read backs up
        # into the proxy rather than into this process's socket.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((answer['host'], answer['port']))
        sock.setblocking(False)
        conn = await asyncssh.connect(
            sock=sock, username=answer['user'], known_hosts=None,
            client_keys=[key_path])
        try:
            chan, console = await conn.create_session(
                ConsoleOpened, term_type='xterm', encoding=None)
            await asyncio.wait_for(console.opened, 30)
            rss_before = proxy_world.tree_rss_kib(proxy_pid)
            # From now on this client reads nothing (asyncssh keeps its
            # transport to itself).
            transport = conn._transport
            transport.pause_reading()
            for number in range(BREAKS):
                chan.send_break(0)
                if number % 1000 == 0:
                    await asyncio.sleep(0)
            # Until the proxy took all, stopped taking any, or is still
            # taking them after FLOOD_READ_SECONDS...
            left, still = transport.get_write_buffer_size(), 0
            deadline = time.monotonic() + FLOOD_READ_SECONDS
            while left and still < FLOOD_STALL_SECONDS and \
                    time.monotonic() < deadline:
                await asyncio.sleep(1)
                now = transport.get_write_buffer_size()
                still = still + 1 if now == left else 0
                left = now
            if not left:
                outcome = 'all taken'
            elif still >= FLOOD_STALL_SECONDS:
                outcome = STOPPED_READING
            else:
                outcome = 'still reading after %d s' % FLOOD_READ_SECONDS
            # ...and is done with what it took.
            await proxy_idle(proxy_pid)
            return outcome, proxy_world.tree_rss_kib(proxy_pid) - rss_before
        finally:
            conn.abort()


class ConsoleOpened(asyncssh.SSHClientSession):
    """A client session that knows when the proxy opened the console."""

    def connection_made(self, chan):
        self.opened = asyncio.get_running_loop().create_future()

    def data_received(self, data, datatype):
        if b'connected to console port' in data and not self.opened.done():
            self.opened.set_result(None)


async def proxy_idle(pid, timeout=180):
    """Wait until a process uses less than a tenth of a CPU second in a
    second."""
    deadline = time.monotonic() + timeout
    used = cpu_ticks(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = cpu_ticks(pid)
        if now - used < os.sysconf('SC_CLK_TCK') / 10:
            return
        used = now
    raise AssertionError('process %d still busy after %d s' % (pid, timeout))


def cpu_ticks(pid):
    """User and system CPU time of a process and its descendants (the
    proxy is a child of serialproxy-all), in clock ticks."""
    ticks = 0
    for process in func_fixtures.process_tree(pid):
        with open('/proc/%d/stat' % process) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks
