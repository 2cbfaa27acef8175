"""faiss indexes: ``"flat"`` (exact inner product) and ``"ivf"`` (IVF-Flat, approximate), and
``build_index``, which picks exact search up to ``exact_max`` and ``"hnsw"`` (faiss_hnsw.py) or
``"ivf"`` beyond.

IVF defaults (``nlist = 2 * sqrt(n)``, ``nprobe = 64``) gave recall@10 0.996 at ~1 ms on isotropic
synthetic data, but only 0.91 on data fitted to real dlib embeddings (which sit in a narrow cone:
different people ~0.82 cosine); there it needed nprobe 256 (4.7 ms) for 0.99. Hence HNSW by default.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceledger.errors import ConflictError, ValidationError
from faceledger.gallery.index.base import (
    IdArray,
    IndexCapabilities,
    IndexFileError,
    ScoreArray,
    VectorArray,
    VectorIndex,
)
from faceledger.gallery.index.faiss_common import FaissIndex, faiss_module, sidecar_for
from faceledger.gallery.index.faiss_hnsw import DEFAULT_EF_SEARCH, HnswIndex
from faceledger.gallery.index.faiss_ivfpq import IvfPqIndex
from faceledger.gallery.index.params import ef_search_for, hnsw_params
from faceledger.gallery.index.validation import check_model_id, check_same_model, check_vectors

DEFAULT_NPROBE = 64
DEFAULT_EXACT_MAX = 50_000
MIN_NLIST = 64
MAX_NLIST = 4096
TRAIN_POINTS_PER_LIST = 64


def nlist_for(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: ``2 * sqrt(n)`` clamped to ``[64, 4096]``."""
    return int(min(MAX_NLIST, max(MIN_NLIST, round(2 * math.sqrt(max(n, 1))))))


class FlatIndex(FaissIndex):
    """Exact search: faiss ``IndexIDMap2(IndexFlatIP(dim))``."""

    kind: ClassVar[str] = "flat"
    capabilities: ClassVar[IndexCapabilities] = IndexCapabilities(
        exact=True, approximate=False, supports_remove=True, mmap=True
    )

    def __init__(self, model_id: str, dim: int, *, threads: int | None = None) -> None:
        super().__init__(model_id, dim, threads=threads)
        faiss = faiss_module()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))

    def _collect_ids(self) -> IdArray:
        ids: IdArray = faiss_module().vector_to_array(self._index.id_map).astype(np.int64)
        return ids

    def _check_loaded(self, index: Any) -> Any:
        faiss = faiss_module()
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexFileError(f"expected a faiss IndexIDMap2, got {type(index).__name__}")
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexFlat) or inner.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError("expected an inner-product IndexFlat inside the IndexIDMap2")
        return index

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> FlatIndex:
        path = Path(path)
        meta = sidecar_for(path, cls.kind)
        obj = cls(meta["model_id"], meta["dim"])
        obj._load_file(path, meta, mmap)
        return obj


class IvfIndex(FaissIndex):
    """Approximate search: faiss ``IndexIVFFlat`` (inner product, spherical k-means).

    Call ``train`` (on a representative sample) before ``add``. ``nlist`` defaults to
    ``nlist_for(expected_count)`` at training time; ``nprobe`` lists are scanned per query.
    """

    kind: ClassVar[str] = "ivf"
    capabilities: ClassVar[IndexCapabilities] = IndexCapabilities(
        exact=False, approximate=True, supports_remove=True, mmap=True
    )

    def __init__(
        self,
        model_id: str,
        dim: int,
        *,
        nlist: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        threads: int | None = None,
        seed: int = 1234,
    ) -> None:
        super().__init__(model_id, dim, threads=threads)
        if nlist is not None and (isinstance(nlist, bool) or not isinstance(nlist, int) or nlist < 1):
            raise ValidationError(f"nlist must be a positive integer, got {nlist!r}")
        self._nlist = nlist
        self._seed = int(seed)
        self.nprobe = nprobe

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"nprobe must be a positive integer, got {value!r}")
        self._nprobe = value

    @property
    def nlist(self) -> int | None:
        """Lists of the trained index (or the requested number before training)."""
        return int(self._index.nlist) if self._index is not None else self._nlist

    @property
    def is_trained(self) -> bool:
        return self._index is not None

    def train(
        self,
        vectors: VectorArray,
        *,
        expected_count: int | None = None,
        model_id: str | None = None,
    ) -> None:
        """Learn the coarse quantizer from unit ``vectors``; subsamples to 64 points per list."""
        check_same_model(self._model_id, model_id, "train this index")
        vecs = check_vectors(vectors, self._dim)
        n = vecs.shape[0]
        if n == 0:
            raise ValidationError("cannot train an IVF index on zero vectors")
        if self._nlist is not None:
            nlist = self._nlist
            if n < nlist:
                raise ValidationError(f"need at least nlist={nlist} training vectors, got {n}")
        else:
            nlist = min(nlist_for(expected_count if expected_count is not None else n), n)
        limit = TRAIN_POINTS_PER_LIST * nlist
        if n > limit:
            rng = np.random.default_rng(self._seed)
            vecs = vecs[np.sort(rng.choice(n, size=limit, replace=False))]
        faiss = faiss_module()
        quantizer = faiss.IndexFlatIP(self._dim)
        index = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True
        index.cp.seed = self._seed
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        index.train(vecs)
        with self._lock:
            if self._index is not None:
                raise ConflictError("this IVF index is already trained")
            self._index = index

    def _raw_search(self, q: VectorArray, k: int) -> tuple[ScoreArray, IdArray]:
        params = faiss_module().SearchParametersIVF(nprobe=min(self._nprobe, int(self._index.nlist)))
        scores, ids = self._index.search(q, k, params=params)
        return scores, ids

    def _collect_ids(self) -> IdArray:
        faiss = faiss_module()
        invlists = self._index.invlists
        parts: list[IdArray] = []
        for list_no in range(int(invlists.nlist)):
            size = int(invlists.list_size(list_no))
            if size == 0:
                continue
            ptr = invlists.get_ids(list_no)
            try:
                parts.append(np.array(faiss.rev_swig_ptr(ptr, size), dtype=np.int64))
            finally:
                invlists.release_ids(list_no, ptr)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _sidecar_params(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self._nprobe}

    def _check_loaded(self, index: Any) -> Any:
        faiss = faiss_module()
        if not isinstance(index, faiss.IndexIVFFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError(f"expected an inner-product IndexIVFFlat, got {type(index).__name__}")
        return index

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> IvfIndex:
        path = Path(path)
        meta = sidecar_for(path, cls.kind)
        params = meta.get("params") or {}
        nprobe = params.get("nprobe", DEFAULT_NPROBE)
        obj = cls(meta["model_id"], meta["dim"], nprobe=int(nprobe))
        obj._load_file(path, meta, mmap)
        return obj


def build_index(
    model_id: str,
    dim: int,
    ids: IdArray,
    vectors: VectorArray,
    exact_max: int = DEFAULT_EXACT_MAX,
    nprobe: int = DEFAULT_NPROBE,
    *,
    nlist: int | None = None,
    threads: int | None = None,
    approximate: str = "hnsw",
    ef_search: int | None = None,
    ef_construction: int | None = None,
) -> VectorIndex:
    """Index ``vectors``: exact ``flat`` when ``n <= exact_max``, otherwise ``approximate``
    (``"hnsw"``, the default, a trained ``"ivf"``, or ``"ivfpq"``: 4-bit PQ fast scan re-ranked
    exactly, trained once it holds enough faces). HNSW parameters left ``None`` come from the
    size table (``params.hnsw_params(n)``); ``ef_search`` is then a floor over it."""
    check_model_id(model_id)
    n = int(vectors.shape[0]) if isinstance(vectors, np.ndarray) and vectors.ndim == 2 else -1
    if n < 0:
        raise ValidationError("vectors must be a 2-D numpy array")
    index: FlatIndex | IvfIndex | HnswIndex
    if n <= exact_max:
        index = FlatIndex(model_id, dim, threads=threads)
    elif approximate == "hnsw":
        rule = hnsw_params(n)
        index = HnswIndex(model_id, dim, ef_search=ef_search_for(n, ef_search or DEFAULT_EF_SEARCH),
                          ef_construction=ef_construction or rule.ef_construction, threads=threads)
        for start in range(0, n, 100_000):  # chunks keep memory flat on big rebuilds
            index.add(ids[start:start + 100_000], vectors[start:start + 100_000])
        return index
    elif approximate == "ivfpq":
        pq = IvfPqIndex(model_id, dim, expected_count=n, threads=threads)
        for start in range(0, n, 100_000):
            pq.add(ids[start:start + 100_000], vectors[start:start + 100_000])
        return pq
    elif approximate != "ivf":
        raise ValidationError(f"unknown approximate index {approximate!r} (hnsw, ivf or ivfpq)")
    else:
        index = IvfIndex(model_id, dim, nlist=nlist, nprobe=nprobe, threads=threads)
        index.train(vectors, expected_count=n)
    index.add(ids, vectors)
    return index
