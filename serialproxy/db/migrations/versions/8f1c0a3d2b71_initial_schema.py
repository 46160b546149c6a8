"""Initial schema: console tokens, console session leases, instances.

Revision ID: 8f1c0a3d2b71
Revises:
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa

revision = '8f1c0a3d2b71'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'console_tokens',
        sa.Column('token_hash', sa.String(64), primary_key=True),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('console_type', sa.String(16), nullable=False),
        sa.Column('compute_host', sa.String(255), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('port', sa.Integer, nullable=False),
        sa.Column('serial_index', sa.Integer, nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('created_at', sa.Double, nullable=False),
        sa.Column('expires_at', sa.Double, nullable=False),
    )
    op.create_index('ix_console_tokens_instance_uuid', 'console_tokens',
                    ['instance_uuid'])
    op.create_index('ix_console_tokens_expires_at', 'console_tokens',
                    ['expires_at'])

    op.create_table(
        'console_sessions',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('serial_index', sa.Integer, nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('remote_address', sa.String(255), nullable=True),
        sa.Column('proxy_host', sa.String(255), nullable=False),
        sa.Column('started_at', sa.Double, nullable=False),
        sa.Column('expires_at', sa.Double, nullable=False),
        sa.Column('bytes_to_guest', sa.BigInteger, nullable=False),
        sa.Column('bytes_to_client', sa.BigInteger, nullable=False),
        sa.UniqueConstraint('instance_uuid', 'serial_index',
                            name='uniq_console_sessions0console'),
    )
    op.create_index('ix_console_sessions_token_hash', 'console_sessions',
                    ['token_hash'])
    op.create_index('ix_console_sessions_proxy_host', 'console_sessions',
                    ['proxy_host'])
    op.create_index('ix_console_sessions_expires_at', 'console_sessions',
                    ['expires_at'])

    op.create_table(
        'instances',
        sa.Column('uuid', sa.String(36), primary_key=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('updated_at', sa.Double, nullable=False),
    )
    op.create_index('ix_instances_host', 'instances', ['host'])
