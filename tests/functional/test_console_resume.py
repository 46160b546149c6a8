"""Resuming a console stream by byte offset, on a real QEMU guest.

serialproxy-all (websocket and SSH doors) and a guest whose port 0 logs
to a file virtlogd writes; clients ask for the stream by offset
(resume=N, offsets=1 on the console URL; .resume=N in the SSH user
name) and are checked against what the guest printed, through the
history API.
"""

import asyncio
import json
import os
import random
import re
import socket
import struct
import time

import asyncssh
from testtools import content
import websocket

from tests.functional import test_console_history as history
from tests.harness import fixtures as func_fixtures

# Connections dropped with a TCP reset while the guest prints.
RESETS = 100
COUNT = history.COUNT
# Bytes a client reads, at most, before its connection is reset.
READ_BEFORE_RESET = 16 * 1024


def reset(ws):
    """Drop a websocket's connection with a TCP reset: no close frame,
    no FIN (SO_LINGER 0)."""
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack('ii', 1, 0))
    ws.sock.close()


class ResumeWorld(history.HistoryWorld):
    """The history world, with the proxy's SSH door open."""

    def deployment_options(self):
        self.ssh_port = func_fixtures.free_port()
        return {'ssh': {'enabled': 'true', 'listen_host': '127.0.0.1',
                        'listen_port': self.ssh_port,
                        'public_host': '127.0.0.1'}}


class ConsoleResumeTest(func_fixtures.SharedWorldTestCase):

    @classmethod
    def make_world(cls):
        return ResumeWorld()

    def setUp(self):
        super().setUp()
        self.tag = random.randrange(10 ** 6, 10 ** 7)
        self.url = self.world.deployment.console_url(self.world.guest.uuid)
        # Leave the console free for the next test.
        self.addCleanup(self.world.deployment.api_request, 'DELETE',
                        '/v2.1/servers/%s/serial-console/sessions'
                        % self.world.guest.uuid)

    def connect(self, query, timeout=30):
        """(websocket, its stream note), retrying while the console is
        still held by the session just dropped (409 until the proxy has
        given its lease back)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ws = websocket.create_connection(
                    self.url + '&' + query, subprotocols=['binary'],
                    timeout=10)
                break
            except websocket.WebSocketBadStatusException as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        opcode, data = ws.recv_data()
        self.assertEqual(websocket.ABNF.OPCODE_TEXT, opcode,
                         'the first frame is not the stream note')
        return ws, json.loads(data)['stream']

    def read_binary(self, ws, at_least=None, until=None, timeout=2):
        """Binary bytes until at_least of them or until matches, or
        timeout seconds without a frame."""
        data = bytearray()
        ws.settimeout(timeout)
        while True:
            try:
                opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                return bytes(data)
            self.assertEqual(websocket.ABNF.OPCODE_BINARY, opcode,
                             'a text frame after the note, unasked')
            data += frame
            if at_least is not None and len(data) >= at_least:
                return bytes(data)
            if until is not None and re.search(until, data):
                return bytes(data)

    def wait_idle(self):
        """The log's end once the guest printed nothing for a while."""
        end = self.world.end()
        while True:
            time.sleep(0.5)
            now = self.world.end()
            if now == end:
                return end
            end = now

    def assertSequence(self, data, offset=0, sessions=()):
        """data holds seq's output between the markers; offset: the
        stream offset of data; sessions: (offset, note) of each
        connection, named on a failure."""
        begin = data.index(b'start-%d\r\n' % (self.tag + 1))
        begin += len(b'start-%d\r\n' % (self.tag + 1))
        end = data.index(b'\ndone-%d\r\n' % (self.tag + 1), begin)
        numbers = data[begin:end].replace(b'\r', b'').split(b'\n')
        expected = [b'%d' % i for i in range(1, COUNT + 1)]
        if numbers != expected:
            wrong = next((i for i, (a, b) in enumerate(zip(numbers,
                                                           expected))
                          if a != b), min(len(numbers), COUNT))
            at = offset + begin + len(b'\n'.join(
                data[begin:end].split(b'\n')[:wrong]))
            near = [s for s in sessions if abs(s[0] - at) < 20000]
            self.fail('line %d is %r, not %r (around: %r), at offset %d; '
                      'sessions near it: %r' % (
                          wrong, numbers[wrong], expected[wrong],
                          numbers[max(0, wrong - 3):wrong + 3], at, near))

    def test_a_hundred_resets_lose_and_repeat_nothing(self):
        rng = random.Random(self.tag)
        ws, note = self.connect('offsets=1')
        self.assertIsNone(note['requested'])
        offset = note['offset']
        self.assertIsInstance(offset, int)
        received = bytearray()
        ws.send_binary(b'echo start-$((%d+1)); seq 1 %d; echo done-$((%d+1))'
                       b'\n' % (self.tag, COUNT, self.tag))
        done = re.compile(rb'\ndone-%d\r\n' % (self.tag + 1))
        resets_while_printing = 0
        sessions = []
        for _ in range(RESETS):
            received += self.read_binary(
                ws, at_least=rng.randint(1, READ_BEFORE_RESET))
            if not done.search(received):
                resets_while_printing += 1
            reset(ws)
            resume = offset + len(received)
            ws, note = self.connect('resume=%d' % resume)
            sessions.append((resume, note))
            self.assertEqual(resume, note['requested'])
            self.assertEqual(resume, note['offset'])
        received += self.read_binary(ws, until=done, timeout=60)
        ws.close()
        self.addDetail('seam decisions', content.text_content('\n'.join(
            line for line in self.world.deployment.logs().splitlines()
            if 'resumed at' in line)))
        self.addDetail('resets while seq printed', content.text_content(
            '%d of %d' % (resets_while_printing, RESETS)))
        self.assertSequence(bytes(received), offset, sessions)
        # What the client got is the guest's stream, byte for byte.
        self.assertEqual(bytes(received),
                         self.world.read(offset, len(received)))
        # The guest printed while most connections were dropped.
        self.assertGreater(resets_while_printing, RESETS // 2)

    def test_an_idle_guest_resumes_with_an_empty_history(self):
        end = self.wait_idle()
        ws, note = self.connect('resume=%d' % end)
        self.assertEqual(end, note['offset'])
        self.assertEqual(0, note['history'])
        self.assertEqual(b'', self.read_binary(ws, timeout=1))
        ws.send_binary(b'echo idle-$((%d+1))\n' % self.tag)
        got = self.read_binary(ws, until=rb'\nidle-%d\r\n' % (self.tag + 1))
        ws.close()
        self.assertEqual(got, self.world.read(end, len(got)))

    def test_resume_in_the_past_gives_the_bytes_from_there_then_live(self):
        end = self.wait_idle()
        start = max(0, end - 3000)
        ws, note = self.connect('resume=%d' % start)
        self.assertEqual({'offset': start, 'requested': start,
                          'first_available': self.world.page(0, 1)[1][
                              'first_available'],
                          'history': end - start}, note)
        got = self.read_binary(ws, at_least=end - start)
        ws.close()
        self.assertEqual(self.world.read(start, end - start), got)

    def test_resume_before_first_available_starts_there_and_says_so(self):
        """The agent's offset record says the log's oldest files were
        dropped (as virtlogd drops the oldest backup when it rotates
        past max_backups): what is kept starts later than 0."""
        self.wait_idle()
        record_path = os.path.join(self.world.deployment.dir,
                                   'console-history',
                                   '%s.json' % self.world.guest.uuid)
        dropped = 10 ** 7
        with open(record_path) as f:
            record = json.load(f)
        record['end'] += dropped
        for known in record['files'].values():
            known['start'] += dropped
        with open(record_path + '.tmp', 'w') as f:
            json.dump(record, f)
        os.replace(record_path + '.tmp', record_path)
        first_available = self.world.page(0, 1)[1]['first_available']
        self.assertGreaterEqual(first_available, dropped)
        ws, note = self.connect('resume=5')
        self.assertEqual({'offset': first_available, 'requested': 5,
                          'first_available': first_available},
                         {k: note[k] for k in ('offset', 'requested',
                                               'first_available')})
        got = self.read_binary(ws, at_least=note['history'])
        ws.close()
        self.assertEqual(self.world.read(first_available, note['history']),
                         got)

    def open_writer(self):
        """A writer who holds the console, as Nova's clients open it."""
        writer = websocket.create_connection(
            self.url, subprotocols=['binary'], timeout=10)
        self.addCleanup(writer.close)
        writer.recv_data()
        return writer

    def assert_resumes_beside_a_writer(self, mode, back, word, typist):
        """A session of mode that resumes back bytes before the end while
        a writer holds the console: after its note, the bytes from there
        up to the echo of word (typed by typist: 'writer' or 'self') are
        exactly the log's."""
        end = self.wait_idle()
        writer = self.open_writer()
        start = max(0, end - back)
        ws, note = self.connect('mode=%s&resume=%d' % (mode, start))
        self.assertEqual(start, note['offset'])
        keys = writer if typist == 'writer' else ws
        keys.send_binary(b'echo %s-$((%d+1))\n' % (word, self.tag))
        got = self.read_binary(ws, until=rb'\n%s-%d\r\n' % (
            word, self.tag + 1))
        ws.close()
        self.assertEqual(self.world.read(start, len(got)), got)

    def test_a_spectator_resumes_from_its_writers_relay(self):
        self.assert_resumes_beside_a_writer('view', 500, b'watched',
                                            'writer')

    def test_a_take_over_resumes_where_it_asks(self):
        # The guest connection the take-over makes is QEMU's once it let
        # the writer's go: what the guest prints meanwhile is still
        # joined.
        self.assert_resumes_beside_a_writer('take_over', 300, b'taken',
                                            'self')

    def test_a_client_that_asks_nothing_gets_no_note(self):
        ws = websocket.create_connection(self.url, subprotocols=['binary'],
                                         timeout=10)
        opcode, data = ws.recv_data()
        ws.close()
        self.assertEqual(websocket.ABNF.OPCODE_BINARY, opcode)
        # Today's replay of recent output, decorated.
        self.assertIn(b'[recent console output]', data)

    def test_bad_resume_is_400_with_a_reason(self):
        exc = self.assertRaises(
            websocket.WebSocketBadStatusException,
            websocket.create_connection, self.url + '&resume=abc',
            subprotocols=['binary'], timeout=10)
        self.assertEqual(400, exc.status_code)
        self.assertIn(b'byte offset', exc.resp_body)

    def test_ssh_resume_gives_the_bytes_from_the_offset(self):
        end = self.wait_idle()
        start = max(0, end - 2000)
        key = asyncssh.generate_private_key('ssh-ed25519')
        status, body = self.world.deployment.api_request(
            'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
            % self.world.guest.uuid,
            {'ssh_key': {'public_key': key.export_public_key(
                'openssh').decode(), 'index': 0}})
        self.assertEqual(202, status, body)
        answer = json.loads(body)['ssh_key']

        async def read():
            async with asyncssh.connect(
                    answer['host'], answer['port'], known_hosts=None,
                    username=answer['user'] + '.resume=%d' % start,
                    client_keys=[key]) as conn:
                process = await conn.create_process(
                    term_type='xterm', encoding=None)
                data = await asyncio.wait_for(
                    process.stdout.readexactly(end - start), 30)
                process.stdin.write_eof()
                return data
        got = asyncio.run(read())
        self.assertEqual(self.world.read(start, end - start), got)
