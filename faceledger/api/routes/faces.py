"""Faces and images: metadata and files, served only to roles allowed to see faces, and only
within a search that returned them (``?search=ID``); every opening is ledgered (batched: one
``faces.opened`` entry per user and search in a window; see search/face_access.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from faceledger.api.schemas_gallery import FaceOut, ImageOut
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.media import image_response
from faceledger.search import face_access

router = APIRouter(tags=["faces"])
Viewer = Annotated[Caller, Depends(need("faces.read"))]
Within = Annotated[Id | None, Query(
    alias="search", description="The search that returned this face (required): faces are "
    "served only within a search the caller may read, and the opening is ledgered")]


@router.get("/faces/{face_id}", response_model=FaceOut)
def get_face(face_id: Id, core: Core, caller: Viewer, search: Within = None) -> dict[str, Any]:
    """A candidate face of the search, with its image and sources (ledgered)."""
    return face_access.face_detail(core, caller.principal, face_id, search)


@router.get("/faces/{face_id}/thumbnail", response_class=Response)
def get_thumbnail(face_id: Id, core: Core, caller: Viewer, search: Within = None) -> Response:
    """A candidate's thumbnail (JPEG), within the search that returned it (ledgered)."""
    thumb = face_access.face_thumbnail(core, caller.principal, face_id, search)
    return Response(thumb.data, media_type="image/jpeg")


@router.get("/images/{image_id}", response_model=ImageOut)
def get_image(image_id: Id, core: Core, caller: Viewer, search: Within = None
              ) -> dict[str, Any]:
    """An image holding a candidate of the search, with its sources (ledgered)."""
    return face_access.image_detail(core, caller.principal, image_id, search)


@router.get("/images/{image_id}/file", response_class=Response)
def get_image_file(image_id: Id, core: Core, caller: Viewer, search: Within = None,
                   web: bool = False) -> Response:
    """The original file of an image holding a candidate of the search (ledgered); with
    ``web=true``, a PNG rendition when browsers cannot show the original's format (TIFF,
    Netpbm)."""
    stored = face_access.image_file(core, caller.principal, image_id, search)
    return image_response(stored.data, stored.path, web=web, max_pixels=core.settings.max_pixels)
