"""Supervisor approval: a search that policy holds waits; approving runs it, refusing closes it.
Both decisions are ledgered, with the reason. The approval state is checked in the same write
transaction that records the decision (and, when approved, the search's result set)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import Search
from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from faceledger.faces.embed import Embedding
from faceledger.governance import ledger
from faceledger.roles import require
from faceledger.search.match import resolve_collections
from faceledger.search.record import Found, SearchResult, find, record, result_of, with_receipt

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

REASON_MAX = 2000


@dataclass(frozen=True)
class PendingSearch:
    """A search held for approval, as a supervisor sees it."""

    id: int
    user: str
    user_id: int
    case_ref: str
    purpose: str
    offence: str
    legal_basis: str
    mode: str
    top_k: int
    approval_rules: list[str]
    started_at: datetime
    authorisation_ref: str | None
    urgent: bool
    probe_box: list[int] | None


@dataclass(frozen=True)
class Decided:
    """A search after its approval decision (None from ``decided`` while it is pending)."""

    id: int
    status: str
    user: str
    case: str
    results: int


def pending(app: Faceledger, principal: Principal) -> list[PendingSearch]:
    require(principal.role, "searches.approve", principal.name)
    with app.db.read() as s:
        rows = s.execute(select(Search).where(Search.status == "pending")
                         .order_by(Search.id)).scalars().all()
        return [PendingSearch(r.id, r.user.name, r.user_id, r.case_ref, r.purpose, r.offence,
                              r.legal_basis, r.mode, r.top_k, list(r.approval_rules or []),
                              r.started_at, r.authorisation_ref, r.urgent, r.probe_box)
                for r in rows]


@dataclass(frozen=True)
class ApprovalsPage:
    pending: list[PendingSearch]
    decided: Decided | None  # the search just decided on, read back (not taken from the URL)


def approvals_page(app: Faceledger, principal: Principal, decided: int | None = None
                   ) -> ApprovalsPage:
    """The searches waiting, and (``decided``) the outcome of the decision just made."""
    require(principal.role, "searches.approve", principal.name)
    return ApprovalsPage(pending(app, principal),
                         _decided(app, decided) if decided is not None else None)


def _decided(app: Faceledger, search_id: int) -> Decided | None:
    with app.db.read() as s:
        row = s.get(Search, search_id)
        if row is None or row.status == "pending":
            return None
        return Decided(row.id, row.status, row.user.name, row.case_ref, row.result_count)


def _held(s: Session, principal: Principal, search_id: int, lock: bool = False) -> Search:
    """The search, if it is still waiting and the principal may decide on it."""
    row = s.get(Search, search_id, with_for_update=lock)
    if row is None:
        raise NotFoundError(f"no search {search_id}")
    if row.status != "pending":
        raise ConflictError(f"search {search_id} is not waiting for approval ({row.status})")
    if row.user_id == principal.user_id:
        raise PermissionDeniedError("a supervisor cannot approve their own search",
                                    rule="approval.separation")
    return row


def _find(app: Faceledger, principal: Principal, search_id: int) -> Found:
    """Match a held search's probe (reads only; the decision is checked again when written)."""
    with app.db.read() as s:
        row = _held(s, principal, search_id)
        model_id, embedding, names = row.model_id, row.probe_embedding, row.collections
        mode, top_k, sha = row.mode, row.top_k, row.probe_sha256
    assert embedding is not None
    query = Embedding.from_bytes(model_id, embedding)
    return find(app, query, resolve_collections(app, model_id, names), mode, top_k, sha)


def decide(app: Faceledger, principal: Principal, search_id: int, approve: bool,
           reason: str) -> SearchResult | None:
    """Approve (runs the search as its requester; returns its result) or refuse (returns None)."""
    require(principal.role, "searches.approve", principal.name)
    if not reason.strip():
        raise ValidationError("give a reason for the decision")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"the reason is too long ({REASON_MAX} characters at most)")
    found = _find(app, principal, search_id) if approve else None
    result, probe_path = None, None
    with app.db.write() as s:
        row = _held(s, principal, search_id, lock=True)
        kind = "search.approved" if approve else "search.approval_refused"
        payload: dict[str, Any] = {"search_id": row.id, "by": principal.name, "reason": reason,
                                   "requested_by": row.user.name, "rules": row.approval_rules}
        ledger.append(s, kind, payload, actor=principal.name, case_ref=row.case_ref)
        row.approver_id = principal.user_id
        requester, role = row.user.name, row.user.role
        if found is not None:
            record(s, row, requester, role, found, approver=principal.name)
            result = result_of(row, requester, found, [])
        else:
            row.status = "refused"
            probe_path, row.probe_path, row.probe_embedding = row.probe_path, None, None
    if result is not None:
        return with_receipt(app, result)  # after the commit: the search entry is in the log
    if probe_path:
        app.files.delete(probe_path)
    return None
