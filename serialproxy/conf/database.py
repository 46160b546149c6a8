"""Options of the [database] group: oslo.db's, as every OpenStack service
has them. Only consoleauth (and serialproxy-manage) opens the database.

``connection`` keeps its name and its default, a SQLite file under
state_path; the pool, retry and timeout options are oslo.db's own
(README, "Configuration"). consoleauth sizes its pool to its RPC threads
unless ``max_pool_size`` is set (serialproxy.service).
"""

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:///$state_path/serialproxy.sqlite'

database_group = cfg.OptGroup(
    'database',
    title='Database options',
    help='The SQL database of tokens, leases and the instance registry '
         '(oslo.db). SQLite suits one consoleauth process; use PostgreSQL '
         'or MariaDB when several share it.')

database_opts = db_options.database_opts
# On the options themselves, so that the sample config shows it too.
cfg.set_defaults(database_opts, connection=DEFAULT_CONNECTION)


def register_opts(conf):
    conf.register_group(database_group)
    conf.register_opts(database_opts, group=database_group)


def list_opts():
    return {database_group: database_opts}
