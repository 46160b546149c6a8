"""Options of the [compute] group: the agent's port pool and console log."""

from oslo_config import cfg

compute_group = cfg.OptGroup(
    'compute',
    title='Compute agent options',
    help='How the compute agent keeps its serial port pool and reads the '
         'console logs of its guests.')

compute_opts = [
    cfg.StrOpt('port_pool_path',
               default='$state_path/serial_port_pool.sqlite',
               help='SQLite file of the persistent serial port pool. It must '
                    'be on a local disk: every process of this host that '
                    'allocates ports (the agent, serialproxy-manage) locks '
                    'it, and network file systems do not lock reliably.'),
    cfg.IntOpt('busy_port_retry_interval',
               default=600,
               min=0,
               help='Seconds a port that another program was found '
                    'listening on is skipped before it is tested again.'),
    cfg.IntOpt('port_reuse_delay',
               default=60,
               min=0,
               help='Seconds a released port waits before it is handed out '
                    'again, so a client still reconnecting to the old guest '
                    'never lands on a new one. Allocation also moves on '
                    'round the range, so reuse is usually much later.'),
    cfg.IntOpt('pending_allocation_timeout',
               default=600,
               min=1,
               help='Seconds an allocation that no domain XML names yet is '
                    'kept. The caller allocates before it defines the '
                    'domain; past this the ports count as leaked (the '
                    'caller died or gave up) and are freed.'),
    cfg.IntOpt('port_pool_lock_timeout',
               default=30,
               min=1,
               help='Seconds to wait for another process holding the port '
                    'pool before the allocation fails.'),
    cfg.StrOpt('console_log_dir',
               default='$state_path/console-log',
               help='Directory of the serial console logs that virtlogd '
                    'writes for the guests the agent gives serial ports to, '
                    'one file per instance. virtlogd bounds their size '
                    '(max_size, max_backups in virtlogd.conf).'),
    cfg.IntOpt('console_output_max_bytes',
               default=100 * 1024,
               min=1,
               help='At most this many bytes from the end of a console log '
                    'are read to answer a console output request.'),
    cfg.IntOpt('console_log_scan_interval',
               default=5,
               min=0,
               help='Seconds between two looks at the console logs of the '
                    'running guests, which keep their history offsets '
                    'counted from boot across virtlogd rotations. Offsets '
                    'stay exact while a guest prints less than virtlogd '
                    'keeps (max_backups * max_size) between two looks; '
                    'every history read looks too. 0: only reads look.'),
    cfg.IntOpt('libvirt_reconnect_interval',
               default=5,
               min=1,
               help='Seconds between attempts to reconnect to libvirt for '
                    'lifecycle events after the connection is lost.'),
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(compute_opts, group=compute_group)


def list_opts():
    return {compute_group: compute_opts}
