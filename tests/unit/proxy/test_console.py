import dataclasses

from serialproxy.proxy import console as leased_console
from tests.unit import base

ANSWER = {'instance_uuid': 'i-1', 'console_type': 'serial',
          'compute_host': 'c-1', 'host': '127.0.0.1', 'port': 10000,
          'index': 0, 'expires_at': 2e9, 'user_id': 'u-1',
          'project_id': 'p-1', 'modes': ['sysrq', 'write'],
          'watch_only': False, 'session_id': 's-1', 'lease_ttl': 30,
          'relay_key': 'k-1'}


class ConsoleTest(base.TestCase):
    def test_an_answer_is_read_once_into_attributes(self):
        console = leased_console.Console.from_answer(ANSWER)
        self.assertEqual(('i-1', 0, 'c-1', '127.0.0.1', 10000, 's-1',
                          ('sysrq', 'write'), 'k-1', True),
                         (console.instance_uuid, console.index,
                          console.compute_host, console.host, console.port,
                          console.session_id, console.modes,
                          console.relay_key, console.is_serial))
        self.assertRaises(dataclasses.FrozenInstanceError, setattr,
                          console, 'port', 1)

    def test_unknown_keys_are_ignored_and_missing_ones_default(self):
        answer = dict(ANSWER, transport='ssh', some_later_key=1)
        for key in ('user_id', 'project_id', 'modes', 'watch_only',
                    'relay_key', 'lease_ttl'):
            del answer[key]
        console = leased_console.Console.from_answer(answer)
        self.assertEqual((None, (), False, None),
                         (console.user_id, console.modes,
                          console.watch_only, console.relay_key))

    def test_an_older_consoleauths_watch_only_mark_is_read(self):
        answer = dict(ANSWER, modes=['view', 'watch_only'])
        del answer['watch_only']
        self.assertTrue(
            leased_console.Console.from_answer(answer).watch_only)

    def test_a_spectators_writer_is_a_seat_of_its_own(self):
        console = leased_console.Console.from_answer(dict(
            ANSWER, relay_key=None, writer={
                'session_id': 's-0', 'proxy_host': 'p',
                'relay_address': '127.0.0.1:4000', 'relay_key': 'k-0'}))
        self.assertEqual(leased_console.WriterSeat(
            's-0', 'p', '127.0.0.1:4000', 'k-0'), console.writer)

    def test_it_is_read_as_attributes_only(self):
        # Not a mapping: what reads it as the answer's dict fails.
        console = leased_console.Console.from_answer(ANSWER)
        self.assertRaises(TypeError, lambda: console['instance_uuid'])
        self.assertFalse(hasattr(console, 'get'))
