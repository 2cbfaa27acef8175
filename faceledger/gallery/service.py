"""Gallery read services: a face or an image with its provenance, and their stored files.

Each takes the application context and the acting principal first, checks "faces.read", opens
one read transaction and returns plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faceledger.db.schema import Face, Image
from faceledger.errors import NotFoundError
from faceledger.gallery.repository import faces_with_provenance
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


@dataclass(frozen=True)
class StoredFile:
    """A stored file's bytes and its path in the data home (its extension names its type)."""

    data: bytes
    path: str


def _image_dict(img: Image) -> dict[str, Any]:
    return {"id": img.id, "sha256": img.sha256, "collection": img.collection.name,
            "width": img.width, "height": img.height, "bytes": img.bytes, "format": img.format,
            "ingested_at": img.ingested_at.isoformat(),
            "sources": [{"source_url": s.source_url, "page_url": s.page_url, "title": s.title,
                         "captured_at": s.captured_at.isoformat() if s.captured_at else None,
                         "original_path": s.original_path} for s in img.sources],
            "faces": [f.id for f in img.faces]}


def face_detail(app: Faceledger, principal: Principal, face_id: int) -> dict[str, Any]:
    """A face (box, landmarks, quality, model) with its image and the image's sources."""
    require(principal.role, "faces.read", principal.name)
    with app.db.read() as s:
        face = faces_with_provenance(s, [face_id]).get(face_id)
        if face is None:
            raise NotFoundError(f"no face {face_id}")
        return {"id": face.id, "image_id": face.image_id, "face_index": face.face_index,
                "box": face.box, "landmarks": face.landmarks, "quality": face.quality,
                "model_id": face.model_id, "image": _image_dict(face.image)}


def image_detail(app: Faceledger, principal: Principal, image_id: int) -> dict[str, Any]:
    require(principal.role, "faces.read", principal.name)
    with app.db.read() as s:
        img = s.get(Image, image_id)
        if img is None:
            raise NotFoundError(f"no image {image_id}")
        return _image_dict(img)


def face_thumbnail(app: Faceledger, principal: Principal, face_id: int) -> StoredFile:
    """The face's thumbnail (JPEG)."""
    require(principal.role, "faces.read", principal.name)
    with app.db.read() as s:
        face = s.get(Face, face_id)
        if face is None:
            raise NotFoundError(f"no face {face_id}")
        path = face.thumbnail_path
    return StoredFile(app.files.read(path), path)


def image_file(app: Faceledger, principal: Principal, image_id: int) -> StoredFile:
    """The image's original file, as stored."""
    require(principal.role, "faces.read", principal.name)
    with app.db.read() as s:
        img = s.get(Image, image_id)
        if img is None:
            raise NotFoundError(f"no image {image_id}")
        path = img.stored_path
    return StoredFile(app.files.read(path), path)
