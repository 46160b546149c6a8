"""How each service is assembled and run, shared by the commands.

Every builder returns objects with start() and stop(), so serialproxy-all
runs the same pieces the separate commands run.
"""

import asyncio
import signal
import sys
import threading
import time

from futurist import periodics
from oslo_config import cfg
from oslo_db import exception as db_exc
import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy.api import builtin_server
from serialproxy.api import pipeline as api_pipeline
from serialproxy.api import wsgi as api_wsgi
from serialproxy.compute import libvirt_driver
from serialproxy.compute import lifecycle
from serialproxy.compute import manager as compute_manager
from serialproxy.compute import port_pool
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.compute import serial_consoles
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import manager as consoleauth_manager
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.db import api as db_api
from serialproxy import exception
from serialproxy.proxy import manager as proxy_manager
from serialproxy.proxy import rpcapi as proxy_rpcapi
from serialproxy.proxy import server as proxy_server
from serialproxy.proxy import sign_in_failures
from serialproxy.proxy import ssh_server as proxy_ssh_server
from serialproxy.proxy import tls as proxy_tls
from serialproxy import rpc
from serialproxy.ssh import keys as ssh_keys

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Housekeeping interval of consoleauth: expired token and lease purge.
PURGE_INTERVAL = 60
# Seconds between a compute agent's attempts to report its instances
# while consoleauth does not answer.
REPORT_RETRY_INTERVAL = 5


# Failures of a periodic task that say a dependency is down or slow, not
# that the task is wrong: logged as warnings, without a traceback. (A
# serialproxy exception raised by the service called arrives as a
# subclass of its own.)
OUTAGES = (messaging.MessagingTimeout, messaging.MessageDeliveryFailure,
           db_exc.DBConnectionError, exception.ServiceUnavailable,
           exception.HypervisorUnavailable)


class Periodic:
    """Runs fn every interval seconds on futurist's periodic worker, in a
    daemon thread of its own, until stopped.

    first_delay: seconds before the first run (interval by default).
    retry_interval: seconds before the next run after a failed one
    (interval by default), for tasks whose failure leaves others waiting.
    futurist spaces the runs of a callable evenly, so the worker calls
    every retry_interval and a run that is not due yet returns at once.
    """

    def __init__(self, interval, fn, name, first_delay=None,
                 retry_interval=None):
        self.interval = interval
        self.fn = fn
        self.name = name
        self.first_delay = interval if first_delay is None else first_delay
        self.retry_interval = interval if retry_interval is None \
            else retry_interval
        self._worker = None
        self._thread = None

    def start(self):
        due = [time.monotonic() + self.first_delay]

        @periodics.periodic(min(self.interval, self.retry_interval),
                            run_immediately=True)
        def run():
            if time.monotonic() < due[0]:
                return
            # Until it succeeds, the next try comes at the retry interval.
            due[0] = time.monotonic() + self.retry_interval
            self.fn()
            due[0] = time.monotonic() + self.interval

        self._worker = periodics.PeriodicWorker(
            [(run, (), {})], schedule_strategy='last_finished',
            on_failure=self._log_failure)
        self._thread = threading.Thread(target=self._worker.start,
                                        name=self.name, daemon=True)
        self._thread.start()

    def _log_failure(self, cb, kind, spacing, exc_info, traceback=None):
        exc = exc_info[1] if exc_info else None
        if isinstance(exc, OUTAGES):
            # The broker or the database is slow or away: the retry is
            # the remedy, and the traceback would only show the wait.
            LOG.warning('Periodic task %s failed; next try in %ss: %s',
                        self.name, self.retry_interval, rpc.summary(exc))
            return
        LOG.error('Periodic task %s failed; next try in %ss', self.name,
                  self.retry_interval, exc_info=exc_info)

    def stop(self):
        """No run starts after this; one under way may finish."""
        if self._worker is not None:
            self._worker.stop()


class RPCService:
    """An RPC server plus the periodic tasks that go with it."""

    def __init__(self, server, periodics=()):
        self.server = server
        self.periodics = list(periodics)

    def start(self):
        self.server.start()
        for periodic in self.periodics:
            periodic.start()

    def stop(self, drain_timeout=None):
        """Take no new calls; wait for those being answered, at most
        drain_timeout seconds ([DEFAULT] rpc_drain_timeout): one may be
        retrying its reply to a caller that is gone, for a minute."""
        if drain_timeout is None:
            drain_timeout = CONF.rpc_drain_timeout
        for periodic in self.periodics:
            periodic.stop()
        self.server.stop()
        # The executor's threads are daemons: what is still running when
        # the wait gives up ends with the process.
        waiter = threading.Thread(target=self.server.wait,
                                  name='rpc-drain', daemon=True)
        waiter.start()
        waiter.join(drain_timeout)
        if waiter.is_alive():
            LOG.warning('RPC calls still running %ss after the stop; '
                        'exiting without waiting for them', drain_timeout)


def _consoleauth_pool_size():
    """A connection for each thread answering RPC and one for the purge,
    unless the operator set [database] max_pool_size."""
    if CONF.get_location('max_pool_size', 'database').location != \
            cfg.Locations.opt_default:
        return None
    return CONF.executor_thread_pool_size + 1


def consoleauth_service():
    database = db_api.Database(CONF.database.connection,
                               pool_size=_consoleauth_pool_size())
    database.check_schema()
    manager = consoleauth_manager.ConsoleAuthManager(
        database, proxy_rpcapi.ProxyAPI())
    # A changed [console] access_default ends what it turns off now.
    manager.apply_cloud_access()
    target = messaging.Target(topic=consoleauth_rpcapi.TOPIC,
                              server=CONF.host)
    return RPCService(rpc.get_server(target, [manager]),
                      [Periodic(PURGE_INTERVAL, manager.purge_expired,
                                'purge-expired')])


class ComputeService(RPCService):
    """The compute agent: lifecycle events, port pool upkeep, RPC server.

    Start order matters: listen to lifecycle events first, then reconcile
    the pool with libvirt (so nothing changes unseen in between), then
    serve allocations, and only then report to consoleauth. A first
    report that fails is retried every few seconds rather than at the
    report interval: consoleauth may start after us, and a call made
    before its queue exists is dropped by the broker, unanswered.
    """

    def __init__(self, server, manager, lifecycle, pool):
        self.sync = Periodic(
            CONF.instance_report_interval, manager.sync_instances,
            'sync-instances',
            retry_interval=min(REPORT_RETRY_INTERVAL,
                               CONF.instance_report_interval))
        periodics = [self.sync]
        if CONF.compute.console_log_scan_interval:
            periodics.append(Periodic(CONF.compute.console_log_scan_interval,
                                      manager.scan_console_logs,
                                      'scan-console-logs'))
        super().__init__(server, periodics)
        self.manager = manager
        self.lifecycle = lifecycle
        self.pool = pool

    def start(self):
        self.lifecycle.start()
        found = None
        try:
            found = self.manager.reconcile_pool()
        except Exception:
            # libvirtd may come up after us: the periodic sync retries, and
            # allocations wait for a reconciled pool.
            LOG.exception('First reconciliation with libvirt failed')
        self.server.start()
        try:
            if found is not None:
                self.manager.report_instances(found)
        except Exception as exc:
            LOG.warning('First report of instances to consoleauth failed '
                        '(%s); retrying every %d s', exc,
                        self.sync.retry_interval)
            found = None
        if found is None:
            self.sync.first_delay = 0
        self.sync.start()

    def stop(self):
        super().stop()
        self.lifecycle.stop()
        self.pool.close()


def compute_service_or_exit(command):
    """compute_service(), or exit with the reason it cannot start."""
    try:
        return compute_service()
    except (exception.InvalidPortRange, exception.PortPoolUnavailable) as exc:
        LOG.error('%s cannot start: %s', command, exc)
        sys.exit('%s: %s' % (command, exc))


def compute_service():
    """The compute agent; InvalidPortRange or PortPoolUnavailable when its
    configuration cannot work."""
    pool = port_pool.PortPool.from_conf(CONF)
    driver = libvirt_driver.LibvirtDriver(
        CONF.libvirt.connection_uri, CONF.host,
        CONF.serial_console.proxyclient_address)
    consoles = serial_consoles.SerialConsoles(
        pool, CONF.serial_console.proxyclient_address,
        CONF.compute.console_log_dir)
    manager = compute_manager.ComputeManager(
        driver, consoleauth_rpcapi.ConsoleAuthAPI(), consoles,
        console_output_max_bytes=CONF.compute.console_output_max_bytes)
    events = lifecycle.LifecycleEvents(
        CONF.libvirt.connection_uri, manager.instance_changed,
        manager.sync_instances,
        reconnect_interval=CONF.compute.libvirt_reconnect_interval)
    target = messaging.Target(topic=compute_rpcapi.TOPIC, server=CONF.host)
    return ComputeService(rpc.get_server(target, [manager]), manager,
                          events, pool)


class _QuietHandler(builtin_server.RequestHandler):
    def log_message(self, fmt, *args):
        # Access logs go to oslo.log rather than stderr, and a console
        # token in a request line (GET /os-console-auth-tokens/T) never
        # reaches them.
        LOG.info('%s %s', self.address_string(),
                 api_wsgi.redact_path(fmt % args))


class APIService:
    """The REST API on the built-in server (a bounded thread pool).

    The application is the api-paste.ini pipeline, so a WSGI server such
    as uwsgi can host the same thing (serialproxy.api.pipeline.load_app).
    """

    def __init__(self, host, port, app=None, drain_timeout=None):
        if app is None:
            app = api_pipeline.load_app()
        self.drain_timeout = CONF.api.drain_timeout \
            if drain_timeout is None else drain_timeout
        self.httpd = builtin_server.make_server(
            host, port, app, _QuietHandler, CONF.api.server_threads,
            CONF.api.client_timeout)
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        name='api', daemon=True)

    def start(self):
        self._thread.start()
        LOG.info('API listening on %s:%s', *self.httpd.server_address[:2])

    def stop(self):
        """Stop accepting; let requests in flight finish, then close."""
        self.httpd.shutdown()
        if not self.httpd.wait_idle(self.drain_timeout):
            LOG.warning('Stopping with API requests still in flight after '
                        '%ss', self.drain_timeout)
        self.httpd.server_close()


def console_proxy(ssl_context=None, load=None):
    """The proxy of one process, from config."""
    rpc.check_pool_size(CONF, CONF.console.rpc_workers)
    return proxy_server.ConsoleProxy(
        proxy_server.ProxySettings.from_conf(CONF),
        consoleauth_rpcapi.ConsoleAuthAPI(retry=rpc.USER_FACING_RETRY),
        compute_rpcapi.ComputeAPI(retry=rpc.USER_FACING_RETRY),
        ssl_context=ssl_context, load=load)


def proxy_tls_context():
    """The listener's SSLContext from config, None without a cert."""
    if not CONF.cert:
        if CONF.ssl_only:
            raise proxy_tls.TLSConfigInvalid('ssl_only needs a cert')
        return None
    return proxy_tls.server_context(
        CONF.cert, CONF.key, CONF.console.ssl_minimum_version,
        CONF.console.ssl_ciphers)


async def serve_proxy(proxy, rpc_server_name, ready,
                      ssh_sign_in_failures=None, **listen):
    """Serve the proxy and its RPC endpoint until SIGTERM or SIGINT.

    ssh_sign_in_failures: the SSH front door's failed sign-ins, shared
    by the workers (see start_ssh_front_door).
    listen: ConsoleProxy.start's arguments. ready() is called once the
    proxy serves. On the signal the proxy drains its sessions for
    [console] drain_timeout, still obeying disconnect orders meanwhile.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_config)
    await proxy.start(**listen)
    front_door = await start_ssh_front_door(proxy, ssh_sign_in_failures)
    target = messaging.Target(topic=proxy_rpcapi.TOPIC,
                              server=rpc_server_name)
    rpc_server = rpc.get_server(
        target, [proxy_manager.ProxyManager(proxy, loop)])
    rpc_server.start()
    ready()
    await stop.wait()
    LOG.info('Stopping: no new sessions; draining for up to %ss',
             proxy.settings.drain_timeout)
    if front_door is not None:
        front_door.close()
    await proxy.stop(proxy.settings.drain_timeout)
    await loop.run_in_executor(None, rpc_server.stop)
    await loop.run_in_executor(None, rpc_server.wait)


def ssh_sign_in_failures():
    """The failed SSH sign-ins per address, when [ssh] enabled: made
    before the proxy's workers fork, so that they share the limit."""
    if not CONF.ssh.enabled:
        return None
    return sign_in_failures.SignInFailures(
        CONF.ssh.max_auth_attempts_per_minute)


async def start_ssh_front_door(proxy, failures=None):
    """The proxy's SSH server when [ssh] enabled, else None.

    failures: from ssh_sign_in_failures(), made before forking; this
    process's own when None."""
    if not CONF.ssh.enabled:
        return None
    front_door = proxy_ssh_server.SSHFrontDoor(
        proxy.services, ssh_keys.ensure_host_keys(CONF.ssh.host_key_dir),
        CONF.ssh.key_ttl, CONF.ssh.max_auth_attempts_per_minute,
        console_grace=CONF.ssh.console_grace, failures=failures)
    await front_door.start(CONF.ssh.listen_host, CONF.ssh.listen_port)
    return front_door


def _log_ready():
    # Tests and init scripts wait for this line.
    LOG.info('Ready: every service of this process is serving')


def run(services, proxy=None):
    """Start services and the proxy in this process; stop on a signal."""
    started = []
    try:
        for svc in services:
            svc.start()
            started.append(svc)
        if proxy is None:
            _wait_for_signal()
        else:
            asyncio.run(serve_proxy(
                proxy, CONF.host, _log_ready,
                host=CONF.serial_console.serialproxy_host,
                port=CONF.serial_console.serialproxy_port,
                admin_host=CONF.console.admin_host,
                admin_port=CONF.console.admin_port))
    finally:
        for svc in reversed(started):
            svc.stop()
        rpc.cleanup()


def reload_config():
    """SIGHUP: read the config files again, as OpenStack services do.

    Options marked mutable take effect at once (oslo.log's debug and
    log levels); oslo.config warns of any other that changed, which
    waits for a restart. A file that no longer reads changes nothing.
    """
    try:
        changed = CONF.mutate_config_files()
    except Exception as exc:
        LOG.error('The config files could not be read again, nothing '
                  'changed: %s', exc)
        return
    LOG.info('Config files read again: %d option(s) changed in place',
             len(changed))


def _wait_for_signal():
    stop = threading.Event()
    reload = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    _log_ready()
    while not stop.is_set():
        # A signal handler only sets an event: the reload's logging and
        # file reads run here, not inside whatever the handler broke into.
        stop.wait(0.5)
        if reload.is_set():
            reload.clear()
            reload_config()
