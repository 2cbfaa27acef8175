"""The ledger: read and verify (auditors and admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from faceledger import ledger
from faceledger.api.deps import Caller, Core, need

router = APIRouter(tags=["ledger"])


@router.get("/ledger")
def read_ledger(
    core: Core, _: Annotated[Caller, Depends(need("ledger.read"))],
    user: str | None = None, case: str | None = None,
    kind: str | None = Query(None, description="prefix, e.g. 'search' or 'ingest'"),
    after: int = Query(0, ge=0, description="entries after this sequence number"),
    limit: int = Query(200, ge=1, le=2000),
) -> list[dict[str, Any]]:
    with core.db.read() as s:
        return [ledger.entry_dict(e) for e in
                ledger.read(s, user=user, case_ref=case, kind=kind, limit=limit, after_seq=after)]


@router.get("/ledger/verify")
def verify_ledger(core: Core, _: Annotated[Caller, Depends(need("ledger.verify"))]
                  ) -> dict[str, Any]:
    with core.db.read() as s:
        return ledger.verify(s).as_dict()
