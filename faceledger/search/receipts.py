"""A search's ledger receipt: its entry's number, the signed checkpoint that holds it (or when
the next one is due) and the RFC 9162 inclusion proof to that checkpoint's root
(``governance.proofs.receipt``), so the searcher, or anyone they hand it to, can check offline
with the log's public key that the search is in the log (``faceledger ledger check-receipt``).

The receipt is of the search's own entry (``searches.ledger_seq``): the ``search`` entry with
its result set once it ran; for a search held for approval (or refused by a supervisor) the
``search.requested`` entry of its request, which is what the log holds of it. A receipt is
rebuilt at each read, so once a checkpoint covers the entry the receipt carries that signed
checkpoint and a proof against its size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from faceledger.errors import NotFoundError
from faceledger.governance import checkpoints, proofs
from faceledger.roles import require
from faceledger.search.results import note_view, search_row

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.db.schema import Search


def receipt_of(app: Faceledger, s: Session, row: Search) -> dict[str, Any] | None:
    """``row``'s receipt, inside the caller's transaction (None: the search has no entry yet).
    ``checkpoint_at``: when the checkpoint in the receipt was signed (not itself signed)."""
    return _receipt(app, s, row.id, row.ledger_seq)


def _receipt(app: Faceledger, s: Session, search_id: int, seq: int) -> dict[str, Any] | None:
    if seq <= 0:
        return None
    rec = proofs.receipt(app, s, seq)
    cp = checkpoints.by_size(s, rec["tree_size"]) if rec["checkpoint"] else None
    return {"search_id": search_id, **rec,
            "checkpoint_at": cp.created_at.isoformat() if cp is not None else None}


def receipt_after(app: Faceledger, search_id: int, seq: int) -> dict[str, Any] | None:
    """The receipt of a search just recorded (its entry ``seq``), read in a fresh read
    transaction after the service's write transaction committed (the caller, a service,
    checked its permission)."""
    with app.db.read() as s:
        return _receipt(app, s, search_id, seq)


def search_receipt(app: Faceledger, principal: Principal, search_id: int) -> dict[str, Any]:
    """The latest receipt of a search the principal may read (as ``results.search_detail``:
    investigators and supervisors; opening someone else's search is ledgered, like reading its
    result)."""
    require(principal.role, "searches.read", principal.name)
    with app.db.read() as s:
        row = search_row(s, search_id)
        who = {"search_id": row.id, "user": row.user.name, "case": row.case_ref}
        rec = receipt_of(app, s, row)
    if rec is None:  # a stored search always has its entry; kept for the type checker
        raise NotFoundError(f"search {search_id} has no ledger entry yet")
    note_view(app.db, principal, who)
    return rec
