from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from faceledger.api.deps import Caller, Core, need
from faceledger.api.uploads import stage_upload
from faceledger.jobs import JobRunner

router = APIRouter(tags=["ingest"])


def jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


@router.post("/ingest", status_code=202)
async def start_ingest(
    core: Core, request: Request, caller: Annotated[Caller, Depends(need("ingest"))],
    collection: Annotated[str, Form()],
    files: Annotated[list[UploadFile], File(description="Photos (JPEG, PNG, GIF, BMP, TIFF, WebP, Netpbm: "
                                               "recognised by content) and/or zip archives.")],
    manifest: Annotated[UploadFile | None, File(description="CSV or JSONL provenance.")] = None,
) -> dict[str, Any]:
    """Upload files (or a zip) with an optional manifest; ingest runs as a background job."""
    staged, manifest_path = await stage_upload(core, files, manifest)
    try:
        job_id = jobs(request).submit(caller.principal, staged, collection, manifest_path)
    except BaseException:
        shutil.rmtree(staged.parent, ignore_errors=True)
        raise
    return {"job_id": job_id, "status_url": f"/api/v1/ingest/jobs/{job_id}"}


@router.get("/ingest/jobs")
def list_jobs(request: Request, _: Annotated[Caller, Depends(need("jobs.read"))]
              ) -> list[dict[str, Any]]:
    """The 20 latest jobs; the faces-per-image fields of finished ones are null here (read
    the job itself for them)."""
    return jobs(request).recent()


@router.get("/ingest/jobs/{job_id}")
def job_status(job_id: int, request: Request,
               _: Annotated[Caller, Depends(need("jobs.read"))]) -> dict[str, Any]:
    """Progress (``stage``: waiting, loading models, processing, indexing, done), images added
    by faces found (``images_no_face``/``_one_face``/``_several_faces``, ``no_face_images`` naming
    up to 1,000), per-file ``rejections`` and ``warnings`` (manifest rows matching no file)."""
    return jobs(request).status(job_id)
