"""ingest -> detect -> align -> embed -> index, for a batch of files.

Workers (one process per core) run the face pipeline; this process hashes, deduplicates,
writes files, and commits every ``commit_every`` images in one transaction together with
their ledger entry. A ``kill -9`` at any point loses at most the uncommitted images, which a
re-run of the same command then adds (committed ones are recognised by content hash)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import IngestJob, Rejection
from faceledger.errors import ConflictError, FaceledgerError, ValidationError
from faceledger.faces.pipeline import FacePipeline, ImageResult
from faceledger.gallery.collections import get_collection
from faceledger.gallery.interrupt import IngestInterrupted, stop_workers
from faceledger.gallery.optout import optout_threshold, templates
from faceledger.gallery.ray_engine import engine_settings, ray_map
from faceledger.gallery.reembed_store import stored_active_model, switching_jobs
from faceledger.gallery.repository import PendingImage, find_image, write_batch
from faceledger.gallery.sources import Archives, Manifest, Provenance, SourceItem, iter_sources, load_manifest
from faceledger.gallery.summary import IngestSummary
from faceledger.governance import ledger
from faceledger.roles import require
from faceledger.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

ProgressFn = Callable[["IngestSummary"], None]

_WORKER_PIPELINE: FacePipeline | None = None


def _init_worker(settings: dict[str, Any]) -> None:
    global _WORKER_PIPELINE
    _WORKER_PIPELINE = FacePipeline.from_settings(Settings.model_validate(settings))


def process_bytes(data: bytes, pipeline: FacePipeline | None = None) -> ImageResult | tuple[str, str]:
    """Run the pipeline; return the result, or (code, reason) for a file we reject."""
    pipe = pipeline or _WORKER_PIPELINE
    assert pipe is not None, "worker not initialised"
    try:
        return pipe.process(data)
    except FaceledgerError as exc:
        return (exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - one bad file never aborts the batch
        return ("processing_failed", f"{type(exc).__name__}: {exc}")


def _mark_interrupted(app: Faceledger) -> None:
    with app.db.write() as s:
        for job in s.execute(select(IngestJob).where(IngestJob.status == "running")).scalars():
            if job.pid and _pid_alive(job.pid):
                continue
            job.status = "interrupted"
            ledger.append(s, "ingest.interrupted", {"job": job.id, "processed": job.processed},
                          actor=None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def _refuse_while_switching(app: Faceledger, s: Session) -> None:
    """The start check (in the transaction that opens the job): no ingest while a re-embedding
    is switching the active model, and the model the database names is the one used (a
    switch made by another process a moment ago counts)."""
    busy = switching_jobs(s)
    if busy:
        raise ConflictError(f"the gallery is switching to face model {busy[0].model_id} "
                            f"(re-embedding job {busy[0].id}); start the ingest again when it "
                            "has switched (`faceledger reembed` shows it)", job=busy[0].id)
    active = stored_active_model(s)
    if active is not None and active != app.model_id:
        app.model_switched(active)


def collection_name(collection: str) -> str:
    """The input rule for an ingest's target collection: named (ValidationError if blank)."""
    if not collection.strip():
        raise ValidationError("choose the collection to add the photos to")
    return collection.strip()


@dataclass
class PreparedJob:
    summary: IngestSummary
    collection_id: int
    items: list[SourceItem]
    provenance: Manifest


class Ingest:
    def __init__(self, app: Faceledger, principal: Principal, engine: str | None = None,
                 address: str | None = None) -> None:
        require(principal.role, "ingest", principal.name)
        self.app = app
        self.principal = principal
        self.settings = engine_settings(app.settings, engine, address)  # local or ray
        self._archives: Archives | None = None

    def run(self, paths: list[Path], collection: str, manifest: Path | None = None,
            progress: ProgressFn | None = None, workers: int | None = None) -> IngestSummary:
        return self.execute(self.prepare(paths, collection, manifest), progress, workers)

    def prepare(self, paths: list[Path], collection: str, manifest: Path | None = None
                ) -> PreparedJob:
        """Validate the request, list the files and open the job (ledgered)."""
        app = self.app
        collection = collection_name(collection)
        with app.db.read() as s:
            col = get_collection(s, collection)
            col_id, col_name = col.id, col.name
        provenance = load_manifest(manifest) if manifest else Manifest()
        skip = {manifest.resolve()} if manifest else set()
        items = list(iter_sources(paths, skip, max_zip_members=self.settings.max_zip_members,
                                  max_files=self.settings.max_ingest_files))
        _mark_interrupted(app)
        summary = IngestSummary(collection=col_name, total=len(items))
        summary.warnings = provenance.refused + provenance.unmatched({i.key for i in items})
        with app.db.write() as s:
            _refuse_while_switching(app, s)
            job = IngestJob(collection_id=col_id, user_id=self.principal.user_id,
                            status="running", pid=os.getpid(),
                            sources=[str(p) for p in paths], total=len(items),
                            started_at=datetime.now(UTC))
            s.add(job)
            s.flush()
            summary.job_id = job.id
            ledger.append(s, "ingest.started",
                          {"job": job.id, "collection": col_name, "sources": job.sources,
                           "manifest": str(manifest) if manifest else None,
                           "files": len(items), "model": app.model_id,
                           "manifest_unmatched": [w["path"] for w in summary.warnings
                                                  if w["code"] == "manifest_unmatched"],
                           "manifest_refused": provenance.refused_lines},
                          actor=self.principal.name)
            for w in summary.warnings:  # kept with the job, apart from its rejections
                s.add(Rejection(job_id=job.id, path=w["path"], code=w["code"],
                                reason=w["reason"]))
        return PreparedJob(summary, col_id, items, provenance)

    def execute(self, job: PreparedJob, progress: ProgressFn | None = None,
                workers: int | None = None) -> IngestSummary:
        """Process a prepared job to the end. On a stop signal (``IngestInterrupted``, see
        ``interrupt.stop_on_signals``) or Ctrl-C the workers are stopped, the job is marked
        ``interrupted`` (ledgered) and the exception goes on; a re-run finishes the job."""
        summary = job.summary
        t0 = time.perf_counter()

        def stage(name: str) -> None:
            summary.stage = name
            if progress:
                progress(summary)

        stage("loading models")
        try:
            with Archives() as self._archives:
                self._process(job, progress, workers, stage, t0)
        except (IngestInterrupted, KeyboardInterrupt) as exc:
            self._interrupted(summary, exc)
            raise
        summary.seconds = time.perf_counter() - t0
        stage("indexing")
        self.app.indexes.flush()
        with self.app.db.write() as s:
            job2 = s.get(IngestJob, summary.job_id)
            assert job2 is not None
            job2.status = "done"
            job2.finished_at = datetime.now(UTC)
            summary.stage = "done"
            ledger.append(s, "ingest.finished",
                          {k: v for k, v in summary.as_dict().items()
                           if k not in ("rejections", "no_face_images", "warnings", "stage")},
                          actor=self.principal.name)
        if progress:
            progress(summary)
        return summary

    def _process(self, job: PreparedJob, progress: ProgressFn | None, workers: int | None,
                 stage: Callable[[str], None], t0: float) -> None:
        app, summary, provenance = self.app, job.summary, job.provenance
        batch = _Batch(app, summary, job.collection_id, self.principal.name)
        seen: set[str] = set()
        blocklist = templates(app, app.model_id)
        block_at = optout_threshold(app, app.model_id) if len(blocklist) else 1.0
        with closing(self._results(job.items, seen, workers, batch, stage)) as results:
            for item, outcome, data, sha in results:
                prov = provenance.get(item.key)
                if isinstance(outcome, tuple):
                    batch.reject(item, *outcome)
                elif outcome == "duplicate":
                    batch.duplicate(item, sha, prov)
                else:
                    assert isinstance(outcome, ImageResult) and data is not None
                    if len(blocklist) and outcome.faces:
                        vecs = np.stack([f.embedding.vector for f in outcome.faces])
                        keep = (vecs @ blocklist.T).max(axis=1) < block_at
                        summary.blocked_faces += int((~keep).sum())
                        outcome = replace(outcome, faces=[
                            f for f, k in zip(outcome.faces, keep, strict=True) if k])
                    batch.add(PendingImage(item.display, sha, data, outcome, prov))
                summary.processed += 1
                summary.seconds = time.perf_counter() - t0
                if batch.full(self.settings.commit_every):
                    batch.commit()
                if progress:
                    progress(summary)
        batch.commit()

    def _interrupted(self, summary: IngestSummary,
                     exc: IngestInterrupted | KeyboardInterrupt) -> None:
        """Record a stopped job: ``interrupted``, with a ledger entry saying how far it got."""
        signame = exc.signame if isinstance(exc, IngestInterrupted) else "SIGINT"
        if isinstance(exc, IngestInterrupted):
            exc.job_id, exc.processed, exc.total = summary.job_id, summary.processed, summary.total
        summary.stage = "interrupted"
        with self.app.db.write() as s:
            row = s.get(IngestJob, summary.job_id)
            if row is None or row.status != "running":
                return
            row.status = "interrupted"
            row.finished_at = datetime.now(UTC)
            ledger.append(s, "ingest.interrupted",
                          {"job": summary.job_id, "processed": summary.processed,
                           "total": summary.total, "signal": signame},
                          actor=self.principal.name)

    def _prepare(self, item: SourceItem, seen: set[str]
                 ) -> tuple[str | tuple[str, str], bytes | None, str]:
        if item.reject_reason:
            return ("unsupported_type", item.reject_reason), None, ""
        try:
            data = item.read(self.settings.max_upload_bytes, self._archives)
        except FaceledgerError as exc:
            return (exc.code, exc.message), None, ""
        except OSError as exc:
            return ("unreadable", f"cannot read file: {exc}"), None, ""
        sha = hashlib.sha256(data).hexdigest()
        return ("new" if sha not in seen else "duplicate"), data, sha

    def _results(self, items: list[SourceItem], seen: set[str], workers: int | None,
                 batch: _Batch, stage: Callable[[str], None]
                 ) -> Generator[tuple[SourceItem, Any, bytes | None, str], None, None]:
        n_workers = max(1, min(workers or self.settings.workers, len(items)))
        todo: list[tuple[SourceItem, bytes, str]] = []

        def classify(item: SourceItem) -> tuple[SourceItem, Any, bytes | None, str] | None:
            state, data, sha = self._prepare(item, seen)
            if isinstance(state, tuple):
                return item, state, None, sha
            if state == "duplicate" or batch.known(sha):
                return item, "duplicate", data, sha
            seen.add(sha)
            assert data is not None
            todo.append((item, data, sha))
            return None

        if n_workers == 1 and self.settings.ingest_engine == "local":
            pipe = self.app.pipeline()
            stage("processing")
            for item in items:
                early = classify(item)
                if early:
                    yield early
                    continue
                it, data, sha = todo.pop()
                yield it, process_bytes(data, pipe), data, sha
            return
        mapper = ray_map(self.settings) if self.settings.ingest_engine == "ray" else self._pooled
        yield from mapper(items, classify, todo, n_workers, stage)

    def _pooled(self, items: list[SourceItem], classify: Callable[..., Any],
                todo: list[tuple[SourceItem, bytes, str]], n_workers: int,
                stage: Callable[[str], None]) -> Iterator[tuple[SourceItem, Any, bytes | None, str]]:
        settings = self.settings.model_dump()
        ctx = get_context("spawn")
        pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(settings,))
        inflight: dict[Future[Any], tuple[SourceItem, bytes, str]] = {}
        retried: set[str] = set()
        it = iter(items)
        exhausted = False
        ready = False
        try:
            while True:
                while not exhausted and len(inflight) < n_workers * 4:
                    nxt = next(it, None)
                    if nxt is None:
                        exhausted = True
                        break
                    early = classify(nxt)
                    if early:
                        yield early
                    while todo:
                        job = todo.pop()
                        inflight[pool.submit(process_bytes, job[1])] = job
                if not inflight:
                    return
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                if not ready:  # the first result: the workers have loaded their models
                    ready = True
                    stage("processing")
                for fut in done:
                    job = inflight.pop(fut)
                    try:
                        yield job[0], fut.result(), job[1], job[2]
                    except BrokenProcessPool:
                        # A worker died (e.g. a native crash on a hostile file). Restart the
                        # pool; retry each affected file once, then reject it.
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = ProcessPoolExecutor(n_workers, mp_context=ctx,
                                                   initializer=_init_worker, initargs=(settings,))
                        again = [job, *inflight.values()]
                        inflight.clear()
                        for j in again:
                            if j[2] in retried:
                                yield j[0], ("worker_crashed", "the face pipeline crashed on "
                                             "this file"), None, j[2]
                            else:
                                retried.add(j[2])
                                inflight[pool.submit(process_bytes, j[1])] = j
                        break
        except BaseException:  # stopped (a signal, or the consumer gave up): no waiting
            stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _Batch:
    """Images waiting for the next commit."""

    def __init__(self, app: Faceledger, summary: IngestSummary, collection_id: int,
                 actor: str) -> None:
        self.app = app
        self.summary = summary
        self.collection_id = collection_id
        self.actor = actor
        self.images: list[PendingImage] = []
        self.dupes: list[tuple[SourceItem, str, Provenance]] = []
        self.rejects: list[Rejection] = []
        self.last_commit = time.monotonic()

    def known(self, sha: str) -> bool:
        with self.app.db.read() as s:
            return find_image(s, self.collection_id, sha) is not None

    def add(self, img: PendingImage) -> None:
        self.images.append(img)

    def duplicate(self, item: SourceItem, sha: str, prov: Provenance) -> None:
        self.dupes.append((item, sha, prov))

    def reject(self, item: SourceItem, code: str, reason: str) -> None:
        self.rejects.append(Rejection(job_id=self.summary.job_id, path=item.display, code=code,
                                      reason=reason))
        self.summary.rejections.append({"path": item.display, "code": code, "reason": reason})

    def full(self, every: int) -> bool:
        n = len(self.images) + len(self.dupes) + len(self.rejects)
        return n >= every or (n > 0 and time.monotonic() - self.last_commit > 5.0)

    def commit(self) -> None:
        if not (self.images or self.dupes or self.rejects):
            return
        result = write_batch(self.app, self.summary.job_id, self.collection_id, self.actor,
                             self.images, self.dupes, self.rejects, self.summary.totals())
        self.summary.apply(result)
        for model_id, ids, vecs, version in result.index_adds:
            self.app.indexes.add(model_id, self.collection_id, ids, vecs, version)
        self.images, self.rejects = [], []
        self.dupes = list(result.pending)  # unresolved dupes stay for the next commit
        self.last_commit = time.monotonic()
