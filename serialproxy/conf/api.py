"""Options of the [api] group: the REST API listener."""

from oslo_config import cfg

api_group = cfg.OptGroup(
    'api',
    title='REST API options',
    help='Where serialproxy-api listens and how it authenticates.')

api_opts = [
    cfg.HostAddressOpt('listen',
                       default='0.0.0.0',
                       help='Address serialproxy-api listens on.'),
    cfg.PortOpt('port',
                default=8790,
                help='Port serialproxy-api listens on. Not 8774, so it can '
                     'run beside nova-api on one host.'),
    cfg.StrOpt('auth_strategy',
               default='keystone',
               choices=[('keystone', 'Keystone tokens, validated by '
                                     'keystonemiddleware (options in '
                                     '[keystone_authtoken]).'),
                        ('noauth', 'No authentication: the caller names '
                                   'itself in X-Auth-Token as '
                                   '"user_id:project_id" (none: admin). '
                                   'Development only.')],
               help='How API callers are authenticated: picks the pipeline '
                    'of that name in api_paste_config.'),
    cfg.StrOpt('api_paste_config',
               default='api-paste.ini',
               help='The WSGI pipeline definition (PasteDeploy). A relative '
                    'path is looked up beside the config files, then in '
                    'the current directory, then the copy in the source '
                    'tree.'),
    cfg.IntOpt('drain_timeout',
               default=10,
               min=0,
               help='Seconds the built-in server of serialproxy-api and '
                    'serialproxy-all gives requests in flight to finish on '
                    'SIGTERM, after it stops accepting new ones. (Under '
                    'uwsgi, uwsgi\'s own reload and shutdown options '
                    'apply.)'),
    cfg.IntOpt('server_threads',
               default=16,
               min=1,
               help='Requests the built-in server of serialproxy-api and '
                    'serialproxy-all runs at once, each on a thread of a '
                    'fixed pool; up to four times as many more wait for a '
                    'thread, and beyond that a request gets 503. Sockets '
                    'that have not sent a whole request take no thread. '
                    '(Under uwsgi, uwsgi\'s processes and threads apply.)'),
    cfg.IntOpt('client_timeout',
               default=10,
               min=1,
               help='Seconds a client of the built-in server has to send '
                    'its request head after connecting, and the longest '
                    'any later read or write on its connection may wait; '
                    'then the server closes the connection. Bounds what '
                    'idle and slow clients hold. (Under uwsgi, its '
                    'socket-timeout and harakiri apply.)'),
    cfg.IntOpt('console_history_max_bytes',
               default=1024 * 1024,
               min=1,
               max=16 * 1024 * 1024,
               help='The most bytes one page of a serial console history '
                    '(GET /servers/{id}/serial-console/output) returns; a '
                    'larger max_bytes is cut to this. Bounds the memory '
                    'and the RPC message of one request; clients read on '
                    'with start=next.'),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return {api_group: api_opts}
