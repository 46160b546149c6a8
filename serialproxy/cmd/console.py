"""serialproxy-console URL: a serial console in this terminal.

For operators and demos without a browser: puts the local terminal in raw
mode and joins it to a console URL over a websocket. Ctrl-] leaves.
``serialproxy-console --ssh SERVER`` opens it over SSH instead (see
console_ssh); ``serialproxy-console --output SERVER`` prints what it
printed, taking no seat (see console_output).

A dropped connection is resumed where it stopped. The URL asks the proxy
for stream offsets (offsets=1, or resume=N with --since N); the proxy's
note says the offset of the first console byte that follows it, so the
offset of the next byte is always that plus the console bytes received
since. When the connection drops without a close frame (a reset, a lost
network) or the proxy goes away (1001), the CLI connects again with
resume=<that offset>, up to RECONNECTS times in a row with growing
pauses, saying so on stderr: the terminal continues with nothing missing
and nothing twice. A session ended on purpose (the user, an operator, the
access switch, a take-over, an expired token: a close frame) is not
resumed, nor is one whose proxy tells no offsets. The history bytes the
note announces are the console log's: the terminal queries in them are
removed before they reach this terminal, which would otherwise answer
them to the guest's shell as typed input (they are counted all the same).
A proxy silent for --keepalive seconds is pinged; a ping unanswered as
long is a lost connection, resumed like a reset.
"""

import argparse
import collections
import json
import os
import select
import sys
import termios
import time
import tty
import urllib.parse

import websocket

from serialproxy.cmd import console_output
from serialproxy.cmd import console_ssh
from serialproxy import terminal_queries

PROG = 'serialproxy-console'
ESCAPE = b'\x1d'  # Ctrl-], as telnet
# Reconnections in a row, after a drop, before giving up; a resumed
# session that printed something or lasted STABLE_SECONDS starts the
# count again.
RECONNECTS = 6
STABLE_SECONDS = 30.0
# Seconds before the first reconnection; each next one waits twice as
# long, up to BACKOFF_MAX.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
# Seconds a connection (TCP, TLS and the upgrade) may take.
CONNECT_TIMEOUT = 20.0
# Seconds of silence from the proxy after which a ping is sent, and
# within which it must be answered: keeps a NAT or balancer from timing
# out a quiet console, and finds a connection that died without a reset
# (a lost network) so that it is resumed. Pings are no console activity:
# the proxy's idle_timeout still counts.
KEEPALIVE = 30.0
# Close codes after which the session is resumed: the proxy went away
# (shutting down; another behind the same address takes the session on),
# and what is reported for a connection lost without a close frame.
# Every other close was meant: the user's, an operator's, the access
# switch, a take-over, the token's expiry.
RESUMED_CLOSES = (1001, 1006)
# Refusals of a reconnection worth another try: the console is still
# held by the session that dropped until the proxy notices and gives its
# lease back (409), the proxy is busy or a backend unreachable.
RETRIED_REFUSALS = (409, 429, 502, 503, 504)
# What the user types while the connection is down is sent once it is
# back, up to this; more is dropped, and the user told.
HELD_INPUT_BYTES = 4096

Ending = collections.namedtuple('Ending', 'text resumable')


class Refused(Exception):
    """The proxy answered the upgrade with an HTTP refusal."""

    def __init__(self, status, reason):
        super().__init__('%s %s' % (status, reason))
        self.status = status


class StreamPosition:
    """Where the console bytes received stand in the console's stream,
    from the proxy's stream notes and the bytes counted since; and which
    of them are replayed history, whose terminal queries are removed.

    offset is where a new connection resumes: the offset asked for until
    a note tells the proxy's, then that plus every console byte received.
    None before any: the first connection asks for offsets only. known
    turns False for good when the proxy cannot tell offsets (its note
    says null, or an older proxy sends console bytes without a note).
    """

    def __init__(self, since=None):
        self.offset = since
        self.known = True
        self._noted = False
        self._history_left = 0
        self._remover = None

    def query(self):
        """The URL query items that ask for this position."""
        if self.offset is None:
            return [('offsets', '1')]
        return [('resume', str(self.offset))]

    def connected(self):
        """A new connection: its note is awaited."""
        self._noted = False
        self._history_left = 0
        self._remover = None

    def text(self, payload):
        """A text message from the proxy; what to tell the user of it."""
        if self._noted or not self.known:
            return []
        try:
            stream = json.loads(payload)['stream']
        except (ValueError, TypeError, KeyError):
            return []  # another of the proxy's notes
        self._noted = True
        offset = stream.get('offset') if isinstance(stream, dict) else None
        if not isinstance(offset, int) or isinstance(offset, bool) or \
                offset < 0:
            self.known = False
            return []
        told = []
        requested = stream.get('requested')
        if isinstance(requested, int) and offset > requested:
            told.append('bytes %d to %d are no longer kept: resuming at %d'
                        % (requested, offset, offset))
        elif isinstance(requested, int) and offset < requested:
            told.append('the console log began again (the server '
                        'restarted): resuming at %d' % offset)
        self.offset = offset
        history = stream.get('history')
        if isinstance(history, int) and history > 0:
            self._history_left = history
            self._remover = terminal_queries.QueryRemover()
        return told

    def console_bytes(self, data):
        """Console bytes received; what of them to write to the terminal."""
        if not self._noted:
            # Console bytes before any note: a proxy that tells none.
            self.known = False
        if not self.known:
            return data
        self.offset += len(data)
        if not self._history_left:
            return data
        history, live = data[:self._history_left], data[self._history_left:]
        self._history_left -= len(history)
        shown = self._remover.feed(history)
        if not self._history_left:
            shown += self._remover.end()
        return shown + live


def resume_url(url, position):
    """url asking for position, with any resume or offsets it had
    replaced."""
    parts = urllib.parse.urlsplit(url)
    query = [(name, value) for name, value in
             urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if name not in ('resume', 'offsets')]
    return urllib.parse.urlunsplit(parts._replace(
        query=urllib.parse.urlencode(query + position.query())))


def connect(url):
    """A websocket to url, or Refused, OSError, WebSocketException."""
    try:
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=CONNECT_TIMEOUT)
    except websocket.WebSocketBadStatusException as exc:
        raise Refused(exc.status_code, exc.resp_body.decode(
            'utf-8', 'replace').strip() if exc.resp_body else '')
    ws.settimeout(None)
    return ws


def _readable(ws, stdin_fd, timeout=None):
    sock = ws.sock
    # TLS may hold a decrypted frame that select cannot see.
    if getattr(sock, 'pending', None) and sock.pending():
        return [sock]
    readable, _, _ = select.select([sock, stdin_fd], [], [], timeout)
    return readable


class Keepalive:
    """When to ping a silent proxy, and when its silence means the
    connection is gone. seconds: None or 0 for never."""

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds or None
        self.clock = clock
        self.heard_at = clock()
        self.pinged_at = None

    def heard(self):
        self.heard_at, self.pinged_at = self.clock(), None

    def timeout(self):
        """Seconds the next wait may take (None: no limit)."""
        if self.seconds is None:
            return None
        since = self.pinged_at if self.pinged_at is not None \
            else self.heard_at
        return max(0.0, since + self.seconds - self.clock())

    def due(self, ws):
        """Ping when the proxy has been silent long enough; True when a
        ping went unanswered as long: the connection is lost."""
        if self.seconds is None or self.timeout() > 0:
            return False
        if self.pinged_at is not None:
            return True
        ws.ping(b'serialproxy-console')
        self.pinged_at = self.clock()
        return False


def _pump(ws, stdin_fd, stdout, position=None, typed=None,
          keepalive=None):
    """Relay until the session ends: its Ending, which says whether it
    may be resumed (the connection dropped) or not. typed: input held
    for the connection (a bytearray), sent first; what could not be sent
    is left in it. keepalive: seconds (see KEEPALIVE), None for none."""
    position = position or StreamPosition()
    typed = bytearray() if typed is None else typed
    alive = Keepalive(keepalive)
    # The type of the message being received (text: the proxy's notes,
    # not console bytes), and a text message's parts so far.
    text = False
    text_parts = []
    try:
        if typed:
            ws.send_binary(bytes(typed))
            typed.clear()
        while True:
            readable = _readable(ws, stdin_fd, alive.timeout())
            if ws.sock not in readable and alive.due(ws):
                return Ending('connection lost (no answer to a keepalive '
                              'ping in %g s)' % alive.seconds, True)
            if stdin_fd in readable:
                data = os.read(stdin_fd, 4096)
                if not data or ESCAPE in data:
                    return Ending('left the console', False)
                # Kept until sent: a key typed as the connection drops
                # goes with the next.
                typed += data
                ws.send_binary(data)
                typed.clear()
            if ws.sock not in readable:
                continue
            frame = ws.recv_frame()
            alive.heard()
            opcode = frame.opcode
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = _close_status(frame.data)
                return Ending('closed by the proxy: %s %s' % (code, reason),
                              code in RESUMED_CLOSES)
            if opcode == websocket.ABNF.OPCODE_PING:
                ws.pong(frame.data)
                continue
            if opcode in (websocket.ABNF.OPCODE_BINARY,
                          websocket.ABNF.OPCODE_TEXT):
                text = opcode == websocket.ABNF.OPCODE_TEXT
                text_parts = []
            elif opcode != websocket.ABNF.OPCODE_CONT:
                continue
            if text:
                text_parts.append(frame.data)
                if frame.fin:
                    for note in position.text(b''.join(text_parts)):
                        say(note)
                continue
            shown = position.console_bytes(frame.data)
            if shown and not _show(stdout, shown):
                return Ending('the terminal went away', False)
    except websocket.WebSocketConnectionClosedException:
        return Ending('connection lost (closed without a close frame)',
                      True)
    except OSError as exc:
        return Ending('connection lost (%s)' % (
            exc.strerror or type(exc).__name__), True)
    except websocket.WebSocketException as exc:
        # Frames the client cannot read: not a drop to resume.
        return Ending('websocket error: %s' % exc, False)


def _show(stdout, data):
    """Write console bytes to the terminal; False when it is gone (its
    errors are no dropped connection to resume)."""
    try:
        stdout.write(data)
        stdout.flush()
    except OSError:
        return False
    return True


def _close_status(payload):
    if len(payload) < 2:
        return '', ''
    return (int.from_bytes(payload[:2], 'big'),
            payload[2:].decode('utf-8', 'replace'))


def say(text):
    """A line for the user on stderr, in a raw terminal too."""
    sys.stderr.write('\r\n%s: %s\r\n' % (PROG, text))
    sys.stderr.flush()


def _wait_holding_input(stdin_fd, seconds, held, clock=time.monotonic):
    """Wait seconds, keeping what the user types in held; False when
    they left (Ctrl-] or the end of their input)."""
    deadline = clock() + seconds
    while True:
        left = deadline - clock()
        if left <= 0:
            return True
        readable, _, _ = select.select([stdin_fd], [], [], left)
        if not readable:
            return True
        data = os.read(stdin_fd, 4096)
        if not data or ESCAPE in data:
            return False
        room = HELD_INPUT_BYTES - len(held)
        if len(data) > room:
            say('the connection is down: %d typed bytes dropped'
                % (len(data) - room))
        held += data[:max(0, room)]


def run(url, stdin_fd, stdout, since=None, reconnects=RECONNECTS,
        connect=connect, clock=time.monotonic, keepalive=KEEPALIVE):
    """The console session of url, resumed after drops; the exit status:
    0 when it ended (the user left, the proxy closed it), 1 when it was
    refused, could not be reached, or was lost for good."""
    position = StreamPosition(since)
    try:
        ws = connect(resume_url(url, position))
    except Refused as exc:
        say('refused: %s' % exc)
        return 1
    except (OSError, websocket.WebSocketException) as exc:
        say('cannot connect: %s' % exc)
        return 1
    say('connected. Ctrl-] leaves.')
    attempts = 0
    typed = bytearray()
    while True:
        position.connected()
        opened_at, offset_at_open = clock(), position.offset
        try:
            ending = _pump(ws, stdin_fd, stdout, position, typed,
                           keepalive)
        finally:
            _close_quietly(ws)
        if not ending.resumable:
            say(ending.text)
            return 0
        if not position.known:
            say('%s; not resumed: the proxy tells no stream offsets'
                % ending.text)
            return 1
        if position.offset != offset_at_open or \
                clock() - opened_at >= STABLE_SECONDS:
            attempts = 0
        why = ending.text
        while True:
            attempts += 1
            if attempts > reconnects:
                say('%s; gave up after %d reconnections%s'
                    % (why, reconnects, _since_hint(position)))
                return 1
            pause = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempts - 1))
            say('%s; reconnecting in %.1f s to resume at %s (%d of %d)'
                % (why, pause, _offset_text(position), attempts,
                   reconnects))
            if not _wait_holding_input(stdin_fd, pause, typed, clock):
                say('left the console')
                return 0
            try:
                ws = connect(resume_url(url, position))
                break
            except Refused as exc:
                if exc.status not in RETRIED_REFUSALS:
                    say('refused: %s%s' % (exc, _since_hint(position)))
                    return 1
                why = 'refused: %s' % exc
            except (OSError, websocket.WebSocketException) as exc:
                why = 'cannot connect: %s' % exc
        say('reconnected: resuming at %s' % _offset_text(position))


def _since_hint(position):
    if position.offset is None:
        return ''
    return ('. "%s --since %d URL", with a new URL, goes on from here'
            % (PROG, position.offset))


def _offset_text(position):
    if position.offset is None:
        return 'the start (nothing received yet)'
    return 'offset %d' % position.offset


def _close_quietly(ws):
    try:
        ws.close(timeout=1)
    except (OSError, websocket.WebSocketException):
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description='A serial console in this terminal, over '
                               'the websocket of a console URL; Ctrl-] '
                               'leaves. A dropped connection is resumed '
                               'where it stopped.',
        epilog='Also: %s --ssh SERVER [--help] (over SSH), %s --output '
               'SERVER [--follow] [--since N] [--help] (what the console '
               'printed, through the API)' % (PROG, PROG))
    parser.add_argument('url', help='the console URL the API gave '
                                    '(ws:// or wss://)')
    parser.add_argument('--since', type=int, metavar='N',
                        help='start at byte offset N since the server '
                             'booted (an offset printed by an earlier '
                             'session or by --output), with everything '
                             'printed since, then live output')
    parser.add_argument('--reconnects', type=int, default=RECONNECTS,
                        metavar='N',
                        help='reconnections in a row after a dropped '
                             'connection before giving up (default %d; '
                             '0: none)' % RECONNECTS)
    parser.add_argument('--keepalive', type=float, default=KEEPALIVE,
                        metavar='SECONDS',
                        help='ping the proxy after this long without a '
                             'word from it, and take the connection as '
                             'lost (and resume it) when the ping is not '
                             'answered as long (default %g; 0: never)'
                             % KEEPALIVE)
    args = parser.parse_args(argv)
    if args.keepalive < 0:
        parser.error('--keepalive must be 0 or more')
    if args.since is not None and args.since < 0:
        parser.error('--since must be 0 or more')
    if args.reconnects < 0:
        parser.error('--reconnects must be 0 or more')
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(args.url).query)
    if 'resume' in query:
        if args.since is not None:
            parser.error('the URL has resume= already: give --since or '
                         'resume=, not both')
        try:
            args.since = int(query['resume'][0])
        except ValueError:
            parser.error('the URL\'s resume= is not a whole number')
    return args


def main(argv=None):
    argv = sys.argv if argv is None else argv
    if len(argv) > 1 and argv[1] == '--ssh':
        return console_ssh.main(argv[2:])
    if len(argv) > 1 and argv[1] == '--output':
        return console_output.main(argv[2:])
    args = parse_args(argv[1:])
    stdin_fd = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin_fd) if os.isatty(stdin_fd) else None
    try:
        if saved is not None:
            tty.setraw(stdin_fd)
        return run(args.url, stdin_fd, sys.stdout.buffer, since=args.since,
                   reconnects=args.reconnects, keepalive=args.keepalive)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)


if __name__ == '__main__':
    sys.exit(main())
