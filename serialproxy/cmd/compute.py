"""serialproxy-compute: the compute RPC service."""

import sys

from serialproxy import config
from serialproxy import conf as sp_conf
from serialproxy import notifications
from serialproxy import rpc
from serialproxy import service

CONF = sp_conf.CONF


def main():
    config.parse_args(sys.argv)
    rpc.init(CONF)
    notifications.init('serialproxy-compute')
    service.run([service.compute_service_or_exit('serialproxy-compute')])
