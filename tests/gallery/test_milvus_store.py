"""The app on Milvus Lite (FACELEDGER_VECTOR_URI=<tmp>/m.db): ingest indexes into Milvus, a
search finds the right person, erasure removes the vector, and ``index check`` reports OK, then a
mismatch after a vector is deleted or altered in Milvus directly, which ``--repair`` fixes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from faceledger.cli import app as cli_app
from faceledger.core import Faceledger
from faceledger.db.schema import Collection, Face, Image
from faceledger.gallery.collections import add_collection
from faceledger.gallery.index_check import index_check
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.milvus_store import MilvusStore
from faceledger.oversight.subjects import erase
from faceledger.search.match import candidates, match, resolve_collections
from tests.conftest import make_settings
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture(scope="module")
def lite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Faceledger, str]]:
    tmp = tmp_path_factory.mktemp("milvus-app")
    app = Faceledger(make_settings(tmp / "home", vector_uri=str(tmp / "m.db")))
    _, token = app.initialise("root")
    admin = app.authenticate(token)
    with app.db.write() as s:
        add_collection(s, "gallery", "test data", "photos made by tests", actor=admin)
    d = tmp / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(app, admin).run([d], "gallery")
    yield app, token
    app.close()


def _check(monkeypatch: pytest.MonkeyPatch, app: Faceledger, token: str, *args: str
           ) -> tuple[int, dict[str, object]]:
    monkeypatch.setenv("FACELEDGER_HOME", str(app.settings.home))
    monkeypatch.setenv("FACELEDGER_VECTOR_URI", str(app.settings.vector_uri))
    monkeypatch.setenv("FACELEDGER_TOKEN", token)
    res = CliRunner().invoke(cli_app, ["index", "check", "--json", *args])
    return res.exit_code, json.loads(res.stdout)


def test_ingest_indexes_into_milvus_and_search_finds_the_person(lite_app: tuple[Faceledger, str]
                                                                ) -> None:
    app, _ = lite_app
    assert isinstance(app.indexes, MilvusStore)
    assert not (app.settings.index_dir / app.model_id).exists()  # no faiss files written
    cols = resolve_collections(app, app.model_id, None)
    assert [(n, c) for _i, n, c in cols] == [("gallery", 2)]
    probe = app.pipeline().process(encode(astronaut_face())).faces[0].embedding
    found = match(app, probe, cols, "investigate", 5)
    assert len(found.hits) == 2 and found.hits[0][0] == pytest.approx(1.0, abs=1e-3)
    assert found.hits[0][0] > found.hits[1][0] + 0.05
    top = candidates(app, found.hits)[0]
    with app.db.read() as s:
        sha = s.execute(select(Image.sha256).where(Image.id == top.image_id)).scalar_one()
    assert sha == top.image_sha256 and top.face_id == found.hits[0][1]
    # the same face withheld at the engine: not returned
    (cid,) = [i for i, _n, _c in cols]
    _, ids = app.indexes.search(app.model_id, cid, probe.vector, 2, exclude=[top.face_id])
    assert top.face_id not in ids.tolist()


def test_index_check_reports_then_repairs(lite_app: tuple[Faceledger, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app, token = lite_app
    assert isinstance(app.indexes, MilvusStore)
    code, out = _check(monkeypatch, app, token)
    assert code == 0 and out["ok"] is True and out["engine"] == "milvus"
    with app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
        fids = sorted(s.execute(select(Face.id)).scalars())
    view = app.indexes.view(app.model_id, cid)
    view.remove(np.array([fids[0]]))  # deleted behind faceledger's back
    bogus = np.zeros((1, view.dim), dtype=np.float32)
    bogus[0, 0] = 1.0
    view.add(np.array([fids[1]]), bogus)  # a vector altered
    view.add(np.array([987_654]), bogus)  # an id the database does not have
    code, out = _check(monkeypatch, app, token)
    (row,) = out["indexes"]  # type: ignore[misc]
    assert code == 1 and out["ok"] is False
    assert (row["missing_ids"], row["extra_ids"], row["vectors_differ"]) == (
        [fids[0]], [987_654], [fids[1]])
    code, out = _check(monkeypatch, app, token, "--repair")
    (row,) = out["indexes"]  # type: ignore[misc]
    assert code == 0 and out["ok"] is True and row["repaired"] == {
        "missing": 1, "extra": 1, "vectors": 1, "rebuilt": 0}
    assert view.ids().tolist() == fids and row["min_cosine"] == pytest.approx(1.0, abs=1e-4)


def test_erasure_removes_the_vector_from_milvus(lite_app: tuple[Faceledger, str]) -> None:
    app, token = lite_app
    admin = app.authenticate(token)
    with app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
        fid = min(s.execute(select(Face.id)).scalars())
    view = app.indexes.view(app.model_id, cid)  # type: ignore[attr-defined]
    assert fid in view.ids().tolist()
    erase(app, admin, [fid], "erasure-ref-1")
    assert fid not in view.ids().tolist() and view.count() == 1
    report = index_check(app, admin)
    assert report["ok"] is True and report["indexes"][0]["faces_in_index"] == 1
