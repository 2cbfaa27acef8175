"""``"hnsw"``: approximate search on a faiss HNSW graph (inner product), the default past the
exact-search threshold.

Measured (bench/search_bench.py --fit, 1M embeddings shaped like real dlib face embeddings:
same person ~0.95 cosine, different ~0.82, 2 cores, one query thread): M=32, efConstruction=64,
efSearch=128 gave recall@10 0.996 at 0.8 ms p50; IVF-Flat needed nprobe=256 of 2000 lists for
0.992 at 4.9 ms on the same data. At 10M the same graph (built in 3,600 s, 7.4 GiB) gave
recall@10 0.937 at efSearch=128 (2.2 ms) and 0.970 at 256 (4.5 ms): large galleries need a wider
search: ``efSearch`` and ``efConstruction`` grow with the index (``params.py``, a table in
``data/index_params.json``; ``FACELEDGER_INDEX_EF_SEARCH`` is a floor). HNSW cannot delete in
place: removed ids become tombstones, filtered out at search time, and the index asks to be
rebuilt once they pass 10%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceledger.errors import ValidationError
from faceledger.gallery.index.base import IdArray, IndexCapabilities, IndexFileError, ScoreArray, VectorArray
from faceledger.gallery.index.faiss_common import FaissIndex, faiss_module, sidecar_for
from faceledger.gallery.index.validation import check_ids

DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 64
DEFAULT_EF_SEARCH = 128
REBUILD_FRACTION = 0.10


class HnswIndex(FaissIndex):
    """faiss ``IndexIDMap2(IndexHNSWFlat(dim, M, inner product))`` with tombstone deletes."""

    kind: ClassVar[str] = "hnsw"
    capabilities: ClassVar[IndexCapabilities] = IndexCapabilities(
        exact=False, approximate=True, supports_remove=True, mmap=False
    )

    def __init__(self, model_id: str, dim: int, *, m: int = DEFAULT_M,
                 ef_construction: int = DEFAULT_EF_CONSTRUCTION,
                 ef_search: int = DEFAULT_EF_SEARCH, threads: int | None = None) -> None:
        super().__init__(model_id, dim, threads=threads)
        for name, v in (("m", m), ("ef_construction", ef_construction), ("ef_search", ef_search)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValidationError(f"{name} must be an integer >= 2, got {v!r}")
        faiss = faiss_module()
        inner = faiss.IndexHNSWFlat(self._dim, m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ef_construction
        self._index = faiss.IndexIDMap2(inner)
        self._m, self._efc, self.ef_search = m, ef_construction, ef_search
        self._deleted = np.empty(0, dtype=np.int64)

    @property
    def ef_construction(self) -> int:
        """Candidates examined when linking each new face into the graph (later adds too)."""
        return self._efc

    @ef_construction.setter
    def ef_construction(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValidationError(f"ef_construction must be an integer >= 2, got {value!r}")
        with self._lock:
            faiss_module().downcast_index(self._index.index).hnsw.efConstruction = value
            self._efc = value

    @property
    def needs_rebuild(self) -> bool:
        total = int(self._index.ntotal)
        return total > 0 and self._deleted.size > REBUILD_FRACTION * total

    def count(self) -> int:
        with self._lock:
            return int(self._index.ntotal) - int(self._deleted.size)

    def _collect_ids(self) -> IdArray:
        ids: IdArray = faiss_module().vector_to_array(self._index.id_map).astype(np.int64)
        return ids[~np.isin(ids, self._deleted)] if self._deleted.size else ids

    def add(self, ids: IdArray, vectors: VectorArray, *, model_id: str | None = None) -> None:
        new = check_ids(ids)
        with self._lock:
            if self._deleted.size and np.isin(new, self._deleted).any():
                raise ValidationError("cannot re-add a removed id to an HNSW index; rebuild it")
            super().add(ids, vectors, model_id=model_id)

    def remove(self, ids: IdArray) -> int:
        gone = np.unique(check_ids(ids))
        with self._lock:
            live = self._ids_locked()
            hit = gone[np.isin(gone, live)]
            if hit.size:
                self._deleted = np.union1d(self._deleted, hit)
                self._id_cache = live[~np.isin(live, hit)]
            return int(hit.size)

    def _raw_search(self, q: VectorArray, k: int) -> tuple[ScoreArray, IdArray]:
        faiss = faiss_module()
        ef = max(self.ef_search, k)
        if self._deleted.size:
            batch = faiss.IDSelectorBatch(self._deleted)
            sel = faiss.IDSelectorNot(batch)
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
            scores, ids = self._index.search(q, k, params=params)
            del sel, batch
        else:
            scores, ids = self._index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))
        return scores, ids

    def _sidecar_params(self) -> dict[str, Any]:
        return {"m": self._m, "ef_construction": self._efc, "ef_search": self.ef_search,
                "deleted": self._deleted.tolist()}

    def _check_loaded(self, index: Any) -> Any:
        faiss = faiss_module()
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexFileError(f"expected a faiss IndexIDMap2, got {type(index).__name__}")
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexHNSWFlat) or inner.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexFileError("expected an inner-product IndexHNSWFlat inside the IndexIDMap2")
        return index

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> HnswIndex:
        path = Path(path)
        meta = sidecar_for(path, cls.kind)
        p = meta.get("params") or {}
        obj = cls(meta["model_id"], meta["dim"], m=int(p.get("m", DEFAULT_M)),
                  ef_construction=int(p.get("ef_construction", DEFAULT_EF_CONSTRUCTION)),
                  ef_search=int(p.get("ef_search", DEFAULT_EF_SEARCH)))
        obj._load_file(path, meta, mmap=False)
        obj.ef_construction = obj._efc  # onto the graph just read
        obj._deleted = np.asarray(p.get("deleted", []), dtype=np.int64)
        return obj
