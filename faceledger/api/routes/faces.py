"""Faces and images: metadata and files, served only to roles allowed to see faces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from faceledger.api.schemas_gallery import FaceOut, ImageOut
from faceledger.gallery import service as gallery_service
from faceledger.http.deps import Caller, Core, need
from faceledger.http.media import image_response

router = APIRouter(tags=["faces"])
Viewer = Annotated[Caller, Depends(need("faces.read"))]


@router.get("/faces/{face_id}", response_model=FaceOut)
def get_face(face_id: int, core: Core, caller: Viewer) -> dict[str, Any]:
    return gallery_service.face_detail(core, caller.principal, face_id)


@router.get("/faces/{face_id}/thumbnail", response_class=Response)
def get_thumbnail(face_id: int, core: Core, caller: Viewer) -> Response:
    thumb = gallery_service.face_thumbnail(core, caller.principal, face_id)
    return Response(thumb.data, media_type="image/jpeg")


@router.get("/images/{image_id}", response_model=ImageOut)
def get_image(image_id: int, core: Core, caller: Viewer) -> dict[str, Any]:
    return gallery_service.image_detail(core, caller.principal, image_id)


@router.get("/images/{image_id}/file", response_class=Response)
def get_image_file(image_id: int, core: Core, caller: Viewer, web: bool = False) -> Response:
    """The original file; with ``web=true``, a PNG rendition when browsers cannot show the
    original's format (TIFF, Netpbm)."""
    stored = gallery_service.image_file(core, caller.principal, image_id)
    return image_response(stored.data, stored.path, web=web, max_pixels=core.settings.max_pixels)
