"""The proxy's event loops: every console session of the process.

An asyncio loop (epoll, no select() and its 1,024-descriptor ceiling, no
process per connection) carries the sessions. Each session is a pair of
protocols, browser side and guest side, that pause each other's reading
when the other's write buffer fills: backpressure instead of memory growth.
RPC calls are blocking, so connection setup runs them on a bounded pool.

With [console] event_loops = 1 the sessions share the main loop. With
more, they are spread over that many session loops, each on a thread with
a descriptor table of its own (see loops.py), so one process holds more
sessions than one table's RLIMIT_NOFILE allows. A session is only ever
touched on its own loop: other threads hand work to it through
call_soon_threadsafe.
"""

import asyncio
import collections
import hashlib
import os
import resource
import socket
import threading
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import exception
from serialproxy.proxy import admin
from serialproxy.proxy import handshake
from serialproxy.proxy import loops
from serialproxy.proxy import metrics
from serialproxy.proxy import recording
from serialproxy.proxy import replay
from serialproxy.proxy import rpcapi as proxy_rpcapi
from serialproxy.proxy import static_files
from serialproxy.proxy import tls
from serialproxy.proxy import websocket

LOG = logging.getLogger(__name__)

# Per-direction write buffer bound; past it the other side stops reading.
WRITE_BUFFER_HIGH = 64 * 1024
# How long a client gets to answer our close frame before we hang up.
CLOSE_GRACE_SECONDS = 2.0
# What a stopping proxy gives close frames and lease releases to go out.
SHUTDOWN_FLUSH_SECONDS = 0.2
# Time limits are checked by one sweep over all sessions, not a timer each.
SWEEP_SECONDS = 1.0
PRUNE_SECONDS = 3600


# Descriptors kept back from sessions: listeners, RPC connections, logs.
RESERVED_FILES = 64
# Connections a full session loop still accepts, to refuse them with 503
# when every loop is full; well within RESERVED_FILES.
REFUSAL_SLACK = 16


def session_capacity():
    """Sessions one descriptor table allows: two sockets each."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, (soft - RESERVED_FILES) // 2)


# Header of a plain GET that asks "would this token open now?"; the page
# sends it after a failed upgrade, because browsers hide the HTTP status
# of a refused websocket handshake.
CHECK_HEADER = 'X-Serialproxy-Check'


class ConsoleProxy:
    """Listens for browsers and websocket clients; owns live sessions."""

    def __init__(self, consoleauth_api, compute_api, proxy_host,
                 lease_ttl=30, ssl_context=None, ssl_only=False,
                 allowed_origins=(), handshake_timeout=10,
                 rpc_workers=32, max_per_address=16, max_per_token=2,
                 idle_timeout=0, enforce_session_timeout=False,
                 record_dir=None, record_max_bytes=10 * 1024 * 1024,
                 record_retention_days=30, replay_lines=0,
                 vendor_path=None, event_loops=1):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api
        self.proxy_host = proxy_host
        self.lease_ttl = lease_ttl
        self.ssl_context = ssl_context
        self.ssl_only = ssl_only
        self.allowed_origins = list(allowed_origins)
        self.handshake_timeout = handshake_timeout
        self.max_per_address = max_per_address
        self.max_per_token = max_per_token
        self.idle_timeout = idle_timeout
        self.enforce_session_timeout = enforce_session_timeout
        self.record_dir = record_dir
        self.record_max_bytes = record_max_bytes
        self.record_retention = record_retention_days * 86400
        self.replay_lines = replay_lines
        # Connections in set-up or open, per client address and per token
        # (by hash: raw tokens are kept nowhere).
        # The counters and the two maps below are shared by the loops.
        self._lock = threading.Lock()
        self.per_address = collections.Counter()
        self.per_token = collections.Counter()
        # Sessions one loop may hold: its descriptor table's share.
        self.capacity = session_capacity()
        self.admitted_per_loop = collections.Counter()
        self.open_per_loop = collections.Counter()
        self.executor = loops.prestarted_executor(rpc_workers, 'proxy-rpc')
        self.connections = set()
        # session id -> ClientConnection, for renewal and disconnects
        self.sessions = {}
        self.static = static_files.StaticFiles(vendor_root=vendor_path)
        # Counted on the loop that counts; summed when scraped.
        self.metrics = metrics.ProxyMetrics()
        self.event_loops = event_loops
        self.session_loops = []
        self._loop_metrics = {}
        self._loop_listeners = {}
        self._logging_queue = None
        self.server = None
        self.admin_server = None
        self._tasks = []

    @property
    def serving(self):
        return self.server is not None and self.server.is_serving()

    async def start(self, host, port, admin_host=None, admin_port=0):
        loop = asyncio.get_running_loop()
        if self.event_loops > 1:
            await self._start_session_loops(host, port)
        elif self.ssl_context is None:
            self.server = await loop.create_server(
                lambda: ClientConnection(self), host, port, backlog=4096,
                reuse_address=True)
        else:
            self.server = tls.SniffingListener(
                lambda: ClientConnection(self), self.ssl_context,
                self.ssl_only, self.handshake_timeout)
            await self.server.start(host, port)
        if admin_port:
            self.admin_server = await admin.start(self, admin_host,
                                                  admin_port)
        self._tasks = [loop.create_task(self._renew_leases()),
                       loop.create_task(self._sweep_time_limits())]
        if self.record_dir:
            os.makedirs(self.record_dir, mode=0o700, exist_ok=True)
            self._tasks.append(loop.create_task(self._prune_recordings()))
        LOG.info('Console proxy listening on %s:%s, room for %d sessions '
                 'within its open-files limit (%d event loop(s))', host,
                 port, self.capacity * self.event_loops, self.event_loops)
        missing = self.static.missing_vendor_files()
        if missing:
            LOG.warning('The console page cannot work: %s missing; run '
                        '"npm ci" in the source tree or set [console] '
                        'vendor_path', ', '.join(missing))

    async def _start_session_loops(self, host, port):
        listening = await tls.listening_socket(host, port)
        self.server = _SharedListener(listening)
        # From here on no thread but the writer touches a log file.
        self._logging_queue = loops.LoggingQueue()
        self._logging_queue.start()
        for index in range(self.event_loops):
            session_loop = loops.SessionLoop(
                'proxy-sessions-%d' % index, inherit=[listening.fileno()],
                wakes=[asyncio.get_running_loop()])
            self._loop_metrics[session_loop.loop] = metrics.ProxyMetrics()
            session_loop.start()
            self.session_loops.append(session_loop)
            await asyncio.wrap_future(session_loop.run(
                self._serve_on_session_loop(listening.fileno())))

    async def _serve_on_session_loop(self, listening_fd):
        """Accept on this loop's copy of the shared listening socket."""
        loop = asyncio.get_running_loop()
        listener = tls.SniffingListener(
            lambda: ClientConnection(self), self.ssl_context, self.ssl_only,
            self.handshake_timeout,
            has_room=lambda starting: self._has_room(loop, starting))
        listener.serve(socket.socket(fileno=listening_fd))
        self._loop_listeners[loop] = listener

    def _has_room(self, loop, starting):
        """Whether a session loop should accept another connection."""
        if self.open_per_loop[loop] + starting < self.capacity:
            return True
        # Every loop full: accept a few more, to answer them with 503.
        everyone_full = all(
            self.open_per_loop[other.loop] >= self.capacity
            for other in self.session_loops)
        return everyone_full and \
            self.open_per_loop[loop] + starting < \
            self.capacity + REFUSAL_SLACK

    def metrics_for(self, loop):
        return self._loop_metrics.get(loop, self.metrics)

    def all_metrics(self):
        return [self.metrics, *self._loop_metrics.values()]

    @property
    def bound_port(self):
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        for listener in (self.server, self.admin_server):
            if listener is not None:
                listener.close()
        for task in self._tasks:
            task.cancel()
        if self.session_loops:
            await asyncio.gather(*(
                asyncio.wrap_future(session_loop.run(self._close_loop()))
                for session_loop in self.session_loops))
        else:
            await self._close_loop()
        # Give releases a moment so the consoles are free at once, rather
        # than when the leases expire.
        await asyncio.sleep(SHUTDOWN_FLUSH_SECONDS)
        for session_loop in self.session_loops:
            session_loop.stop()
        self.executor.shutdown(wait=True, cancel_futures=False)
        if self._logging_queue is not None:
            self._logging_queue.stop()

    async def _close_loop(self):
        """Close the running loop's listener and sessions."""
        loop = asyncio.get_running_loop()
        listener = self._loop_listeners.pop(loop, None)
        if listener is not None:
            listener.close()
        for connection in self._connections_on(loop):
            connection.close_session(websocket.CLOSE_GOING_AWAY,
                                     'Console proxy shutting down')
        if loop not in self._loop_metrics:
            return
        # A session loop stops next. Its sockets must be closed on it, in
        # its descriptor table: collected later by another thread, they
        # would close whatever that thread's table has at their numbers.
        await asyncio.sleep(SHUTDOWN_FLUSH_SECONDS)
        for connection in self._connections_on(loop):
            connection.abort()
        deadline = loop.time() + SHUTDOWN_FLUSH_SECONDS
        while self._connections_on(loop) and loop.time() < deadline:
            await asyncio.sleep(0.01)

    def _connections_on(self, loop):
        with self._lock:
            return [c for c in self.connections if c.loop is loop]

    async def authorize(self, token, remote_address, lease=True):
        """The console a token opens, leased to this session, or Refusal.

        With lease=False only answers whether it would open right now.
        """
        if not token:
            raise handshake.Refusal(401, 'Missing token')
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self._authorize_blocking, token, remote_address,
            lease)

    def _authorize_blocking(self, token, remote_address, lease):
        try:
            if lease:
                console = self.consoleauth_api.acquire_session(
                    {}, token, self.proxy_host, remote_address)
            else:
                console = self.consoleauth_api.check_token({}, token)
                self._check_free(console)
            try:
                self._check_console(console)
            except Exception:
                if lease:
                    self.consoleauth_api.release_session(
                        {}, console['session_id'])
                raise
        except exception.InvalidToken:
            raise handshake.Refusal(401, 'Invalid or expired token')
        except exception.ConsoleInUse as exc:
            raise handshake.Refusal(409, exc.message)
        except messaging.MessagingTimeout:
            raise handshake.Refusal(503, 'Console service unavailable')
        return console

    async def recent_output(self, console):
        """History to show before live output; b'' when there is none."""
        if not self.replay_lines or console['index'] != 0:
            return b''
        loop = asyncio.get_running_loop()
        try:
            text = await loop.run_in_executor(
                self.executor, self.compute_api.get_console_output, {},
                console['compute_host'], console['instance_uuid'],
                self.replay_lines)
        except Exception as exc:
            # No log, an older agent, a slow host: the console still opens.
            LOG.debug('No recent output for instance %s: %s',
                      console['instance_uuid'], exc)
            return b''
        return replay.history(text)

    def _check_console(self, console):
        """The token's console is a serial port that still exists."""
        if console['console_type'] != 'serial':
            raise handshake.Refusal(401, 'Token is not for a serial console')
        if not self.compute_api.validate_console_port(
                {}, console['compute_host'], console['instance_uuid'],
                console['port'], console['index']):
            raise handshake.Refusal(
                401, 'The console of this token is no longer there')

    def _check_free(self, console):
        for session in self.consoleauth_api.list_sessions(
                {}, console['instance_uuid']):
            if session['index'] == console['index']:
                raise exception.ConsoleInUse.since_epoch(
                    session['started_at'])

    def opened(self, connection):
        with self._lock:
            self.connections.add(connection)
            self.open_per_loop[connection.loop] += 1

    def closed(self, connection):
        with self._lock:
            self.connections.discard(connection)
            self.open_per_loop[connection.loop] -= 1
        self.discharge(connection)

    def admit(self, connection, token):
        """Count a connection against its limits, or refuse it with 429."""
        address_key = connection.client_host
        token_key = hashlib.sha256(token.encode()).hexdigest() \
            if token else None
        with self._lock:
            if self.per_address[address_key] >= self.max_per_address:
                raise handshake.Refusal(429, 'Too many sessions from this '
                                             'address')
            if token_key and \
                    self.per_token[token_key] >= self.max_per_token:
                raise handshake.Refusal(429,
                                        'Too many sessions for this token')
            if self.admitted_per_loop[connection.loop] >= self.capacity:
                # Refuse before taking a lease, rather than fail to reach
                # the guest for want of a descriptor.
                raise handshake.Refusal(503, 'Console proxy at capacity')
            self.admitted_per_loop[connection.loop] += 1
            self.per_address[address_key] += 1
            if token_key:
                self.per_token[token_key] += 1
        connection.admitted = (address_key, token_key)

    def discharge(self, connection):
        """Undo admit() when the connection goes."""
        with self._lock:
            if connection.admitted[0] is not None:
                self.admitted_per_loop[connection.loop] -= 1
            for counter, key in zip((self.per_address, self.per_token),
                                    connection.admitted):
                if key is not None:
                    counter[key] -= 1
                    if counter[key] <= 0:
                        del counter[key]
        connection.admitted = (None, None)

    def session_started(self, connection):
        with self._lock:
            self.sessions[connection.session_id] = connection

    def live_sessions(self):
        """A snapshot of the open sessions, safe from any thread."""
        with self._lock:
            return list(self.sessions.values())

    def session_ended(self, connection):
        """Give the console back at once; safe to call more than once."""
        if not connection.lease_held:
            return
        connection.lease_held = False
        session_id = connection.session_id
        with self._lock:
            self.sessions.pop(session_id, None)
        future = self.executor.submit(self.consoleauth_api.release_session,
                                      {}, session_id)
        future.add_done_callback(self._log_release_failure)

    @staticmethod
    def _log_release_failure(future):
        if not future.cancelled() and future.exception() is not None:
            # The lease then expires by itself within its TTL.
            LOG.warning('Releasing a session lease failed: %s',
                        future.exception())

    def disconnect(self, session_ids, code, reason):
        """Close the listed sessions this proxy holds."""
        for session_id in session_ids:
            connection = self.sessions.get(session_id)
            if connection is not None:
                _on_its_loop(connection, connection.close_session, code,
                             reason)

    def recorder(self, connection):
        """A recorder for a new session, or None when not recording."""
        if not self.record_dir:
            return None
        try:
            return recording.SessionRecorder(
                self.record_dir, connection.console['instance_uuid'],
                connection.console['index'], connection.session_id,
                self.record_max_bytes)
        except OSError as exc:
            # A full disk must not cost the user their console.
            LOG.error('Cannot record session %s: %s', connection.session_id,
                      exc)
            return None

    async def _prune_recordings(self):
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(self.executor, recording.prune,
                                       self.record_dir,
                                       self.record_retention)
            await asyncio.sleep(PRUNE_SECONDS)

    async def _sweep_time_limits(self):
        """Close sessions past their idle timeout or their token's life."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            if not self.idle_timeout and not self.enforce_session_timeout:
                continue
            now_mono, now_wall = time.monotonic(), time.time()
            for connection in self.live_sessions():
                if self.enforce_session_timeout and \
                        connection.console['expires_at'] <= now_wall:
                    _on_its_loop(connection, connection.close_session,
                                 proxy_rpcapi.CLOSE_TOKEN_EXPIRED,
                                 'Token expired')
                elif self.idle_timeout and now_mono - \
                        connection.last_activity >= self.idle_timeout:
                    _on_its_loop(connection, connection.close_session,
                                 proxy_rpcapi.CLOSE_IDLE_TIMEOUT,
                                 'Idle timeout')

    async def _renew_leases(self):
        """Renew every lease in one batch, a few times per lease TTL."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lease_ttl / 3.0)
            reports = [{'id': conn.session_id,
                        'bytes_to_guest': conn.bytes_to_guest,
                        'bytes_to_client': conn.bytes_to_client}
                       for conn in self.live_sessions()]
            if not reports:
                continue
            try:
                lost = await loop.run_in_executor(
                    self.executor, self.consoleauth_api.renew_sessions, {},
                    self.proxy_host, reports)
            except Exception as exc:
                LOG.warning('Renewing %d session leases failed: %s',
                            len(reports), exc)
                continue
            # A session whose lease is gone may have a new user already.
            self.disconnect(lost, proxy_rpcapi.CLOSE_LEASE_LOST,
                            'Session ended by the console service')


def _on_its_loop(connection, callback, *args):
    """Run callback on the connection's loop: now if that is this one."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if connection.loop is running:
        callback(*args)
    else:
        connection.loop.call_soon_threadsafe(callback, *args)


class _SharedListener:
    """The listening socket that every session loop accepts from."""

    def __init__(self, sock):
        self.sockets = [sock]

    def is_serving(self):
        return self.sockets[0].fileno() != -1

    def close(self):
        self.sockets[0].close()


class ClientConnection(asyncio.Protocol):
    """The browser (or websocket client) side of one console session."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.metrics = proxy.metrics_for(self.loop)
        self.transport = None
        self.state = 'request'
        self.request_bytes = bytearray()
        self.ws = None
        self.guest = None
        self.console = None
        self.session_id = None
        self.lease_held = False
        self.recorder = None
        self.admitted = (None, None)
        self.client_host = '-'
        self.request_at = None
        self.last_activity = time.monotonic()
        self.client_address = '-'
        self.started_at = None
        self.bytes_to_guest = 0
        self.bytes_to_client = 0
        self.end_reason = 'client closed'
        self._timer = None

    # asyncio callbacks

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info('peername')
        self.tls = transport.get_extra_info('sslcontext') is not None
        if peer:
            self.client_host = peer[0]
            self.client_address = '%s:%s' % (peer[0], peer[1])
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.proxy.opened(self)
        self._timer = self.loop.call_later(
            self.proxy.handshake_timeout, self._handshake_timed_out)

    def data_received(self, data):
        if self.state == 'request':
            self._request_data(data)
        elif self.state in ('open', 'closing'):
            self._client_data(data)

    def eof_received(self):
        if self.state in ('open', 'closing'):
            self.ws.receive_eof()
            self._after_client_input()
        return False

    def connection_lost(self, exc):
        previous, self.state = self.state, 'closed'
        self.proxy.closed(self)
        self._cancel_timer()
        if self.guest is not None:
            self.guest.transport.close()
        if previous in ('open', 'closing'):
            self._log_end()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self.lease_held:
            self.proxy.session_ended(self)

    def pause_writing(self):
        # The client reads slower than the guest writes: stop the guest.
        if self.guest is not None:
            self.guest.transport.pause_reading()

    def resume_writing(self):
        if self.guest is not None:
            self.guest.transport.resume_reading()

    # Handshake

    def _request_data(self, data):
        self.request_bytes += data
        try:
            parsed = handshake.parse_request(bytes(self.request_bytes))
        except handshake.Refusal as refusal:
            self._refuse(refusal)
            return
        if parsed is None:
            return
        request, consumed = parsed
        self.request_at = time.monotonic()
        early = bytes(self.request_bytes[consumed:])
        self.request_bytes = None
        self.state = 'authorizing'
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._open(request, early))

    async def _open(self, request, early):
        try:
            handshake.check_path(request)
            if not request.is_websocket:
                if request.headers.get(CHECK_HEADER) is not None:
                    await self._answer_check(request)
                else:
                    self._answer_page(request)
                return
            handshake.check_origin(request, self.proxy.allowed_origins,
                                   self.tls)
            handshake.check_websocket_headers(request)
            self.proxy.admit(self, request.token)
            console = await self.proxy.authorize(request.token,
                                                 self.client_address)
            self.console = console
            self.session_id = console['session_id']
            self.lease_held = True
            if self.state == 'closed':
                self.proxy.session_ended(self)
                return
            history = await self.proxy.recent_output(console)
            loop = asyncio.get_running_loop()
            try:
                _, guest = await loop.create_connection(
                    lambda: GuestConnection(self), console['host'],
                    console['port'])
            except OSError as exc:
                LOG.warning('Cannot reach the serial port of instance %s '
                            'at %s:%s: %s', console['instance_uuid'],
                            console['host'], console['port'], exc)
                raise handshake.Refusal(503, 'Console unreachable')
        except handshake.Refusal as refusal:
            self._refuse(refusal)
            return
        except Exception:
            LOG.exception('Unexpected error setting up a console session '
                          'for client %s', self.client_address)
            self._refuse(handshake.Refusal(500, 'Internal error'))
            return
        if self.state == 'closed':
            guest.transport.close()
            return
        self._cancel_timer()
        self.guest = guest
        self.ws = websocket.ServerWebSocket()
        self.ws.accept_request(request.headers)
        self.state = 'open'
        self.started_at = time.monotonic()
        self.metrics.session_set_up(self.started_at - self.request_at)
        self.proxy.session_started(self)
        self.recorder = self.proxy.recorder(self)
        LOG.info('Console session %s started: instance %s index %d '
                 'client %s', self.session_id, console['instance_uuid'],
                 console['index'], self.client_address)
        if history:
            self.ws.send_binary(history)
        self._flush_to_client()
        self.transport.resume_reading()
        if early:
            self._client_data(early)

    async def _answer_check(self, request):
        """Tell a page why its upgrade would fail, without opening."""
        handshake.check_origin(request, self.proxy.allowed_origins,
                               self.tls)
        await self.proxy.authorize(request.token, self.client_address,
                                   lease=False)
        if self.state != 'closed':
            self._answer(handshake.response(200, 'ok'))

    def _answer(self, raw):
        self.state = 'refused'
        self.transport.write(raw)
        self.transport.close()

    def _answer_page(self, request):
        self._answer(self.proxy.static.response(request))

    def _refuse(self, refusal):
        if self.lease_held:
            self.proxy.session_ended(self)
        if self.state == 'closed':
            return
        LOG.info('Refused console connection from %s: %d %s',
                 self.client_address, refusal.status, refusal.reason)
        self.metrics.refused(refusal.status, refusal.reason)
        self._answer(handshake.response(refusal.status, refusal.reason))

    def _handshake_timed_out(self):
        self._timer = None
        if self.state in ('request', 'authorizing'):
            self._refuse(handshake.Refusal(400, 'Request not received in '
                                                'time'))

    # Bytes both ways

    def _client_data(self, data):
        for message in self.ws.receive(data):
            if message and self.state == 'open':
                self.last_activity = time.monotonic()
                self.bytes_to_guest += len(message)
                self.metrics.bytes_to_guest += len(message)
                self.guest.transport.write(message)
        self._after_client_input()

    def _after_client_input(self):
        self._flush_to_client()
        if self.ws.is_closed:
            if self.state == 'open':
                self.end_reason = 'client closed (%s)' % self.ws.close_code
            self.transport.close()

    def guest_data(self, data):
        if self.state != 'open':
            return
        self.last_activity = time.monotonic()
        self.bytes_to_client += len(data)
        self.metrics.bytes_to_client += len(data)
        if self.recorder is not None:
            self.recorder.output(data)
        self.ws.send_binary(data)
        self._flush_to_client()

    def guest_closed(self):
        if self.state == 'open':
            self.close_session(websocket.CLOSE_NORMAL,
                               'The console connection closed')

    def _flush_to_client(self):
        data = self.ws.take_outbound()
        if data:
            self.transport.write(data)

    def close_session(self, code, reason):
        """End an open session with a close code and reason the page shows."""
        if self.state != 'open':
            if self.state in ('request', 'authorizing'):
                self.transport.close()
            return
        self.state = 'closing'
        self.end_reason = reason
        self.ws.close_with(code, reason)
        self._flush_to_client()
        if self.guest is not None:
            self.guest.transport.close()
        # Free the console now, not when the client answers our close.
        self.proxy.session_ended(self)
        self._timer = asyncio.get_running_loop().call_later(
            CLOSE_GRACE_SECONDS, self.transport.close)

    def abort(self):
        """Drop both sockets now, without a closing handshake."""
        if self.guest is not None:
            self.guest.transport.abort()
        self.transport.abort()

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _log_end(self):
        LOG.info('Console session %s ended: instance %s index %d client %s '
                 'bytes_to_guest %d bytes_to_client %d duration %.1fs '
                 'reason: %s', self.session_id, self.console['instance_uuid'],
                 self.console['index'], self.client_address,
                 self.bytes_to_guest, self.bytes_to_client,
                 time.monotonic() - self.started_at, self.end_reason)


class GuestConnection(asyncio.Protocol):
    """The TCP connection to a guest's serial port for one session."""

    def __init__(self, client):
        self.client = client
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)

    def data_received(self, data):
        self.client.guest_data(data)

    def connection_lost(self, exc):
        self.client.guest_closed()

    def pause_writing(self):
        # The guest reads slower than the client types or pastes.
        self.client.transport.pause_reading()

    def resume_writing(self):
        self.client.transport.resume_reading()
