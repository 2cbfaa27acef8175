"""The gallery's vectors in Milvus: ``MilvusStore``, the ``IndexStore`` the app uses when
``FACELEDGER_VECTOR_URI`` is set (``core.py`` chooses).

The database stays the source of truth. Milvus is shared by every process, so there is nothing to
save per process: a process checks a collection when its faces change (the collection's
``faces_version``) by comparing counts, and on a difference compares ids and repairs the
difference (it reads Milvus's ids before the database's, so a face another process commits and
adds meanwhile is never taken for an extra). Upserts and deletes are idempotent, so two
processes repairing at once agree. ``faceledger index check --repair`` compares everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from faceledger.db.schema import Face
from faceledger.gallery.index.milvus_backend import MilvusConfig, MilvusIndex, connect
from faceledger.gallery.indexstore import IndexStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from faceledger.db.engine import Database
    from faceledger.gallery.index import VectorIndex

REBUILD_BATCH = 50_000  # faces read from the database and upserted per step of a rebuild


class MilvusStore(IndexStore):
    def __init__(self, config: MilvusConfig, db: Database, root: Path | None = None) -> None:
        super().__init__(root or Path("index"), db, exact_max=0, nprobe=config.nprobe,
                         ef_search=config.ef_search)
        self.config = config
        self._client: Any = None
        self._views: dict[tuple[str, int], MilvusIndex] = {}
        self._touched: set[str] = set()  # model ids written since the last flush
        # (model, collection) -> (faces_version, opt-out tag, the opted-out faces found there)
        self._withheld: dict[tuple[str, int], tuple[int, str, frozenset[int]]] = {}

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = connect(self.config)
            return self._client

    def view(self, model_id: str, collection_id: int) -> MilvusIndex:
        """The collection's index as Milvus holds it now, not reconciled (``index check``)."""
        key = (model_id, collection_id)
        with self._lock:
            if key not in self._views:
                dim = self._dim(model_id, (Face.model_id == model_id,))
                self._views[key] = MilvusIndex(self.client, self.config, model_id, dim,
                                               collection_id)
            return self._views[key]

    def get(self, model_id: str, collection_id: int) -> VectorIndex:
        """The collection's index, checked against the database whenever its faces changed."""
        key = (model_id, collection_id)
        with self._lock:
            version = self._version(collection_id)
            index = self.view(model_id, collection_id)
            if self._seen.get(key) != version:
                if index.count() != self._db_count(model_id, collection_id):
                    self._reconcile(index, model_id, collection_id)
                self._seen[key] = version
            return index

    def _db_count(self, model_id: str, collection_id: int) -> int:
        with self.db.read() as s:
            return int(s.execute(select(func.count()).select_from(Face).where(
                Face.collection_id == collection_id, Face.model_id == model_id)).scalar_one())

    def _reconcile(self, index: VectorIndex, model_id: str, collection_id: int) -> None:
        held = index.ids()  # Milvus first, then the database (see the module's docstring)
        db_ids = self._db_ids(model_id, collection_id)
        extra = np.setdiff1d(held, db_ids)
        missing = np.setdiff1d(db_ids, held)
        if extra.size:
            index.remove(extra)
        if missing.size:
            ids, vecs = self._db_vectors(model_id, collection_id, only=missing)
            index.add(ids, vecs, model_id=model_id)
        if extra.size or missing.size:
            self._touched.add(model_id)

    def rebuild(self, model_id: str, collection_id: int) -> VectorIndex:
        """Write every face of the collection again from the database, then delete what the
        database no longer has. Searches elsewhere keep finding the old vectors meanwhile."""
        with self._lock:
            index = self.view(model_id, collection_id)
            held = index.ids()
            db_ids = self._db_ids(model_id, collection_id)
            for start in range(0, db_ids.size, REBUILD_BATCH):
                ids, vecs = self._db_vectors(model_id, collection_id,
                                             only=db_ids[start:start + REBUILD_BATCH])
                index.add(ids, vecs, model_id=model_id)
            extra = np.setdiff1d(held, db_ids)
            if extra.size:
                index.remove(extra)
            index.flush()
            self._seen.pop((model_id, collection_id), None)
            return index

    def flush(self) -> None:
        with self._lock:
            if self._client is None:
                return
            for model_id in sorted(self._touched):
                self._client.flush(self.view_name(model_id))
            self._touched.clear()

    def view_name(self, model_id: str) -> str:
        from faceledger.gallery.index.milvus_backend import collection_name

        return collection_name(self.config.prefix, model_id)

    def add(self, model_id: str, collection_id: int, ids: np.ndarray, vectors: np.ndarray,
            version: int) -> None:
        """Upsert faces this process just committed as ``version`` of the collection; when
        another change came in between, check the collection against the database too."""
        key = (model_id, collection_id)
        with self._lock:
            if self._seen.get(key) == version - 1:
                index = self.view(model_id, collection_id)
                self._seen[key] = version
            else:
                index = self.get(model_id, collection_id)  # type: ignore[assignment]
            index.add(ids, vectors, model_id=model_id)
            self._touched.add(model_id)

    def drop(self, model_id: str, collection_id: int) -> None:
        with self._lock:
            self.view(model_id, collection_id).clear()
            self._views.pop((model_id, collection_id), None)
            self._seen.pop((model_id, collection_id), None)
            self._withheld.pop((model_id, collection_id), None)
            self._touched.add(model_id)

    def remove(self, model_id: str, collection_id: int, ids: np.ndarray) -> int:
        with self._lock:
            n = self.view(model_id, collection_id).remove(ids)
            self._touched.add(model_id)
            return n

    def search(self, model_id: str, collection_id: int, vector: np.ndarray, k: int, *,
               exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of the collection, leaving out ``exclude`` (withheld, opted-out faces)."""
        index = self.view(model_id, collection_id)
        self.get(model_id, collection_id)
        scores, ids = index.search(vector.reshape(1, -1), k, model_id=model_id, exclude=exclude)
        return scores[0], ids[0]

    def withheld_known(self, model_id: str, collection_id: int, tag: str) -> set[int] | None:
        """The opted-out faces of the collection found so far under opt-out state ``tag`` (the
        caller's digest of the templates and threshold), or None when the collection's faces or
        that state changed since (``search/match.py`` passes them to ``search`` as ``exclude``)."""
        with self._lock:
            held = self._withheld.get((model_id, collection_id))
            if held is None or held[1] != tag or held[0] != self._version(collection_id):
                return None
            return set(held[2])

    def remember_withheld(self, model_id: str, collection_id: int, tag: str,
                          face_ids: Iterable[int]) -> None:
        """Add opted-out faces found under ``tag`` to those remembered (a new tag or faces version
        starts afresh)."""
        key = (model_id, collection_id)
        with self._lock:
            version = self._version(collection_id)
            held = self._withheld.get(key)
            known = held[2] if held is not None and held[:2] == (version, tag) else frozenset()
            self._withheld[key] = (version, tag, known | {int(i) for i in face_ids})

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._views.clear()
