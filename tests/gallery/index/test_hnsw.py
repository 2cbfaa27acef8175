"""The HNSW graph index: recall, tombstone deletes, persistence, rebuild signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger.errors import ModelMismatchError, ValidationError
from faceledger.gallery.index import FlatIndex, HnswIndex, load_index
from tests.gallery.index.helpers import face_like

MODEL = "dlib-resnet-v1"
DIM = 32


def test_recall_against_exact() -> None:
    vectors, _ = face_like(2000, 10, dim=DIM, seed=3)
    ids = np.arange(len(vectors), dtype=np.int64) * 7
    graph, exact = HnswIndex(MODEL, DIM), FlatIndex(MODEL, DIM)
    graph.add(ids, vectors)
    exact.add(ids, vectors)
    queries = vectors[::97]
    _, want = exact.search(queries, 10)
    got_scores, got = graph.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert recall >= 0.97
    assert np.all(np.diff(got_scores, axis=1) <= 1e-6)  # best first


def test_tombstones_hide_removed_and_survive_save(tmp_path: Path) -> None:
    vectors, _ = face_like(300, 5, dim=DIM, seed=4)
    ids = np.arange(len(vectors), dtype=np.int64)
    idx = HnswIndex(MODEL, DIM)
    idx.add(ids, vectors)
    gone = ids[:40]
    assert idx.remove(gone) == 40 and idx.remove(gone) == 0
    assert idx.count() == len(ids) - 40
    _, found = idx.search(vectors[:40], 5)
    assert not np.isin(found, gone).any()
    assert not np.isin(idx.ids(), gone).any()
    with pytest.raises(ValidationError, match="rebuild"):
        idx.add(gone[:1], vectors[:1])
    idx.save(tmp_path / "h.faiss")
    back = load_index(tmp_path / "h.faiss")
    assert isinstance(back, HnswIndex) and back.count() == idx.count()
    _, again = back.search(vectors[:40], 5)
    assert not np.isin(again, gone).any()


def test_needs_rebuild_after_many_deletes() -> None:
    vectors, _ = face_like(100, 10, dim=DIM, seed=5)
    ids = np.arange(len(vectors), dtype=np.int64)
    idx = HnswIndex(MODEL, DIM)
    idx.add(ids, vectors)
    idx.remove(ids[:50])
    assert not idx.needs_rebuild  # 50 of 1000
    idx.remove(ids[50:150])
    assert idx.needs_rebuild  # 150 of 1000


def test_model_label_enforced() -> None:
    idx = HnswIndex(MODEL, DIM)
    with pytest.raises(ModelMismatchError):
        idx.search(np.ones((1, DIM), dtype=np.float32) / np.sqrt(DIM), 1, model_id="other")
