"""What a one-time SSH key's session may do besides typing: its modes.

Revision ID: 5d2b9e4f7a30
Revises: c4e7a2d91f05
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = '5d2b9e4f7a30'
down_revision = 'c4e7a2d91f05'
branch_labels = None
depends_on = None


def upgrade():
    # Keys pushed before this revision have none: their sessions may not
    # send SysRq, the safe side, and they expire within [ssh] key_ttl.
    with op.batch_alter_table('console_ssh_keys') as batch:
        batch.add_column(sa.Column('modes', sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table('console_ssh_keys') as batch:
        batch.drop_column('modes')
