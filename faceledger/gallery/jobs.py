"""Background ingest jobs for the service: uploads are staged in the data home, then ingested
by one worker thread (which fans out to the process pool), one job at a time."""

from __future__ import annotations

import logging
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import Collection, IngestJob
from faceledger.errors import NotFoundError
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.reembed import run_reembed, start_reembed
from faceledger.gallery.repository import job_face_tally, job_notes
from faceledger.gallery.summary import IngestSummary
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

log = logging.getLogger("faceledger.gallery.jobs")
# The stage a job not being processed by this process is in, by its status.
_STAGE_OF = {"running": "processing", "done": "done", "interrupted": "interrupted",
             "failed": "failed"}


def _shown(path: str) -> str:
    """An uploaded file by its own name, not the staging folder it sat in."""
    return Path(path.split("!")[-1]).name if "/uploads/" in path else path


def mark_failed(session: Session, job_id: int) -> None:
    job = session.get(IngestJob, job_id)
    if job is not None:
        job.status = "failed"


def recent_job_ids(session: Session, limit: int) -> list[int]:
    return list(session.execute(select(IngestJob.id).order_by(IngestJob.id.desc()).limit(limit)
                                ).scalars().all())


def job_report(session: Session, job_id: int) -> dict[str, Any]:
    """A job's row as reported (its faces-per-image tally left to the caller)."""
    job = session.get(IngestJob, job_id)
    if job is None:
        raise NotFoundError(f"no ingest job {job_id}")
    col = session.get(Collection, job.collection_id)
    rejected, warned = job_notes(session, job_id)
    return {"id": job.id, "collection": col.name if col else None, "status": job.status,
            "stage": _STAGE_OF.get(job.status, job.status),
            "total": job.total, "processed": job.processed, "added": job.added,
            "duplicates": job.duplicates, "rejected": job.rejected, "faces": job.faces,
            "started_at": job.started_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "rejections": [{"path": _shown(r.path), "code": r.code, "reason": r.reason}
                           for r in rejected],
            "warnings": [{"path": r.path, "code": r.code, "reason": r.reason}
                         for r in warned]}


class JobRunner:
    def __init__(self, core: Faceledger) -> None:
        self.core = core
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        self._live: dict[int, IngestSummary] = {}
        self._futures: dict[int, Future[None]] = {}
        self._reembeds: dict[int, Future[None]] = {}  # re-embedding jobs (their own ids)
        self._lock = threading.Lock()

    def submit(self, principal: Principal, staged: Path, collection: str,
               manifest: Path | None) -> int:
        """Open the job now (so the caller gets its id), process it in the background. The
        ingest service checks the permission ("ingest")."""
        service = Ingest(self.core, principal)
        prepared = service.prepare([staged], collection, manifest)
        job_id = prepared.summary.job_id
        with self._lock:
            self._live[job_id] = prepared.summary

        def work() -> None:
            try:
                service.execute(prepared)
            except Exception:
                log.exception("ingest job %s failed", job_id)
                with self.core.db.write() as s:
                    mark_failed(s, job_id)
            finally:
                # the upload's own folder (<home>/uploads/<random>/), not just its files/
                shutil.rmtree(staged.parent if staged.name == "files" else staged,
                              ignore_errors=True)
                with self._lock:
                    self._live.pop(job_id, None)

        self._futures[job_id] = self._pool.submit(work)
        return job_id

    def submit_reembed(self, principal: Principal, model_id: str, collection: str | None = None
                       ) -> dict[str, Any]:
        """Open a re-embedding job now (the service checks "index.manage" and the input) and
        run it in the background, after any ingest queued before it; its row shows progress."""
        job = start_reembed(self.core, principal, model_id, collection)
        job_id = int(job["id"])

        def work() -> None:
            try:
                run_reembed(self.core, principal, job_id)
            except Exception:  # recorded as failed (ledgered) by the service
                log.exception("re-embedding job %s failed", job_id)

        self._reembeds[job_id] = self._pool.submit(work)
        return job

    def wait_reembed(self, job_id: int, timeout: float | None = None) -> None:
        fut = self._reembeds.get(job_id)
        if fut is not None:
            fut.result(timeout)

    def wait(self, job_id: int, timeout: float | None = None) -> None:
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout)

    def status(self, principal: Principal, job_id: int, per_image: bool = True
               ) -> dict[str, Any]:
        """A job's progress and report. ``per_image=False`` leaves out the faces-per-image
        tally of a finished job (``null``), which reads every image row of the job."""
        require(principal.role, "jobs.read", principal.name)
        return self._status(job_id, per_image)

    def recent(self, principal: Principal, limit: int = 20) -> list[dict[str, Any]]:
        """The latest jobs, without the faces-per-image tally of finished ones."""
        require(principal.role, "jobs.read", principal.name)
        with self.core.db.read() as s:
            ids = recent_job_ids(s, limit)
        return [self._status(i, per_image=False) for i in ids]

    def _status(self, job_id: int, per_image: bool) -> dict[str, Any]:
        with self._lock:
            live = self._live.get(job_id)
        model_id = self.core.model_id
        with self.core.db.read() as s:
            out = job_report(s, job_id)
            live = live if out["status"] == "running" else None
            if live is not None:
                tally: dict[str, Any] = {
                    "images_no_face": live.images_no_face,
                    "images_one_face": live.images_one_face,
                    "images_several_faces": live.images_several_faces,
                    "no_face_images": live.no_face_images[:1000]}
            elif per_image:
                tally = job_face_tally(s, job_id, model_id)
            else:
                tally = dict.fromkeys(("images_no_face", "images_one_face",
                                       "images_several_faces", "no_face_images"))
        out.update(tally)
        if tally["no_face_images"] is not None:
            out["no_face_images"] = [_shown(p) for p in tally["no_face_images"]]
        if live is not None:
            out.update(stage=live.stage, processed=live.processed, added=live.added,
                       faces=live.faces, duplicates=live.duplicates,
                       rejected=len(live.rejections))
        return out

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
