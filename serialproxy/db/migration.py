"""Schema versions of the consoleauth database, kept by alembic.

`serialproxy-manage db sync` brings a database to the newest revision;
the services refuse to start on a database behind the code.
"""

import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration
from alembic import script
import sqlalchemy as sa


_SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'migrations')
# Databases made before the schema had revisions were created from the
# models of this revision.
_FIRST_REVISION = '8f1c0a3d2b71'
# The tables of that revision: later revisions add tables such a
# database does not have yet.
_FIRST_TABLES = {'console_tokens', 'console_sessions', 'instances'}


def _config(connection=None):
    config = alembic_config.Config()
    config.set_main_option('script_location', _SCRIPTS)
    if connection is not None:
        config.attributes['connection'] = connection
    return config


def head():
    """The revision this code needs."""
    return script.ScriptDirectory.from_config(_config()).get_current_head()


def current(engine):
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return migration.MigrationContext.configure(
            connection).get_current_revision()


def upgrade(engine, revision='head'):
    """Apply the revisions the database lacks, up to revision."""
    with engine.begin() as connection:
        config = _config(connection)
        if _created_before_revisions(connection):
            command.stamp(config, _FIRST_REVISION)
        command.upgrade(config, revision)


def _created_before_revisions(connection):
    migration_context = migration.MigrationContext.configure(connection)
    if migration_context.get_current_revision() is not None:
        return False
    tables = set(sa.inspect(connection).get_table_names())
    return _FIRST_TABLES <= tables
