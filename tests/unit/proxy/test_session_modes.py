"""Spectators (mode=view) and take-over (mode=take_over) in the console
session, driven with bytes only."""

import json

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.console import Console
from serialproxy.proxy import session as cs
from serialproxy.proxy.session import Side
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import server_frames
from tests.unit.proxy import test_session as ts


class ModeTestCase(ts.SessionTestCase):
    settings = cs.Settings(max_frame_bytes=ts.LIMIT,
                           spectator_buffer_bytes=8192)

    def open_as(self, mode, history=b''):
        actions = self.session.client_data(ts.request(
            target='/?token=%s&mode=%s' % (ts.TOKEN, mode)))
        self.assertTrue(ts.of_type(actions, cs.Authorize))
        self.session.leased(Console.from_answer(ts.CONSOLE))
        return self.session.guest_connected(history)


class ModeParsingTest(ModeTestCase):
    def test_no_mode_is_the_writer(self):
        self.open()
        self.assertEqual(cs.WRITE, self.session.mode)
        self.assertFalse(self.session.is_spectator)

    def test_view_and_take_over_are_read_from_the_query(self):
        self.open_as('view')
        self.assertTrue(self.session.is_spectator)
        other = cs.ConsoleSession(self.settings, clock=self.clock)
        other.client_data(ts.request(
            target='/?token=%s&mode=take_over' % ts.TOKEN))
        self.assertEqual(cs.TAKE_OVER, other.mode)

    def test_unknown_mode_is_a_400_naming_the_modes(self):
        actions = self.session.client_data(ts.request(
            target='/?token=%s&mode=admin' % ts.TOKEN))
        self.assertEqual('HTTP/1.1 400 Bad Request', ts.status_line(actions))
        self.assertIn(b'Unknown mode: use write, view, take_over',
                      ts.to_client(actions))
        self.assertFalse(ts.of_type(actions, cs.Authorize))

    def test_two_modes_are_a_400(self):
        actions = self.session.client_data(ts.request(
            target='/?token=%s&mode=view&mode=write' % ts.TOKEN))
        self.assertEqual('HTTP/1.1 400 Bad Request', ts.status_line(actions))


class SpectatorTest(ModeTestCase):
    def test_spectator_sees_replay_and_output(self):
        actions = self.open_as('view', history=b'before\r\n')
        body = ts.to_client(actions)
        body = body[body.index(b'\r\n\r\n') + 4:]
        self.assertEqual([(0x2, b'before\r\n')], server_frames(body))
        out = self.session.guest_data(b'hello')
        self.assertEqual([(0x2, b'hello')],
                         server_frames(ts.to_client(out)))

    def test_spectator_keys_are_dropped_and_counted(self):
        self.open_as('view')
        actions = self.session.client_data(client_frame(0x2, b'reboot\n'))
        self.assertEqual([], ts.to_guest(actions))
        self.assertEqual([cs.InputDropped(7)],
                         ts.of_type(actions, cs.InputDropped))
        self.assertEqual(7, self.session.input_dropped)
        self.assertEqual(0, self.session.bytes_to_guest)

    def test_writer_keys_still_reach_the_guest(self):
        self.open()
        actions = self.session.client_data(client_frame(0x2, b'ls\n'))
        self.assertEqual([b'ls\n'], ts.to_guest(actions))
        self.assertEqual([], ts.of_type(actions, cs.InputDropped))

    def test_slow_spectator_never_pauses_the_guest(self):
        self.open_as('view')
        # Only the spectator's own client stops being read.
        self.assertEqual([cs.PauseReading(Side.CLIENT)],
                         self.session.client_write_blocked())
        self.assertEqual([cs.ResumeReading(Side.CLIENT)],
                         self.session.client_write_unblocked())

    def test_slow_writer_still_pauses_the_guest(self):
        self.open()
        self.assertIn(cs.PauseReading(Side.GUEST),
                      self.session.client_write_blocked())

    def test_spectators_pings_wait_while_it_does_not_read(self):
        self.open_as('view')
        self.session.client_write_blocked()
        actions = self.send(client_frame(0x9, b'x' * 125) * 2000)
        self.assertLessEqual(len(ts.to_client(actions)), 127)

    def test_spectator_past_its_buffer_is_closed_with_4007(self):
        self.open_as('view')
        self.session.client_write_blocked()
        self.assertIsNone(ts.close_frame(self.session.guest_data(
            b'x' * 8192)))
        actions = self.session.guest_data(b'y')
        self.assertEqual(CloseCode.SPECTATOR_TOO_SLOW,
                         ts.close_frame(actions)[0])
        self.assertIn(cs.ReleaseLease('session-1'), actions)
        self.assertIn(cs.CloseGuest(), actions)

    def test_spectator_that_reads_again_starts_a_new_allowance(self):
        self.open_as('view')
        self.session.client_write_blocked()
        self.session.guest_data(b'x' * 8000)
        self.session.client_write_unblocked()
        self.session.client_write_blocked()
        self.assertIsNone(ts.close_frame(self.session.guest_data(
            b'x' * 8000)))

    def test_relay_end_tells_the_spectator_its_writer_left(self):
        self.open_as('view')
        code, reason = ts.close_frame(self.session.guest_eof())
        self.assertEqual(CloseCode.NORMAL, code)
        self.assertEqual(cs.SPECTATED_WRITER_LEFT, reason)


def count_notes(actions):
    return [json.loads(payload) for opcode, payload in
            server_frames(ts.to_client(actions)) if opcode == 0x1 and
            b'spectators' in payload]


class SpectatorCountTest(ModeTestCase):
    def open_page(self):
        """A writer that speaks text, as the page does at once."""
        self.open()
        self.send(client_frame(0x1, b'{"permissions": true}'))

    def test_writer_is_told_the_count_in_a_text_frame(self):
        self.open_page()
        frames = server_frames(ts.to_client(
            self.session.spectators_changed(2)))
        self.assertEqual([(0x1, json.dumps({'spectators': 2}).encode())],
                         frames)

    def test_writer_that_never_sent_text_gets_console_bytes_only(self):
        self.open()
        actions = []
        for count in (1, 2, 1, 0, 3):
            actions += self.session.spectators_changed(count)
        actions += self.session.guest_data(b'out')
        actions += self.send(client_frame(0x2, b'in'))
        self.assertEqual([(0x2, b'out')],
                         server_frames(ts.to_client(actions)))

    def test_first_text_frame_brings_the_current_count(self):
        self.open()
        self.session.spectators_changed(1)
        self.session.spectators_changed(2)
        actions = self.send(client_frame(0x1, b'{"permissions": true}'))
        self.assertEqual([{'spectators': 2}], count_notes(actions))

    def test_no_count_when_no_one_ever_watched(self):
        self.open()
        actions = self.send(client_frame(0x1, b'{"permissions": true}'))
        self.assertEqual([], count_notes(actions))

    def test_count_waits_for_a_writer_that_stopped_reading(self):
        self.open_page()
        self.session.client_write_blocked()
        for count in range(1, 50):
            self.assertEqual([], self.session.spectators_changed(count))
        self.assertEqual([{'spectators': 49}], count_notes(
            self.session.client_write_unblocked()))
        self.assertEqual([], count_notes(
            self.session.client_write_unblocked()))

    def test_spectators_are_not_told(self):
        self.open_as('view')
        self.assertEqual([], self.session.spectators_changed(3))

    def test_nothing_is_told_before_open(self):
        self.assertEqual([], self.session.spectators_changed(1))


class SpectatorAgeTest(ModeTestCase):
    settings = cs.Settings(max_frame_bytes=ts.LIMIT, max_session_age=60)

    def test_spectator_is_closed_at_max_session_age_too(self):
        self.open_as('view')
        self.clock.now += 59
        self.assertEqual([], self.session.tick())
        self.clock.now += 1
        self.assertEqual(CloseCode.SESSION_MAX_AGE,
                         ts.close_frame(self.session.tick())[0])


class WatchOnlyTest(ModeTestCase):
    """A watch-only token (no 'write') opened with no mode or mode=write:
    consoleauth refuses it the writer's seat, and the session watches."""

    WATCH_ONLY_CONSOLE = dict(ts.CONSOLE, modes=['view'], watch_only=True)

    def open_watch_only(self, target='/?token=%s' % ts.TOKEN):
        actions = self.session.client_data(ts.request(target=target))
        self.assertTrue(ts.of_type(actions, cs.Authorize))
        self.session.watching_only()
        self.session.leased(Console.from_answer(self.WATCH_ONLY_CONSOLE))
        return self.session.guest_connected()

    def test_session_watches_whatever_its_query_asked(self):
        for target in ('/?token=%s' % ts.TOKEN,
                       '/?token=%s&mode=write' % ts.TOKEN):
            self.session = cs.ConsoleSession(self.settings, clock=self.clock)
            self.open_watch_only(target)
            self.assertTrue(self.session.is_spectator)
            actions = self.session.client_data(client_frame(0x2, b'ls\n'))
            self.assertEqual([], ts.to_guest(actions))
            self.assertEqual(3, self.session.input_dropped)
            out = self.session.guest_data(b'hello')
            self.assertEqual([(0x2, b'hello')],
                             server_frames(ts.to_client(out)))

    def test_page_is_told_it_is_watch_only(self):
        self.open_watch_only()
        actions = self.session.client_data(
            client_frame(0x1, b'{"permissions": true}'))
        (opcode, note), = server_frames(ts.to_client(actions))
        self.assertEqual({'permissions': [], 'watch_only': True},
                         json.loads(note))

    def test_writers_page_hears_no_watch_only(self):
        self.open()
        actions = self.session.client_data(
            client_frame(0x1, b'{"permissions": true}'))
        (opcode, note), = server_frames(ts.to_client(actions))
        self.assertNotIn('watch_only', json.loads(note))
