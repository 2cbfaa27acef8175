from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.core import Faceledger
from faceledger.gallery.collections import add_collection
from faceledger.settings import Settings


@dataclass
class World:
    app: Faceledger
    admin: Principal
    admin_token: str
    investigator: Principal
    investigator_token: str
    auditor: Principal


def make_settings(home: Path, **kw: object) -> Settings:
    return Settings(home=home, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app = Faceledger(make_settings(tmp_path / "home"))
    _, token = app.initialise("root")
    admin = app.authenticate(token)
    with app.db.write() as s:
        _, inv_token = accounts.create_user(s, "ivy", "investigator", actor=admin)
        aud, _ = accounts.create_user(s, "audrey", "auditor", actor=admin)
        add_collection(s, "gallery", "test data", "photos made by tests", actor=admin)
    w = World(app, admin, token, app.authenticate(inv_token), inv_token,
              Principal(aud.id, aud.name, aud.role))
    yield w
    app.close()
