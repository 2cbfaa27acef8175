"""IndexStore against a real SQLite database: what a rebuild reads, in batches."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select

from faceledger.db.schema import Collection, Face, Image
from faceledger.gallery import indexstore
from tests.conftest import World


def _insert(world: World, collection_id: int, model_id: str, vecs: np.ndarray,
            tag: str = "") -> list[int]:
    ids = []
    with world.app.db.write() as s:
        for i, v in enumerate(vecs):
            img = Image(collection_id=collection_id, sha256=f"{tag}{model_id}-{collection_id}-{i:04d}",
                        stored_path="x", width=1, height=1, bytes=1, format="JPEG",
                        ingested_at=datetime.now(UTC))
            img.faces.append(Face(collection_id=collection_id, face_index=0, box=[0, 0, 1, 1],
                                  landmarks=[], quality={}, model_id=model_id,
                                  embedding=v.astype("<f4").tobytes(), thumbnail_path="t"))
            s.add(img)
            s.flush()
            ids.append(img.faces[0].id)
    return ids


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, indexstore.DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_rebuild_reads_every_face_of_its_model_and_collection_across_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexstore, "READ_BATCH", 4)  # 23 faces -> 6 fetches, the last partial
    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    model = world.app.model_id
    mine = _unit(23, 1)
    ids = _insert(world, cid, model, mine)
    _insert(world, cid, "other-model", _unit(5, 2))  # same collection, another model: not read

    got_ids, got_vecs = world.app.indexes._db_vectors(model, cid)
    assert got_ids.tolist() == sorted(ids)
    assert got_vecs.dtype == np.float32 and got_vecs.flags.c_contiguous
    np.testing.assert_array_equal(got_vecs, mine[np.argsort(ids)])

    index = world.app.indexes.rebuild(model, cid)
    assert index.count() == 23
    scores, found = index.search(mine[7:8], 1)
    assert found[0, 0] == ids[7] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_empty_collection_reads_nothing(world: World) -> None:
    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    got_ids, got_vecs = world.app.indexes._db_vectors(world.app.model_id, cid)
    assert got_ids.shape == (0,) and got_vecs.shape == (0, indexstore.DIM)


def test_graph_search_width_comes_from_the_settings_also_for_a_saved_index(world: World) -> None:
    from faceledger.core import Faceledger
    from faceledger.gallery.index import HnswIndex
    from tests.conftest import make_settings

    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    vecs = _unit(30, 3)
    ids = _insert(world, cid, world.app.model_id, vecs)
    home = world.app.settings.home
    first = Faceledger(make_settings(home, index_exact_max=10, index_ef_search=77))
    try:
        built = first.indexes.get(first.model_id, cid)  # no file yet: built past exact_max
        assert isinstance(built, HnswIndex) and built.ef_search == 77
    finally:
        first.close()
    again = Faceledger(make_settings(home, index_exact_max=10, index_ef_search=300))
    try:
        loaded = again.indexes.get(again.model_id, cid)  # read from the file written above
        assert isinstance(loaded, HnswIndex) and loaded.ef_search == 300
        assert loaded.search(vecs[3:4], 1)[1][0, 0] == ids[3]
    finally:
        again.close()


def test_reconcile_reads_only_the_faces_the_index_lacks(world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexstore, "READ_BATCH", 2)  # 3 wanted ids -> 2 id batches
    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    vecs = _unit(9, 4)
    ids = _insert(world, cid, world.app.model_id, vecs)
    want = np.array([ids[8], ids[2], ids[5]])
    got_ids, got_vecs = world.app.indexes._db_vectors(world.app.model_id, cid, only=want)
    assert got_ids.tolist() == sorted(want.tolist())
    np.testing.assert_array_equal(got_vecs, vecs[[2, 5, 8]])


def test_a_saved_index_gains_faces_committed_after_it_was_written(world: World) -> None:
    from faceledger.core import Faceledger
    from tests.conftest import make_settings

    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    model = world.app.model_id
    first_ids = _insert(world, cid, model, _unit(4, 5))
    assert world.app.indexes.get(model, cid).count() == 4  # written to disk
    later = _unit(3, 6)
    later_ids = _insert(world, cid, model, later, tag="later-")  # as if a process died before indexing them
    again = Faceledger(make_settings(world.app.settings.home))
    try:
        index = again.indexes.get(model, cid)
        assert sorted(index.ids().tolist()) == sorted(first_ids + later_ids)
        assert index.search(later[1:2], 1)[1][0, 0] == later_ids[1]
    finally:
        again.close()


HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def test_index_files_are_read_and_built_under_a_cross_process_lock(world: World) -> None:
    """Another process (a CLI ingest beside the server) writing an index holds its lock: this
    process waits for it rather than read one writer's index beside another's sidecar."""
    with world.app.db.read() as s:
        cid = s.execute(select(Collection.id)).scalar_one()
    model = world.app.model_id
    _insert(world, cid, model, _unit(5, 3))
    path = world.app.indexes._path(model, cid)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "1.5"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = threading.Event()

        def load() -> None:
            world.app.indexes.get(model, cid)
            done.set()

        worker = threading.Thread(target=load)
        worker.start()
        assert not done.wait(0.7), "read the index while another process held its lock"
        holder.wait(timeout=10)
        assert done.wait(10)
        worker.join()
    finally:
        holder.kill()
    assert world.app.indexes.get(model, cid).count() == 5
    assert lock.stat().st_mode & 0o777 == 0o600
