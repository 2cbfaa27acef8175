"""Users and tokens (admins manage; auditors may list)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger.accounts import service as account_services
from faceledger.api.schemas_accounts import (
    MeOut,
    TokenOut,
    UserCreatedOut,
    UserDisabledOut,
    UserOut,
)
from faceledger.http.deps import Caller, Core, need
from faceledger.roles import Role

router = APIRouter(tags=["users"])


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    role: Role
    password: str | None = Field(default=None, min_length=10, max_length=200)
    unit: str | None = Field(default=None, max_length=200)


@router.get("/me", response_model=MeOut)
def me(caller: Annotated[Caller, Depends(need("signed_in"))]) -> dict[str, Any]:
    p = caller.principal
    return {"user": p.name, "role": p.role, "via": caller.via}


@router.get("/users", response_model=list[UserOut])
def list_users(core: Core, caller: Annotated[Caller, Depends(need("users.read"))]
               ) -> list[dict[str, Any]]:
    return account_services.user_list(core, caller.principal)


@router.post("/users", status_code=201, response_model=UserCreatedOut)
def add_user(body: UserIn, core: Core, caller: Annotated[Caller, Depends(need("users.manage"))]
             ) -> dict[str, Any]:
    """Create a user; the API token is returned once and stored only as a hash."""
    return account_services.add_user(core, caller.principal, body.name, body.role.value,
                                     password=body.password, unit=body.unit)


@router.post("/users/{name}/disable", response_model=UserDisabledOut)
def disable_user(name: str, core: Core,
                 caller: Annotated[Caller, Depends(need("users.manage"))]) -> dict[str, Any]:
    return account_services.disable_user(core, caller.principal, name)


@router.post("/users/{name}/token", response_model=TokenOut)
def rotate_token(name: str, core: Core,
                 caller: Annotated[Caller, Depends(need("users.manage"))]) -> dict[str, Any]:
    """Revoke the user's tokens and return a new one."""
    return account_services.rotate_token(core, caller.principal, name)
