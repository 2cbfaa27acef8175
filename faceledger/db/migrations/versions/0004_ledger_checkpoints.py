"""ledger checkpoints (signed notes) and witness cosignatures

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ledger_checkpoints',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sa.String(length=64), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_ledger_checkpoints_size', 'ledger_checkpoints', ['size'])
    op.create_table(
        'ledger_cosignatures',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('checkpoint_id', sa.Integer(), nullable=False),
        sa.Column('witness', sa.String(length=200), nullable=False),
        sa.Column('key_id', sa.String(length=8), nullable=False),
        sa.Column('vkey', sa.Text(), nullable=False),
        sa.Column('signature', sa.Text(), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('posted_by', sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(['checkpoint_id'], ['ledger_checkpoints.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_ledger_cosignatures_checkpoint_id', 'ledger_cosignatures',
                    ['checkpoint_id'])
    op.create_index('ix_ledger_cosignatures_witness', 'ledger_cosignatures', ['witness'])


def downgrade() -> None:
    op.drop_table('ledger_cosignatures')
    op.drop_table('ledger_checkpoints')
