"""Approvals, outcomes, authorisation references, subject rights, retention, policy."""

from __future__ import annotations

import base64
from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from faceledger import approval, outcomes, retention, subjects
from faceledger.api.deps import Caller, Core, need
from faceledger.api.routes.searches import read_capped
from faceledger.policy import describe
from faceledger.probefaces import FACE_HELP

FaceField = Annotated[int | None, Form(ge=1, description=FACE_HELP)]

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


class EraseIn(BaseModel):
    face_ids: list[int] = Field(max_length=10_000)  # none: the service refuses, saying why
    reference: str = Field(default="", max_length=200)


@router.get("/approvals")
def list_pending(core: Core, caller: Annotated[Caller, Depends(need("searches.approve"))]
                 ) -> list[dict[str, Any]]:
    return [{"search_id": r.id, "user": r.user.name, "case": r.case_ref, "purpose": r.purpose,
             "offence": r.offence, "mode": r.mode, "rules": r.approval_rules,
             "requested_at": r.started_at.isoformat()}
            for r in approval.pending(core, caller.principal)]


@router.post("/approvals/{search_id}")
def decide(search_id: int, body: Decision, core: Core,
           caller: Annotated[Caller, Depends(need("searches.approve"))]) -> dict[str, Any]:
    """Approve (the search runs; its requester sees the results) or refuse, with a reason."""
    result = approval.decide(core, caller.principal, search_id, body.approve, body.reason)
    return {"search_id": search_id, "status": "done" if result else "refused",
            "candidates": len(result.candidates) if result else 0}


@router.post("/searches/{search_id}/outcome", status_code=201)
def post_outcome(search_id: int, body: OutcomeIn, core: Core,
                 caller: Annotated[Caller, Depends(need("outcomes.write"))]) -> dict[str, Any]:
    with core.db.write() as s:
        row = outcomes.record_outcome(s, caller.principal, search_id, body.result, body.note,
                                      body.date)
        return {"search_id": search_id, "result": row.result,
                "date": row.outcome_date.date().isoformat(), "ledger_seq": row.ledger_seq}


@router.post("/searches/{search_id}/authorisation")
def post_authorisation(search_id: int, body: AuthorisationIn, core: Core,
                       caller: Annotated[Caller, Depends(need("searches.read"))]
                       ) -> dict[str, Any]:
    retention.add_authorisation(core, caller.principal, search_id, body.ref)
    return {"search_id": search_id, "authorisation_ref": body.ref}


async def _photo(core: Core, photo: UploadFile) -> bytes:
    return await read_capped(photo, core.settings.max_upload_bytes)


@router.post("/subjects/optout", status_code=201)
async def optout(core: Core, caller: Annotated[Caller, Depends(need("subjects.manage"))],
                 photo: Annotated[UploadFile, File()],
                 reference: Annotated[str, Form(max_length=200)] = "",
                 face: FaceField = None) -> dict[str, Any]:
    """Block a person's face from every result and future ingest."""
    data = await _photo(core, photo)
    oid = await run_in_threadpool(subjects.optout, core, caller.principal, data, reference,
                                  face)
    return {"optout_id": oid}


@router.post("/subjects/erase/preview")
async def erase_preview(core: Core, caller: Annotated[Caller, Depends(need("subjects.manage"))],
                        photo: Annotated[UploadFile, File()],
                        face: FaceField = None) -> dict[str, Any]:
    """The faces an erasure would remove, with thumbnails, for the operator to confirm."""
    data = await _photo(core, photo)
    query = await run_in_threadpool(subjects.subject_embedding, core, data, face)
    found = subjects.find_faces(core, query)
    return {"faces": [{"face_id": f.face_id, "image_id": f.image_id, "collection": f.collection,
                       "similarity": f.similarity,
                       "thumbnail": "data:image/jpeg;base64," + base64.b64encode(
                           core.files.read(f.thumbnail_path)).decode()} for f in found]}


@router.post("/subjects/erase")
def erase(body: EraseIn, core: Core, caller: Annotated[Caller, Depends(need("subjects.manage"))]
          ) -> dict[str, Any]:
    """Delete the images holding the confirmed faces (rows, files, thumbnails, vectors)."""
    return subjects.erase(core, caller.principal, body.face_ids, body.reference)


@router.post("/subjects/access")
async def access(core: Core, caller: Annotated[Caller, Depends(need("subjects.manage"))],
                 photo: Annotated[UploadFile, File()],
                 face: FaceField = None) -> list[dict[str, Any]]:
    """Who searched for this face? (date, purpose, unit, outcome)."""
    data = await _photo(core, photo)
    return await run_in_threadpool(subjects.access, core, caller.principal, data, face)


@router.post("/retention/run")
def run_retention(core: Core, caller: Annotated[Caller, Depends(need("retention.run"))]
                  ) -> dict[str, list[int]]:
    return retention.run_retention(core, caller.principal.name)


@router.get("/policy")
def get_policy(core: Core, _: Annotated[Caller, Depends(need("collections.read"))]
               ) -> dict[str, Any]:
    return describe(core.policy())
