"""What every console connection's event loop layer does alike.

A websocket connection (connections.ClientConnection) and an SSH console
channel (ssh_server.ConsoleSSHSession) each feed their front end (both
on console_core) and carry out its actions. What they do the same way,
whatever the client speaks, is here: copying the guest's output to the
recorder, the writer's spectators and the session; counting spectators;
taking orders from the proxy (close, tick); giving a lease back and
answering the client's end once it is back.

A class using it has services (services.ConsoleServices), session
(the front end), recorder, watchers (None until the first spectator)
and carry_out(actions).
"""

import asyncio

from oslo_log import log as logging

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import relay
from serialproxy.proxy import seam

LOG = logging.getLogger(__name__)

# How long a resuming client's offset may wait for the log to get there,
# how often the log is read again while the seam is decided (seam.py),
# and how many reads that find it unchanged say that the guest went
# quiet: everything it printed is then in the log and came through its
# socket, and the seam is decided with what there is.
SEAM_GRACE = 0.5
SEAM_RETRY = 0.01
SEAM_QUIET_READS = 2
# A log that has stopped short of the live output held (virtlogd behind
# on a loaded host, or stopped) is read less and less often, down to
# this, so a waiting seam costs the compute agent a few reads a second.
SEAM_RETRY_MAX = 0.2
# How long live output may be held for the log to reach it: a log that
# does not (virtlogd stopped) fails the seam, and the client resumes
# again rather than get a stream with a hole in it.
SEAM_LOG_WAIT = 5.0
# How often a seam waiting for an idle guest's output checks that its
# session is still open.
SEAM_IDLE_CHECK = 1.0


class SeamHold:
    """What a guest connection (or a spectator's relay) answers to while
    the seam of a resumed stream is joined: the guest's output goes to
    the seam; everything else to the layer."""

    def __init__(self, layer):
        self.layer = layer
        # Set when the guest printed, for a seam waiting on an idle one.
        self.arrived = asyncio.Event()

    def guest_data(self, data):
        self.arrived.set()
        self.layer.carry_out(self.layer.session.seam_live(data))

    def __getattr__(self, name):
        return getattr(self.layer, name)


class ConsoleLayer:

    # Reaching the guest ----------------------------------------------------

    async def connect_guest(self, console, address, factory):
        """The guest's connection (a spectator's: its writer's relay,
        told the key)."""
        _, guest = await asyncio.get_running_loop().create_connection(
            factory, *address)
        if self.session.is_spectator:
            guest.transport.write(relay.preamble(console.writer.relay_key))
        return guest

    async def open_stream(self, console, address, factory):
        """Open the session of a client that asked for the stream by
        offset (session.stream): the history from the offset, joined to
        live output at the seam (seam.py); without offsets, as for any
        client, when the console's log cannot be read. Raises what
        refuses the session."""
        session = self.session
        request = session.stream
        start = request.resume
        if start is None:
            start = -seam.REPLAY_READ_BYTES
        loop = asyncio.get_running_loop()
        try:
            first = await self.services.console_history(console, start)
            # A client resumes at what the guest's socket gave it, which
            # the log may not hold yet (it lags the socket): wait for it,
            # a little. An offset still past the end is the end (a guest
            # whose log began again since).
            deadline = loop.time() + SEAM_GRACE
            while request.resume is not None and \
                    first['next'] < request.resume and \
                    loop.time() < deadline:
                await asyncio.sleep(SEAM_RETRY)
                first = await self.services.console_history(console, start)
        except Exception as exc:
            # No log, another port than 0, an older agent: say so.
            LOG.debug('Console session %s cannot tell offsets: %s',
                      session.session_id, type(exc).__name__)
            history, self.guest = await asyncio.gather(
                self.services.recent_output(console),
                self.connect_guest(console, address, factory))
            self.carry_out(session.stream_unknown(history))
            return
        # The connect comes after the history read: the connect point is
        # at or past where it ends.
        self.guest = await self.connect_guest(console, address, factory)
        # The guest's output goes to the seam, not the client, until it
        # joins: its connection answers to the hold meanwhile, which
        # costs the relaying of an open session nothing.
        hold = self.guest.client = SeamHold(self)
        self.carry_out(session.seam_begun(
            first, self.services.settings.replay_lines))
        if session.at_seam:
            await self._join_seam(console, hold)

    async def _join_seam(self, console, hold):
        """Read the log's tail until live output joins it (seam.py)."""
        session = self.session
        quiet, end = 0, None
        loop = asyncio.get_running_loop()
        holding_since = None
        pause = SEAM_RETRY
        try:
            while session.at_seam:
                asked = session.seam.tail_start
                tail = await self.services.console_history(console, asked)
                quiet = quiet + 1 if tail['next'] == end else 0
                end = tail['next']
                self.carry_out(session.seam_tail(
                    tail, asked, final=quiet >= SEAM_QUIET_READS))
                if session.seam_idle:
                    # Nothing to join until the guest prints.
                    hold.arrived.clear()
                    try:
                        await asyncio.wait_for(hold.arrived.wait(),
                                               SEAM_IDLE_CHECK)
                    except asyncio.TimeoutError:
                        pass
                    quiet, end = 0, None
                elif session.at_seam:
                    if not session.seam_holds_live:
                        holding_since = None
                    elif holding_since is None:
                        holding_since = loop.time()
                    elif loop.time() - holding_since > SEAM_LOG_WAIT:
                        LOG.warning('Console session %s: its log did not '
                                    'reach live output in %.0f s; the '
                                    'client is told to resume again',
                                    session.session_id, SEAM_LOG_WAIT)
                        self.carry_out(session.seam_failed())
                        return
                    pause = (min(pause * 2, SEAM_RETRY_MAX)
                             if quiet and session.seam_holds_live
                             else SEAM_RETRY)
                    await asyncio.sleep(pause)
        except Exception as exc:
            LOG.warning('Console session %s: its log cannot be joined to '
                        'live output (%s)', session.session_id,
                        type(exc).__name__)
            self.carry_out(session.seam_failed())
            return
        decided = session.seam
        if decided is not None and decided.decision is not None:
            LOG.debug('Console session %s resumed at %d (asked %s): '
                      'tail from %d, %d bytes, live %d held, joined at %d%s',
                      session.session_id, decided.start,
                      decided.request.resume, decided.tail_start,
                      *decided.decision[:3],
                      ' once the log stopped growing'
                      if decided.decision[3] else '')

    def seam_joined(self):
        """Live output joined: the guest's output comes here again."""
        if self.guest is not None:
            self.guest.client = self

    # Output ------------------------------------------------------------------

    def guest_data(self, data):
        if self.recorder is not None and self.session.is_open:
            self.recorder.output(data)
        if self.watchers:
            limit = self.services.settings.session.spectator_buffer_bytes
            for watcher in list(self.watchers):
                watcher.send(data, limit)
        self.carry_out(self.session.guest_data(data))

    def add_watcher(self, watcher):
        if self.watchers is None:
            self.watchers = set()
        self.watchers.add(watcher)
        self.carry_out(self.session.spectators_changed(len(self.watchers)))

    def remove_watcher(self, watcher):
        if self.watchers and watcher in self.watchers:
            self.watchers.discard(watcher)
            self.carry_out(self.session.spectators_changed(
                len(self.watchers)))

    def close_session(self, code, reason):
        """End the session, telling the client why (force-disconnect,
        idle, lease lost, take-over, access turned off, proxy
        shutdown)."""
        if code == CloseCode.ACCESS_DISABLED and self.session.is_open:
            self.services.metrics.sessions_ended_by_access()
        self.carry_out(self.session.close(code, reason))

    def tick(self):
        self.carry_out(self.session.tick())

    def release_lease(self, session_id, then_answer):
        """Give the lease back; with then_answer, the session answers the
        client's end once consoleauth has it (or the release failed)."""
        released = self.services.release(session_id)
        if then_answer:
            released.add_done_callback(
                lambda _: self.carry_out(self.session.lease_released()))

    def _relay_key(self):
        """The key spectators reach this writer's output by; None for a
        spectator."""
        return None if self.session.is_spectator else \
            self.session.console.relay_key
