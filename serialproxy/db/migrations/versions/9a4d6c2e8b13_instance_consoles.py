"""The serial ports of each registered instance, for the lease's check.

Revision ID: 9a4d6c2e8b13
Revises: 5d2b9e4f7a30
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa

revision = '9a4d6c2e8b13'
down_revision = '5d2b9e4f7a30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'instance_consoles',
        sa.Column('instance_uuid', sa.String(36), primary_key=True),
        sa.Column('serial_index', sa.Integer, primary_key=True,
                  autoincrement=False),
        sa.Column('port', sa.Integer, nullable=False))
    # Instances registered before this revision have no ports on record
    # until their agent's next report: until then their tokens are
    # checked against their host alone, as an older agent's are.
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('consoles_known', sa.Boolean,
                                   nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('consoles_known')
    op.drop_table('instance_consoles')
