"""serialproxy-manage: operator commands."""

import datetime
import sys

from oslo_config import cfg
import oslo_messaging as messaging

from serialproxy.compute import domain_xml
from serialproxy.compute import libvirt_driver
from serialproxy.compute import port_pool
from serialproxy.compute import serial_consoles
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.db import api as db_api
from serialproxy.db import migration
from serialproxy import exception
from serialproxy import rpc

CONF = sp_conf.CONF


def db_sync():
    """Create or update the database schema."""
    db_api.Database(CONF.database.connection).sync()
    print('Database schema is up to date.')
    return 0


def db_version():
    """Print the schema revision of the database."""
    database = db_api.Database(CONF.database.connection)
    print(migration.current(database.engine) or 'none (run "db sync")')
    return 0


def _consoleauth():
    rpc.init(CONF)
    return consoleauth_rpcapi.ConsoleAuthAPI()


def sessions_list():
    """List live console sessions, of one instance or all."""
    sessions = _consoleauth().list_sessions({}, CONF.category.instance)
    print('%-36s  %-36s  %5s  %-9s  %-15s  %-21s  %-20s  %s' % (
        'session', 'instance', 'index', 'mode', 'user', 'client', 'started',
        'proxy'))
    for s in sessions:
        started = datetime.datetime.fromtimestamp(
            s['started_at'], datetime.timezone.utc).strftime(
                '%Y-%m-%dT%H:%M:%SZ')
        print('%-36s  %-36s  %5d  %-9s  %-15s  %-21s  %-20s  %s' % (
            s['id'], s['instance_uuid'], s['index'],
            s.get('mode', 'write'), s['user_id'] or '-',
            s['remote_address'] or '-', started, s['proxy_host']))
    return 0


def sessions_disconnect():
    """Force sessions of an instance off its consoles."""
    category = CONF.category
    try:
        ids = _consoleauth().force_disconnect(
            {}, category.instance, session_id=category.session,
            revoke_tokens=category.revoke_tokens,
            revoke_session_tokens=not category.keep_tokens)
    except exception.SessionNotFound as exc:
        print('serialproxy-manage: %s' % exc, file=sys.stderr)
        return 1
    print('Disconnected %d session(s)%s.' % (
        len(ids),
        ' and revoked the instance\'s tokens' if category.revoke_tokens
        else '' if category.keep_tokens
        else ' and revoked its token' if len(ids) == 1
        else ' and revoked their tokens' if ids else ''))
    return 0


def _print_access(answer):
    where = ('server %s (project %s)' % (answer['server_id'],
                                         answer['project_id'])
             if 'server_id' in answer else 'project %s' % answer['project_id'])
    levels = ', '.join('%s %s' % (level, value or 'unset')
                       for level, value in answer['levels'].items())
    print('Serial console access of %s: %s, decided by the %s (%s).' % (
        where, 'enabled' if answer['enabled'] else 'disabled',
        answer['decided_by'], levels))


def _access_target():
    """{'project_id'} or {'instance_uuid'} from --project / --server."""
    category = CONF.category
    if category.server:
        return {'instance_uuid': category.server}
    return {'project_id': category.project}


def access_show():
    """Show the serial console access of a project or a server."""
    _print_access(_consoleauth().get_console_access({}, **_access_target()))
    return 0


def _access_set(enabled):
    try:
        answer = _consoleauth().set_console_access(
            {}, enabled=enabled, source='serialproxy-manage',
            **_access_target())
    except exception.InstanceNotFound as exc:
        print('serialproxy-manage: %s' % exc, file=sys.stderr)
        return 1
    _print_access(answer)
    return 0


def access_enable():
    """Turn serial console access of a project or a server on."""
    return _access_set(True)


def access_disable():
    """Turn serial console access of a project or a server off: its
    live sessions end, its one-time SSH keys are dropped."""
    return _access_set(False)


def access_unset():
    """Unset a project's or a server's switch: it follows the next
    level out again (a server its project, a project the cloud)."""
    return _access_set(None)


def access_list():
    """List the projects whose serial console access switch is set."""
    for answer in _consoleauth().list_console_access({}):
        _print_access(answer)
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
    db_actions.add_parser('version', help=db_version.__doc__).set_defaults(
        func=db_version)

    sessions = subparsers.add_parser('sessions',
                                     help='Console session commands.')
    actions = sessions.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    listing = actions.add_parser('list', help=sessions_list.__doc__)
    listing.add_argument('--instance', help='Only this instance\'s.')
    listing.set_defaults(func=sessions_list)
    disconnect = actions.add_parser('disconnect',
                                    help=sessions_disconnect.__doc__)
    disconnect.add_argument('instance', help='Instance UUID.')
    disconnect.add_argument('--session', help='Only this session.')
    revocation = disconnect.add_mutually_exclusive_group()
    revocation.add_argument('--revoke-tokens', action='store_true',
                            help='Revoke every token of the instance, so '
                                 'no URL handed out opens any more (by '
                                 'default only the tokens the ended '
                                 'sessions were opened with are).')
    revocation.add_argument('--keep-tokens', action='store_true',
                            help='Keep the ended sessions\' tokens: their '
                                 'URLs may open the console again.')
    disconnect.set_defaults(func=sessions_disconnect)

    access = subparsers.add_parser(
        'access', help='Serial console access of projects and servers.')
    access_actions = access.add_subparsers(dest='action', metavar='ACTION')
    access_actions.required = True
    for name, func in (('show', access_show), ('enable', access_enable),
                       ('disable', access_disable), ('unset', access_unset)):
        verb = access_actions.add_parser(name, help=func.__doc__)
        which = verb.add_mutually_exclusive_group(required=True)
        which.add_argument('--project', help='Project id (taken as given).')
        which.add_argument('--server', help='Server (instance) UUID.')
        verb.set_defaults(func=func)
    access_actions.add_parser('list', help=access_list.__doc__).set_defaults(
        func=access_list)
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
    except messaging.MessagingTimeout:
        print('serialproxy-manage: consoleauth did not answer; is it '
              'running, and is [DEFAULT] transport_url right?',
              file=sys.stderr)
        return 1
    except Exception as exc:
        print('serialproxy-manage: %s failed: %s'
              % (' '.join(argv[1:]), exc), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
