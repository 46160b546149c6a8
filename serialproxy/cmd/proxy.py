"""serialproxy-proxy: the websocket console proxy, in worker processes.

The parent opens the public and admin listening sockets, then starts
[console] workers processes that accept from them, each with its own event
loop, descriptor table, RPC connection and sessions, and restarts any that
dies. Nothing of oslo.messaging exists before the fork.
"""

import asyncio
import os
import resource
import shutil
import sys
import tempfile

from oslo_log import log as logging

from serialproxy import config
from serialproxy import conf as sp_conf
from serialproxy import insecure_settings
from serialproxy import notifications
from serialproxy.proxy import admission
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import metrics
from serialproxy.proxy import server as proxy_server
from serialproxy.proxy import tls as proxy_tls
from serialproxy.proxy import workers
from serialproxy import rpc
from serialproxy.ssh import keys as ssh_keys
from serialproxy import service

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Each session holds two sockets; leave room for 10,000 sessions and more.
WANTED_OPEN_FILES = 65536
# What a worker gets beyond drain_timeout to close and exit on SIGTERM.
STOP_GRACE_SECONDS = 10


def raise_open_files_limit(processes=1):
    """Lift RLIMIT_NOFILE as far as this process may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((WANTED_OPEN_FILES, max(hard, WANTED_OPEN_FILES)),
                   (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
        except (ValueError, OSError):
            continue
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft * processes < WANTED_OPEN_FILES:
        LOG.warning('Open files limit is %d (hard %d) for each of %d '
                    'process(es): fewer sessions than %d fit; raise it '
                    '(systemd LimitNOFILE) or [console] workers', soft,
                    hard, processes, WANTED_OPEN_FILES // 2)


def worker_count():
    return CONF.console.workers or os.cpu_count() or 1


def main():
    config.parse_args(sys.argv)
    insecure_settings.warn_proxy(CONF)
    count = worker_count()
    raise_open_files_limit(count)
    try:
        ssl_context = service.proxy_tls_context()
        # Here, not in the workers: one that cannot start is restarted.
        proxy_server.ProxySettings.from_conf(CONF)
    except (proxy_tls.TLSConfigInvalid,
            frame_ancestors.InvalidFrameAncestor) as exc:
        sys.exit('serialproxy-proxy: %s' % exc)
    try:
        listening = proxy_tls.listening_socket(
            CONF.serial_console.serialproxy_host,
            CONF.serial_console.serialproxy_port)
        admin_socket = proxy_tls.listening_socket(
            CONF.console.admin_host, CONF.console.admin_port) \
            if CONF.console.admin_port else None
    except OSError as exc:
        sys.exit('serialproxy-proxy: cannot listen: %s' % exc)
    if CONF.ssh.enabled:
        # Made once here, so that every worker serves the same host keys.
        ssh_keys.ensure_host_keys(CONF.ssh.host_key_dir)
    load = admission.WorkerLoad(count)
    # Shared like load: one address's failed SSH sign-ins over all workers.
    failures = service.ssh_sign_in_failures()
    metrics_dir = tempfile.mkdtemp(prefix='serialproxy-metrics-')
    metrics.enable_multiprocess(metrics_dir)

    def worker_main(index, ready):
        load.index = index
        rpc.init(CONF)
        notifications.init('serialproxy-proxy')
        try:
            proxy = service.console_proxy(ssl_context, load)
            asyncio.run(service.serve_proxy(
                proxy, '%s.%d' % (CONF.host, index), ready,
                ssh_sign_in_failures=failures,
                listening_socket=listening, admin_socket=admin_socket))
        finally:
            rpc.cleanup()
        return 0

    def stop_listening():
        # The workers' copies close as they begin to drain; with ours
        # open too, new connections would wait in the backlog unserved.
        for sock in (listening, admin_socket):
            if sock is not None:
                sock.close()

    supervisor = workers.WorkerSupervisor(
        count, worker_main, on_worker_exit=metrics.worker_exited,
        stop_timeout=CONF.console.drain_timeout + STOP_GRACE_SECONDS,
        on_stop=stop_listening, on_reload=service.reload_config)
    try:
        status = supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(status)
