"""Where a resumed console stream joins the kept history to live output.

A client that asks (``resume=N`` or ``offsets=1`` on the console URL, or
an SSH user name's ``resume=N``) is sent the guest's console stream from
a byte offset: first history read from the console log (the compute
agent's get_console_history), then live output from the guest's TCP
chardev. QEMU writes each byte to the socket and then to the log, so the
log lags the socket a little, and the two must be joined with no gap and
no repeat (RESUME-PROTOCOL: "The seam"):

1. history up to ``tail_start`` is read before the guest is connected,
   so the connect point C is at or past it;
2. live bytes L = log[C:] are held, not sent, from the connect on;
3. the log from ``tail_start`` is read again after connecting: the tail
   T = log[tail_start:E];
4. C = tail_start + k for the smallest k such that L begins with T[k:]
   (the longest overlap of T's end with L's beginning);
5. the client gets history + T[:k], then L, then live output.

The session opens (the note, the history) as soon as the history is read
and the guest connected: what is still to decide comes after it, so a
client waits for no more than the history read and the connect. The
note's ``history`` counts the bytes read before the connect; T[:k] counts
as live output (it was printed while the client connected).

Only live bytes place the seam: QEMU accepts a connection when it is
done with the last one, which may be well after the proxy's connect
returned, and what the guest prints until then reaches the log only.
Without live bytes a tail that stopped growing is sent all the same and
the seam moves to its end; an idle guest's seam waits for its next
output. Had the socket begun inside that tail, its bytes come later
(the proxy may not be reading the guest while the client takes the
history): live output is matched against the end of what was sent too
(SENT_CONTEXT_BYTES), and none of it is sent twice.

While the guest prints, an overlap is only trusted when it is
MIN_OVERLAP bytes long: a short one (a newline, a digit) matches by
chance, and the log may not have reached the connect point yet (QEMU
may even accept the connection later than the proxy's connect returned),
so the decision waits until the log holds MIN_OVERLAP bytes of what the
socket gave. A log that stopped growing (final) has not always caught
up: virtlogd writes it from a pipe, and a loaded host holds it back for
hundreds of milliseconds, quiet all that while (joining there skipped
the lines printed while the client was away). So a short overlap is
only taken once the log ends with every byte the socket gave: the
socket then began exactly that far from the log's end, whatever the
stream. A log that never gets there fails the seam (console_layer.py's
SEAM_LOG_WAIT) and the client is told to resume again.

The residual ambiguity: a longer overlap than the true one is taken when
the stream repeats itself across the seam (a guest printing one pattern
over and over, period shorter than the tail), which sends bytes once too
few. A stream without a repeat of MIN_OVERLAP bytes at a distance
shorter than the tail (any log with line numbers or timestamps, ``seq``)
joins exactly.

Everything here is pure: no I/O, no clock; the layers (console_layer.py)
read the log and hold the socket's output, and the core
(console_core.py) sends what each step lets go.
"""

import dataclasses
import json
import typing

from serialproxy.proxy.refusals import Refusal

# Query parameters of the console URL (RESUME-PROTOCOL).
RESUME = 'resume'
OFFSETS = 'offsets'
# Longest decimal offset taken (a stream of 10**20 bytes is not coming).
MAX_DIGITS = 20
# An overlap of the tail and live output this long is trusted at once;
# a shorter one only once the log stopped growing.
MIN_OVERLAP = 64
# What is kept of a tail sent before any live byte came (an idle seam
# moves on): the guest's socket may still give it, read late (the
# guest's side paused while the client takes the history), and live
# output is matched against it so as not to send it twice.
SENT_CONTEXT_BYTES = 16 * 1024
# Bytes from the log's end read to find its last replay_lines lines
# (the compute agent's console_output_max_bytes default).
REPLAY_READ_BYTES = 100 * 1024


@dataclasses.dataclass(frozen=True)
class StreamRequest:
    """What a client asked of the stream: resume at an offset (None:
    offsets=1 alone, the recent lines), and to be told offsets."""
    resume: typing.Optional[int] = None


@dataclasses.dataclass(frozen=True)
class StreamStart:
    """Where the bytes a client is sent begin (the stream note).

    offset None: this session cannot tell offsets (no console log, an
    older compute agent, a port other than 0).
    """
    offset: typing.Optional[int]
    requested: typing.Optional[int] = None
    first_available: typing.Optional[int] = None
    history: typing.Optional[int] = None

    def note(self):
        """The websocket text frame that tells the client."""
        return json.dumps({'stream': dataclasses.asdict(self)})


def _offset(values, name):
    if len(values) != 1:
        raise Refusal(400, '%s may be given once' % name)
    value = values[0]
    if not value.isdigit() or not value.isascii() or \
            len(value) > MAX_DIGITS:
        raise Refusal(400, '%s must be a byte offset: a whole number, 0 '
                           'or more' % name)
    return int(value)


def stream_request(query):
    """The StreamRequest a console URL's query asks for, None when it
    asks nothing; Refusal(400) for a value that is not one.

    query: parse_qs's dict (values are lists; blank values are dropped
    by parse_qs, so ``resume=`` is not a request).
    """
    resume = query.get(RESUME)
    offsets = query.get(OFFSETS)
    if resume is None and offsets is None:
        return None
    if offsets is not None and (len(offsets) != 1 or offsets[0] != '1'):
        raise Refusal(400, 'offsets takes one value: 1')
    if resume is None:
        return StreamRequest()
    return StreamRequest(resume=_offset(resume, RESUME))


def last_lines_start(data, lines, cut):
    """Where the last `lines` lines of data begin, as the replay of
    recent output counts them; cut: data starts inside the log (not at
    its first byte), so its first line may be a part of one and is not
    counted as one."""
    if lines <= 0:
        return len(data)
    start = 0
    if cut:
        newline = data.find(b'\n')
        start = len(data) if newline < 0 else newline + 1
    ends = data[start:].splitlines(keepends=True)
    return len(data) - sum(len(line) for line in ends[-lines:])


def _overlaps(tail, live, k):
    """Whether live and tail[k:] agree as far as both go."""
    size = min(len(tail) - k, len(live))
    return memoryview(tail)[k:k + size] == memoryview(live)[:size]


def join_point(tail, live, final=False):
    """k: live output begins at tail[k:] (the client is sent tail[:k]
    and then live); None while it cannot be told yet.

    tail: the log from where what was sent ends, read after the guest
    was connected; live: every byte the guest's socket gave since the
    connect, at least one. final: the log stopped growing; if it ends
    with live, the guest went quiet and the join is exact, else the log
    is behind the socket and is waited for.
    """
    probe = bytes(live[:MIN_OVERLAP])
    k = tail.find(probe)
    while k >= 0:
        if _overlaps(tail, live, k):
            break
        k = tail.find(probe, k + 1)
    if k < 0:
        # No overlap of MIN_OVERLAP bytes: a shorter one at the end.
        k = next((j for j in range(max(0, len(tail) - len(probe) + 1),
                                   len(tail) + 1)
                  if _overlaps(tail, live, j)), len(tail))
    overlap = len(tail) - k
    if len(live) >= overlap >= MIN_OVERLAP:
        return k
    if final and tail.endswith(live):
        # The log stopped growing and ends with every byte the socket
        # gave: the socket began exactly that far from its end.
        return len(tail) - len(live)
    # A short overlap (or none), or live still inside the tail: the log
    # has not caught up with the socket yet (virtlogd writes it a pipe
    # away, and a loaded host may hold it back for a while, quiet or
    # not), more live output is coming, or the match is chance. Wait:
    # the log gets every byte the socket gave, sooner or later.
    return None


class Seam:
    """One session's seam, from the history read before the connect
    until live output joins.

    first: the history read before connecting (get_console_history's
    answer with its data as bytes, see control_plane.console_history);
    request: the client's StreamRequest. The session opens with
    history; then each step() gives what to send next, until joined.
    """

    def __init__(self, request, first, replay_lines=0):
        self.request = request
        data = first['data']
        start = first['start']
        if request.resume is None:
            # offsets=1: the lines the replay would show, raw.
            cut = last_lines_start(data, replay_lines,
                                   start > first['first_available'])
            data, start = data[cut:], start + cut
        self.history = data
        self.start = start
        self.first_available = first['first_available']
        # Where the tail is read from: the end of what was sent.
        self.tail_start = first['next']
        # None until the log was read after the connect.
        self.tail = None
        # The end of the tails sent without live bytes (SENT_CONTEXT_BYTES).
        self.sent_context = b''
        self.live = bytearray()
        self.joined = False
        # How it was joined, for the log: (tail bytes, live bytes, k,
        # final).
        self.decision = None

    def note(self):
        """Where the stream sent begins (seam.StreamStart)."""
        return StreamStart(offset=self.start, requested=self.request.resume,
                           first_available=self.first_available,
                           history=len(self.history))

    @property
    def idle(self):
        """Nothing to decide until the guest prints: no live byte, and
        the tail read so far sent."""
        return not self.live and self.tail == b''

    def tail_read(self, page):
        """A read of the log from tail_start (data as bytes); ValueError
        when the log no longer reaches it (it began again: a reboot)."""
        if page['start'] != self.tail_start:
            raise ValueError('the console log changed under the seam')
        if self.tail is None or len(page['data']) >= len(self.tail):
            self.tail = page['data']

    def live_data(self, data):
        self.live += data

    def step(self, final=False):
        """The bytes to send the client next (b'' for none yet); joined
        is set once they end with the live bytes held, after which live
        output flows as it comes.

        Without live bytes, nothing can tell where the guest's socket
        begins: QEMU may accept the connection only later (while it lets
        the last one go). Once the log stopped growing (final), the tail
        is sent all the same, and the seam moves to its end: had the
        socket begun inside it, its bytes would have come.
        """
        if self.tail is None:
            return b''
        if not self.live:
            if not final or not self.tail:
                return b''
            sent, self.tail = self.tail, b''
            self.tail_start += len(sent)
            self.sent_context = (self.sent_context +
                                 sent)[-SENT_CONTEXT_BYTES:]
            return sent
        # Live output may begin inside what was sent already: matched
        # against it too, and what the client has is not sent again.
        context = self.sent_context
        known = context + self.tail
        k = join_point(known, self.live, final)
        if k is None:
            return b''
        self.decision = (len(known), len(self.live), k, final)
        sent = (known[:k] + bytes(self.live))[len(context):]
        self.live, self.joined = None, True
        self.sent_context = b''
        return sent
