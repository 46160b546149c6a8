"""serialproxy-proxy: the websocket console proxy."""

import resource
import sys

from oslo_log import log as logging

from serialproxy import config
from serialproxy.proxy import tls as proxy_tls
from serialproxy import conf as sp_conf
from serialproxy import rpc
from serialproxy import service

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Each session holds two sockets; leave room for 10,000 sessions and more.
WANTED_OPEN_FILES = 65536


def raise_open_files_limit():
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
    if soft * CONF.console.event_loops < WANTED_OPEN_FILES:
        LOG.warning('Open files limit is %d (hard %d) for each of %d event '
                    'loop(s): fewer sessions than %d fit; raise it (e.g. '
                    'systemd LimitNOFILE) or [console] event_loops', soft,
                    hard, CONF.console.event_loops, WANTED_OPEN_FILES // 2)


def main():
    config.parse_args(sys.argv)
    raise_open_files_limit()
    rpc.init(CONF)
    try:
        proxy = service.console_proxy()
    except proxy_tls.TLSConfigInvalid as exc:
        sys.exit('serialproxy-proxy: %s' % exc)
    service.run([], proxy=proxy)
