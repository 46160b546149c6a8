"""serialproxy-manage: operator commands."""

import sys

from oslo_config import cfg

from serialproxy import conf as sp_conf
from serialproxy.db import api as db_api

CONF = sp_conf.CONF


def db_sync():
    """Create or update the database schema."""
    db_api.Database(CONF.database.connection).sync()
    print('Database schema is up to date.')
    return 0


def _add_command_parsers(subparsers):
    db = subparsers.add_parser('db', help='Database schema commands.')
    db_actions = db.add_subparsers(dest='action', metavar='ACTION')
    db_actions.required = True
    db_actions.add_parser('sync', help=db_sync.__doc__).set_defaults(
        func=db_sync)


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
