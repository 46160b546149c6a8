"""Options of the [serial_console] group, named as Nova names them."""

from oslo_config import cfg

serial_console_group = cfg.OptGroup(
    'serial_console',
    title='Serial console options',
    help='Where guests expose their serial ports and where the websocket '
         'proxy that reaches them listens.')

serial_opts = [
    cfg.BoolOpt('enabled',
                default=True,
                help='Whether serial consoles are offered at all. When '
                     'False the API answers 501 to console requests.'),
    cfg.StrOpt('port_range',
               default='10000:20000',
               help='Range of TCP ports, "lo:hi", from which the compute '
                    'agent allocates guest serial ports: lo up to but not '
                    'including hi, as Nova reads it. The agent refuses to '
                    'start when it is malformed or outside 1..65535.'),
    cfg.URIOpt('base_url',
               default='ws://127.0.0.1:6083/',
               help='Public URL of the websocket proxy; console URLs are '
                    'this URL with "?token=..." appended. Browsers open it '
                    'with http(s), websocket clients with ws(s).'),
    cfg.StrOpt('proxyclient_address',
               default='127.0.0.1',
               help='Address on the compute host that guest serial ports '
                    'bind to and that the proxy connects to.'),
    cfg.HostAddressOpt('serialproxy_host',
                       default='0.0.0.0',
                       help='Address the websocket proxy listens on.'),
    cfg.PortOpt('serialproxy_port',
                default=6083,
                help='Port the websocket proxy listens on.'),
]

# Named and grouped as Nova names them, so deployers reuse their settings.
tls_opts = [
    cfg.StrOpt('cert',
               help='PEM certificate (chain) file of the proxy. With it, '
                    'the proxy answers TLS on its port, and plain HTTP too '
                    'unless ssl_only is set.'),
    cfg.StrOpt('key',
               help='PEM private key file; unset means the key is in the '
                    'cert file.'),
    cfg.BoolOpt('ssl_only',
                default=False,
                help='Refuse connections that are not TLS. Needs cert.'),
]


def register_opts(conf):
    conf.register_group(serial_console_group)
    conf.register_opts(serial_opts, group=serial_console_group)
    conf.register_opts(tls_opts)


def list_opts():
    return {serial_console_group: serial_opts, 'DEFAULT': tls_opts}
