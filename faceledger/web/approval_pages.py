"""Supervisors' approvals: searches that policy holds, and the approve / refuse decision.

Approving runs the search as its requester (approval.decide); refusing closes it for good.
Either way the reason is required and ledgered."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, ValidationError
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.search import approval
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Approver = Annotated[Caller, Depends(need("searches.approve"))]
DECISIONS = {"approve": True, "refuse": False}


def _page(request: Request, core: Faceledger, caller: Caller, *, status: int = 200,
          error: str | None = None, decided: int | None = None,
          form: dict[str, Any] | None = None) -> Response:
    page = approval.approvals_page(core, caller.principal, decided)
    items = [{"id": r.id, "user": r.user, "case": r.case_ref, "purpose": r.purpose,
              "offence": r.offence, "legal_basis": r.legal_basis, "mode": r.mode,
              "top_k": r.top_k, "rules": r.approval_rules, "started_at": r.started_at,
              "authorisation_ref": r.authorisation_ref, "urgent": r.urgent,
              "probe_box": r.probe_box, "own": r.user_id == caller.principal.user_id}
             for r in page.pending]
    return render(request, "approvals.html", caller, status=status, pending=items, error=error,
                  decided=asdict(page.decided) if page.decided else None, form=form or {})


@router.get("/approvals")
def approvals(request: Request, core: Core, caller: Approver, decided: Id | None = None
              ) -> Response:
    return _page(request, core, caller, decided=decided)


@router.post("/approvals/{search_id}")
def decide(request: Request, core: Core, caller: Approver, search_id: Id,
           decision: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = ""
           ) -> Response:
    form = {"id": search_id, "decision": decision, "reason": reason}
    try:
        if decision not in DECISIONS:
            raise ValidationError("choose approve or refuse")
        approval.decide(core, caller.principal, search_id, DECISIONS[decision], reason.strip())
    except FaceledgerError as exc:
        return _page(request, core, caller, status=exc.status, error=exc.message, form=form)
    return RedirectResponse(f"/approvals?decided={search_id}", status_code=303)
