from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceledger.errors import ValidationError
from faceledger.gallery.index import (
    FlatIndex,
    HnswIndex,
    IndexFileError,
    IvfIndex,
    build_index,
    create_index,
    load_index,
    nlist_for,
    sidecar_path,
)

from .helpers import face_like

MODEL = "test-model-v1"
DIM = 32


def make(kind: str) -> tuple[FlatIndex | IvfIndex, np.ndarray, np.ndarray]:
    vectors, _ = face_like(100, 10, dim=DIM, seed=21)
    ids = np.arange(vectors.shape[0], dtype=np.int64) + 100
    index: FlatIndex | IvfIndex
    if kind == "ivf":
        index = IvfIndex(MODEL, DIM, nlist=16, nprobe=4)
        index.train(vectors)
    else:
        index = FlatIndex(MODEL, DIM)
    index.add(ids, vectors)
    return index, ids, vectors


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_save_load_round_trip(tmp_path: Path, kind: str, mmap: bool) -> None:
    index, ids, vectors = make(kind)
    path = tmp_path / "sub" / "gallery.faiss"
    index.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["gallery.faiss", "gallery.faiss.json"]
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["model_id"] == MODEL and meta["dim"] == DIM and meta["kind"] == kind
    assert meta["count"] == ids.size and meta["bytes"] == path.stat().st_size

    loaded = load_index(path, mmap=mmap)
    assert type(loaded) is type(index)
    assert loaded.model_id == MODEL and loaded.dim == DIM and loaded.count() == ids.size
    if isinstance(loaded, IvfIndex):
        assert loaded.nprobe == 4 and loaded.nlist == 16
    assert isinstance(loaded, FlatIndex | IvfIndex) and loaded.mapped == mmap
    np.testing.assert_array_equal(loaded.ids(), ids)
    want_scores, want_ids = index.search(vectors[:50], 10)
    got_scores, got_ids = loaded.search(vectors[:50], 10)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-6)

    # mutating a (possibly memory-mapped) loaded index works and leaves the file alone
    before = path.read_bytes()
    assert loaded.remove(ids[:10]) == 10
    loaded.add(np.array([5], dtype=np.int64), vectors[:1])
    assert loaded.count() == ids.size - 9 and not loaded.mapped
    assert path.read_bytes() == before
    _, found = loaded.search(vectors[:1], 1)
    assert found[0, 0] == 5


def test_save_overwrites_atomically_and_load_checks_sidecar(tmp_path: Path) -> None:
    index, ids, _ = make("flat")
    path = tmp_path / "g.faiss"
    index.save(path)
    mapped = load_index(path, mmap=True)
    index.remove(ids[:500])
    index.save(path)  # replaces the file under a live memory map
    assert mapped.count() == ids.size and load_index(path).count() == ids.size - 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.faiss", "g.faiss.json"]

    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "bytes": meta["bytes"] + 1}))
    with pytest.raises(IndexFileError):
        load_index(path)
    side.write_text(json.dumps({**meta, "kind": "ivf"}))
    with pytest.raises(IndexFileError):
        load_index(path)
    side.write_text(json.dumps({**meta, "kind": "nope"}))
    with pytest.raises(ValidationError, match="unknown index kind"):
        load_index(path)
    side.unlink()
    with pytest.raises(IndexFileError, match="missing"):
        load_index(path)


def test_unknown_kind_and_untrained_save_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        create_index("hnsw-nope", MODEL, DIM)
    with pytest.raises(ValidationError):
        create_index("flat", MODEL, 0)
    with pytest.raises(ValidationError):
        create_index("flat", "", DIM)
    with pytest.raises(Exception, match="not trained"):
        IvfIndex(MODEL, DIM).save(tmp_path / "x.faiss")
    assert not list(tmp_path.iterdir())


def test_build_index_picks_flat_below_threshold_and_hnsw_or_ivf_above() -> None:
    vectors, _ = face_like(300, 10, dim=DIM, seed=22)
    ids = np.arange(vectors.shape[0], dtype=np.int64)
    small = build_index(MODEL, DIM, ids[:1000], vectors[:1000], exact_max=1000)
    assert isinstance(small, FlatIndex) and small.capabilities.exact
    assert small.count() == 1000
    graph = build_index(MODEL, DIM, ids, vectors, exact_max=1000)
    assert isinstance(graph, HnswIndex) and graph.count() == 3000
    _, found = graph.search(vectors[:20], 1)
    np.testing.assert_array_equal(found[:, 0], ids[:20])
    big = build_index(MODEL, DIM, ids, vectors, exact_max=1000, nprobe=16, approximate="ivf")
    assert isinstance(big, IvfIndex) and big.capabilities.approximate
    assert big.count() == 3000 and big.nprobe == 16 and big.nlist == nlist_for(3000)
    assert big.model_id == MODEL
    _, found = big.search(vectors[:20], 1)
    np.testing.assert_array_equal(found[:, 0], ids[:20])
