"""Outcomes: what each search led to, recorded by the investigator (ledgered)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import Outcome, Search
from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from faceledger.governance import ledger
from faceledger.roles import Role, require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

RESULTS = ("no_match", "lead_pursued", "identification_confirmed", "arrest", "charge",
           "no_further_action")
NOTE_MAX = 2000


@dataclass(frozen=True)
class OutcomeRecord:
    search_id: int
    result: str
    date: date
    ledger_seq: int


def record_outcome(app: Faceledger, principal: Principal, search_id: int, result: str,
                   note: str = "", on: date | None = None) -> OutcomeRecord:
    """Record what a search led to (on ``on``, default today; never a future day)."""
    require(principal.role, "outcomes.write", principal.name)
    if result not in RESULTS:
        raise ValidationError(f"outcome must be one of: {', '.join(RESULTS)}")
    if len(note) > NOTE_MAX:
        raise ValidationError(f"note is too long ({NOTE_MAX} characters at most)")
    if on is not None and on > date.today():
        raise ValidationError("the outcome date cannot be in the future")
    with app.db.write() as s:
        row = _add(s, principal, search_id, result, note, on)
        return OutcomeRecord(search_id, row.result, row.outcome_date.date(), row.ledger_seq)


def _add(session: Session, principal: Principal, search_id: int, result: str, note: str,
         on: date | None) -> Outcome:
    search = session.get(Search, search_id)
    if search is None:
        raise NotFoundError(f"no search {search_id}")
    if search.status != "done":
        raise ConflictError(f"search {search_id} has no results yet ({search.status})")
    if search.user_id != principal.user_id and principal.role != Role.supervisor:
        raise PermissionDeniedError("only the searcher or a supervisor records its outcome")
    when = datetime.combine(on, datetime.min.time(), UTC) if on else datetime.now(UTC)
    entry = ledger.append(session, "outcome", {
        "search_id": search_id, "result": result, "date": when.date().isoformat(),
        "note": note, "by": principal.name}, actor=principal.name, case_ref=search.case_ref)
    row = Outcome(search_id=search_id, user_id=principal.user_id, result=result,
                  outcome_date=when, note=note, created_at=datetime.now(UTC),
                  ledger_seq=entry.seq)
    session.add(row)
    session.flush()
    return row


def latest_outcome(session: Session, search_id: int) -> Outcome | None:
    return session.execute(select(Outcome).where(Outcome.search_id == search_id)
                           .order_by(Outcome.id.desc()).limit(1)).scalar_one_or_none()
