"""The ledger: read (paged, newest first) and verify (auditors and admins only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from faceledger import ledger
from faceledger.api.deps import Caller, Core, need

router = APIRouter(tags=["ledger"])
SEQ_MAX = 2**63 - 1  # the column is a signed 64-bit integer


@router.get("/ledger")
def read_ledger(
    core: Core, _: Annotated[Caller, Depends(need("ledger.read"))],
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
    with core.db.read() as s:
        pg = ledger.page(s, user=user, case_ref=case, kind=kind, before=before, after=after,
                         limit=limit, newest_first=newest)
        entries = [ledger.entry_dict(e) for e in pg.entries]
    older = {"before": pg.older} if pg.older is not None else None
    newer = {"after": pg.newer} if pg.newer is not None else None
    return {"entries": entries, "order": order, "limit": limit,
            "next": older if newest else newer, "prev": newer if newest else older}


@router.get("/ledger/verify")
def verify_ledger(core: Core, _: Annotated[Caller, Depends(need("ledger.verify"))]
                  ) -> dict[str, Any]:
    with core.db.read() as s:
        return ledger.verify(s).as_dict()
