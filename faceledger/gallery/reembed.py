"""Re-embedding: the gallery's stored originals through another model, in the background, then
an atomic switch of the active model.

* New faces: each image is detected, aligned and embedded again by model M (its own detector,
  so M's faces need not match the old ones one for one) into new ``faces`` rows labelled M, on
  the same image (so the same provenance), with their own thumbnails. An ``image_embeddings``
  marker per image says M has embedded it, faces found or not: a re-run (after a kill, a
  failure, an interrupted job) starts at the first image without one, and a batch's faces and
  markers commit together, so nothing is added twice.
* Old faces stay: past searches name them, and searches keep using the active model (its own
  index per collection) while the job runs; M's indexes are built beside them.
* The switch: when no image of the whole gallery is left without M, one write transaction
  checks that again, names M active (``app_settings``) and writes ``model.switched``. A job
  limited to one collection switches only when every other collection is done too.
  The job is ``switching`` from then on (ingest refuses to start); the switch refuses while
  an ingest job is running (it embeds with the old model) or while an opt-out has no template
  for M: the job ends ``blocked`` (ledgered ``reembed.blocked``; its status says why and the
  remedy), and running it again switches.
* Opt-outs: M's faces of a person who opted out are not stored, and each yields an M template
  for that opt-out (``reembed_guard``), so the person stays blocked under M.
* Ledgered: ``reembed.started``, ``reembed.batch`` (per commit, with the opt-out templates it
  added), ``reembed.finished`` (or ``reembed.blocked``, ``reembed.interrupted``,
  ``reembed.failed``), ``model.switched``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.db.schema import ReembedJob
from faceledger.errors import ConflictError, FaceledgerError, NotFoundError, ValidationError
from faceledger.faces.models.base import available_models
from faceledger.faces.pipeline import ImageResult
from faceledger.gallery.collections import get_collection
from faceledger.gallery.indexstore import DIM
from faceledger.gallery.ingest import _init_worker, process_bytes
from faceledger.gallery.reembed_guard import OptOutGuard, model_pipeline
from faceledger.gallery.reembed_store import (
    NewFace,
    TodoImage,
    add_embedded,
    alive,
    blockers,
    bump_versions,
    collection_ids,
    count_todo,
    job_dict,
    recent_jobs,
    running_jobs,
    set_active_model,
    stored_active_model,
    todo_images,
)
from faceledger.governance import ledger
from faceledger.roles import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

ProgressFn = Callable[[dict[str, Any]], None]
Outcome = ImageResult | tuple[str, str]


def check_model(model_id: str) -> str:
    """The input rule for the target model: registered, and of the indexes' dimension."""
    model_id = (model_id or "").strip()
    if not model_id:
        raise ValidationError("choose the model to re-embed the gallery with")
    models = available_models()
    if model_id not in models:
        raise ValidationError(f"unknown face model {model_id!r}; available: "
                              f"{', '.join(sorted(models))}", known=sorted(models))
    if models[model_id].dim != DIM:
        raise ValidationError(f"model {model_id!r} makes {models[model_id].dim}-d embeddings; "
                              f"the gallery's indexes hold {DIM}-d ones")
    return model_id


def _close_dead(s: Session) -> None:
    """Running jobs whose process is gone (killed): interrupted, ledgered."""
    for job in running_jobs(s):
        if alive(job.pid):
            continue
        job.status, job.finished_at = "interrupted", datetime.now(UTC)
        ledger.append(s, "reembed.interrupted", {"job": job.id, "model": job.model_id,
                                                  "processed": job.processed}, actor=None)


def start_reembed(app: Faceledger, principal: Principal, model_id: str,
                  collection: str | None = None) -> dict[str, Any]:
    """Open a re-embedding job (ledgered ``reembed.started``); ``run_reembed`` does the work."""
    require(principal.role, "index.manage", principal.name)
    model_id = check_model(model_id)
    from_model = app.model_id
    if model_id == from_model:
        raise ValidationError(f"{model_id} is already the model in use; choose another")
    with app.db.write() as s:
        col = get_collection(s, collection.strip()) if collection and collection.strip() else None
        _close_dead(s)
        busy = running_jobs(s)  # one at a time, in this process or another
        if busy:
            raise ConflictError(f"re-embedding job {busy[0].id} is still running; wait for it "
                                "to finish", job=busy[0].id)
        todo = count_todo(s, model_id, col.id if col else None)
        job = ReembedJob(model_id=model_id, from_model=from_model,
                         collection_id=col.id if col else None, user_id=principal.user_id,
                         status="running", pid=os.getpid(), total=todo, processed=0, faces=0,
                         failed=0, withheld=0, switched=False, started_at=datetime.now(UTC))
        s.add(job)
        s.flush()
        ledger.append(s, "reembed.started", {
            "job": job.id, "model": model_id, "from_model": from_model,
            "collection": col.name if col else None, "images": todo}, actor=principal.name)
        return job_dict(s, job)


def reembed_status(app: Faceledger, principal: Principal, job_id: int) -> dict[str, Any]:
    """A job's progress: processed of total images, faces, failures, whether it switched."""
    require(principal.role, "jobs.read", principal.name)
    with app.db.read() as s:
        job = s.get(ReembedJob, job_id)
        if job is None:
            raise NotFoundError(f"no re-embedding job {job_id}")
        return job_dict(s, job)


def reembed_overview(app: Faceledger, principal: Principal, limit: int = 10) -> dict[str, Any]:
    """The active model, the configured default, the models offered and the latest jobs."""
    require(principal.role, "jobs.read", principal.name)
    active = app.model_id
    with app.db.read() as s:
        jobs = [job_dict(s, j) for j in recent_jobs(s, limit)]
    return {"active_model": active, "configured_model": app.configured_model,
            "models": sorted(m for m, c in available_models().items() if c.dim == DIM),
            "jobs": jobs}


@dataclass
class _Job:
    id: int
    model: str
    from_model: str
    collection_id: int | None
    actor: str


def run_reembed(app: Faceledger, principal: Principal, job_id: int,
                progress: ProgressFn | None = None, workers: int | None = None
                ) -> dict[str, Any]:
    """Embed every image the job still lacks, build the new model's indexes, then switch the
    active model if the whole gallery is done. Stopped (Ctrl-C, a signal, an error): the job
    is marked interrupted or failed (ledgered) and the exception goes on; start again to
    resume."""
    require(principal.role, "index.manage", principal.name)
    with app.db.read() as s:
        row = s.get(ReembedJob, job_id)
        if row is None:
            raise NotFoundError(f"no re-embedding job {job_id}")
        if row.status != "running":
            raise ConflictError(f"re-embedding job {job_id} is {row.status}; start a new one")
        job = _Job(row.id, row.model_id, row.from_model, row.collection_id, principal.name)
    try:
        for _attempt in range(3):  # images ingested meanwhile are embedded on the next pass
            _embed_all(app, job, progress, workers)
            done = _finish(app, job)
            if done is not None:
                return done
        raise ConflictError("photos keep arriving in the collection; run the job again later")
    except BaseException as exc:
        _stopped(app, job, exc)
        raise


def _stopped(app: Faceledger, job: _Job, exc: BaseException) -> None:
    failed = isinstance(exc, Exception)
    with app.db.write() as s:
        row = s.get(ReembedJob, job.id)
        if row is None or row.status not in ("running", "switching"):
            return
        row.status = "failed" if failed else "interrupted"
        row.finished_at = datetime.now(UTC)
        ledger.append(s, f"reembed.{row.status}", {
            "job": job.id, "model": job.model, "processed": row.processed,
            **({"error": type(exc).__name__} if failed else {})}, actor=job.actor)


def _batches(app: Faceledger, job: _Job) -> Iterator[list[TodoImage]]:
    after = 0
    while True:
        with app.db.read() as s:
            batch = todo_images(s, job.model, job.collection_id, app.settings.commit_every,
                                after)
        if not batch:
            return
        after = batch[-1].image_id
        yield batch


def _embed_all(app: Faceledger, job: _Job, progress: ProgressFn | None,
               workers: int | None) -> None:
    n = max(1, workers or 1)
    pool = (ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init_worker,
                                initargs=(app.settings.model_copy(
                                    update={"model": job.model}).model_dump(),))
            if n > 1 else None)
    pipe = model_pipeline(app, job.model) if pool is None else None
    guard = OptOutGuard(app, job.model, job.from_model)
    try:
        for batch in _batches(app, job):
            datas = [_read(app, img) for img in batch]
            todo = [d for d in datas if isinstance(d, bytes)]
            outs = iter(pool.map(process_bytes, todo) if pool is not None
                        else [process_bytes(d, pipe) for d in todo])
            results = [next(outs) if isinstance(d, bytes) else d for d in datas]
            _commit(app, job, guard, batch, datas, results)
            if progress:
                with app.db.read() as s:
                    progress(job_dict(s, s.get_one(ReembedJob, job.id)))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _read(app: Faceledger, img: TodoImage) -> bytes | tuple[str, str]:
    try:
        return app.files.read(img.stored_path)
    except (FaceledgerError, OSError) as exc:
        return ("original_missing", str(getattr(exc, "message", exc)))


def thumb_relpath(sha256: str, model_id: str, face_index: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_id)
    return f"thumbs/{sha256[:2]}/{sha256}_{safe}_{face_index}.jpg"


def _commit(app: Faceledger, job: _Job, guard: OptOutGuard, batch: list[TodoImage],
            datas: list[bytes | tuple[str, str]], results: list[Outcome]) -> None:
    """One batch: thumbnails to disk, then faces + markers + the job's counts + one ledger
    entry in one transaction, then the new model's indexes."""
    planned: list[tuple[TodoImage, list[NewFace], str]] = []
    failed: list[dict[str, Any]] = []
    withheld = 0
    for img, data, out in zip(batch, datas, results, strict=True):
        if isinstance(out, tuple):
            failed.append({"image_id": img.image_id, "code": out[0], "reason": out[1]})
            planned.append((img, [], "failed"))
            continue
        assert isinstance(data, bytes)
        kept = guard.keep(img, data, out)
        withheld += len(out.faces) - len(kept)
        faces = []
        for i, f in enumerate(kept):
            path = thumb_relpath(img.sha256, job.model, i)
            app.files.put(path, f.thumbnail, durable=False)
            faces.append(NewFace(f.box.as_list(), [list(p) for p in f.landmarks],
                                 f.quality.as_dict(), f.embedding.to_bytes(), path))
        planned.append((img, faces, "done"))
    app.files.sync()
    added: dict[int, list[Any]] = {}
    with app.db.write() as s:
        shown = []
        for img, faces, status in planned:
            rows = add_embedded(s, img, job.model, job.id, faces, status)
            if rows:
                added.setdefault(img.collection_id, []).extend(rows)
            shown.append({"image_id": img.image_id, "faces": len(rows)})
        versions = bump_versions(s, set(added))
        row = s.get_one(ReembedJob, job.id)
        row.processed += len(batch)
        row.faces += sum(len(v) for v in added.values())
        row.failed += len(failed)
        row.withheld += withheld
        ledger.append(s, "reembed.batch", {"job": job.id, "model": job.model, "images": shown,
                                            "failed": failed, "withheld": withheld,
                                            "optout_templates": guard.save(s)},
                      actor=job.actor)
    for cid, rows in added.items():
        ids = np.asarray([r.id for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(-1, DIM)
        app.indexes.add(job.model, cid, ids, vecs.astype(np.float32), versions[cid])


def _finish(app: Faceledger, job: _Job) -> dict[str, Any] | None:
    """The job's last step (``switching``: no ingest starts): build and save the new model's
    indexes, then in one write transaction: nothing of the job's scope left (else None:
    another pass), the switch if nothing of the gallery is left and nothing blocks it (else
    ``blocked``), and the job's end. Ledgered."""
    with app.db.write() as s:
        s.get_one(ReembedJob, job.id).status = "switching"
    with app.db.read() as s:
        cids = collection_ids(s, None)
    for cid in cids:
        app.indexes.get(job.model, cid)
    app.indexes.flush()
    with app.db.write() as s:
        row = s.get_one(ReembedJob, job.id)
        if count_todo(s, job.model, job.collection_id):
            row.status = "running"
            return None
        remaining = count_todo(s, job.model, None)
        previous = stored_active_model(s) or app.configured_model
        switch = remaining == 0 and previous != job.model
        refused = blockers(s, job.model) if switch else None
        if refused is not None:
            return _blocked(s, job, row, refused)
        if switch:
            set_active_model(s, job.model)
            ledger.append(s, "model.switched", {"from": previous, "to": job.model,
                                                 "job": job.id}, actor=job.actor)
        row.status, row.finished_at, row.switched = "done", datetime.now(UTC), switch
        ledger.append(s, "reembed.finished", {
            "job": job.id, "model": job.model, "processed": row.processed, "faces": row.faces,
            "failed": row.failed, "withheld": row.withheld, "switched": switch,
            "images_left_elsewhere": remaining}, actor=job.actor)
        out = job_dict(s, row)
    if switch:
        app.model_switched(job.model)
    return {**out, "images_left_elsewhere": remaining}


def _blocked(s: Session, job: _Job, row: ReembedJob, why: dict[str, Any]) -> dict[str, Any]:
    """The gallery is embedded but the switch is refused: the job ends ``blocked``."""
    row.status, row.finished_at = "blocked", datetime.now(UTC)
    ledger.append(s, "reembed.blocked", {
        "job": job.id, "model": job.model, "processed": row.processed, "faces": row.faces,
        **{k: v for k, v in why.items() if k != "message"}}, actor=job.actor)
    return {**job_dict(s, row), "images_left_elsewhere": 0}
