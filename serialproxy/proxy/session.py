"""One console connection as a state machine, with no I/O in it.

A ConsoleSession is fed what happens (bytes from the client, the result
of authorization, bytes and EOF from the guest, a disconnect order, the
clock) and answers with the actions the event loop layer must carry out
(send to either side, pause or resume reading either side, close,
release the console's lease, run a page's SysRq or NMI command). It
owns the HTTP request, the websocket codec and the time limits; it never
touches a socket, so every rule here is tested by feeding it bytes.
"""

import dataclasses
import enum
import json
import time
import typing

from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import forwarded
from serialproxy.proxy import framing
from serialproxy.proxy import handshake
from serialproxy.proxy import page_commands
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy import websocket

# Header of a plain GET that asks "would this token open now?"; the page
# sends it after a failed upgrade, because browsers hide the HTTP status
# of a refused websocket handshake.
CHECK_HEADER = 'X-Serialproxy-Check'

# ?mode= of a console URL: the writer (the default), a read-only
# spectator, or a writer replacing the current one.
WRITE = 'write'
VIEW = 'view'
TAKE_OVER = 'take_over'
MODES = (WRITE, VIEW, TAKE_OVER)
SPECTATED_WRITER_LEFT = ('The console\'s user left or was replaced: '
                         'nothing more to watch')
# Answers (text notes; pongs are one per read, see websocket.py) that one
# read from a client may ask for; past it the client is closed with 1008.
# With the client's reading paused while its write buffer is full, this
# bounds what a client's own frames make the proxy queue toward it.
REPLY_BYTES_PER_READ = 16 * 1024
TOO_MANY_REQUESTS = ('Too many requests at once: at most %d bytes of '
                     'answers per read' % REPLY_BYTES_PER_READ)


class State(enum.Enum):
    REQUEST = 'request'            # reading the HTTP request
    AUTHORIZING = 'authorizing'    # token, lease and guest being checked
    OPEN = 'open'                  # bytes flow both ways
    CLOSING = 'closing'            # our close frame sent, awaiting theirs
    ANSWERED = 'answered'          # a page, check or refusal was sent
    CLOSED = 'closed'              # the client connection is gone


class Side(enum.Enum):
    CLIENT = 'client'
    GUEST = 'guest'


@dataclasses.dataclass(frozen=True)
class Settings:
    """The session's rules, from [console] and [consoleauth]."""
    allowed_origins: typing.Tuple[str, ...] = ()
    frame_ancestors: framing.FrameAncestors = framing.FrameAncestors()
    # Peers whose X-Forwarded-For and X-Forwarded-Proto are believed.
    trusted_proxies: forwarded.TrustedProxies = forwarded.TrustedProxies()
    max_frame_bytes: int = 1024 * 1024
    handshake_timeout: float = 10.0
    # How long a client gets to answer our close frame.
    close_grace: float = 2.0
    idle_timeout: float = 0
    enforce_session_timeout: bool = False
    # Longest a session may stay open, whoever uses it; 0: no limit.
    max_session_age: float = 0
    # Output that may wait for a spectator whose client stopped reading,
    # beyond the transport's own write buffer, before it is closed.
    spectator_buffer_bytes: int = 256 * 1024


# Actions -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SendToClient:
    chunks: list
    payload_bytes: int = 0    # console bytes among them, for metrics


@dataclasses.dataclass(frozen=True)
class SendToGuest:
    """The messages one read from the client completed, in order.

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
class Authorize:
    """Check the token; with lease, take the lease and reach the guest.

    The layer answers with leased() and guest_connected(), or refused().
    Without lease it only asks whether the console would open now, and
    answers check_passed() or refused().
    """
    request: handshake.Request
    lease: bool


@dataclasses.dataclass(frozen=True)
class ServePage:
    request: handshake.Request


@dataclasses.dataclass(frozen=True)
class Refused:
    """A refusal was answered (for logs and metrics)."""
    refusal: Refusal


@dataclasses.dataclass(frozen=True)
class Started:
    """The 101 went out: the console session is open."""


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
    """The writer's page asked for a SysRq key or an NMI its token allows.

    The layer has the compute agent carry it out and answers with
    page_command_done().
    """
    command: page_commands.Command


@dataclasses.dataclass(frozen=True)
class CloseGuest:
    pass


@dataclasses.dataclass(frozen=True)
class CloseClient:
    """Close the client's connection once what was sent is flushed."""


# The session -----------------------------------------------------------------

class ConsoleSession:
    def __init__(self, settings, tls=False, clock=time.monotonic,
                 peer_host=None):
        self.settings = settings
        self.tls = tls
        self.peer_host = peer_host
        # Who the client is: the peer, or whom a trusted proxy names once
        # the request is read (forwarded.py); and the scheme it used, when
        # a trusted proxy says.
        self.client_host = peer_host
        self.forwarded_scheme = None
        self.clock = clock
        self.state = State.REQUEST
        self.request = None
        self.console = None
        self.session_id = None
        self.lease_held = False
        self.bytes_to_guest = 0
        self.bytes_to_client = 0
        self.started_at = None
        self.end_reason = None
        self.mode = WRITE
        # The token may only watch (no 'write'): it watches whatever
        # mode its query asked for, and its page is told so.
        self.watch_only = False
        self.input_dropped = 0
        # What the writer's page may send besides console bytes
        # (page_commands.PERMISSIONS its token carries).
        self.permissions = ()
        self._ws = None
        # The page's command being carried out: one at a time, so a page
        # cannot queue compute calls.
        self._command_pending = None
        # Whether the client stopped reading what we send, whether the
        # guest stopped reading what the client types, and whether the
        # layer was last told to read the client: it is read only while
        # neither holds (see _client_reading).
        self._client_blocked = False
        self._guest_blocked = False
        self._reading_client = False
        # Whether the client ever sent a text frame: only such a client
        # (the console page) is sent text notes; every other one gets
        # console bytes only.
        self._wants_notes = False
        # The writer's spectator count: the latest known, and the one
        # the client was last told (told when it can take it).
        self._spectators = 0
        self._spectators_told = 0
        # Bytes of answers to the client's read being handled.
        self._reply_bytes = 0
        # A spectator's output written since its client stopped reading;
        # None while it reads.
        self._unread = None
        self._request_bytes = bytearray()
        self._early_bytes = b''
        self._deadline = clock() + settings.handshake_timeout
        self._last_activity = None
        self._expires_at = None
        # The answer to a client's close, held until the console is free.
        self._held_answer = None

    @property
    def is_open(self):
        return self.state is State.OPEN

    # Events from the client ------------------------------------------------

    def client_data(self, data):
        if self.state is State.REQUEST:
            return self._request_data(data)
        if self.state in (State.OPEN, State.CLOSING):
            return self._websocket_data(data)
        return []

    def client_eof(self):
        if self.state in (State.OPEN, State.CLOSING):
            self._ws.receive_eof()
            return self._after_client_input()
        return []

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

    @property
    def is_spectator(self):
        return self.mode == VIEW

    def client_write_blocked(self):
        """The client's write buffer passed its limit: it reads slower
        than we write. Nothing more is read from it until it catches
        up, so that nothing it sends (pings, commands) can queue more
        answers; a writer's guest stops too."""
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
        return actions + self._client_reading() + self._spectators_note()

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

    # Events from authorization ------------------------------------------

    def watching_only(self):
        """consoleauth refused the writer's seat to a watch-only token:
        the session asks for a spectator's seat instead."""
        self.watch_only = True
        self.mode = VIEW

    def leased(self, console):
        """consoleauth gave this session the console's lease."""
        self.console = console
        self.session_id = console['session_id']
        self.lease_held = True
        if not self.is_spectator:
            self.permissions = page_commands.permissions_of(
                console.get('modes'))
        if self.state is not State.AUTHORIZING:
            return self._release()
        if self.settings.enforce_session_timeout:
            self._expires_at = self.clock() + \
                console['expires_at'] - time.time()
        return []

    def guest_connected(self, history=b''):
        """The guest's serial port answered: open the websocket."""
        if self.state is not State.AUTHORIZING:
            return [CloseGuest()]
        self.state = State.OPEN
        self.started_at = self._last_activity = self.clock()
        self._ws = websocket.ServerWebSocket(self.settings.max_frame_bytes)
        self._ws.accept_request(self.request.headers,
                                handshake.offered_subprotocols(self.request))
        # Held for hours by thousands of sessions: keep no headers.
        self.request = None
        if history:
            self._ws.send_binary(history)
        # Reading resumes before the history goes out: a history that
        # fills the client's buffer then pauses both sides after it.
        actions = [Started(), *self._client_reading(),
                   ResumeReading(Side.GUEST), *self._outbound()]
        early, self._early_bytes = self._early_bytes, b''
        if early:
            actions += self._websocket_data(early)
        return actions

    def check_passed(self):
        if self.state is not State.AUTHORIZING:
            return []
        return self._answer(handshake.response(200, 'ok'))

    def refused(self, refusal):
        actions = self._release()
        if self.state in (State.REQUEST, State.AUTHORIZING):
            actions += [Refused(refusal)] + self._answer(
                handshake.response(refusal.status, refusal.reason))
        return actions

    # Events from the guest -----------------------------------------------

    def guest_data(self, data):
        if not self.is_open:
            return []
        if self._unread is not None:
            self._unread += len(data)
            if self._unread > self.settings.spectator_buffer_bytes:
                return self.close(CloseCode.SPECTATOR_TOO_SLOW,
                                  close_codes.default_reason(
                                      CloseCode.SPECTATOR_TOO_SLOW))
        self._last_activity = self.clock()
        self.bytes_to_client += len(data)
        self._ws.send_binary(data)
        return self._outbound(len(data))

    def guest_eof(self):
        if self.is_spectator:
            # A spectator's output comes through the writer's relay, which
            # ends with the writer's session.
            return self.close(CloseCode.NORMAL, SPECTATED_WRITER_LEFT)
        return self.close(CloseCode.CONSOLE_GONE,
                          close_codes.default_reason(CloseCode.CONSOLE_GONE))

    def guest_write_blocked(self):
        # The guest reads slower than the client types or pastes.
        self._guest_blocked = True
        return self._client_reading()

    def guest_write_unblocked(self):
        self._guest_blocked = False
        return self._client_reading()

    def page_command_done(self, error=None):
        """The page's command was carried out, or not: error says why."""
        command, self._command_pending = self._command_pending, None
        if command is None or not self.is_open:
            return []
        self._ws.send_text(page_commands.error_note(error) if error
                           else page_commands.sent_note(command))
        return self._outbound()

    def spectators_changed(self, count):
        """Tell the writer's page how many watch (a text frame)."""
        if self.is_spectator:
            return []
        self._spectators = count
        return self._spectators_note()

    def _spectators_note(self):
        """The spectator count, if it changed since the client was last
        told, to a client that asks for notes and reads what it is sent;
        otherwise later, and only the latest."""
        if not self.is_open or not self._wants_notes or \
                self._client_blocked or \
                self._spectators == self._spectators_told:
            return []
        self._spectators_told = self._spectators
        self._ws.send_text(json.dumps({'spectators': self._spectators}))
        return self._outbound()

    # Orders and the clock ------------------------------------------------

    def close(self, code, reason):
        """End the session with a close code and reason the page shows.

        The console is given back at once, not when the client answers.
        """
        if self.state in (State.REQUEST, State.AUTHORIZING):
            self.state = State.CLOSED
            return self._release() + [CloseClient()]
        if self.state is not State.OPEN:
            return []
        self.state = State.CLOSING
        self.end_reason = reason
        self._deadline = self.clock() + self.settings.close_grace
        self._ws.close_with(code, reason)
        return self._outbound() + [CloseGuest(), Ended(code, reason)] + \
            self._release()

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
            if self.settings.max_session_age and now - self.started_at >= \
                    self.settings.max_session_age:
                return self.close(
                    CloseCode.SESSION_MAX_AGE,
                    close_codes.default_reason(CloseCode.SESSION_MAX_AGE))
            if self._expires_at is not None and now >= self._expires_at:
                return self.close(
                    CloseCode.TOKEN_EXPIRED,
                    close_codes.default_reason(CloseCode.TOKEN_EXPIRED))
            if self.settings.idle_timeout and now - self._last_activity >= \
                    self.settings.idle_timeout:
                return self.close(
                    CloseCode.IDLE_TIMEOUT,
                    close_codes.default_reason(CloseCode.IDLE_TIMEOUT))
        return []

    # Inside ----------------------------------------------------------------

    def _request_data(self, data):
        self._request_bytes += data
        try:
            parsed = handshake.parse_request(self._request_bytes)
            if parsed is None:
                return []
            request, consumed = parsed
            self.request = request
            self._early_bytes = bytes(self._request_bytes[consumed:])
            self._request_bytes = None
            handshake.check_path(request)
            if self.peer_host is not None:
                self.client_host, self.forwarded_scheme = \
                    self.settings.trusted_proxies.client(self.peer_host,
                                                         request.headers)
            self.mode = connect_mode(request)
            if not request.is_websocket:
                if request.headers.get(CHECK_HEADER) is None:
                    self.state = State.ANSWERED
                    return [ServePage(request), CloseClient()]
                self._check_origin(request)
                self.state = State.AUTHORIZING
                return [Authorize(request, lease=False)]
            self._check_origin(request)
            handshake.check_websocket_headers(request)
        except Refusal as refusal:
            return self.refused(refusal)
        self.state = State.AUTHORIZING
        # Nothing more is read from the client until the console is open.
        return [PauseReading(Side.CLIENT), Authorize(request, lease=True)]

    def _check_origin(self, request):
        handshake.check_origin(request, self.settings.allowed_origins,
                               self.tls, self.settings.frame_ancestors,
                               forwarded_scheme=self.forwarded_scheme)

    def _websocket_data(self, data):
        actions = []
        console_bytes = []
        self._reply_bytes = 0
        for message in self._ws.receive(data):
            if type(message) is str:
                # Text is the page's commands: what came before it goes
                # first.
                actions += self._client_input(console_bytes)
                console_bytes = []
                actions += self._page_command(message)
                if self._reply_bytes > REPLY_BYTES_PER_READ:
                    return actions + self.close(
                        CloseCode.POLICY_VIOLATION, TOO_MANY_REQUESTS)
            elif message:
                console_bytes.append(message)
        actions += self._client_input(console_bytes)
        return actions + self._after_client_input()

    def _client_input(self, messages):
        """Console bytes from the client: to the guest, or dropped."""
        if not messages or not self.is_open:
            return []
        payload_bytes = sum(map(len, messages))
        if self.is_spectator:
            self.input_dropped += payload_bytes
            return [InputDropped(payload_bytes)]
        self._last_activity = self.clock()
        self.bytes_to_guest += payload_bytes
        return [SendToGuest(messages, payload_bytes)]

    def _page_command(self, text):
        """A text message: a SysRq or NMI command to run, or an error
        note back; the session goes on either way."""
        if not self.is_open:
            return []
        told = []
        if not self._wants_notes:
            # A client that speaks text hears the notes from now on,
            # starting with who watches.
            self._wants_notes = True
            told = self._spectators_note()
        return told + self._answer_page_command(text)

    def _answer_page_command(self, text):
        try:
            try:
                # A spectator's permissions are none, whatever its token
                # allows: it may ask, and is told so.
                command = page_commands.parse(text, self.permissions)
            except page_commands.CommandRefused:
                if self.is_spectator:
                    raise page_commands.CommandRefused(
                        'Watching read-only: a spectator cannot send SysRq '
                        'or NMI')
                raise
            if command.kind == page_commands.ASK_PERMISSIONS:
                return self._reply_note(page_commands.permissions_note(
                    self.permissions, self.watch_only))
            if self._command_pending is not None:
                raise page_commands.CommandRefused(
                    '%s is still being sent: wait for its answer'
                    % self._command_pending)
        except page_commands.CommandRefused as refused:
            return self._reply_note(page_commands.error_note(str(refused)))
        self._command_pending = command
        self._last_activity = self.clock()
        return [RunPageCommand(command)]

    def _reply_note(self, text):
        """A text frame answering the client's; none to a client that
        stopped reading, whose questions must not fill our memory."""
        if self._client_blocked or self._unread is not None:
            return []
        self._ws.send_text(text)
        actions = self._outbound()
        self._reply_bytes += sum(len(chunk) for action in actions
                                 for chunk in action.chunks)
        return actions

    def _after_client_input(self):
        if self._held_answer is not None:
            return []  # closed by the client, answered by lease_released
        if self._ws.is_closed and self.is_open and self.lease_held:
            return self._client_closed()
        actions = self._outbound()
        if self._ws.is_closed:
            if self.is_open:
                # The client closed (or dropped) the websocket first.
                code = self._ws.close_code or CloseCode.ABNORMAL
                self.end_reason = 'client closed (%s)' % code
                actions += [CloseGuest(), Ended(code, self.end_reason)]
                actions += self._release()
            self.state = State.CLOSING
            actions.append(CloseClient())
        elif self._ws.close_sent and self.is_open:
            # websockify refused a frame (protocol error, too big, text).
            code = self._ws.sent_close_code
            self.state = State.CLOSING
            self.end_reason = 'protocol error (%s)' % code
            self._deadline = self.clock() + self.settings.close_grace
            actions += [CloseGuest(), Ended(code, self.end_reason)]
            actions += self._release()
        return actions

    def _client_closed(self):
        """The client closed the websocket first: its close is answered
        once consoleauth has the lease back (or after close_grace), so
        that a client reconnecting as soon as its close completes, here
        or on another proxy, finds the console free."""
        code = self._ws.close_code or CloseCode.ABNORMAL
        self.end_reason = 'client closed (%s)' % code
        self.state = State.CLOSING
        self._deadline = self.clock() + self.settings.close_grace
        self._held_answer = self._ws.take_outbound()
        self.lease_held = False
        return [CloseGuest(), Ended(code, self.end_reason),
                ReleaseLease(self.session_id, then_answer=True)]

    def lease_released(self):
        """consoleauth took back the lease of a client-closed session."""
        held, self._held_answer = self._held_answer, None
        if held is None:
            return []
        return ([SendToClient(held)] if held else []) + [CloseClient()]

    def _outbound(self, payload_bytes=0):
        chunks = self._ws.take_outbound()
        return [SendToClient(chunks, payload_bytes)] if chunks else []

    def _answer(self, raw):
        self.state = State.ANSWERED
        return [SendToClient([raw]), CloseClient()]

    def _release(self):
        if not self.lease_held:
            return []
        self.lease_held = False
        return [ReleaseLease(self.session_id)]


def connect_mode(request):
    """The mode a console URL's ?mode= asks for; a 400 for an unknown
    one, rather than a writer's session the user did not ask for."""
    values = request.query.get('mode') or [WRITE]
    if len(values) != 1 or values[0] not in MODES:
        raise Refusal(400, 'Unknown mode: use %s' % ', '.join(MODES))
    return values[0]
