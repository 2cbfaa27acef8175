"""index check on the default engine (faiss files): a face missing from the file is reported,
and --repair rebuilds the file from the database."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import Collection
from faceledger.gallery.index import load_index
from faceledger.gallery.index_check import index_check
from tests.conftest import World
from tests.gallery.test_indexstore import _insert, _unit


def test_faiss_file_checked_and_repaired(world: World) -> None:
    app = world.app
    with app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    ids = _insert(world, cid, app.model_id, _unit(12, 5))
    app.indexes.get(app.model_id, cid)
    app.indexes.flush()
    report = index_check(app, world.auditor)
    assert report["engine"] == "faiss" and report["ok"] is True
    assert report["indexes"][0]["sampled"] == 12 and report["indexes"][0]["faces_in_index"] == 12
    path = app.indexes._path(app.model_id, cid)
    stale = load_index(path)
    stale.remove(np.array([ids[3]]))
    stale.save(path)  # the file now lacks a face the database has
    report = index_check(app, world.auditor)
    assert report["ok"] is False and report["indexes"][0]["missing_ids"] == [ids[3]]
    fixed = index_check(app, world.admin, repair=True)
    assert fixed["ok"] is True and fixed["indexes"][0]["repaired"]["rebuilt"] == 1
    assert ids[3] in load_index(path).ids().tolist()
