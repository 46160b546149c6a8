"""The proxy's SSH front door: serial consoles for plain ssh clients.

A user pushes a public key through the API, then connects as
``<server uuid>.port<N>``. Public key authentication only: the key must
be a live one-time key for that server and port (consoleauth says), and
signing in uses it up. A connection is admitted as a websocket one is
(per address, from accept on), gets one console channel, and is closed
when signed in without one for [ssh] console_grace; failed sign-ins are
counted per address across the workers (sign_in_failures). The
session then takes the console's lease as a websocket session does, so
one writer per console holds whichever way users come, connects to the
guest's port, sends the replay of recent output, and relays bytes.

A session takes part in the proxy like a websocket connection: it is in
proxy.sessions (lease renewal, force-disconnect orders) and in
proxy.connections (time limits, shutdown), counted in the metrics and
recorded. Every refusal and close says why on stderr and ends with a
non-zero exit status.

SysRq (a break, ssh's ~B, then a key) is sent only when the session's
console carries the 'sysrq' mode: the API checked the SysRq policy for
the user who pushed the key, as it does for a console URL, and
consoleauth carried the answer from the key to the lease. The proxy has
no policy of its own.

A session the user ends (the end of their input) answers with its exit
status only once consoleauth has its lease back, or after close_grace:
an ssh client that reconnects as soon as the first one returned finds
the console free, as a websocket client does after its close.
"""

import asyncio
import dataclasses
import time

import asyncssh
from oslo_log import log as logging

from serialproxy import exception
from serialproxy import notifications
from serialproxy.policies import serial_console_keys as key_policies
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import page_commands
from serialproxy.proxy import proxied_listener
from serialproxy.proxy import refusals
from serialproxy.proxy import sign_in_failures
from serialproxy.ssh import keys as ssh_keys
from serialproxy import sysrq

LOG = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# Past this many bytes waiting for the guest, the client's channel stops
# being read; past it waiting for the client, the guest's socket does.
WRITE_BUFFER_HIGH = 64 * 1024
# Exit statuses the ssh client returns: refused before the console
# opened, ended by the proxy or the console service, the guest gone.
# Seconds after a break (ssh's ~B) in which the next key is SysRq.
SYSRQ_WINDOW = 5
EXIT_REFUSED = 1
EXIT_CLOSED = 2
EXIT_GUEST_GONE = 3
CONSOLE_USER_HELP = ('Connect as <server id>.port<N>, with a key pushed '
                     'through the API (POST /v2.1/servers/{id}/'
                     'serial-console/ssh-keys).')
# A key opens one session: a user past [console] max_session_age needs
# the API again, which checks their roles again.
MAX_AGE_REASON = ('The session reached the longest a console session may '
                  'last: push a new key to connect again')
ONE_CHANNEL_ONLY = ('One console channel per connection: connect again '
                    'with a new key for another.')
NO_CONSOLE = 'No console channel opened: closing the connection.'
# Seconds a connection refused at accept may take to reach its sign-in,
# where it is told why.
REFUSED_LINGER = 5
SYSRQ_NOT_ALLOWED = ('SysRq is not allowed for you on this server (policy '
                     '%s)' % key_policies.SYSRQ)


@dataclasses.dataclass
class SSHSessionState:
    """What the proxy reads of a session (see server.ClientConnection)."""
    session_id: str = None
    console: dict = None
    bytes_to_guest: int = 0
    bytes_to_client: int = 0
    is_open: bool = False
    started_at: float = 0.0


def stop_reading_a_client_that_does_not_read(conn):
    """Stop reading an SSH client while more than WRITE_BUFFER_HIGH
    waits to be sent to it.

    asyncssh answers a client's requests (keepalives, a channel's
    requests) on its transport and ignores the transport's pause_writing:
    a client that never reads and keeps asking would have the answers
    queued without limit. asyncssh keeps the transport to itself
    (_transport) and never pauses its reading, so the transport's limit
    is taken over here.
    """
    transport = getattr(conn, '_transport', None)
    if transport is None:
        LOG.warning('SSH connection without a transport to bound: what '
                    'waits for a client that does not read is unbounded')
        return
    transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
    conn.pause_writing = transport.pause_reading
    conn.resume_writing = transport.resume_reading


class ConsoleSSHServer(asyncssh.SSHServer):
    """One SSH connection: sign-in with a one-time key, then one console.

    Admitted as a websocket connection is: counted against [console]
    max_sessions_per_address (and the process's capacity) from accept
    to close, signing in included; failed sign-ins are counted per
    address across the workers (sign_in_failures). Signing in uses the
    key up. The connection then gets one console channel: a second is
    refused, and a signed-in connection without a console (never opened,
    or ended) is closed after [ssh] console_grace.
    """

    def __init__(self, front_door):
        self.front_door = front_door
        self.proxy = front_door.proxy
        self.conn = None
        self.client_host = '-'
        self.client_address = '-'
        self.console_wanted = None
        self.fingerprint = None
        self.sign_in = None
        self.sign_in_error = None
        # The address counted against the per-address cap (arrive) and
        # the ticket for the process's capacity (admit).
        self.counted = None
        self.ticket = None
        # Why the connection was refused at accept (admission), if it was.
        self.refusal = None
        self.console_channel = None
        self._banner_sent = False
        self._grace_timer = None
        self._lost = False

    def connection_made(self, conn):
        self.conn = conn
        stop_reading_a_client_that_does_not_read(conn)
        peer = conn.get_extra_info('peername')
        if peer:
            self.client_host = peer[0]
            self.client_address = '%s:%s' % (peer[0], peer[1])
            # The client a trusted load balancer named (PROXY protocol).
            source = self.front_door.forwarded.pop(tuple(peer[:2]), None)
            if source is not None:
                self.client_host = source.host
                self.client_address = '%s:%s' % (source.host, source.port)
        admission = self.proxy.admission
        try:
            self.counted = admission.arrive(self.client_host)
            self.ticket = admission.admit(None)
        except refusals.Refusal as refusal:
            LOG.info('Refused SSH connection from %s: %d %s',
                     self.client_address, refusal.status, refusal.reason)
            self.front_door.refused(refusal.kind, refusal.status)
            self.refusal = refusal
            # Told when the client asks to sign in: a disconnect sent
            # before the key exchange is lost to a client still sending
            # its own. One that never gets there goes after
            # REFUSED_LINGER all the same.
            self._grace_timer = asyncio.get_running_loop().call_later(
                REFUSED_LINGER, self._disconnect_refused)

    def _disconnect_refused(self):
        self._cancel_grace()
        if not self._lost:
            self.conn.disconnect(asyncssh.DISC_TOO_MANY_CONNECTIONS,
                                 self.refusal.reason)

    def connection_lost(self, exc):
        self._lost = True
        self._cancel_grace()
        self.proxy.admission.leave(self.counted)
        self.proxy.admission.discharge(self.ticket)
        self.counted = self.ticket = None

    def _tell(self, message):
        """A message the client prints before authentication fails (an
        SSH banner); one per connection."""
        if not self._banner_sent:
            self._banner_sent = True
            self.conn.send_auth_banner('serialproxy: %s\r\n' % message)

    def begin_auth(self, username):
        if self.refusal is not None:
            self._disconnect_refused()
            return True
        self.console_wanted = ssh_keys.parse_console_user(username)
        if self.front_door.failures.blocked(self.client_host):
            self._tell('Too many failed sign-ins from %s: try again in a '
                       'minute.' % self.client_host)
        elif self.console_wanted is None:
            self._tell('No such console user. ' + CONSOLE_USER_HELP)
        return True

    def password_auth_supported(self):
        return False

    def kbdint_auth_supported(self):
        return False

    def public_key_auth_supported(self):
        return True

    async def validate_public_key(self, username, key):
        if self.refusal is not None:
            return False
        failures = self.front_door.failures
        if failures.blocked(self.client_host):
            self.front_door.refused('rate_limited')
            return False
        if self.console_wanted is None:
            failures.failed(self.client_host)
            return False
        instance_uuid, index = self.console_wanted
        fingerprint = ssh_keys.fingerprint_of(key)
        try:
            # Called before the client's signature is checked (and for
            # a client's query without one): the key is only looked at
            # here, and used up once the sign-in succeeded.
            valid = await self.front_door.call(
                self.proxy.consoleauth_api.check_ssh_key,
                {}, instance_uuid, index, fingerprint)
        except Exception as exc:
            LOG.warning('Cannot check an SSH key for %s: %s',
                        self.client_address, type(exc).__name__)
            self._tell('Console service unavailable; try again later.')
            return False
        if valid:
            self.fingerprint = fingerprint
            return True
        failures.failed(self.client_host)
        self._tell('No live one-time key for console port %d of server '
                   '%s matches the key offered: push a public key through '
                   'the API, and use it within %d seconds.' % (
                       index, instance_uuid, self.front_door.key_ttl))
        return False

    def auth_completed(self):
        self.sign_in = asyncio.get_running_loop().create_task(
            self._use_key_up())
        self._start_grace()

    async def _use_key_up(self):
        """The sign-in, which uses the key up: one per key; None when
        refused (sign_in_error says why). A connection that loses it
        (another signed in with the key first) is closed with the
        reason; its console channel, if any, gives it."""
        instance_uuid, index = self.console_wanted
        try:
            return await self.front_door.call(
                self.proxy.consoleauth_api.sign_in_ssh_key,
                {}, instance_uuid, index, self.fingerprint)
        except Exception as exc:
            if isinstance(exc, exception.SSHKeyRefused):
                self.front_door.failures.failed(self.client_host)
                LOG.info('Refused the sign-in of %s: its key is no '
                         'longer live (used up by another sign-in, or '
                         'expired)', self.client_address)
            else:
                LOG.warning('Cannot sign %s in: %s', self.client_address,
                            type(exc).__name__)
            self.sign_in_error = exc
            if self.console_channel is None and not self._lost:
                self.conn.disconnect(
                    asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                    exc.message if isinstance(exc, exception.SSHKeyRefused)
                    else refusals.from_error(exc,
                                             self.client_address).reason)
            return None

    def session_requested(self):
        if self.console_channel is not None:
            LOG.info('Refused a second console channel on the SSH '
                     'connection of %s', self.client_address)
            self.front_door.refused('rate_limited', 429)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                ONE_CHANNEL_ONLY)
        self._cancel_grace()
        self.console_channel = ConsoleSSHSession(self)
        return self.console_channel

    def console_closed(self):
        """The connection's console channel closed: the connection has
        none left to give, and goes after the grace (its client
        normally leaves first)."""
        self._start_grace()

    # The grace of a connection without a console ----------------------

    def _start_grace(self):
        self._cancel_grace()
        if self._lost:
            return
        self._grace_timer = asyncio.get_running_loop().call_later(
            self.front_door.console_grace, self._grace_over)

    def _cancel_grace(self):
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def _grace_over(self):
        self._grace_timer = None
        LOG.info('Closed the SSH connection of %s: no console channel '
                 'within %ss', self.client_address,
                 self.front_door.console_grace)
        self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, NO_CONSOLE)


class ConsoleSSHSession(asyncssh.SSHServerSession):
    """One console over one SSH session channel."""

    def __init__(self, server, clock=time.monotonic):
        # The time limits' clock (the websocket session's is injected
        # likewise).
        self.clock = clock
        self.server = server
        self.front_door = server.front_door
        self.proxy = server.front_door.proxy
        self.chan = None
        self.session = SSHSessionState()
        self.term_size = None
        self.guest_reader = None
        self.guest_writer = None
        self.recorder = None
        self.requested_at = None
        self._last_activity = self.clock()
        self._closed = False
        self._counted = False
        self._relay = None
        # What the user typed before the guest connection was made, and
        # whether their input ended meanwhile.
        self._early_input = []
        self._early_bytes = 0
        self._early_eof = False
        # When the user's last break came (monotonic), while its SysRq
        # key is awaited.
        self._sysrq_armed_at = None
        # The exit status held until the lease is back (_exit_released).
        self._held_exit = None

    # Channel requests: a pty and a shell, nothing else -----------------

    def connection_made(self, chan):
        self.chan = chan
        # Counted as a connection: time limits, shutdown, and the
        # descriptors the proxy has room for.
        self.proxy.opened(self)
        self._counted = True

    def pty_requested(self, term_type, term_size, term_modes):
        self.term_size = term_size
        return True

    def shell_requested(self):
        return True

    def exec_requested(self, command):
        return self._refuse_request('a command')

    def subsystem_requested(self, subsystem):
        return self._refuse_request('subsystem %r' % subsystem[:40])

    def _note(self, data):
        """A message on stderr answering what the client did; none to a
        client that stopped reading, whose breaks and requests (a few
        bytes each) must not fill our memory with answers."""
        if not self._closed and \
                self.chan.get_write_buffer_size() <= WRITE_BUFFER_HIGH:
            self.chan.write_stderr(data)

    def _refuse_request(self, what):
        self._note(
            ('serialproxy: %s is not served: this is a serial console; '
             'connect without one.\r\n' % what).encode())
        return False

    def break_received(self, msec):
        """An RFC 4335 break (ssh's ~B): as on a real serial line, the key
        typed next, within SYSRQ_WINDOW seconds, is sent to the guest as
        Alt+SysRq+key (the kernel's serial console reads break+key the
        same way; a TCP chardev cannot carry a break)."""
        if not self.session.is_open:
            self._note(
                b'\r\nserialproxy: a break needs an open console.\r\n')
            return False
        # Armed even when SysRq is not allowed: the key meant for it is
        # then dropped, not typed into the guest.
        self._sysrq_armed_at = self.clock()
        if not self._sysrq_allowed():
            self._note(
                ('\r\nserialproxy: break: %s; the next key is dropped'
                 '\r\n' % SYSRQ_NOT_ALLOWED).encode())
            return True
        self._note(
            ('\r\nserialproxy: break: type a SysRq key within %d s '
             '(h: help)\r\n' % SYSRQ_WINDOW).encode())
        return True

    def _take_sysrq_key(self, data):
        """data less the key that follows a break, which is sent as
        SysRq instead of typed."""
        armed_at = self._sysrq_armed_at
        if armed_at is None or self.clock() - armed_at > SYSRQ_WINDOW:
            self._sysrq_armed_at = None
            return data
        # ssh sends the line end that began its escape after the break.
        line_ends = len(data) - len(data.lstrip(b'\r\n'))
        if line_ends == len(data):
            return data
        self._sysrq_armed_at = None
        return data[:line_ends] + self._sysrq_key(data[line_ends:])

    def _sysrq_allowed(self):
        """Whether the session's console carries the 'sysrq' mode (the
        API's policy allowed it to the key's pusher)."""
        modes = (self.session.console or {}).get('modes')
        return page_commands.SYSRQ in page_commands.permissions_of(modes)

    def _sysrq_key(self, data):
        """data less its first key, sent as SysRq if it is one and the
        session may send SysRq."""
        key = data[:1].lower().decode('ascii', 'replace')
        if not self._sysrq_allowed():
            self._note(('\r\nserialproxy: SysRq %r not sent: %s\r\n'
                        % (key, SYSRQ_NOT_ALLOWED)).encode())
            return data[1:]
        if key not in sysrq.KEYS:
            self._note(
                ('\r\nserialproxy: %r is not a SysRq key (%s); break '
                 'ignored\r\n' % (key, sysrq.KEYS)).encode())
            return data[1:]
        asyncio.get_running_loop().create_task(self._send_sysrq(key))
        return data[1:]

    async def _send_sysrq(self, key):
        try:
            await self.proxy.send_sysrq(self.session.console, key)
        except Exception as exc:
            message = 'SysRq %s not sent: %s' % (
                key, str(exc) or type(exc).__name__)
        else:
            message = 'SysRq %s sent' % key
            # Audited as the REST call and the console page's menu are.
            self._notify(notifications.SYSRQ_SENT, sysrq_key=key)
        if not self._closed:
            self._note(
                ('\r\nserialproxy: %s\r\n' % message).encode())

    def terminal_size_changed(self, width, height, pixwidth, pixheight):
        self.term_size = (width, height, pixwidth, pixheight)

    def session_started(self):
        self.requested_at = self.clock()
        self._relay = asyncio.get_running_loop().create_task(self._open())

    # Opening the console -----------------------------------------------

    async def _open(self):
        instance_uuid, index = self.server.console_wanted
        try:
            sign_in = await asyncio.shield(self.server.sign_in)
            if sign_in is None:
                raise self.server.sign_in_error
            console = await self.front_door.call(
                self.proxy.consoleauth_api.acquire_session_by_ssh_sign_in,
                {}, self.proxy.settings.proxy_host, sign_in,
                self.server.client_address)
        except Exception as exc:
            self._refused(exc)
            return
        self.session.console = console
        self.session.session_id = console['session_id']
        if self._closed:
            self.proxy.release_lease(console['session_id'])
            return
        try:
            history, (reader, writer) = await asyncio.gather(
                self.proxy.recent_output(console),
                asyncio.open_connection(console['host'], console['port']))
        except Exception as exc:
            self.proxy.release_lease(console['session_id'])
            if isinstance(exc, OSError):
                LOG.warning('Cannot reach the serial port of instance %s '
                            'at %s:%s: %s', instance_uuid, console['host'],
                            console['port'], exc)
            self._refused(exc)
            return
        self.guest_reader, self.guest_writer = reader, writer
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        if self._closed:
            writer.close()
            self.proxy.release_lease(console['session_id'])
            return
        self._started()
        hint = ''
        if self.term_size and all(self.term_size[:2]):
            cols, rows = self.term_size[:2]
            hint = (' A serial line cannot pass on the terminal size: run '
                    '"stty rows %d cols %d" in the guest to match.'
                    % (rows, cols))
        self.chan.write_stderr((
            'serialproxy: connected to console port %d of server %s.%s'
            '\r\n' % (index, instance_uuid, hint)).encode())
        if history:
            self._to_client(history)
        early, self._early_input = self._early_input, None
        for data in early:
            self._to_guest(data)
        if self._early_eof:
            self._end('client closed', 0, after_release=True)
            return
        await self._relay_guest()

    def _refused(self, exc):
        if isinstance(exc, exception.SSHKeyRefused):
            refusal = refusals.Refusal(401, exc.message, 'invalid_token')
        else:
            refusal = refusals.from_error(exc, self.server.client_address)
        LOG.info('Refused SSH console session from %s: %d %s',
                 self.server.client_address, refusal.status, refusal.reason)
        self._notify(notifications.SESSION_REFUSED,
                     reason='%d %s' % (refusal.status, refusal.reason))
        self.front_door.refused(refusal.kind, refusal.status)
        self._exit(refusal.reason, EXIT_REFUSED)

    def _started(self):
        session = self.session
        session.is_open = True
        session.started_at = self.clock()
        self.proxy.sessions[session.session_id] = self
        self.proxy.metrics.session_opened(
            self.clock() - self.requested_at)
        self.proxy.metrics.ssh_session_opened()
        self.recorder = self.proxy.recorder(session.console,
                                            session.session_id)
        self._notify(notifications.SESSION_STARTED)
        LOG.info('Console session %s started over SSH: instance %s index '
                 '%d client %s', session.session_id,
                 session.console['instance_uuid'], session.console['index'],
                 self.server.client_address)

    # Relaying ------------------------------------------------------------

    async def _relay_guest(self):
        try:
            while True:
                data = await self.guest_reader.read(READ_CHUNK)
                if not data:
                    break
                if self.recorder is not None:
                    self.recorder.output(data)
                self._to_client(data)
                if self.chan.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                    await self._client_drained()
        except (OSError, asyncio.CancelledError):
            if self._closed:
                return
        self.close_session(
            CloseCode.CONSOLE_GONE,
            'The console went away: the server stopped or was deleted',
            status=EXIT_GUEST_GONE)

    async def _client_drained(self):
        while (not self._closed and
               self.chan.get_write_buffer_size() > WRITE_BUFFER_HIGH):
            await asyncio.sleep(0.01)

    def _to_client(self, data):
        self._last_activity = self.clock()
        self.session.bytes_to_client += len(data)
        self.proxy.bytes_to_client += len(data)
        self.chan.write(data)

    def data_received(self, data, datatype):
        if self._closed:
            return
        if not self.session.is_open:
            # Kept, bounded, until the console opens (typed ahead).
            if self._early_input is not None and \
                    self._early_bytes + len(data) <= WRITE_BUFFER_HIGH:
                self._early_input.append(data)
                self._early_bytes += len(data)
            return
        data = self._take_sysrq_key(data)
        if data:
            self._to_guest(data)

    def _to_guest(self, data):
        self._last_activity = self.clock()
        self.session.bytes_to_guest += len(data)
        self.proxy.bytes_to_guest += len(data)
        self.guest_writer.write(data)
        if self.guest_writer.transport.get_write_buffer_size() > \
                WRITE_BUFFER_HIGH:
            self.chan.pause_reading()
            asyncio.get_running_loop().create_task(self._guest_drained())

    async def _guest_drained(self):
        try:
            await self.guest_writer.drain()
        except OSError:
            return
        if not self._closed:
            self.chan.resume_reading()

    def eof_received(self):
        # The user's input ended. Before the console opened, the answer
        # (the console, or why not) is still due.
        if not self.session.is_open and self._early_input is not None:
            self._early_eof = True
            return True
        self._end('client closed', 0, after_release=True)
        # Half open: the exit status closes the channel, once sent.
        return True

    def connection_lost(self, exc):
        self._end('connection lost', None)
        self.server.console_closed()

    # What the proxy asks of every session ----------------------------------

    def close_session(self, code, reason, status=EXIT_CLOSED):
        """End the session, telling the user why (force-disconnect,
        idle, lease lost, proxy shutdown)."""
        self._end(reason, status, code)

    def tick(self):
        """The time limits of [console]: max_session_age, idle_timeout,
        and with enforce_session_timeout the one-time key's expiry, as
        they end a websocket session."""
        if not self.session.is_open:
            return
        limits = self.proxy.settings.session
        if limits.max_session_age and \
                self.clock() - self.session.started_at >= \
                limits.max_session_age:
            self.close_session(CloseCode.SESSION_MAX_AGE, MAX_AGE_REASON)
        elif limits.enforce_session_timeout and \
                time.time() >= self.session.console['expires_at']:
            self.close_session(CloseCode.TOKEN_EXPIRED,
                               'The one-time key of this session expired')
        elif limits.idle_timeout and \
                self.clock() - self._last_activity >= \
                limits.idle_timeout:
            self.close_session(CloseCode.IDLE_TIMEOUT, 'Idle timeout')

    def abort(self):
        if self.guest_writer is not None:
            self.guest_writer.transport.abort()
        if self.chan is not None:
            self.chan.abort()

    def _end(self, reason, status, code=None, after_release=False):
        """End the session; the user gets status (None: they are gone).

        after_release: the user ended it, and their client returns when
        the exit status comes; it comes once consoleauth has the lease
        back (or after close_grace), so that the client's next session
        finds the console free.
        """
        if self._closed:
            return
        self._closed = True
        self._uncount()
        session = self.session
        released = None
        if self.guest_writer is not None:
            self.guest_writer.close()
        if session.is_open:
            session.is_open = False
            self.proxy.sessions.pop(session.session_id, None)
            self.proxy.metrics.session_closed()
            released = self.proxy.release_lease(session.session_id)
            if self.recorder is not None:
                self.recorder.close()
                self.recorder = None
            self._notify(notifications.SESSION_ENDED,
                         bytes_to_guest=session.bytes_to_guest,
                         bytes_to_client=session.bytes_to_client,
                         duration=round(
                             self.clock() - session.started_at, 3),
                         reason=reason)
            LOG.info('Console session %s over SSH ended: instance %s index '
                     '%d client %s bytes_to_guest %d bytes_to_client %d '
                     'duration %.1fs reason: %s', session.session_id,
                     session.console['instance_uuid'],
                     session.console['index'], self.server.client_address,
                     session.bytes_to_guest, session.bytes_to_client,
                     self.clock() - session.started_at, reason)
        if status is None:
            return
        if after_release and released is not None:
            self._held_exit = asyncio.get_running_loop().create_task(
                self._exit_released(released, status))
        else:
            self._exit(reason if status else None, status)

    async def _exit_released(self, released, status):
        """Exit with status once the release is answered (a failed one
        included: it is logged where it is made) or close_grace passed."""
        await asyncio.wait(
            [released], timeout=self.proxy.settings.session.close_grace)
        self._exit(None, status)

    def _notify(self, event_type, **fields):
        notifications.emit_console_event(
            event_type, self.session.console, self.session.session_id,
            self.server.client_address, self.proxy.settings.proxy_host,
            **fields)

    def _uncount(self):
        if self._counted:
            self._counted = False
            self.proxy.closed(self)

    def _exit(self, message, status):
        self._closed = True
        self._uncount()
        try:
            if message:
                self.chan.write_stderr(
                    ('\r\nserialproxy: %s\r\n' % message).encode())
            self.chan.exit(status)
        except (OSError, asyncssh.Error, BrokenPipeError):
            pass


class SSHFrontDoor:
    """The SSH listener of one proxy process."""

    def __init__(self, proxy, host_key_paths, key_ttl, max_auth_failures,
                 login_timeout=30, console_grace=10, failures=None):
        """failures: a sign_in_failures.SignInFailures the workers
        share, made before they forked; this process's own if None."""
        self.proxy = proxy
        self.host_key_paths = host_key_paths
        self.key_ttl = key_ttl
        if failures is None:
            failures = sign_in_failures.SignInFailures(max_auth_failures)
        self.failures = failures
        self.login_timeout = login_timeout
        self.console_grace = console_grace
        self.listener = None
        self.options = None
        # (balancer host, port) of a connection -> the client its PROXY
        # header named, until the connection's server object takes it.
        self.forwarded = {}
        self._connections = set()

    async def call(self, fn, *args):
        """A blocking RPC call on the proxy's RPC pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self.proxy.executor, fn, *args)

    def refused(self, kind, status=429):
        self.proxy.metrics.refused(status, kind)

    @property
    def bound_port(self):
        return self.listener.sockets[0].getsockname()[1]

    async def start(self, host, port):
        self.options = await asyncssh.SSHServerConnectionOptions.construct(
            server_factory=lambda: ConsoleSSHServer(self),
            server_host_keys=self.host_key_paths,
            encoding=None, line_editor=False, allow_pty=True,
            x11_forwarding=False, agent_forwarding=False,
            login_timeout=self.login_timeout)
        # Not asyncssh.listen(): a trusted load balancer's PROXY header
        # must be read before asyncssh reads the connection.
        self.listener = proxied_listener.ProxiedListener(
            self._accepted, self.proxy.settings.session.trusted_proxies,
            header_timeout=self.login_timeout)
        await self.listener.start(host, port)
        LOG.info('SSH console server listening on %s:%s', host,
                 self.bound_port)

    def _accepted(self, sock, source):
        if source is not None:
            self.forwarded[tuple(sock.getpeername()[:2])] = source
        task = asyncio.get_running_loop().create_task(self._serve(sock))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, sock):
        try:
            peer = tuple(sock.getpeername()[:2])
        except OSError:
            sock.close()
            return
        try:
            await asyncssh.run_server(sock, options=self.options)
        except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
            # A client that left or failed to sign in: said to it, and
            # logged by the server object, already.
            LOG.debug('SSH connection from %s ended before its session: '
                      '%s', peer[0], exc)
        finally:
            self.forwarded.pop(peer, None)

    def close(self):
        """Stop accepting; the sessions end with the proxy's."""
        if self.listener is not None:
            self.listener.close()
