"""The policy in force (every signed-in user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from faceledger.governance.policy import Policy
from faceledger.http.deps import Caller, Core, need
from faceledger.oversight import policy_service

router = APIRouter(tags=["policy"])


@router.get("/policy", response_model=Policy)
def get_policy(core: Core, caller: Annotated[Caller, Depends(need("signed_in"))]
               ) -> dict[str, Any]:
    return policy_service.show_policy(core, caller.principal)
