"""Uploading photos (or zip archives) into a collection, and following the ingest job."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from faceledger.api.deps import Caller, Core, need
from faceledger.api.uploads import stage_upload
from faceledger.collections import list_collections
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, ValidationError
from faceledger.jobs import JobRunner
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Ingester = Annotated[Caller, Depends(need("ingest"))]
JobReader = Annotated[Caller, Depends(need("jobs.read"))]


def _jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


def _ingest_page(request: Request, core: Faceledger, caller: Caller, collection: str = "",
                 error: FaceledgerError | None = None) -> Response:
    with core.db.read() as s:
        collections = list_collections(s)
    if not collection and len(collections) == 1:
        collection = collections[0]["name"]  # the only choice: preselect it
    return render(request, "ingest.html", caller, status=error.status if error else 200,
                  collections=collections, jobs=_jobs(request).recent(15),
                  selected=collection, error=error.message if error else None,
                  max_files=core.settings.max_upload_files,
                  max_mb=core.settings.max_upload_bytes // (1024 * 1024))


def _discard(staged: Path) -> None:
    """Remove a staged upload that no job took over (and its now empty upload folder)."""
    shutil.rmtree(staged, ignore_errors=True)
    if staged.name == "files":
        with contextlib.suppress(OSError):
            staged.parent.rmdir()


@router.get("/ingest")
def ingest_form(request: Request, core: Core, caller: Ingester) -> Response:
    return _ingest_page(request, core, caller)


@router.post("/ingest")
async def ingest_submit(
    request: Request, core: Core, caller: Ingester,
    collection: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
    manifest: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        if not collection.strip():
            raise ValidationError("choose the collection to add the photos to")
        staged, manifest_path = await stage_upload(core, files or [], manifest)
        try:
            job_id = await run_in_threadpool(_jobs(request).submit, caller.principal, staged,
                                             collection.strip(), manifest_path)
        except BaseException:
            _discard(staged)
            raise
    except FaceledgerError as exc:
        return await run_in_threadpool(_ingest_page, request, core, caller, collection, exc)
    return RedirectResponse(f"/ingest/jobs/{job_id}", status_code=303)


@router.get("/ingest/jobs/{job_id}")
def job_page(request: Request, caller: JobReader, job_id: int) -> Response:
    job = _jobs(request).status(job_id)
    return render(request, "job.html", caller, job=job)
