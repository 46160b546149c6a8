"""Options of the [DEFAULT] group shared by every service."""

import socket

from oslo_config import cfg

service_opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<current_hostname>',
               help='Name of this host. A compute agent serves RPC under '
                    'this name and registers its instances with it.'),
    cfg.StrOpt('state_path',
               default='/var/lib/serialproxy',
               help='Directory for local state: the SQLite database by '
                    'default, and later the port pool.'),
    cfg.IntOpt('rpc_call_timeout',
               default=30,
               min=1,
               help='Seconds to wait for an RPC reply before giving up.'),
    cfg.IntOpt('rpc_drain_timeout',
               default=15,
               min=0,
               help='Seconds serialproxy-compute and serialproxy-consoleauth '
                    'give the RPC calls they are answering to finish on '
                    'SIGTERM, after they stop taking new ones. A reply to a '
                    'caller that died can be retried for up to '
                    '[oslo_messaging_rabbit] '
                    'kombu_missing_consumer_retry_timeout (60 s); the '
                    'service does not wait for it past this.'),
    cfg.IntOpt('instance_report_interval',
               default=60,
               min=1,
               help='Seconds between the compute agent\'s reports of its '
                    'instances to consoleauth.'),
]


def register_opts(conf):
    conf.register_opts(service_opts)


def list_opts():
    return {'DEFAULT': service_opts}
