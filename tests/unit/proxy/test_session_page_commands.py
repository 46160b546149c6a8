"""The console page's SysRq and NMI commands in the console session,
driven with bytes only: what is offered, what is run, what is told."""

import json

from serialproxy.proxy.console import Console
from serialproxy.proxy.page import commands as pc
from serialproxy.proxy import session as cs
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import server_frames
from tests.unit.proxy import test_session as ts

BOTH_MODES = ['nmi', 'sysrq', 'take_over', 'view']


def notes(actions):
    """The text frames among what went to the client, as JSON."""
    body = ts.to_client(actions)
    if body.startswith(b'HTTP/1.1 101 '):
        body = body[body.index(b'\r\n\r\n') + 4:]
    return [json.loads(payload) for opcode, payload in server_frames(body)
            if opcode == 0x1]


def command(text):
    return client_frame(0x1, text.encode())


class PageCommandsTestCase(ts.SessionTestCase):
    def open_with(self, modes, mode='write', history=b''):
        target = '/?token=%s' % ts.TOKEN
        if mode != 'write':
            target += '&mode=' + mode
        actions = self.session.client_data(ts.request(target=target))
        self.assertTrue(ts.of_type(actions, cs.Authorize))
        self.session.leased(Console.from_answer(dict(ts.CONSOLE, modes=modes)))
        return self.session.guest_connected(history)


class PermissionsNoteTest(PageCommandsTestCase):
    def ask(self):
        return notes(self.send(command('{"permissions": true}')))

    def test_nothing_is_said_unasked(self):
        # Clients that know nothing of the page see the stream as before.
        actions = self.open_with(BOTH_MODES, history=b'login: ')
        body = ts.to_client(actions)
        self.assertEqual([(0x2, b'login: ')],
                         server_frames(body[body.index(b'\r\n\r\n') + 4:]))

    def test_the_writer_that_asks_hears_its_permissions(self):
        self.open_with(BOTH_MODES)
        self.assertEqual([{'permissions': ['sysrq', 'nmi']}], self.ask())

    def test_only_the_allowed_ones_are_listed(self):
        self.open_with(['sysrq', 'view'])
        self.assertEqual([{'permissions': ['sysrq']}], self.ask())
        self.session = cs.ConsoleSession(self.settings, clock=self.clock)
        self.open_with(['view', 'take_over'])
        self.assertEqual([{'permissions': []}], self.ask())

    def test_a_taking_over_writer_hears_its_permissions(self):
        self.open_with(BOTH_MODES, 'take_over')
        self.assertEqual([{'permissions': ['sysrq', 'nmi']}], self.ask())

    def test_a_spectator_has_none_whatever_its_token_allows(self):
        self.open_with(BOTH_MODES, 'view')
        self.assertEqual([{'permissions': []}], self.ask())
        self.assertEqual((), self.session.permissions)

    def test_asking_is_answered_while_a_command_runs(self):
        self.open_with(['sysrq'])
        self.send(command('{"sysrq": "h"}'))
        self.assertEqual([{'permissions': ['sysrq']}], self.ask())


class RunTest(PageCommandsTestCase):
    def setUp(self):
        super().setUp()
        self.open_with(['sysrq'])

    def test_allowed_command_is_run_then_told_as_sent(self):
        actions = self.send(command('{"sysrq": "h"}'))
        self.assertEqual([cs.RunPageCommand(pc.Command(pc.SYSRQ, 'h'))],
                         ts.of_type(actions, cs.RunPageCommand))
        self.assertEqual([], ts.to_guest(actions))
        self.assertEqual([], notes(actions))
        self.assertEqual([{'sent': {'sysrq': 'h'}}],
                         notes(self.session.page_command_done()))
        # Nothing counted as console bytes.
        self.assertEqual(0, self.session.bytes_to_guest)

    def test_a_failure_is_told_and_the_session_goes_on(self):
        self.send(command('{"sysrq": "s"}'))
        self.assertEqual(
            [{'error': 'SysRq s not sent: Instance i-1 is not running.'}],
            notes(self.session.page_command_done(
                'SysRq s not sent: Instance i-1 is not running.')))
        self.assertTrue(self.session.is_open)
        self.assertEqual([b'ls\n'],
                         ts.to_guest(self.send(client_frame(0x2, b'ls\n'))))

    def test_refused_commands_get_an_error_note_not_a_close(self):
        for text, part in [('{"nmi": true}', 'NMI is not allowed'),
                           ('{"sysrq": "a"}', 'is not a SysRq key'),
                           ('not json', pc.USAGE),
                           ('', pc.USAGE)]:
            actions = self.send(command(text))
            self.assertEqual([], ts.of_type(actions, cs.RunPageCommand))
            (note,) = notes(actions)
            self.assertIn(part, note['error'], text)
            self.assertIsNone(ts.close_frame(actions))
            self.assertTrue(self.session.is_open)

    def test_one_command_at_a_time(self):
        self.assertTrue(ts.of_type(self.send(command('{"sysrq": "h"}')),
                                   cs.RunPageCommand))
        actions = self.send(command('{"sysrq": "s"}'))
        self.assertEqual([], ts.of_type(actions, cs.RunPageCommand))
        self.assertEqual(
            [{'error': 'SysRq h is still being sent: wait for its answer'}],
            notes(actions))
        self.session.page_command_done()
        self.assertTrue(ts.of_type(self.send(command('{"sysrq": "s"}')),
                                   cs.RunPageCommand))

    def test_keys_and_commands_keep_their_order(self):
        actions = self.send(client_frame(0x2, b'before\n') +
                            command('{"sysrq": "h"}') +
                            client_frame(0x2, b'after\n'))
        kinds = [(type(a).__name__, getattr(a, 'chunks', None))
                 for a in actions
                 if isinstance(a, (cs.SendToGuest, cs.RunPageCommand))]
        self.assertEqual([('SendToGuest', [b'before\n']),
                          ('RunPageCommand', None),
                          ('SendToGuest', [b'after\n'])], kinds)
        self.assertEqual(len(b"before\nafter\n"), self.session.bytes_to_guest)

    def test_a_command_keeps_the_session_from_idling_out(self):
        self.session.settings = cs.Settings(idle_timeout=60)
        self.clock.now += 50
        self.send(command('{"sysrq": "h"}'))
        self.clock.now += 50
        self.assertEqual([], self.session.tick())

    def test_an_answer_after_the_session_ended_goes_nowhere(self):
        self.send(command('{"sysrq": "h"}'))
        self.session.close(4001, 'Disconnected')
        self.assertEqual([], self.session.page_command_done())

    def test_error_notes_wait_for_no_client_that_stopped_reading(self):
        self.session.client_write_blocked()
        actions = self.send(command('nonsense'))
        self.assertEqual([], notes(actions))
        self.session.client_write_unblocked()
        self.assertEqual(1, len(notes(self.send(command('nonsense')))))


class SpectatorCommandTest(PageCommandsTestCase):
    def test_a_spectators_command_is_refused_with_a_note(self):
        self.open_with(BOTH_MODES, 'view')
        actions = self.send(command('{"sysrq": "b"}'))
        self.assertEqual([], ts.of_type(actions, cs.RunPageCommand))
        self.assertEqual(
            [{'error': 'Watching read-only: a spectator cannot send SysRq '
                       'or NMI'}], notes(actions))
        self.assertTrue(self.session.is_open)
        # Not console input: nothing counted as dropped keys.
        self.assertEqual(0, self.session.input_dropped)
