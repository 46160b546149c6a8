"""A websocket session that asks for the stream by offset (resume=N,
offsets=1), fed bytes and events only: the 400s before any 101, the
note before any console byte, the history and the live output held at
the seam each sent once, in order; and a client that asks nothing gets
what it got before."""

import json

from serialproxy.proxy import console_core
from serialproxy.proxy.console import Console
from serialproxy.proxy import session as cs
from serialproxy.proxy.session import Side
from serialproxy.proxy import ssh_session
from serialproxy.proxy import seam
from tests.unit.proxy.fakes import server_frames
from tests.unit.proxy import test_session as base_session
from tests.unit.proxy.test_session import CONSOLE
from tests.unit.proxy.test_session import of_type
from tests.unit.proxy.test_session import request
from tests.unit.proxy.test_session import to_client
from tests.unit.proxy.test_session import TOKEN

STREAM = b''.join(b'%d\n' % n for n in range(1, 400))


def history(start, end, first_available=0):
    return {'data': STREAM[start:end], 'start': start, 'next': end,
            'first_available': first_available, 'end': end}


def frames(actions):
    """The websocket frames that went to the client, after the 101."""
    sent = to_client(actions)
    if sent.startswith(b'HTTP/1.1 101 '):
        sent = sent[sent.index(b'\r\n\r\n') + 4:]
    return server_frames(sent)


def held(actions):
    return b''.join(a.data for a in of_type(actions,
                                            console_core.HeldOutput))


class ResumeTestCase(base_session.SessionTestCase):

    def ask(self, query):
        return self.session.client_data(request(
            target='/?token=%s&%s' % (TOKEN, query)))

    def begin(self, query, first, replay_lines=0):
        """Upgrade with query, lease, and connect after the history
        read first: the session opens; its frames."""
        self.assertTrue(of_type(self.ask(query), cs.Authorize))
        self.session.leased(Console.from_answer(CONSOLE))
        actions = self.session.seam_begun(first, replay_lines)
        self.assertIn(cs.Started(), actions)
        self.assertIn(cs.ResumeReading(Side.GUEST), actions)
        self.assertTrue(self.session.at_seam)
        return frames(actions)


class QueryTest(ResumeTestCase):

    def test_bad_resume_is_400_with_a_reason_before_any_101(self):
        for query in ('resume=abc', 'resume=-1', 'offsets=2',
                      'resume=1&resume=2'):
            with self.subTest(query=query):
                self.session = cs.ConsoleSession(self.settings,
                                                 clock=self.clock)
                actions = self.ask(query)
                refused, = of_type(actions, cs.Refused)
                self.assertEqual(400, refused.refusal.status)
                self.assertTrue(base_session.status_line(actions)
                                .startswith('HTTP/1.1 400 '))
                self.assertNotIn(b' 101 ', to_client(actions))
                self.assertFalse(of_type(actions, cs.Authorize))

    def test_resume_and_offsets_are_read_from_the_query(self):
        self.ask('resume=1234')
        self.assertEqual(seam.StreamRequest(resume=1234),
                         self.session.stream)

    def test_a_client_that_asks_nothing_gets_no_note(self):
        self.session.client_data(request())
        self.assertIsNone(self.session.stream)
        self.session.leased(Console.from_answer(CONSOLE))
        actions = self.session.guest_connected(b'replay')
        self.assertEqual([(0x2, b'replay')], frames(actions))


class SeamTest(ResumeTestCase):

    def test_the_note_then_the_history_before_any_live_byte(self):
        note, history_frame = self.begin('resume=100', history(100, 1000))
        self.assertEqual(0x1, note[0])
        self.assertEqual({'stream': {'offset': 100, 'requested': 100,
                                     'first_available': 0,
                                     'history': 900}},
                         json.loads(note[1]))
        self.assertEqual((0x2, STREAM[100:1000]), history_frame)

    def test_live_output_is_held_until_it_joins_the_log(self):
        self.begin('resume=100', history(100, 1000))
        # Live bytes come before the log is read again: held.
        self.assertEqual([], self.session.seam_live(STREAM[1200:1300]))
        actions = self.session.seam_tail(history(1000, 1280), 1000)
        self.assertFalse(self.session.at_seam)
        # The layer stops holding, then passes the bytes on as output.
        self.assertEqual([console_core.SeamJoined(),
                          console_core.HeldOutput(STREAM[1000:1300])],
                         actions)
        self.assertEqual([(0x2, STREAM[1000:1300])],
                         frames(self.session.guest_data(STREAM[1000:1300])))

    def test_live_output_joins_when_it_comes(self):
        self.begin('resume=0', history(0, 1000))
        self.assertEqual([], self.session.seam_tail(history(1000, 1200),
                                                    1000))
        actions = self.session.seam_live(STREAM[1100:1300])
        self.assertEqual(STREAM[1000:1300], held(actions))

    def test_an_idle_guest_opens_at_once_and_waits(self):
        end = len(STREAM)
        note, data = self.begin('resume=1000', history(1000, end))
        self.assertEqual(1000, json.loads(note[1])['stream']['offset'])
        self.assertEqual((0x2, STREAM[1000:]), data)
        self.assertEqual([], self.session.seam_tail(history(end, end), end,
                                                    final=True))
        self.assertTrue(self.session.seam_idle)

    def test_a_quiet_tail_is_sent_and_the_seam_moves_on(self):
        self.begin('resume=0', history(0, 1000))
        self.assertEqual([], self.session.seam_tail(history(1000, 1010),
                                                    1000))
        actions = self.session.seam_tail(history(1000, 1010), 1000,
                                         final=True)
        self.assertEqual(STREAM[1000:1010], held(actions))
        self.assertTrue(self.session.at_seam)
        self.assertEqual(1010, self.session.seam.tail_start)
        # A read asked before the seam moved on is stale.
        self.assertEqual([], self.session.seam_tail(history(1000, 1020),
                                                    1000))

    def test_resume_at_the_end_gets_the_note_and_no_history(self):
        end = len(STREAM)
        note, = self.begin('resume=%d' % end, history(end, end))
        self.assertEqual({'offset': end, 'requested': end,
                          'first_available': 0, 'history': 0},
                         json.loads(note[1])['stream'])

    def test_an_old_offset_starts_at_the_first_available(self):
        # The agent moved start to first_available; the note says both.
        note = self.begin('resume=5', history(500, 800,
                                              first_available=500))[0]
        self.assertEqual({'offset': 500, 'requested': 5,
                          'first_available': 500, 'history': 300},
                         json.loads(note[1])['stream'])

    def test_offsets_alone_sends_the_recent_lines_raw(self):
        end = len(STREAM)
        note, data = self.begin('offsets=1', history(end - 100, end),
                                replay_lines=3)
        self.assertEqual(b'397\n398\n399\n', data[1])
        self.assertEqual({'offset': end - 12, 'requested': None,
                          'first_available': 0, 'history': 12},
                         json.loads(note[1])['stream'])

    def test_unknown_offsets_say_null_and_then_replay_as_before(self):
        self.ask('resume=7')
        self.session.leased(Console.from_answer(CONSOLE))
        note, data = frames(self.session.stream_unknown(b'replay'))
        self.assertIsNone(json.loads(note[1])['stream']['offset'])
        self.assertEqual(7, json.loads(note[1])['stream']['requested'])
        self.assertEqual((0x2, b'replay'), data)

    def test_a_log_that_began_again_ends_the_session_to_resume_again(
            self):
        self.begin('resume=0', history(0, 10))
        actions = self.session.seam_tail(history(0, 0), 10)
        self.assertEqual(1011, base_session.close_frame(actions)[0])
        self.assertIn(cs.CloseGuest(), actions)
        self.assertFalse(self.session.at_seam)

    def test_too_much_held_output_pauses_the_guest_until_joined(self):
        self.begin('resume=0', history(0, 10))
        actions = self.session.seam_live(
            b'x' * (console_core.SEAM_HOLD_BYTES + 1))
        self.assertEqual([cs.PauseReading(Side.GUEST)], actions)
        actions = self.session.seam_tail(
            {'data': b'x' * 100, 'start': 10, 'next': 110,
             'first_available': 0, 'end': 110}, 10, final=True)
        self.assertIn(cs.ResumeReading(Side.GUEST), actions)

    def test_a_closed_session_joins_nothing(self):
        self.begin('resume=0', history(0, 10))
        self.session.client_lost()
        self.assertFalse(self.session.at_seam)
        self.assertEqual([], self.session.seam_live(b'late'))


class SSHResumeTest(base_session.SessionTestCase):

    def test_ssh_gets_the_raw_history_and_no_note(self):
        session = ssh_session.SSHConsoleSession(
            self.settings, clock=self.clock,
            stream=seam.StreamRequest(resume=50))
        session.shell_requested()
        session.leased(Console.from_answer(CONSOLE))
        actions = session.seam_begun(history(50, 200))
        sent = b''.join(b''.join(a.chunks)
                        for a in of_type(actions, cs.SendToClient))
        self.assertEqual(STREAM[50:200], sent)
