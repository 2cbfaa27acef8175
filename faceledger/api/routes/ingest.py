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
    files: Annotated[list[UploadFile], File(description="Photos and/or zip archives.")],
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
    return jobs(request).recent()


@router.get("/ingest/jobs/{job_id}")
def job_status(job_id: int, request: Request,
               _: Annotated[Caller, Depends(need("jobs.read"))]) -> dict[str, Any]:
    """Progress and per-file rejections."""
    return jobs(request).status(job_id)
