import os

from serialproxy.proxy import connections
from tests.unit import base


class GuestWriteTest(base.TestCase):
    def test_messages_of_a_read_go_in_one_write_in_order(self):
        messages = [b'ls\n', b'x' * 4096, os.urandom(64 * 1024), b'z']
        self.assertEqual(b''.join(messages),
                         bytes(connections.guest_write(messages)))

    def test_lone_message_is_written_without_a_copy(self):
        large = os.urandom(64 * 1024)
        self.assertIs(large,
                      memoryview(connections.guest_write([large])).obj)

    def test_no_messages_no_write(self):
        self.assertIsNone(connections.guest_write([]))
