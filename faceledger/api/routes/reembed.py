"""Re-embedding the gallery with another face model: start a background job, follow it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from faceledger.gallery.reembed import reembed_overview, reembed_status
from faceledger.http.deps import Caller, Core, need
from faceledger.http.ids import Id
from faceledger.http.jobs import job_runner

router = APIRouter(tags=["models"])


class ReembedIn(BaseModel):
    model: str = Field(max_length=64, description="The registered face model to embed with.")
    collection: str | None = Field(default=None, max_length=120,
                                   description="Only this collection (default: all of them).")


class ReembedJobOut(BaseModel):
    id: int
    model: str
    from_model: str
    collection: str | None
    status: str = Field(description="running | done | interrupted | failed")
    total: int = Field(description="Images the model had still to embed when the job started.")
    processed: int
    faces: int
    failed: int = Field(description="Images whose original could not be read or decoded.")
    withheld: int = Field(description="Faces of people who opted out, not stored.")
    switched: bool = Field(description="Whether this job made its model the active one.")
    started_at: str
    finished_at: str | None


class ReembedStarted(ReembedJobOut):
    status_url: str


class ReembedOverview(BaseModel):
    active_model: str
    configured_model: str
    models: list[str]
    jobs: list[ReembedJobOut]


@router.post("/reembed", status_code=202, response_model=ReembedStarted)
def start(body: ReembedIn, request: Request,
          caller: Annotated[Caller, Depends(need("index.manage"))]) -> dict[str, Any]:
    """Re-embed the stored originals with another model in the background. Searches use the
    active model until every image is done; then the new model becomes active (ledgered)."""
    job = job_runner(request).submit_reembed(caller.principal, body.model, body.collection)
    return {**job, "status_url": f"/api/v1/reembed/jobs/{job['id']}"}


@router.get("/reembed", response_model=ReembedOverview)
def overview(core: Core, caller: Annotated[Caller, Depends(need("jobs.read"))]
             ) -> dict[str, Any]:
    """The active model, the configured default, the models offered and the latest jobs."""
    return reembed_overview(core, caller.principal)


@router.get("/reembed/jobs/{job_id}", response_model=ReembedJobOut)
def job(job_id: Id, core: Core, caller: Annotated[Caller, Depends(need("jobs.read"))]
        ) -> dict[str, Any]:
    """A re-embedding job's progress (processed of total) and whether it switched the model."""
    return reembed_status(core, caller.principal, job_id)
