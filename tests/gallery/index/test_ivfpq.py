"""The ``ivfpq`` index: IVF + 4-bit PQ fast scan with an exact re-rank."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from faceledger.errors import ConflictError, ModelMismatchError, ValidationError
from faceledger.gallery.index import (
    FlatIndex,
    IndexFileError,
    IvfPqIndex,
    VectorIndex,
    available_kinds,
    build_index,
    create_index,
    load_index,
    sidecar_path,
)
from faceledger.gallery.index.params import ivfpq_params, parse_ivfpq_table

from .helpers import face_like

MODEL = "test-model-v1"
DIM = 64
SMALL = {"nlist": 32, "m": 32, "nprobe": 16, "k_factor": 10, "min_train": 2000}


def recall(got: npt.NDArray[np.int64], want: npt.NDArray[np.int64]) -> float:
    return float(np.mean([len(set(a) & set(b)) / want.shape[1] for a, b in zip(got, want, strict=True)]))


def built(n_ids: int = 600, seed: int = 1, **params: Any) -> tuple[IvfPqIndex, np.ndarray, np.ndarray]:
    vectors, _ = face_like(n_ids, 10, dim=DIM, seed=seed)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 11
    index = IvfPqIndex(MODEL, DIM, **(SMALL | params))
    index.add(ids, vectors)
    return index, ids, vectors


def tail_codes(index: IvfPqIndex) -> int:
    """Non-zero code slots past the end of the PQ lists (what a removal could leave behind)."""
    import faiss

    inv = faiss.downcast_InvertedLists(index._index.invlists)
    out, per, nonzero = np.zeros(inv.packer.code_size, dtype=np.uint8), inv.n_per_block, 0
    for list_no in range(inv.nlist):
        size = inv.list_size(list_no)
        for slot in range(size, -(-size // per) * per):
            inv.packer.unpack_1_c(inv.get_codes(list_no), slot, faiss.swig_ptr(out))
            nonzero += int(out.any())
    return nonzero


def test_registered_and_a_vector_index() -> None:
    assert "ivfpq" in available_kinds()
    index = create_index("ivfpq", MODEL, DIM, **SMALL)
    assert isinstance(index, IvfPqIndex) and isinstance(index, VectorIndex)
    assert index.capabilities.approximate and index.capabilities.supports_remove


def test_recall_against_exact_and_exact_scores() -> None:
    index, ids, vectors = built()
    assert index.is_trained and index.count() == len(ids)
    exact = FlatIndex(MODEL, DIM)
    exact.add(ids, vectors)
    queries = vectors[::53]
    want_scores, want = exact.search(queries, 10)
    scores, got = index.search(queries, 10)
    assert recall(got, want) >= 0.97
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    hit = got == want
    np.testing.assert_allclose(scores[hit], want_scores[hit], atol=1e-5)  # re-ranked: exact scores


def test_exact_below_min_train_then_trains_itself() -> None:
    vectors, _ = face_like(300, 10, dim=DIM, seed=2)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = IvfPqIndex(MODEL, DIM, **SMALL)
    index.add(ids[:1500], vectors[:1500])
    assert not index.is_trained
    exact = FlatIndex(MODEL, DIM)
    exact.add(ids[:1500], vectors[:1500])
    assert np.array_equal(index.search(vectors[:20], 5)[1], exact.search(vectors[:20], 5)[1])
    index.add(ids[1500:], vectors[1500:])
    assert index.is_trained and index.count() == 3000
    _, found = index.search(vectors[::31], 1)
    assert (found[:, 0] == ids[::31]).mean() >= 0.95


def test_remove_really_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, ids, vectors = built(seed=3)
    gone = ids[::5]
    assert index.remove(gone) == gone.size and index.remove(gone) == 0
    assert index.count() == len(ids) - gone.size
    assert not np.isin(index.ids(), gone).any()
    _, found = index.search(vectors[::5], 10)
    assert not np.isin(found, gone).any()
    assert tail_codes(index) == 0  # no PQ code of a removed face left in the lists' spare slots
    index.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as z:  # the float store on disk holds no removed vector
        kept = z["vectors"]
        assert not np.isin(z["ids"], gone).any() and kept.shape[0] == index.count()
    assert np.max(kept @ vectors[::5].T) < 1 - 1e-6  # (face_like samples are distinct)
    # without the scrub, faiss would leave codes behind: the check above can fail
    other, ids2, _ = built(seed=3)
    monkeypatch.setattr(IvfPqIndex, "_scrub", lambda self, lists: None)
    other.remove(ids2[::5])
    assert tail_codes(other) > 0


def test_readd_after_remove_and_out_of_order_ids() -> None:
    index, ids, vectors = built(seed=4)
    gone = ids[100:300:7]
    index.remove(gone)
    index.add(gone[::-1], vectors[100:300:7][::-1])  # back in, unsorted, between held ids
    assert np.array_equal(index.ids(), np.sort(ids))
    _, found = index.search(vectors[100:300:7], 1)
    assert np.array_equal(found[:, 0], gone)
    with pytest.raises(ConflictError):
        index.add(gone[:1], vectors[100:101])
    with pytest.raises(ValidationError, match="duplicates"):
        index.add(np.array([1, 1], dtype=np.int64), vectors[:2])


@pytest.mark.parametrize("trained", [True, False])
def test_save_load_roundtrip_keeps_results(tmp_path: Path, trained: bool) -> None:
    index, _, vectors = built(seed=5) if trained else built(100, seed=5)
    assert index.is_trained is trained
    index.nprobe = 8
    path = tmp_path / "ivfpq.index"
    index.save(path)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["kind"] == "ivfpq" and meta["model_id"] == MODEL and meta["dim"] == DIM
    back = load_index(path)
    assert isinstance(back, IvfPqIndex) and back.is_trained is trained
    assert (back.nlist, back.m, back.nprobe, back.k_factor) == (index.nlist, index.m, 8, index.k_factor)
    assert np.array_equal(back.ids(), index.ids())
    s1, f1 = index.search(vectors[::17], 10)
    s2, f2 = back.search(vectors[::17], 10)
    assert np.array_equal(f1, f2) and np.allclose(s1, s2)
    back.add(np.array([10**9], dtype=np.int64), vectors[:1])  # still writable
    assert back.count() == index.count() + 1


def test_refuses_other_model_and_dim(tmp_path: Path) -> None:
    index, _, vectors = built(seed=6)
    with pytest.raises(ModelMismatchError, match="other-model"):
        index.search(vectors[:1], 3, model_id="other-model")
    with pytest.raises(ModelMismatchError):
        index.add(np.array([10**9], dtype=np.int64), vectors[:1], model_id="other-model")
    wrong = face_like(2, 1, dim=DIM * 2, seed=7)[0]
    with pytest.raises(ValidationError, match="shape"):
        index.search(wrong, 3)
    with pytest.raises(ValidationError, match="shape"):
        index.add(np.array([1, 2], dtype=np.int64), wrong)
    path = tmp_path / "x.index"
    index.save(path)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "dim": DIM * 2}))
    with pytest.raises(IndexFileError):
        load_index(path)
    side.write_text(json.dumps({**meta, "kind": "hnsw"}))
    with pytest.raises(IndexFileError):
        load_index(path)


def test_params_table() -> None:
    table = parse_ivfpq_table({"ivfpq": [
        {"max_faces": 1000, "nlist": 16, "m": 8, "nprobe": 4, "k_factor": 10},
        {"max_faces": None, "nlist": 64, "m": 16, "nprobe": 8, "k_factor": 20}]})
    assert ivfpq_params(1000, table).nlist == 16 and ivfpq_params(1001, table).nlist == 64
    assert ivfpq_params(0).max_faces is not None  # the packaged table parses
    row = {"max_faces": None, "nlist": 8, "m": 8, "nprobe": 4, "k_factor": 1}
    for bad in ({"ivfpq": []}, {"ivfpq": [row | {"nlist": 0}]}, {"ivfpq": [row | {"max_faces": 5}]}):
        with pytest.raises(ValidationError):
            parse_ivfpq_table(bad)


def test_build_index_makes_an_ivfpq_past_exact_max() -> None:
    vectors, _ = face_like(300, 10, dim=DIM, seed=5)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = build_index(MODEL, DIM, ids, vectors, exact_max=100, approximate="ivfpq")
    assert isinstance(index, IvfPqIndex) and index.count() == len(ids)
    _scores, got = index.search(vectors[:5], 1)
    assert list(got[:, 0]) == list(ids[:5])  # each vector finds itself first
    with pytest.raises(ValidationError, match="hnsw, ivf or ivfpq"):
        build_index(MODEL, DIM, ids, vectors, exact_max=100, approximate="lsh")


def test_search_settings_follow_the_size_table_scaled_to_the_lists_built() -> None:
    """nprobe and k_factor of a trained index come from the table row for its face count, nprobe
    scaled to the lists it was trained with; the index store applies them to every index it
    opens (a saved file keeps what the table said when it was written)."""
    from faceledger.gallery.index.params import ivfpq_search
    from faceledger.gallery.indexstore import IndexStore

    table = parse_ivfpq_table({"ivfpq": [
        {"max_faces": 1000, "nlist": 16, "m": 8, "nprobe": 4, "k_factor": 10},
        {"max_faces": None, "nlist": 64, "m": 16, "nprobe": 32, "k_factor": 20}]})
    assert ivfpq_search(500, 16, table) == (4, 10)
    assert ivfpq_search(5000, 64, table) == (32, 20)
    assert ivfpq_search(5000, 16, table) == (8, 20)  # half the lists probed, as the row says
    assert ivfpq_search(5000, 1, table) == (1, 20)
    index, _, _ = built(seed=8)
    assert index.is_trained and (index.nprobe, index.k_factor) == (16, 10)
    IndexStore._tune(object.__new__(IndexStore), index)
    assert (index.nprobe, index.k_factor) == ivfpq_search(index.count(), index.nlist)
