"""Accountable search over HTTP: search -> policy -> match -> ledger -> results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from faceledger.api.deps import Caller, Core, need
from faceledger.errors import ImageTooLargeError, NoFaceError, ValidationError
from faceledger.probefaces import FACE_HELP, faces_json
from faceledger.results import list_searches, note_view, review, search_detail
from faceledger.review_queue import note_views, waiting
from faceledger.search import SearchRequest, run_search

router = APIRouter(tags=["search"])


async def read_capped(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"probe photo is over the {limit}-byte limit")
    return data


@router.post("/searches", responses={409: {"description": "several faces: choose one with "
                                               "`face` (1, 2, … left to right)"}})
async def create_search(
    core: Core, caller: Annotated[Caller, Depends(need("search"))],
    probe: Annotated[UploadFile, File(description="The probe photo.")],
    case: Annotated[str, Form(description="Case reference")] = "",
    purpose: Annotated[str, Form()] = "",
    offence: Annotated[str, Form()] = "",
    legal_basis: Annotated[str, Form()] = "",
    mode: Annotated[Literal["investigate", "identify"], Form()] = "investigate",
    top_k: Annotated[int, Form(ge=1, le=500)] = 20,
    face: Annotated[int | None, Form(ge=1, description=FACE_HELP)] = None,
    face_index: Annotated[int | None, Form(deprecated=True, description="Replaced by `face` "
                                           "(numbered from 1); refused.")] = None,
    collection: Annotated[list[str] | None, Form()] = None,
    authorisation_ref: Annotated[str | None, Form(max_length=200)] = None,
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
    result = await run_in_threadpool(run_search, core, caller.principal, data, req)
    return result.as_dict()


@router.post("/probe/faces")
async def detect_probe_faces(core: Core, _: Annotated[Caller, Depends(need("search"))],
                             probe: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Find the faces in a probe photo so the user can pick one. Compares nothing; not a search."""
    data = await read_capped(probe, core.settings.max_upload_bytes)
    pipe = core.pipeline()
    image = await run_in_threadpool(pipe.decode, data)
    detections = await run_in_threadpool(pipe.detect, image)
    if not detections:
        raise NoFaceError("no face found in the probe photo")
    from faceledger.decode import preview_data_uri

    # "preview": a PNG to show in place of a format browsers cannot show (Netpbm, TIFF)
    return {"width": image.width, "height": image.height,
            "faces": faces_json(detections), "preview": preview_data_uri(image)}


@router.get("/searches")
def get_searches(core: Core, caller: Annotated[Caller, Depends(need("searches.read"))],
                 everyone: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    with core.db.read() as s:
        rows = list_searches(s, caller.principal, min(max(limit, 1), 500), mine=not everyone)
        return [{"id": r.id, "user": r.user.name, "case": r.case_ref, "purpose": r.purpose,
                 "offence": r.offence, "mode": r.mode, "results": r.result_count,
                 "started_at": r.started_at.isoformat(), "ledger_seq": r.ledger_seq}
                for r in rows]


@router.get("/searches/{search_id}")
def get_search(search_id: int, core: Core,
               caller: Annotated[Caller, Depends(need("searches.read"))]) -> dict[str, Any]:
    with core.db.read() as s:
        detail = search_detail(s, caller.principal, search_id, core.settings)
    note_view(core.db, caller.principal, detail)
    return detail


@router.get("/searches/{search_id}/probe", response_class=Response)
def get_probe(search_id: int, core: Core,
              caller: Annotated[Caller, Depends(need("searches.read"))],
              web: bool = False) -> Response:
    """The probe photo as uploaded; ``web=true``: a PNG where browsers cannot show it."""
    from faceledger.decode import web_rendition
    from faceledger.results import get_search as fetch

    with core.db.read() as s:
        row = fetch(s, caller.principal, search_id)
        path = row.probe_path
    from faceledger.errors import NotFoundError

    if not path:
        raise NotFoundError("the probe photo was not kept (or was purged)")
    if web:
        data, media = web_rendition(core.files.read(path), max_pixels=core.settings.max_pixels)
        return Response(data, media_type=media)
    return Response(core.files.read(path), media_type=_media(path))


class ReviewIn(BaseModel):
    face_id: int
    decision: Literal["confirmed", "rejected"]
    note: str = Field(default="", max_length=2000)


@router.post("/searches/{search_id}/reviews", status_code=201)
def post_review(search_id: int, body: ReviewIn, core: Core,
                caller: Annotated[Caller, Depends(need("reviews.write"))]) -> dict[str, Any]:
    """Confirm or reject a candidate. It counts as confirmed once two different users confirm."""
    with core.db.write() as s:
        state = review(s, caller.principal, search_id, body.face_id, body.decision, body.note)
    # recorded: false when the verdict repeated the caller's own latest one (nothing ledgered).
    return {"search_id": search_id, "face_id": body.face_id, "status": state.status,
            "confirmed_by": state.confirmations, "rejected_by": state.rejections,
            "recorded": not state.repeat}


@router.get("/reviews/waiting")
def get_review_queue(core: Core, caller: Annotated[Caller, Depends(need("reviews.write"))]
                     ) -> list[dict[str, Any]]:
    """Candidates confirmed once and waiting for a second, different reviewer (supervisors:
    every search; investigators: their own). `yours`: the caller gave that confirmation."""
    with core.db.read() as s:
        items = waiting(s, caller.principal)
    note_views(core.db, caller.principal, items)
    return [{**asdict(w), "confirmed_at": w.confirmed_at.isoformat()} for w in items]


def _media(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "bmp": "image/bmp",
            "tif": "image/tiff", "webp": "image/webp",
            "pnm": "image/x-portable-anymap"}.get(ext, "application/octet-stream")
