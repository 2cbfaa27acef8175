"""Users and tokens (admins manage; auditors may list)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from faceledger import accounts
from faceledger.api.deps import Caller, Core, need
from faceledger.passwords import hash_password
from faceledger.roles import Role

router = APIRouter(tags=["users"])


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    role: Role
    password: str | None = Field(default=None, min_length=10, max_length=200)
    unit: str | None = Field(default=None, max_length=200)


@router.get("/me")
def me(caller: Annotated[Caller, Depends(need("collections.read"))]) -> dict[str, Any]:
    p = caller.principal
    return {"user": p.name, "role": p.role, "via": caller.via}


@router.get("/users")
def list_users(core: Core, _: Annotated[Caller, Depends(need("users.read"))]
               ) -> list[dict[str, Any]]:
    with core.db.read() as s:
        return [{"name": u.name, "role": u.role, "disabled": u.disabled,
                 "created_at": u.created_at.isoformat(), "has_password": bool(u.password_hash)}
                for u in accounts.list_users(s)]


@router.post("/users", status_code=201)
def add_user(body: UserIn, core: Core, caller: Annotated[Caller, Depends(need("users.manage"))]
             ) -> dict[str, Any]:
    """Create a user; the API token is returned once and stored only as a hash."""
    pw = hash_password(body.password) if body.password else None
    with core.db.write() as s:
        user, token = accounts.create_user(s, body.name, body.role.value,
                                           actor=caller.principal, password_hash=pw,
                                           unit=body.unit)
    return {"user": user.name, "role": user.role, "token": token}


@router.post("/users/{name}/disable")
def disable_user(name: str, core: Core,
                 caller: Annotated[Caller, Depends(need("users.manage"))]) -> dict[str, Any]:
    with core.db.write() as s:
        accounts.disable_user(s, name, actor=caller.principal)
    return {"user": name, "disabled": True}


@router.post("/users/{name}/token")
def rotate_token(name: str, core: Core,
                 caller: Annotated[Caller, Depends(need("users.manage"))]) -> dict[str, Any]:
    """Revoke the user's tokens and return a new one."""
    with core.db.write() as s:
        token = accounts.rotate_token(s, name, actor=caller.principal)
    return {"user": name, "token": token}
