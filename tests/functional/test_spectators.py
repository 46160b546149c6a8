"""Spectators (mode=view) and take-over (mode=take_over), for real.

Two proxies (the second of two workers) share consoleauth over RabbitMQ,
leases in MariaDB; the console is a real QEMU guest's serial port. Only
the writer's proxy worker holds the guest connection: spectators on the
other proxy and worker get its output through the relay.
"""

import json
import os
import re
import socket
import struct
import time

import fixtures
import websocket

from tests.harness import fixtures as func_fixtures
from tests.functional import test_sessions as ts

MAX_SPECTATORS = 2


def with_mode(url, mode):
    return url + '&mode=' + mode


def output_until(ws, pattern, timeout=30):
    """Console bytes (binary frames only) up to pattern, else None."""
    def recv(_):
        while True:
            opcode, data = ws.recv_data()
            # The proxy's status notes to a writer are text frames.
            if opcode != websocket.ABNF.OPCODE_TEXT:
                return data
    return func_fixtures.read_until(recv, pattern, timeout)


def status_notes(ws, timeout=10):
    """The proxy's text frames to the writer, as dicts, until a quiet
    moment (console bytes are skipped)."""
    notes = []
    ws.settimeout(1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                notes.append(json.loads(data))
    except (websocket.WebSocketTimeoutException, TimeoutError):
        pass
    finally:
        ws.settimeout(20)
    return notes


class SpectatorsTest(ts.TwoProxiesWorld):
    options = {'console': {'max_spectators': MAX_SPECTATORS,
                           'spectator_buffer_bytes': 64 * 1024}}

    def writer_and_spectators(self):
        writer = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(writer, 'writer'))
        # One spectator on the writer's proxy, one on the other.
        near = self.connect(with_mode(self.url(), 'view'))
        far = self.connect(ts.on_port(with_mode(self.url(), 'view'),
                                      self.port_b))
        return writer, near, far

    def test_spectators_see_the_writers_output_and_cannot_type(self):
        writer, near, far = self.writer_and_spectators()
        # The spectators' keys are dropped: the guest never computes this.
        for spectator in (near, far):
            spectator.send_binary(b'echo SPY-$((40+2))\n')
        marker = b'\nWATCHED-5\r?\n'
        writer.send_binary(b'echo WATCHED-$((2+3))\n')
        seen = [output_until(ws, marker) for ws in (writer, near, far)]
        for output in seen:
            self.assertIsNotNone(output)
            self.assertNotIn(b'SPY-42', output)
        # A later round trip proves the spy's line never arrived late.
        after = ts.shell_answers(writer, 'after')
        self.assertIsNotNone(after)
        self.assertNotIn(b'SPY-42', after)

    def test_sessions_list_shows_modes_and_writer_hears_the_count(self):
        writer, near, far = self.writer_and_spectators()
        # As the page does: a client that speaks text hears the notes,
        # the first bringing the count.
        writer.send(json.dumps({'permissions': True}))
        notes = status_notes(writer)
        self.assertIn({'spectators': 2}, notes)
        listed = self.deployment.run('serialproxy-manage', 'sessions',
                                     'list', '--instance', self.guest.uuid)
        modes = re.findall(r'\s(write|view)\s', listed.stdout)
        self.assertEqual(['view', 'view', 'write'], sorted(modes))
        far.close()
        self.assertIn({'spectators': 1}, status_notes(writer))

    def test_writer_sending_binary_only_receives_binary_only(self):
        # Horizon's page, Nova's ws4py client and tempest's client write
        # every text frame into the console: such a client is never
        # sent one, while spectators come and go and take it over.
        writer = self.connect(self.url())
        opcodes = set()

        def recv(_):
            frame = writer.recv_frame()
            opcodes.add(frame.opcode)
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                raise AssertionError('closed: %r' % frame.data)
            return frame.data

        def round_trip(marker, watchers=()):
            writer.send_binary(b'echo %s-$((2+3))\n' % marker)
            pattern = b'\n%s-5\r?\n' % marker
            self.assertIsNotNone(func_fixtures.read_until(recv, pattern,
                                                          30))
            # Output reached them: they are on the writer's relay.
            for spectator in watchers:
                self.assertIsNotNone(output_until(spectator, pattern))

        round_trip(b'alone')
        near = self.connect(with_mode(self.url(), 'view'))
        round_trip(b'near', [near])
        far = self.connect(ts.on_port(with_mode(self.url(), 'view'),
                                      self.port_b))
        round_trip(b'far', [near, far])
        near.close()
        round_trip(b'near-left', [far])
        far.close()
        round_trip(b'far-left')
        self.connect(ts.on_port(with_mode(self.url(), 'take_over'),
                                self.port_b))
        deadline = time.monotonic() + 30
        while True:
            if time.monotonic() > deadline:
                raise AssertionError('no close frame 30 s after the take-over')
            frame = writer.recv_frame()
            opcodes.add(frame.opcode)
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                break
        self.assertEqual(4006, struct.unpack('>H', frame.data[:2])[0])
        self.assertEqual({websocket.ABNF.OPCODE_BINARY,
                          websocket.ABNF.OPCODE_CLOSE}, opcodes)

    def test_spectators_past_the_cap_are_refused_with_429(self):
        self.writer_and_spectators()
        status, body = ts.refusal(with_mode(self.url(), 'view'))
        self.assertEqual(429, status)
        self.assertEqual('This console already has %d spectators'
                         % MAX_SPECTATORS, body.strip())

    def test_nothing_to_watch_without_a_writer_is_a_409(self):
        status, body = ts.refusal(with_mode(self.url(), 'view'))
        self.assertEqual(409, status)
        self.assertIn('nothing to watch', body)

    def test_force_disconnect_ends_spectators_too(self):
        writer, near, far = self.writer_and_spectators()
        out = self.deployment.run('serialproxy-manage', 'sessions',
                                  'disconnect', self.guest.uuid)
        self.assertIn('Disconnected 3 session', out.stdout)
        for ws in (writer, near, far):
            self.assertEqual(4001, ts.close_frame(ws)[0])

    def test_spectators_end_when_the_writer_leaves(self):
        writer, near, far = self.writer_and_spectators()
        writer.close()
        for ws in (near, far):
            code, reason = ts.close_frame(ws)
            self.assertEqual(1000, code)
            self.assertIn('left', reason)

    def test_take_over_closes_the_writer_with_4006_and_types_at_once(self):
        first = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(first, 'first'))
        started = time.monotonic()
        second = self.connect(ts.on_port(
            with_mode(self.url(), 'take_over'), self.port_b))
        self.assertEqual((4006, 'The console was taken over by another '
                                'user'), ts.close_frame(first))
        self.assertIsNotNone(ts.shell_answers(second, 'second'))
        self.assertLess(time.monotonic() - started, 10)
        # The new writer holds the console: a plain connect is a 409.
        self.assertEqual(409, ts.refusal(self.url())[0])
        listed = self.deployment.run('serialproxy-manage', 'sessions',
                                     'list', '--instance', self.guest.uuid)
        self.assertIn('take_over', listed.stdout)

    def test_take_over_on_the_same_proxy(self):
        first = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(first, 'first'))
        second = self.connect(with_mode(self.url(), 'take_over'))
        self.assertEqual(4006, ts.close_frame(first)[0])
        self.assertIsNotNone(ts.shell_answers(second, 'second'))

    def test_slow_spectator_is_dropped_while_the_writer_reads_everything(
            self):
        # How long the writer waits beside it is a figure, not a test:
        # python -m tools.bench spectator_echo.
        writer = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(writer, 'warm'))
        # A small receive window, so that what it does not read backs up
        # into the proxy rather than into this process's socket.
        slow = websocket.create_connection(
            ts.on_port(with_mode(self.url(), 'view'), self.port_b),
            subprotocols=['binary'], timeout=20,
            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        self.addCleanup(slow.close)
        # The writer is answered beside it.
        round_trips(writer, 'watched-')
        # Then the guest prints far more than the spectator's buffer
        # holds: it is dropped, and the writer reads everything.
        writer.send_binary(b'i=0; while [ $i -lt 12000 ]; do echo '
                           b'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                           b'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                           b'$i; i=$((i+1)); done; echo FLOOD-$((1+1))\n')
        self.assertIsNotNone(output_until(writer, b'\nFLOOD-2\r?\n', 120))
        code, _ = ts.close_frame(slow, timeout=60)
        self.assertEqual(4007, code)


def round_trips(ws, label, count=10):
    """count echo round trips of the guest's shell, each answered."""
    for number in range(count):
        marker = '%s%d' % (label, number)
        ws.send_binary(b'echo %s-$((2+3))\n' % marker.encode())
        if output_until(ws, (r'\n%s-5\r?\n' % marker).encode()) is None:
            raise AssertionError('no answer to %s' % marker)


# The guest's project; noauth makes every caller a member and reader of
# the project it names, and the policy file below takes the console URL
# rule from WATCHER: a reader-only user, as far as consoles go.
PROJECT = 'b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7'
WATCHER = 'watcher'
WATCH_ONLY_BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial',
                                      'mode': 'view'}}


class WatchOnlyTest(ts.TwoProxiesWorld):
    """Watch-only URLs ({"mode": "view"}): read-only whatever their
    mode= says, never the writer's seat, and a reader's to ask for."""

    guest_owner = {'project_id': PROJECT, 'user_id': 'owner'}

    def setUp(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'policy.yaml')
        with open(path, 'w') as f:
            f.write('"serialproxy:remote_consoles:create": '
                    '"rule:context_is_admin or (role:member and '
                    'project_id:%%(project_id)s and not user_id:%s)"\n'
                    % WATCHER)
        self.options = {'oslo_policy': {'policy_file': path}}
        super().setUp()

    def ask(self, body, user=WATCHER):
        return self.deployment.api_request(
            'POST', '/v2.1/servers/%s/remote-consoles' % self.guest.uuid,
            body, version='2.6', token='%s:%s' % (user, PROJECT))

    def watch_only_url(self):
        status, reply = self.ask(WATCH_ONLY_BODY)
        self.assertEqual(200, status, reply)
        return json.loads(reply)['remote_console']['url']

    def test_reader_gets_a_watch_only_url_and_no_writers_url(self):
        self.url()     # once the guest is registered
        self.assertIn('token=', self.watch_only_url())
        status, reply = self.ask({'remote_console': {'protocol': 'serial',
                                                     'type': 'serial'}})
        self.assertEqual(403, status, reply)

    def test_watch_only_url_watches_whatever_its_mode_and_never_types(self):
        writer = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(writer, 'writer'))
        url = self.watch_only_url()
        # No mode and mode=write, on the writer's proxy and on the other.
        watchers = [self.connect(url), self.connect(with_mode(url, 'write')),
                    self.connect(ts.on_port(url, self.port_b))]
        for watcher in watchers:
            watcher.send_binary(b'echo SPY-$((40+2))\n')
        marker = b'\nWATCHED-5\r?\n'
        writer.send_binary(b'echo WATCHED-$((2+3))\n')
        for ws in [writer] + watchers:
            output = output_until(ws, marker)
            self.assertIsNotNone(output)
            self.assertNotIn(b'SPY-42', output)
        # A later round trip proves no watcher's line arrived late.
        after = ts.shell_answers(writer, 'after')
        self.assertIsNotNone(after)
        self.assertNotIn(b'SPY-42', after)
        listed = self.deployment.run('serialproxy-manage', 'sessions',
                                     'list', '--instance', self.guest.uuid)
        modes = re.findall(r'\s(write|view)\s', listed.stdout)
        self.assertEqual(['view', 'view', 'view', 'write'], sorted(modes))

    def test_take_over_with_a_watch_only_url_is_403_with_the_reason(self):
        writer = self.connect(self.url())
        self.assertIsNotNone(ts.shell_answers(writer, 'writer'))
        url = with_mode(self.watch_only_url(), 'take_over')
        for attempt in (url, ts.on_port(url, self.port_b)):
            status, body = ts.refusal(attempt)
            self.assertEqual(403, status)
            self.assertEqual('This console URL is watch-only: it does not '
                             'allow mode=take_over', body.strip())
        self.assertIsNotNone(ts.shell_answers(writer, 'still-mine'))

    def test_watch_only_url_never_takes_a_free_console(self):
        url = self.url()
        status, body = ts.refusal(self.watch_only_url())
        self.assertEqual(409, status)
        self.assertIn('nothing to watch', body)
        # The console stayed free for its writer.
        self.assertIsNotNone(ts.shell_answers(self.connect(url), 'writer'))
