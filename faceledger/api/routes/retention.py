"""Retention (admins): purge probes and result sets past the policy's retention periods."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger.http.deps import Caller, Core, need
from faceledger.oversight import retention

router = APIRouter(tags=["retention"])


class RetentionOut(BaseModel):
    probes: list[int] = Field(description="searches whose probe was purged")
    results: list[int] = Field(description="searches whose result set was purged")
    unauthorised: list[int] = Field(description="urgent searches never authorised: purged")


@router.post("/retention/run", response_model=RetentionOut)
def run_retention(core: Core, caller: Annotated[Caller, Depends(need("retention.run"))]
                  ) -> dict[str, list[int]]:
    return retention.run_retention(core, caller.principal)
