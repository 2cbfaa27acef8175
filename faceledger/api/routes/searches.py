"""Accountable search over HTTP: search -> policy -> match -> ledger -> results. Each route
parses its input and calls one service; the services own the rules, permissions and
transactions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from faceledger.api.schemas_search import (
    ProbeFacesOut,
    ReviewOut,
    SearchDetailOut,
    SearchListItem,
    SearchReceiptOut,
    SearchResultOut,
    WaitingOut,
)
from faceledger.errors import ValidationError
from faceledger.faces.probefaces import FACE_HELP
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.media import image_response
from faceledger.http.uploads import read_capped
from faceledger.search import face_access, receipts, results, review_queue
from faceledger.search import service as search
from faceledger.search.service import SearchRequest

router = APIRouter(tags=["search"])
Reader = Annotated[Caller, Depends(need("searches.read"))]
Reviewer = Annotated[Caller, Depends(need("reviews.write"))]
Searcher = Annotated[Caller, Depends(need("search"))]


@router.post("/searches", response_model=SearchResultOut,
             responses={409: {"description": "several faces: choose one with `face` (1, 2, … "
                                             "left to right)"}})
async def create_search(
    core: Core, caller: Searcher,
    probe: Annotated[UploadFile, File(description="The probe photo.")],
    case: Annotated[str, Form(description="Case reference")] = "",
    purpose: Annotated[str, Form()] = "",
    offence: Annotated[str, Form()] = "",
    legal_basis: Annotated[str, Form()] = "",
    mode: Annotated[Literal["investigate", "identify"], Form()] = "investigate",
    top_k: Annotated[int, Form(description="Candidates to return, 1-500")] = 20,
    face: Annotated[int | None, Form(description=FACE_HELP)] = None,
    face_index: Annotated[int | None, Form(deprecated=True, description="Replaced by `face` "
                                           "(numbered from 1); refused.")] = None,
    collection: Annotated[list[str] | None, Form()] = None,
    authorisation_ref: Annotated[str | None, Form(description="At most 200 characters")] = None,
    urgent: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Search the gallery. Refused (and ledgered) without case, purpose, offence, legal basis.
    A probe with several faces and no `face` answers 409 with the faces to choose from
    (numbered 1, 2, … left to right). Candidates carry their calibrated `band`."""
    if face_index is not None:
        raise ValidationError("`face_index` (numbered from 0) was replaced by `face`: faces are "
                              "numbered 1, 2, … left to right (search JSON schema_version 2)")
    data = await read_capped(probe, core.settings.max_upload_bytes)
    req = SearchRequest(case, purpose, offence, legal_basis, mode, top_k, face,
                        [c for c in collection or [] if c] or None, authorisation_ref or None,
                        urgent)
    result = await run_in_threadpool(search.run_search, core, caller.principal, data, req)
    return result.as_dict()


@router.post("/probe/faces", response_model=ProbeFacesOut)
async def detect_probe_faces(core: Core, caller: Searcher, probe: Annotated[UploadFile, File()]
                             ) -> dict[str, Any]:
    """Find the faces in a probe photo so the user can pick one. Compares nothing; not a search.
    `preview`: a PNG to show in place of a format browsers cannot show (Netpbm, TIFF)."""
    data = await read_capped(probe, core.settings.max_upload_bytes)
    return await run_in_threadpool(search.detect_faces, core, caller.principal, data)


@router.get("/searches", response_model=list[SearchListItem])
def get_searches(core: Core, caller: Reader, everyone: bool = False, limit: int = 50
                 ) -> list[dict[str, Any]]:
    return [asdict(r) for r in results.list_searches(core, caller.principal, limit,
                                                     mine=not everyone)]


@router.get("/searches/{search_id}", response_model=SearchDetailOut,
            response_model_exclude_unset=True)
def get_search(search_id: Id, core: Core, caller: Reader) -> dict[str, Any]:
    """A search as stored; opening someone else's is ledgered. An erased candidate keeps only
    its rank, face id, score, band marks and review."""
    return results.search_detail(core, caller.principal, search_id)


@router.get("/searches/{search_id}/receipt", response_model=SearchReceiptOut)
def get_receipt(search_id: Id, core: Core, caller: Reader) -> dict[str, Any]:
    """The search's ledger receipt, rebuilt now: once a signed checkpoint covers its entry, the
    receipt carries that checkpoint and a proof against its size (before: `checkpoint_due`).
    Who may read the search may read its receipt; opening someone else's is ledgered. Check it
    with `faceledger ledger check-receipt FILE --key VKEY`."""
    return receipts.search_receipt(core, caller.principal, search_id)


@router.get("/searches/{search_id}/probe", response_class=Response)
def get_probe(search_id: Id, core: Core, caller: Reader, web: bool = False) -> Response:
    """The probe photo as uploaded; ``web=true``: a PNG where browsers cannot show it. Its
    searcher, a reviewer of the done search, or a supervisor deciding on a held one; every
    opening is ledgered (one ``faces.opened`` entry per user and search in a window)."""
    stored = face_access.probe_photo(core, caller.principal, search_id)
    return image_response(stored.data, stored.path, web=web,
                          max_pixels=core.settings.max_pixels)


class ReviewIn(BaseModel):
    face_id: Id
    decision: Literal["confirmed", "rejected"]
    note: str = Field(default="", max_length=2000)


@router.post("/searches/{search_id}/reviews", status_code=201, response_model=ReviewOut)
def post_review(search_id: Id, body: ReviewIn, core: Core, caller: Reviewer
                ) -> dict[str, Any]:
    """Confirm or reject a candidate. It counts as confirmed once two different users confirm.
    `recorded`: false when the verdict repeated the caller's own latest one (nothing ledgered)."""
    state = results.review(core, caller.principal, search_id, body.face_id, body.decision,
                           body.note)
    return {"search_id": search_id, "face_id": body.face_id, "status": state.status,
            "confirmed_by": state.confirmations, "rejected_by": state.rejections,
            "recorded": not state.repeat}


@router.get("/reviews/waiting", response_model=list[WaitingOut])
def get_review_queue(core: Core, caller: Reviewer) -> list[dict[str, Any]]:
    """Candidates confirmed once and waiting for a second, different reviewer (supervisors:
    every search; investigators: their own). `yours`: the caller gave that confirmation."""
    return [{**asdict(w), "confirmed_at": w.confirmed_at.isoformat()}
            for w in review_queue.waiting(core, caller.principal)]
