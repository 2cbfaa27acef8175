"""What a search's pages show beyond its result set: its approval state and decision, its
authorisation, its outcomes, its ledger receipt. Reads only (opening someone else's search is ledgered by
results.search_detail); its probe photo is opened through face_access.probe_photo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, Outcome, Search, User
from faceledger.roles import require
from faceledger.search.receipts import receipt_of
from faceledger.search.results import detail_of, note_view, search_row

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


@dataclass(frozen=True)
class SearchPage:
    detail: dict[str, Any]  # results.search_detail's
    state: dict[str, Any]  # status, approval, authorisation, outcomes (see _state)
    receipt: dict[str, Any] | None = None  # its ledger receipt (receipts.receipt_of)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decision(s: Session, row: Search) -> dict[str, Any] | None:
    """The supervisor's approval decision on a held search (from the ledger), if any."""
    entries = s.execute(select(LedgerEntry).where(
        LedgerEntry.kind.in_(("search.approved", "search.approval_refused")),
        LedgerEntry.case_ref == row.case_ref).order_by(LedgerEntry.seq.desc())).scalars()
    for e in entries:
        payload = json.loads(e.payload) if e.payload else {}
        if payload.get("search_id") == row.id:
            return {"approved": e.kind == "search.approved", "by": payload.get("by", e.actor),
                    "reason": payload.get("reason"), "ts": e.ts, "seq": e.seq}
    return None


def _state(s: Session, row: Search) -> dict[str, Any]:
    deadline = _aware(row.auth_deadline)
    history = [{"result": o.result, "date": o.outcome_date.date().isoformat(), "note": o.note,
                "by": name, "recorded_at": o.created_at, "ledger_seq": o.ledger_seq}
               for o, name in s.execute(select(Outcome, User.name)
                                        .join(User, Outcome.user_id == User.id)
                                        .where(Outcome.search_id == row.id)
                                        .order_by(Outcome.id.desc())).all()]
    return {
        "status": row.status, "rules": row.approval_rules or [],
        "approver": row.approver.name if row.approver else None,
        "decision": decision(s, row) if row.approval_rules else None,
        "urgent": row.urgent, "authorisation_ref": row.authorisation_ref,
        "auth_deadline": deadline,
        "auth_overdue": bool(deadline and deadline < datetime.now(UTC)),
        "probe_kept": bool(row.probe_path), "results_purged": row.results_purged_at is not None,
        "outcomes": history, "user_id": row.user_id,
    }


def search_page(app: Faceledger, principal: Principal, search_id: int) -> SearchPage:
    """A search with its state; before (or without) approval it shows no candidates."""
    require(principal.role, "searches.read", principal.name)
    with app.db.read() as s:
        row = search_row(s, search_id)
        detail, state = detail_of(s, row, app.settings), _state(s, row)
        receipt = receipt_of(app, s, row)
    note_view(app.db, principal, detail)
    if state["status"] != "done":
        detail["candidates"] = []
    return SearchPage(detail, state, receipt)
