"""search -> policy -> match -> ledger -> results.

No search runs without a named user, a case reference, a purpose, an offence type and a legal
basis. A search and its ledger entry commit in one transaction, together with the policy checks
that guard it (the daily quota among them: concurrent searches cannot all pass it); a refused
attempt is ledgered too. Searches that policy says need approval wait for a supervisor (see
approval.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from faceledger.db.schema import Search
from faceledger.errors import FaceledgerError, NoFaceError, PolicyRefusal, ValidationError
from faceledger.faces.decode import DecodedImage, preview_data_uri
from faceledger.faces.probefaces import ProbeFace, choose_face, faces_json, index_of, number_of
from faceledger.faces.probefaces import probe_faces as probe_faces
from faceledger.gallery.collections import list_collections
from faceledger.governance import ledger
from faceledger.governance.policy import Policy, check_search
from faceledger.roles import allowed, require
from faceledger.search.match import resolve_collections
from faceledger.search.record import (
    SCHEMA_VERSION,
    SearchResult,
    find,
    record,
    result_of,
    with_receipt,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.faces.detect import Detection
    from faceledger.faces.pipeline import FaceResult

__all__ = ["SCHEMA_VERSION", "ProbeFace", "SearchRequest", "SearchResult", "detect_faces",
           "probe_faces", "run_search"]
AUTHORISATION_REF_MAX = 200


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


def refuse(app: Faceledger, principal: Principal, req: SearchRequest, probe_sha: str | None,
           exc: FaceledgerError) -> FaceledgerError:
    with app.db.write() as s:
        ledger.append(s, "search.refused",
                      {"user": principal.name, "role": principal.role, **req.audit(),
                       "probe_sha256": probe_sha, "code": exc.code, "reason": exc.message,
                       "rule": exc.details.get("rule")},
                      actor=principal.name, case_ref=req.case_ref or None)
    return exc


@contextmanager
def _ledgered(app: Faceledger, principal: Principal, req: SearchRequest,
              probe_sha: str | None) -> Iterator[None]:
    """Every refused attempt is ledgered, with its reason/rule."""
    try:
        yield
    except FaceledgerError as exc:
        raise refuse(app, principal, req, probe_sha, exc) from None


def _may_search(principal: Principal) -> None:
    """The search permission; a refusal names the policy rule (and is ledgered)."""
    if not allowed(principal.role, "search"):
        raise PolicyRefusal(f"refused by rule roles.search: role {principal.role!r} may not "
                            "search faces", rule="roles.search")


def _validate(req: SearchRequest) -> None:
    """The input rules, the same for the CLI, the API and the web."""
    missing = req.missing()
    if missing:
        raise ValidationError("a search needs a case reference, purpose, offence and legal "
                              "basis; missing: " + ", ".join(missing), missing=missing)
    if req.mode not in ("investigate", "identify"):
        raise ValidationError("mode must be 'investigate' or 'identify'")
    if not 1 <= req.top_k <= 500:
        raise ValidationError("top-k must be between 1 and 500")
    if len(req.authorisation_ref or "") > AUTHORISATION_REF_MAX:
        raise ValidationError(f"the authorisation reference is too long "
                              f"({AUTHORISATION_REF_MAX} characters at most)")


def _collections(app: Faceledger, principal: Principal, policy: Policy, req: SearchRequest
                 ) -> list[tuple[int, str, int]]:
    cols = resolve_collections(app, app.model_id, req.collections)
    if req.collections is None:  # all the collections this role may search
        cols = [c for c in cols if principal.role in policy.roles_for(c[1])]
    return cols


def _detect(app: Faceledger, probe: bytes) -> tuple[DecodedImage, list[Detection]]:
    pipe = app.pipeline()
    image = pipe.decode(probe)
    detections = pipe.detect(image)
    if not detections:
        raise NoFaceError("no face found in the probe photo")
    return image, detections


def detect_faces(app: Faceledger, principal: Principal, probe: bytes) -> dict[str, Any]:
    """The faces in a probe photo, so the user can pick one. Compares nothing; not a search.
    ``preview``: a PNG to show in place of a format browsers cannot show (Netpbm, TIFF)."""
    require(principal.role, "search", principal.name)
    image, detections = _detect(app, probe)
    return {"width": image.width, "height": image.height, "faces": faces_json(detections),
            "preview": preview_data_uri(image)}


def _row(app: Faceledger, principal: Principal, req: SearchRequest, policy: Policy,
         started: datetime, probe_sha: str, image: DecodedImage, idx: int, chosen: FaceResult,
         cols: list[str], rules: list[str]) -> Search:
    deadline = None
    if (req.urgent and not req.authorisation_ref
            and req.purpose in policy.authorisation.required_for_purposes):
        deadline = started + timedelta(hours=policy.authorisation.urgent_window_hours)
    return Search(user_id=principal.user_id, case_ref=req.case_ref or "",
                  purpose=req.purpose or "", offence=req.offence or "",
                  legal_basis=req.legal_basis or "", mode=req.mode,
                  model_id=chosen.embedding.model_id,
                  threshold=None, top_k=req.top_k, probe_sha256=probe_sha,
                  started_at=started, finished_at=started, ledger_seq=0, result_count=0,
                  face_index=idx, probe_path=app.files.probe_relpath(probe_sha, image.format),
                  probe_box=chosen.box.as_list(), status="pending" if rules else "done",
                  collections=cols, approval_rules=rules or None,
                  authorisation_ref=req.authorisation_ref, urgent=req.urgent,
                  auth_deadline=deadline, probe_embedding=chosen.embedding.to_bytes(),
                  probe_face_ratio=round(chosen.box.width * chosen.box.height
                                         / float(image.width * image.height), 4))


def run_search(app: Faceledger, principal: Principal, probe: bytes, req: SearchRequest
               ) -> SearchResult:
    started = datetime.now(UTC)
    probe_sha = hashlib.sha256(probe).hexdigest() if probe else None
    policy = app.policy()
    with _ledgered(app, principal, req, probe_sha):
        _may_search(principal)
        _validate(req)
        cols = _collections(app, principal, policy, req)
        names = [c[1] for c in cols]
        with app.db.read() as s:  # refuse early, before the models run; checked again below
            rules = check_search(s, policy, principal, req, names)
        image, detections = _detect(app, probe)
    detections, idx = choose_face(detections, req.face)
    faces = probe_faces(detections)
    # Only the chosen face is aligned and embedded.
    chosen = app.pipeline().embed_detections(image, [detections[idx]], thumbnails=False).faces[0]
    row = _row(app, principal, req, policy, started, probe_sha or "", image, idx, chosen,
               names, rules)
    found = None if rules else find(app, chosen.embedding, cols, req.mode, req.top_k,
                                    row.probe_sha256)
    with _ledgered(app, principal, req, probe_sha), app.db.write() as s:
        # The checks and the write they guard share this (BEGIN IMMEDIATE) transaction.
        check_search(s, policy, principal, req, names)
        assert row.probe_path is not None
        app.files.put(row.probe_path, probe)
        s.add(row)
        s.flush()
        if found is not None:
            record(s, row, principal.name, principal.role, found)
            result = result_of(row, principal.name, found, faces)
        else:
            result = _requested(s, principal, req, row, faces)
    return with_receipt(app, result)  # after the commit: the entry is in the log


def _requested(s: Session, principal: Principal, req: SearchRequest, row: Search,
               faces: list[ProbeFace]) -> SearchResult:
    """Ledger the request of a search held for approval; its (pending) result."""
    entry = ledger.append(s, "search.requested", {
        "search_id": row.id, "user": principal.name, "role": principal.role,
        **req.audit(), "face_index": row.face_index, "probe_sha256": row.probe_sha256 or None,
        "approval_rules": row.approval_rules, "started_at": row.started_at.isoformat()},
        actor=principal.name, case_ref=req.case_ref)
    row.ledger_seq = entry.seq
    return SearchResult(SCHEMA_VERSION, row.id, entry.seq, "pending", principal.name,
                        row.case_ref, req.mode, row.model_id, None, None, req.top_k,
                        row.probe_sha256, faces, number_of(row.face_index), [], [],
                        row.started_at.isoformat(), None, row.approval_rules or [])


def form_options(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """What a search form offers: the policy's purposes and offences, the purposes that need
    an authorisation reference (and the urgent window), the collections, the upload cap."""
    require(principal.role, "search", principal.name)
    policy = app.policy()
    with app.db.read() as s:
        collections = list_collections(s)
    return {"purposes": policy.purposes, "offences": policy.offences,
            "auth_purposes": policy.authorisation.required_for_purposes,
            "urgent_hours": f"{policy.authorisation.urgent_window_hours:g}",
            "collections": collections, "max_upload_bytes": app.settings.max_upload_bytes}
