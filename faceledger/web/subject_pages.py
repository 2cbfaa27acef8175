"""Subject rights, for admins: opt-out, erasure (find, then confirm) and subject access.

Each starts from a photo of the person. The erasure's confirmation carries the face ids found
(checkboxes), never the photo; thumbnails are embedded as data: URIs because admins may not
load the face API's thumbnails."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from faceledger.core import Faceledger
from faceledger.errors import (
    FaceChoiceRequired,
    FaceledgerError,
    NoFaceError,
    ValidationError,
)
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import parse_id
from faceledger.http.media import data_uri, media_type
from faceledger.http.uploads import read_form_file
from faceledger.oversight import subjects
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
SubjectAdmin = Annotated[Caller, Depends(need("subjects.manage"))]


def _data_uri(data: bytes, name: str) -> str:
    return data_uri(data, media_type(name, "image/jpeg"))


def _read_photo(photo: UploadFile | None, limit: int) -> bytes:
    return read_form_file(photo, limit, "the photo", "choose a photo of the person")


def _face_index(raw: str) -> int | None:
    """The face number typed or clicked: 1, 2, … left to right, as everywhere."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValidationError(f"the face number must be a whole number, not {raw[:20]!r}"
                              ) from None
    return n  # the service checks the range


def _reference(raw: str) -> str:
    """The form asks for a reference (the API and CLI let it be empty); the service checks
    its length."""
    if not raw.strip():
        raise ValidationError("give the request's reference (e.g. the subject's request number)")
    return raw


def _problem(exc: FaceledgerError, data: bytes | None, photo: UploadFile | None
             ) -> dict[str, Any]:
    """An error for one form; a photo with several faces comes back with them drawn on it."""
    problem: dict[str, Any] = {"message": exc.message, "faces": [], "photo": None}
    if isinstance(exc, FaceChoiceRequired):
        faces = exc.details.get("faces") or []
        problem["message"] = (f"the photo holds {len(faces)} faces and none was chosen: "
                              "choose the photo again and click the person's face.")
        problem["faces"] = faces
        if data and photo is not None and photo.filename:
            problem["photo"] = _data_uri(data, photo.filename)
    elif isinstance(exc, NoFaceError):
        problem["message"] = ("no face was found in the photo: use a clear, frontal photo of "
                              "the person.")
    return problem


def _page(request: Request, core: Faceledger, caller: Caller, *, status: int = 200,
          section: str = "", problem: dict[str, Any] | None = None,
          form: dict[str, Any] | None = None, notice: str | None = None,
          found: list[dict[str, Any]] | None = None,
          searches: list[dict[str, Any]] | None = None,
          optout_preview: dict[str, Any] | None = None) -> Response:
    proofs = None
    if searches:  # the answer with its proofs, downloadable as is (no server state kept)
        body = json.dumps(subjects.access_bundle(searches), indent=2, ensure_ascii=False)
        proofs = data_uri(body.encode("utf-8"), "application/json")
    return render(request, "subjects.html", caller, status=status, section=section,
                  problem=problem, form=form or {}, notice=notice, found=found,
                  searches=searches, optout_preview=optout_preview, proofs_uri=proofs,
                  max_mb=core.settings.max_upload_bytes // (1024 * 1024))


@router.get("/subjects")
def subjects_page(request: Request, core: Core, caller: SubjectAdmin, done: str = "",
                  images: int = 0, faces: int = 0) -> Response:
    notice = None
    section = ""
    if done == "optout":
        section = "optout"
        notice = ("The person was added to the opt-out list. Matching faces are withheld from "
                  "every search result and skipped at every future ingest.")
    elif done == "erased":
        section = "erase"
        notice = (f"Erased {images} image{'s' if images != 1 else ''} holding {faces} "
                  f"face{'s' if faces != 1 else ''}: files, thumbnails and index vectors. "
                  "The erasure is in the ledger.")
    return _page(request, core, caller, section=section, notice=notice)


@router.post("/subjects/faces")
def photo_faces(core: Core, caller: SubjectAdmin,
                photo: Annotated[UploadFile | None, File()] = None,
                probe: Annotated[UploadFile | None, File()] = None) -> dict[str, Any]:
    """The faces in the chosen photo, for the forms' face picker (as /api/v1/probe/faces is
    for the search page, which admins may not use). Detection only; nothing is kept. The
    picker may send the file as "photo" or "probe"."""
    return subjects.photo_faces(core, caller.principal,
                                _read_photo(photo or probe, core.settings.max_upload_bytes))


@router.post("/subjects/optout")
def optout(request: Request, core: Core, caller: SubjectAdmin,
           photo: Annotated[UploadFile | None, File()] = None,
           more_photos: Annotated[list[UploadFile] | None, File()] = None,
           reference: Annotated[str, Form()] = "", face: Annotated[str, Form()] = ""
           ) -> Response:
    """Step 1: the faces the opt-out will withhold, shown before anything is recorded. The
    first photo may hold several faces (click the person's); each further photo holds one."""
    form = {"reference": reference, "face": face}
    data: bytes | None = None
    try:
        ref = _reference(reference)
        idx = _face_index(face)
        data = _read_photo(photo, core.settings.max_upload_bytes)
        extra = [read_form_file(p, core.settings.max_upload_bytes, "a further photo", "")
                 for p in more_photos or [] if p.filename]
        pv = subjects.optout_preview(core, caller.principal, [data, *extra], ref,
                                     [idx] + [None] * len(extra))
    except FaceledgerError as exc:
        problem = _problem(exc, data, photo)
        if exc.details.get("photo_number", 1) > 1:  # a further photo: one face each
            problem = {"message": exc.message + ": each further photo must show the person "
                       "alone (crop it, or use it as the first photo)", "faces": [], "photo": None}
        return _page(request, core, caller, status=exc.status, section="optout",
                     problem=problem, form={"optout": form})
    preview = {"photos": pv.photos, "threshold": pv.threshold, "token": pv.token,
               "reference": ref.strip(), "faces": _found(core, pv.faces)}
    return _page(request, core, caller, section="optout", optout_preview=preview,
                 form={"optout": form})


@router.post("/subjects/optout/confirm")
def optout_confirm(request: Request, core: Core, caller: SubjectAdmin,
                   token: Annotated[str, Form()] = "") -> Response:
    """Step 2: record the previewed opt-out (its templates travel sealed in ``token``)."""
    try:
        subjects.optout_confirm(core, caller.principal, token)
    except FaceledgerError as exc:
        return _page(request, core, caller, status=exc.status, section="optout",
                     problem=_problem(exc, None, None))
    return RedirectResponse("/subjects?done=optout#optout", status_code=303)


def _found(core: Faceledger, hits: list[subjects.FoundFace]) -> list[dict[str, Any]]:
    found = []
    for h in hits:
        try:
            thumb: str | None = _data_uri(core.files.read(h.thumbnail_path), h.thumbnail_path)
        except FaceledgerError:
            thumb = None
        found.append({"face_id": h.face_id, "image_id": h.image_id, "collection": h.collection,
                      "similarity": h.similarity, "thumb": thumb,
                      "source_url": h.source_url, "original_path": h.original_path})
    return found


@router.post("/subjects/erase/find")
def erase_find(request: Request, core: Core, caller: SubjectAdmin,
               photo: Annotated[UploadFile | None, File()] = None,
               reference: Annotated[str, Form()] = "", face: Annotated[str, Form()] = ""
               ) -> Response:
    form = {"reference": reference, "face": face}
    data: bytes | None = None
    try:
        ref = _reference(reference)
        idx = _face_index(face)
        data = _read_photo(photo, core.settings.max_upload_bytes)
        hits = subjects.erase_preview(core, caller.principal, data, idx, reference=ref)
    except FaceledgerError as exc:
        return _page(request, core, caller, status=exc.status, section="erase",
                     problem=_problem(exc, data, photo), form={"erase": form})
    return _page(request, core, caller, section="erase", found=_found(core, hits),
                 form={"erase": {**form, "reference": ref.strip()}})


@router.post("/subjects/erase")
def erase(request: Request, core: Core, caller: SubjectAdmin,
          reference: Annotated[str, Form()] = "",
          face_id: Annotated[list[str] | None, Form()] = None) -> Response:
    try:
        ref = _reference(reference)
        ids: list[int] = []
        for raw in face_id or []:
            ids.append(parse_id(raw, "a face id"))
        # An empty choice: the service refuses it, saying so.
        done = subjects.erase(core, caller.principal, sorted(set(ids)), ref)
    except FaceledgerError as exc:
        return _page(request, core, caller, status=exc.status, section="erase",
                     problem=_problem(exc, None, None), form={"erase": {"reference": reference}})
    return RedirectResponse(f"/subjects?done=erased&images={done['images']}"
                            f"&faces={done['faces']}#erase", status_code=303)


@router.post("/subjects/access")
def access(request: Request, core: Core, caller: SubjectAdmin,
           photo: Annotated[UploadFile | None, File()] = None,
           face: Annotated[str, Form()] = "") -> Response:
    form = {"face": face}
    data: bytes | None = None
    try:
        idx = _face_index(face)
        data = _read_photo(photo, core.settings.max_upload_bytes)
        rows = subjects.access(core, caller.principal, data, idx)
    except FaceledgerError as exc:
        return _page(request, core, caller, status=exc.status, section="access",
                     problem=_problem(exc, data, photo), form={"access": form})
    return _page(request, core, caller, section="access", searches=rows,
                 form={"access": form})
