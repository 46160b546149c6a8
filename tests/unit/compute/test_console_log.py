import os

from serialproxy.compute import console_log
from serialproxy import exception
from tests.unit import base

UUID = '33333333-3333-4333-8333-333333333333'


class TailTest(base.TestCase):
    def write(self, data):
        path = os.path.join(self.state_path, 'console.log')
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def test_last_lines_only(self):
        path = self.write(b'one\ntwo\nthree\n')
        self.assertEqual('two\nthree\n',
                         console_log.tail(path, 2, 1000, UUID))

    def test_none_means_every_line_and_zero_none(self):
        path = self.write(b'one\ntwo\r\nthree')
        self.assertEqual('one\ntwo\r\nthree',
                         console_log.tail(path, None, 1000, UUID))
        self.assertEqual('', console_log.tail(path, 0, 1000, UUID))

    def test_more_lines_than_the_log_has_is_the_whole_log(self):
        path = self.write(b'a\nb\n')
        self.assertEqual('a\nb\n', console_log.tail(path, 50, 1000, UUID))

    def test_size_cap_drops_the_line_it_cuts(self):
        path = self.write(b'x' * 100 + b'\nkept-1\nkept-2\n')
        self.assertEqual('kept-1\nkept-2\n',
                         console_log.tail(path, None, 20, UUID))

    def test_bytes_that_are_not_utf8_are_replaced(self):
        path = self.write(b'boot \xff\xfe ok\n')
        self.assertEqual('boot \ufffd\ufffd ok\n',
                         console_log.tail(path, None, 1000, UUID))

    def test_missing_log_is_a_named_error(self):
        exc = self.assertRaises(
            exception.ConsoleLogNotFound, console_log.tail,
            os.path.join(self.state_path, 'nope.log'), 5, 1000, UUID)
        self.assertEqual(404, exc.code)
        self.assertIn(UUID, str(exc))
        self.assertIn('nope.log does not exist', str(exc))

    def test_length_from_a_string_is_read(self):
        path = self.write(b'a\nb\n')
        self.assertEqual('b\n', console_log.tail(path, '1', 1000, UUID))


class ValidateLengthTest(base.TestCase):
    def test_bad_lengths_are_400s(self):
        for bad in (-1, 'ten', 1.5, True, [3]):
            exc = self.assertRaises(exception.Invalid,
                                    console_log.validate_length, bad)
            self.assertEqual(400, exc.code)
