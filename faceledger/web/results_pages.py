"""Reading searches back: the list, the results grid, the compare view and two-person review;
on a search's page also its approval state, its outcome and (urgent searches) its authorisation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger import outcomes, results, retention
from faceledger.api.deps import Caller, Core, need
from faceledger.core import Faceledger
from faceledger.db.schema import LedgerEntry, Outcome, Search, User
from faceledger.errors import FaceledgerError, NotFoundError, ValidationError
from faceledger.roles import Role, allowed
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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decision(s: Session, row: Search) -> dict[str, Any] | None:
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
    """What the results page needs beyond search_detail: status, approval, authorisation,
    outcome history."""
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
        "decision": _decision(s, row) if row.approval_rules else None,
        "urgent": row.urgent, "authorisation_ref": row.authorisation_ref,
        "auth_deadline": deadline,
        "auth_overdue": bool(deadline and deadline < datetime.now(UTC)),
        "probe_kept": bool(row.probe_path), "results_purged": row.results_purged_at is not None,
        "outcomes": history, "user_id": row.user_id,
    }


def _results_page(request: Request, core: Faceledger, caller: Caller, search_id: int, *,
                  status: int = 200, error: str | None = None, notice: str | None = None,
                  form: dict[str, str] | None = None) -> Response:
    with core.db.read() as s:
        detail = results.search_detail(s, caller.principal, search_id, core.settings)
        state = _state(s, results.get_search(s, caller.principal, search_id))
    results.note_view(core.db, caller.principal, detail)
    me = caller.principal
    mine_or_supervisor = state["user_id"] == me.user_id or me.role == Role.supervisor
    if state["status"] != "done":
        detail["candidates"] = []  # nothing is shown before (or without) approval
    return render(request, "results.html", caller, status=status, d=detail, st=state,
                  error=error, notice=notice, form=form or {},
                  can_outcome=(allowed(me.role, "outcomes.write") and mine_or_supervisor
                               and state["status"] == "done"),
                  can_authorise=mine_or_supervisor,
                  results_choices=outcomes.RESULTS, today=date.today().isoformat())


@router.get("/searches")
def searches_list(request: Request, core: Core, caller: Reader, everyone: bool = False
                  ) -> Response:
    with core.db.read() as s:
        rows = results.list_searches(s, caller.principal, 200, mine=not everyone)
        items = [{"id": r.id, "user": r.user.name, "case": r.case_ref, "purpose": r.purpose,
                  "offence": r.offence, "mode": r.mode, "results": r.result_count,
                  "status": r.status, "started_at": r.started_at, "ledger_seq": r.ledger_seq}
                 for r in rows]
    # Only supervisors' listings can span users (the service decides; this picks the toggle).
    can_all = caller.principal.role == Role.supervisor
    return render(request, "searches.html", caller, searches=items,
                  everyone=everyone and can_all, can_all=can_all)


@router.get("/searches/{search_id}")
def search_results(request: Request, core: Core, caller: Reader, search_id: int,
                   done: str = "") -> Response:
    return _results_page(request, core, caller, search_id, notice=NOTICES.get(done))


def _outcome_day(raw: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"the outcome date must be a date like 2024-05-31, not "
                              f"{raw[:20]!r}") from None
    if day > date.today():
        raise ValidationError("the outcome date cannot be in the future")
    return day


@router.post("/searches/{search_id}/outcome")
def record_outcome(request: Request, core: Core, caller: OutcomeWriter, search_id: int,
                   result: Annotated[str, Form()] = "", on: Annotated[str, Form()] = "",
                   note: Annotated[str, Form()] = "") -> Response:
    form = {"result": result, "on": on, "note": note}
    try:
        with core.db.read() as s:  # the caller must be allowed to read the search
            results.get_search(s, caller.principal, search_id)
        day = _outcome_day(on)
        with core.db.write() as s:
            outcomes.record_outcome(s, caller.principal, search_id, result, note.strip(), day)
    except NotFoundError:
        raise
    except FaceledgerError as exc:
        return _results_page(request, core, caller, search_id, status=exc.status,
                             error=exc.message, form=form)
    return RedirectResponse(f"/searches/{search_id}?done=outcome#outcome", status_code=303)


@router.post("/searches/{search_id}/authorisation")
def add_authorisation(request: Request, core: Core, caller: Reader, search_id: int,
                      reference: Annotated[str, Form()] = "") -> Response:
    try:
        if len(reference.strip()) > 200:
            raise ValidationError("the authorisation reference is too long (200 characters "
                                  "at most)")
        retention.add_authorisation(core, caller.principal, search_id, reference)
    except NotFoundError:
        raise
    except FaceledgerError as exc:
        return _results_page(request, core, caller, search_id, status=exc.status,
                             error=exc.message, form={"reference": reference})
    return RedirectResponse(f"/searches/{search_id}?done=authorised#authorisation",
                            status_code=303)


@router.get("/searches/{search_id}/candidates/{face_id}")
def compare(request: Request, core: Core, caller: Reader, search_id: int, face_id: int,
            reviewed: str = "", repeat: str = "") -> Response:
    with core.db.read() as s:
        detail = results.search_detail(s, caller.principal, search_id, core.settings)
        status = results.get_search(s, caller.principal, search_id).status
    results.note_view(core.db, caller.principal, detail)
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
def review(core: Core, caller: Reviewer, search_id: int, face_id: int,
           decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    with core.db.read() as s:  # the reviewer must be allowed to read the search
        results.get_search(s, caller.principal, search_id)
    with core.db.write() as s:
        state = results.review(s, caller.principal, search_id, face_id, decision, note.strip())
    said = "repeat" if state.repeat else "reviewed"  # a repeat records nothing
    return RedirectResponse(f"/searches/{search_id}/candidates/{face_id}?{said}={decision}",
                            status_code=303)
