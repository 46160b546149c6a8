"""serialproxy-api: the REST API."""

import sys

from serialproxy import config
from serialproxy import conf as sp_conf
from serialproxy import insecure_settings
from serialproxy import notifications
from serialproxy import rpc
from serialproxy import service

CONF = sp_conf.CONF


def main():
    config.parse_args(sys.argv)
    insecure_settings.warn_api(CONF)
    rpc.init(CONF)
    notifications.init('serialproxy-api')
    service.run([service.APIService(CONF.api.listen, CONF.api.port)])
