"""Supervisor approval: a search that policy holds waits; approving runs it, refusing closes it.
Both decisions are ledgered, with the reason."""

from __future__ import annotations

from sqlalchemy import select

from faceledger import ledger
from faceledger.accounts import Principal
from faceledger.core import Faceledger
from faceledger.db.schema import Search
from faceledger.embed import Embedding
from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from faceledger.roles import require
from faceledger.search import SearchResult, execute


def pending(app: Faceledger, principal: Principal) -> list[Search]:
    require(principal.role, "searches.approve", principal.name)
    with app.db.read() as s:
        rows = s.execute(select(Search).where(Search.status == "pending")
                         .order_by(Search.id)).scalars().all()
        for r in rows:
            _ = r.user.name  # load for the caller
        return list(rows)


def decide(app: Faceledger, principal: Principal, search_id: int, approve: bool,
           reason: str) -> SearchResult | None:
    """Approve (runs the search as its requester; returns its result) or refuse (returns None)."""
    require(principal.role, "searches.approve", principal.name)
    if not reason.strip():
        raise ValidationError("give a reason for the decision")
    with app.db.write() as s:
        row = s.get(Search, search_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no search {search_id}")
        if row.status != "pending":
            raise ConflictError(f"search {search_id} is not waiting for approval ({row.status})")
        if row.user_id == principal.user_id:
            raise PermissionDeniedError("a supervisor cannot approve their own search",
                                        rule="approval.separation")
        kind = "search.approved" if approve else "search.approval_refused"
        ledger.append(s, kind, {"search_id": row.id, "by": principal.name, "reason": reason,
                                "requested_by": row.user.name, "rules": row.approval_rules},
                      actor=principal.name, case_ref=row.case_ref)
        row.approver_id = principal.user_id
        row.status = "approved"  # no second decision; execute() marks it done
        requester, role = row.user.name, row.user.role
        if not approve:
            row.status = "refused"
            probe_path, row.probe_path, row.probe_embedding = row.probe_path, None, None
        embedding = row.probe_embedding
    if not approve:
        if probe_path:
            app.files.delete(probe_path)
        return None
    assert embedding is not None
    query = Embedding.from_bytes(row.model_id, embedding)
    return execute(app, row, requester, role, query, [], approver=principal.name)
