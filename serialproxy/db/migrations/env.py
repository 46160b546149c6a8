"""Alembic environment of the consoleauth database.

serialproxy-manage db sync hands in its own connection; the alembic command
line (for writing a new revision) uses sqlalchemy.url from alembic.ini.
"""

from alembic import context
import sqlalchemy as sa

from serialproxy.db import models

config = context.config
target_metadata = models.Base.metadata


def _run(connection):
    context.configure(connection=connection,
                      target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get('connection')
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(config.get_main_option('sqlalchemy.url'),
                              poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
