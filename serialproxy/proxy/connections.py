"""The sockets of one console session: the client's and the guest's.

One asyncio loop (epoll; no select() and its 1,024-descriptor ceiling, no
process per connection) carries the sessions of a process. Every rule of a
session lives in session.ConsoleSession; the protocols here only feed it
what the sockets and the console service say and carry out the actions it
answers with. What they ask of the rest of the proxy goes through
services.ConsoleServices, and nothing else.
"""

import asyncio
import socket
import time

from oslo_log import log as logging

from serialproxy import exception
from serialproxy import notifications
from serialproxy import rpc
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import console_layer
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy.page import log_download
from serialproxy.proxy import refusals
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy.refusals import RefusalKind
from serialproxy.proxy import relay
from serialproxy.proxy import session as console_session
from serialproxy.proxy.session import Side

LOG = logging.getLogger(__name__)

# Per-direction write buffer bound; past it the other side stops reading.
WRITE_BUFFER_HIGH = 64 * 1024
# The kernel's send buffer of a spectator's socket (see
# ClientConnection._bound_send_buffer).
SPECTATOR_SEND_BUFFER = 64 * 1024
# How long a connection refused at accept may still send its request,
# read and dropped, so that closing does not reset it before it reads its
# answer (a 429, or the 400 of a plain connection under ssl_only).
REFUSED_LINGER_SECONDS = 1.0
# A plain connection to a proxy whose ssl_only is set.
PLAIN_REFUSAL_REASON = ('This console proxy only speaks TLS: use https or '
                        'wss')


def guest_write(messages):
    """The one buffer that carries messages to the guest, or None.

    The guest's serial port is a byte stream: whatever a read from the
    client completed goes in one write. A system call per message costs
    more than joining them (tools/bench/throughput.py, to guest: 64 KiB
    frames gained about a sixth when four a read stopped costing four
    sends). A lone message is written as a view, so that the transport's
    slicing of what the socket did not take copies nothing either.
    """
    if len(messages) == 1:
        return memoryview(messages[0])
    return b''.join(messages) if messages else None


class ClientConnection(console_layer.ConsoleLayer, asyncio.Protocol):
    """The browser (or websocket client) side of one console session."""

    def __init__(self, services):
        # services.ConsoleServices: all this connection asks of its proxy.
        self.services = services
        self.transport = None
        self.session = None
        self.guest = None
        self.peer_host = '-'
        self.client_address = '-'
        # The address this connection counts against (admission.py).
        self.counted_address = None
        self.ticket = None
        self.recorder = None
        self.request_at = None
        self._linger = None
        # A writer's spectators' relay connections (relay.RelayWatcher);
        # None until the first, so the output path without spectators
        # costs one test per chunk.
        self.watchers = None
        # Set while a Download log's client may take more (its write
        # buffer below the limit); None when no download runs.
        self._writable = None

    # asyncio callbacks -----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info('peername')
        if peer:
            self.peer_host = peer[0]
            self.client_address = '%s:%s' % (peer[0], peer[1])
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        is_tls = transport.get_extra_info('sslcontext') is not None
        self.session = console_session.ConsoleSession(
            self.services.settings.session, tls=is_tls,
            peer_host=self.peer_host)
        self.services.opened(self)
        if self.services.settings.ssl_only and not is_tls:
            self._refuse_at_accept(Refusal(
                400, PLAIN_REFUSAL_REASON, RefusalKind.TLS_ONLY))
            return
        try:
            # Counted before a byte is read: silent sockets count too.
            self.counted_address = self.services.admission.arrive(
                self.peer_host)
        except Refusal as refusal:
            self._refuse_at_accept(refusal)

    def data_received(self, data):
        self.carry_out(self.session.client_data(data))

    def eof_received(self):
        self.carry_out(self.session.client_eof())
        return False

    def _refuse_at_accept(self, refusal):
        """Answer before the request came: half-close after the answer and
        drop what the client still sends for a moment, since closing with
        its request unread would reset the connection before it reads
        the answer."""
        self.carry_out([action for action in self.session.refused(refusal)
                        if not isinstance(action,
                                          console_session.CloseClient)])
        if self.transport.can_write_eof():  # not over TLS
            self.transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(
            REFUSED_LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc):
        if self._linger is not None:
            self._linger.cancel()
        if self._writable is not None:
            self._writable.set()  # a download waiting to write stops
        self.services.closed(self)
        self.carry_out(self.session.client_lost())
        self.services.admission.discharge(self.ticket)
        self.ticket = None
        self.services.admission.leave(self.counted_address)
        self.counted_address = None

    def pause_writing(self):
        if self._writable is not None:
            self._writable.clear()
        self.carry_out(self.session.client_write_blocked())

    def resume_writing(self):
        if self._writable is not None:
            self._writable.set()
        self.carry_out(self.session.client_write_unblocked())

    # From the guest, the proxy and the clock -------------------------------

    def abort(self):
        """Drop both sockets now, without a closing handshake."""
        if self.guest is not None:
            self.guest.transport.abort()
        self.transport.abort()

    # Carrying out the session's actions ------------------------------------

    def carry_out(self, actions):
        for action in actions:
            match action:
                case console_session.SendToClient(chunks, payload_bytes):
                    if chunks and not self.transport.is_closing():
                        self.transport.writelines(chunks)
                    self.services.relayed_to_client(payload_bytes)
                case console_session.InputDropped(nbytes):
                    self.services.metrics.spectator_input_dropped(nbytes)
                case console_session.SendToGuest(chunks, payload_bytes):
                    buffer = guest_write(chunks)
                    if buffer is not None:
                        self.guest.transport.write(buffer)
                    self.services.relayed_to_guest(payload_bytes)
                case console_session.PauseReading(side):
                    self._reader(side).pause_reading()
                case console_session.ResumeReading(side):
                    self._reader(side).resume_reading()
                case console_session.Authorize(request, lease):
                    self.request_at = time.monotonic()
                    asyncio.get_running_loop().create_task(
                        self._authorize(request, lease))
                case console_session.ServePage(request):
                    self.transport.write(self.services.page(request))
                case console_session.Refused(refusal):
                    LOG.info('Refused console connection from %s: %d %s',
                             self.client_address, refusal.status,
                             refusal.reason)
                    self.services.metrics.refused(refusal.status,
                                                  refusal.kind)
                    self._notify(notifications.SESSION_REFUSED,
                                 reason='%d %s' % (refusal.status,
                                                   refusal.reason))
                case console_session.RunPageCommand(command):
                    asyncio.get_running_loop().create_task(
                        self._run_page_command(command))
                case console_session.Started():
                    self._started()
                case console_session.Ended(code, reason):
                    self._ended(code, reason)
                case console_session.ReleaseLease(session_id, then_answer):
                    self.release_lease(session_id, then_answer)
                case console_session.CloseGuest():
                    if self.guest is not None:
                        self.guest.transport.close()
                case console_session.CloseClient():
                    self.transport.close()
                case console_session.DownloadLog(request):
                    self.request_at = time.monotonic()
                    asyncio.get_running_loop().create_task(
                        self._download_log(request))
                case console_session.SeamJoined():
                    self.seam_joined()
                case console_session.HeldOutput(data):
                    self.guest_data(data)

    def _reader(self, side):
        if side is Side.CLIENT:
            return self.transport
        return self.guest.transport

    def _identify_client(self):
        """Count and name the connection by its client, once the request
        said who that is (a trusted proxy's X-Forwarded-For)."""
        client = self.session.client_host
        if client != self.peer_host:
            self.client_address = client
        self.counted_address = self.services.admission.recount(
            self.counted_address, client)

    async def _authorize(self, request, lease):
        try:
            self._identify_client()
            # Checks are admitted as sessions are: a check costs a
            # consoleauth call, and answers what the upgrade would.
            self.ticket = self.services.admission.admit(request.token)
            # The one place a request without a token is refused, the
            # check's and the upgrade's alike.
            if not request.token:
                raise refusals.missing_token()
            if not lease:
                await self.services.check(request.token, self.session.mode)
                self.carry_out(self.session.check_passed())
                return
            console = await self._lease(request.token)
            self.carry_out(self.session.leased(console))
            if self.session.state is not console_session.State.AUTHORIZING:
                return
            # A spectator's "guest" is the writer's relay (relay.py).
            if self.session.is_spectator:
                address = relay.split_address(console.writer.relay_address)
            else:
                address = console.host, console.port
            if self.session.stream is not None:
                await self.open_stream(console, address, lambda: (
                    RelayConnection(self) if self.session.is_spectator
                    else GuestConnection(self)))
                return
            # The replay is fetched while the guest connection is made.
            history, (_, guest) = await asyncio.gather(
                self.services.recent_output(console),
                asyncio.get_running_loop().create_connection(
                    lambda: (RelayConnection(self) if self.session.is_spectator
                             else GuestConnection(self)), *address))
            if self.session.is_spectator:
                guest.transport.write(relay.preamble(
                    console.writer.relay_key))
        except Exception as exc:
            if isinstance(exc, OSError) and self.session.console:
                console = self.session.console
                LOG.warning('Cannot reach the serial port of instance %s '
                            'at %s:%s: %s', console.instance_uuid,
                            console.host, console.port, exc)
            self.carry_out(self.session.refused(
                refusals.from_error(exc, self.client_address)))
            return
        self.guest = guest
        self.carry_out(self.session.guest_connected(history))

    async def _download_log(self, request):
        """The Download log: checked as a check is, then the console's
        kept history, a page at a time, each read once the client took
        the last (page/log_download.py)."""
        counted = False
        try:
            self._identify_client()
            self.ticket = self.services.admission.admit(request.token)
            if not request.token:
                raise refusals.missing_token()
            console = await self.services.check_download(request.token)
            if not self.services.take_download_slot():
                raise Refusal(503, log_download.BUSY_REASON,
                              RefusalKind.CAPACITY)
            counted = True
            pages = log_download.LogPages(console.instance_uuid)
            data = pages.take(await self.services.history_page(
                console, *pages.next_read()))
        except Exception as exc:
            if counted:
                self.services.download_ended()
            self.carry_out(self.session.refused(
                log_download.refusal_of(exc, self.client_address)))
            return
        try:
            await self._stream_log(request, console, pages, data)
        finally:
            self.services.download_ended()

    async def _stream_log(self, request, console, pages, data):
        if not self.session.download_started():
            return  # refused meanwhile (the request's time ran out)
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport.write(pages.head(self.services.page_headers))
        try:
            while request.method != 'HEAD':
                if data:
                    self.transport.write(data)
                await self._writable.wait()
                if self.transport.is_closing():
                    raise ConnectionError('the client went away')
                if pages.done:
                    break
                data = pages.take(await self.services.history_page(
                    console, *pages.next_read()))
        except Exception as exc:
            # Cut short: the client sees less than its Content-Length,
            # a failed download rather than a file with a hole.
            LOG.warning('Console log of instance %s cut short for client '
                        '%s after %d of %d bytes: %s',
                        console.instance_uuid, self.client_address,
                        pages.sent, pages.end - pages.first,
                        rpc.summary(exc))
            self.transport.abort()
            return
        LOG.info('Console log of instance %s (offsets %d to %d) sent to '
                 'client %s', console.instance_uuid, pages.first,
                 pages.end, self.client_address)
        self.transport.close()

    async def _lease(self, token):
        mode = self.session.mode
        if mode == console_session.VIEW:
            return await self.services.join(token, self.client_address)
        if mode == console_session.TAKE_OVER:
            return await self.services.take_over(token, self.client_address)
        return await self._writers_lease(token)

    async def _writers_lease(self, token):
        """The writer's lease; a spectator's for a watch-only token,
        whose URL opens read-only whatever its query said."""
        try:
            console = await self.services.lease(token, self.client_address)
        except exception.ModeNotAllowed as exc:
            if not exc.kwargs.get('watch_only'):
                raise
        else:
            if not console.watch_only:
                return console
            # An older consoleauth (beside newer ones, in an upgrade)
            # knows no watch-only mark: the seat goes back.
            self.services.release(console.session_id)
        self.session.watching_only()
        try:
            return await self.services.join(token, self.client_address)
        except exception.ConsoleNotInUse:
            raise exception.ConsoleNotInUse(watch_only=True)

    async def _run_page_command(self, command):
        """Have the compute agent carry out the page's SysRq key or NMI,
        announced as the REST calls announce theirs."""
        session = self.session
        console = session.console
        try:
            if command.kind == page_commands.SYSRQ:
                await self.services.send_sysrq(console, command.key)
            else:
                await self.services.inject_nmi(console)
        except Exception as exc:
            LOG.warning('Console session %s: %s for instance %s not sent: '
                        '%s', session.session_id, command,
                        console.instance_uuid, type(exc).__name__)
            self.carry_out(session.page_command_done(
                page_commands.failure_reason(command, exc)))
            return
        LOG.info('Console session %s of user %s sent %s to instance %s',
                 session.session_id, console.user_id, command,
                 console.instance_uuid)
        if command.kind == page_commands.SYSRQ:
            self._notify(notifications.SYSRQ_SENT, sysrq_key=command.key)
        else:
            self._notify(notifications.NMI_SENT)
        self.carry_out(session.page_command_done())

    def _started(self):
        session = self.session
        console = session.console
        self.services.started(self, self._relay_key())
        if session.is_spectator:
            self._bound_send_buffer()
        self.services.metrics.session_opened(
            time.monotonic() - self.request_at)
        if not session.is_spectator:
            # The writer's session records the console; spectators would
            # record the same bytes again.
            self.recorder = self.services.recorder(console,
                                                   session.session_id)
        self._notify(notifications.SESSION_STARTED)
        if console.replaced:
            self._notify(notifications.SESSION_TAKEN_OVER,
                         reason='replaced session %s' % console.replaced)
        LOG.info('Console session %s started: instance %s index %d '
                 'client %s mode %s', session.session_id,
                 console.instance_uuid, console.index,
                 self.client_address, session.mode)

    def _bound_send_buffer(self):
        """A spectator's kernel send buffer is fixed, not autotuned up to
        megabytes: what waits for a spectator that stops reading is then
        bounded, and it is closed (4007) rather than fed into memory."""
        sock = self.transport.get_extra_info('socket')
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                            SPECTATOR_SEND_BUFFER)
        except (AttributeError, OSError) as exc:
            LOG.debug('Spectator send buffer left as it is: %s', exc)

    def _ended(self, code, reason):
        session = self.session
        self.services.ended(self, self._relay_key())
        # The writer's spectators end with it: their relays say how and
        # close, and each spectator's proxy closes its browser.
        for watcher in list(self.watchers or ()):
            watcher.end(code, reason)
        self.services.metrics.session_closed()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self._notify(notifications.SESSION_ENDED,
                     bytes_to_guest=session.bytes_to_guest,
                     bytes_to_client=session.bytes_to_client,
                     duration=round(time.monotonic() - session.started_at,
                                    3),
                     reason='%d %s' % (code, reason))
        LOG.info('Console session %s ended: instance %s index %d client %s '
                 'bytes_to_guest %d bytes_to_client %d duration %.1fs '
                 'code %d reason: %s', session.session_id,
                 session.console.instance_uuid, session.console.index,
                 self.client_address, session.bytes_to_guest,
                 session.bytes_to_client,
                 time.monotonic() - session.started_at, code, reason)

    def _notify(self, event_type, **fields):
        # emit() only queues: the event loop never waits for the broker.
        notifications.emit_console_event(
            event_type, self.session.console, self.session.session_id,
            self.client_address, self.services.settings.proxy_host,
            mode=self.session.mode, **fields)


class GuestConnection(asyncio.Protocol):
    """The TCP connection to a guest's serial port for one session."""

    def __init__(self, client):
        self.client = client
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        # What the guest prints before the websocket is open waits in the
        # kernel; the session resumes reading once it can relay it.
        transport.pause_reading()

    def data_received(self, data):
        self.client.guest_data(data)

    def connection_lost(self, exc):
        self.client.carry_out(self.client.session.guest_eof())

    def pause_writing(self):
        self.client.carry_out(self.client.session.guest_write_blocked())

    def resume_writing(self):
        self.client.carry_out(self.client.session.guest_write_unblocked())


class RelayConnection(GuestConnection):
    """A spectator's "guest": the writer's relay (relay.py)."""

    def __init__(self, client):
        super().__init__(client)
        self.decoder = relay.RelayDecoder()

    def data_received(self, data):
        try:
            events = self.decoder.feed(data)
        except ValueError:
            LOG.warning('A console relay sent what is not a relay record')
            self.transport.abort()
            return
        for event in events:
            if event[0] == 'output':
                self.client.guest_data(event[1])
            else:
                _, code, reason = event
                if code not in relay.SHARED_ENDS:
                    code, reason = CloseCode.NORMAL, \
                        console_session.SPECTATED_WRITER_LEFT
                self.client.close_session(code, reason)
