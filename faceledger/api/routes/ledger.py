"""The ledger: read (paged, newest first) and verify (auditors and admins only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from faceledger.governance import ledger_service
from faceledger.governance.ledger_service import SEQ_MAX, Filters
from faceledger.http.deps import Caller, Core, need

router = APIRouter(tags=["ledger"])


class LedgerEntryOut(BaseModel):
    seq: int
    ts: str = Field(description="ISO 8601 UTC")
    kind: str
    actor: str | None
    case: str | None
    payload: dict[str, Any] | None
    payload_digest: str
    prev_hash: str
    hash: str


class LedgerPageOut(BaseModel):
    entries: list[LedgerEntryOut]
    order: Literal["newest", "oldest"]
    limit: int
    next: dict[str, int] | None = Field(description="query parameters of the following page")
    prev: dict[str, int] | None = Field(description="query parameters of the page before")


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    reason: str | None
    mode: str = Field(description="full (from entry 1) or incremental (from the newest "
                      "checkpoint an earlier run proved)")
    tree_size: int
    root_hash: str = Field(description="Merkle root recomputed from the entries")
    from_size: int
    checkpoints_checked: list[str] = Field(description="the signed checkpoints proven")
    record_problems: list[str] = Field(default_factory=list, description=(
        "searches, reviews, outcomes, approvals or opt-outs that do not match their ledger "
        "entries, or entries whose record was deleted (at most 50)"))


@router.get("/ledger", response_model=LedgerPageOut)
def read_ledger(
    core: Core, caller: Annotated[Caller, Depends(need("ledger.read"))],
    user: Annotated[str | None, Query(max_length=120, description="actor")] = None,
    case: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z][a-z_.]*$",
                                      description="prefix, e.g. 'search' or 'ingest'")] = None,
    before: Annotated[int | None, Query(ge=1, le=SEQ_MAX, description=(
        "only entries with a smaller sequence number (the `next` cursor, newest first)"))] = None,
    after: Annotated[int | None, Query(ge=0, le=SEQ_MAX, description=(
        "only entries with a larger sequence number (the `prev` cursor, newest first)"))] = None,
    order: Annotated[Literal["newest", "oldest"], Query(description=(
        "newest first (default) or oldest first"))] = "newest",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of entries, newest first by default. Follow `next` (its query parameters) for the
    following page in the same order, `prev` for the one before; null at either end."""
    newest = order == "newest"
    pg = ledger_service.read_entries(core, caller.principal, Filters(user, case, kind),
                                     before=before, after=after, limit=limit,
                                     newest_first=newest)
    older = {"before": pg.older} if pg.older is not None else None
    newer = {"after": pg.newer} if pg.newer is not None else None
    return {"entries": pg.entries, "order": order, "limit": limit,
            "next": older if newest else newer, "prev": newer if newest else older}


@router.get("/ledger/verify", response_model=VerifyOut)
def verify_ledger(core: Core, caller: Annotated[Caller, Depends(need("ledger.verify"))]
                  ) -> dict[str, Any]:
    """Walk the hash chain, recompute the Merkle log and check it against every stored signed
    checkpoint (a checkpoint larger than the log: entries were cut; a different root: history
    was rewritten), and cross-check every search, review, outcome, approval and opt-out
    against its ledger entry (same content digest; no entry without its record). POST a
    checkpoint held elsewhere to /ledger/verify to check against it too."""
    return ledger_service.verify_chain(core, caller.principal).as_dict()
