"""serialproxy-manage: operator commands."""

import sys

from oslo_config import cfg

from serialproxy.compute import domain_xml
from serialproxy.compute import libvirt_driver
from serialproxy.compute import port_pool
from serialproxy.compute import serial_consoles
from serialproxy import conf as sp_conf
from serialproxy.db import api as db_api

CONF = sp_conf.CONF


def db_sync():
    """Create or update the database schema."""
    db_api.Database(CONF.database.connection).sync()
    print('Database schema is up to date.')
    return 0


def serial_console_add():
    """Give an existing defined domain TCP serial consoles from the pool."""
    args = CONF.category
    address = CONF.serial_console.proxyclient_address
    driver = libvirt_driver.LibvirtDriver(CONF.libvirt.connection_uri,
                                          CONF.host, address)
    domain = driver.domain_config(args.domain)
    existing = domain_xml.tcp_serial_ports(domain['xml'], address)
    if existing and not args.replace:
        print('Domain %s already has TCP serial consoles on ports %s; '
              'left as it is.' % (domain['name'],
                                  ', '.join(str(p['port']) for p in existing)))
        return 0
    pool = port_pool.PortPool.from_conf(CONF)
    try:
        consoles = serial_consoles.SerialConsoles(
            pool, address, CONF.compute.console_log_dir)
        allocation = consoles.allocate(domain['uuid'], args.count)
        try:
            driver.define(domain_xml.with_serial_devices(
                domain['xml'], allocation['devices']))
        except Exception:
            pool.release(domain['uuid'])
            raise
        # The running domain may still use replaced ports: sync from what
        # libvirt now says, live and next-boot config alike.
        pool.sync_instance(domain['uuid'],
                           driver.instance_and_ports(domain['uuid'])[1])
    finally:
        pool.close()
    print('Domain %s (%s): serial consoles on %s, console log %s.' % (
        domain['name'], domain['uuid'],
        ', '.join('%s:%d' % (p['host'], p['port'])
                  for p in allocation['ports']),
        allocation['log_file']))
    if domain['active']:
        print('The domain is running: the consoles appear when it is next '
              'started (shut it down, then start it).')
    return 0


def _add_command_parsers(subparsers):
    db = subparsers.add_parser('db', help='Database schema commands.')
    db_actions = db.add_subparsers(dest='action', metavar='ACTION')
    db_actions.required = True
    db_actions.add_parser('sync', help=db_sync.__doc__).set_defaults(
        func=db_sync)

    serial = subparsers.add_parser(
        'serial-console', help='Serial consoles of this host\'s domains.')
    serial_actions = serial.add_subparsers(dest='action', metavar='ACTION')
    serial_actions.required = True
    add = serial_actions.add_parser('add', help=serial_console_add.__doc__)
    add.add_argument('domain', help='Name or UUID of a defined domain.')
    add.add_argument('--count', default=None,
                     help='Number of serial consoles (hw_serial_port_count; '
                          'default 1, at most 3).')
    add.add_argument('--replace', action='store_true',
                     help='Replace TCP serial consoles the domain already '
                          'has, say to move them into the pool.')
    add.set_defaults(func=serial_console_add)


_COMMAND = cfg.SubCommandOpt('category', title='Commands',
                             handler=_add_command_parsers)


def main(argv=None):
    argv = sys.argv if argv is None else argv
    CONF.register_cli_opt(_COMMAND)
    try:
        CONF(argv[1:], project='serialproxy')
    except cfg.Error as exc:
        print('serialproxy-manage: %s' % exc, file=sys.stderr)
        return 2
    try:
        return CONF.category.func()
    except Exception as exc:
        print('serialproxy-manage: %s failed: %s'
              % (' '.join(argv[1:]), exc), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
