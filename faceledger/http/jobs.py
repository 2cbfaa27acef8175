"""Ingest jobs from either front end: the app's one job runner, and submitting a staged upload
to it in the thread pool with one clean-up path (a refused job leaves no upload behind)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from faceledger.http.uploads import discard, stage_upload

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.gallery.jobs import JobRunner


def job_runner(request: Request) -> JobRunner:
    """The runner the app started with (``app.state.jobs``, see faceledger.api.app)."""
    runner: JobRunner = request.app.state.jobs
    return runner


async def submit_staged(runner: JobRunner, principal: Principal, staged: Path, collection: str,
                        manifest: Path | None) -> int:
    """Open the job (in the thread pool: it writes to the database) and return its id; on any
    failure the staged upload is removed before the error goes on."""
    try:
        job_id: int = await run_in_threadpool(runner.submit, principal, staged, collection,
                                              manifest)
    except BaseException:
        discard(staged)
        raise
    return job_id


async def submit_upload(request: Request, core: Faceledger, principal: Principal,
                        collection: str, files: list[UploadFile], manifest: UploadFile | None
                        ) -> int:
    """Stage the uploaded files (capped) and start an ingest job on them: the job's id."""
    staged, manifest_path = await stage_upload(core, files, manifest)
    return await submit_staged(job_runner(request), principal, staged, collection,
                               manifest_path)
