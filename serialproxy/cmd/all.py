"""serialproxy-all: every service in one process, the embedded default.

Services talk over the in-process messaging driver, so no broker is
needed; the database schema is created on start when it is missing.
"""

import sys

from serialproxy.cmd import proxy as proxy_cmd
from serialproxy import config
from serialproxy import conf as sp_conf
from serialproxy.db import api as db_api
from serialproxy import insecure_settings
from serialproxy import notifications
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import tls as proxy_tls
from serialproxy import rpc
from serialproxy import service

CONF = sp_conf.CONF


def main():
    config.parse_args(sys.argv)
    insecure_settings.warn_api(CONF)
    insecure_settings.warn_proxy(CONF)
    proxy_cmd.raise_open_files_limit()
    rpc.init(CONF, transport_url=rpc.IN_PROCESS_TRANSPORT_URL)
    notifications.init('serialproxy-all')
    db_api.Database(CONF.database.connection).sync()
    try:
        proxy = service.console_proxy(service.proxy_tls_context())
    except (proxy_tls.TLSConfigInvalid,
            frame_ancestors.InvalidFrameAncestor) as exc:
        sys.exit('serialproxy-all: %s' % exc)
    services = [service.consoleauth_service(),
                service.compute_service_or_exit('serialproxy-all'),
                service.APIService(CONF.api.listen, CONF.api.port)]
    service.run(services, proxy=proxy)
