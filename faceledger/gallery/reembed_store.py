"""Re-embedding's SQL: the active model setting, the images still to embed with a model, the
faces and markers a batch writes, the job rows, and what blocks a switch. Repository functions:
a session in, values out; they never commit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import (
    AppSetting,
    Collection,
    Face,
    Image,
    ImageEmbedding,
    IngestJob,
    ReembedJob,
)
from faceledger.gallery.optout import lacking_model
from faceledger.gallery.repository import bump_faces_version

ACTIVE_MODEL = "active_model"
OPEN = ("running", "switching")  # a job's process is working on it (switching: the last step)


def stored_active_model(session: Session) -> str | None:
    row = session.get(AppSetting, ACTIVE_MODEL)
    return row.value if row is not None else None


def set_active_model(session: Session, model_id: str) -> None:
    row = session.get(AppSetting, ACTIVE_MODEL)
    now = datetime.now(UTC)
    if row is None:
        session.add(AppSetting(key=ACTIVE_MODEL, value=model_id, updated_at=now))
    else:
        row.value, row.updated_at = model_id, now


def _todo_where(model_id: str, collection_id: int | None) -> list[Any]:
    """Images with neither a face of ``model_id`` nor a marker saying it embedded them."""
    where: list[Any] = [
        ~exists().where(and_(Face.image_id == Image.id, Face.model_id == model_id)),
        ~exists().where(and_(ImageEmbedding.image_id == Image.id,
                             ImageEmbedding.model_id == model_id)),
    ]
    if collection_id is not None:
        where.append(Image.collection_id == collection_id)
    return where


def count_todo(session: Session, model_id: str, collection_id: int | None = None) -> int:
    return int(session.execute(select(func.count(Image.id))
                               .where(*_todo_where(model_id, collection_id))).scalar_one())


@dataclass(frozen=True)
class TodoImage:
    image_id: int
    collection_id: int
    sha256: str
    stored_path: str


def todo_images(session: Session, model_id: str, collection_id: int | None, limit: int,
                after: int = 0) -> list[TodoImage]:
    """The next ``limit`` images (by id, past ``after``) still to embed with ``model_id``."""
    rows = session.execute(
        select(Image.id, Image.collection_id, Image.sha256, Image.stored_path)
        .where(Image.id > after, *_todo_where(model_id, collection_id))
        .order_by(Image.id).limit(limit)).all()
    return [TodoImage(int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]


def is_done(session: Session, image_id: int, model_id: str) -> bool:
    return session.execute(select(Image.id).where(
        Image.id == image_id, ~and_(*_todo_where(model_id, None)))).first() is not None


def faces_of(session: Session, image_ids: Sequence[int], model_id: str
             ) -> dict[int, list[tuple[list[int], np.ndarray]]]:
    """Each image's faces of ``model_id``: [(box, vector)]."""
    out: dict[int, list[tuple[list[int], np.ndarray]]] = {}
    for image_id, box, emb in session.execute(
            select(Face.image_id, Face.box, Face.embedding)
            .where(Face.image_id.in_(list(image_ids)), Face.model_id == model_id)).all():
        out.setdefault(int(image_id), []).append(
            (list(box), np.frombuffer(emb, dtype="<f4").astype(np.float32)))
    return out


@dataclass(frozen=True)
class NewFace:
    box: list[int]
    landmarks: list[list[int]]
    quality: dict[str, float]
    embedding: bytes
    thumbnail_path: str


def add_embedded(session: Session, image: TodoImage, model_id: str, job_id: int,
                 faces: Sequence[NewFace], status: str = "done") -> list[Face]:
    """One image's faces of ``model_id`` and its marker (nothing if it is done meanwhile)."""
    if is_done(session, image.image_id, model_id):
        return []
    rows = [Face(image_id=image.image_id, collection_id=image.collection_id, face_index=i,
                 box=f.box, landmarks=f.landmarks, quality=f.quality, model_id=model_id,
                 embedding=f.embedding, thumbnail_path=f.thumbnail_path)
            for i, f in enumerate(faces)]
    session.add_all(rows)
    session.add(ImageEmbedding(image_id=image.image_id, model_id=model_id, job_id=job_id,
                               faces=len(rows), status=status, embedded_at=datetime.now(UTC)))
    session.flush()
    return rows


def bump_versions(session: Session, collection_ids: set[int]) -> dict[int, int]:
    return {cid: bump_faces_version(session, cid) for cid in sorted(collection_ids)}


def collection_ids(session: Session, collection_id: int | None) -> list[int]:
    if collection_id is not None:
        return [collection_id]
    return [int(i) for i in session.execute(select(Collection.id).order_by(Collection.id))
            .scalars()]


def running_jobs(session: Session) -> list[ReembedJob]:
    """Jobs a process is working on (running or switching), whether it is alive or not."""
    return list(session.execute(select(ReembedJob).where(ReembedJob.status.in_(OPEN)))
                .scalars())


def switching_jobs(session: Session) -> list[ReembedJob]:
    """Jobs in their last step (indexes, then the switch), by a live process: ingest waits."""
    return [j for j in session.execute(select(ReembedJob).where(
        ReembedJob.status == "switching")).scalars() if alive(j.pid)]


def alive(pid: int | None) -> bool:
    """Whether the process that opened a job still runs (this one counts)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def active_model_in(session: Session) -> str | None:
    """The active model as the database alone tells it: the switched-to one, else the model
    the first re-embedding started from; None when no re-embedding ever ran (one model)."""
    stored = stored_active_model(session)
    if stored is not None:
        return stored
    first = session.execute(select(ReembedJob.from_model).order_by(ReembedJob.id).limit(1)
                            ).scalar_one_or_none()
    return str(first) if first is not None else None


def pending_models(session: Session, active: str) -> list[str]:
    """Models a re-embedding has started on but not switched to (its latest job did not
    switch): opt-outs made now get templates for them too."""
    latest: dict[str, bool] = {}
    for model, switched in session.execute(select(ReembedJob.model_id, ReembedJob.switched)
                                           .order_by(ReembedJob.id)).all():
        latest[str(model)] = bool(switched)
    return sorted(m for m, switched in latest.items() if m != active and not switched)


def blockers(session: Session, model_id: str) -> dict[str, Any] | None:
    """What forbids switching to ``model_id`` now, said with its remedy; None if nothing.
    An ingest still running (it embeds with the old model), or an opt-out with no template
    for ``model_id`` (after the switch it would block nobody)."""
    again = f"then run `faceledger reembed --model {model_id}` again to switch"
    ingests = [int(j.id) for j in session.execute(select(IngestJob).where(
        IngestJob.status == "running")).scalars() if alive(j.pid)]
    if ingests:
        return {"reason": "ingest_running", "ingest_jobs": ingests, "message": (
            f"ingest job(s) {', '.join(map(str, ingests))} still running with the old model: "
            f"the switch waits for them to finish; {again}")}
    missing = lacking_model(session, model_id)
    if not missing:
        return None
    refs = [ref or f"#{seq}" for seq, ref in missing]
    return {"reason": "optouts_without_template", "optouts": len(missing), "references": refs,
            "optout_entries": [seq for seq, _ in missing], "message": (
                f"{len(missing)} opt-out(s) have no template for {model_id}: none of their "
                "faces was found in the gallery, so under the new model they would block "
                f"nobody (references: {', '.join(refs)}). For each, run `faceledger subject "
                "optout PHOTO... --reference R` with the person's photos (R: the reference "
                "shown; it adds the missing model's templates to that opt-out); " + again)}


def recent_jobs(session: Session, limit: int) -> list[ReembedJob]:
    return list(session.execute(select(ReembedJob).order_by(ReembedJob.id.desc()).limit(limit))
                .scalars())


def job_dict(session: Session, job: ReembedJob) -> dict[str, Any]:
    col = session.get(Collection, job.collection_id) if job.collection_id else None
    return {"id": job.id, "model": job.model_id, "from_model": job.from_model,
            "collection": col.name if col else None, "status": job.status,
            "total": job.total, "processed": job.processed, "faces": job.faces,
            "failed": job.failed, "withheld": job.withheld, "switched": job.switched,
            "blocked": blockers(session, job.model_id) if job.status == "blocked" else None,
            "started_at": job.started_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}
