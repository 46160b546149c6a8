"""What the proxy asks of consoleauth and the compute agents.

Seats (the writer's lease, a spectator's join, a take-over), checks,
releases and renewals of leases; recent output, SysRq and NMI. RPC calls
block, so they run on a bounded pool of threads, and where many sessions
ask at once (new leases, releases, replays of one compute host) the
requests that arrive while calls are under way leave together in the
next call (batching.py). The answers become Console objects here, once.
"""

import asyncio
import base64
import concurrent.futures
import functools

from oslo_log import log as logging

from serialproxy import exception
from serialproxy import rpc
from serialproxy.proxy import batching
from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import console as leased_console
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy.refusals import RefusalKind
from serialproxy.proxy import replay
from serialproxy.proxy.session import TAKE_OVER
from serialproxy.proxy.session import VIEW
from serialproxy.proxy.session import WRITE

LOG = logging.getLogger(__name__)

# Lease calls to consoleauth under way at once; new sessions arriving
# meanwhile go together in the next.
LEASE_CALLS_IN_FLIGHT = 2
# Pause before renewing leases again after a renewal failed.
RENEW_RETRY_SECONDS = 1.0


class ControlPlane:
    def __init__(self, settings, consoleauth_api, compute_api, disconnect):
        """settings: the proxy's ProxySettings; disconnect(session_ids,
        code, reason) closes sessions this process holds (the
        registry's), for take-overs and leases found lost."""
        self.settings = settings
        self._consoleauth = consoleauth_api
        self._compute = compute_api
        self._disconnect = disconnect
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
        self._replays = {}
        # Where this process's relay listens; named in writers' leases.
        self.relay_address = None

    async def run(self, fn, *args, **kwargs):
        """A blocking call on the RPC pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(fn, *args, **kwargs))

    async def shutdown(self):
        """Once the releases under way are answered, stop the pool."""
        await self.releases.drained()
        await asyncio.get_running_loop().run_in_executor(
            None, self.executor.shutdown)

    # Seats -----------------------------------------------------------------

    async def lease(self, token, client_address):
        """The writer's lease of the console a token opens.

        The port the token names is not asked of the compute agent here:
        the agent revokes an instance's tokens when its domain is
        undefined or stopped or its ports change, consoleauth drops
        those its reports contradict, and the lease transaction refuses a
        token whose port its registry no longer gives the token's
        instance, so a leased token's port is still its guest's
        (CVE-2013-0335).
        """
        answer = await self.leases.submit(
            {'token': token, 'remote_address': client_address,
             'relay_address': self.relay_address})
        return self._serial(answer)

    async def join(self, token, client_address):
        """A spectator's lease beside the console's writer (mode=view);
        its writer names the writer's relay."""
        answer = await self.run(
            self._consoleauth.join_session, {}, token,
            self.settings.proxy_host, remote_address=client_address,
            max_spectators=self.settings.max_spectators)
        console = self._serial(answer)
        if not console.writer or not console.writer.relay_address:
            # A writer on a proxy from before relays: nothing to watch.
            self.release(console.session_id)
            raise Refusal(409, 'The console\'s user is on a proxy that '
                               'cannot relay to spectators',
                          RefusalKind.RELAY)
        return console

    async def take_over(self, token, client_address):
        """The writer's lease, taken from whoever held it (take_over).

        consoleauth hands the lease over in one transaction and casts the
        replaced session's close (4006) to every proxy; when it is held
        here it is closed at once, so that its guest connection is free
        for the new writer without waiting for the cast.
        """
        answer = await self.run(
            self._consoleauth.take_over_session, {}, token,
            self.settings.proxy_host, remote_address=client_address,
            relay_address=self.relay_address)
        console = self._serial(answer)
        if console.replaced:
            self._disconnect([console.replaced], CloseCode.TAKEN_OVER,
                             close_codes.default_reason(CloseCode.TAKEN_OVER))
        return console

    # Seats of the SSH front door (ssh_server.py) ----------------------------

    async def check_ssh_key(self, instance_uuid, index, fingerprint):
        """Whether a live one-time key opens the console port (looked
        at only: a client's offer, before its signature is checked)."""
        return await self.run(self._consoleauth.check_ssh_key, {},
                              instance_uuid, index, fingerprint)

    async def sign_in_ssh_key(self, instance_uuid, index, fingerprint):
        """Sign a connection in with its key, using the key up."""
        return await self.run(self._consoleauth.sign_in_ssh_key, {},
                              instance_uuid, index, fingerprint)

    async def lease_by_ssh(self, sign_in, client_address):
        """The writer's lease for a signed-in SSH connection, naming this
        process's relay, so that spectators can watch it too."""
        answer = await self.run(
            self._consoleauth.acquire_session_by_ssh_sign_in, {},
            self.settings.proxy_host, sign_in, client_address,
            relay_address=self.relay_address)
        return self._serial(answer)

    async def join_by_ssh(self, sign_in, client_address):
        """A spectator's seat for a signed-in SSH connection (a .view
        user): its sign-in's claim is a token for the console."""
        if not sign_in.get('claim'):
            # A consoleauth from before 1.10 gives no claim to join with.
            raise Refusal(503, 'The console service cannot seat SSH '
                               'spectators yet', RefusalKind.UNAVAILABLE)
        return await self.join(sign_in['claim'], client_address)

    def _serial(self, answer):
        """The Console of a lease's answer, unless it is not a serial
        one: then its lease is given back and the token refused."""
        console = leased_console.Console.from_answer(answer)
        if not console.is_serial:
            self.release(console.session_id)
            raise _not_serial()
        return console

    def _acquire_blocking(self, requests):
        """One consoleauth call for the leases of many new sessions."""
        return rpc.batch_results(self._consoleauth.acquire_sessions(
            {}, self.settings.proxy_host, requests))

    def _release_orphan(self, answer):
        """A lease whose session stopped waiting for it (a stopping
        proxy) is given back at once."""
        self.release(answer['session_id'])

    # Checks ------------------------------------------------------------------

    async def check(self, token, mode=WRITE):
        """Whether a token would open its console now in mode; raises if
        not."""
        await self.run(self._check_blocking, token, mode)

    def _check_blocking(self, token, mode):
        console = leased_console.Console.from_answer(
            self._consoleauth.check_token({}, token))
        self._check_access(console)
        if console.watch_only and mode == WRITE:
            mode = VIEW
        if console.watch_only and mode == TAKE_OVER:
            raise exception.ModeNotAllowed(mode=mode, watch_only=True)
        if mode != WRITE and mode not in console.modes:
            raise exception.ModeNotAllowed(mode=mode)
        writer = [held for held in self._consoleauth.list_sessions(
            {}, console.instance_uuid)
            if held['index'] == console.index and
            held.get('mode', WRITE) != VIEW]
        if mode == VIEW and not writer:
            raise exception.ConsoleNotInUse(watch_only=console.watch_only)
        if mode == WRITE and writer:
            raise exception.ConsoleInUse.since_epoch(writer[0]['started_at'])
        if not console.is_serial:
            raise _not_serial()
        self._check_port(console)

    def _check_port(self, console):
        """A refusal (401) when the token's port is no longer its
        guest's; a check is not the hot path: it may ask the agent."""
        if not self._compute.validate_console_port(
                {}, console.compute_host, console.instance_uuid,
                console.port, console.index):
            raise Refusal(401, 'The console of this token is no longer '
                               'there', RefusalKind.INVALID_TOKEN)

    async def check_download(self, token):
        """The Console whose history a token may download; raises as a
        check would, except that a console in use (or not) is no
        reason: whichever seat the token opens shows the console's
        output, and the page downloading it is often its writer."""
        return await self.run(self._check_download_blocking, token)

    def _check_download_blocking(self, token):
        console = leased_console.Console.from_answer(
            self._consoleauth.check_token({}, token))
        self._check_access(console)
        if not console.is_serial:
            raise _not_serial()
        if console.index != 0:
            raise Refusal(404, 'Only the first serial port of a server '
                               'keeps a console log')
        self._check_port(console)
        return console

    def _check_access(self, console):
        """ConsoleAccessDisabled when the console's access switch is
        off, which its upgrade would be refused for; a consoleauth from
        before the switch has none."""
        try:
            access = self._consoleauth.get_console_access(
                {}, instance_uuid=console.instance_uuid)
        except (exception.FeatureUnavailable, exception.InstanceNotFound):
            return
        if not access['enabled']:
            raise exception.ConsoleAccessDisabled(
                level=access['decided_by'])

    # Releases and renewals -------------------------------------------------

    def release(self, session_id):
        """Give a lease back; returns the future of the release."""
        released = self.releases.submit(session_id)
        released.add_done_callback(_log_release_failure)
        return released

    def _release_blocking(self, session_ids):
        self._consoleauth.release_sessions({}, session_ids)
        return [None] * len(session_ids)

    async def renew_forever(self, reports):
        """Renew every lease in one batch, a few times per lease TTL;
        reports() lists them (registry.renewal_reports).

        The first renewal goes at start, with no leases: oslo.messaging
        opens a process's reply queue on its first call and, should the
        broker be down then, waits for it without end. Opened now, a
        later outage fails a user's call within seconds instead.
        """
        ttl = self.settings.lease_ttl
        pause = 0
        replies_ready = False
        while True:
            await asyncio.sleep(pause)
            pause = ttl / 3.0
            held = reports()
            if not held and replies_ready:
                continue
            try:
                lost = await self.run(
                    self._consoleauth.renew_sessions, {},
                    self.settings.proxy_host, held,
                    timeout=max(1.0, ttl / 3.0))
            except Exception as exc:
                LOG.log(logging.WARNING if held else logging.DEBUG,
                        'Renewing %d session leases failed: %s',
                        len(held), rpc.summary(exc))
                # Leases outlived by a broker or consoleauth outage are
                # kept for their holder until someone else asks for the
                # console: renew as soon as they can be reached again.
                pause = RENEW_RETRY_SECONDS
                continue
            replies_ready = True
            # A session whose lease is gone may have a new user already.
            self._disconnect(lost, CloseCode.LEASE_LOST,
                             close_codes.default_reason(CloseCode.LEASE_LOST))

    # What an open session may ask of its console ---------------------------

    async def recent_output(self, console, lines=None):
        """History to show before live output: the last lines (None:
        [console] replay_lines) of the console log, b'' for none.

        A compute host's replays go in one call while calls are under way
        (batching.py), each with its session's count of lines: those of
        one batch that ask for the same count share a get_console_outputs
        call, which takes one count for all its instances.
        """
        if lines is None:
            lines = self.settings.replay_lines
        if not lines or console.index != 0:
            return b''
        host = console.compute_host
        if host not in self._replays:
            self._replays[host] = batching.Batcher(
                functools.partial(self._outputs_blocking, host),
                self.executor, slots=1)
        try:
            text = await self._replays[host].submit(
                (console.instance_uuid, lines))
        except Exception as exc:
            # No log, an older agent, a slow host: the console still opens.
            LOG.debug('No recent output for instance %s: %s',
                      console.instance_uuid, exc)
            return b''
        return replay.history(text)

    async def console_history(self, console, start):
        """The console's kept history from byte offset start (negative:
        that many bytes before the end) to its end, as
        get_console_history answers (data as bytes), read in as many
        pages as the agent's cap takes.

        ConsoleLogNotFound for a port without a log (only port 0 has
        one); whatever the agent raises otherwise (an older agent
        without RPC 1.4, no log, a log rotating too fast).
        """
        if console.index != 0:
            raise exception.ConsoleLogNotFound(
                instance_uuid=console.instance_uuid,
                reason='only serial port 0 keeps a log')
        answer = await self.history_page(console, start)
        data = [answer['data']]
        page = answer
        while page['next'] < page['end'] and page['data']:
            page = await self.history_page(console, page['next'])
            data.append(page['data'])
        answer.update(data=b''.join(data), next=page['next'],
                      end=page['end'])
        return answer

    async def history_page(self, console, start, max_bytes=None):
        """One page of the console's kept history from offset start, at
        most max_bytes (None: the agent's cap), as get_console_history
        answers (data as bytes)."""
        answer = await self.run(self._compute.get_console_history, {},
                                console.compute_host, console.instance_uuid,
                                start=start, max_bytes=max_bytes)
        return dict(answer, data=base64.b64decode(answer['data']))

    def _outputs_blocking(self, host, requests):
        """The answers to (instance uuid, lines) requests, in order: one
        call per count of lines asked for."""
        by_count = {}
        for position, (instance_uuid, lines) in enumerate(requests):
            by_count.setdefault(lines, []).append((position, instance_uuid))
        answers = [None] * len(requests)
        for lines, asked in by_count.items():
            try:
                results = rpc.batch_results(
                    self._compute.get_console_outputs(
                        {}, host, [uuid for _, uuid in asked], lines))
            except Exception as exc:
                # This count's sessions open without a replay; the
                # other counts' are answered still.
                results = [exc] * len(asked)
            for (position, _), result in zip(asked, results):
                answers[position] = result
        return answers

    async def send_sysrq(self, console, key):
        """Alt+SysRq+key on the console's guest, for a session that holds
        its lease (an SSH user's break and key, the page's SysRq menu)."""
        await self.run(self._compute.send_sysrq, {}, console.compute_host,
                       console.instance_uuid, key)

    async def inject_nmi(self, console):
        """An NMI into the console's guest, for a session that holds its
        lease and whose token allows it (the page's menu)."""
        await self.run(self._compute.inject_nmi, {}, console.compute_host,
                       console.instance_uuid)


def _not_serial():
    return Refusal(401, 'Token is not for a serial console',
                   RefusalKind.INVALID_TOKEN)


def _log_release_failure(future):
    if not future.cancelled() and future.exception() is not None:
        # The lease then expires by itself within its TTL.
        LOG.warning('Releasing a session lease failed: %s',
                    rpc.summary(future.exception()))
