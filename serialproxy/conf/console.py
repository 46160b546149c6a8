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
    cfg.ListOpt('frame_ancestors',
                default=["'self'"],
                help='Origins of the dashboards that may show the console '
                     'page in a frame (iframe), sent to browsers as the '
                     'page\'s Content-Security-Policy frame-ancestors; '
                     'browsers refuse to show it in a frame of any other '
                     'site. Each entry is \'self\' (the proxy\'s own '
                     'origin), an origin such as '
                     'https://dashboard.example.com or '
                     'https://dashboard.example.com:8443, or one with a '
                     'wildcard for any subdomain (https://*.example.com) '
                     'or any port (https://dashboard.example.com:*); '
                     '\'none\' alone, or an empty list, lets no page '
                     'frame it. A framed page opens its websocket with the '
                     'proxy\'s own origin, which the Origin check accepts '
                     'anyway; a dashboard that opens the console websocket '
                     'from its own page sends its own origin, so the '
                     'origins listed here are accepted by the Origin check '
                     'too (scheme, host and port as listed, as browsers '
                     'match them), besides allowed_origins.'),
    cfg.IntOpt('handshake_timeout',
               default=10,
               min=1,
               help='Seconds a client has to send its HTTP request before '
                    'the proxy drops it, on the console port and on the '
                    'admin listener (which answers 408).'),
    cfg.IntOpt('max_sessions_per_address',
               default=16,
               min=1,
               help='Connections one client address may have open, in '
                    'set-up or not yet past their request on one proxy '
                    '(counted from accept, before a byte is read; checks '
                    'of a URL count too); more are refused with 429. '
                    'Behind a load balancer listed in trusted_proxies, '
                    'the client address is the one the balancer names.'),
    cfg.ListOpt('trusted_proxies',
                default=[],
                help='Addresses or networks (10.0.0.5, 10.0.0.0/24, '
                     '2001:db8::/64) of the load balancers in front of '
                     'the proxy. From these peers only, the client\'s '
                     'address is taken from X-Forwarded-For (its '
                     'rightmost address that is not a trusted proxy) and '
                     'the browser\'s scheme from X-Forwarded-Proto, and '
                     'the SSH listener reads a PROXY protocol header '
                     '(v1 or v2); from any other peer those headers are '
                     'ignored. Per-address limits, the sessions list, '
                     'notifications and logs then show the real client. '
                     'A trusted peer is not capped at accept: its '
                     'connections count against the client it names once '
                     'their request (or PROXY header) arrives.'),
    cfg.IntOpt('max_sessions_per_token',
               default=2,
               min=1,
               help='Connections one token may have open or in set-up on '
                    'one proxy; more are refused with 429.'),
    cfg.IntOpt('workers',
               min=1,
               sample_default='<number of CPUs>',
               help='Worker processes of serialproxy-proxy. They share the '
                    'public port (the parent opens it before starting '
                    'them), and each has its own sessions and its own '
                    'descriptor table: a session takes two descriptors, '
                    'so a worker holds about RLIMIT_NOFILE / 2 sessions '
                    '(set LimitNOFILE in the systemd unit). A worker that '
                    'dies is restarted; its consoles come free within '
                    '[consoleauth] session_lease_ttl. Default: the number '
                    'of CPUs. serialproxy-all always runs one.'),
    cfg.IntOpt('max_frame_bytes',
               default=1024 * 1024,
               min=1024,
               help='Largest websocket message a client may send (a paste '
                    'is one message). Every message up to it is relayed '
                    'as soon as its last byte arrives; a larger one closes '
                    'the session with code 1009, after what came before '
                    'it was relayed.'),
    cfg.IntOpt('drain_timeout',
               default=5,
               min=0,
               help='Seconds a stopping proxy (SIGTERM) lets its sessions '
                    'go on while it accepts no new ones; the sessions '
                    'left are then closed with code 1001.'),
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
    cfg.IntOpt('max_session_age',
               default=0,
               min=0,
               help='Seconds after which any console session (websocket '
                    'or SSH, writer or spectator) is closed, busy or not '
                    '(close code 4008; SSH: exit status 2 and a message). '
                    'A session outlives the token or key that opened it '
                    'and the roles of the user who asked for it; this '
                    'bounds by how much. The user asks for a new URL, '
                    'which checks their roles again. 0 turns it off.'),
    cfg.IntOpt('replay_lines',
               default=50,
               min=0,
               help='Lines of recent console output, from the guest\'s '
                    'console log, shown to a user on connect so the '
                    'screen is not blank until the guest prints. 0 turns '
                    'it off.'),
    cfg.IntOpt('max_replay_lines',
               default=1000,
               min=0,
               help='The most lines of recent console output a session '
                    'may ask to be shown on connect instead of '
                    'replay_lines (an SSH user name\'s replay-lines=N, as '
                    'GCP\'s): more is cut to this, and the user told so. '
                    'The compute agent reads at most [compute] '
                    'console_output_max_bytes of the log for it whatever '
                    'the count. 0 lets a session ask only for none; '
                    'replay_lines 0 does not stop a session asking.'),
    cfg.StrOpt('record',
               help='Directory to record every console session into, one '
                    'asciicast v2 file per session (guest output only). '
                    'Unset turns recording off.'),
    cfg.IntOpt('record_max_bytes',
               default=10 * 1024 * 1024,
               min=1024,
               help='Size at which a session\'s recording stops; the '
                    'session itself goes on.'),
    cfg.IntOpt('record_retention_days',
               default=30,
               min=1,
               help='Recordings older than this are deleted, at start-up '
                    'and hourly.'),
    cfg.StrOpt('ssl_minimum_version',
               default='default',
               choices=['default', 'tlsv1_1', 'tlsv1_2', 'tlsv1_3'],
               help='Oldest TLS version the proxy accepts; "default" is '
                    'what the system\'s OpenSSL allows.'),
    cfg.StrOpt('ssl_ciphers',
               help='OpenSSL cipher list for TLS 1.2 and older, e.g. '
                    '"kEECDH+aECDSA+AES:kEECDH+AES+aRSA:kEDH+aRSA+AES". '
                    'Unset keeps OpenSSL\'s default.'),
    cfg.HostAddressOpt('admin_host',
                       default='127.0.0.1',
                       help='Address of the proxy\'s admin listener, which '
                            'serves /metrics (Prometheus) and '
                            '/healthcheck. Keep it off public networks.'),
    cfg.PortOpt('admin_port',
                default=6084,
                help='Port of the proxy\'s admin listener; 0 turns it '
                     'off.'),
    cfg.IntOpt('rpc_workers',
               default=16,
               min=4,
               help='Threads the proxy uses for its RPC calls. New '
                    'sessions\' leases, their releases and their replays '
                    'go to consoleauth and the compute agents in batches, '
                    'a few calls at a time, so few threads carry many '
                    'sessions. Each takes a broker connection while it '
                    'sends: with executor_thread_pool_size it should not '
                    'exceed [oslo_messaging_rabbit] rpc_conn_pool_size.'),
    cfg.StrOpt('vendor_path',
               help='Directory holding the npm packages of the console '
                    'page (@xterm/xterm and its addons, as "npm ci" '
                    'installs them from package-lock.json). The proxy '
                    'serves only the few files the page loads from it. '
                    'Default: a source checkout\'s node_modules when it '
                    'has them (tools/test-setup.sh runs "npm ci"), else '
                    'the copy an installed sdist or wheel carries in '
                    'serialproxy/vendor.'),
    cfg.IntOpt('max_spectators',
               default=10,
               min=0,
               help='Read-only spectators (mode=view) one console may '
                    'have at once, beside its writer. Each costs the '
                    'proxy holding the guest connection a copy of the '
                    'guest\'s output; past the cap a spectator is refused '
                    'with 429. 0 turns watching off.'),
    cfg.IntOpt('spectator_buffer_bytes',
               default=256 * 1024,
               min=4096,
               help='Console output that may wait for one slow spectator '
                    'before it is closed (close code 4007). A spectator '
                    'never slows the writer or other spectators: output '
                    'is not held back for it, it is dropped instead.'),
    cfg.HostAddressOpt('relay_host',
                       default='127.0.0.1',
                       help='Internal address on which each proxy worker '
                            'offers the output of the consoles it holds to '
                            'the other proxies\' spectators (on an '
                            'ephemeral port, recorded with the lease in '
                            'consoleauth). With proxies on several hosts, '
                            'set it to an address the other proxy hosts '
                            'reach and keep it off public networks; a '
                            'relay connection needs the lease\'s random '
                            'relay key, which is never listed.'),
]


def register_opts(conf):
    conf.register_group(console_group)
    conf.register_opts(console_opts, group=console_group)


def list_opts():
    return {console_group: console_opts}
