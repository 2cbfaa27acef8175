"""ledger Merkle tree in tiles: keep only the nodes at level 6 and up (tree.TILE)

The nodes below are recomputed from the entries when a proof needs them, so most appends write
nothing to the tree. No ledger row is changed; the downgrade stores every node again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TILE = 6  # faceledger.governance.tree.TILE when this revision was written


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_tree WHERE level < :tile").bindparams(tile=TILE))


def downgrade() -> None:
    from faceledger.governance import tree

    tree.rebuild(op.get_bind(), min_level=0)
