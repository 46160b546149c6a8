"""The websocket front end of a console session, with no I/O in it.

A ConsoleSession is fed what happens (bytes from the client, the result
of authorization, bytes and EOF from the guest, a disconnect order, the
clock) and answers with the actions the event loop layer must carry out.
The console's rules (states, lease, time limits, back-pressure,
spectators) are console_core.ConsoleCore's; this front end owns what is
websocket about it: the HTTP request, the handshake, the codec and the
page's commands. It never touches a socket, so every rule here is
tested by feeding it bytes.
"""

import dataclasses
import json
import time
import typing

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import console_core
# The core's names, as the event loop layer and the tests know them.
from serialproxy.proxy.console_core import (  # noqa: F401
    CloseClient,  # noqa: H301
    CloseGuest,
    Ended,
    HeldOutput,
    SeamJoined,
    InputDropped,
    MODES,
    PauseReading,
    Refused,
    ReleaseLease,
    ResumeReading,
    RunPageCommand,
    SendToClient,
    SendToGuest,
    Side,
    SPECTATED_WRITER_LEFT,
    Started,
    State,
    TAKE_OVER,
    VIEW,
    WRITE)
from serialproxy.proxy import forwarded
from serialproxy.proxy import handshake
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy.page import log_download
from serialproxy.proxy.page.frame_ancestors import FrameAncestors
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy import seam
from serialproxy.proxy import websocket

# Header of a plain GET that asks "would this token open now?"; the page
# sends it after a failed upgrade, because browsers hide the HTTP status
# of a refused websocket handshake.
CHECK_HEADER = 'X-Serialproxy-Check'

# Answers (text notes; pongs are one per read, see websocket.py) that one
# read from a client may ask for; past it the client is closed with 1008.
# With the client's reading paused while its write buffer is full, this
# bounds what a client's own frames make the proxy queue toward it.
REPLY_BYTES_PER_READ = 16 * 1024
TOO_MANY_REQUESTS = ('Too many requests at once: at most %d bytes of '
                     'answers per read' % REPLY_BYTES_PER_READ)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The session's rules, from [console] and [consoleauth]."""
    allowed_origins: typing.Tuple[str, ...] = ()
    frame_ancestors: FrameAncestors = FrameAncestors()
    # Peers whose X-Forwarded-For and X-Forwarded-Proto are believed.
    trusted_proxies: forwarded.TrustedProxies = forwarded.TrustedProxies()
    max_frame_bytes: int = 1024 * 1024
    handshake_timeout: float = 10.0
    # How long a client gets to answer our close frame (an SSH client,
    # for its exit status), and a client-ended session's release.
    close_grace: float = 2.0
    idle_timeout: float = 0
    enforce_session_timeout: bool = False
    # Longest a session may stay open, whoever uses it; 0: no limit.
    max_session_age: float = 0
    # Output that may wait for a spectator whose client stopped reading,
    # beyond the transport's own write buffer, before it is closed.
    spectator_buffer_bytes: int = 256 * 1024


# Actions of the websocket front end (the core's are above) ---------------

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
class DownloadLog:
    """Check the token as a check is checked (Authorize without lease),
    then answer the console's kept history (page/log_download.py).

    The layer answers with download_started() before its first byte,
    or refused().
    """
    request: handshake.Request


# The session -----------------------------------------------------------------

class ConsoleSession(console_core.ConsoleCore):
    """One console connection over a websocket (or its page, or a
    check)."""

    def __init__(self, settings, tls=False, clock=time.monotonic,
                 peer_host=None, wall_clock=time.time):
        super().__init__(settings, clock=clock, wall_clock=wall_clock)
        self.tls = tls
        self.peer_host = peer_host
        # Who the client is: the peer, or whom a trusted proxy names once
        # the request is read (forwarded.py); and the scheme it used, when
        # a trusted proxy says.
        self.client_host = peer_host
        self.forwarded_scheme = None
        self.request = None
        self._ws = None
        # The page's command being carried out: one at a time, so a page
        # cannot queue compute calls.
        self._command_pending = None
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
        self._request_bytes = bytearray()
        self._early_bytes = b''

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
        if self.state is State.REQUEST and self._request_bytes:
            # Half a request can never be whole now: say so, at once.
            return self.refused(Refusal(
                400, 'Request incomplete: the client ended it before the '
                     'empty line that ends its headers'))
        return []

    # Events from authorization ------------------------------------------

    def check_passed(self):
        if self.state is not State.AUTHORIZING:
            return []
        return self._answer(handshake.response(200, 'ok'))

    def download_started(self):
        """The Download log's answer begins: whether it may (the clock
        may have refused the request meanwhile). The layer streams it and
        closes the client when done."""
        if self.state is not State.AUTHORIZING:
            return False
        self.state = State.ANSWERED
        return True

    # Events from the layer -----------------------------------------------

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

    # The core's words, in websocket ----------------------------------------

    def _opened(self, history, stream=None):
        self._ws = websocket.ServerWebSocket(self.settings.max_frame_bytes)
        self._ws.accept_request(self.request.headers,
                                handshake.offered_subprotocols(self.request))
        # Held for hours by thousands of sessions: keep no headers.
        self.request = None
        if stream is not None:
            # The stream note, which a client that asked for offsets gets
            # before any console byte (RESUME-PROTOCOL).
            self._ws.send_text(stream.note())
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

    def _output(self, data):
        self._ws.send_binary(data)
        return self._outbound(len(data))

    def _close_client(self, code, reason):
        self._ws.close_with(code, reason)
        return self._outbound()

    def _refusal_answer(self, refusal):
        return self._answer(handshake.response(refusal.status,
                                               refusal.reason))

    def _client_caught_up(self):
        return self._spectators_note()

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
            self.stream = seam.stream_request(request.query)
            if not request.is_websocket:
                if log_download.wants_download(request):
                    log_download.check_download(request)
                    self._check_origin(request)
                    self.state = State.AUTHORIZING
                    return [DownloadLog(request)]
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
            # The client closed the websocket first: our close answers it
            # once the console is free.
            code = self._ws.close_code or CloseCode.ABNORMAL
            held = self._ws.take_outbound()
            return self._client_closed(
                code, 'client closed (%s)' % code,
                ([SendToClient(held)] if held else []) + [CloseClient()])
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

    def _outbound(self, payload_bytes=0):
        chunks = self._ws.take_outbound()
        return [SendToClient(chunks, payload_bytes)] if chunks else []

    def _answer(self, raw):
        self.state = State.ANSWERED
        return [SendToClient([raw]), CloseClient()]


def connect_mode(request):
    """The mode a console URL's ?mode= asks for; a 400 for an unknown
    one, rather than a writer's session the user did not ask for."""
    values = request.query.get('mode') or [WRITE]
    if len(values) != 1 or values[0] not in MODES:
        raise Refusal(400, 'Unknown mode: use %s' % ', '.join(MODES))
    return values[0]
