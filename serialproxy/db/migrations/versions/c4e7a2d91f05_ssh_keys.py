"""One-time SSH keys, and the transport of a session lease.

Revision ID: c4e7a2d91f05
Revises: 3c9e5a7b1d42
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = 'c4e7a2d91f05'
down_revision = '3c9e5a7b1d42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'console_ssh_keys',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('public_key', sa.Text, nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('serial_index', sa.Integer, nullable=False),
        sa.Column('compute_host', sa.String(255), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('port', sa.Integer, nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('created_at', sa.Double, nullable=False),
        sa.Column('expires_at', sa.Double, nullable=False),
    )
    op.create_index('ix_console_ssh_keys_fingerprint', 'console_ssh_keys',
                    ['fingerprint'])
    op.create_index('ix_console_ssh_keys_instance_uuid', 'console_ssh_keys',
                    ['instance_uuid'])
    op.create_index('ix_console_ssh_keys_expires_at', 'console_ssh_keys',
                    ['expires_at'])
    op.add_column('console_sessions',
                  sa.Column('transport', sa.String(16), nullable=True))


def downgrade():
    op.drop_column('console_sessions', 'transport')
    op.drop_table('console_ssh_keys')
