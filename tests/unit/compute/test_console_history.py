"""Offsets since boot over virtlogd's rotated files, on plain files."""

import base64
import os
import random

from serialproxy.compute import console_history
from serialproxy import exception
from tests.unit import base

UUID = '44444444-4444-4444-8444-444444444444'


class Virtlogd:
    """Writes a console log as virtlogd does: at max_size it renames
    <log>.(K-2) -> <log>.(K-1), ..., <log> -> <log>.0, dropping the
    oldest, and starts a new <log>; boot() deletes them all."""

    def __init__(self, path, max_size, max_backups, first_backup=0):
        self.path = path
        self.max_size = max_size
        self.max_backups = max_backups
        self.first_backup = first_backup
        self.printed = b''
        self.boot()

    def _backup(self, i):
        return '%s.%d' % (self.path, i + self.first_backup)

    def boot(self):
        for name in [self.path] + [self._backup(i)
                                   for i in range(self.max_backups)]:
            if os.path.exists(name):
                os.unlink(name)
        open(self.path, 'wb').close()
        self.printed = b''

    def _rotate(self):
        for i in range(self.max_backups - 1, 0, -1):
            if os.path.exists(self._backup(i - 1)):
                os.rename(self._backup(i - 1), self._backup(i))
        os.rename(self.path, self._backup(0))
        open(self.path, 'wb').close()

    def write(self, data):
        self.printed += data
        while data:
            size = os.path.getsize(self.path)
            room = self.max_size - size
            chunk, data = data[:room], data[room:]
            with open(self.path, 'ab') as f:
                f.write(chunk)
            if size + len(chunk) >= self.max_size:
                self._rotate()

    def kept(self):
        names = [self._backup(i) for i in range(self.max_backups - 1, -1, -1)]
        data = b''
        for name in names + [self.path]:
            if os.path.exists(name):
                with open(name, 'rb') as f:
                    data += f.read()
        return data


class ConsoleHistoryTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.log_dir = os.path.join(self.state_path, 'console-log')
        os.makedirs(self.log_dir)
        self.log = os.path.join(self.log_dir, UUID + '.log')
        self.histories = self.new_agent()

    def new_agent(self, max_bytes=console_history.READ_LIMIT):
        return console_history.ConsoleHistories(
            os.path.join(self.state_path, 'console-history'), max_bytes)

    def read(self, start=None, max_bytes=None, boot=1, histories=None):
        answer = (histories or self.histories).read(
            UUID, self.log, start, max_bytes, boot)
        answer['data'] = base64.b64decode(answer['data'])
        return answer

    def read_all(self, start, page_sizes=None):
        """Pages from start with start=next; each begins where asked."""
        data = b''
        while True:
            size = page_sizes() if page_sizes else 1000
            answer = self.read(start, size)
            self.assertEqual(start, answer['start'])
            if not answer['data']:
                return data, answer
            data += answer['data']
            start = answer['next']

    def test_offsets_count_from_the_first_byte_of_the_log(self):
        logd = Virtlogd(self.log, 1000, 3)
        logd.write(b'0123456789')
        self.assertEqual({'data': b'3456', 'start': 3, 'next': 7,
                          'first_available': 0, 'end': 10},
                         self.read(3, 4))

    def test_no_start_is_the_last_max_bytes_and_negative_that_many(self):
        logd = Virtlogd(self.log, 1000, 3)
        logd.write(b'0123456789')
        self.assertEqual((b'789', 7), self.page(None, 3))
        self.assertEqual((b'6789', 6), self.page(-4, 100))
        self.assertEqual((b'0123456789', 0), self.page(-400, 100))

    def page(self, start, max_bytes):
        answer = self.read(start, max_bytes)
        return answer['data'], answer['start']

    def test_start_at_or_past_the_end_is_empty_with_next_the_end(self):
        Virtlogd(self.log, 1000, 3).write(b'abc')
        for start in (3, 4, 10 ** 12):
            answer = self.read(start, 10)
            self.assertEqual((b'', 3, 3),
                             (answer['data'], answer['start'],
                              answer['next']))

    def test_rotated_files_read_as_one_stream(self):
        logd = Virtlogd(self.log, 100, 3)
        logd.write(bytes(range(256)))
        data, _ = self.read_all(0)
        self.assertEqual(bytes(range(256)), data)
        self.assertTrue(os.path.exists(self.log + '.1'))

    def test_offsets_stay_put_when_the_oldest_file_is_dropped(self):
        logd = Virtlogd(self.log, 100, 3)
        stream = bytes(random.Random(1).randrange(256) for _ in range(2000))
        for i in range(0, len(stream), 37):
            logd.write(stream[i:i + 37])
            answer = self.read(0, 10 ** 6)
            first = answer['first_available']
            self.assertEqual(stream[first:answer['next']], answer['data'])
        self.assertEqual(len(stream), answer['next'])
        self.assertGreater(answer['first_available'], 1500)
        self.assertEqual(logd.kept(), answer['data'])

    def test_a_start_older_than_what_is_kept_moves_to_first_available(self):
        logd = Virtlogd(self.log, 100, 2)
        for _ in range(10):
            logd.write(b'x' * 50)
            self.read(0, 1)
        answer = self.read(0, 30)
        self.assertEqual(answer['first_available'], answer['start'])
        self.assertGreater(answer['start'], 0)
        self.assertEqual(500 - len(logd.kept()), answer['start'])

    def test_random_pages_give_every_byte_once_across_rotations(self):
        logd = Virtlogd(self.log, 64, 300)
        stream = b''.join(b'%d\n' % i for i in range(3000))
        rng = random.Random(7)
        logd.write(stream)
        data, answer = self.read_all(0, lambda: rng.randint(1, 300))
        self.assertEqual(stream, data)
        self.assertEqual(len(stream), answer['next'])

    def test_reading_while_the_guest_prints_and_rotates(self):
        logd = Virtlogd(self.log, 50, 4)
        rng = random.Random(3)
        stream = b''.join(b'%d\n' % i for i in range(2000))
        got, start, i = b'', 0, 0
        while i < len(stream) or start < len(stream):
            step = rng.randint(0, 120)
            logd.write(stream[i:i + step])
            i += step
            answer = self.read(start, rng.randint(1, 60))
            # Never faster than 60 bytes a read: the guest outruns this
            # reader now and then, so a start moves past dropped bytes.
            self.assertGreaterEqual(answer['start'], start)
            if answer['start'] > start:
                got += b'?' * (answer['start'] - start)
            got += answer['data']
            start = answer['next']
        for offset, byte in enumerate(got):
            if byte != ord('?'):
                self.assertEqual(stream[offset], byte, offset)

    def test_offsets_survive_an_agent_restart(self):
        logd = Virtlogd(self.log, 100, 2)
        logd.write(b'a' * 250)
        self.read()
        logd.write(b'b' * 150)
        answer = self.read(0, 1000, histories=self.new_agent())
        self.assertEqual(400 - len(logd.kept()), answer['first_available'])
        self.assertEqual(400, answer['next'])

    def test_rotations_seen_only_by_the_scan_keep_offsets(self):
        logd = Virtlogd(self.log, 100, 2)
        for _ in range(20):
            logd.write(b'z' * 90)
            self.histories.observe(UUID, self.log, 1)
        answer = self.read(0, 1000)
        self.assertEqual(1800, answer['next'])

    def test_rotations_nobody_saw_leave_a_gap_never_a_repeat(self):
        logd = Virtlogd(self.log, 100, 2)
        logd.write(b'a' * 150)
        end = self.read(0, 1000)['next']
        logd.write(b'b' * 1000)
        answer = self.read(end, 1000)
        # Every file the record knew is gone: the stream goes on after
        # the last end known, with what is kept.
        self.assertEqual(end, answer['first_available'])
        self.assertEqual(logd.kept(), answer['data'])

    def test_a_new_boot_starts_at_zero(self):
        logd = Virtlogd(self.log, 100, 2)
        logd.write(b'a' * 250)
        self.read(boot=1)
        logd.boot()
        logd.write(b'new boot')
        answer = self.read(0, 100, boot=2)
        self.assertEqual((b'new boot', 0, 8),
                         (answer['data'], answer['start'], answer['next']))

    def test_a_stopped_guest_keeps_its_offsets(self):
        logd = Virtlogd(self.log, 100, 2)
        logd.write(b'a' * 250)
        before = self.read(boot=1)
        after = self.read(boot=None)
        self.assertEqual(before, after)

    def test_a_new_file_on_a_known_inode_number_is_not_mistaken(self):
        logd = Virtlogd(self.log, 100, 2)
        logd.write(b'a' * 50)
        self.read(boot=1)
        record = os.path.join(self.state_path, 'console-history',
                              UUID + '.json')
        inode = os.stat(self.log).st_ino
        # The file is replaced by one with other bytes on the same inode
        # number, as when a dropped file's number is reused.
        with open(self.log, 'r+b') as f:
            f.write(b'b' * 50)
        answer = self.read(0, 1000, boot=1)
        self.assertEqual(os.stat(self.log).st_ino, inode)
        self.assertTrue(os.path.exists(record))
        self.assertEqual(50, answer['first_available'])

    def test_backups_numbered_from_one_read_the_same(self):
        logd = Virtlogd(self.log, 100, 3, first_backup=1)
        logd.write(bytes(range(250)))
        data, _ = self.read_all(0)
        self.assertEqual(bytes(range(250)), data)

    def test_other_files_beside_the_log_are_not_part_of_it(self):
        logd = Virtlogd(self.log, 100, 3)
        logd.write(b'mine')
        for name in (UUID + '.log.old', UUID + '.log.1.gz', 'x.log.0'):
            with open(os.path.join(self.log_dir, name), 'wb') as f:
                f.write(b'not mine')
        self.assertEqual(b'mine', self.read(0, 100)['data'])

    def test_max_bytes_is_capped_by_the_agent(self):
        Virtlogd(self.log, 1000, 3).write(b'x' * 500)
        answer = self.read(0, 10 ** 9, histories=self.new_agent(100))
        self.assertEqual(100, answer['next'])

    def test_no_log_file_is_not_found_naming_no_path(self):
        exc = self.assertRaises(exception.ConsoleLogNotFound, self.read)
        self.assertNotIn(self.log_dir, exc.message)
        self.assertNotIn('/', exc.message)

    def test_pages_that_are_not_integers_are_refused_with_a_reason(self):
        for start, max_bytes, reason in [
                ('abc', None, "start must be an integer, not 'abc'"),
                ('1.5', None, 'start must be an integer'),
                (None, 'x', 'max_bytes must be an integer'),
                (None, '0', 'max_bytes must be at least 1, not 0'),
                (None, '-3', 'max_bytes must be at least 1, not -3'),
                (True, None, 'start must be an integer')]:
            exc = self.assertRaises(exception.Invalid,
                                    console_history.validate_page,
                                    start, max_bytes)
            self.assertIn(reason, exc.message)
        self.assertEqual((-5, 7),
                         console_history.validate_page(' -5', '7'))
