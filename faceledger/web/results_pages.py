"""Reading searches back: the list, the results grid, the compare view and two-person review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger import results
from faceledger.api.deps import Caller, Core, need
from faceledger.errors import NotFoundError
from faceledger.roles import Role
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[Caller, Depends(need("searches.read"))]
Reviewer = Annotated[Caller, Depends(need("reviews.write"))]


def _candidate(detail: dict[str, Any], face_id: int) -> dict[str, Any]:
    for c in detail["candidates"]:
        if c["face_id"] == face_id:
            return dict(c)
    raise NotFoundError(f"face {face_id} is not a candidate of search {detail['search_id']}")


@router.get("/searches")
def searches_list(request: Request, core: Core, caller: Reader, everyone: bool = False
                  ) -> Response:
    with core.db.read() as s:
        rows = results.list_searches(s, caller.principal, 200, mine=not everyone)
        items = [{"id": r.id, "user": r.user.name, "case": r.case_ref, "purpose": r.purpose,
                  "offence": r.offence, "mode": r.mode, "results": r.result_count,
                  "started_at": r.started_at, "ledger_seq": r.ledger_seq} for r in rows]
    # Only supervisors' listings can span users (the service decides; this picks the toggle).
    can_all = caller.principal.role == Role.supervisor
    return render(request, "searches.html", caller, searches=items,
                  everyone=everyone and can_all, can_all=can_all)


@router.get("/searches/{search_id}")
def search_results(request: Request, core: Core, caller: Reader, search_id: int) -> Response:
    with core.db.read() as s:
        detail = results.search_detail(s, caller.principal, search_id)
    return render(request, "results.html", caller, d=detail)


@router.get("/searches/{search_id}/candidates/{face_id}")
def compare(request: Request, core: Core, caller: Reader, search_id: int, face_id: int,
            reviewed: str = "") -> Response:
    with core.db.read() as s:
        detail = results.search_detail(s, caller.principal, search_id)
    cand = _candidate(detail, face_id)
    ranks = [c["face_id"] for c in detail["candidates"]]
    pos = ranks.index(face_id)
    return render(request, "compare.html", caller, d=detail, c=cand,
                  prev_id=ranks[pos - 1] if pos > 0 else None,
                  next_id=ranks[pos + 1] if pos + 1 < len(ranks) else None,
                  reviewed=reviewed if reviewed in results.DECISIONS else "",
                  me=caller.principal.name)


@router.post("/searches/{search_id}/candidates/{face_id}/review")
def review(core: Core, caller: Reviewer, search_id: int, face_id: int,
           decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    with core.db.read() as s:  # the reviewer must be allowed to read the search
        results.get_search(s, caller.principal, search_id)
    with core.db.write() as s:
        results.review(s, caller.principal, search_id, face_id, decision, note.strip())
    return RedirectResponse(f"/searches/{search_id}/candidates/{face_id}?reviewed={decision}",
                            status_code=303)
