"""Serial console access switches of projects and servers.

Revision ID: e7b3f1a9c254
Revises: 9a4d6c2e8b13
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa

revision = 'e7b3f1a9c254'
down_revision = '9a4d6c2e8b13'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'console_access',
        sa.Column('level', sa.String(16), primary_key=True),
        sa.Column('target', sa.String(255), primary_key=True),
        sa.Column('value', sa.String(16), nullable=False),
        sa.Column('updated_at', sa.Double, nullable=False),
        sa.Column('updated_by', sa.String(255), nullable=True))


def downgrade():
    op.drop_table('console_access')
