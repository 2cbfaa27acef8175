"""ledger Merkle tree: RFC 9162 nodes over the existing ledger entries

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

log = logging.getLogger("faceledger.db")


def upgrade() -> None:
    op.create_table('ledger_tree',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx'),
    sqlite_with_rowid=False,
    )
    # Build the tree for the entries already there: read in seq order, in batches, leaves from
    # the entries' fields (ledger.leaf_data); no ledger row is changed.
    from faceledger.governance import tree

    built = tree.rebuild(op.get_bind())
    log.info("built the ledger's Merkle tree over %d existing entries", built)


def downgrade() -> None:
    op.drop_table('ledger_tree')
