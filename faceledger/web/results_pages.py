"""Reading searches back: the list, the results grid, the compare view and two-person review;
on a search's page also its approval state, its outcome and (urgent searches) its authorisation."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, NotFoundError
from faceledger.http.dates import optional_day
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.oversight import retention
from faceledger.roles import Role, allowed
from faceledger.search import outcomes, results
from faceledger.search import view as search_view
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[Caller, Depends(need("searches.read"))]
Reviewer = Annotated[Caller, Depends(need("reviews.write"))]
OutcomeWriter = Annotated[Caller, Depends(need("outcomes.write"))]
NOTICES = {"outcome": "The outcome was recorded in the ledger.",
           "authorised": "The authorisation reference was added and ledgered; the search "
                         "will not be purged for the lack of it."}


def _candidate(detail: dict[str, Any], face_id: int) -> dict[str, Any]:
    for c in detail["candidates"]:
        if c["face_id"] == face_id:
            return dict(c)
    raise NotFoundError(f"face {face_id} is not a candidate of search {detail['search_id']}")


def _results_page(request: Request, core: Faceledger, caller: Caller, search_id: int, *,
                  status: int = 200, error: str | None = None, notice: str | None = None,
                  form: dict[str, str] | None = None) -> Response:
    page = search_view.search_page(core, caller.principal, search_id)
    detail, state = page.detail, page.state
    me = caller.principal
    mine_or_supervisor = state["user_id"] == me.user_id or me.role == Role.supervisor
    return render(request, "results.html", caller, status=status, d=detail, st=state,
                  receipt=page.receipt, error=error, notice=notice, form=form or {},
                  can_outcome=(allowed(me.role, "outcomes.write") and mine_or_supervisor
                               and state["status"] == "done"),
                  can_authorise=mine_or_supervisor,
                  results_choices=outcomes.RESULTS, today=date.today().isoformat())


@router.get("/searches")
def searches_list(request: Request, core: Core, caller: Reader, everyone: bool = False
                  ) -> Response:
    items = [asdict(r) for r in results.list_searches(core, caller.principal, 200,
                                                      mine=not everyone)]
    # Only supervisors' listings can span users (the service decides; this picks the toggle).
    can_all = caller.principal.role == Role.supervisor
    return render(request, "searches.html", caller, searches=items,
                  everyone=everyone and can_all, can_all=can_all)


@router.get("/searches/{search_id}")
def search_results(request: Request, core: Core, caller: Reader, search_id: Id,
                   done: str = "") -> Response:
    return _results_page(request, core, caller, search_id, notice=NOTICES.get(done))


@router.post("/searches/{search_id}/outcome")
def record_outcome(request: Request, core: Core, caller: OutcomeWriter, search_id: Id,
                   result: Annotated[str, Form()] = "", on: Annotated[str, Form()] = "",
                   note: Annotated[str, Form()] = "") -> Response:
    form = {"result": result, "on": on, "note": note}
    try:
        day = optional_day(on, "the outcome date")
        outcomes.record_outcome(core, caller.principal, search_id, result, note.strip(), day)
    except NotFoundError:
        raise
    except FaceledgerError as exc:
        return _results_page(request, core, caller, search_id, status=exc.status,
                             error=exc.message, form=form)
    return RedirectResponse(f"/searches/{search_id}?done=outcome#outcome", status_code=303)


@router.post("/searches/{search_id}/authorisation")
def add_authorisation(request: Request, core: Core, caller: Reader, search_id: Id,
                      reference: Annotated[str, Form()] = "") -> Response:
    try:
        retention.add_authorisation(core, caller.principal, search_id, reference)
    except NotFoundError:
        raise
    except FaceledgerError as exc:
        return _results_page(request, core, caller, search_id, status=exc.status,
                             error=exc.message, form={"reference": reference})
    return RedirectResponse(f"/searches/{search_id}?done=authorised#authorisation",
                            status_code=303)


@router.get("/searches/{search_id}/candidates/{face_id}")
def compare(request: Request, core: Core, caller: Reader, search_id: Id, face_id: Id,
            reviewed: str = "", repeat: str = "") -> Response:
    page = search_view.search_page(core, caller.principal, search_id)
    detail, status = page.detail, page.state["status"]
    if status != "done":
        raise NotFoundError(f"search {search_id} has no candidates ({status})")
    cand = _candidate(detail, face_id)
    ranks = [c["face_id"] for c in detail["candidates"]]
    pos = ranks.index(face_id)
    return render(request, "compare.html", caller, d=detail, c=cand,
                  prev_id=ranks[pos - 1] if pos > 0 else None,
                  next_id=ranks[pos + 1] if pos + 1 < len(ranks) else None,
                  reviewed=reviewed if reviewed in results.DECISIONS else "",
                  repeat=repeat in results.DECISIONS and repeat,
                  me=caller.principal.name)


@router.post("/searches/{search_id}/candidates/{face_id}/review")
def review(core: Core, caller: Reviewer, search_id: Id, face_id: Id,
           decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    state = results.review(core, caller.principal, search_id, face_id, decision, note.strip())
    said = "repeat" if state.repeat else "reviewed"  # a repeat records nothing
    return RedirectResponse(f"/searches/{search_id}/candidates/{face_id}?{said}={decision}",
                            status_code=303)
