"""Shared machinery of the faiss-backed indexes: validation, locking, ids, save/load, mmap.

``faiss`` is imported lazily (``faiss_module()``) so that ``import faceledger.gallery.index`` stays cheap.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from faceledger.errors import ConflictError, ValidationError
from faceledger.gallery.index.base import (
    MISSING_ID,
    IdArray,
    IndexCapabilities,
    IndexFileError,
    ScoreArray,
    VectorArray,
    atomic_write,
    read_sidecar,
    write_sidecar,
)
from faceledger.gallery.index.validation import (
    check_dim,
    check_ids,
    check_k,
    check_model_id,
    check_same_model,
    check_vectors,
)


def faiss_module() -> Any:
    """Import faiss on first use."""
    import faiss

    return faiss


def set_threads(threads: int | None) -> None:
    """Set faiss' process-wide OpenMP thread count, only when asked."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValidationError(f"threads must be a positive integer, got {threads!r}")
    faiss_module().omp_set_num_threads(threads)


FEW_QUERIES = 8  # a search of fewer vectors than this runs on one OpenMP thread


@contextmanager
def threads_for(queries: int) -> Iterator[None]:
    """One OpenMP thread in the calling thread while it searches a few vectors (a request's
    probe). faiss would otherwise open a parallel region on every core for one query: its
    threads spin at the barrier while the other cores run other requests' detection, which
    cost ~20 ms of CPU per search on 2 busy cores against ~1 ms alone. OpenMP's thread count
    is per calling thread, so other threads (a rebuild, a batch search) keep theirs."""
    if queries >= FEW_QUERIES:
        yield
        return
    faiss = faiss_module()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def empty_result(q: int, k: int) -> tuple[ScoreArray, IdArray]:
    return (
        np.full((q, k), -np.inf, dtype=np.float32),
        np.full((q, k), MISSING_ID, dtype=np.int64),
    )


class FaissIndex(ABC):
    """Base of the faiss indexes. Subclasses set ``kind``/``capabilities`` and build ``_index``.

    One re-entrant lock guards every operation, searches included: faiss may reallocate its
    storage during ``add``/``remove``, so a search running beside a mutation is not safe.
    """

    kind: ClassVar[str]
    capabilities: ClassVar[IndexCapabilities]

    def __init__(self, model_id: str, dim: int, *, threads: int | None = None) -> None:
        self._model_id = check_model_id(model_id)
        self._dim = check_dim(dim)
        set_threads(threads)
        self._lock = threading.RLock()
        self._index: Any = None
        self._mapped: IO[bytes] | None = None
        self._id_cache: IdArray | None = None

    # ----------------------------------------------------------------- properties
    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def mapped(self) -> bool:
        """True while the vectors are a read-only memory map of the file the index was loaded from."""
        return self._mapped is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model_id={self._model_id!r} dim={self._dim} count={self.count()}>"

    # ------------------------------------------------------------- hooks
    def _ready(self) -> bool:
        return self._index is not None

    def _require_ready(self, action: str) -> None:
        if not self._ready():
            raise ConflictError(f"cannot {action}: the {self.kind} index is not trained yet")

    def _raw_search(self, q: VectorArray, k: int) -> tuple[ScoreArray, IdArray]:
        scores, ids = self._index.search(q, k)
        return scores, ids

    @abstractmethod
    def _collect_ids(self) -> IdArray:
        """Every id the faiss index holds (subclasses know where they live)."""

    def _sidecar_params(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def _check_loaded(self, index: Any) -> Any:
        """Check that a freshly read (downcast) faiss index has the expected type and metric.

        Return it (or its usable form); raise ``IndexFileError`` if it is the wrong kind.
        """

    # ------------------------------------------------------------- operations
    def add(self, ids: IdArray, vectors: VectorArray, *, model_id: str | None = None) -> None:
        check_same_model(self._model_id, model_id, "add embeddings to this index")
        vecs = check_vectors(vectors, self._dim)
        new_ids = check_ids(ids, vecs.shape[0])
        if new_ids.size == 0:
            return
        if np.unique(new_ids).size != new_ids.size:
            raise ValidationError("ids contain duplicates")
        with self._lock:
            self._require_ready("add")
            self._materialise()
            present = self._ids_locked()
            clash = new_ids[np.isin(new_ids, present)]
            if clash.size:
                raise ConflictError(
                    f"{clash.size} id(s) are already in the index, e.g. {int(clash[0])}; remove them first",
                    ids=clash[:10].tolist(),
                )
            try:
                self._index.add_with_ids(vecs, new_ids)
            except BaseException:
                self._id_cache = None  # recollect from faiss: the add may have been partial
                raise
            self._id_cache = np.concatenate([present, new_ids])

    def search(
        self, vectors: VectorArray, k: int, *, model_id: str | None = None
    ) -> tuple[ScoreArray, IdArray]:
        check_same_model(self._model_id, model_id, "search this index")
        k = check_k(k)
        q = check_vectors(vectors, self._dim)
        with self._lock, threads_for(q.shape[0]):
            n = self.count()
            if n == 0 or q.shape[0] == 0:
                return empty_result(q.shape[0], k)
            kk = min(k, n)
            scores, ids = self._raw_search(q, kk)
        out_scores, out_ids = empty_result(q.shape[0], k)
        out_scores[:, :kk] = scores
        out_ids[:, :kk] = ids
        out_scores[out_ids == MISSING_ID] = -np.inf
        return out_scores, out_ids

    def remove(self, ids: IdArray) -> int:
        gone = np.unique(check_ids(ids))
        if gone.size == 0:
            return 0
        with self._lock:
            if self.count() == 0:
                return 0
            self._materialise()
            removed = int(self._index.remove_ids(gone))
            if self._id_cache is not None:
                self._id_cache = self._id_cache[~np.isin(self._id_cache, gone)]
            return removed

    def count(self) -> int:
        with self._lock:
            return 0 if self._index is None else int(self._index.ntotal)

    def ids(self) -> IdArray:
        """All ids held, ascending."""
        with self._lock:
            return np.sort(self._ids_locked())

    def _ids_locked(self) -> IdArray:
        if self._id_cache is None:
            self._id_cache = self._collect_ids() if self.count() else np.empty(0, dtype=np.int64)
        return self._id_cache

    # ------------------------------------------------------------- persistence
    def serialized_size(self) -> int:
        """Bytes the index takes when serialised (about its in-memory size)."""
        with self._lock:
            self._require_ready("measure")
            return int(faiss_module().serialize_index(self._index).nbytes)

    def save(self, path: Path) -> None:
        path = Path(path)
        faiss = faiss_module()
        with self._lock:
            self._require_ready("save")
            atomic_write(path, lambda tmp: faiss.write_index(self._index, str(tmp)))
            meta = {
                "kind": self.kind,
                "model_id": self._model_id,
                "dim": self._dim,
                "count": int(self._index.ntotal),  # stored vectors (tombstoned ones included)
                "bytes": path.stat().st_size,
                "params": self._sidecar_params(),
            }
            write_sidecar(path, meta)

    def _load_file(self, path: Path, meta: dict[str, Any], mmap: bool) -> None:
        faiss = faiss_module()
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise IndexFileError(f"index file {path} is unreadable: {exc}", path=str(path)) from exc
        if size != meta["bytes"]:
            raise IndexFileError(
                f"index file {path} has {size} bytes but its sidecar says {meta['bytes']}",
                path=str(path),
            )
        handle: IO[bytes] | None = open(path, "rb") if mmap else None  # noqa: SIM115
        try:
            flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
            raw = faiss.read_index(str(path), flags)
            if handle is not None and os.fstat(handle.fileno()).st_ino != path.stat().st_ino:
                raise IndexFileError(f"index file {path} changed while loading", path=str(path))
            index = self._check_loaded(raw)
        except RuntimeError as exc:
            if handle is not None:
                handle.close()
            raise IndexFileError(f"index file {path} is unreadable: {exc}", path=str(path)) from exc
        except BaseException:
            if handle is not None:
                handle.close()
            raise
        if int(index.d) != self._dim or int(index.ntotal) != meta["count"]:
            if handle is not None:
                handle.close()
            raise IndexFileError(
                f"index file {path} holds {index.ntotal} x {index.d} vectors but its sidecar "
                f"says {meta['count']} x {self._dim}",
                path=str(path),
            )
        self._index = index
        self._mapped = handle

    def _materialise(self) -> None:
        """Replace a read-only memory map by an owned in-memory copy before mutating."""
        if self._mapped is None:
            return
        faiss = faiss_module()
        handle = self._mapped
        handle.seek(0)
        data = np.frombuffer(handle.read(), dtype=np.uint8)
        index = self._check_loaded(faiss.deserialize_index(data))
        del data
        self._index = index
        self._mapped = None
        handle.close()


def sidecar_for(path: Path, kind: str) -> dict[str, Any]:
    meta = read_sidecar(path)
    if meta["kind"] != kind:
        raise IndexFileError(f"index file {path} is a {meta['kind']!r} index, not {kind!r}", path=str(path))
    return meta
