"""Gallery repository: images, their provenance and faces, as the services need them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import Collection, Face, Image, ImageSource, IngestJob, Rejection
from faceledger.gallery.sources import Provenance, SourceItem
from faceledger.governance import ledger

if TYPE_CHECKING:
    from faceledger.core import Faceledger
    from faceledger.faces.pipeline import ImageResult


@dataclass(frozen=True)
class PendingImage:
    display: str
    sha256: str
    data: bytes
    result: ImageResult
    provenance: Provenance


def source_key(prov: Provenance, display: str) -> str:
    basis = f"url:{prov.source_url}" if prov.source_url else f"path:{display}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def find_image(session: Session, collection_id: int, sha256: str) -> Image | None:
    return session.execute(
        select(Image).where(Image.collection_id == collection_id, Image.sha256 == sha256)
    ).scalar_one_or_none()


def _source(image_id: int, display: str, prov: Provenance) -> ImageSource:
    return ImageSource(image_id=image_id, source_key=source_key(prov, display),
                       original_path=display, source_url=prov.source_url,
                       page_url=prov.page_url, title=prov.title,
                       captured_at=prov.captured_at, added_at=datetime.now(UTC))


Duplicate = tuple[SourceItem, str, Provenance]  # (file, sha256, provenance)
IndexAdd = tuple[str, np.ndarray, np.ndarray, int]  # (model_id, face ids, vectors, version)


@dataclass(frozen=True)
class JobTotals:
    """An ingest job's running totals before a batch (written to its row with the batch's)."""

    processed: int = 0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    faces: int = 0


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch did, for the ingest service to add to its summary."""

    added: tuple[tuple[str, int], ...] = ()  # (path shown, faces found) per image added
    duplicates: int = 0  # duplicates resolved, and images a peer had committed meanwhile
    new_sources: int = 0
    rejected: int = 0
    pending: tuple[Duplicate, ...] = ()  # duplicates whose original is not committed yet
    index_adds: tuple[IndexAdd, ...] = ()  # to add to the vector index after the commit

    @property
    def faces(self) -> int:
        return sum(n for _, n in self.added)


def write_files(app: Faceledger, images: Sequence[PendingImage]) -> None:
    """Images and thumbnails to disk (synced) before the rows that point at them."""
    for img in images:
        app.files.put(app.files.image_relpath(img.sha256, img.result.format), img.data,
                      durable=False)
        for i, result in enumerate(img.result.faces):
            app.files.put(app.files.thumb_relpath(img.sha256, i), result.thumbnail,
                          durable=False)
    if images:
        app.files.sync()


def write_batch(
    app: Faceledger, job_id: int, collection_id: int, actor: str,
    images: Sequence[PendingImage], dupes: Sequence[Duplicate], rejects: Sequence[Rejection],
    before: JobTotals,
) -> BatchResult:
    """Write files, then commit rows + one ledger entry in one transaction; the job's row gets
    ``before`` plus this batch. Returns the batch's counts (nothing passed in is changed);
    duplicates whose original is not committed yet come back as ``pending``."""
    write_files(app, images)
    with app.db.write() as s:
        added, new_faces = _insert_images(app, s, job_id, collection_id, images)
        shown = [(img.display, len(img.result.faces)) for img in added]
        peer_dupes = len(images) - len(added)
        version = bump_faces_version(s, collection_id) if new_faces else 0
        pending, resolved, new_sources = _add_sources(s, collection_id, dupes)
        for r in rejects:
            s.add(r)
        result = BatchResult(added=tuple(shown), duplicates=peer_dupes + resolved,
                             new_sources=new_sources, rejected=len(rejects),
                             pending=tuple(pending))
        job = s.get(IngestJob, job_id)
        assert job is not None
        job.processed = before.processed
        job.added, job.duplicates = before.added + len(shown), before.duplicates + result.duplicates
        job.rejected, job.faces = before.rejected + len(rejects), before.faces + result.faces
        ledger.append(s, "ingest.batch", {
            "job": job_id, "collection_id": collection_id,
            "images": [{"sha256": img.sha256, "faces": len(img.result.faces)} for img in added],
            "faces": result.faces, "duplicates": resolved, "new_sources": new_sources,
            "rejected": [{"path": r.path, "code": r.code} for r in rejects],
        }, actor=actor)
    return replace(result, index_adds=tuple(_index_adds(new_faces, version)))


def _insert_images(app: Faceledger, s: Session, job_id: int, collection_id: int,
                   images: Sequence[PendingImage]) -> tuple[list[PendingImage], list[Face]]:
    """Rows for the images a peer has not committed meanwhile: (those added, their faces)."""
    added: list[PendingImage] = []
    new_faces: list[Face] = []
    for img in images:
        if find_image(s, collection_id, img.sha256) is not None:  # committed by a peer
            continue
        row = Image(collection_id=collection_id, sha256=img.sha256,
                    stored_path=app.files.image_relpath(img.sha256, img.result.format),
                    width=img.result.width, height=img.result.height,
                    bytes=len(img.data), format=img.result.format,
                    ingested_at=datetime.now(UTC), job_id=job_id)
        s.add(row)
        s.flush()
        s.add(_source(row.id, img.display, img.provenance))
        for i, fr in enumerate(img.result.faces):
            face = Face(image_id=row.id, collection_id=collection_id, face_index=i,
                        box=fr.box.as_list(), landmarks=[list(p) for p in fr.landmarks],
                        quality=fr.quality.as_dict(), model_id=fr.embedding.model_id,
                        embedding=fr.embedding.to_bytes(),
                        thumbnail_path=app.files.thumb_relpath(img.sha256, i))
            s.add(face)
            new_faces.append(face)
        added.append(img)
    s.flush()
    return added, new_faces


def _add_sources(s: Session, collection_id: int, dupes: Sequence[Duplicate]
                 ) -> tuple[list[Duplicate], int, int]:
    """New sources for duplicates of committed images: (pending, resolved, new sources)."""
    pending: list[Duplicate] = []
    new_sources = 0
    for item, sha, prov in dupes:
        row = find_image(s, collection_id, sha)
        if row is None:
            pending.append((item, sha, prov))
            continue
        key = source_key(prov, item.display)
        if not any(src.source_key == key for src in row.sources):
            s.add(_source(row.id, item.display, prov))
            new_sources += 1
    return pending, len(dupes) - len(pending), new_sources


def _index_adds(new_faces: Sequence[Face], version: int) -> list[IndexAdd]:
    by_model: dict[str, list[Face]] = {}
    for f in new_faces:
        by_model.setdefault(f.model_id, []).append(f)
    out: list[IndexAdd] = []
    for model_id, faces in by_model.items():
        ids = np.asarray([f.id for f in faces], dtype=np.int64)
        dim = len(faces[0].embedding) // 4  # float32 vectors; every face of a model alike
        vecs = np.frombuffer(b"".join(f.embedding for f in faces), dtype="<f4").reshape(-1, dim)
        out.append((model_id, ids, vecs.astype(np.float32), version))
    return out


# Per-job notes kept in the rejections table that are warnings, not rejected files.
WARNING_CODES = frozenset({"manifest_unmatched", "manifest_refused"})


def job_face_tally(session: Session, job_id: int, model_id: str, names: int = 1000
                   ) -> dict[str, Any]:
    """The images a job added, by their faces in the gallery (those of ``model_id``, the
    active model: a re-embedding keeps the old model's beside the new) found (0, 1, several),
    naming (up to ``names``, in ingest order) those with none by the path they came from."""
    n = (select(func.count(Face.id)).where(Face.image_id == Image.id, Face.model_id == model_id)
         .correlate(Image).scalar_subquery())
    rows = session.execute(select(Image.id, n).where(Image.job_id == job_id)
                           .order_by(Image.id)).all()
    n_faces = [int(r[1]) for r in rows]
    none = [int(r[0]) for r in rows if int(r[1]) == 0]
    shown: dict[int, str] = {}
    if none[:names]:
        for image_id, path in session.execute(
                select(ImageSource.image_id, ImageSource.original_path)
                .where(ImageSource.image_id.in_(none[:names])).order_by(ImageSource.id)).all():
            shown.setdefault(int(image_id), str(path))
    return {"images_no_face": len(none), "images_one_face": n_faces.count(1),
            "images_several_faces": sum(1 for k in n_faces if k > 1),
            "no_face_images": [shown[i] for i in none[:names] if i in shown]}


def job_notes(session: Session, job_id: int) -> tuple[list[Rejection], list[Rejection]]:
    """A job's (rejections, warnings), in the order they were recorded."""
    rows = session.execute(select(Rejection).where(Rejection.job_id == job_id)
                           .order_by(Rejection.id)).scalars().all()
    return ([r for r in rows if r.code not in WARNING_CODES],
            [r for r in rows if r.code in WARNING_CODES])


def bump_faces_version(session: Session, collection_id: int) -> int:
    col = session.get(Collection, collection_id)
    assert col is not None
    col.faces_version = (col.faces_version or 0) + 1
    return col.faces_version


def faces_version(session: Session, collection_id: int) -> int:
    v = session.execute(select(Collection.faces_version)
                        .where(Collection.id == collection_id)).scalar_one_or_none()
    return int(v or 0)


@dataclass(frozen=True)
class FaceSources:
    """A face with its image's place and provenance, as a search shows it: columns only (no ORM
    objects, no embedding), read by two queries however many faces."""

    face_id: int
    image_id: int
    image_path: str
    image_sha256: str
    image_size: list[int]  # [width, height]
    thumbnail_path: str
    box: list[int]
    collection: str
    sources: list[dict[str, Any]]  # in the order they were added: source_url, page_url,
    # title, captured_at (datetime or None), original_path

    @property
    def first(self) -> dict[str, Any]:
        """The first source (all None when the image has none)."""
        return self.sources[0] if self.sources else dict.fromkeys(_SOURCE_FIELDS)

    def shown(self) -> dict[str, Any]:
        """The provenance a result shows: the first source's source_url, page_url, title and
        captured_at (ISO), and every source (source_url, page_url, title, original_path)."""
        first = self.first
        taken = first["captured_at"]
        return {"source_url": first["source_url"], "page_url": first["page_url"],
                "title": first["title"], "captured_at": taken.isoformat() if taken else None,
                "sources": [{k: x[k] for k in ("source_url", "page_url", "title",
                                               "original_path")} for x in self.sources]}


_SOURCE_FIELDS = ("source_url", "page_url", "title", "captured_at", "original_path")


def face_sources(session: Session, face_ids: Sequence[int]) -> dict[int, FaceSources]:
    """``face_id`` -> its :class:`FaceSources` (faces no longer stored are left out)."""
    if not face_ids:
        return {}
    faces = session.execute(
        select(Face.id, Face.image_id, Face.thumbnail_path, Face.box, Image.stored_path,
               Image.sha256, Image.width, Image.height, Collection.name)
        .join(Image, Image.id == Face.image_id).join(Collection, Collection.id == Image.collection_id)
        .where(Face.id.in_(list(face_ids)))).all()
    sources: dict[int, list[dict[str, Any]]] = {int(r.image_id): [] for r in faces}
    for src in session.execute(
            select(ImageSource.image_id, ImageSource.source_url, ImageSource.page_url,
                   ImageSource.title, ImageSource.captured_at, ImageSource.original_path)
            .where(ImageSource.image_id.in_(list(sources))).order_by(ImageSource.id)).all():
        sources[int(src.image_id)].append({k: getattr(src, k) for k in _SOURCE_FIELDS})
    return {int(r.id): FaceSources(int(r.id), int(r.image_id), r.stored_path, r.sha256,
                                   [int(r.width), int(r.height)], r.thumbnail_path, list(r.box),
                                   r.name, sources[int(r.image_id)]) for r in faces}
