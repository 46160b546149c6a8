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
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return {api_group: api_opts}
