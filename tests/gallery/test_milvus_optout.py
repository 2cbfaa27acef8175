"""Opt-outs on Milvus Lite: the opted-out faces are excluded inside the engine's search, so a
search for a person with many opted-out faces still fills its top-k with eligible faces, and
none of the opted-out ones ever comes back (also when the range search that finds them up
front misses some)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from faceledger.core import Faceledger
from faceledger.db.schema import Face, Image
from faceledger.faces.embed import Embedding
from faceledger.faces.models.base import model_dim
from faceledger.gallery.collections import add_collection
from faceledger.gallery.index.milvus_backend import MilvusIndex
from faceledger.gallery.milvus_store import MilvusStore
from faceledger.gallery.optout import add_optout
from faceledger.search.match import match, resolve_collections
from tests.conftest import make_settings

PERSON, OTHERS, TOP_K = 30, 60, 10  # more opted-out faces than top_k + 10


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _insert(app: Faceledger, collection_id: int, vecs: np.ndarray) -> list[int]:
    ids = []
    with app.db.write() as s:
        for i, v in enumerate(vecs):
            img = Image(collection_id=collection_id, sha256=f"optout-{collection_id}-{i:04d}",
                        stored_path="x", width=1, height=1, bytes=1, format="JPEG",
                        ingested_at=datetime.now(UTC))
            img.faces.append(Face(collection_id=collection_id, face_index=0, box=[0, 0, 1, 1],
                                  landmarks=[], quality={}, model_id=app.model_id,
                                  embedding=v.astype("<f4").tobytes(), thumbnail_path="t"))
            s.add(img)
            s.flush()
            ids.append(int(img.faces[0].id))
    return ids


@pytest.fixture
def opted(tmp_path: Path) -> Iterator[tuple[Faceledger, np.ndarray, set[int], set[int]]]:
    """An app on Milvus Lite with one collection: PERSON faces of one person (cosine ~0.95 to
    the centre) and OTHERS unrelated faces; the person opted out (threshold 0.85)."""
    app = Faceledger(make_settings(tmp_path / "home", vector_uri=str(tmp_path / "m.db"),
                                   optout_threshold=0.85))
    _, token = app.initialise("root")
    admin = app.authenticate(token)
    with app.db.write() as s:
        cid = int(add_collection(s, "gallery", "test data", "synthetic faces", actor=admin).id)
    dim = model_dim(app.model_id)
    rng = np.random.default_rng(7)
    centre = _unit(rng.standard_normal(dim))
    person = _unit(centre + 0.03 * rng.standard_normal((PERSON, dim)))
    others = _unit(rng.standard_normal((OTHERS, dim)))
    assert (person @ centre).min() > 0.9 and (others @ centre).max() < 0.5
    blocked = set(_insert(app, cid, np.vstack([person, others]))[:PERSON])
    add_optout(app, admin, [Embedding(app.model_id, centre)], "subject request 1")
    everyone = set(app.indexes.get(app.model_id, cid).ids().tolist())
    yield app, centre, blocked, everyone - blocked
    app.close()


def test_opted_out_faces_are_excluded_in_milvus_and_top_k_stays_full(
        opted: tuple[Faceledger, np.ndarray, set[int], set[int]]) -> None:
    app, centre, blocked, eligible = opted
    assert isinstance(app.indexes, MilvusStore)
    cols = resolve_collections(app, app.model_id, None)
    assert [c for _i, _n, c in cols] == [PERSON + OTHERS]
    view = app.indexes.view(app.model_id, cols[0][0])  # the range search that finds them
    assert set(view.within(centre[None, :], 0.85).tolist()) == blocked
    found = match(app, Embedding(app.model_id, centre), cols, "investigate", TOP_K)
    ids = [i for _s, i in found.hits]
    assert len(ids) == TOP_K and set(ids) <= eligible and not set(ids) & blocked
    assert found.withheld == PERSON  # every one of them outscored the faces shown
    scores = [sc for sc, _i in found.hits]
    assert scores == sorted(scores, reverse=True)
    # a probe of someone else: the opted-out faces still never come back, all k slots filled
    for j, other in enumerate(sorted(eligible)[:3]):
        vec = _unit(centre + (j + 1) * 0.5 * np.eye(len(centre), dtype=np.float32)[other % 50])
        got = match(app, Embedding(app.model_id, vec), cols, "investigate", TOP_K)
        assert len(got.hits) == TOP_K and not {i for _s, i in got.hits} & blocked
    # more than the collection's eligible faces asked for: all of them, none withheld shown
    every = match(app, Embedding(app.model_id, centre), cols, "investigate", 200)
    assert {i for _s, i in every.hits} == eligible and every.withheld == PERSON


def test_faces_the_range_search_misses_are_still_excluded(
        opted: tuple[Faceledger, np.ndarray, set[int], set[int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The up-front range search finds nothing (as an approximate index may): the search
    learns the opted-out faces from its own results and searches again, k results still come
    back and none of them is opted out."""
    app, centre, blocked, eligible = opted
    monkeypatch.setattr(MilvusIndex, "within",
                        lambda self, vectors, threshold, **kw: np.zeros(0, dtype=np.int64))
    cols = resolve_collections(app, app.model_id, None)
    found = match(app, Embedding(app.model_id, centre), cols, "investigate", TOP_K)
    ids = {i for _s, i in found.hits}
    assert len(ids) == TOP_K and ids <= eligible and not ids & blocked
    assert found.withheld == PERSON
