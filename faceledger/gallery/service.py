"""Gallery reads for the face-opening services: a face or an image with its provenance, and the
paths of their stored files. Each takes the caller's session; the purpose check, the permission
and the ledger entry belong to ``faceledger.search.face_access`` (a face is opened only within a
search that returned it), which is the only caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from faceledger.db.schema import Face, Image
from faceledger.errors import NotFoundError


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


def face_record(s: Session, face_id: int) -> dict[str, Any]:
    """A face (box, landmarks, quality, model) with its image and the image's sources."""
    face = s.get(Face, face_id)
    if face is None:
        raise NotFoundError(f"no face {face_id}")
    return {"id": face.id, "image_id": face.image_id, "face_index": face.face_index,
            "box": face.box, "landmarks": face.landmarks, "quality": face.quality,
            "model_id": face.model_id, "image": _image_dict(face.image)}


def image_record(s: Session, image_id: int) -> dict[str, Any]:
    img = s.get(Image, image_id)
    if img is None:
        raise NotFoundError(f"no image {image_id}")
    return _image_dict(img)


def thumbnail_path(s: Session, face_id: int) -> str:
    """Where the face's thumbnail (JPEG) is stored."""
    face = s.get(Face, face_id)
    if face is None:
        raise NotFoundError(f"no face {face_id}")
    return face.thumbnail_path


def image_path(s: Session, image_id: int) -> str:
    """Where the image's original file is stored."""
    img = s.get(Image, image_id)
    if img is None:
        raise NotFoundError(f"no image {image_id}")
    return img.stored_path


def faces_of_image(s: Session, image_id: int) -> list[int]:
    img = s.get(Image, image_id)
    if img is None:
        raise NotFoundError(f"no image {image_id}")
    return [f.id for f in img.faces]
