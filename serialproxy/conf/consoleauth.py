"""Options of the [consoleauth] group: token lifetime."""

from oslo_config import cfg

consoleauth_group = cfg.OptGroup(
    'consoleauth',
    title='Console authorization options',
    help='How console tokens are issued and checked.')

consoleauth_opts = [
    cfg.IntOpt('token_ttl',
               default=600,
               min=1,
               help='Seconds a console token stays valid after it is '
                    'issued. A connected session is not cut when its token '
                    'expires unless the proxy is told to.'),
    cfg.IntOpt('session_lease_ttl',
               default=30,
               min=3,
               help='Seconds a console session lease lasts without renewal. '
                    'Proxies renew theirs every third of this; a proxy that '
                    'dies frees its consoles within this time.'),
]


def register_opts(conf):
    conf.register_group(consoleauth_group)
    conf.register_opts(consoleauth_opts, group=consoleauth_group)


def list_opts():
    return {consoleauth_group: consoleauth_opts}
