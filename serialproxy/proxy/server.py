"""The proxy's event loop layer: sockets in, session actions out.

One asyncio loop (epoll; no select() and its 1,024-descriptor ceiling, no
process per connection) carries the sessions of a process. Every rule of a
session lives in session.ConsoleSession; the protocols here only feed it
what the sockets and the console service say and carry out the actions it
answers with. RPC calls are blocking, so they run on a bounded pool.

serialproxy-proxy runs one ConsoleProxy in each worker process (see
workers.py), every worker accepting from the same listening socket;
serialproxy-all runs one in its own process.
"""

import asyncio
import concurrent.futures
import dataclasses
import functools
import os
import socket
import time

from oslo_log import log as logging

from serialproxy.consoleauth import tokens
from serialproxy import exception
from serialproxy import notifications
from serialproxy import rpc
from serialproxy.proxy import admin
from serialproxy.proxy import admission
from serialproxy.proxy import batching
from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import forwarded
from serialproxy.proxy import framing
from serialproxy.proxy import metrics
from serialproxy.proxy import page_assets
from serialproxy.proxy import page_commands
from serialproxy.proxy import recording
from serialproxy.proxy import refusals
from serialproxy.proxy import relay
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy import replay
from serialproxy.proxy import session as console_session
from serialproxy.proxy.session import Side
from serialproxy.proxy import static_files
from serialproxy.proxy import tls

LOG = logging.getLogger(__name__)

# Per-direction write buffer bound; past it the other side stops reading.
WRITE_BUFFER_HIGH = 64 * 1024
# The kernel's send buffer of a spectator's socket (see
# ClientConnection._bound_send_buffer).
SPECTATOR_SEND_BUFFER = 64 * 1024
# What a stopping proxy gives close frames and lease releases to go out.
SHUTDOWN_FLUSH_SECONDS = 0.2
# Time limits are checked by one sweep over all connections, not a timer
# each.
SWEEP_SECONDS = 1.0
PRUNE_SECONDS = 3600
# Lease calls to consoleauth under way at once; new sessions arriving
# meanwhile go together in the next.
LEASE_CALLS_IN_FLIGHT = 2
# How long a connection refused at accept may still send its request,
# read and dropped, so that closing does not reset it before it reads its
# 429.
REFUSED_LINGER_SECONDS = 1.0
# Pause before renewing leases again after a renewal failed.
RENEW_RETRY_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    """What a proxy process is told by its configuration."""
    session: console_session.Settings = console_session.Settings()
    proxy_host: str = 'localhost'
    lease_ttl: float = 30
    ssl_only: bool = False
    rpc_workers: int = 16
    max_per_address: int = 16
    max_per_token: int = 2
    record_dir: str = None
    record_max_bytes: int = 10 * 1024 * 1024
    record_retention_days: int = 30
    replay_lines: int = 0
    vendor_path: str = None
    drain_timeout: float = 0
    max_spectators: int = 10
    relay_host: str = '127.0.0.1'

    @classmethod
    def from_conf(cls, conf):
        """From the options; framing.InvalidFrameAncestor or
        forwarded.InvalidTrustedProxy on a bad one."""
        return cls(
            session=console_session.Settings(
                allowed_origins=tuple(conf.console.allowed_origins),
                frame_ancestors=framing.FrameAncestors.parse(
                    conf.console.frame_ancestors),
                trusted_proxies=forwarded.TrustedProxies(
                    conf.console.trusted_proxies),
                max_frame_bytes=conf.console.max_frame_bytes,
                handshake_timeout=conf.console.handshake_timeout,
                idle_timeout=conf.console.idle_timeout,
                enforce_session_timeout=(
                    conf.console.enforce_session_timeout),
                max_session_age=conf.console.max_session_age,
                spectator_buffer_bytes=conf.console.spectator_buffer_bytes),
            proxy_host=conf.host,
            lease_ttl=conf.consoleauth.session_lease_ttl,
            ssl_only=conf.ssl_only,
            rpc_workers=conf.console.rpc_workers,
            max_per_address=conf.console.max_sessions_per_address,
            max_per_token=conf.console.max_sessions_per_token,
            record_dir=conf.console.record,
            record_max_bytes=conf.console.record_max_bytes,
            record_retention_days=conf.console.record_retention_days,
            replay_lines=conf.console.replay_lines,
            vendor_path=conf.console.vendor_path,
            drain_timeout=conf.console.drain_timeout,
            max_spectators=conf.console.max_spectators,
            relay_host=conf.console.relay_host)


class ConsoleProxy:
    """Listens for browsers and websocket clients; owns live sessions."""

    def __init__(self, settings, consoleauth_api, compute_api,
                 ssl_context=None, load=None):
        self.settings = settings
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api
        self.ssl_context = ssl_context
        self.admission = admission.Admission(
            settings.max_per_address, settings.max_per_token, load=load,
            trusted_proxies=settings.session.trusted_proxies)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            settings.rpc_workers, thread_name_prefix='proxy-rpc')
        # New sessions' leases and ended sessions' releases: as many per
        # consoleauth call as arrive while earlier calls are answered.
        self.leases = batching.Batcher(
            self._acquire_blocking, self.executor,
            slots=LEASE_CALLS_IN_FLIGHT, orphan=self._release_orphan)
        self.releases = batching.Batcher(
            self._release_blocking, self.executor, slots=1)
        # compute host -> Batcher of its replays of recent output
        self.replays = {}
        self.connections = set()
        # session id -> ClientConnection, for renewal and disconnects
        self.sessions = {}
        # relay key -> the writer's ClientConnection (see relay.py)
        self.relay_keys = {}
        self.relay_server = None
        self.relay_address = None
        self.static = static_files.StaticFiles(
            vendor_root=settings.vendor_path,
            frame_ancestors=settings.session.frame_ancestors)
        self.metrics = metrics.ProxyMetrics()
        # Bytes relayed since the metrics last heard of them: counted here
        # per chunk, handed over once a second (a metric's inc() costs
        # more than the addition, in multiprocess mode a lot more).
        self.bytes_to_guest = 0
        self.bytes_to_client = 0
        self.server = None
        self.admin_server = None
        self._tasks = []

    @property
    def serving(self):
        return self.server is not None and self.server.is_serving()

    @property
    def bound_port(self):
        return self.server.sockets[0].getsockname()[1]

    async def start(self, host=None, port=None, listening_socket=None,
                    admin_host=None, admin_port=0, admin_socket=None):
        """Serve on host:port, or on a socket a parent process opened."""
        loop = asyncio.get_running_loop()
        self.server = tls.SniffingListener(
            lambda: ClientConnection(self), self.ssl_context,
            self.settings.ssl_only,
            self.settings.session.handshake_timeout,
            has_room=self.admission.has_room)
        if listening_socket is None:
            listening_socket = tls.listening_socket(host, port)
        self.server.serve(listening_socket)
        self.relay_server = await relay.start(self, self.settings.relay_host)
        self.relay_address = relay.address_of(self.relay_server)
        if admin_socket is not None:
            self.admin_server = await admin.start_on_socket(
                self, admin_socket, self.settings.session.handshake_timeout)
        elif admin_port:
            self.admin_server = await admin.start(
                self, admin_host, admin_port,
                self.settings.session.handshake_timeout)
        self._tasks = [loop.create_task(self._renew_leases()),
                       loop.create_task(self._sweep())]
        if self.settings.record_dir:
            os.makedirs(self.settings.record_dir, mode=0o700, exist_ok=True)
            self._tasks.append(loop.create_task(self._prune_recordings()))
        LOG.info('Console proxy listening on %s:%s, room for %d sessions '
                 'within the open-files limit of process %d',
                 *listening_socket.getsockname()[:2],
                 self.admission.capacity, os.getpid())
        self._report_page_assets()

    def _report_page_assets(self):
        """Say where the page's scripts come from, or why they cannot."""
        missing = self.static.missing_vendor_files()
        if not missing:
            LOG.info('Console page: its terminal scripts are served from %s',
                     self.static.vendor_root)
        elif self.static.vendor_configured:
            LOG.warning('The console page cannot work: %s missing under '
                        '[console] vendor_path', ', '.join(missing))
        else:
            LOG.warning('The console page cannot work: its terminal '
                        'scripts are neither in the installed package '
                        '(%s, which a wheel or sdist built from the source '
                        'tree carries) nor in a source tree\'s node_modules '
                        '(%s, where "npm ci" puts them); install from such '
                        'a wheel, run "npm ci", or set [console] '
                        'vendor_path', page_assets.BUILT_ROOT,
                        page_assets.CHECKOUT_ROOT)

    async def stop(self, drain_timeout=0):
        """Stop accepting; after drain_timeout close what is left (1001)."""
        for listener in (self.server, self.admin_server, self.relay_server):
            if listener is not None:
                listener.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while self.sessions and loop.time() < deadline:
            await asyncio.sleep(0.1)
        for task in self._tasks:
            task.cancel()
        for connection in list(self.connections):
            connection.close_session(
                CloseCode.GOING_AWAY,
                'Console proxy shutting down')
        # Give close frames a moment to reach the clients.
        await asyncio.sleep(SHUTDOWN_FLUSH_SECONDS)
        for connection in list(self.connections):
            connection.abort()
        self.flush_metrics()
        # Let lease releases finish, so the consoles are free at once
        # rather than when the leases expire.
        await self.releases.drained()
        await loop.run_in_executor(None, self.executor.shutdown)

    # Asked by connections ------------------------------------------------

    async def lease_console(self, token, client_address):
        """The console a token opens, leased to the asking session.

        The port the token names is not asked of the compute agent here:
        the agent revokes an instance's tokens when its domain is
        undefined or stopped or its ports change, consoleauth drops
        those its reports contradict, and the lease transaction refuses a
        token whose port its registry no longer gives the token's
        instance, so a leased token's port is still its guest's
        (CVE-2013-0335).
        """
        if not token:
            raise Refusal(401, 'Missing token')
        console = await self.leases.submit(
            {'token': token, 'remote_address': client_address,
             'relay_address': self.relay_address})
        return self._checked(console)

    async def join_console(self, token, client_address):
        """A spectator's lease beside the console's writer (mode=view);
        the answer names the writer's relay."""
        if not token:
            raise Refusal(401, 'Missing token')
        console = await self._call(
            self.consoleauth_api.join_session, {}, token,
            self.settings.proxy_host, remote_address=client_address,
            max_spectators=self.settings.max_spectators)
        if not console['writer'].get('relay_address'):
            # A writer on a proxy from before relays: nothing to watch.
            self.release_lease(console['session_id'])
            raise Refusal(409, 'The console\'s user is on a proxy that '
                               'cannot relay to spectators', kind='relay')
        return self._checked(console)

    async def take_over_console(self, token, client_address):
        """The writer's lease, taken from whoever held it (take_over).

        consoleauth hands the lease over in one transaction and casts the
        replaced session's close (4006) to every proxy; when it is held
        here it is closed at once, so that its guest connection is free
        for the new writer without waiting for the cast.
        """
        if not token:
            raise Refusal(401, 'Missing token')
        console = await self._call(
            self.consoleauth_api.take_over_session, {}, token,
            self.settings.proxy_host, remote_address=client_address,
            relay_address=self.relay_address)
        if console.get('replaced'):
            self.disconnect([console['replaced']], CloseCode.TAKEN_OVER,
                            close_codes.default_reason(CloseCode.TAKEN_OVER))
        return self._checked(console)

    async def _call(self, method, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(method, *args, **kwargs))

    def _checked(self, console):
        """console, unless it is not a serial one: then its lease is
        given back and the token refused."""
        try:
            self._check_console_type(console)
        except Refusal:
            self.release_lease(console['session_id'])
            raise
        return console

    def _acquire_blocking(self, requests):
        """One consoleauth call for the leases of many new sessions."""
        return rpc.batch_results(self.consoleauth_api.acquire_sessions(
            {}, self.settings.proxy_host, requests))

    def _release_orphan(self, console):
        """A lease whose session stopped waiting for it (a stopping
        proxy) is given back at once."""
        self.release_lease(console['session_id'])

    async def check_console(self, token, mode=console_session.WRITE):
        """Whether a token would open its console now in mode; raises if
        not."""
        if not token:
            raise Refusal(401, 'Missing token')
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._check_blocking,
                                   token, mode)

    def _check_blocking(self, token, mode):
        console = self.consoleauth_api.check_token({}, token)
        watch_only = tokens.console_is_watch_only(console)
        if watch_only and mode == console_session.WRITE:
            mode = console_session.VIEW
        if watch_only and mode == console_session.TAKE_OVER:
            raise exception.ModeNotAllowed(mode=mode, watch_only=True)
        if mode != console_session.WRITE and \
                mode not in console.get('modes', ()):
            raise exception.ModeNotAllowed(mode=mode)
        writer = [held for held in self.consoleauth_api.list_sessions(
            {}, console['instance_uuid'])
            if held['index'] == console['index'] and
            held.get('mode', 'write') != console_session.VIEW]
        if mode == console_session.VIEW and not writer:
            raise exception.ConsoleNotInUse(watch_only=watch_only)
        if mode == console_session.WRITE and writer:
            raise exception.ConsoleInUse.since_epoch(writer[0]['started_at'])
        self._check_console_type(console)
        # A check is not the hot path: it may ask the agent too.
        if not self.compute_api.validate_console_port(
                {}, console['compute_host'], console['instance_uuid'],
                console['port'], console['index']):
            raise Refusal(401, 'The console of this token is no longer '
                               'there')

    @staticmethod
    def _check_console_type(console):
        if console['console_type'] != 'serial':
            raise Refusal(401, 'Token is not for a serial console')

    async def recent_output(self, console):
        """History to show before live output; b'' when there is none."""
        if not self.settings.replay_lines or console['index'] != 0:
            return b''
        host = console['compute_host']
        if host not in self.replays:
            self.replays[host] = batching.Batcher(
                functools.partial(self._outputs_blocking, host),
                self.executor, slots=1)
        try:
            text = await self.replays[host].submit(console['instance_uuid'])
        except Exception as exc:
            # No log, an older agent, a slow host: the console still opens.
            LOG.debug('No recent output for instance %s: %s',
                      console['instance_uuid'], exc)
            return b''
        return replay.history(text)

    async def send_sysrq(self, console, key):
        """Alt+SysRq+key on the console's guest, for a session that holds
        its lease (an SSH user's break and key, the page's SysRq menu)."""
        await self._call(self.compute_api.send_sysrq, {},
                         console['compute_host'], console['instance_uuid'],
                         key)

    async def inject_nmi(self, console):
        """An NMI into the console's guest, for a session that holds its
        lease and whose token allows it (the page's menu)."""
        await self._call(self.compute_api.inject_nmi, {},
                         console['compute_host'], console['instance_uuid'])

    def _outputs_blocking(self, host, instance_uuids):
        return rpc.batch_results(self.compute_api.get_console_outputs(
            {}, host, instance_uuids, self.settings.replay_lines))

    def opened(self, connection):
        self.connections.add(connection)
        self.admission.connection_opened()
        self.metrics.connection_opened()

    def closed(self, connection):
        self.connections.discard(connection)
        self.admission.connection_closed()
        self.metrics.connection_closed()

    def session_started(self, connection):
        self.sessions[connection.session.session_id] = connection

    def session_ended(self, connection):
        self.sessions.pop(connection.session.session_id, None)

    def release_lease(self, session_id):
        """Give a lease back; returns the future of the release."""
        released = self.releases.submit(session_id)
        released.add_done_callback(_log_release_failure)
        return released

    def _release_blocking(self, session_ids):
        self.consoleauth_api.release_sessions({}, session_ids)
        return [None] * len(session_ids)

    def disconnect(self, session_ids, code, reason):
        """Close the listed sessions this process holds."""
        for session_id in session_ids:
            connection = self.sessions.get(session_id)
            if connection is not None:
                connection.close_session(code, reason)

    def recorder(self, console, session_id):
        """A recorder for a new session, or None when not recording."""
        if not self.settings.record_dir:
            return None
        try:
            return recording.SessionRecorder(
                self.settings.record_dir, console['instance_uuid'],
                console['index'], session_id,
                self.settings.record_max_bytes)
        except OSError as exc:
            # A full disk must not cost the user their console.
            LOG.error('Cannot record session %s: %s', session_id, exc)
            return None

    # Housekeeping --------------------------------------------------------

    async def _prune_recordings(self):
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(
                self.executor, recording.prune, self.settings.record_dir,
                self.settings.record_retention_days * 86400)
            await asyncio.sleep(PRUNE_SECONDS)

    async def _sweep(self):
        """Apply every connection's time limits, once a second."""
        session = self.settings.session
        # Open sessions have time limits only when configured; thousands
        # of them ticked for nothing would stall the loop once a second.
        limits_open = (session.idle_timeout or
                       session.enforce_session_timeout or
                       session.max_session_age)
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.flush_metrics()
            for connection in list(self.connections):
                if limits_open or not connection.session.is_open:
                    connection.tick()

    def flush_metrics(self):
        if self.bytes_to_guest:
            self.metrics.bytes_to_guest(self.bytes_to_guest)
            self.bytes_to_guest = 0
        if self.bytes_to_client:
            self.metrics.bytes_to_client(self.bytes_to_client)
            self.bytes_to_client = 0

    async def _renew_leases(self):
        """Renew every lease in one batch, a few times per lease TTL.

        The first renewal goes at start, with no leases: oslo.messaging
        opens a process's reply queue on its first call and, should the
        broker be down then, waits for it without end. Opened now, a
        later outage fails a user's call within seconds instead.
        """
        loop = asyncio.get_running_loop()
        pause = 0
        replies_ready = False
        while True:
            await asyncio.sleep(pause)
            pause = self.settings.lease_ttl / 3.0
            reports = [{'id': session_id,
                        'bytes_to_guest': conn.session.bytes_to_guest,
                        'bytes_to_client': conn.session.bytes_to_client}
                       for session_id, conn in self.sessions.items()]
            if not reports and replies_ready:
                continue
            try:
                lost = await loop.run_in_executor(
                    self.executor, functools.partial(
                        self.consoleauth_api.renew_sessions, {},
                        self.settings.proxy_host, reports,
                        timeout=max(1.0, self.settings.lease_ttl / 3.0)))
            except Exception as exc:
                LOG.log(logging.WARNING if reports else logging.DEBUG,
                        'Renewing %d session leases failed: %s',
                        len(reports), exc)
                # Leases outlived by a broker or consoleauth outage are
                # kept for their holder until someone else asks for the
                # console: renew as soon as they can be reached again.
                pause = RENEW_RETRY_SECONDS
                continue
            replies_ready = True
            # A session whose lease is gone may have a new user already.
            self.disconnect(lost, CloseCode.LEASE_LOST,
                            'Session ended by the console service')


def _log_release_failure(future):
    if not future.cancelled() and future.exception() is not None:
        # The lease then expires by itself within its TTL.
        LOG.warning('Releasing a session lease failed: %s',
                    future.exception())


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


class ClientConnection(asyncio.Protocol):
    """The browser (or websocket client) side of one console session."""

    def __init__(self, proxy):
        self.proxy = proxy
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

    # asyncio callbacks -----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info('peername')
        if peer:
            self.peer_host = peer[0]
            self.client_address = '%s:%s' % (peer[0], peer[1])
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.session = console_session.ConsoleSession(
            self.proxy.settings.session,
            tls=transport.get_extra_info('sslcontext') is not None,
            peer_host=self.peer_host)
        self.proxy.opened(self)
        try:
            # Counted before a byte is read: silent sockets count too.
            self.counted_address = self.proxy.admission.arrive(
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
        self.proxy.closed(self)
        self.carry_out(self.session.client_lost())
        self.proxy.admission.discharge(self.ticket)
        self.ticket = None
        self.proxy.admission.leave(self.counted_address)
        self.counted_address = None

    def pause_writing(self):
        self.carry_out(self.session.client_write_blocked())

    def resume_writing(self):
        self.carry_out(self.session.client_write_unblocked())

    # From the guest, the proxy and the clock -------------------------------

    def guest_data(self, data):
        if self.recorder is not None and self.session.is_open:
            self.recorder.output(data)
        if self.watchers:
            limit = self.proxy.settings.session.spectator_buffer_bytes
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
        self.carry_out(self.session.close(code, reason))

    def tick(self):
        self.carry_out(self.session.tick())

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
                    self.proxy.bytes_to_client += payload_bytes
                case console_session.InputDropped(nbytes):
                    self.proxy.metrics.spectator_input_dropped(nbytes)
                case console_session.SendToGuest(chunks, payload_bytes):
                    buffer = guest_write(chunks)
                    if buffer is not None:
                        self.guest.transport.write(buffer)
                    self.proxy.bytes_to_guest += payload_bytes
                case console_session.PauseReading(side):
                    self._reader(side).pause_reading()
                case console_session.ResumeReading(side):
                    self._reader(side).resume_reading()
                case console_session.Authorize(request, lease):
                    self.request_at = time.monotonic()
                    asyncio.get_running_loop().create_task(
                        self._authorize(request, lease))
                case console_session.ServePage(request):
                    self.transport.write(self.proxy.static.response(request))
                case console_session.Refused(refusal):
                    LOG.info('Refused console connection from %s: %d %s',
                             self.client_address, refusal.status,
                             refusal.reason)
                    self.proxy.metrics.refused(refusal.status, refusal.kind)
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
                    released = self.proxy.release_lease(session_id)
                    if then_answer:
                        released.add_done_callback(
                            lambda _: self.carry_out(
                                self.session.lease_released()))
                case console_session.CloseGuest():
                    if self.guest is not None:
                        self.guest.transport.close()
                case console_session.CloseClient():
                    self.transport.close()

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
        self.counted_address = self.proxy.admission.recount(
            self.counted_address, client)

    async def _authorize(self, request, lease):
        try:
            self._identify_client()
            # Checks are admitted as sessions are: a check costs a
            # consoleauth call, and answers what the upgrade would.
            self.ticket = self.proxy.admission.admit(request.token)
            if not lease:
                await self.proxy.check_console(request.token,
                                               self.session.mode)
                self.carry_out(self.session.check_passed())
                return
            console = await self._lease(request.token)
            self.carry_out(self.session.leased(console))
            if self.session.state is not console_session.State.AUTHORIZING:
                return
            # A spectator's "guest" is the writer's relay (relay.py).
            if self.session.is_spectator:
                address = relay.split_address(
                    console['writer']['relay_address'])
            else:
                address = console['host'], console['port']
            # The replay is fetched while the guest connection is made.
            history, (_, guest) = await asyncio.gather(
                self.proxy.recent_output(console),
                asyncio.get_running_loop().create_connection(
                    lambda: (RelayConnection(self) if self.session.is_spectator
                             else GuestConnection(self)), *address))
            if self.session.is_spectator:
                guest.transport.write(relay.preamble(
                    console['writer']['relay_key']))
        except Exception as exc:
            if isinstance(exc, OSError) and self.session.console:
                console = self.session.console
                LOG.warning('Cannot reach the serial port of instance %s '
                            'at %s:%s: %s', console['instance_uuid'],
                            console['host'], console['port'], exc)
            self.carry_out(self.session.refused(
                refusals.from_error(exc, self.client_address)))
            return
        self.guest = guest
        self.carry_out(self.session.guest_connected(history))

    async def _lease(self, token):
        mode = self.session.mode
        if mode == console_session.VIEW:
            return await self.proxy.join_console(token, self.client_address)
        if mode == console_session.TAKE_OVER:
            return await self.proxy.take_over_console(token,
                                                      self.client_address)
        return await self._writers_lease(token)

    async def _writers_lease(self, token):
        """The writer's lease; a spectator's for a watch-only token,
        whose URL opens read-only whatever its query said."""
        try:
            console = await self.proxy.lease_console(token,
                                                     self.client_address)
        except exception.ModeNotAllowed as exc:
            if not exc.kwargs.get('watch_only'):
                raise
        else:
            if not tokens.console_is_watch_only(console):
                return console
            # An older consoleauth (beside newer ones, in an upgrade)
            # knows no watch-only mark: the seat goes back.
            self.proxy.release_lease(console['session_id'])
        self.session.watching_only()
        try:
            return await self.proxy.join_console(token, self.client_address)
        except exception.ConsoleNotInUse:
            raise exception.ConsoleNotInUse(watch_only=True)

    async def _run_page_command(self, command):
        """Have the compute agent carry out the page's SysRq key or NMI,
        announced as the REST calls announce theirs."""
        session = self.session
        console = session.console
        try:
            if command.kind == page_commands.SYSRQ:
                await self.proxy.send_sysrq(console, command.key)
            else:
                await self.proxy.inject_nmi(console)
        except Exception as exc:
            LOG.warning('Console session %s: %s for instance %s not sent: '
                        '%s', session.session_id, command,
                        console['instance_uuid'], type(exc).__name__)
            self.carry_out(session.page_command_done(
                page_commands.failure_reason(command, exc)))
            return
        LOG.info('Console session %s of user %s sent %s to instance %s',
                 session.session_id, console.get('user_id'), command,
                 console['instance_uuid'])
        if command.kind == page_commands.SYSRQ:
            self._notify(notifications.SYSRQ_SENT, sysrq_key=command.key)
        else:
            self._notify(notifications.NMI_SENT)
        self.carry_out(session.page_command_done())

    def _started(self):
        session = self.session
        console = session.console
        self.proxy.session_started(self)
        if console.get('relay_key') and not session.is_spectator:
            self.proxy.relay_keys[console['relay_key']] = self
        if session.is_spectator:
            self._bound_send_buffer()
        self.proxy.metrics.session_opened(time.monotonic() - self.request_at)
        if not session.is_spectator:
            # The writer's session records the console; spectators would
            # record the same bytes again.
            self.recorder = self.proxy.recorder(console, session.session_id)
        self._notify(notifications.SESSION_STARTED)
        if console.get('replaced'):
            self._notify(notifications.SESSION_TAKEN_OVER,
                         reason='replaced session %s' % console['replaced'])
        LOG.info('Console session %s started: instance %s index %d '
                 'client %s mode %s', session.session_id,
                 console['instance_uuid'], console['index'],
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
        self.proxy.session_ended(self)
        self.proxy.relay_keys.pop(session.console.get('relay_key'), None)
        # The writer's spectators end with it: their relays say how and
        # close, and each spectator's proxy closes its browser.
        for watcher in list(self.watchers or ()):
            watcher.end(code, reason)
        self.proxy.metrics.session_closed()
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
                 session.console['instance_uuid'], session.console['index'],
                 self.client_address, session.bytes_to_guest,
                 session.bytes_to_client,
                 time.monotonic() - session.started_at, code, reason)

    def _notify(self, event_type, **fields):
        # emit() only queues: the event loop never waits for the broker.
        notifications.emit_console_event(
            event_type, self.session.console, self.session.session_id,
            self.client_address, self.proxy.settings.proxy_host,
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
