"""The console proxy of one process, put together: start, stop, listeners.

ConsoleProxy builds the proxy's parts and wires them: the control plane
(control_plane.py: leases, checks, releases, renewals, replays, SysRq and
NMI, on the RPC pool), the registry of connections, sessions and relays
(registry.py), the connections themselves (connections.py), which reach
the rest through services.ConsoleServices alone, and the page
(page/). It runs the listeners (the console port, the relay, the admin
port) and the housekeeping: renewals, the time-limit sweep, pruning
recordings.

serialproxy-proxy runs one ConsoleProxy in each worker process (see
workers.py), every worker accepting from the same listening socket;
serialproxy-all runs one in its own process.
"""

import asyncio
import dataclasses
import os

from oslo_log import log as logging

from serialproxy.proxy import admin
from serialproxy.proxy import admission
from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import connections
from serialproxy.proxy import control_plane
from serialproxy.proxy import forwarded
from serialproxy.proxy import metrics
from serialproxy.proxy.page import assets as page_assets
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy.page import static_files
from serialproxy.proxy import recording
from serialproxy.proxy import registry
from serialproxy.proxy import relay
from serialproxy.proxy import services
from serialproxy.proxy import session as console_session
from serialproxy.proxy import tls

LOG = logging.getLogger(__name__)

# What a stopping proxy gives close frames and lease releases to go out.
SHUTDOWN_FLUSH_SECONDS = 0.2
# Time limits are checked by one sweep over all connections, not a timer
# each.
SWEEP_SECONDS = 1.0
PRUNE_SECONDS = 3600


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
    max_replay_lines: int = 1000
    vendor_path: str = None
    drain_timeout: float = 0
    max_spectators: int = 10
    relay_host: str = '127.0.0.1'

    @classmethod
    def from_conf(cls, conf):
        """From the options; frame_ancestors.InvalidFrameAncestor or
        forwarded.InvalidTrustedProxy on a bad one."""
        return cls(
            session=console_session.Settings(
                allowed_origins=tuple(conf.console.allowed_origins),
                frame_ancestors=frame_ancestors.FrameAncestors.parse(
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
            max_replay_lines=conf.console.max_replay_lines,
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
        self.metrics = metrics.ProxyMetrics()
        self.relayed = metrics.RelayedBytes(self.metrics)
        self.registry = registry.ConnectionRegistry(self.admission,
                                                    self.metrics)
        self.control_plane = control_plane.ControlPlane(
            settings, consoleauth_api, compute_api, self.registry.disconnect)
        self.static = static_files.StaticFiles(
            vendor_root=settings.vendor_path,
            frame_ancestors=settings.session.frame_ancestors)
        self.services = services.ConsoleServices(
            settings, self.control_plane, self.registry, self.admission,
            self.metrics, self.relayed, self.static)
        self.server = None
        self.relay_server = None
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
            lambda: connections.ClientConnection(self.services),
            self.ssl_context, self.settings.session.handshake_timeout,
            has_room=self.admission.has_room)
        if listening_socket is None:
            listening_socket = tls.listening_socket(host, port)
        self.server.serve(listening_socket)
        self.relay_server = await relay.start(self.registry,
                                              self.settings.relay_host)
        self.control_plane.relay_address = relay.address_of(
            self.relay_server)
        if admin_socket is not None:
            self.admin_server = await admin.start_on_socket(
                self, admin_socket, self.settings.session.handshake_timeout)
        elif admin_port:
            self.admin_server = await admin.start(
                self, admin_host, admin_port,
                self.settings.session.handshake_timeout)
        self._tasks = [
            loop.create_task(self.control_plane.renew_forever(
                self.registry.renewal_reports)),
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
        while self.registry.sessions and loop.time() < deadline:
            await asyncio.sleep(0.1)
        for task in self._tasks:
            task.cancel()
        for connection in list(self.registry.connections):
            connection.close_session(
                CloseCode.GOING_AWAY,
                close_codes.default_reason(CloseCode.GOING_AWAY))
        # Give close frames a moment to reach the clients.
        await asyncio.sleep(SHUTDOWN_FLUSH_SECONDS)
        for connection in list(self.registry.connections):
            connection.abort()
        self.flush_metrics()
        # Let lease releases finish, so the consoles are free at once
        # rather than when the leases expire.
        await self.control_plane.shutdown()

    def disconnect(self, session_ids, code, reason):
        """Close the listed sessions this process holds (the RPC
        endpoint's order, manager.py)."""
        self.registry.disconnect(session_ids, code, reason)

    def flush_metrics(self):
        self.relayed.flush()

    # Housekeeping --------------------------------------------------------

    async def _prune_recordings(self):
        while True:
            await self.control_plane.run(
                recording.prune, self.settings.record_dir,
                self.settings.record_retention_days * 86400)
            await asyncio.sleep(PRUNE_SECONDS)

    async def _sweep(self):
        """Apply every connection's time limits, once a second."""
        rules = self.settings.session
        # Open sessions have time limits only when configured; thousands
        # of them ticked for nothing would stall the loop once a second.
        limits_open = (rules.idle_timeout or rules.enforce_session_timeout
                       or rules.max_session_age)
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.flush_metrics()
            for connection in list(self.registry.connections):
                if limits_open or not connection.session.is_open:
                    connection.tick()
