"""What a console connection may ask of the proxy it runs in.

Connections (connections.py) reach the control plane, the registry, the
page and the counters only through ConsoleServices: never the RPC pool,
the session table or the byte counters themselves. A test may hand a
connection any object with these calls.
"""

import typing

from oslo_log import log as logging

from serialproxy.proxy.admission import Admission
from serialproxy.proxy.console import Console
from serialproxy.proxy.control_plane import ControlPlane
from serialproxy.proxy.handshake import Request
from serialproxy.proxy.metrics import ProxyMetrics
from serialproxy.proxy.metrics import RelayedBytes
from serialproxy.proxy.page import log_download
from serialproxy.proxy.page.static_files import StaticFiles
from serialproxy.proxy import recording
from serialproxy.proxy.registry import ConnectionRegistry

LOG = logging.getLogger(__name__)


class ConsoleServices:
    def __init__(self, settings,
                 control_plane: ControlPlane,
                 registry: ConnectionRegistry,
                 admission: Admission,
                 metrics: ProxyMetrics,
                 relayed: RelayedBytes,
                 static: StaticFiles):
        # The proxy's ProxySettings, read only.
        self.settings = settings
        # Who may connect: counted per address and token, against the
        # process's capacity.
        self.admission = admission
        # Sessions opened and closed, refusals, input dropped.
        self.metrics = metrics
        self._control = control_plane
        self._registry = registry
        self._relayed = relayed
        self._static = static
        # Download log answers streaming now (log_download.py).
        self._downloads = 0

    # Seats, checks and releases -----------------------------------------

    async def lease(self, token: str,
                    client_address: str) -> Console:
        return await self._control.lease(token, client_address)

    async def join(self, token: str,
                   client_address: str) -> Console:
        return await self._control.join(token, client_address)

    async def take_over(self, token: str,
                        client_address: str) -> Console:
        return await self._control.take_over(token, client_address)

    async def check(self, token: str, mode: str) -> None:
        await self._control.check(token, mode)

    def release(self, session_id: str) -> typing.Awaitable:
        """Give a lease back; the future says when consoleauth has it."""
        return self._control.release(session_id)

    # The SSH front door's sign-in and seats -------------------------------

    async def check_ssh_key(self, instance_uuid: str, index: int,
                            fingerprint: str) -> bool:
        return await self._control.check_ssh_key(instance_uuid, index,
                                                 fingerprint)

    async def sign_in_ssh_key(self, instance_uuid: str, index: int,
                              fingerprint: str) -> dict:
        return await self._control.sign_in_ssh_key(instance_uuid, index,
                                                   fingerprint)

    async def lease_by_ssh(self, sign_in: dict,
                           client_address: str) -> Console:
        return await self._control.lease_by_ssh(sign_in, client_address)

    async def join_by_ssh(self, sign_in: dict,
                          client_address: str) -> Console:
        return await self._control.join_by_ssh(sign_in, client_address)

    # What an open session may ask -----------------------------------------

    async def recent_output(self, console: Console,
                            lines: int = None) -> bytes:
        return await self._control.recent_output(console, lines)

    async def check_download(self, token: str) -> Console:
        return await self._control.check_download(token)

    async def history_page(self, console: Console, start: int,
                           max_bytes: int = None) -> dict:
        return await self._control.history_page(console, start, max_bytes)

    def take_download_slot(self) -> bool:
        """Whether another Download log may stream now; if so, it is
        counted until download_ended()."""
        if self._downloads >= log_download.DOWNLOADS_AT_ONCE:
            return False
        self._downloads += 1
        return True

    def download_ended(self) -> None:
        self._downloads -= 1

    async def console_history(self, console: Console,
                              start: int) -> dict:
        """The console's history from offset start to its end (data as
        bytes; see ControlPlane.console_history)."""
        return await self._control.console_history(console, start)

    async def send_sysrq(self, console: Console,
                         key: str) -> None:
        await self._control.send_sysrq(console, key)

    async def inject_nmi(self, console: Console) -> None:
        await self._control.inject_nmi(console)

    def recorder(self, console: Console, session_id: str):
        """A recorder for a new session, or None when not recording."""
        settings = self.settings
        if not settings.record_dir:
            return None
        try:
            return recording.SessionRecorder(
                settings.record_dir, console.instance_uuid, console.index,
                session_id, settings.record_max_bytes)
        except OSError as exc:
            # A full disk must not cost the user their console.
            LOG.error('Cannot record session %s: %s', session_id, exc)
            return None

    def page(self, request: Request) -> bytes:
        """The console page's answer to a plain GET or HEAD."""
        return self._static.response(request)

    @property
    def page_headers(self) -> list:
        """The security headers of every answer the page reads."""
        return self._static.security_headers

    # Bookkeeping -----------------------------------------------------------

    def opened(self, connection) -> None:
        self._registry.opened(connection)

    def closed(self, connection) -> None:
        self._registry.closed(connection)

    def started(self, connection, relay_key: str = None) -> None:
        """connection's session opened; a writer's relay_key lets
        spectators reach it."""
        self._registry.session_started(connection, relay_key)

    def ended(self, connection, relay_key: str = None) -> None:
        self._registry.session_ended(connection, relay_key)

    def relayed_to_guest(self, nbytes: int) -> None:
        self._relayed.to_guest += nbytes

    def relayed_to_client(self, nbytes: int) -> None:
        self._relayed.to_client += nbytes
