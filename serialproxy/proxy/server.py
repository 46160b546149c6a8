"""The proxy's event loop: every console session of the process on one loop.

One asyncio loop (epoll, no select() and its 1,024-descriptor ceiling, no
process per connection) carries all sessions. Each session is a pair of
protocols, browser side and guest side, that pause each other's reading
when the other's write buffer fills: backpressure instead of memory growth.
RPC calls are blocking, so connection setup runs them on a bounded pool.
"""

import asyncio
import concurrent.futures
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import exception
from serialproxy.proxy import handshake
from serialproxy.proxy import static_files
from serialproxy.proxy import websocket

LOG = logging.getLogger(__name__)

# Per-direction write buffer bound; past it the other side stops reading.
WRITE_BUFFER_HIGH = 64 * 1024
# How long a client gets to answer our close frame before we hang up.
CLOSE_GRACE_SECONDS = 2.0


class ConsoleProxy:
    """Listens for browsers and websocket clients; owns live sessions."""

    def __init__(self, consoleauth_api, compute_api, allowed_origins=(),
                 handshake_timeout=10, rpc_workers=32, vendor_path=None):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api
        self.allowed_origins = list(allowed_origins)
        self.handshake_timeout = handshake_timeout
        self.executor = concurrent.futures.ThreadPoolExecutor(
            rpc_workers, thread_name_prefix='proxy-rpc')
        self.connections = set()
        self.static = static_files.StaticFiles(vendor_root=vendor_path)
        self.server = None
        self.tls = False

    async def start(self, host, port, ssl_context=None):
        loop = asyncio.get_running_loop()
        self.tls = ssl_context is not None
        self.server = await loop.create_server(
            lambda: ClientConnection(self), host, port, ssl=ssl_context,
            backlog=4096, reuse_address=True)
        LOG.info('Console proxy listening on %s:%s', host, port)
        missing = self.static.missing_vendor_files()
        if missing:
            LOG.warning('The console page cannot work: %s missing; run '
                        '"npm ci" in the source tree or set [console] '
                        'vendor_path', ', '.join(missing))

    @property
    def bound_port(self):
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for connection in list(self.connections):
            connection.close_session(websocket.CLOSE_GOING_AWAY,
                                     'Console proxy shutting down')
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def authorize(self, token):
        """The console a token opens, checked with its owners, or Refusal."""
        if not token:
            raise handshake.Refusal(401, 'Missing token')
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor,
                                          self._authorize_blocking, token)

    def _authorize_blocking(self, token):
        try:
            console = self.consoleauth_api.check_token({}, token)
            if console['console_type'] != 'serial':
                raise handshake.Refusal(401, 'Token is not for a serial '
                                             'console')
            still_there = self.compute_api.validate_console_port(
                {}, console['compute_host'], console['instance_uuid'],
                console['port'], console['index'])
        except exception.InvalidToken:
            raise handshake.Refusal(401, 'Invalid or expired token')
        except messaging.MessagingTimeout:
            raise handshake.Refusal(503, 'Console service unavailable')
        if not still_there:
            raise handshake.Refusal(
                401, 'The console of this token is no longer there')
        return console


class ClientConnection(asyncio.Protocol):
    """The browser (or websocket client) side of one console session."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.transport = None
        self.state = 'request'
        self.request_bytes = bytearray()
        self.ws = None
        self.guest = None
        self.console = None
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
        if peer:
            self.client_address = '%s:%s' % (peer[0], peer[1])
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.proxy.connections.add(self)
        self._timer = asyncio.get_running_loop().call_later(
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
        self.proxy.connections.discard(self)
        self._cancel_timer()
        if self.guest is not None:
            self.guest.transport.close()
        if previous in ('open', 'closing'):
            self._log_end()

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
        early = bytes(self.request_bytes[consumed:])
        self.request_bytes = None
        self.state = 'authorizing'
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._open(request, early))

    async def _open(self, request, early):
        try:
            handshake.check_path(request)
            if not request.is_websocket:
                self._answer_page(request)
                return
            handshake.check_origin(request, self.proxy.allowed_origins,
                                   self.proxy.tls)
            handshake.check_websocket_headers(request)
            console = await self.proxy.authorize(request.token)
            if self.state == 'closed':
                return
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
        self.console = console
        self.guest = guest
        self.ws = websocket.ServerWebSocket()
        self.ws.accept_request(request.headers)
        self.state = 'open'
        self.started_at = time.monotonic()
        LOG.info('Console session started: instance %s index %d client %s',
                 console['instance_uuid'], console['index'],
                 self.client_address)
        self._flush_to_client()
        self.transport.resume_reading()
        if early:
            self._client_data(early)

    def _answer_page(self, request):
        self.state = 'refused'
        self.transport.write(self.proxy.static.response(request))
        self.transport.close()

    def _refuse(self, refusal):
        LOG.info('Refused console connection from %s: %d %s',
                 self.client_address, refusal.status, refusal.reason)
        self.state = 'refused'
        self.transport.write(handshake.response(refusal.status,
                                                refusal.reason))
        self.transport.close()

    def _handshake_timed_out(self):
        self._timer = None
        if self.state in ('request', 'authorizing'):
            self._refuse(handshake.Refusal(400, 'Request not received in '
                                                'time'))

    # Bytes both ways

    def _client_data(self, data):
        for message in self.ws.receive(data):
            if message and self.state == 'open':
                self.bytes_to_guest += len(message)
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
        self.bytes_to_client += len(data)
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
        self._timer = asyncio.get_running_loop().call_later(
            CLOSE_GRACE_SECONDS, self.transport.close)

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _log_end(self):
        LOG.info('Console session ended: instance %s index %d client %s '
                 'bytes_to_guest %d bytes_to_client %d duration %.1fs '
                 'reason: %s', self.console['instance_uuid'],
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
