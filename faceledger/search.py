"""search -> policy -> match -> ledger -> results.

No search runs without a named user, a case reference, a purpose, an offence type and a legal
basis. A search and its ledger entry commit in one transaction; a refused attempt is ledgered too.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from faceledger import ledger
from faceledger.accounts import Principal
from faceledger.calibration import CalibrationInfo, active_calibration
from faceledger.core import Faceledger
from faceledger.db.schema import Search
from faceledger.errors import (
    FaceChoiceRequired,
    FaceledgerError,
    NoFaceError,
    ValidationError,
)
from faceledger.gallery import collection_face_counts, faces_with_provenance
from faceledger.pipeline import FaceResult
from faceledger.policy import check_search

Mode = Literal["investigate", "identify"]
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SearchRequest:
    case_ref: str | None
    purpose: str | None
    offence: str | None
    legal_basis: str | None
    mode: str = "investigate"
    top_k: int = 20
    face_index: int | None = None
    collections: list[str] | None = None

    def missing(self) -> list[str]:
        fields = {"case": self.case_ref, "purpose": self.purpose, "offence": self.offence,
                  "legal basis": self.legal_basis}
        return [k for k, v in fields.items() if not (v and v.strip())]

    def audit(self) -> dict[str, Any]:
        return {"case": self.case_ref, "purpose": self.purpose, "offence": self.offence,
                "legal_basis": self.legal_basis, "mode": self.mode, "top_k": self.top_k,
                "face_index": self.face_index, "collections": self.collections}


@dataclass(frozen=True)
class ProbeFace:
    index: int
    box: list[int]
    detector_score: float
    face_px: int


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


@dataclass
class SearchResult:
    schema_version: int
    search_id: int
    ledger_seq: int
    user: str
    case: str
    mode: str
    model_id: str
    threshold: float | None
    calibration: dict[str, Any] | None
    top_k: int
    probe_sha256: str
    probe_faces: list[ProbeFace]
    face_index: int
    collections: list[dict[str, Any]]
    candidates: list[Candidate]
    started_at: str
    finished_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse(app: Faceledger, principal: Principal, req: SearchRequest, probe_sha: str | None,
            exc: FaceledgerError) -> FaceledgerError:
    with app.db.write() as s:
        ledger.append(s, "search.refused",
                      {"user": principal.name, "role": principal.role, **req.audit(),
                       "probe_sha256": probe_sha, "code": exc.code, "reason": exc.message},
                      actor=principal.name, case_ref=req.case_ref or None)
    return exc


def probe_faces(faces: list[FaceResult]) -> list[ProbeFace]:
    return [ProbeFace(i, f.box.as_list(), round(f.quality.detector_score, 4), f.quality.face_px)
            for i, f in enumerate(faces)]


def run_search(app: Faceledger, principal: Principal, probe: bytes, req: SearchRequest
               ) -> SearchResult:
    started = datetime.now(UTC)
    probe_sha = hashlib.sha256(probe).hexdigest() if probe else None
    missing = req.missing()
    try:
        if missing:
            raise ValidationError(
                "a search needs a case reference, purpose, offence and legal basis; missing: "
                + ", ".join(missing), missing=missing)
        if req.mode not in ("investigate", "identify"):
            raise ValidationError("mode must be 'investigate' or 'identify'")
        if not 1 <= req.top_k <= 500:
            raise ValidationError("top-k must be between 1 and 500")
        check_search(principal, req)
    except FaceledgerError as exc:
        raise _refuse(app, principal, req, probe_sha, exc) from None

    pipe = app.pipeline()
    try:
        result = pipe.process(probe)
        if not result.faces:
            raise NoFaceError("no face found in the probe photo")
    except FaceledgerError as exc:  # unreadable probe or no face: the attempt is still ledgered
        raise _refuse(app, principal, req, probe_sha, exc) from None
    faces = probe_faces(result.faces)
    if req.face_index is None and len(result.faces) > 1:
        raise FaceChoiceRequired(
            f"the probe holds {len(faces)} faces; choose one with --face N (0-{len(faces) - 1})",
            faces=[asdict(f) for f in faces])
    idx = req.face_index or 0
    if not 0 <= idx < len(result.faces):
        raise ValidationError(f"--face {idx} is out of range: the probe has {len(faces)} face(s)")
    query = result.faces[idx].embedding
    probe_path = app.files.probe_relpath(probe_sha or "", result.format)
    app.files.put(probe_path, probe)

    with app.db.read() as s:
        cols = collection_face_counts(s, query.model_id, req.collections)
        unknown = set(req.collections or []) - {c[1] for c in cols}
        calibration: CalibrationInfo | None = None
        if req.mode == "identify":
            calibration = active_calibration(s, query.model_id)
    if unknown:
        raise _refuse(app, principal, req, probe_sha,
                      ValidationError(f"unknown collection(s): {', '.join(sorted(unknown))}"))

    hits: list[tuple[float, int]] = []
    for col_id, _name, count in cols:
        if count == 0:
            continue
        scores, ids = app.indexes.search(query.model_id, col_id, query.vector,
                                         min(req.top_k, count))
        hits.extend((float(sc), int(i)) for sc, i in zip(scores, ids, strict=True) if i >= 0)
    hits.sort(key=lambda h: -h[0])
    threshold = calibration.threshold if calibration else None
    if threshold is not None:
        hits = [h for h in hits if h[0] >= threshold]
    hits = hits[: req.top_k]

    with app.db.write() as s:
        rows = faces_with_provenance(s, [h[1] for h in hits])
        candidates = [_candidate(rank, score, rows[fid]) for rank, (score, fid)
                      in enumerate(((sc, fid) for sc, fid in hits if fid in rows), 1)]
        finished = datetime.now(UTC)
        searched = [{"collection": n, "faces": c} for _i, n, c in cols]
        entry = ledger.append(s, "search", {
            "user": principal.name, "role": principal.role, **req.audit(), "face_index": idx,
            "started_at": started.isoformat(), "finished_at": finished.isoformat(),
            "probe_sha256": probe_sha, "collections_searched": searched,
            "model_id": query.model_id, "threshold": threshold,
            "calibration_id": calibration.id if calibration else None,
            "candidates": [{"rank": c.rank, "face_id": c.face_id,
                            "score": round(c.similarity, 6)} for c in candidates],
        }, actor=principal.name, case_ref=req.case_ref)
        row = Search(user_id=principal.user_id, case_ref=req.case_ref or "",
                     purpose=req.purpose or "", offence=req.offence or "",
                     legal_basis=req.legal_basis or "", mode=req.mode, model_id=query.model_id,
                     threshold=threshold, top_k=req.top_k, probe_sha256=probe_sha or "",
                     started_at=started, finished_at=finished, ledger_seq=entry.seq,
                     result_count=len(candidates), face_index=idx, probe_path=probe_path,
                     probe_box=result.faces[idx].box.as_list())
        s.add(row)
        s.flush()
        search_id = row.id
    return SearchResult(
        schema_version=SCHEMA_VERSION, search_id=search_id, ledger_seq=entry.seq,
        user=principal.name, case=req.case_ref or "", mode=req.mode, model_id=query.model_id,
        threshold=threshold, calibration=calibration.as_dict() if calibration else None,
        top_k=req.top_k, probe_sha256=probe_sha or "", probe_faces=faces, face_index=idx,
        collections=searched, candidates=candidates, started_at=started.isoformat(),
        finished_at=finished.isoformat())


def _candidate(rank: int, score: float, face: Any) -> Candidate:
    img = face.image
    first = img.sources[0] if img.sources else None
    return Candidate(
        rank=rank, similarity=round(float(np.clip(score, -1.0, 1.0)), 6), face_id=face.id,
        image_id=img.id, image_path=img.stored_path, thumbnail_path=face.thumbnail_path,
        source_url=first.source_url if first else None,
        page_url=first.page_url if first else None, title=first.title if first else None,
        captured_at=first.captured_at.isoformat() if first and first.captured_at else None,
        collection=img.collection.name, box=list(face.box),
        sources=[{"source_url": src.source_url, "page_url": src.page_url, "title": src.title,
                  "original_path": src.original_path} for src in img.sources],
    )
