"""The gallery's vector indexes: one per (model, collection), on disk under ``<home>/index``.

The database is the source of truth. An index file is a cache of the embeddings there: on first
use in a process it is reconciled with the database (faces committed but not yet indexed when a
process died are added; faces deleted meanwhile are removed), and ``rebuild`` recreates it.
Several processes share the files (the server, a CLI ingest): an index file and its sidecar are
read and written under an exclusive lock on ``<index>.lock``, so no reader sees one writer's
index beside another's sidecar. ``rebuild`` builds outside that lock and swaps the new index in.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select, text

from faceledger.db.schema import Face
from faceledger.faces.embed import check_same_model
from faceledger.faces.models.base import model_dim
from faceledger.gallery.collections import get_collection, list_collections
from faceledger.gallery.index import (
    HnswIndex,
    IvfIndex,
    IvfPqIndex,
    VectorIndex,
    build_index,
    load_index,
    sidecar_path,
)
from faceledger.gallery.index.faiss_hnsw import DEFAULT_EF_SEARCH
from faceledger.gallery.index.params import ef_search_for, hnsw_params, ivfpq_search
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.db.engine import Database

log = logging.getLogger(__name__)
DIM = 128  # dlib's; other models' dimension comes from their stored vectors or the registry
READ_BATCH = 10_000  # rows per fetch when loading a collection's embeddings
_FACES_VERSION = text("SELECT faces_version FROM collections WHERE id = :id")


class IndexStore:
    def __init__(self, root: Path, db: Database, *, exact_max: int, nprobe: int,
                 approximate: str = "hnsw", ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self.approximate = approximate
        self.root = root
        self.db = db
        self.exact_max = exact_max
        self.nprobe = nprobe
        self.ef_search = ef_search
        self._open: dict[tuple[str, int], VectorIndex] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._seen: dict[tuple[str, int], int] = {}  # collection faces_version last reconciled
        self._lock = threading.RLock()
        self._held: dict[Path, list[int]] = {}  # lock path -> [fd, depth] (under self._lock)
        self._rebuilding: dict[tuple[str, int], threading.RLock] = {}  # one rebuild per index
        self._jobs: dict[tuple[str, int], threading.Thread] = {}  # background rebuilds

    @contextmanager
    def _file_lock(self, path: Path) -> Iterator[None]:
        """Exclusive, cross-process lock on one index's files (re-entrant within this process;
        callers hold ``self._lock``)."""
        lock = path.with_name(path.name + ".lock")
        held = self._held.get(lock)
        if held is not None:
            held[1] += 1
            try:
                yield
            finally:
                held[1] -= 1
            return
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held[lock] = [fd, 1]
            yield
        finally:
            self._held.pop(lock, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _path(self, model_id: str, collection_id: int) -> Path:
        return self.root / model_id / f"collection-{collection_id}.faiss"

    def _db_vectors(self, model_id: str, collection_id: int,
                    only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The collection's ids and embeddings (just the faces ``only`` names, when given), in id
        order, read in batches into arrays sized up front.

        Measured on 1M faces in SQLite: peak +533 MiB for 488 MiB of vectors, against +1,690 MiB
        when all rows were fetched, joined and copied (at 10M faces: ~5 GB against ~17 GB)."""
        where = (Face.collection_id == collection_id, Face.model_id == model_id)
        dim = self._dim(model_id, where)
        if only is None:
            return self._read_vectors(where, dim)
        parts = [self._read_vectors((*where, Face.id.in_(chunk.tolist())), dim)
                 for chunk in np.array_split(np.sort(only), max(1, -(-only.size // READ_BATCH)))]
        return (np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]).reshape(-1, dim))

    def _dim(self, model_id: str, where: tuple[Any, ...]) -> int:
        """The model's embedding size: from one stored vector, else the registry."""
        with self.db.read() as s:
            one = s.execute(select(Face.embedding).where(*where).limit(1)).scalar_one_or_none()
        return len(one) // 4 if one else model_dim(model_id)

    def _read_vectors(self, where: tuple[Any, ...], dim: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        with self.db.read() as s:
            n = s.execute(select(func.count()).select_from(Face).where(*where)).scalar_one()
            ids = np.empty(n, dtype=np.int64)
            vecs = np.empty((n, dim), dtype=np.float32)
            filled = 0
            result = s.execute(select(Face.id, Face.embedding).where(*where).order_by(Face.id)
                               .execution_options(yield_per=READ_BATCH))
            for part in result.partitions():
                # faces committed after the count (possible outside a snapshot) come last, by
                # id: leave them to the next reconcile, which sees the collection's new version
                part = part[: n - filled]
                m = len(part)
                ids[filled:filled + m] = [r[0] for r in part]
                vecs[filled:filled + m] = np.frombuffer(b"".join(r[1] for r in part),
                                                        dtype="<f4").reshape(m, dim)
                filled += m
                if filled == n:
                    break
            result.close()
        return ids[:filled], vecs[:filled]

    def _db_ids(self, model_id: str, collection_id: int) -> np.ndarray:
        with self.db.read() as s:
            ids = s.execute(
                select(Face.id).where(
                    Face.collection_id == collection_id, Face.model_id == model_id
                )
            ).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def rebuild(self, model_id: str, collection_id: int) -> VectorIndex:
        """Recreate the index from the database while searches go on using the old one.

        The new index is built from a read of the database into a temp file beside the index,
        holding no lock; then, under the store's lock and the file lock, the faces added or
        deleted since that read are applied to it, the file is moved into place (``os.replace``)
        and the in-memory index swapped. A 10M-face graph takes about an hour to build on 2 cores
        and needs memory for both graphs meanwhile."""
        key = (model_id, collection_id)
        path = self._path(model_id, collection_id)
        with self._rebuild_lock(key):
            index, tmp = self._build_detached(model_id, collection_id, path)
            try:
                with self._lock, self._file_lock(path):
                    version = self._version(collection_id)
                    changed = self._sync(index, model_id, collection_id)
                    os.replace(tmp, path)
                    os.replace(sidecar_path(tmp), sidecar_path(path))
                    self._tune(index)
                    self._open[key] = index
                    self._seen[key] = version
                    (self._dirty.add if changed else self._dirty.discard)(key)
                    return index
            finally:
                tmp.unlink(missing_ok=True)
                sidecar_path(tmp).unlink(missing_ok=True)

    def _rebuild_lock(self, key: tuple[str, int]) -> threading.RLock:
        with self._lock:
            return self._rebuilding.setdefault(key, threading.RLock())

    def _build_detached(self, model_id: str, collection_id: int, path: Path
                        ) -> tuple[VectorIndex, Path]:
        """Build the index from one read of the database and save it to a temp file (no lock)."""
        ids, vecs = self._db_vectors(model_id, collection_id)
        index = build_index(model_id, vecs.shape[1], ids, vecs, exact_max=self.exact_max,
                            nprobe=self.nprobe, approximate=self.approximate,
                            ef_search=self.ef_search)
        del ids, vecs
        tmp = path.with_name(f".{path.name}.rebuild-{os.getpid()}-{threading.get_ident()}")
        index.save(tmp)
        return index, tmp

    def rebuild_in_background(self, model_id: str, collection_id: int) -> threading.Thread:
        """Start ``rebuild`` on a daemon thread (one per index at a time) and return it."""
        key = (model_id, collection_id)
        with self._lock:
            running = self._jobs.get(key)
            if running is not None and running.is_alive():
                return running

            def job() -> None:
                try:
                    self.rebuild(model_id, collection_id)
                except Exception:  # the old index still serves; the next change retries
                    log.exception("background rebuild of %s collection %s failed", *key)

            thread = threading.Thread(target=job, name=f"index-rebuild-{collection_id}", daemon=True)
            self._jobs[key] = thread
            thread.start()
            return thread

    def _tune(self, index: VectorIndex) -> None:
        """Search settings from the settings and the size table (``index/params.py``), not from
        when the file was written."""
        if isinstance(index, HnswIndex):
            n = index.count()
            index.ef_search = ef_search_for(n, self.ef_search)
            index.ef_construction = max(index.ef_construction, hnsw_params(n).ef_construction)
        elif isinstance(index, IvfIndex):
            index.nprobe = self.nprobe
        elif isinstance(index, IvfPqIndex) and index.is_trained:
            index.nprobe, index.k_factor = ivfpq_search(index.count(), index.nlist)

    def _version(self, collection_id: int) -> int:
        """The collection's faces version (``faces_version``), read on a bare connection: it
        runs twice per search, where a Session's set-up cost several times the query."""
        with self.db.engine.connect() as conn:
            return int(conn.execute(_FACES_VERSION, {"id": collection_id}).scalar() or 0)

    def get(self, model_id: str, collection_id: int) -> VectorIndex:
        """The collection's index, loaded and reconciled with the database on first use, and
        again whenever another process changed the collection's faces."""
        key = (model_id, collection_id)
        with self._lock:
            version = self._version(collection_id)
            if key in self._open:
                index = self._open[key]
                if self._seen.get(key) != version:
                    self._reconcile(index, model_id, collection_id)
                    self._seen[key] = version
                return self._open[key]
            path = self._path(model_id, collection_id)
            with self._file_lock(path):
                return self._load_or_build(model_id, collection_id, path, version)

    def _load_or_build(self, model_id: str, collection_id: int, path: Path, version: int
                       ) -> VectorIndex:
        key = (model_id, collection_id)
        if not path.exists():
            self.rebuild(model_id, collection_id)
        else:
            index = load_index(path)
            check_same_model(model_id, index.model_id)
            self._tune(index)
            self._open[key] = index
            self._reconcile(index, model_id, collection_id)
        self._seen[key] = version
        return self._open[key]

    def _reconcile(self, index: VectorIndex, model_id: str, collection_id: int) -> None:
        if self._sync(index, model_id, collection_id):
            self._after_change(index, model_id, collection_id)

    def _sync(self, index: VectorIndex, model_id: str, collection_id: int) -> bool:
        """Remove from ``index`` the faces the database no longer has and add those it lacks;
        True if anything changed."""
        db_ids = self._db_ids(model_id, collection_id)
        held = index.ids()
        extra = np.setdiff1d(held, db_ids, assume_unique=False)
        missing = np.setdiff1d(db_ids, held, assume_unique=False)
        if len(extra):
            index.remove(extra)
        if len(missing):
            ids, vecs = self._db_vectors(model_id, collection_id, only=missing)
            index.add(ids, vecs, model_id=model_id)
        return bool(len(extra) or len(missing))

    def _after_change(self, index: VectorIndex, model_id: str, collection_id: int) -> None:
        # Grow from exact to approximate search once the collection passes the threshold (a
        # graph of about exact_max faces: seconds); rebuild a graph whose tombstones (deleted
        # faces) pile up in the background, searching the old one meanwhile.
        if index.capabilities.exact and index.count() > self.exact_max:
            self.rebuild(model_id, collection_id)
            return
        self._dirty.add((model_id, collection_id))
        self._tune(index)
        if getattr(index, "needs_rebuild", False):
            self.rebuild_in_background(model_id, collection_id)

    def close(self) -> None:
        """Release what the store holds open (faiss files: nothing; see MilvusStore)."""
        self.flush()

    def flush(self) -> None:
        """Persist changed indexes. Between flushes the database is still the truth: a process
        that dies before flushing leaves an index that ``get`` reconciles on next use."""
        with self._lock:
            for key in sorted(self._dirty):
                with self._file_lock(self._path(*key)):
                    self._open[key].save(self._path(*key))
            self._dirty.clear()

    def add(self, model_id: str, collection_id: int, ids: np.ndarray, vectors: np.ndarray,
            version: int) -> None:
        """Add faces this process just committed as ``version`` of the collection. If any other
        change came in between, reconcile with the database instead."""
        key = (model_id, collection_id)
        with self._lock:
            if key in self._open and self._seen.get(key) == version - 1:
                index = self._open[key]
                self._seen[key] = version
            else:
                index = self.get(model_id, collection_id)
            keep = ~np.isin(ids, index.ids())
            if keep.any():
                index.add(ids[keep], vectors[keep], model_id=model_id)
                self._after_change(index, model_id, collection_id)

    def drop(self, model_id: str, collection_id: int) -> None:
        with self._lock:
            self._open.pop((model_id, collection_id), None)
            self._dirty.discard((model_id, collection_id))
            path = self._path(model_id, collection_id)
            with self._file_lock(path):
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".json").unlink(missing_ok=True)

    def remove(self, model_id: str, collection_id: int, ids: np.ndarray) -> int:
        with self._lock:
            index = self.get(model_id, collection_id)
            n = index.remove(ids)
            self._after_change(index, model_id, collection_id)
            return n

    def search(self, model_id: str, collection_id: int, vector: np.ndarray, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
        index = self.get(model_id, collection_id)
        scores, ids = index.search(vector.reshape(1, -1), k, model_id=model_id)
        return scores[0], ids[0]


# --- services ------------------------------------------------------------------------------

def index_status(app: Faceledger, principal: Principal) -> list[dict[str, Any]]:
    """Each collection's index for the model in use: kind and size, beside the database's."""
    require(principal.role, "collections.read", principal.name)
    with app.db.read() as s:
        rows = list_collections(s)
    out = []
    for r in rows:
        idx = app.indexes.get(app.model_id, r["id"])
        out.append({"collection": r["name"], "faces_in_db": r["faces"],
                    "faces_in_index": idx.count(), "kind": type(idx).__name__,
                    "model_id": idx.model_id})
    return out


def index_rebuild(app: Faceledger, principal: Principal, collection: str | None = None
                  ) -> list[dict[str, Any]]:
    """Recreate the index of one collection (or of all) from the database, the source of
    truth: [{collection, faces, kind}]."""
    require(principal.role, "index.manage", principal.name)
    with app.db.read() as s:
        targets = ([(c.id, c.name) for c in [get_collection(s, collection)]] if collection
                   else [(r["id"], r["name"]) for r in list_collections(s)])
    out = []
    for cid, name in targets:
        idx = app.indexes.rebuild(app.model_id, cid)
        out.append({"collection": name, "faces": idx.count(), "kind": type(idx).__name__})
    return out
