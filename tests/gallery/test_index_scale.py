"""Index parameters that grow with the index (``gallery/index/params.py``) and rebuilds that
build beside the index in use and swap it in (``IndexStore.rebuild``)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from faceledger.db.schema import Collection, Face, Image
from faceledger.errors import ValidationError
from faceledger.gallery import indexstore
from faceledger.gallery.index import HnswIndex, build_index, load_index
from faceledger.gallery.index.faiss_common import faiss_module
from faceledger.gallery.index.params import default_table, ef_search_for, hnsw_params, parse_table
from faceledger.gallery.indexstore import IndexStore
from tests.conftest import World


def _insert(world: World, cid: int, vecs: np.ndarray, tag: str) -> list[int]:
    ids = []
    with world.app.db.write() as s:
        for i, v in enumerate(vecs):
            img = Image(collection_id=cid, sha256=f"{tag}-{i:05d}", stored_path="x", width=1,
                        height=1, bytes=1, format="JPEG", ingested_at=datetime.now(UTC))
            img.faces.append(Face(collection_id=cid, face_index=0, box=[0, 0, 1, 1], landmarks=[],
                                  quality={}, model_id=world.app.model_id,
                                  embedding=v.astype("<f4").tobytes(), thumbnail_path="t"))
            s.add(img)
            s.flush()
            ids.append(img.faces[0].id)
    return ids


def _delete(world: World, face_id: int) -> None:
    with world.app.db.write() as s:
        s.delete(s.get(Face, face_id))


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, indexstore.DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cid(world: World) -> int:
    with world.app.db.read() as s:
        return int(s.execute(select(Collection.id)).scalar_one())


def _store(world: World, cls: type[IndexStore] = IndexStore, ef_search: int = 128) -> IndexStore:
    return cls(world.app.settings.index_dir, world.app.db, exact_max=100, nprobe=8, ef_search=ef_search)


# --- the size table --------------------------------------------------------------------------

def test_search_width_grows_with_the_index_to_the_width_measured_at_10m() -> None:
    """efSearch 128 loses recall past 1M (0.937 at 10M); the table widens the search with size,
    up to efSearch 320 on graphs built with efConstruction 128, measured at recall@10 0.991 on
    10M faces."""
    assert hnsw_params(0).ef_search == 64
    assert hnsw_params(1_000_000).ef_search == 128
    assert hnsw_params(1_000_001).ef_search == 256
    assert hnsw_params(10_000_000).ef_search == 320
    assert hnsw_params(10**9).ef_search == 320
    assert hnsw_params(10_000_000).ef_construction == 128
    rows = default_table()
    widths = [r.ef_search for r in rows]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)
    assert all(r.ef_construction >= 64 for r in rows)
    builds = [r.ef_construction for r in rows]
    assert builds == sorted(builds)  # a bigger graph never gets a cheaper build


def test_the_setting_is_a_floor_over_the_table() -> None:
    assert ef_search_for(10_000, 128) == 128  # the default setting keeps today's width
    assert ef_search_for(10_000, 16) == 64
    assert ef_search_for(3_000_000, 128) == 288
    assert ef_search_for(3_000_000, 2000) == 2000


@pytest.mark.parametrize("rows", [
    [],
    [{"max_faces": 10, "ef_search": 64, "ef_construction": 64}],  # no open-ended last row
    [{"max_faces": None, "ef_search": 64, "ef_construction": 64},
     {"max_faces": 10, "ef_search": 64, "ef_construction": 64}],
    [{"max_faces": 20, "ef_search": 64, "ef_construction": 64},
     {"max_faces": 10, "ef_search": 64, "ef_construction": 64},
     {"max_faces": None, "ef_search": 64, "ef_construction": 64}],
    [{"max_faces": None, "ef_search": 1, "ef_construction": 64}],
    [{"max_faces": None, "ef_search": 64, "ef_construction": True}],
])
def test_a_malformed_table_is_refused(rows: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        parse_table({"hnsw": rows})


def test_a_table_row_applies_up_to_its_bound() -> None:
    table = parse_table({"hnsw": [{"max_faces": 10, "ef_search": 20, "ef_construction": 30},
                                  {"max_faces": None, "ef_search": 40, "ef_construction": 50}]})
    assert (hnsw_params(10, table).ef_search, hnsw_params(11, table).ef_construction) == (20, 50)
    with pytest.raises(ValidationError):
        hnsw_params(-1, table)


def test_ef_construction_reaches_the_graph_and_survives_a_reload(tmp_path: Path) -> None:
    vecs = _unit(300, 1)
    idx = build_index("m", indexstore.DIM, np.arange(300), vecs, exact_max=100, ef_construction=40)
    assert isinstance(idx, HnswIndex) and idx.ef_construction == 40
    idx.ef_construction = 90  # later adds link with the wider search
    inner = faiss_module().downcast_index(idx._index.index)
    assert inner.hnsw.efConstruction == 90
    idx.save(tmp_path / "g.faiss")
    again = load_index(tmp_path / "g.faiss")
    assert isinstance(again, HnswIndex) and again.ef_construction == 90
    assert faiss_module().downcast_index(again._index.index).hnsw.efConstruction == 90
    with pytest.raises(ValidationError):
        idx.ef_construction = 1


def test_a_loaded_graph_searches_with_the_tables_width_over_a_low_setting(world: World) -> None:
    cid = _cid(world)
    _insert(world, cid, _unit(150, 2), "t")
    store = _store(world, ef_search=8)
    built = store.get(world.app.model_id, cid)
    assert isinstance(built, HnswIndex) and built.ef_search == 64  # table row, not the setting's 8
    store.flush()
    loaded = _store(world, ef_search=300).get(world.app.model_id, cid)
    assert isinstance(loaded, HnswIndex) and loaded.ef_search == 300


# --- rebuilds beside the index in use --------------------------------------------------------

def test_searches_keep_answering_during_a_rebuild_and_see_the_same_faces(world: World) -> None:
    """A rebuild builds without the store's lock: a thread searching meanwhile is never refused,
    never blocked for the whole build, and finds each face before, during and after the swap."""
    cid, model = _cid(world), world.app.model_id
    vecs = _unit(4000, 3)
    ids = _insert(world, cid, vecs, "r")
    store = _store(world)
    old = store.get(model, cid)
    assert isinstance(old, HnswIndex)
    stop, errors, done = threading.Event(), [], []

    def searcher() -> None:
        i = 0
        while not stop.is_set():
            j = (i * 7919) % len(ids)
            try:
                _, found = store.search(model, cid, vecs[j], 1)
                if int(found[0]) != ids[j]:
                    errors.append(f"face {ids[j]} answered by {int(found[0])}")
            except Exception as exc:  # noqa: BLE001 - any error fails the test below
                errors.append(repr(exc))
            done.append(time.perf_counter())
            i += 1

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        while len(done) < 20:
            time.sleep(0.01)
        t0 = time.perf_counter()
        new = store.rebuild(model, cid)
        t1 = time.perf_counter()
        after = len(done)
        while len(done) < after + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    during = sum(t0 < t < t1 for t in done)
    assert during >= 5, f"only {during} searches finished during a {t1 - t0:.2f} s rebuild"
    assert new is not old and store.get(model, cid) is new
    assert sorted(new.ids().tolist()) == sorted(ids)


class _RacingStore(IndexStore):
    """A store in which faces are added and deleted in the database while its rebuild reads
    and builds (the hook runs after the build, before the swap)."""

    def __init__(self, *args: object, race: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.race = race

    def _build_detached(self, model_id: str, collection_id: int, path: Path
                        ) -> tuple[indexstore.VectorIndex, Path]:
        built = super()._build_detached(model_id, collection_id, path)
        self.race()  # type: ignore[operator]
        return built


def test_faces_added_and_deleted_during_a_rebuild_are_reconciled_at_the_swap(world: World) -> None:
    cid, model = _cid(world), world.app.model_id
    ids = _insert(world, cid, _unit(600, 4), "a")
    late = _unit(5, 5)
    late_ids: list[int] = []

    def race() -> None:
        late_ids.extend(_insert(world, cid, late, "late"))
        _delete(world, ids[0])

    store = _RacingStore(world.app.settings.index_dir, world.app.db, exact_max=100, nprobe=8,
                         race=race)
    index = store.rebuild(model, cid)
    want = sorted([*ids[1:], *late_ids])
    assert sorted(index.ids().tolist()) == want
    assert int(index.search(late[2:3], 1)[1][0, 0]) == late_ids[2]
    path = store._path(model, cid)
    assert not [p for p in path.parent.iterdir() if ".rebuild-" in p.name]  # temp files gone
    store.flush()  # the reconciled faces reach the file too
    assert sorted(load_index(path).ids().tolist()) == want


def test_tombstones_past_the_limit_rebuild_in_the_background(world: World) -> None:
    cid, model = _cid(world), world.app.model_id
    ids = _insert(world, cid, _unit(400, 6), "b")
    store = _store(world)
    old = store.get(model, cid)
    assert isinstance(old, HnswIndex)
    gone = ids[:60]  # 15% > REBUILD_FRACTION
    for face_id in gone:
        _delete(world, face_id)
    store.remove(model, cid, np.asarray(gone, dtype=np.int64))
    job = store._jobs[(model, cid)]
    job.join(timeout=60)
    assert not job.is_alive()
    new = store.get(model, cid)
    assert new is not old and isinstance(new, HnswIndex) and not new.needs_rebuild
    assert sorted(new.ids().tolist()) == sorted(ids[60:])
