"""The Milvus backend on Milvus Lite (the same client calls a cluster gets): one Milvus collection
per model, searches kept inside one gallery collection, upserts, deletes for erasure, counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceledger.errors import ModelMismatchError, ValidationError
from faceledger.gallery.index import available_kinds, create_index
from faceledger.gallery.index.milvus_backend import (
    MilvusConfig,
    MilvusIndex,
    check_config,
    collection_name,
    connect,
)

DIM = 16


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, MilvusConfig]]:
    config = check_config(MilvusConfig(uri=str(tmp_path_factory.mktemp("milvus") / "m.db")))
    client = connect(config)
    yield client, config
    client.close()


def test_search_stays_in_its_gallery_collection_and_counts_per_collection(
        lite: tuple[Any, MilvusConfig]) -> None:
    client, config = lite
    a = MilvusIndex(client, config, "model-a", DIM, collection_id=1)
    b = MilvusIndex(client, config, "model-a", DIM, collection_id=2)
    assert a.name == b.name  # one Milvus collection per model
    va, vb = _unit(30, 1), _unit(20, 2)
    a.add(np.arange(100, 130), va)
    b.add(np.arange(200, 220), vb)
    assert (a.count(), b.count()) == (30, 20)
    assert a.ids().tolist() == list(range(100, 130))
    scores, ids = a.search(np.vstack([va[7], vb[3]]), 5)
    assert ids.shape == (2, 5) and ids[0, 0] == 107 and scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert set(ids.ravel().tolist()) <= set(range(100, 130))  # b's exact match not found in a
    assert (scores[0, :-1] >= scores[0, 1:]).all()
    _, without = a.search(va[7:8], 5, exclude=[107])  # a withheld (opted-out) face
    assert 107 not in without[0].tolist() and without[0, 0] >= 100
    s_more, i_more = b.search(vb[:1], 25)  # k beyond the collection: empty slots
    assert (i_more[0, 20:] == -1).all() and np.isneginf(s_more[0, 20:]).all()


def test_upsert_replaces_and_remove_erases(lite: tuple[Any, MilvusConfig]) -> None:
    client, config = lite
    idx = MilvusIndex(client, config, "model-b", DIM, collection_id=7)
    v = _unit(10, 3)
    idx.add(np.arange(10), v)
    idx.add(np.array([4]), v[5:6])  # same id again: replaced, not duplicated
    assert idx.count() == 10
    assert np.dot(idx.vectors(np.array([4]))[4], v[5]) == pytest.approx(1.0, abs=1e-5)
    assert idx.remove(np.array([2, 3, 999])) == 2  # only the present ones count
    assert idx.count() == 8 and not {2, 3} & set(idx.ids().tolist())
    _, ids = idx.search(v[2:3], 8)
    assert 2 not in ids[0].tolist()
    assert idx.remove(np.array([2])) == 0
    idx.clear()
    assert idx.count() == 0


def test_model_mismatch_and_dimension_are_refused(lite: tuple[Any, MilvusConfig]) -> None:
    client, config = lite
    idx = MilvusIndex(client, config, "model-c", DIM, collection_id=1)
    with pytest.raises(ModelMismatchError):
        idx.add(np.array([1]), _unit(1, 4), model_id="another-model")
    with pytest.raises(ValidationError, match="shape"):
        idx.add(np.array([1]), np.ones((1, DIM + 1), dtype=np.float32))
    from faceledger.gallery.index.base import IndexFileError
    with pytest.raises(IndexFileError, match="16-d"):
        MilvusIndex(client, config, "model-c", DIM * 2, collection_id=1)


def test_registry_creates_milvus_indexes(lite: tuple[Any, MilvusConfig]) -> None:
    client, config = lite
    assert "milvus" in available_kinds()
    idx = create_index("milvus", "model-d", DIM, config=config, collection_id=3, client=client)
    assert isinstance(idx, MilvusIndex) and idx.kind == "milvus" and idx.model_id == "model-d"
    assert idx.capabilities.supports_remove and not idx.capabilities.exact


def test_names_and_settings_checks(tmp_path: Path) -> None:
    a, b = collection_name("faceledger", "dlib-resnet-v1"), collection_name("faceledger", "dlib_resnet_v1")
    assert a.startswith("faceledger_dlib_resnet_v1_") and a != b  # sanitised alike, still distinct
    assert all(c.isalnum() or c == "_" for c in a)
    with pytest.raises(ValidationError, match="Milvus Lite cannot build a DISKANN"):
        check_config(MilvusConfig(uri=str(tmp_path / "m.db"), index_type="DISKANN"))
    with pytest.raises(ValidationError, match=r"\.db"):
        check_config(MilvusConfig(uri=str(tmp_path / "m.sqlite")))
    server = check_config(MilvusConfig(uri="http://milvus:19530", index_type="DISKANN"))
    assert server.index_type == "DISKANN"
    hnsw = MilvusConfig(uri="x.db", ef_search=64)
    assert hnsw.query_params(10) == {"ef": 64} and hnsw.query_params(500) == {"ef": 500}
    assert MilvusConfig(uri="x.db", index_type="IVF_FLAT", nprobe=32).query_params(5) == {"nprobe": 32}
