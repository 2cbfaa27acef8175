from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel

from faceledger.api.schemas_gallery import JobOut
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.jobs import job_runner, submit_upload

router = APIRouter(tags=["ingest"])


class IngestStarted(BaseModel):
    job_id: int
    status_url: str


@router.post("/ingest", status_code=202, response_model=IngestStarted)
async def start_ingest(
    core: Core, request: Request, caller: Annotated[Caller, Depends(need("ingest"))],
    collection: Annotated[str, Form()],
    files: Annotated[list[UploadFile], File(description="Photos (JPEG, PNG, GIF, BMP, TIFF, WebP, Netpbm: "
                                               "recognised by content) and/or zip archives.")],
    manifest: Annotated[UploadFile | None, File(description="CSV or JSONL provenance.")] = None,
) -> dict[str, Any]:
    """Upload files (or a zip) with an optional manifest; ingest runs as a background job."""
    job_id = await submit_upload(request, core, caller.principal, collection, files, manifest)
    return {"job_id": job_id, "status_url": f"/api/v1/ingest/jobs/{job_id}"}


@router.get("/ingest/jobs", response_model=list[JobOut])
def list_jobs(request: Request, caller: Annotated[Caller, Depends(need("jobs.read"))]
              ) -> list[dict[str, Any]]:
    """The 20 latest jobs; the faces-per-image fields of finished ones are null here (read
    the job itself for them)."""
    return job_runner(request).recent(caller.principal)


@router.get("/ingest/jobs/{job_id}", response_model=JobOut)
def job_status(job_id: Id, request: Request,
               caller: Annotated[Caller, Depends(need("jobs.read"))]) -> dict[str, Any]:
    """Progress (``stage``: waiting, loading models, processing, indexing, done), images added
    by faces found (``images_no_face``/``_one_face``/``_several_faces``, ``no_face_images`` naming
    up to 1,000), per-file ``rejections`` and ``warnings`` (manifest rows matching no file)."""
    return job_runner(request).status(caller.principal, job_id)
