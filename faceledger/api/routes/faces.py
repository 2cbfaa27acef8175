"""Faces and images: metadata and files, served only to roles allowed to see faces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from faceledger.api.deps import Caller, Core, need
from faceledger.api.routes.searches import _media
from faceledger.db.schema import Face, Image
from faceledger.decode import web_rendition
from faceledger.errors import NotFoundError
from faceledger.gallery import faces_with_provenance

router = APIRouter(tags=["faces"])
Viewer = Annotated[Caller, Depends(need("faces.read"))]


def _image_dict(img: Image) -> dict[str, Any]:
    return {"id": img.id, "sha256": img.sha256, "collection": img.collection.name,
            "width": img.width, "height": img.height, "bytes": img.bytes, "format": img.format,
            "ingested_at": img.ingested_at.isoformat(),
            "sources": [{"source_url": s.source_url, "page_url": s.page_url, "title": s.title,
                         "captured_at": s.captured_at.isoformat() if s.captured_at else None,
                         "original_path": s.original_path} for s in img.sources],
            "faces": [f.id for f in img.faces]}


@router.get("/faces/{face_id}")
def get_face(face_id: int, core: Core, _: Viewer) -> dict[str, Any]:
    with core.db.read() as s:
        face = faces_with_provenance(s, [face_id]).get(face_id)
        if face is None:
            raise NotFoundError(f"no face {face_id}")
        return {"id": face.id, "image_id": face.image_id, "face_index": face.face_index,
                "box": face.box, "landmarks": face.landmarks, "quality": face.quality,
                "model_id": face.model_id, "image": _image_dict(face.image)}


@router.get("/faces/{face_id}/thumbnail", response_class=Response)
def get_thumbnail(face_id: int, core: Core, _: Viewer) -> Response:
    with core.db.read() as s:
        face = s.get(Face, face_id)
        if face is None:
            raise NotFoundError(f"no face {face_id}")
        path = face.thumbnail_path
    return Response(core.files.read(path), media_type="image/jpeg")


@router.get("/images/{image_id}")
def get_image(image_id: int, core: Core, _: Viewer) -> dict[str, Any]:
    with core.db.read() as s:
        img = s.get(Image, image_id)
        if img is None:
            raise NotFoundError(f"no image {image_id}")
        return _image_dict(img)


@router.get("/images/{image_id}/file", response_class=Response)
def get_image_file(image_id: int, core: Core, _: Viewer, web: bool = False) -> Response:
    """The original file; with ``web=true``, a PNG rendition when browsers cannot show the
    original's format (TIFF, Netpbm)."""
    with core.db.read() as s:
        img = s.get(Image, image_id)
        if img is None:
            raise NotFoundError(f"no image {image_id}")
        path = img.stored_path
    if web:
        data, media = web_rendition(core.files.read(path), max_pixels=core.settings.max_pixels)
        return Response(data, media_type=media)
    return Response(core.files.read(path), media_type=_media(path))
