"""Options of the [ssh] group: the proxy's SSH front door.

The API reads public_host, public_port and the host keys' public halves
from here too, to tell a user where to connect and which host key to
trust: set them alike on the API's and the proxies' hosts.
"""

from oslo_config import cfg

ssh_group = cfg.OptGroup(
    'ssh',
    title='SSH console options',
    help='Serial consoles over SSH, opened with one-time public keys '
         'pushed through the API.')

ssh_opts = [
    cfg.BoolOpt('enabled',
                default=False,
                help='Whether the proxy (and serialproxy-all) serves '
                     'consoles over SSH, and the API accepts one-time '
                     'keys for it.'),
    cfg.HostAddressOpt('listen_host',
                       default='0.0.0.0',
                       help='Address the proxy\'s SSH server listens on.'),
    cfg.PortOpt('listen_port',
                default=2222,
                help='Port the proxy\'s SSH server listens on.'),
    cfg.StrOpt('public_host',
               help='Host name the API gives users to connect to with '
                    'ssh; the host of [serial_console] base_url when '
                    'unset.'),
    cfg.PortOpt('public_port',
                help='Port the API gives users to connect to with ssh; '
                     'listen_port when unset (set it when a load balancer '
                     'forwards another port).'),
    cfg.IntOpt('key_ttl',
               default=60,
               min=1,
               help='Seconds a public key pushed through the API may open '
                    'its server\'s console port, once.'),
    cfg.StrOpt('host_key_dir',
               default='$state_path/ssh',
               help='Directory of the SSH host keys (ssh_host_ed25519_key '
                    'and its .pub), made on first start when missing. '
                    'Every proxy behind one public address, and the API, '
                    'need the same keys.'),
    cfg.IntOpt('max_auth_attempts_per_minute',
               default=30,
               min=1,
               help='Failed sign-ins one client address may make in a '
                    'minute, counted across the proxy\'s workers; past '
                    'it, sign-ins from there are refused with a message '
                    'until the minute is over.'),
    cfg.IntOpt('console_grace',
               default=10,
               min=1,
               help='Seconds a signed-in SSH connection may stay without '
                    'a console channel (before opening its one, or after '
                    'it closed) before the proxy closes it: a used-up '
                    'one-time key must not hold a connection open.'),
]


def register_opts(conf):
    conf.register_group(ssh_group)
    conf.register_opts(ssh_opts, group=ssh_group)


def list_opts():
    return {ssh_group: ssh_opts}
