from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest

from faceledger.errors import ConflictError, ModelMismatchError, ValidationError
from faceledger.gallery.index import (
    FlatIndex,
    IvfIndex,
    VectorIndex,
    available_kinds,
    create_index,
)

from .helpers import face_like, unit

MODEL = "test-model-v1"
DIM = 32


def random_units(n: int, dim: int = DIM, seed: int = 0) -> npt.NDArray[np.float32]:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def ready_index(kind: str, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> VectorIndex:
    index = create_index(
        kind, MODEL, vectors.shape[1], **({"nlist": 8, "nprobe": 8} if kind == "ivf" else {})
    )
    if isinstance(index, IvfIndex):
        index.train(vectors)
    index.add(ids, vectors)
    return index


KINDS = ["flat", "ivf"]


def test_kinds_registered() -> None:
    assert {"flat", "ivf"} <= set(available_kinds())
    assert isinstance(create_index("flat", MODEL, DIM), VectorIndex)
    assert create_index("flat", MODEL, DIM).capabilities.exact
    assert create_index("ivf", MODEL, DIM).capabilities.approximate


def test_exact_search_returns_true_neighbours_and_cosines() -> None:
    vectors = random_units(500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = ready_index("flat", vectors, ids)
    queries = random_units(20, seed=1)
    scores, found = index.search(queries, 5)
    assert scores.shape == found.shape == (20, 5)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    sims = queries @ vectors.T
    expected = np.argsort(-sims, axis=1)[:, :5]
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), atol=1e-5)
    # a stored vector finds itself with cosine 1
    s, f = index.search(vectors[[7]], 1)
    assert f[0, 0] == 1007 and s[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_ivf_recall_at_10_vs_exact(
    clustered: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
) -> None:
    vectors, centres = clustered
    ids = np.arange(vectors.shape[0], dtype=np.int64) * 3 + 5
    exact = FlatIndex(MODEL, 128)
    exact.add(ids, vectors)
    ivf = IvfIndex(MODEL, 128)  # default nlist/nprobe
    ivf.train(vectors)
    ivf.add(ids, vectors)
    assert ivf.nlist is not None and ivf.nlist >= 64
    rng = np.random.default_rng(7)
    who = rng.choice(centres.shape[0], size=300, replace=False)
    queries = unit(centres[who] + 0.03 * rng.standard_normal((300, 128)).astype(np.float32))
    _, truth = exact.search(queries, 10)
    _, approx = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth, strict=True)])
    assert recall >= 0.95, recall
    # the top hit is a sample of the query's identity
    assert np.all((truth[:, 0] - 5) // 3 // 10 == who)


@pytest.mark.parametrize("kind", KINDS)
def test_remove_then_search_never_returns_removed(kind: str) -> None:
    vectors, _ = face_like(50, 10, dim=DIM, seed=3)
    ids = np.arange(vectors.shape[0], dtype=np.int64)
    index = ready_index(kind, vectors, ids)
    gone = ids[::3]
    assert index.remove(gone) == gone.size
    assert index.remove(gone) == 0
    assert index.remove(np.array([10_000], dtype=np.int64)) == 0
    assert index.count() == ids.size - gone.size
    _, found = index.search(vectors, 10)
    assert not np.isin(found, gone).any()
    assert (found[:, 0] >= 0).all()
    np.testing.assert_array_equal(index.ids(), np.setdiff1d(ids, gone))


@pytest.mark.parametrize("kind", KINDS)
def test_count_and_ids(kind: str) -> None:
    vectors = random_units(200, seed=4)
    ids = np.random.default_rng(4).permutation(10_000)[:200].astype(np.int64)
    index = ready_index(kind, vectors[:150], ids[:150])
    index.add(ids[150:], vectors[150:])
    assert index.count() == 200
    np.testing.assert_array_equal(index.ids(), np.sort(ids))
    index.add(np.empty(0, dtype=np.int64), np.empty((0, DIM), dtype=np.float32))
    assert index.count() == 200


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_ids_refused(kind: str) -> None:
    vectors = random_units(100, seed=5)
    ids = np.arange(100, dtype=np.int64)
    index = ready_index(kind, vectors, ids)
    with pytest.raises(ConflictError):
        index.add(np.array([5], dtype=np.int64), vectors[:1])
    with pytest.raises(ValidationError):
        index.add(np.array([500, 500], dtype=np.int64), vectors[:2])
    assert index.count() == 100


@pytest.mark.parametrize("kind", KINDS)
def test_model_mismatch_refused(kind: str) -> None:
    vectors = random_units(100, seed=6)
    index = ready_index(kind, vectors, np.arange(100, dtype=np.int64))
    assert index.model_id == MODEL
    with pytest.raises(ModelMismatchError, match="other-model"):
        index.search(vectors[:1], 3, model_id="other-model")
    with pytest.raises(ModelMismatchError):
        index.add(np.array([999], dtype=np.int64), vectors[:1], model_id="other-model")
    assert index.count() == 100
    _, found = index.search(vectors[:1], 1, model_id=MODEL)
    assert found[0, 0] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_refused(kind: str) -> None:
    vectors = random_units(100, seed=8)
    index = ready_index(kind, vectors, np.arange(100, dtype=np.int64))
    wrong_dim = random_units(2, dim=DIM + 1)
    with pytest.raises(ValidationError, match="shape"):
        index.search(wrong_dim, 3)
    with pytest.raises(ValidationError, match="shape"):
        index.add(np.array([1000, 1001], dtype=np.int64), wrong_dim)
    with pytest.raises(ValidationError, match="float32"):
        index.search(vectors[:1].astype(np.float16), 3)
    with pytest.raises(ValidationError, match="normalised"):
        index.search(vectors[:1] * 2, 3)
    with pytest.raises(ValidationError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, dtype=np.float32), 3)
    with pytest.raises(ValidationError):
        index.add(np.array([1000], dtype=np.int64), vectors[:2])
    with pytest.raises(ValidationError):
        index.add(np.array([-1, 1001], dtype=np.int64), vectors[:2])
    with pytest.raises(ValidationError):
        index.search(vectors[:1], 0)
    assert index.count() == 100


def test_ids_and_k_beyond_count_pad_with_missing() -> None:
    vectors = random_units(3, seed=9)
    index = ready_index("flat", vectors, np.array([4, 5, 6], dtype=np.int64))
    scores, found = index.search(vectors[:2], 5)
    assert found.shape == (2, 5)
    assert (found[:, :3] >= 0).all() and (found[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_search_returns_missing(kind: str) -> None:
    index = create_index(kind, MODEL, DIM)
    queries = random_units(4, seed=10)
    scores, found = index.search(queries, 3)
    assert found.shape == (4, 3) and (found == -1).all()
    assert np.isneginf(scores).all()
    assert index.count() == 0 and index.ids().size == 0
    if isinstance(index, IvfIndex):
        with pytest.raises(ConflictError, match="not trained"):
            index.add(np.array([1], dtype=np.int64), queries[:1])
        index.train(random_units(500, seed=11))
        _, found = index.search(queries, 3)
        assert (found == -1).all()


def test_import_does_not_load_faiss() -> None:
    code = "import sys, faceledger.gallery.index; assert 'faiss' not in sys.modules, 'faiss imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_add_search_remove(kind: str) -> None:
    vectors, _ = face_like(200, 10, dim=DIM, seed=12)
    index = ready_index(kind, vectors[:500], np.arange(500, dtype=np.int64))

    def writer() -> None:
        for start in range(500, 2000, 100):
            index.add(np.arange(start, start + 100, dtype=np.int64), vectors[start : start + 100])
            index.remove(np.arange(start, start + 10, dtype=np.int64))

    def reader() -> None:
        for _ in range(50):
            _, found = index.search(vectors[:20], 5)
            assert (found[:, 0] >= 0).all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(writer)] + [pool.submit(reader) for _ in range(3)]
        for future in futures:
            future.result()  # re-raises any failure in the thread
    assert index.count() == 2000 - 150
    assert index.ids().size == 2000 - 150


def test_a_few_queries_search_on_one_openmp_thread_and_the_callers_count_is_restored() -> None:
    """A request's probe is searched on one OpenMP thread (faiss' parallel region for one query
    spins on every core against the other requests' work); batches keep the thread count, and
    the calling thread's own setting is what it was afterwards."""
    import faiss

    from faceledger.gallery.index import faiss_common

    seen: list[int] = []

    class Spy(FlatIndex):
        def _raw_search(self, q: npt.NDArray[np.float32], k: int) -> tuple[
                npt.NDArray[np.float32], npt.NDArray[np.int64]]:
            seen.append(faiss.omp_get_max_threads())
            return super()._raw_search(q, k)

    vecs = random_units(100)
    index = Spy(MODEL, DIM)
    index.add(np.arange(100, dtype=np.int64), vecs)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        scores, ids = index.search(vecs[:1], 3)
        assert ids[0, 0] == 0 and scores[0, 0] > 0.99
        index.search(vecs[: faiss_common.FEW_QUERIES], 3)
        assert seen == [1, 2]
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
