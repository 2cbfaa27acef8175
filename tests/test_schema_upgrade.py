"""A data home made by an earlier version is brought to the current schema when next opened."""

from __future__ import annotations

import sqlite3

from faceledger.core import Faceledger
from faceledger.db.engine import head_revision
from faceledger.db.schema import LedgerHead
from faceledger.governance import ledger, tree
from tests.conftest import World, make_settings


def test_an_older_data_home_is_upgraded_when_opened(world: World) -> None:
    home = world.app.settings.home
    world.app.close()
    db = sqlite3.connect(home / "faceledger.db")
    # as a data home from before migration 0002 (so before 0003 and 0004 too)
    for table in ("image_embeddings", "reembed_jobs", "app_settings", "ledger_cosignatures",
                  "ledger_checkpoints", "ledger_tree", "signin_throttle"):
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.commit()
    db.close()
    again = Faceledger(make_settings(home))
    try:
        again.db.require_initialised()
        assert again.db.schema_revision() == head_revision() == "0006"
        tables = sqlite3.connect(home / "faceledger.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for table in ("signin_throttle", "ledger_tree", "ledger_checkpoints",
                      "ledger_cosignatures", "app_settings", "reembed_jobs", "image_embeddings"):
            assert (table,) in tables
        with again.db.read() as s:  # the tree was built over the entries already there
            head = s.get(LedgerHead, 1)
            assert head is not None and head.seq > 0
            assert tree.tiled_size(s) == head.seq - head.seq % tree.TILE_SIZE
            assert ledger.verify(s).ok  # every stored tile matches its entries
    finally:
        again.close()
