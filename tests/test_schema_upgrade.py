"""A data home made by an earlier version is brought to the current schema when next opened."""

from __future__ import annotations

import sqlite3

from faceledger.core import Faceledger
from faceledger.db.engine import head_revision
from tests.conftest import World, make_settings


def test_an_older_data_home_is_upgraded_when_opened(world: World) -> None:
    home = world.app.settings.home
    world.app.close()
    db = sqlite3.connect(home / "faceledger.db")
    db.execute("DROP TABLE signin_throttle")  # as a data home from before migration 0002
    db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.commit()
    db.close()
    again = Faceledger(make_settings(home))
    try:
        again.db.require_initialised()
        assert again.db.schema_revision() == head_revision() == "0002"
        tables = sqlite3.connect(home / "faceledger.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert ("signin_throttle",) in tables
    finally:
        again.close()
