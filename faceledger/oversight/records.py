"""Searches as plain records for reporting: one row per search, with its latest outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from faceledger.db.schema import Outcome, Search, User

OUTCOME_RESULTS = ("no_match", "lead_pursued", "identification_confirmed", "arrest", "charge",
                   "no_further_action")
POSITIVE = frozenset({"identification_confirmed", "arrest", "charge"})
NEGATIVE = frozenset({"no_match", "no_further_action"})
CHARGED = frozenset({"arrest", "charge"})

Vector = npt.NDArray[np.float32]


def as_utc(dt: datetime) -> datetime:
    """Timezone-aware UTC (SQLite hands back naive datetimes, stored as UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    return as_utc(dt).isoformat() if dt is not None else None


def decode_embedding(blob: bytes | None) -> Vector | None:
    """A stored probe embedding ('<f4' bytes), re-normalised; None when purged or unusable."""
    if not blob or len(blob) % 4:
        return None
    vec = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    norm = float(np.sqrt(np.dot(vec, vec)))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return (vec / norm).astype(np.float32)


@dataclass(frozen=True, eq=False)
class SearchRecord:
    id: int
    user: str
    role: str
    unit: str | None
    started_at: datetime  # aware, UTC
    case: str
    purpose: str
    offence: str
    mode: str
    status: str
    result_count: int
    model_id: str
    probe_sha256: str
    probe_face_ratio: float | None
    outcome: str | None = None
    outcome_date: datetime | None = None
    approval_rules: list[str] = field(default_factory=list)
    approver: str | None = None
    authorisation_ref: str | None = None
    urgent: bool = False
    embedding: Vector | None = field(default=None, repr=False)

    @property
    def completed(self) -> bool:
        return self.status == "done"

    def as_dict(self) -> dict[str, Any]:
        return {
            "search_id": self.id, "user": self.user, "role": self.role, "unit": self.unit,
            "started_at": iso(self.started_at), "case": self.case, "purpose": self.purpose,
            "offence": self.offence, "mode": self.mode, "status": self.status,
            "result_count": self.result_count, "outcome": self.outcome,
            "outcome_date": iso(self.outcome_date), "approval_rules": self.approval_rules,
            "approver": self.approver, "authorisation_ref": self.authorisation_ref,
            "urgent": self.urgent, "probe_face_ratio": self.probe_face_ratio,
            "probe_embedding_present": self.embedding is not None,
        }


def latest_outcomes(session: Session, start: datetime, end: datetime
                    ) -> dict[int, tuple[str, datetime]]:
    """search id -> (result, outcome date) of the latest outcome row (by created_at, then id)."""
    rows = session.execute(
        select(Outcome.search_id, Outcome.result, Outcome.outcome_date)
        .join(Search, Outcome.search_id == Search.id)
        .where(and_(Search.started_at >= as_utc(start), Search.started_at < as_utc(end)))
        .order_by(Outcome.search_id, Outcome.created_at, Outcome.id)).all()
    latest: dict[int, tuple[str, datetime]] = {}
    for search_id, result, when in rows:  # ordered: the last one written wins
        latest[search_id] = (result, as_utc(when))
    return latest


def load_searches(session: Session, start: datetime, end: datetime,
                  user: str | None = None) -> list[SearchRecord]:
    """Every search (any status) started in [start, end), oldest first."""
    outcomes = latest_outcomes(session, start, end)
    approver_user = aliased(User)
    q = (select(Search, User, approver_user.name)
         .join(User, Search.user_id == User.id)
         .outerjoin(approver_user, Search.approver_id == approver_user.id)
         .where(and_(Search.started_at >= as_utc(start), Search.started_at < as_utc(end))))
    if user is not None:
        q = q.where(User.name == user)
    out: list[SearchRecord] = []
    for s, u, approver in session.execute(q.order_by(Search.started_at, Search.id)).all():
        result, when = outcomes.get(s.id, (None, None))
        out.append(SearchRecord(
            id=s.id, user=u.name, role=u.role, unit=u.unit, started_at=as_utc(s.started_at),
            case=s.case_ref, purpose=s.purpose, offence=s.offence, mode=s.mode,
            status=s.status, result_count=s.result_count, model_id=s.model_id,
            probe_sha256=s.probe_sha256, probe_face_ratio=s.probe_face_ratio,
            outcome=result, outcome_date=when, approval_rules=list(s.approval_rules or []),
            approver=approver, authorisation_ref=s.authorisation_ref, urgent=bool(s.urgent),
            embedding=decode_embedding(s.probe_embedding)))
    return out
