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

A user whose name ends with .view (``<server uuid>.port<N>.view``)
watches instead: a spectator's seat beside the console's writer, on
whichever proxy and door the writer came, its keys reaching nothing. A
key pushed by a user who may only watch signs in only so.

Every rule of a console session is the SSH front end's
(ssh_session.SSHConsoleSession, on the same core as the websocket one);
the session layer here only feeds it and carries out its actions. It
takes part in the proxy like a websocket connection: it is in the
proxy's sessions (lease renewal, force-disconnect, take-over) and
connections (time limits, shutdown), serves spectators through its
relay, is counted in the metrics and recorded. It reaches the proxy
only through ConsoleProxy's methods for its connections.
"""

import asyncio
import time

import asyncssh
from oslo_log import log as logging

from serialproxy import exception
from serialproxy import notifications
from serialproxy.policies import console_modes as mode_policies
from serialproxy.proxy import connections
from serialproxy.proxy import console_core
from serialproxy.proxy import console_layer
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy import proxied_listener
from serialproxy.proxy import refusals
from serialproxy.proxy import relay
from serialproxy.proxy import seam
from serialproxy.proxy import sign_in_failures
from serialproxy.proxy import ssh_session
from serialproxy.ssh import keys as ssh_keys

LOG = logging.getLogger(__name__)

# Past this many bytes waiting for the client, the session is told
# (and stops reading the guest); the guest's socket has its own limit
# (server.WRITE_BUFFER_HIGH).
WRITE_BUFFER_HIGH = 64 * 1024
CONSOLE_USER_HELP = ('Connect as <server id>.port<N> (or .port<N>.view to '
                     'watch; .replay-lines=N after either shows the last '
                     'N lines first, .resume=<offset> the output from a '
                     'byte offset), with a key pushed through the API '
                     '(POST /v2.1/servers/{id}/serial-console/ssh-keys).')
ONE_CHANNEL_ONLY = ('One console channel per connection: connect again '
                    'with a new key for another.')
NO_CONSOLE = 'No console channel opened: closing the connection.'
# Seconds a connection refused at accept may take to reach its sign-in,
# where it is told why.
REFUSED_LINGER = 5
WATCH_ONLY_KEY = 'This key may only watch the console: connect as %s'
WATCHING_NOT_ALLOWED = ('Watching is not allowed for you on this server '
                        '(policy %s)' % mode_policies.VIEW)
NOTHING_TO_WATCH = ('Nobody is using this console: there is nothing to '
                    'watch; connect without .view')


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
        self.services = front_door.services
        self.conn = None
        self.client_host = '-'
        self.client_address = '-'
        self.console_wanted = None
        # What the user name asks for after its port
        # (ssh_keys.console_user_options): to watch, replay-lines=N,
        # resume=N.
        self.user_options = {}
        # seam.StreamRequest of the user name's resume=N, or None.
        self.stream = None
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
        admission = self.services.admission
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
        self.services.admission.leave(self.counted)
        self.services.admission.discharge(self.ticket)
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
        bad_user = None
        if self.console_wanted is not None:
            try:
                self.user_options = ssh_keys.console_user_options(username)
            except exception.InvalidConsoleUser as exc:
                # Refused as a user name that names no console is, with
                # the reason; the key stays unused.
                self.console_wanted = None
                bad_user = exc.message
        resume = self.user_options.get('resume')
        self.stream = None if resume is None else \
            seam.StreamRequest(resume=resume)
        if self.front_door.failures.blocked(self.client_host):
            self._tell('Too many failed sign-ins from %s: try again in a '
                       'minute.' % self.client_host)
        elif bad_user is not None:
            self._tell('%s. %s' % (bad_user, CONSOLE_USER_HELP))
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
            valid = await self.services.check_ssh_key(
                instance_uuid, index, fingerprint)
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
            return await self.services.sign_in_ssh_key(
                instance_uuid, index, self.fingerprint)
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
        self.console_channel = ConsoleSSHSession(
            self, mode=(console_core.VIEW if self.user_options.get('view')
                        else console_core.WRITE),
            replay_lines=self.user_options.get('replay-lines'),
            stream=self.stream)
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


class ConsoleSSHSession(console_layer.ConsoleLayer,
                        asyncssh.SSHServerSession):
    """The layer of one console channel: it feeds the SSH front end
    (ssh_session.SSHConsoleSession, where every rule of the session is)
    what the channel, the guest and the proxy say, and carries out the
    actions it answers with, as server.ClientConnection does for a
    websocket's. The proxy sees it as one of its connections (session,
    close_session, tick, abort, guest_data, watchers)."""

    def __init__(self, server, mode=console_core.WRITE, replay_lines=None,
                 stream=None):
        self.server = server
        self.services = server.front_door.services
        self.client_address = server.client_address
        settings = self.services.settings
        self.session = ssh_session.SSHConsoleSession(
            settings.session, mode=mode, replay_lines=replay_lines,
            max_replay_lines=settings.max_replay_lines, stream=stream)
        self.chan = None
        self.guest = None
        self.recorder = None
        self.requested_at = None
        # A writer's spectators' relay connections (relay.RelayWatcher);
        # None until the first.
        self.watchers = None
        self._counted = False

    # asyncssh callbacks ----------------------------------------------------

    def connection_made(self, chan):
        self.chan = chan
        # What waits for a client that does not read is bounded: past it
        # the session is told (pause_writing), as a websocket's is.
        chan.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        # Counted as a connection: time limits, shutdown, and the
        # descriptors the proxy has room for.
        self.services.opened(self)
        self._counted = True

    def pty_requested(self, term_type, term_size, term_modes):
        self.session.pty_requested(term_size)
        return True

    def terminal_size_changed(self, width, height, pixwidth, pixheight):
        self.session.terminal_size_changed((width, height, pixwidth,
                                            pixheight))

    def shell_requested(self):
        return True

    def exec_requested(self, command):
        self.carry_out(self.session.command_requested('a command'))
        return False

    def subsystem_requested(self, subsystem):
        self.carry_out(self.session.command_requested(
            'subsystem %r' % subsystem[:40]))
        return False

    def session_started(self):
        self.requested_at = time.monotonic()
        self.carry_out(self.session.shell_requested())

    def data_received(self, data, datatype):
        self.carry_out(self.session.client_data(data))

    def break_received(self, msec):
        accepted = self.session.is_open
        self.carry_out(self.session.break_received())
        return accepted

    def eof_received(self):
        self.carry_out(self.session.client_eof())
        # Half open: the exit status closes the channel, once sent.
        return True

    def pause_writing(self):
        self.carry_out(self.session.client_write_blocked())

    def resume_writing(self):
        self.carry_out(self.session.client_write_unblocked())

    def connection_lost(self, exc):
        self._uncount()
        self.carry_out(self.session.client_lost())
        self.server.console_closed()

    # From the guest, the proxy and the clock -------------------------------

    def abort(self):
        if self.guest is not None:
            self.guest.transport.abort()
        if self.chan is not None:
            self.chan.abort()

    # Carrying out the session's actions ------------------------------------

    def carry_out(self, actions):
        for action in actions:
            match action:
                case console_core.SendToClient(chunks, payload_bytes):
                    self._to_client(self.chan.write, b''.join(chunks))
                    self.services.relayed_to_client(payload_bytes)
                case console_core.SendToGuest(chunks, payload_bytes):
                    self.guest.transport.write(
                        connections.guest_write(chunks))
                    self.services.relayed_to_guest(payload_bytes)
                case ssh_session.SendNote():
                    self._to_client(self.chan.write_stderr, action.data)
                case ssh_session.Exit(status):
                    self._to_client(self.chan.exit, status)
                case console_core.InputDropped(nbytes):
                    self.services.metrics.spectator_input_dropped(nbytes)
                case console_core.PauseReading(side):
                    self._reader(side).pause_reading()
                case console_core.ResumeReading(side):
                    self._reader(side).resume_reading()
                case ssh_session.LeaseConsole(mode, replay_lines):
                    asyncio.get_running_loop().create_task(
                        self._authorize(mode, replay_lines))
                case console_core.Refused(refusal):
                    self._refused(refusal)
                case console_core.RunPageCommand(command):
                    asyncio.get_running_loop().create_task(
                        self._send_sysrq(command))
                case console_core.Started():
                    self._started()
                case console_core.Ended(code, reason):
                    self._ended(code, reason)
                case console_core.ReleaseLease(session_id, then_answer):
                    self.release_lease(session_id, then_answer)
                case console_core.CloseGuest():
                    if self.guest is not None:
                        self.guest.transport.close()
                case console_core.CloseClient():
                    self.chan.close()
                case console_core.SeamJoined():
                    self.seam_joined()
                case console_core.HeldOutput(data):
                    self.guest_data(data)

    def _to_client(self, send, what):
        try:
            send(what)
        except (OSError, asyncssh.Error):
            pass  # the channel is closing: connection_lost follows

    def _reader(self, side):
        if side is console_core.Side.CLIENT:
            return self.chan
        return self.guest.transport

    async def _authorize(self, mode, replay_lines=None):
        session = self.session
        try:
            console = await self._lease(mode)
            self.carry_out(session.leased(console))
            if session.state is not console_core.State.AUTHORIZING:
                return
            # A spectator's "guest" is the writer's relay (relay.py).
            if session.is_spectator:
                address = relay.split_address(
                    console.writer.relay_address)
            else:
                address = console.host, console.port
            if session.stream is not None:
                await self.open_stream(console, address, lambda: (
                    connections.RelayConnection(self)
                    if session.is_spectator
                    else connections.GuestConnection(self)))
                return
            history, (_, guest) = await asyncio.gather(
                self.services.recent_output(console, replay_lines),
                asyncio.get_running_loop().create_connection(
                    lambda: (connections.RelayConnection(self)
                             if session.is_spectator
                             else connections.GuestConnection(self)),
                    *address))
            if session.is_spectator:
                guest.transport.write(relay.preamble(
                    console.writer.relay_key))
        except Exception as exc:
            if isinstance(exc, OSError) and session.console:
                LOG.warning('Cannot reach the serial port of instance %s '
                            'at %s:%s: %s', session.console.instance_uuid,
                            session.console.host,
                            session.console.port, exc)
            self.carry_out(session.refused(self._refusal(exc, mode)))
            return
        self.guest = guest
        self.carry_out(session.guest_connected(history))

    async def _lease(self, mode):
        """The seat of mode, with the sign-in of the connection."""
        sign_in = await asyncio.shield(self.server.sign_in)
        if sign_in is None:
            raise self.server.sign_in_error
        if mode == console_core.VIEW:
            return await self.services.join_by_ssh(
                sign_in, self.client_address)
        return await self.services.lease_by_ssh(sign_in,
                                                self.client_address)

    def _refusal(self, exc, mode):
        """What the user is told of an error while opening the console."""
        if isinstance(exc, exception.SSHKeyRefused):
            return refusals.Refusal(401, exc.message, 'invalid_token')
        if isinstance(exc, exception.ModeNotAllowed):
            instance_uuid, index = self.server.console_wanted
            if mode == console_core.VIEW:
                return refusals.Refusal(403, WATCHING_NOT_ALLOWED, 'mode')
            return refusals.Refusal(403, WATCH_ONLY_KEY % ssh_keys.
                                    console_user(instance_uuid, index,
                                                 watching=True), 'mode')
        if isinstance(exc, exception.ConsoleNotInUse):
            return refusals.Refusal(409, NOTHING_TO_WATCH, 'not_in_use')
        return refusals.from_error(exc, self.client_address)

    def _refused(self, refusal):
        LOG.info('Refused SSH console session from %s: %d %s',
                 self.client_address, refusal.status, refusal.reason)
        self._notify(notifications.SESSION_REFUSED,
                     reason='%d %s' % (refusal.status, refusal.reason))
        self.services.metrics.refused(refusal.status, refusal.kind)

    async def _send_sysrq(self, command):
        session = self.session
        try:
            await self.services.send_sysrq(session.console, command.key)
        except Exception as exc:
            LOG.warning('Console session %s: %s for instance %s not sent: '
                        '%s', session.session_id, command,
                        session.console.instance_uuid,
                        type(exc).__name__)
            self.carry_out(session.page_command_done(
                page_commands.failure_reason(command, exc)))
            return
        # Audited as the REST call and the console page's menu are.
        self._notify(notifications.SYSRQ_SENT, sysrq_key=command.key)
        self.carry_out(session.page_command_done())

    def _started(self):
        session = self.session
        console = session.console
        self.services.started(self, self._relay_key())
        self.services.metrics.session_opened(time.monotonic() -
                                             self.requested_at)
        self.services.metrics.ssh_session_opened()
        if not session.is_spectator:
            self.recorder = self.services.recorder(console,
                                                   session.session_id)
        self._notify(notifications.SESSION_STARTED)
        LOG.info('Console session %s started over SSH: instance %s index '
                 '%d client %s mode %s', session.session_id,
                 console.instance_uuid, console.index,
                 self.client_address, session.mode)

    def _ended(self, code, reason):
        session = self.session
        console = session.console
        self.services.ended(self, self._relay_key())
        # The writer's spectators end with it, as a websocket writer's.
        for watcher in list(self.watchers or ()):
            watcher.end(code, reason)
        self.services.metrics.session_closed()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        duration = time.monotonic() - session.started_at
        self._notify(notifications.SESSION_ENDED,
                     bytes_to_guest=session.bytes_to_guest,
                     bytes_to_client=session.bytes_to_client,
                     duration=round(duration, 3), reason=reason)
        LOG.info('Console session %s over SSH ended: instance %s index '
                 '%d client %s bytes_to_guest %d bytes_to_client %d '
                 'duration %.1fs code %d reason: %s', session.session_id,
                 console.instance_uuid, console.index,
                 self.client_address, session.bytes_to_guest,
                 session.bytes_to_client, duration, code, reason)

    def _notify(self, event_type, **fields):
        notifications.emit_console_event(
            event_type, self.session.console, self.session.session_id,
            self.client_address, self.services.settings.proxy_host,
            mode=self.session.mode, **fields)

    def _uncount(self):
        if self._counted:
            self._counted = False
            self.services.closed(self)


class SSHFrontDoor:
    """The SSH listener of one proxy process."""

    def __init__(self, services, host_key_paths, key_ttl,
                 max_auth_failures, login_timeout=30, console_grace=10,
                 failures=None):
        """services: the proxy's services.ConsoleServices, all the door
        and its sessions ask of the proxy. failures: a
        sign_in_failures.SignInFailures the workers share, made before
        they forked; this process's own if None."""
        self.services = services
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

    def refused(self, kind, status=429):
        self.services.metrics.refused(status, kind)

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
            self._accepted, self.services.settings.session.trusted_proxies,
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
