"""Background ingest jobs for the service: uploads are staged in the data home, then ingested
by one worker thread (which fans out to the process pool), one job at a time."""

from __future__ import annotations

import logging
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select

from faceledger.accounts import Principal
from faceledger.core import Faceledger
from faceledger.db.schema import Collection, IngestJob, Rejection
from faceledger.errors import NotFoundError
from faceledger.ingest import Ingest, IngestSummary

log = logging.getLogger("faceledger.jobs")


class JobRunner:
    def __init__(self, core: Faceledger) -> None:
        self.core = core
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        self._live: dict[int, IngestSummary] = {}
        self._futures: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, principal: Principal, staged: Path, collection: str,
               manifest: Path | None) -> int:
        """Open the job now (so the caller gets its id), process it in the background."""
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
                    job = s.get(IngestJob, job_id)
                    if job is not None:
                        job.status = "failed"
            finally:
                # the upload's own folder (<home>/uploads/<random>/), not just its files/
                shutil.rmtree(staged.parent if staged.name == "files" else staged,
                              ignore_errors=True)
                with self._lock:
                    self._live.pop(job_id, None)

        self._futures[job_id] = self._pool.submit(work)
        return job_id

    def wait(self, job_id: int, timeout: float | None = None) -> None:
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout)

    def status(self, job_id: int) -> dict[str, Any]:
        with self.core.db.read() as s:
            job = s.get(IngestJob, job_id)
            if job is None:
                raise NotFoundError(f"no ingest job {job_id}")
            col = s.get(Collection, job.collection_id)
            rejections = [{"path": Path(r.path.split("!")[-1]).name if "/uploads/" in r.path
                           else r.path, "code": r.code, "reason": r.reason}
                          for r in s.execute(select(Rejection).where(Rejection.job_id == job_id)
                                             .order_by(Rejection.id)).scalars()]
            out = {"id": job.id, "collection": col.name if col else None, "status": job.status,
                   "total": job.total, "processed": job.processed, "added": job.added,
                   "duplicates": job.duplicates, "rejected": job.rejected, "faces": job.faces,
                   "started_at": job.started_at.isoformat(),
                   "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                   "rejections": rejections}
        with self._lock:
            live = self._live.get(job_id)
        if live is not None and job.status == "running":
            out.update(processed=live.processed, added=live.added, faces=live.faces,
                       duplicates=live.duplicates, rejected=len(live.rejections))
        return out

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.core.db.read() as s:
            ids = s.execute(select(IngestJob.id).order_by(IngestJob.id.desc()).limit(limit)
                            ).scalars().all()
        return [self.status(i) for i in ids]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
