"""Uploading photos (or zip archives) into a collection, and following the ingest job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError
from faceledger.gallery.collections import collection_list
from faceledger.gallery.ingest import collection_name
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.jobs import job_runner, submit_upload
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Ingester = Annotated[Caller, Depends(need("ingest"))]
JobReader = Annotated[Caller, Depends(need("jobs.read"))]


def _ingest_page(request: Request, core: Faceledger, caller: Caller, collection: str = "",
                 error: FaceledgerError | None = None) -> Response:
    collections = collection_list(core, caller.principal)
    if not collection and len(collections) == 1:
        collection = collections[0]["name"]  # the only choice: preselect it
    return render(request, "ingest.html", caller, status=error.status if error else 200,
                  collections=collections, jobs=job_runner(request).recent(caller.principal, 15),
                  selected=collection, error=error.message if error else None,
                  max_files=core.settings.max_upload_files,
                  max_mb=core.settings.max_upload_bytes // (1024 * 1024))


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
        # the service's rule, applied before the upload is staged (prepare applies it again)
        name = collection_name(collection)
        job_id = await submit_upload(request, core, caller.principal, name, files or [],
                                     manifest)
    except FaceledgerError as exc:
        return await run_in_threadpool(_ingest_page, request, core, caller, collection, exc)
    return RedirectResponse(f"/ingest/jobs/{job_id}", status_code=303)


@router.get("/ingest/jobs/{job_id}")
def job_page(request: Request, caller: JobReader, job_id: Id) -> Response:
    job = job_runner(request).status(caller.principal, job_id)
    return render(request, "job.html", caller, job=job)
