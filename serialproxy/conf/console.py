"""Options of the [console] group: the proxy's rules for clients."""

from oslo_config import cfg

console_group = cfg.OptGroup(
    'console',
    title='Console proxy options',
    help='What the websocket proxy accepts from browsers and clients.')

console_opts = [
    cfg.ListOpt('allowed_origins',
                default=[],
                help='Host names, besides the proxy\'s own Host header, '
                     'that a browser Origin may carry. A request without '
                     'Origin is a non-browser client and is not checked.'),
    cfg.IntOpt('handshake_timeout',
               default=10,
               min=1,
               help='Seconds a client has to send its HTTP request before '
                    'the proxy drops it.'),
    cfg.IntOpt('max_sessions_per_address',
               default=16,
               min=1,
               help='Connections one client address may have open or in '
                    'set-up on one proxy; more are refused with 429.'),
    cfg.IntOpt('max_sessions_per_token',
               default=2,
               min=1,
               help='Connections one token may have open or in set-up on '
                    'one proxy; more are refused with 429.'),
    cfg.IntOpt('idle_timeout',
               default=0,
               min=0,
               help='Seconds without a byte either way after which a '
                    'session is closed (code 4003). 0 turns it off.'),
    cfg.BoolOpt('enforce_session_timeout',
                default=False,
                help='End a session when its token expires (code 4002), '
                     'as Nova\'s option of that name does. Off, a session '
                     'outlives its token; the token only gates opening.'),
    cfg.IntOpt('rpc_workers',
               default=32,
               min=1,
               help='Threads the proxy uses for its RPC calls during '
                    'connection setup; bounds concurrent setups.'),
    cfg.StrOpt('vendor_path',
               help='Directory holding the npm packages of the console '
                    'page (@xterm/xterm and @xterm/addon-fit, as "npm ci" '
                    'installs them from package-lock.json). The proxy '
                    'serves only the few files the page loads from it. '
                    'Default: node_modules beside the serialproxy package '
                    'in a source checkout, where tools/test-setup.sh puts '
                    'them.'),
]


def register_opts(conf):
    conf.register_group(console_group)
    conf.register_opts(console_opts, group=console_group)


def list_opts():
    return {console_group: console_opts}
