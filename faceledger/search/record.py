"""A search's result set: found (pure reads, outside any write transaction), then recorded with
its ledger entry inside the write transaction of the service that owns it (search.run_search,
approval.decide), together with the checks that guard it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from faceledger.errors import NotFoundError
from faceledger.faces.probefaces import ProbeFace, number_of
from faceledger.governance import ledger
from faceledger.governance.calibration import active_calibration
from faceledger.search.bands import Bands, duplicate_marks, make_bands
from faceledger.search.match import Candidate, MatchResult, candidates, match
from faceledger.search.receipts import receipt_after

if TYPE_CHECKING:
    from faceledger.core import Faceledger
    from faceledger.db.schema import Search
    from faceledger.faces.embed import Embedding

# 2: faces are numbered from 1 ("face", probe_faces[].face; was 0-based "face_index"/"index");
#    candidates carry "band", "probe_image", "duplicate_of", "image_sha256"; "bands" added.
#    Later, compatibly: "receipt" (the search's ledger receipt, search/receipts.py).
SCHEMA_VERSION = 2


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
    # The ledger receipt of the search's entry (of its request while held for approval):
    # entry number, checkpoint (or when one is due), inclusion proof. See search/receipts.py.
    receipt: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Found:
    """What matching produced, before it is recorded."""

    match: MatchResult
    candidates: list[Candidate]
    bands: Bands | None
    model_id: str
    finished: datetime

    @property
    def threshold(self) -> float | None:
        return self.match.calibration.threshold if self.match.calibration else None


def find(app: Faceledger, query: Embedding, cols: list[tuple[int, str, int]], mode: str,
         top_k: int, probe_sha256: str) -> Found:
    """Match, with provenance, bands and marks. Reads only; the caller records the result."""
    found = match(app, query, cols, mode, top_k)
    cands = candidates(app, found.hits)
    bands = current_bands(app, query.model_id)
    mark(cands, probe_sha256, bands)
    return Found(found, cands, bands, query.model_id, datetime.now(UTC))


def record(s: Session, row: Search, user: str, role: str, found: Found,
           approver: str | None = None) -> int:
    """Ledger the search with its result set and mark ``row`` (in ``s``) done; the entry's seq.
    Runs inside the caller's write transaction."""
    cal = found.match.calibration
    entry = ledger.append(s, "search", {
        "search_id": row.id, "user": user, "role": role, "case": row.case_ref,
        "purpose": row.purpose, "offence": row.offence, "legal_basis": row.legal_basis,
        "mode": row.mode, "top_k": row.top_k, "face_index": row.face_index,
        "collections": row.collections, "authorisation_ref": row.authorisation_ref,
        "urgent": row.urgent, "approved_by": approver, "approval_rules": row.approval_rules,
        "started_at": row.started_at.isoformat(), "finished_at": found.finished.isoformat(),
        "probe_sha256": row.probe_sha256, "collections_searched": found.match.collections,
        "model_id": found.model_id, "threshold": found.threshold,
        "calibration_id": cal.id if cal else None,
        "withheld_optout": found.match.withheld,
        "candidates": [{"rank": c.rank, "face_id": c.face_id, "score": c.similarity}
                       for c in found.candidates],
    }, actor=user, case_ref=row.case_ref)
    row.status, row.ledger_seq, row.finished_at = "done", entry.seq, found.finished
    row.threshold, row.result_count = found.threshold, len(found.candidates)
    s.flush()
    return entry.seq


def result_of(row: Search, user: str, found: Found, faces: list[ProbeFace]) -> SearchResult:
    """The result a recorded search returns (``row``'s columns read after it was recorded)."""
    cal = found.match.calibration
    return SearchResult(
        SCHEMA_VERSION, row.id, row.ledger_seq, "done", user, row.case_ref, row.mode,
        found.model_id, found.threshold, cal.as_dict() if cal else None, row.top_k,
        row.probe_sha256, faces, number_of(row.face_index), found.match.collections,
        found.candidates, row.started_at.isoformat(), found.finished.isoformat(),
        row.approval_rules or [], found.bands.as_dict() if found.bands else None)


def with_receipt(app: Faceledger, result: SearchResult) -> SearchResult:
    """``result`` with its receipt, read after the write transaction that recorded it committed
    (a checkpoint signed later is in the receipt ``receipts.search_receipt`` gives)."""
    result.receipt = receipt_after(app, result.search_id, result.ledger_seq)
    return result


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
