"""The ledger for auditors: chain verification, filters and a paged table of entries, one
readable line each (``ledger_summary``) with the full payload in an expandable details."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from faceledger.errors import ValidationError
from faceledger.governance import ledger_service
from faceledger.governance.ledger_service import SEQ_MAX, Filters
from faceledger.governance.ledger_summary import summary
from faceledger.http.dates import optional_day
from faceledger.http.deps import Caller, Core, need
from faceledger.oversight.service import ledger_transparency
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Auditor = Annotated[Caller, Depends(need("ledger.read"))]
PAGE = 100
KINDS = ["search", "search.refused", "search.requested", "search.approved",
         "search.approval_refused", "review", "outcome", "signin", "user", "token",
         "collection", "ingest", "subject", "policy", "retention", "system"]


@router.get("/ledger")
def ledger_page(request: Request, core: Core, caller: Auditor, user: str = "", case: str = "",
                kind: str = "", date_from: str = "", date_to: str = "",
                before: Annotated[int | None, Query(ge=1, le=SEQ_MAX)] = None,
                after: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None) -> Response:
    """The newest page of entries matching the filters (shown oldest to newest), with links to
    older and newer pages that keep the filters."""
    filters = {"user": user.strip()[:120], "case": case.strip()[:200], "kind": kind.strip()[:40],
               "date_from": date_from.strip(), "date_to": date_to.strip()}
    error = None
    try:
        start, end = optional_day(date_from, "'from'"), optional_day(date_to, "'to'")
    except ValidationError as exc:
        start = end = None
        error = exc.message
    view = ledger_service.ledger_view(
        core, caller.principal, Filters(filters["user"], filters["case"], filters["kind"],
                                        start, end),
        before=before, after=after, limit=PAGE)
    report, pg = view.status, view.page
    rows = list(reversed(pg.entries))  # oldest to newest
    for r in rows:
        r["summary"] = summary(r["kind"], r["payload"])
        r["payload_json"] = json.dumps(r["payload"], indent=2, ensure_ascii=False,
                                       sort_keys=True)
    kept = {k: v for k, v in filters.items() if v}
    filtered = bool(kept)

    def link(**cursor: int) -> str:
        return "/ledger?" + urlencode({**kept, **cursor})

    # The signed checkpoints panel: log key, latest checkpoint, witnesses (read-only).
    transparency = ledger_transparency(core, caller.principal)
    return render(request, "ledger.html", caller, report=report, rows=rows, tlog=transparency,
                  filters=filters, kinds=KINDS, error=error, filtered=filtered, page=PAGE,
                  older=link(before=pg.older) if pg.older is not None else None,
                  newer=link(after=pg.newer) if pg.newer is not None else None,
                  latest=link() if (before is not None or after is not None) else None)
