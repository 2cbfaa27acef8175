"""The policy in force (every signed-in user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from faceledger import policy_service
from faceledger.api.deps import Caller, Core, need
from faceledger.policy import Policy

router = APIRouter(tags=["policy"])


@router.get("/policy", response_model=Policy)
def get_policy(core: Core, caller: Annotated[Caller, Depends(need("signed_in"))]
               ) -> dict[str, Any]:
    return policy_service.show_policy(core, caller.principal)
