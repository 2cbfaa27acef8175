"""index check: every (model, collection) index against the database, the source of truth.

For faiss files and Milvus alike: the ids each holds (faces missing from the index, ids the
database no longer has) and a sample of vectors compared with the stored embeddings (cosine ~1.0).
The index is read as it is, not reconciled first. ``repair`` puts missing faces and differing
vectors back and deletes extra ids (Milvus), or rebuilds the file from the database (faiss).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import Collection, Face
from faceledger.gallery.index import load_index
from faceledger.gallery.index.milvus_backend import MilvusIndex
from faceledger.gallery.milvus_store import MilvusStore
from faceledger.roles import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.gallery.index import VectorIndex

SAMPLE = 64  # vectors compared per index
COSINE_OK = 0.999  # a stored vector this close to the database's counts as the same
LISTED = 20  # ids named per kind of difference


def _pairs(s: Session, active_model: str) -> list[tuple[str, int, str]]:
    """(model, collection id, name): the active model in every collection, and every other
    model that has faces stored."""
    names = {int(i): str(n) for i, n in s.execute(select(Collection.id, Collection.name))}
    stored = {(str(m), int(c)) for m, c in
              s.execute(select(Face.model_id, Face.collection_id).distinct())}
    pairs = stored | {(active_model, cid) for cid in names}
    return sorted((m, cid, names[cid]) for m, cid in pairs if cid in names)


def index_check(app: Faceledger, principal: Principal, *, repair: bool = False,
                sample: int = SAMPLE) -> dict[str, Any]:
    """{engine, ok, indexes: [{collection, model_id, faces_in_db, faces_in_index, missing,
    extra, missing_ids, extra_ids, sampled, vectors_differ, min_cosine, ok, repaired}]}."""
    require(principal.role, "index.manage" if repair else "collections.read", principal.name)
    with app.db.read() as s:
        pairs = _pairs(s, app.model_id)
    rows = []
    for model_id, cid, name in pairs:
        row = _check_one(app, model_id, cid, sample)
        repaired: dict[str, int] | None = None
        if repair and not row["ok"]:
            repaired = _repair(app, model_id, cid, row)
            row = _check_one(app, model_id, cid, sample)
        row.pop("_bad")
        rows.append({"collection": name, **row, "repaired": repaired})
    return {"engine": "milvus" if isinstance(app.indexes, MilvusStore) else "faiss",
            "ok": all(r["ok"] for r in rows), "indexes": rows}


def _raw(app: Faceledger, model_id: str, cid: int) -> VectorIndex | None:
    """The index as stored now (not reconciled); None where no faiss file exists yet."""
    if isinstance(app.indexes, MilvusStore):
        return app.indexes.view(model_id, cid)
    path = app.indexes._path(model_id, cid)
    return load_index(path) if path.exists() else None


def _check_one(app: Faceledger, model_id: str, cid: int, sample: int) -> dict[str, Any]:
    index = _raw(app, model_id, cid)
    held = index.ids() if index is not None else np.empty(0, dtype=np.int64)
    db_ids = app.indexes._db_ids(model_id, cid)
    missing = np.setdiff1d(db_ids, held)
    extra = np.setdiff1d(held, db_ids)
    common = np.intersect1d(db_ids, held)
    picked = np.unique(common[np.linspace(0, common.size - 1, min(sample, common.size)).astype(int)]
                       ) if common.size and sample > 0 else common[:0]
    cosines = _cosines(app, index, model_id, cid, picked) if index is not None else {}
    bad = sorted(i for i, c in cosines.items() if c < COSINE_OK)
    return {"model_id": model_id, "kind": index.kind if index is not None else None,
            "faces_in_db": int(db_ids.size), "faces_in_index": int(held.size),
            "missing": int(missing.size), "extra": int(extra.size),
            "missing_ids": missing[:LISTED].tolist(), "extra_ids": extra[:LISTED].tolist(),
            "sampled": len(cosines), "vectors_differ": bad[:LISTED],
            "min_cosine": round(min(cosines.values()), 6) if cosines else None,
            "ok": not (missing.size or extra.size or bad), "_bad": bad}


def _cosines(app: Faceledger, index: VectorIndex, model_id: str, cid: int, ids: np.ndarray
             ) -> dict[int, float]:
    """Cosine between each face's database embedding and the index's vector for it. Milvus
    returns its stored vectors; a faiss index is searched with the database vector (the face's
    own score, -1.0 when it does not come back among the nearest ten)."""
    if ids.size == 0:
        return {}
    db_ids, db_vecs = app.indexes._db_vectors(model_id, cid, only=ids)
    if isinstance(index, MilvusIndex):
        stored = index.vectors(db_ids)
        return {int(i): float(np.dot(v, stored[int(i)]) / (np.linalg.norm(v) *
                                                        np.linalg.norm(stored[int(i)]) or 1.0))
                if int(i) in stored else -1.0 for i, v in zip(db_ids, db_vecs, strict=True)}
    scores, found = index.search(db_vecs, min(10, index.count()), model_id=model_id)
    out: dict[int, float] = {}
    for i, row_s, row_i in zip(db_ids, scores, found, strict=True):
        hit = np.flatnonzero(row_i == i)
        out[int(i)] = float(row_s[hit[0]]) if hit.size else -1.0
    return out


def _repair(app: Faceledger, model_id: str, cid: int, row: dict[str, Any]) -> dict[str, int]:
    """Milvus: delete extra ids, upsert missing faces and differing vectors from the database.
    faiss: rebuild the collection's file from the database."""
    if not isinstance(app.indexes, MilvusStore):
        app.indexes.rebuild(model_id, cid)
        return {"missing": row["missing"], "extra": row["extra"], "vectors": len(row["_bad"]),
                "rebuilt": 1}
    index = app.indexes.view(model_id, cid)
    held = index.ids()
    db_ids = app.indexes._db_ids(model_id, cid)
    extra = np.setdiff1d(held, db_ids)
    put = np.union1d(np.setdiff1d(db_ids, held), np.asarray(row["_bad"], dtype=np.int64))
    if extra.size:
        index.remove(extra)
    if put.size:
        ids, vecs = app.indexes._db_vectors(model_id, cid, only=put)
        index.add(ids, vecs, model_id=model_id)
    index.flush()
    return {"missing": int(put.size) - len(row["_bad"]), "extra": int(extra.size),
            "vectors": len(row["_bad"]), "rebuilt": 0}
