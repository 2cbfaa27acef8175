"""search -> policy -> match -> ledger -> results.

No search runs without a named user, a case reference, a purpose, an offence type and a legal
basis. A search and its ledger entry commit in one transaction; a refused attempt is ledgered
too. Searches that policy says need approval wait for a supervisor (see approval.py)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from faceledger import ledger
from faceledger.accounts import Principal
from faceledger.bands import Bands, duplicate_marks, make_bands
from faceledger.calibration import active_calibration
from faceledger.core import Faceledger
from faceledger.db.schema import Search
from faceledger.embed import Embedding
from faceledger.errors import FaceledgerError, NoFaceError, NotFoundError, ValidationError
from faceledger.match import Candidate, candidates, match, resolve_collections
from faceledger.policy import check_search
from faceledger.probefaces import ProbeFace, choose_face, index_of, number_of, probe_faces

# 2: faces are numbered from 1 ("face", probe_faces[].face; was 0-based "face_index"/"index");
#    candidates carry "band", "probe_image", "duplicate_of", "image_sha256"; "bands" added.
SCHEMA_VERSION = 2
__all__ = ["ProbeFace", "SearchRequest", "SearchResult", "execute", "probe_faces", "run_search"]


@dataclass(frozen=True)
class SearchRequest:
    case_ref: str | None
    purpose: str | None
    offence: str | None
    legal_basis: str | None
    mode: str = "investigate"
    top_k: int = 20
    face: int | None = None  # face number, 1, 2, … left to right (None: the only face)
    collections: list[str] | None = None
    authorisation_ref: str | None = None
    urgent: bool = False

    def missing(self) -> list[str]:
        fields = {"case": self.case_ref, "purpose": self.purpose, "offence": self.offence,
                  "legal basis": self.legal_basis}
        return [k for k, v in fields.items() if not (v and v.strip())]

    def audit(self) -> dict[str, Any]:
        return {"case": self.case_ref, "purpose": self.purpose, "offence": self.offence,
                "legal_basis": self.legal_basis, "mode": self.mode, "top_k": self.top_k,
                "face_index": index_of(self.face), "collections": self.collections,
                "authorisation_ref": self.authorisation_ref, "urgent": self.urgent}


@dataclass
class SearchResult:
    schema_version: int
    search_id: int
    ledger_seq: int
    status: str  # "done", or "pending" (awaiting approval: no candidates yet)
    user: str
    case: str
    mode: str
    model_id: str
    threshold: float | None
    calibration: dict[str, Any] | None
    top_k: int
    probe_sha256: str
    probe_faces: list[ProbeFace]
    face: int  # the searched face's number (1, 2, … left to right)
    collections: list[dict[str, Any]]
    candidates: list[Candidate]
    started_at: str
    finished_at: str | None
    approval_rules: list[str] = field(default_factory=list)
    bands: dict[str, Any] | None = None  # thresholds and FMRs of the candidates' bands

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refuse(app: Faceledger, principal: Principal, req: SearchRequest, probe_sha: str | None,
           exc: FaceledgerError) -> FaceledgerError:
    with app.db.write() as s:
        ledger.append(s, "search.refused",
                      {"user": principal.name, "role": principal.role, **req.audit(),
                       "probe_sha256": probe_sha, "code": exc.code, "reason": exc.message,
                       "rule": exc.details.get("rule")},
                      actor=principal.name, case_ref=req.case_ref or None)
    return exc


def _validate(req: SearchRequest) -> None:
    missing = req.missing()
    if missing:
        raise ValidationError("a search needs a case reference, purpose, offence and legal "
                              "basis; missing: " + ", ".join(missing), missing=missing)
    if req.mode not in ("investigate", "identify"):
        raise ValidationError("mode must be 'investigate' or 'identify'")
    if not 1 <= req.top_k <= 500:
        raise ValidationError("top-k must be between 1 and 500")


def run_search(app: Faceledger, principal: Principal, probe: bytes, req: SearchRequest
               ) -> SearchResult:
    started = datetime.now(UTC)
    probe_sha = hashlib.sha256(probe).hexdigest() if probe else None
    policy = app.policy()
    try:
        _validate(req)
        cols = resolve_collections(app, app.model_id, req.collections)
        if req.collections is None:  # all the collections this role may search
            cols = [c for c in cols if principal.role in policy.roles_for(c[1])]
        with app.db.read() as s:
            rules = check_search(s, policy, principal, req, [c[1] for c in cols])
        pipe = app.pipeline()
        image = pipe.decode(probe)
        detections = pipe.detect(image)
        if not detections:
            raise NoFaceError("no face found in the probe photo")
    except FaceledgerError as exc:  # every refused attempt is ledgered, with its reason/rule
        raise refuse(app, principal, req, probe_sha, exc) from None
    detections, idx = choose_face(detections, req.face)
    faces = probe_faces(detections)
    # Only the chosen face is aligned and embedded.
    chosen = pipe.embed_detections(image, [detections[idx]], thumbnails=False).faces[0]
    probe_path = app.files.probe_relpath(probe_sha or "", image.format)
    app.files.put(probe_path, probe)
    deadline = None
    if (req.urgent and not req.authorisation_ref
            and req.purpose in policy.authorisation.required_for_purposes):
        deadline = started + timedelta(hours=policy.authorisation.urgent_window_hours)
    row = Search(user_id=principal.user_id, case_ref=req.case_ref or "",
                 purpose=req.purpose or "", offence=req.offence or "",
                 legal_basis=req.legal_basis or "", mode=req.mode, model_id=app.model_id,
                 threshold=None, top_k=req.top_k, probe_sha256=probe_sha or "",
                 started_at=started, finished_at=started, ledger_seq=0, result_count=0,
                 face_index=idx, probe_path=probe_path, probe_box=chosen.box.as_list(),
                 status="pending" if rules else "done", collections=[c[1] for c in cols],
                 approval_rules=rules or None, authorisation_ref=req.authorisation_ref,
                 urgent=req.urgent, auth_deadline=deadline,
                 probe_embedding=chosen.embedding.to_bytes(),
                 probe_face_ratio=round(chosen.box.width * chosen.box.height
                                        / float(image.width * image.height), 4))
    if rules:
        with app.db.write() as s:
            s.add(row)
            s.flush()
            entry = ledger.append(s, "search.requested", {
                "search_id": row.id, "user": principal.name, "role": principal.role,
                **req.audit(), "face_index": idx, "probe_sha256": probe_sha,
                "approval_rules": rules, "started_at": started.isoformat()},
                actor=principal.name, case_ref=req.case_ref)
            row.ledger_seq = entry.seq
        return SearchResult(SCHEMA_VERSION, row.id, entry.seq, "pending", principal.name,
                            row.case_ref, req.mode, app.model_id, None, None, req.top_k,
                            probe_sha or "", faces, number_of(idx), [], [], started.isoformat(),
                            None, rules)
    return execute(app, row, principal.name, principal.role, chosen.embedding, faces, cols=cols)


def execute(app: Faceledger, row: Search, user: str, role: str, query: Embedding,
            faces: list[ProbeFace], approver: str | None = None,
            cols: list[tuple[int, str, int]] | None = None) -> SearchResult:
    """Match and record: the result set and the search entry commit together. ``cols`` are the
    collections already resolved for this request (an approved search resolves them again)."""
    if cols is None:
        cols = resolve_collections(app, query.model_id, row.collections)
    found = match(app, query, cols, row.mode, row.top_k)
    cands = candidates(app, found.hits)
    bands = current_bands(app, query.model_id)
    mark(cands, row.probe_sha256, bands)
    finished = datetime.now(UTC)
    threshold = found.calibration.threshold if found.calibration else None
    with app.db.write() as s:
        if row.id is None:
            s.add(row)
        else:
            row = s.merge(row)
        s.flush()
        entry = ledger.append(s, "search", {
            "search_id": row.id, "user": user, "role": role, "case": row.case_ref,
            "purpose": row.purpose, "offence": row.offence, "legal_basis": row.legal_basis,
            "mode": row.mode, "top_k": row.top_k, "face_index": row.face_index,
            "collections": row.collections, "authorisation_ref": row.authorisation_ref,
            "urgent": row.urgent, "approved_by": approver, "approval_rules": row.approval_rules,
            "started_at": row.started_at.isoformat(), "finished_at": finished.isoformat(),
            "probe_sha256": row.probe_sha256, "collections_searched": found.collections,
            "model_id": query.model_id, "threshold": threshold,
            "calibration_id": found.calibration.id if found.calibration else None,
            "withheld_optout": found.withheld,
            "candidates": [{"rank": c.rank, "face_id": c.face_id, "score": c.similarity}
                           for c in cands],
        }, actor=user, case_ref=row.case_ref)
        row.status, row.ledger_seq, row.finished_at = "done", entry.seq, finished
        row.threshold, row.result_count = threshold, len(cands)
        s.flush()
        search_id = row.id
    return SearchResult(
        SCHEMA_VERSION, search_id, entry.seq, "done", user, row.case_ref, row.mode,
        query.model_id, threshold, found.calibration.as_dict() if found.calibration else None,
        row.top_k, row.probe_sha256, faces, number_of(row.face_index), found.collections, cands,
        row.started_at.isoformat(), finished.isoformat(), row.approval_rules or [],
        bands.as_dict() if bands else None)


def current_bands(app: Faceledger, model_id: str) -> Bands | None:
    """The bands of the model's active calibration (None: the model has no calibration)."""
    with app.db.read() as s:
        try:
            cal = active_calibration(s, model_id)
        except NotFoundError:
            return None
    st = app.settings
    return make_bands(cal, st.band_possible_fmr, st.band_likely_fmr, st.score_floor)


def mark(cands: list[Candidate], probe_sha256: str, bands: Bands | None) -> None:
    """Each candidate's band, and whether it is the probe image or a duplicate of another."""
    marks = duplicate_marks(probe_sha256, [(c.rank, c.image_id, c.image_sha256) for c in cands])
    for c, (is_probe, dup) in zip(cands, marks, strict=True):
        c.band = bands.band(c.similarity) if bands else None
        c.probe_image, c.duplicate_of = is_probe, dup
