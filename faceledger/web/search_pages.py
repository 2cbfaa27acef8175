"""The search form: pick a photo, pick a face, justify the search, run it.

Purposes and offences come from the policy in force. A purpose that needs an authorisation
reference shows that field (and the "urgent" alternative); the policy check in run_search is
what enforces it. A search that policy holds for approval goes to its page, which says so."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from faceledger.core import Faceledger
from faceledger.errors import (
    FaceChoiceRequired,
    FaceledgerError,
    PolicyRefusal,
    ValidationError,
)
from faceledger.http.deps import Caller, Core, need
from faceledger.http.uploads import read_form_file
from faceledger.search import service as search
from faceledger.search.service import SearchRequest
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Searcher = Annotated[Caller, Depends(need("search"))]
MODES = [("investigate", "Investigate — ranked candidates, no threshold"),
         ("identify", "Identify — only candidates above the calibrated threshold")]


def _form_page(request: Request, core: Faceledger, caller: Caller, values: dict[str, Any],
               error: FaceledgerError | None = None) -> Response:
    options = search.form_options(core, caller.principal)
    faces = error.details.get("faces", []) if isinstance(error, FaceChoiceRequired) else []
    message = error.message if error else None
    if faces:  # the service's message speaks of face numbers; say it the web way
        message = (f"the photo holds {len(faces)} faces and none was chosen (faces are "
                   "numbered 1, 2, … left to right).")
    rule = error.details.get("rule") if isinstance(error, PolicyRefusal) else None
    return render(request, "search.html", caller, status=error.status if error else 200,
                  values=values, error=message, rule=rule, faces=faces, modes=MODES, **options)


def _int_field(raw: str, label: str, default: int | None) -> int | None:
    raw = raw.strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"{label} must be a whole number, not {raw[:20]!r}") from None


def _read_probe(probe: UploadFile | None, limit: int) -> bytes:
    return read_form_file(probe, limit, "the probe photo",
                          "choose a probe photo (or drop one on the drop zone)")


@router.get("/search")
def search_form(request: Request, core: Core, caller: Searcher) -> Response:
    return _form_page(request, core, caller, {"top_k": 20, "mode": "investigate",
                                              "collections": [], "urgent": False})


@router.post("/search")
def search_submit(
    request: Request, core: Core, caller: Searcher,
    probe: Annotated[UploadFile | None, File()] = None,
    case: Annotated[str, Form()] = "",
    purpose: Annotated[str, Form()] = "",
    offence: Annotated[str, Form()] = "",
    legal_basis: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "investigate",
    top_k: Annotated[str, Form()] = "20",
    face: Annotated[str, Form()] = "",
    collection: Annotated[list[str] | None, Form()] = None,
    authorisation_ref: Annotated[str, Form()] = "",
    urgent: Annotated[str, Form()] = "",
) -> Response:
    chosen = [c for c in collection or [] if c]
    is_urgent = urgent.strip().lower() in ("1", "true", "on", "yes")
    values: dict[str, Any] = {"case": case, "purpose": purpose, "offence": offence,
                              "legal_basis": legal_basis, "mode": mode, "top_k": top_k,
                              "collections": chosen, "authorisation_ref": authorisation_ref,
                              "urgent": is_urgent}
    try:
        k = _int_field(top_k, "top-k", 20)
        number = _int_field(face, "the face number", None)
        data = _read_probe(probe, core.settings.max_upload_bytes)
        req = SearchRequest(case.strip(), purpose.strip(), offence.strip(), legal_basis.strip(),
                            mode, 20 if k is None else k, number, chosen or None,
                            authorisation_ref.strip() or None, is_urgent)
        result = search.run_search(core, caller.principal, data, req)
    except FaceledgerError as exc:
        return _form_page(request, core, caller, values, exc)
    # "pending": held for a supervisor; its page says so and shows no candidates.
    return RedirectResponse(f"/searches/{result.search_id}", status_code=303)
