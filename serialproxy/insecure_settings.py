"""Warnings at start-up for settings that leave consoles exposed.

Each is allowed (development, a trusted network, TLS ended by a load
balancer in front) but must not pass in silence: the operator reads why
in the service's log.
"""

import ipaddress

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def is_loopback(host):
    """Whether only this machine can reach an address (a name: no)."""
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_api(conf, listener=True):
    """The API's: no authentication; a listener other hosts reach.

    listener: whether [api] listen is where the API listens (its built-in
    server; under uwsgi the WSGI server's own settings say).
    """
    if conf.api.auth_strategy == 'noauth':
        LOG.warning('[api] auth_strategy = noauth: the API believes whoever '
                    'calls it is the user and project named in '
                    'X-Auth-Token, or the admin. Development only; use '
                    'keystone.')
    if listener and not is_loopback(conf.api.listen):
        LOG.warning('The API listens on %s without TLS: Keystone tokens '
                    'and console URLs cross the network in clear unless a '
                    'load balancer or web server in front ends TLS. In '
                    'production run serialproxy-api-wsgi under uwsgi '
                    'behind TLS, or keep this address on a trusted '
                    'network.', conf.api.listen)


def warn_proxy(conf):
    """The console proxy's: a listener without TLS other hosts reach;
    plain websocket beside TLS on the same port."""
    host = conf.serial_console.serialproxy_host
    if not conf.cert and not is_loopback(host):
        LOG.warning('The console proxy listens on %s without TLS ([DEFAULT] '
                    'cert unset): console tokens and keystrokes cross the '
                    'network in clear unless a load balancer in front ends '
                    'TLS.', host)
    if conf.cert and not conf.ssl_only:
        LOG.warning('The console proxy answers plain ws:// as well as TLS '
                    'on port %d ([DEFAULT] ssl_only off): a client sent '
                    'to a ws:// URL gives its token and keystrokes in '
                    'clear. Set ssl_only = true.',
                    conf.serial_console.serialproxy_port)
