"""match: the probe embedding against each collection's index, then the blocklist, then the
threshold (identify mode). Pure reads; the caller records the result. On Milvus the blocklist
is applied inside the engine's search (``exclude``); on the faiss files, to a few extra hits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import Collection
from faceledger.errors import ValidationError
from faceledger.gallery.milvus_store import MilvusStore
from faceledger.gallery.optout import optout_threshold, templates, withheld_faces
from faceledger.gallery.repository import face_sources
from faceledger.governance.calibration import CalibrationInfo, active_calibration

if TYPE_CHECKING:
    from faceledger.core import Faceledger
    from faceledger.faces.embed import Embedding

ENGINE_ROUNDS = 4  # searches per collection when opted-out faces keep turning up (Milvus)


@dataclass
class Candidate:
    rank: int
    similarity: float
    face_id: int
    image_id: int
    image_path: str
    thumbnail_path: str
    source_url: str | None
    page_url: str | None
    title: str | None
    captured_at: str | None
    collection: str
    box: list[int]
    sources: list[dict[str, str | None]] = field(default_factory=list)
    image_sha256: str = ""
    band: str | None = None  # likely | possible | unlikely (None: no calibration)
    probe_image: bool = False  # the gallery image is the probe photo itself (same bytes)
    duplicate_of: dict[str, Any] | None = None  # {"rank", "why": "same_bytes"}


@dataclass
class MatchResult:
    hits: list[tuple[float, int]]  # (similarity, face id), best first
    collections: list[dict[str, Any]]  # [{"collection", "faces"}] searched
    calibration: CalibrationInfo | None
    withheld: int  # candidates dropped because the person opted out


def resolve_collections(app: Faceledger, model_id: str, names: list[str] | None
                        ) -> list[tuple[int, str, int]]:
    """(id, name, faces) of the named collections, or all; face counts from the indexes
    (reconciled with the database), which is much cheaper than counting rows per search."""
    with app.db.read() as s:
        q = select(Collection.id, Collection.name).order_by(Collection.name)
        if names:
            q = q.where(Collection.name.in_(list(names)))
        rows = [(int(i), str(n)) for i, n in s.execute(q).all()]
        unknown = set(names or []) - {n for _i, n in rows}
        known = [str(n) for n in s.execute(select(Collection.name).order_by(Collection.name))
                 .scalars()] if unknown else []
    if unknown:
        hint = f"known collections: {', '.join(known)}" if known else "there are none yet"
        raise ValidationError(f"unknown collection(s): {', '.join(sorted(unknown))} ({hint})",
                              unknown=sorted(unknown), known=known)
    return [(i, n, app.indexes.get(model_id, i).count()) for i, n in rows]


def match(app: Faceledger, query: Embedding, cols: list[tuple[int, str, int]], mode: str,
          top_k: int) -> MatchResult:
    calibration = None
    if mode == "identify":
        with app.db.read() as s:
            calibration = active_calibration(s, query.model_id)
    if isinstance(app.indexes, MilvusStore):
        return _match_in_engine(app, app.indexes, query, cols, top_k, calibration)
    hits: list[tuple[float, int]] = []
    # Ask for a few more than top_k so withheld (opted-out) faces do not shorten the list.
    k = top_k + 10
    for col_id, _name, count in cols:
        if count == 0:
            continue
        scores, ids = app.indexes.search(query.model_id, col_id, query.vector, min(k, count))
        hits.extend(_pairs(scores, ids))
    hits.sort(key=lambda h: -h[0])
    if calibration is not None:
        hits = [h for h in hits if h[0] >= calibration.threshold]
    hits = hits[:k]
    blocked = withheld_faces(app, query.model_id, [h[1] for h in hits])
    kept = [h for h in hits if h[1] not in blocked][:top_k]
    return MatchResult(kept, [{"collection": n, "faces": c} for _i, n, c in cols], calibration,
                       sum(1 for h in hits if h[1] in blocked))


def _pairs(scores: np.ndarray, ids: np.ndarray) -> list[tuple[float, int]]:
    return [(float(sc), int(i)) for sc, i in zip(scores, ids, strict=True) if i >= 0]


def _match_in_engine(app: Faceledger, store: MilvusStore, query: Embedding,
                     cols: list[tuple[int, str, int]], top_k: int,
                     calibration: CalibrationInfo | None) -> MatchResult:
    """Milvus: opted-out faces are excluded inside the search (a filter on face id), so the
    top-k slots go to eligible faces however many of a person's faces opted out. ``withheld``
    counts the opted-out faces that would otherwise have made the list."""
    hits: list[tuple[float, int]] = []
    held: list[tuple[float, int]] = []
    for col_id, _name, count in cols:
        if count:
            found, out = _engine_search(app, store, query, col_id, min(top_k, count))
            hits += found
            held += out
    hits.sort(key=lambda h: -h[0])
    floor = calibration.threshold if calibration is not None else -np.inf
    hits = [h for h in hits if h[0] >= floor][:top_k]
    if len(hits) == top_k:
        floor = max(floor, hits[-1][0])
    return MatchResult(hits, [{"collection": n, "faces": c} for _i, n, c in cols], calibration,
                       sum(1 for sc, _i in held if sc >= floor))


def _engine_search(app: Faceledger, store: MilvusStore, query: Embedding, col_id: int, k: int
                   ) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """Top-``k`` of one collection with its opted-out faces excluded in Milvus, and (score, id)
    of those excluded. They are found by a range search of each opt-out template at the
    withhold threshold (remembered until the collection's faces or the opt-outs change), each
    checked against the database's vector; an opted-out face that the approximate range search
    missed but the search returns is added and the search run again."""
    model = query.model_id
    marks = templates(app, model)
    if len(marks) == 0:
        return _pairs(*store.search(model, col_id, query.vector, k)), []
    threshold = optout_threshold(app, model)
    tag = hashlib.sha256(marks.astype("<f4").tobytes() + repr(threshold).encode()).hexdigest()
    excluded = store.withheld_known(model, col_id, tag)
    if excluded is None:
        near = store.view(model, col_id).within(marks, threshold)
        excluded = withheld_faces(app, model, near.tolist())
        store.remember_withheld(model, col_id, tag, excluded)
    for _ in range(ENGINE_ROUNDS):
        hits = _pairs(*store.search(model, col_id, query.vector, k, exclude=sorted(excluded)))
        late = withheld_faces(app, model, [i for _s, i in hits])
        if not late:
            break
        excluded |= late
        store.remember_withheld(model, col_id, tag, late)
    hits = [h for h in hits if h[1] not in excluded]  # rounds exhausted: never show one
    held = store.view(model, col_id).vectors(np.asarray(sorted(excluded), dtype=np.int64))
    return hits, [(float(v @ query.vector), i) for i, v in held.items()]


def clip(score: float) -> float:
    return round(float(np.clip(score, -1.0, 1.0)), 6)


def candidates(app: Faceledger, hits: list[tuple[float, int]]) -> list[Candidate]:
    """Candidates with provenance, as shown to the searcher."""
    with app.db.read() as s:
        rows = face_sources(s, [h[1] for h in hits])
    out: list[Candidate] = []
    for score, fid in hits:
        face = rows.get(fid)
        if face is None:  # erased meanwhile
            continue
        out.append(Candidate(
            rank=len(out) + 1, similarity=clip(score), face_id=face.face_id,
            image_id=face.image_id, image_path=face.image_path,
            thumbnail_path=face.thumbnail_path, collection=face.collection, box=face.box,
            image_sha256=face.image_sha256, **face.shown()))
    return out
