"""One console session's rules, whatever the client came through.

A ConsoleCore knows what a console session is, not how its client
speaks: the states a session passes (its client's request, authorizing,
open, closing, closed), the lease it holds and gives back, its time
limits (on an injected monotonic clock, and an injected wall clock for
the console's own expiry, which consoleauth gives as an epoch), back-
pressure on both sides, the spectator's seat whose input reaches
nothing, and "answer the client's end only once the lease is back", so
that a client reconnecting at once finds the console free.

Front ends subclass it with their transport's words and no I/O either:
session.ConsoleSession (websocket: the HTTP request, the handshake, the
codec, the page's commands) and ssh_session.SSHConsoleSession (SSH:
channel requests, the break-then-key SysRq window, exit statuses). A
front end gives the core four things: how console output is sent
(_output), how the client is told the session ended (_close_client),
how it is told it was refused (_refusal_answer) and how it is told it
is open (_opened). Every event returns the actions the event loop
layer carries out.
"""

import dataclasses
import enum
import time

from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy import seam

# The seat a session asks for: the writer's (the default), a read-only
# spectator's, or the writer's taken from whoever holds it.
WRITE = 'write'
VIEW = 'view'
TAKE_OVER = 'take_over'
MODES = (WRITE, VIEW, TAKE_OVER)
SPECTATED_WRITER_LEFT = ('The console\'s user left or was replaced: '
                         'nothing more to watch')


class State(enum.Enum):
    REQUEST = 'request'            # reading what the client asks for
    AUTHORIZING = 'authorizing'    # token, lease and guest being checked
    OPEN = 'open'                  # bytes flow both ways
    CLOSING = 'closing'            # the client told; its end awaited
    ANSWERED = 'answered'          # refused, or answered without a console
    CLOSED = 'closed'              # the client connection is gone


class Side(enum.Enum):
    CLIENT = 'client'
    GUEST = 'guest'


# Live output held at the seam past this stops the guest's reading
# until the seam is decided (the guest then waits, as for a slow client).
SEAM_HOLD_BYTES = 1024 * 1024
SEAM_FAILED = ('The console log could not be joined to live output: '
               'connect again to resume')


# Actions -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SendToClient:
    chunks: list
    payload_bytes: int = 0    # console bytes among them, for metrics


@dataclasses.dataclass(frozen=True)
class SendToGuest:
    """The console bytes one read from the client completed, in order.

    The guest's serial port is a byte stream: the layer writes them as it
    likes best (server.guest_write joins them, since a write per message
    would cost a system call each).
    """
    chunks: list
    payload_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class PauseReading:
    side: Side


@dataclasses.dataclass(frozen=True)
class ResumeReading:
    side: Side


@dataclasses.dataclass(frozen=True)
class Refused:
    """A refusal was answered (for logs and metrics)."""
    refusal: Refusal


@dataclasses.dataclass(frozen=True)
class Started:
    """The client was told the console is open."""


@dataclasses.dataclass(frozen=True)
class Ended:
    """The console session ended, with the code and reason given."""
    code: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ReleaseLease:
    """Give the lease back; with then_answer, tell the session
    (lease_released()) once consoleauth has it back."""
    session_id: str
    then_answer: bool = False


@dataclasses.dataclass(frozen=True)
class InputDropped:
    """A spectator typed: its bytes were not sent (for metrics)."""
    nbytes: int


@dataclasses.dataclass(frozen=True)
class RunPageCommand:
    """A SysRq key or an NMI the session's console allows (the page's
    menu, an SSH user's break and key).

    The layer has the compute agent carry it out and answers with
    page_command_done().
    """
    command: page_commands.Command


@dataclasses.dataclass(frozen=True)
class CloseGuest:
    pass


@dataclasses.dataclass(frozen=True)
class HeldOutput:
    """Stream bytes the seam of a resumed stream let go (seam.py): from
    the log and the guest's output held meanwhile. The layer passes them
    on as the guest's output (recorder, spectators, this session)."""
    data: bytes


@dataclasses.dataclass(frozen=True)
class SeamJoined:
    """Live output joins the stream sent: the guest's output goes to the
    session as it comes again (the layer stops holding it)."""


@dataclasses.dataclass(frozen=True)
class CloseClient:
    """Close the client's connection once what was sent is flushed."""


# The core --------------------------------------------------------------------

class ConsoleCore:
    """A console session's state, lease, limits and back-pressure.

    settings: what session.Settings holds (the core reads its time
    limits, close_grace, handshake_timeout and spectator_buffer_bytes).
    """

    def __init__(self, settings, clock=time.monotonic,
                 wall_clock=time.time):
        self.settings = settings
        self.clock = clock
        self.wall_clock = wall_clock
        self.state = State.REQUEST
        self.console = None
        self.session_id = None
        self.lease_held = False
        self.bytes_to_guest = 0
        self.bytes_to_client = 0
        self.started_at = None
        self.end_reason = None
        self.mode = WRITE
        # The client may only watch (no 'write'): it watches whatever
        # seat it asked for.
        self.watch_only = False
        self.input_dropped = 0
        # What the writer may send besides console bytes
        # (page_commands.PERMISSIONS its console carries).
        self.permissions = ()
        # Whether the client stopped reading what we send, whether the
        # guest stopped reading what the client types, and whether the
        # layer was last told to read the client: it is read only while
        # neither holds (see _client_reading).
        self._client_blocked = False
        self._guest_blocked = False
        self._reading_client = False
        # A spectator's output written since its client stopped reading;
        # None while it reads.
        self._unread = None
        self._deadline = clock() + settings.handshake_timeout
        self._last_activity = None
        self._expires_at = None
        # The answer to a client's end (actions), held until the console
        # is free.
        self._held_answer = None
        # What the client asked of the stream (seam.StreamRequest: resume
        # at an offset, be told offsets), None for nothing; and the seam
        # being decided while the session opens that way.
        self.stream = None
        self._seam = None
        self._seam_paused = False
        # The decided seam (seam.Seam), for the log.
        self.seam = None

    @property
    def is_open(self):
        return self.state is State.OPEN

    @property
    def is_spectator(self):
        return self.mode == VIEW

    # What a front end gives ----------------------------------------------

    def _output(self, data):
        """Actions that send console output to the client."""
        raise NotImplementedError

    def _close_client(self, code, reason):
        """Actions that tell an open session's client it ended."""
        raise NotImplementedError

    def _refusal_answer(self, refusal):
        """Actions that tell a client its console was refused."""
        raise NotImplementedError

    def _opened(self, history, stream=None):
        """Actions that open the console to the client: Started, reading
        both sides, the history, and the client's early input; stream
        (seam.StreamStart): where the bytes sent begin, for a client that
        asked."""
        raise NotImplementedError

    def _close_unopened(self, code, reason):
        """Actions that end a client whose console never opened."""
        return [CloseClient()]

    def _client_caught_up(self):
        """Actions owed to a client that reads again."""
        return []

    def _reason(self, code):
        """What the client is told when the proxy ends its session."""
        return close_codes.default_reason(code)

    # Events from authorization ------------------------------------------

    def watching_only(self):
        """consoleauth refused the writer's seat to a watch-only client:
        the session asks for a spectator's seat instead."""
        self.watch_only = True
        self.mode = VIEW

    def leased(self, console):
        """consoleauth gave this session the console's lease."""
        self.console = console
        self.session_id = console.session_id
        self.lease_held = True
        if not self.is_spectator:
            self.permissions = page_commands.permissions_of(
                console.modes)
        if self.state is not State.AUTHORIZING:
            return self._release()
        if self.settings.enforce_session_timeout:
            self._expires_at = self.clock() + \
                console.expires_at - self.wall_clock()
        return []

    def guest_connected(self, history=b'', stream=None):
        """The guest's serial port (a spectator's: the writer's relay)
        answered: open the console to the client. stream: where what
        is sent begins (seam.StreamStart), for a client that asked."""
        if self.state is not State.AUTHORIZING:
            return [CloseGuest()]
        self.state = State.OPEN
        self.started_at = self._last_activity = self.clock()
        return self._opened(history, stream)

    def stream_unknown(self, history=b''):
        """The guest answered, and this session cannot tell offsets (no
        console log, an older agent): open as for a client that asked
        nothing, saying so."""
        return self.guest_connected(history, seam.StreamStart(
            offset=None, requested=self.stream.resume))

    # The seam of a resumed stream (seam.py) ------------------------------

    @property
    def at_seam(self):
        """Whether live output is still being joined to the history."""
        return self._seam is not None and self.state is State.OPEN

    @property
    def seam_idle(self):
        """Nothing to join until the guest prints (seam.Seam.idle)."""
        return self.at_seam and self._seam.idle

    @property
    def seam_holds_live(self):
        """Live output is held until the log reaches it."""
        return self.at_seam and bool(self._seam.live)

    def seam_begun(self, first, replay_lines=0):
        """The guest answered after the history `first` was read (its
        data as bytes): open with the note and the history. The layer
        holds the guest's output from now on (seam_live) until the
        seam is joined (SeamJoined)."""
        if self.state is not State.AUTHORIZING:
            return [CloseGuest()]
        self._seam = self.seam = seam.Seam(self.stream, first,
                                           replay_lines)
        return self.guest_connected(self._seam.history, self._seam.note())

    def seam_live(self, data):
        """Output the guest gave while the seam is joined."""
        if not self.at_seam:
            return []
        self._seam.live_data(data)
        actions = self._seam_step()
        if self.at_seam and not self._seam_paused and \
                len(self._seam.live) > SEAM_HOLD_BYTES:
            self._seam_paused = True
            actions.append(PauseReading(Side.GUEST))
        return actions

    def seam_tail(self, page, asked, final=False):
        """A read of the log from offset asked (seam.Seam.tail_read),
        made after the guest answered; final: the log stopped growing.
        A read from before the seam moved on is stale, and ignored."""
        if not self.at_seam or asked != self._seam.tail_start:
            return []
        try:
            self._seam.tail_read(page)
        except ValueError:
            return self.seam_failed()
        return self._seam_step(final)

    def seam_failed(self):
        """The log cannot be read to join live output to what was sent:
        the client is told to resume again, rather than given a stream
        whose offsets it cannot count."""
        if not self.at_seam:
            return []
        self._seam = None
        return self.close(CloseCode.INTERNAL_ERROR, SEAM_FAILED)

    def _seam_step(self, final=False):
        sent = self._seam.step(final)
        actions = []
        if self._seam.joined:
            self._seam = None
            actions.append(SeamJoined())
            if self._seam_paused and not self._client_blocked:
                actions.append(ResumeReading(Side.GUEST))
            self._seam_paused = False
        if sent:
            actions.append(HeldOutput(sent))
        return actions

    def refused(self, refusal):
        actions = self._release()
        if self.state in (State.REQUEST, State.AUTHORIZING):
            self.state = State.ANSWERED
            actions += [Refused(refusal)] + self._refusal_answer(refusal)
        return actions

    # Events from the guest -----------------------------------------------

    def guest_data(self, data):
        if self.state is not State.OPEN:
            return []
        if self._unread is not None:
            self._unread += len(data)
            if self._unread > self.settings.spectator_buffer_bytes:
                return self.close(CloseCode.SPECTATOR_TOO_SLOW,
                                  self._reason(CloseCode.SPECTATOR_TOO_SLOW))
        self._last_activity = self.clock()
        self.bytes_to_client += len(data)
        return self._output(data)

    def guest_eof(self):
        if self.is_spectator:
            # A spectator's output comes through the writer's relay, which
            # ends with the writer's session.
            return self.close(CloseCode.NORMAL, SPECTATED_WRITER_LEFT)
        return self.close(CloseCode.CONSOLE_GONE,
                          self._reason(CloseCode.CONSOLE_GONE))

    def guest_write_blocked(self):
        # The guest reads slower than the client types or pastes.
        self._guest_blocked = True
        return self._client_reading()

    def guest_write_unblocked(self):
        self._guest_blocked = False
        return self._client_reading()

    # Back-pressure from the client ---------------------------------------

    def client_write_blocked(self):
        """The client's write buffer passed its limit: it reads slower
        than we write. Nothing more is read from it until it catches
        up, so that nothing it sends can queue more answers; a writer's
        guest stops too."""
        self._client_blocked = True
        if not self.is_open:
            return []
        if self.is_spectator:
            # Never hold the writer's guest back for a spectator.
            self._unread = 0
            return self._client_reading()
        return [PauseReading(Side.GUEST)] + self._client_reading()

    def client_write_unblocked(self):
        self._client_blocked = False
        if not self.is_open:
            return []
        if self.is_spectator:
            self._unread = None
            actions = []
        else:
            actions = [ResumeReading(Side.GUEST)]
        return actions + self._client_reading() + self._client_caught_up()

    def _client_reading(self):
        """Pause or resume reading the client, as the two reasons to
        pause it (the client's buffer full, the guest's full) say."""
        wanted = self.is_open and not (self._client_blocked or
                                       self._guest_blocked)
        if wanted == self._reading_client:
            return []
        self._reading_client = wanted
        return [ResumeReading(Side.CLIENT) if wanted
                else PauseReading(Side.CLIENT)]

    def _client_input(self, messages):
        """Console bytes from the client: to the guest, or dropped."""
        if not messages or self.state is not State.OPEN:
            return []
        payload_bytes = sum(map(len, messages))
        if self.is_spectator:
            self.input_dropped += payload_bytes
            return [InputDropped(payload_bytes)]
        self._last_activity = self.clock()
        self.bytes_to_guest += payload_bytes
        return [SendToGuest(messages, payload_bytes)]

    # The end -------------------------------------------------------------

    def client_lost(self):
        """The client connection is gone, for whatever reason."""
        previous, self.state = self.state, State.CLOSED
        self._held_answer = None
        actions = []
        if previous is State.OPEN:
            self.end_reason = self.end_reason or 'connection lost'
            actions += [CloseGuest(), Ended(CloseCode.ABNORMAL,
                                            self.end_reason)]
        return actions + self._release()

    def close(self, code, reason):
        """End the session with a close code and reason the client is
        told (an operator, a limit, the guest gone, shutdown).

        The console is given back at once, not when the client answers.
        """
        if self.state in (State.REQUEST, State.AUTHORIZING):
            self.state = State.CLOSED
            return self._release() + self._close_unopened(code, reason)
        if self.state is not State.OPEN:
            return []
        self.state = State.CLOSING
        self.end_reason = reason
        self._deadline = self.clock() + self.settings.close_grace
        return self._close_client(code, reason) + \
            [CloseGuest(), Ended(code, reason)] + self._release()

    def _client_closed(self, code, reason, answer):
        """The client ended the session first: its answer (actions) is
        given once consoleauth has the lease back (or after close_grace),
        so that a client reconnecting as soon as it is answered, here or
        on another proxy, finds the console free."""
        self.end_reason = reason
        self.state = State.CLOSING
        self._deadline = self.clock() + self.settings.close_grace
        self._held_answer = answer
        self.lease_held = False
        return [CloseGuest(), Ended(code, reason),
                ReleaseLease(self.session_id, then_answer=True)]

    def lease_released(self):
        """consoleauth took back the lease of a client-ended session."""
        held, self._held_answer = self._held_answer, None
        return held or []

    def _release(self):
        if not self.lease_held:
            return []
        self.lease_held = False
        return [ReleaseLease(self.session_id)]

    # The clock -------------------------------------------------------------

    def tick(self):
        """Apply the time limits; called about once a second."""
        now = self.clock()
        if self.state is State.REQUEST:
            if now >= self._deadline:
                return self.refused(Refusal(400, 'Request not received in '
                                                 'time', kind='timeout'))
        elif self.state is State.AUTHORIZING:
            # The request came; the console service did not answer.
            if now >= self._deadline:
                return self.refused(Refusal(503, 'Console service '
                                                 'unavailable',
                                            kind='timeout'))
        elif self.state is State.CLOSING:
            if now >= self._deadline:
                # consoleauth is slow to take the lease back: answer.
                return self.lease_released() or [CloseClient()]
        elif self.state is State.OPEN:
            return self._limits(now)
        return []

    def _limits(self, now):
        settings = self.settings
        if settings.max_session_age and now - self.started_at >= \
                settings.max_session_age:
            code = CloseCode.SESSION_MAX_AGE
        elif self._expires_at is not None and now >= self._expires_at:
            code = CloseCode.TOKEN_EXPIRED
        elif settings.idle_timeout and now - self._last_activity >= \
                settings.idle_timeout:
            code = CloseCode.IDLE_TIMEOUT
        else:
            return []
        return self.close(code, self._reason(code))
