"""Approvals, outcomes and authorisation references (subject rights, retention and the policy
are in their own modules: subjects.py, retention.py, policy.py)."""

from __future__ import annotations

from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger.api.schemas_search import AuthorisationOut, DecisionOut, OutcomeOut, PendingOut
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.oversight import retention
from faceledger.search import approval, outcomes

router = APIRouter(tags=["oversight"])


class Decision(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


class OutcomeIn(BaseModel):
    result: str = Field(description=" | ".join(outcomes.RESULTS))
    note: str = Field(default="", max_length=2000)
    date: Date | None = None


class AuthorisationIn(BaseModel):
    ref: str = Field(min_length=1, max_length=200)


@router.get("/approvals", response_model=list[PendingOut])
def list_pending(core: Core, caller: Annotated[Caller, Depends(need("searches.approve"))]
                 ) -> list[dict[str, Any]]:
    return [{"search_id": r.id, "user": r.user, "case": r.case_ref, "purpose": r.purpose,
             "offence": r.offence, "mode": r.mode, "rules": r.approval_rules,
             "requested_at": r.started_at.isoformat()}
            for r in approval.pending(core, caller.principal)]


@router.post("/approvals/{search_id}", response_model=DecisionOut)
def decide(search_id: Id, body: Decision, core: Core,
           caller: Annotated[Caller, Depends(need("searches.approve"))]) -> dict[str, Any]:
    """Approve (the search runs; its requester sees the results) or refuse, with a reason."""
    result = approval.decide(core, caller.principal, search_id, body.approve, body.reason)
    return {"search_id": search_id, "status": "done" if result else "refused",
            "candidates": len(result.candidates) if result else 0}


@router.post("/searches/{search_id}/outcome", status_code=201, response_model=OutcomeOut)
def post_outcome(search_id: Id, body: OutcomeIn, core: Core,
                 caller: Annotated[Caller, Depends(need("outcomes.write"))]) -> dict[str, Any]:
    row = outcomes.record_outcome(core, caller.principal, search_id, body.result, body.note,
                                  body.date)
    return {"search_id": search_id, "result": row.result, "date": row.date.isoformat(),
            "ledger_seq": row.ledger_seq}


@router.post("/searches/{search_id}/authorisation", response_model=AuthorisationOut)
def post_authorisation(search_id: Id, body: AuthorisationIn, core: Core,
                       caller: Annotated[Caller, Depends(need("searches.read"))]
                       ) -> dict[str, Any]:
    retention.add_authorisation(core, caller.principal, search_id, body.ref)
    return {"search_id": search_id, "authorisation_ref": body.ref}
