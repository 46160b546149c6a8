"""A real proxy of two workers: recording its sessions, draining on SIGTERM,
reading its config files again on SIGHUP.

consoleauth and serialproxy-proxy as processes over RabbitMQ, echoing
stand-in guest ports (tests/harness/proxy_world.py). Recording: every
session of either worker leaves one asciicast file, named by instance,
index and session (never by token), readable by the proxy's user alone,
capped in size; old recordings are pruned at start-up. Drain: on SIGTERM
the proxy accepts nothing new, lets live sessions go on for
drain_timeout, then closes those left with 1001, releases every lease and
exits 0. Reload: SIGHUP makes the supervisor, each worker and consoleauth
read the files again (debug off takes effect at once), sessions go on,
and a file that no longer reads changes nothing.
"""

import json
import os
import re
import signal
import socket
import stat
import time
import uuid

import fixtures
from testtools import content

from tests.harness import fixtures as func_fixtures
from tests.harness import proxy_world
from tests.harness import testcase

RECORD_MAX_BYTES = 4096
DRAIN_SECONDS = 6


class RecordingTest(testcase.TestCase):

    def setUp(self):
        super().setUp()
        self.record_dir = self.useFixture(fixtures.TempDir()).path
        # Left by an earlier run: a recording past retention, another
        # file of the operator's, and a recent recording.
        self.stale = self._old_file('stale-0-old.cast', days=3)
        self.foreign = self._old_file('notes.txt', days=3)
        self.recent = self._old_file('recent-0-new.cast', days=0)
        self.guest = self.useFixture(proxy_world.GuestPort(proxy_world.echo))
        self.world = self.useFixture(proxy_world.ProxyWorld(
            workers=2, options={'console': {
                'record': self.record_dir,
                'record_max_bytes': RECORD_MAX_BYTES,
                'record_retention_days': 1}}))

    def _old_file(self, name, days):
        path = os.path.join(self.record_dir, name)
        with open(path, 'w') as f:
            f.write('{}\n')
        when = time.time() - days * 86400 - 60
        os.utime(path, (when, when))
        return path

    @staticmethod
    def recorded_text(path):
        """What a finished recording shows, or None while it is partial."""
        with open(path) as f:
            lines = f.read().splitlines()
        try:
            header, *events = [json.loads(line) for line in lines]
        except ValueError:
            return None
        if header.get('version') != 2 or not events:
            return None
        return ''.join(event[2] for event in events)

    def recordings(self):
        return sorted(name for name in os.listdir(self.record_dir)
                      if name.endswith('.cast')
                      and not name.startswith('recent-'))

    def test_each_session_of_either_worker_is_recorded_without_its_token(
            self):
        # Pruned at start-up: only the recording past retention.
        self.assertFalse(os.path.exists(self.stale))
        self.assertTrue(os.path.exists(self.foreign))
        self.assertTrue(os.path.exists(self.recent))

        tokens, served_by = [], set()
        for number in range(6):
            tokens.append(self.world.token(self.guest.port))
            client = self.world.connect(tokens[-1])
            served_by.add(proxy_world.worker_of(
                client, self.world.port, self.world.worker_pids()))
            payload = b'session-%d\r\n' % number
            if number == 0:
                # Past the size cap: the recording stops, the session not.
                payload = b'x' * (RECORD_MAX_BYTES * 2) + payload
            client.send(payload)
            self.assertEqual(payload, client.receive(len(payload)))
            client.close()
        self.addDetail('workers-serving', content.text_content(
            repr(served_by)))

        func_fixtures.wait_for(lambda: len(self.recordings()) == 6, 30,
                               'six recordings')
        # A recording is complete once its session has ended.
        func_fixtures.wait_for(
            lambda: self.world.consoleauth.list_sessions({}) == [], 30,
            'every session to end')
        texts = {}
        for name in self.recordings():
            path = os.path.join(self.record_dir, name)
            self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
            for token in tokens:
                self.assertNotIn(token, name)
            stem = name[:-len('.cast')]
            # instance-index-session: no token there.
            instance_uuid, index, session_id = \
                stem[:36], *stem[37:].split('-', 1)
            uuid.UUID(instance_uuid)
            self.assertTrue(index.isdigit(), name)
            self.assertEqual('-', stem[36], name)
            uuid.UUID(session_id)
            texts[name] = func_fixtures.wait_for(
                lambda: self.recorded_text(path), 10,
                'the recording %s written' % name)
            self.assertLessEqual(os.path.getsize(path),
                                 RECORD_MAX_BYTES + 200)
        joined = '\n'.join(texts.values())
        for token in tokens:
            self.assertNotIn(token, joined)
        for number in range(1, 6):
            self.assertEqual(1, sum('session-%d\r\n' % number in text
                                    for text in texts.values()), number)
        capped = [text for text in texts.values()
                  if 'recording stopped at its size limit' in text]
        self.assertEqual(1, len(capped))
        self.assertNotIn('session-0', capped[0])


class DrainTest(testcase.TestCase):

    def setUp(self):
        super().setUp()
        self.guest = self.useFixture(proxy_world.GuestPort(proxy_world.echo))
        self.world = self.useFixture(proxy_world.ProxyWorld(
            workers=2, options={'console': {
                'drain_timeout': DRAIN_SECONDS}}))

    def echoes(self, client, payload):
        client.send(payload)
        self.assertEqual(payload, client.receive(len(payload)))

    def test_sigterm_drains_live_sessions_then_closes_them_with_1001(self):
        leaving, staying = [], []
        for number in range(4):
            client = self.world.connect(self.world.token(self.guest.port))
            self.addCleanup(client.close)
            self.echoes(client, b'before-%d\n' % number)
            (leaving if number % 2 else staying).append(client)
        self.assertEqual(4, len(self.world.consoleauth.list_sessions({})))

        self.world.deployment.stop(self.world.proxy, signal.SIGTERM,
                                   wait=False)
        stopped_at = time.monotonic()
        # New sessions are refused at once: nothing listens any more.
        token = self.world.token(self.guest.port)
        func_fixtures.wait_for(lambda: self._refused(token), 5,
                               'new connections to be refused')
        # Live sessions go on meanwhile; some end on their own.
        for number, client in enumerate(staying + leaving):
            self.echoes(client, b'draining-%d\n' % number)
        for client in leaving:
            client.close()
        # The rest are closed with 1001 once the drain is over.
        for client in staying:
            client.sock.settimeout(DRAIN_SECONDS + 10)
            closed = self.assertRaises(proxy_world.Closed, client.receive, 1)
            self.assertEqual((1001, 'Console proxy shutting down'),
                             (closed.code, closed.reason))
            self.assertGreaterEqual(time.monotonic() - stopped_at,
                                    DRAIN_SECONDS - 1)
        self.assertEqual(0, self.world.proxy.wait(DRAIN_SECONDS + 15))
        # Every lease was released on the way out, not left to expire.
        self.assertEqual([], self.world.consoleauth.list_sessions({}))

    def _refused(self, token):
        try:
            client = self.world.connect(token, timeout=5)
        except ConnectionRefusedError:
            return True
        except proxy_world.Refused as exc:
            self.assertEqual(503, exc.status, exc.body)
            return True
        except (proxy_world.Closed, socket.timeout, ConnectionResetError):
            return False  # accepted by a listener being closed
        client.close()
        return False


class ReloadTest(testcase.TestCase):

    def setUp(self):
        super().setUp()
        self.guest = self.useFixture(proxy_world.GuestPort(proxy_world.echo))
        self.world = self.useFixture(proxy_world.ProxyWorld(workers=2))
        self.deployment = self.world.deployment

    def service(self, label):
        for service in self.deployment.processes:
            if service.label == label:
                return service
        raise AssertionError('no service %s' % label)

    def log(self, label):
        return self.service(label).log()

    def set_debug(self, value):
        with open(self.deployment.config_file) as f:
            text, count = re.subn(r'(?m)^debug = \w+$',
                                  'debug = %s' % value, f.read())
        self.assertEqual(1, count)
        with open(self.deployment.config_file, 'w') as f:
            f.write(text)

    def hup(self, *procs):
        for proc in procs:
            proc.send_signal(signal.SIGHUP)

    def test_sighup_turns_debug_off_in_every_process_and_sessions_go_on(
            self):
        client = self.world.connect(self.world.token(self.guest.port))
        self.addCleanup(client.close)
        client.send(b'before\n')
        self.assertEqual(b'before\n', client.receive(7))
        consoleauth = self.service('serialproxy-consoleauth').proc
        marks = {label: len(self.log(label)) for label in
                 ('serialproxy-proxy', 'serialproxy-consoleauth')}
        workers_before = sorted(self.world.worker_pids())

        self.set_debug('false')
        self.hup(self.world.proxy, consoleauth)

        changed = 'Config files read again: 1 option(s) changed in place'
        # The supervisor and each of its two workers; consoleauth.
        func_fixtures.wait_for(
            lambda: self.log('serialproxy-proxy').count(changed) == 3 and
            self.log('serialproxy-consoleauth').count(changed) == 1,
            15, 'every process to read its config again')
        self.assertEqual(3, self.log('serialproxy-proxy').count(
            'Option DEFAULT.debug changed from [true] to [false]'))
        # The live session was not touched; new ones open; nothing
        # the proxy logs from now on is at DEBUG.
        client.send(b'after\n')
        self.assertEqual(b'after\n', client.receive(6))
        other = self.world.connect(self.world.token(self.guest.port))
        self.addCleanup(other.close)
        other.send(b'new\n')
        self.assertEqual(b'new\n', other.receive(4))
        self.assertEqual(workers_before, sorted(self.world.worker_pids()))
        for label, mark in marks.items():
            after = self.log(label)[mark:]
            self.assertNotIn(' DEBUG ', after.split(changed, 1)[1], label)
            self.assertNotIn('died', after, label)

    def test_a_config_file_that_no_longer_reads_changes_nothing(self):
        self.world.expect_log_error(
            'The config files could not be read again, nothing changed',
            'the test breaks the config file before SIGHUP',
            'serialproxy-proxy')
        workers_before = sorted(self.world.worker_pids())
        with open(self.deployment.config_file) as f:
            good = f.read()
        with open(self.deployment.config_file, 'w') as f:
            f.write(good + '\n[broken\n')
        self.hup(self.world.proxy)
        func_fixtures.wait_for(
            lambda: self.log('serialproxy-proxy').count(
                'could not be read again') == 3,
            15, 'the supervisor and both workers to refuse the file')
        client = self.world.connect(self.world.token(self.guest.port))
        self.addCleanup(client.close)
        client.send(b'still\n')
        self.assertEqual(b'still\n', client.receive(6))
        self.assertEqual(workers_before, sorted(self.world.worker_pids()))
        # Mended, the next SIGHUP reads it.
        with open(self.deployment.config_file, 'w') as f:
            f.write(good)
        self.hup(self.world.proxy)
        func_fixtures.wait_for(
            lambda: self.log('serialproxy-proxy').count(
                'Config files read again: 0 option(s)') == 3,
            15, 'the mended file to be read')
