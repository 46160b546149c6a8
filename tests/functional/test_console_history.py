"""The console history API on a real QEMU guest, whose console log the
system's virtlogd writes and rotates.

The guest prints through its own shell: the test connects to the guest's
serial port (QEMU's TCP chardev, no proxy in between), types a command
and leaves. QEMU logs what the guest prints whether a client is
connected or not, so the guest prints at full speed into the log.

Rotation: virtlogd's settings are the machine's (shared with every other
test), so the test does not shrink max_size. It makes the guest print
enough to pass it instead (2 MiB, virtlogd's default, which
tools/setup-libvirt.sh writes), and places the rotation inside the
sequence it checks.
"""

import base64
import json
import os
import random
import re
import socket

import fixtures

from tests.harness import fixtures as func_fixtures

PROJECT = 'c0ffee00c0ffee00c0ffee00c0ffee00'
USER = 'f00df00df00df00df00df00df00df00d'
COUNT = 200000
# A line of `seq FILLER_FIRST ...` as the log holds it: 7 digits, CR LF.
FILLER_FIRST = 1000000
FILLER_LINE = 9
# virtlogd's max_size (its default; tools/setup-libvirt.sh writes it).
VIRTLOGD_MAX_SIZE = 2 * 1024 * 1024


class HistoryWorld(fixtures.Fixture):
    """serialproxy-all and a guest whose port 0 logs to a file of ours."""

    def _setUp(self):
        log_dir = self.useFixture(fixtures.TempDir()).path
        self.log = os.path.join(log_dir, 'console.log')
        self.guest = self.useFixture(func_fixtures.Guest(
            serial_log=self.log, project_id=PROJECT, user_id=USER))
        self.deployment = self.useFixture(func_fixtures.Deployment(
            options=self.deployment_options()))
        self.deployment.start('serialproxy-all')
        self.deployment.wait_ready()
        func_fixtures.wait_for(self._registered, 60,
                               'the guest in the instance registry')

    def deployment_options(self):
        """Options beyond the deployment's own ({section: {name:
        value}})."""
        return {}

    def _registered(self):
        self.deployment.check_alive()
        return self.page(0, 1)[0] == 200

    def page(self, start, max_bytes, token='%s:%s' % (USER, PROJECT)):
        """(status, serial_console_output with data decoded)."""
        query = '?max_bytes=%d' % max_bytes
        if start is not None:
            query += '&start=%d' % start
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/output%s'
            % (self.guest.uuid, query), token=token)
        if status != 200:
            return status, body
        page = json.loads(body)['serial_console_output']
        page['data'] = base64.b64decode(page['data'])
        return status, page

    def read(self, start, count):
        """count bytes of history from start, in as many pages as the
        API's cap takes."""
        data = b''
        while len(data) < count:
            status, page = self.page(start + len(data), count - len(data))
            if status != 200 or not page['data']:
                break
            data += page['data']
        return data

    def end(self):
        return self.page(None, 1)[1]['next']

    def type_command(self, command, started):
        """Type a command into the guest's shell; leave once the guest
        printed started (QEMU reads typed bytes only as fast as the
        guest's UART takes them, and drops the rest when we leave)."""
        with socket.create_connection((self.guest.address, self.guest.port),
                                      timeout=10) as sock:
            sock.sendall(command.encode() + b'\n')
            output = func_fixtures.read_until(sock.recv, started, 120)
            if output is None:
                raise AssertionError('the guest never started %r'
                                     % command)

    def wait_for_output(self, pattern, timeout=900):
        """Wait until the end of the log shows pattern."""
        regex = re.compile(pattern)

        def printed():
            self.deployment.check_alive()
            return regex.search(self.page(-4096, 4096)[1]['data'])
        func_fixtures.wait_for(printed, timeout, pattern.decode())


class ConsoleHistoryTest(func_fixtures.SharedWorldTestCase):

    @classmethod
    def make_world(cls):
        return HistoryWorld()

    def setUp(self):
        super().setUp()
        # A fresh marker per run: output of an earlier test never counts.
        self.tag = random.randrange(10 ** 6, 10 ** 7)

    def print_sequence(self, filler_lines=0):
        """Have the guest print `seq 1 COUNT` between two markers, after
        filler_lines lines of other numbers."""
        filler = ''
        if filler_lines:
            filler = 'seq %d %d; ' % (FILLER_FIRST,
                                      FILLER_FIRST + filler_lines - 1)
        # $((...)) keeps the markers out of the echoed command line.
        self.world.type_command(
            '%secho start-$((%d+1)); seq 1 %d; echo done-$((%d+1))'
            % (filler, self.tag, COUNT, self.tag),
            # The first line the command prints.
            started=b'\n%d\r?\n' % FILLER_FIRST if filler
            else b'start-%d\r?\n' % (self.tag + 1))
        self.world.wait_for_output(b'\ndone-%d\r?\n' % (self.tag + 1))

    def read_in_random_pages(self, pages=1000):
        """Everything kept, from first_available to the end, in pages of
        random sizes: about `pages` of them. Each page begins where the
        last one ended."""
        rng = random.Random(self.tag)
        status, first = self.world.page(0, 1)
        self.assertEqual(200, status)
        start = first['first_available']
        end = self.world.end()
        mean = max(1, (end - start) // pages)
        data, count = b'', 0
        while True:
            status, page = self.world.page(start, rng.randint(1, 2 * mean))
            self.assertEqual(200, status, page)
            self.assertEqual(start, page['start'])
            count += 1
            if not page['data']:
                self.assertEqual(start, page['next'])
                break
            data += page['data']
            self.assertEqual(start + len(page['data']), page['next'])
            start = page['next']
        self.assertGreaterEqual(count, pages / 2)
        return first['first_available'], data

    def sequence_offsets(self, data, first_available):
        """Offsets of the first and past the last byte of seq's lines."""
        begin = data.index(b'start-%d\r\n' % (self.tag + 1)) + len(
            b'start-%d\r\n' % (self.tag + 1))
        end = data.index(b'done-%d\r\n' % (self.tag + 1), begin)
        return first_available + begin, first_available + end

    def assertSequence(self, data, first_available):
        """The bytes between the markers are seq's lines, each once."""
        begin, end = self.sequence_offsets(data, first_available)
        printed = data[begin - first_available:end - first_available]
        numbers = printed.replace(b'\r', b'').split(b'\n')
        # The line break before "done".
        self.assertEqual(b'', numbers.pop())
        self.assertEqual(COUNT, len(numbers))
        self.assertEqual([b'%d' % i for i in range(1, COUNT + 1)], numbers)
        return begin, end

    def test_random_pages_give_every_number_once_in_order(self):
        self.print_sequence()
        first_available, data = self.read_in_random_pages()
        self.assertSequence(data, first_available)

    def test_random_pages_across_a_virtlogd_rotation(self):
        # Lines of filler that leave room for half of seq's output before
        # virtlogd's max_size; then the rotation falls inside the seq.
        current = os.path.getsize(self.world.log)
        seq_bytes = sum(len(b'%d\r\n' % i) for i in range(1, COUNT + 1))
        room = VIRTLOGD_MAX_SIZE - current - seq_bytes // 2
        if room < 0:
            room += VIRTLOGD_MAX_SIZE
        probe = max(0, self.world.end() - 4096)
        _, kept_before = self.world.page(probe, 4096)
        self.print_sequence(room // FILLER_LINE)
        rotated = [name for name in os.listdir(os.path.dirname(
            self.world.log)) if name.startswith('console.log.')]
        self.assertNotEqual([], rotated, 'virtlogd did not rotate')
        # Offsets read before the rotation still name the same bytes.
        _, kept_after = self.world.page(probe, len(kept_before['data']))
        self.assertEqual(kept_before, kept_after)
        newest_start = self.world.end() - os.path.getsize(self.world.log)
        first_available, data = self.read_in_random_pages()
        begin, end = self.assertSequence(data, first_available)
        # The file virtlogd started last begins inside the sequence.
        self.assertLess(begin, newest_start)
        self.assertLess(newest_start, end)

    def test_a_reader_of_another_project_reads_nothing(self):
        status, _ = self.world.page(0, 10, token='%s:%s' % (
            USER, 'badcafe0badcafe0badcafe0badcafe0'))
        self.assertEqual(404, status)

    def test_bad_pages_are_400(self):
        status, body = self.world.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/output?start=x'
            % self.world.guest.uuid)
        self.assertEqual(400, status)
        self.assertIn(b'start must be an integer', body)
