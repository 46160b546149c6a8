"""The SSH front end of a console session, with no I/O in it.

An SSHConsoleSession is one console over one SSH session channel, fed
what happens (the channel's requests, the user's bytes, breaks and end
of input, the lease, the guest, the clock) and answering with actions,
as the websocket front end (session.py) does; the console's rules are
console_core.ConsoleCore's, the same for both. What is SSH about it:

- channel requests: a pty and a shell open the console; a command or a
  subsystem is refused with a note; the terminal size is passed on as
  an stty hint, since a serial line cannot carry it;
- SysRq as on a real serial line: a break (ssh's ~B), then within
  SYSRQ_WINDOW seconds a key, which is sent as Alt+SysRq+key rather
  than typed, when the console carries the 'sysrq' mode;
- exit statuses: 0 when the user ended the session (sent once the lease
  is back, so that their next ssh finds the console free), EXIT_REFUSED
  when it never opened, EXIT_CLOSED when the proxy or the console
  service ended it, EXIT_GUEST_GONE when the guest went away;
- notes on stderr, which say why, and none to a client that stopped
  reading.

A user whose name ends with .view takes a spectator's seat (mode view):
its keys reach nothing, and its breaks send nothing. One whose name asks
for replay-lines=N is shown the last N lines of recent output before live
output (0: none) instead of the proxy's [console] replay_lines, up to
[console] max_replay_lines; the opening note says when it was cut to that.
"""

import dataclasses
import time

from serialproxy.policies import serial_console_keys as key_policies
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import console_core
# The core's action and state names, read as this front end's own.
from serialproxy.proxy.console_core import (
    PauseReading,  # noqa: H301
    ResumeReading,
    SendToClient,
    Side,
    Started,
    State,
    WRITE)
from serialproxy.proxy.page import commands as page_commands
from serialproxy import sysrq

# Seconds after a break (ssh's ~B) in which the next key is SysRq.
SYSRQ_WINDOW = 5
# Exit statuses the ssh client returns: the user ended the session,
# refused before the console opened, ended by the proxy or the console
# service, the guest gone.
EXIT_USER = 0
EXIT_REFUSED = 1
EXIT_CLOSED = 2
EXIT_GUEST_GONE = 3
# What the user typed before the console opened is kept for it up to
# this; past it the channel is not read until the console opens.
EARLY_INPUT_BYTES = 64 * 1024
# A key opens one session: a user past [console] max_session_age needs
# the API again, which checks their roles again.
REASONS = {
    CloseCode.SESSION_MAX_AGE: ('The session reached the longest a console '
                                'session may last: push a new key to '
                                'connect again'),
    CloseCode.TOKEN_EXPIRED: 'The one-time key of this session expired',
}
SYSRQ_NOT_ALLOWED = ('SysRq is not allowed for you on this server (policy '
                     '%s)' % key_policies.SYSRQ)
SPECTATOR_NO_SYSRQ = 'watching read-only: a spectator cannot send SysRq'


@dataclasses.dataclass(frozen=True)
class LeaseConsole:
    """Take the seat of mode (WRITE, or VIEW for a .view user) on the
    console the connection signed in for, and reach its guest (a
    spectator's: the writer's relay), with replay_lines of recent output
    as history (None: the proxy's [console] replay_lines). The layer
    answers leased() and guest_connected(history), or refused()."""
    mode: str
    replay_lines: int = None


@dataclasses.dataclass(frozen=True)
class SendNote:
    """A line for the user on the channel's stderr."""
    text: str

    @property
    def data(self):
        return ('\r\nserialproxy: %s\r\n' % self.text).encode()


@dataclasses.dataclass(frozen=True)
class Exit:
    """Send the exit status, which closes the channel."""
    status: int


class SSHConsoleSession(console_core.ConsoleCore):
    """One console over one SSH session channel."""

    def __init__(self, settings, mode=WRITE, replay_lines=None,
                 max_replay_lines=None, clock=time.monotonic,
                 wall_clock=time.time, stream=None):
        """replay_lines: what the user name asked for (None: nothing),
        cut to max_replay_lines (None: no limit)."""
        super().__init__(settings, clock=clock, wall_clock=wall_clock)
        self.mode = mode
        # seam.StreamRequest of a user name's resume=N option.
        self.stream = stream
        # The lines asked for beyond the limit, said when the console opens.
        self._replay_cut_from = None
        if replay_lines is not None and max_replay_lines is not None and \
                replay_lines > max_replay_lines:
            self._replay_cut_from = replay_lines
            replay_lines = max_replay_lines
        self.replay_lines = replay_lines
        self.term_size = None
        # The channel is read from the start (asyncssh's default).
        self._reading_client = True
        # What the user typed before the console opened, and whether
        # their input ended meanwhile.
        self._early = []
        self._early_bytes = 0
        self._early_eof = False
        # When the user's last break came (clock), while its SysRq key
        # is awaited.
        self._sysrq_armed_at = None
        self._command_pending = None

    # Channel requests ------------------------------------------------------

    def pty_requested(self, term_size):
        self.term_size = term_size

    def terminal_size_changed(self, term_size):
        self.term_size = term_size

    def command_requested(self, what):
        """A command or subsystem: refused (the layer answers False)."""
        return self._note('%s is not served: this is a serial console; '
                          'connect without one.' % what)

    def shell_requested(self):
        """The shell (the console) was asked for: lease it."""
        if self.state is not State.REQUEST:
            return []
        self.state = State.AUTHORIZING
        self._deadline = self.clock() + self.settings.handshake_timeout
        return [LeaseConsole(self.mode, self.replay_lines)]

    # The user's input --------------------------------------------------------

    def client_data(self, data):
        if self.state is State.OPEN:
            data, actions = self._take_sysrq_key(data)
            return actions + self._client_input([data] if data else [])
        if self.state in (State.REQUEST, State.AUTHORIZING):
            self._early.append(data)
            self._early_bytes += len(data)
            if self._early_bytes > EARLY_INPUT_BYTES and \
                    self._reading_client:
                self._reading_client = False
                return [PauseReading(Side.CLIENT)]
        return []

    def client_eof(self):
        """The user's input ended: the session ends, and its exit status
        comes once the lease is back."""
        if self.state is State.OPEN:
            return self._client_closed(CloseCode.NORMAL, 'client closed',
                                       [Exit(EXIT_USER)])
        if self.state in (State.REQUEST, State.AUTHORIZING):
            # The answer (the console, or why not) is still due.
            self._early_eof = True
        return []

    def spectators_changed(self, count):
        """Console bytes only: an SSH writer is not told who watches."""
        return []

    # SysRq: a break, then a key ----------------------------------------------

    def break_received(self):
        """An RFC 4335 break: as on a real serial line, the key typed
        next, within SYSRQ_WINDOW seconds, is sent to the guest as
        Alt+SysRq+key (a TCP chardev cannot carry a break)."""
        if self.state is not State.OPEN:
            return self._note('a break needs an open console.')
        if self.is_spectator:
            return self._note('break: %s' % SPECTATOR_NO_SYSRQ)
        # Armed even when SysRq is not allowed: the key meant for it is
        # then dropped, not typed into the guest.
        self._sysrq_armed_at = self.clock()
        if page_commands.SYSRQ not in self.permissions:
            return self._note('break: %s; the next key is dropped'
                              % SYSRQ_NOT_ALLOWED)
        return self._note('break: type a SysRq key within %d s (h: help)'
                          % SYSRQ_WINDOW)

    def _take_sysrq_key(self, data):
        """(data less the key that follows a break, the actions that key
        asks for)."""
        armed_at = self._sysrq_armed_at
        if armed_at is None:
            return data, []
        if self.clock() - armed_at > SYSRQ_WINDOW:
            self._sysrq_armed_at = None
            return data, []
        # ssh sends the line end that began its escape after the break.
        line_ends = len(data) - len(data.lstrip(b'\r\n'))
        if line_ends == len(data):
            return data, []
        self._sysrq_armed_at = None
        key = data[line_ends:line_ends + 1].lower().decode('ascii',
                                                           'replace')
        rest = data[:line_ends] + data[line_ends + 1:]
        return rest, self._sysrq_key(key)

    def _sysrq_key(self, key):
        if page_commands.SYSRQ not in self.permissions:
            return self._note('SysRq %r not sent: %s'
                              % (key, SYSRQ_NOT_ALLOWED))
        if key not in sysrq.KEYS:
            return self._note('%r is not a SysRq key (%s); break ignored'
                              % (key, sysrq.KEYS))
        if self._command_pending is not None:
            return self._note('%s is still being sent: SysRq %s not sent'
                              % (self._command_pending, key))
        self._command_pending = page_commands.Command(page_commands.SYSRQ,
                                                      key)
        self._last_activity = self.clock()
        return [console_core.RunPageCommand(self._command_pending)]

    def page_command_done(self, error=None):
        """The SysRq key was sent, or not: error says why."""
        command, self._command_pending = self._command_pending, None
        if command is None:
            return []
        return self._note(error or '%s sent' % command)

    # The core's words, in SSH ------------------------------------------------

    def _note(self, text):
        """A note answering what the user did; none to a client that
        stopped reading, whose breaks and requests must not fill our
        memory with answers, nor to one whose channel is ending."""
        if self._client_blocked or self.state in (
                State.CLOSING, State.ANSWERED, State.CLOSED):
            return []
        return [SendNote(text)]

    def _opened(self, history, stream=None):
        # SSH has no side channel for the stream note: a resumed session
        # gets the raw history from the offset asked, then live output.
        console = self.console
        hint = ''
        if self.term_size and all(self.term_size[:2]):
            cols, rows = self.term_size[:2]
            hint = (' A serial line cannot pass on the terminal size: run '
                    '"stty rows %d cols %d" in the guest to match.'
                    % (rows, cols))
        if self._replay_cut_from is not None:
            hint += (' replay-lines=%d is more than this proxy replays: '
                     'the last %d lines at most.'
                     % (self._replay_cut_from, self.replay_lines))
        actions = [Started(), SendNote(
            '%s console port %d of server %s.%s' % (
                'watching' if self.is_spectator else 'connected to',
                console.index, console.instance_uuid, hint)),
            *self._client_reading(), ResumeReading(Side.GUEST)]
        if history:
            actions.append(SendToClient([history]))
        early, self._early = self._early, None
        actions += self._client_input(early)
        if self._early_eof:
            actions += self.client_eof()
        return actions

    def _output(self, data):
        return [SendToClient([data], len(data))]

    def _close_client(self, code, reason):
        return [SendNote(reason), Exit(EXIT_GUEST_GONE if code ==
                                       CloseCode.CONSOLE_GONE
                                       else EXIT_CLOSED)]

    def _close_unopened(self, code, reason):
        return [SendNote(reason), Exit(EXIT_CLOSED)]

    def _refusal_answer(self, refusal):
        return [SendNote(refusal.reason), Exit(EXIT_REFUSED)]

    def _reason(self, code):
        return REASONS.get(code) or super()._reason(code)
