"""Options of the [database] group. Only consoleauth opens the database."""

from oslo_config import cfg

database_group = cfg.OptGroup(
    'database',
    title='Database options',
    help='The SQL database of tokens and the instance registry.')

database_opts = [
    cfg.StrOpt('connection',
               default='sqlite:///$state_path/serialproxy.sqlite',
               secret=True,
               help='SQLAlchemy URL of the database. SQLite suits one '
                    'consoleauth process; use PostgreSQL or MariaDB when '
                    'several share it.'),
]


def register_opts(conf):
    conf.register_group(database_group)
    conf.register_opts(database_opts, group=database_group)


def list_opts():
    return {database_group: database_opts}
