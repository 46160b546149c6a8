"""The SSH front end of a console session, driven with events and bytes
only, as the websocket one is: no channel, no sockets, no sleeps. Time
is two clocks the test moves."""

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.console import Console
from serialproxy.proxy import console_core as core
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy import session as cs
from serialproxy.proxy import ssh_session
from serialproxy.proxy.ssh_session import Exit
from serialproxy.proxy.ssh_session import SendNote
from tests.unit import base
from tests.unit.proxy.test_session import Clock
from tests.unit.proxy.test_session import of_type
from tests.unit.proxy.test_session import to_client

CONSOLE = {'instance_uuid': 'i-1', 'console_type': 'serial',
           'compute_host': 'c-1', 'host': '127.0.0.1', 'port': 10000,
           'index': 0, 'expires_at': 2e9, 'session_id': 'session-1',
           'modes': ['sysrq', 'view', 'write']}


def to_guest(actions):
    return b''.join(chunk for a in of_type(actions, core.SendToGuest)
                    for chunk in a.chunks)


def notes(actions):
    return ' | '.join(a.text for a in of_type(actions, SendNote))


def exit_status(actions):
    statuses = [a.status for a in of_type(actions, Exit)]
    return statuses[-1] if statuses else None


class SSHSessionTestCase(base.TestCase):
    settings = cs.Settings()
    mode = core.WRITE
    console = CONSOLE

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.wall_clock = Clock()
        self.wall_clock.now = 1_800_000_000.0
        self.session = self.new_session()

    def new_session(self, settings=None, mode=None):
        return ssh_session.SSHConsoleSession(
            settings or self.settings, mode=mode or self.mode,
            clock=self.clock, wall_clock=self.wall_clock)

    def shell(self, session=None):
        session = session or self.session
        session.pty_requested((100, 30, 0, 0))
        actions = session.shell_requested()
        self.assertEqual([ssh_session.LeaseConsole(session.mode)], actions)
        self.assertIs(core.State.AUTHORIZING, session.state)
        return actions

    def open(self, history=b'', session=None, console=None):
        session = session or self.session
        self.shell(session)
        self.assertEqual([], session.leased(
            Console.from_answer(console or self.console)))
        return session.guest_connected(history)


class OpeningTest(SSHSessionTestCase):

    def test_shell_leases_the_writers_seat_then_opens_with_a_note(self):
        actions = self.open()
        self.assertIn(core.Started(), actions)
        self.assertIn(core.ResumeReading(core.Side.GUEST), actions)
        self.assertIn('connected to console port 0 of server i-1',
                      notes(actions))
        # The terminal size cannot pass a serial line: a hint instead.
        self.assertIn('stty rows 30 cols 100', notes(actions))
        self.assertTrue(self.session.is_open)

    def test_replay_goes_out_after_the_note_and_before_live_output(self):
        actions = self.open(history=b'login: ')
        self.assertEqual(b'login: ', to_client(actions))
        note, = of_type(actions, SendNote)
        self.assertLess(actions.index(note),
                        actions.index(of_type(actions,
                                              core.SendToClient)[0]))
        self.assertEqual(b'live', to_client(self.session.guest_data(b'live')))

    def test_replay_lines_asked_for_go_with_the_lease(self):
        for asked in (0, 3, 1000):
            session = ssh_session.SSHConsoleSession(
                self.settings, replay_lines=asked, max_replay_lines=1000,
                clock=self.clock, wall_clock=self.wall_clock)
            self.assertEqual([ssh_session.LeaseConsole(core.WRITE, asked)],
                             session.shell_requested())
            session.leased(Console.from_answer(self.console))
            self.assertNotIn('replay-lines',
                             notes(session.guest_connected(b'')))

    def test_replay_lines_past_the_limit_are_cut_and_the_user_told(self):
        session = ssh_session.SSHConsoleSession(
            self.settings, mode=core.VIEW, replay_lines=5000,
            max_replay_lines=1000, clock=self.clock,
            wall_clock=self.wall_clock)
        self.assertEqual([ssh_session.LeaseConsole(core.VIEW, 1000)],
                         session.shell_requested())
        session.leased(Console.from_answer(self.console))
        self.assertIn('replay-lines=5000 is more than this proxy replays: '
                      'the last 1000 lines at most',
                      notes(session.guest_connected(b'')))

    def test_no_replay_lines_asked_leaves_the_proxys_own(self):
        self.assertEqual([ssh_session.LeaseConsole(core.WRITE, None)],
                         self.shell())

    def test_shell_asked_twice_leases_once(self):
        self.shell()
        self.assertEqual([], self.session.shell_requested())

    def test_commands_and_subsystems_are_refused_with_a_note(self):
        self.assertIn('a command is not served',
                      notes(self.session.command_requested('a command')))

    def test_input_typed_before_the_console_opened_reaches_the_guest(self):
        self.assertEqual([], self.session.client_data(b'ear'))
        self.shell()
        self.assertEqual([], self.session.client_data(b'ly\n'))
        self.session.leased(Console.from_answer(CONSOLE))
        self.assertEqual(b'early\n',
                         to_guest(self.session.guest_connected()))

    def test_much_early_input_pauses_the_channel_until_it_opens(self):
        self.shell()
        chunk = b'x' * 1024
        paused = []
        for _ in range(ssh_session.EARLY_INPUT_BYTES // 1024 + 1):
            paused += self.session.client_data(chunk)
        self.assertEqual([core.PauseReading(core.Side.CLIENT)], paused)
        self.session.leased(Console.from_answer(CONSOLE))
        actions = self.session.guest_connected()
        self.assertIn(core.ResumeReading(core.Side.CLIENT), actions)
        self.assertEqual(ssh_session.EARLY_INPUT_BYTES + 1024,
                         len(to_guest(actions)))

    def test_input_ended_before_the_console_opened_ends_it_after(self):
        self.shell()
        self.session.client_data(b'date\n')
        self.assertEqual([], self.session.client_eof())
        self.session.leased(Console.from_answer(CONSOLE))
        actions = self.session.guest_connected()
        self.assertEqual(b'date\n', to_guest(actions))
        self.assertIn(core.ReleaseLease('session-1', then_answer=True),
                      actions)
        self.assertIsNone(exit_status(actions))
        self.assertEqual([Exit(0)], self.session.lease_released())

    def test_refusal_says_why_and_exits_1(self):
        self.shell()
        refusal = Refusal(409, 'Console in use since 2026-12-06')
        actions = self.session.refused(refusal)
        self.assertEqual([core.Refused(refusal)],
                         of_type(actions, core.Refused))
        self.assertEqual('Console in use since 2026-12-06', notes(actions))
        self.assertEqual(ssh_session.EXIT_REFUSED, exit_status(actions))
        self.assertEqual([], self.session.refused(refusal))

    def test_console_service_silent_past_the_deadline_is_refused(self):
        self.shell()
        self.clock.now += self.settings.handshake_timeout
        actions = self.session.tick()
        self.assertEqual(ssh_session.EXIT_REFUSED, exit_status(actions))
        self.assertIn('Console service unavailable', notes(actions))
        # A lease that comes after all goes back at once.
        self.assertEqual([core.ReleaseLease('session-1')],
                         self.session.leased(Console.from_answer(CONSOLE)))

    def test_channel_lost_while_authorizing_gives_the_lease_back(self):
        self.shell()
        self.assertEqual([], self.session.client_lost())
        self.assertEqual([core.ReleaseLease('session-1')],
                         self.session.leased(Console.from_answer(CONSOLE)))
        self.assertEqual([core.CloseGuest()],
                         self.session.guest_connected())


class RelayTest(SSHSessionTestCase):

    def test_bytes_flow_both_ways_and_are_counted(self):
        self.open()
        actions = self.session.client_data(b'ls\n')
        self.assertEqual([core.SendToGuest([b'ls\n'], 3)], actions)
        self.assertEqual([core.SendToClient([b'out'], 3)],
                         self.session.guest_data(b'out'))
        self.assertEqual((3, 3), (self.session.bytes_to_guest,
                                  self.session.bytes_to_client))

    def test_each_side_blocked_pauses_the_other(self):
        self.open()
        self.assertEqual([core.PauseReading(core.Side.GUEST),
                          core.PauseReading(core.Side.CLIENT)],
                         self.session.client_write_blocked())
        self.assertEqual([core.ResumeReading(core.Side.GUEST),
                          core.ResumeReading(core.Side.CLIENT)],
                         self.session.client_write_unblocked())
        self.assertEqual([core.PauseReading(core.Side.CLIENT)],
                         self.session.guest_write_blocked())
        self.assertEqual([core.ResumeReading(core.Side.CLIENT)],
                         self.session.guest_write_unblocked())

    def test_breaks_are_not_answered_while_the_client_does_not_read(self):
        self.open()
        self.session.client_write_blocked()
        for _ in range(1000):
            self.assertEqual([], self.session.break_received())
            self.assertEqual([], self.session.command_requested('x'))
        self.session.client_write_unblocked()
        self.assertIn('type a SysRq key',
                      notes(self.session.break_received()))


class EndTest(SSHSessionTestCase):
    """How a session ends, and the exit status the user's ssh returns."""

    def setUp(self):
        super().setUp()
        self.open()

    def test_end_of_input_exits_0_once_the_lease_is_back(self):
        actions = self.session.client_eof()
        self.assertEqual([core.CloseGuest(),
                          core.Ended(CloseCode.NORMAL, 'client closed'),
                          core.ReleaseLease('session-1', then_answer=True)],
                         actions)
        # Nothing the client does meanwhile answers it.
        self.assertEqual([], self.session.client_eof())
        self.assertEqual([], self.session.client_data(b'more'))
        self.assertEqual([], self.session.tick())
        self.assertEqual([Exit(0)], self.session.lease_released())
        self.assertEqual([], self.session.lease_released())

    def test_release_not_answered_exits_after_close_grace(self):
        self.session.client_eof()
        self.clock.now += self.settings.close_grace
        self.assertEqual([Exit(0)], self.session.tick())
        self.assertEqual([], self.session.lease_released())

    def test_channel_lost_before_the_release_answers_nothing(self):
        self.session.client_eof()
        self.assertEqual([], self.session.client_lost())
        self.assertEqual([], self.session.lease_released())

    def test_operator_disconnect_says_why_exits_2_and_frees_at_once(self):
        actions = self.session.close(CloseCode.OPERATOR_DISCONNECT,
                                     'Disconnected by an operator')
        self.assertEqual('Disconnected by an operator', notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))
        self.assertIn(core.ReleaseLease('session-1'), actions)
        self.assertIn(core.CloseGuest(), actions)
        self.assertEqual([], self.session.close(CloseCode.GOING_AWAY, 'x'))

    def test_taken_over_says_so_and_exits_2(self):
        actions = self.session.close(
            CloseCode.TAKEN_OVER, 'The console was taken over by another '
                                  'user')
        self.assertIn('taken over', notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))
        self.assertIn(core.Ended(CloseCode.TAKEN_OVER,
                                 'The console was taken over by another '
                                 'user'), actions)

    def test_guest_gone_exits_3(self):
        actions = self.session.guest_eof()
        self.assertIn('The console went away', notes(actions))
        self.assertEqual(ssh_session.EXIT_GUEST_GONE, exit_status(actions))

    def test_channel_lost_ends_the_session_and_frees_the_console(self):
        actions = self.session.client_lost()
        self.assertIn(core.ReleaseLease('session-1'), actions)
        self.assertEqual([core.Ended(CloseCode.ABNORMAL, 'connection lost')],
                         of_type(actions, core.Ended))
        self.assertEqual([], self.session.client_lost())


class TimeLimitsTest(SSHSessionTestCase):
    """[console]'s limits end an SSH session as they end a websocket
    one: the same core, the same clocks."""

    def test_idle_session_ends_with_its_message(self):
        session = self.new_session(cs.Settings(idle_timeout=30))
        self.open(session=session)
        self.clock.now += 20
        session.client_data(b'x')
        self.clock.now += 29
        self.assertEqual([], session.tick())
        self.clock.now += 1
        actions = session.tick()
        self.assertEqual('Idle timeout', notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))
        self.assertIn(core.ReleaseLease('session-1'), actions)

    def test_session_ends_at_max_session_age_busy_or_not(self):
        session = self.new_session(cs.Settings(max_session_age=60))
        self.open(session=session)
        self.clock.now += 59
        session.guest_data(b'busy')
        self.assertEqual([], session.tick())
        self.clock.now += 1
        actions = session.tick()
        self.assertIn('longest a console session may last: push a new key',
                      notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))

    def test_max_session_age_0_lets_it_live_on(self):
        self.open()
        self.clock.now += 30 * 86400
        self.assertEqual([], self.session.tick())
        self.assertTrue(self.session.is_open)

    def test_session_ends_with_its_key_on_the_wall_clock(self):
        # consoleauth gives the expiry as an epoch: the wall clock says
        # how far off it is, the monotonic clock when it comes.
        session = self.new_session(cs.Settings(enforce_session_timeout=True))
        self.open(session=session, console=dict(
            CONSOLE, expires_at=self.wall_clock.now + 60))
        self.clock.now += 59
        self.assertEqual([], session.tick())
        self.clock.now += 1
        actions = session.tick()
        self.assertIn('one-time key of this session expired',
                      notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))


class SysRqTest(SSHSessionTestCase):
    """ssh's ~B, then a key within SYSRQ_WINDOW: that key is SysRq."""

    def setUp(self):
        super().setUp()
        self.open()

    def test_key_after_a_break_is_sent_as_sysrq_and_not_typed(self):
        self.assertIn('type a SysRq key within 5 s',
                      notes(self.session.break_received()))
        actions = self.session.client_data(b'hls\n')
        self.assertEqual([core.RunPageCommand(page_commands.Command(
            page_commands.SYSRQ, 'h'))],
            of_type(actions, core.RunPageCommand))
        self.assertEqual(b'ls\n', to_guest(actions))
        self.assertEqual('SysRq h sent',
                         notes(self.session.page_command_done()))
        # Only the one key: the next is typed.
        self.assertEqual(b'h', to_guest(self.session.client_data(b'h')))

    def test_line_end_of_the_escape_is_typed_and_the_key_still_awaited(self):
        self.session.break_received()
        self.assertEqual(b'\r', to_guest(self.session.client_data(b'\r')))
        actions = self.session.client_data(b'\nh')
        self.assertEqual(b'\n', to_guest(actions))
        self.assertEqual(1, len(of_type(actions, core.RunPageCommand)))

    def test_key_after_the_window_is_typed(self):
        self.session.break_received()
        self.clock.now += ssh_session.SYSRQ_WINDOW + 0.1
        actions = self.session.client_data(b'h')
        self.assertEqual(b'h', to_guest(actions))
        self.assertEqual([], of_type(actions, core.RunPageCommand))

    def test_key_that_is_no_sysrq_key_is_dropped_with_a_reason(self):
        self.session.break_received()
        actions = self.session.client_data(b'a')
        self.assertEqual(b'', to_guest(actions))
        self.assertIn("'a' is not a SysRq key", notes(actions))
        self.assertEqual([], of_type(actions, core.RunPageCommand))

    def test_one_sysrq_at_a_time(self):
        self.session.break_received()
        self.session.client_data(b'h')
        self.session.break_received()
        actions = self.session.client_data(b's')
        self.assertEqual([], of_type(actions, core.RunPageCommand))
        self.assertIn('SysRq h is still being sent', notes(actions))

    def test_failure_is_told(self):
        self.session.break_received()
        self.session.client_data(b'h')
        self.assertEqual('SysRq h not sent: the compute host did not '
                         'answer in time',
                         notes(self.session.page_command_done(
                             'SysRq h not sent: the compute host did not '
                             'answer in time')))

    def test_break_before_the_console_opens_is_refused(self):
        session = self.new_session()
        self.shell(session)
        self.assertIn('a break needs an open console',
                      notes(session.break_received()))


class SysRqNotAllowedTest(SSHSessionTestCase):
    """A key whose pusher the SysRq policy did not allow: a break and a
    key send nothing, type nothing, and say why."""

    console = dict(CONSOLE, modes=['nmi', 'write'])

    def setUp(self):
        super().setUp()
        self.open()

    def test_break_says_sysrq_is_not_allowed_naming_the_policy(self):
        said = notes(self.session.break_received())
        self.assertIn('SysRq is not allowed for you on this server (policy '
                      'serialproxy:serial_console:sysrq)', said)
        self.assertNotIn('type a SysRq key', said)

    def test_key_after_the_break_is_neither_sent_nor_typed(self):
        self.session.break_received()
        actions = self.session.client_data(b'bls\n')
        self.assertEqual(b'ls\n', to_guest(actions))
        self.assertEqual([], of_type(actions, core.RunPageCommand))
        self.assertIn("SysRq 'b' not sent: SysRq is not allowed",
                      notes(actions))
        # The break is used up: the next key is typed.
        self.assertEqual(b'b', to_guest(self.session.client_data(b'b')))

    def test_console_without_modes_may_not_send_sysrq(self):
        # What a consoleauth from before 1.8 answers: no modes at all.
        session = self.new_session()
        console = dict(CONSOLE)
        del console['modes']
        self.open(session=session, console=console)
        session.break_received()
        self.assertEqual([], of_type(session.client_data(b'h'),
                                     core.RunPageCommand))


class SpectatorTest(SSHSessionTestCase):
    """A .view user: a spectator's seat; its keys reach nothing."""

    mode = core.VIEW

    def setUp(self):
        super().setUp()
        self.actions = self.open(history=b'earlier')

    def test_spectator_watches_with_the_replay_and_the_live_output(self):
        self.assertIn('watching console port 0 of server i-1',
                      notes(self.actions))
        self.assertEqual(b'earlier', to_client(self.actions))
        self.assertEqual(b'live', to_client(self.session.guest_data(b'live')))

    def test_keys_reach_nothing(self):
        actions = self.session.client_data(b'reboot\n')
        self.assertEqual([core.InputDropped(7)], actions)
        self.assertEqual(7, self.session.input_dropped)
        self.assertEqual(0, self.session.bytes_to_guest)

    def test_breaks_send_no_sysrq_whatever_the_key_allows(self):
        self.assertEqual((), self.session.permissions)
        self.assertIn('a spectator cannot send SysRq',
                      notes(self.session.break_received()))
        actions = self.session.client_data(b'b')
        self.assertEqual([], of_type(actions, core.RunPageCommand))
        self.assertEqual([], of_type(actions, core.SendToGuest))

    def test_spectator_ends_with_the_writer(self):
        actions = self.session.guest_eof()
        self.assertIn('nothing more to watch', notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))
        self.assertIn(core.ReleaseLease('session-1'), actions)

    def test_spectator_that_stops_reading_never_holds_the_writer_back(self):
        session = self.new_session(cs.Settings(spectator_buffer_bytes=10))
        self.open(session=session)
        self.assertEqual([core.PauseReading(core.Side.CLIENT)],
                         session.client_write_blocked())
        self.assertEqual(b'0123456789',
                         to_client(session.guest_data(b'0123456789')))
        actions = session.guest_data(b'x')
        self.assertIn('fell too far behind', notes(actions))
        self.assertEqual(ssh_session.EXIT_CLOSED, exit_status(actions))

    def test_writers_spectator_count_is_no_console_output(self):
        writer = self.new_session(mode=core.WRITE)
        self.open(session=writer)
        self.assertEqual([], writer.spectators_changed(2))
