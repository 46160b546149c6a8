"""Spectators and take-over: session modes, seats, relays; token modes.

Revision ID: 3c9e5a7b1d42
Revises: 8f1c0a3d2b71
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = '3c9e5a7b1d42'
down_revision = '8f1c0a3d2b71'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('console_tokens') as batch:
        batch.add_column(sa.Column('modes', sa.String(64), nullable=True))
    with op.batch_alter_table('console_sessions') as batch:
        batch.add_column(sa.Column('mode', sa.String(16), nullable=False,
                                   server_default='write'))
        batch.add_column(sa.Column('seat', sa.String(36), nullable=False,
                                   server_default='writer'))
        batch.add_column(sa.Column('relay_address', sa.String(255),
                                   nullable=True))
        batch.add_column(sa.Column('relay_key', sa.String(64),
                                   nullable=True))
        batch.drop_constraint('uniq_console_sessions0console',
                              type_='unique')
        batch.create_unique_constraint(
            'uniq_console_sessions0console0seat',
            ['instance_uuid', 'serial_index', 'seat'])


def downgrade():
    with op.batch_alter_table('console_sessions') as batch:
        batch.drop_constraint('uniq_console_sessions0console0seat',
                              type_='unique')
    op.execute("DELETE FROM console_sessions WHERE seat != 'writer'")
    with op.batch_alter_table('console_sessions') as batch:
        batch.create_unique_constraint(
            'uniq_console_sessions0console', ['instance_uuid',
                                              'serial_index'])
        for column in ('relay_key', 'relay_address', 'seat', 'mode'):
            batch.drop_column(column)
    with op.batch_alter_table('console_tokens') as batch:
        batch.drop_column('modes')
