"""Response models of the account routes: who am I, users and tokens."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MeOut(BaseModel):
    user: str
    role: str
    via: str = Field(description="token or session")


class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool
    created_at: str = Field(description="ISO 8601 UTC")
    has_password: bool = Field(description="whether the user can sign in to the web UI")
    locked: bool = Field(default=False, description="locked out after failed sign-ins "
                         "(an admin unlocks: `faceledger users unlock NAME`)")


class UserCreatedOut(BaseModel):
    user: str
    role: str
    token: str = Field(description="the API token, shown this once")


class UserDisabledOut(BaseModel):
    user: str
    disabled: bool


class TokenOut(BaseModel):
    user: str
    token: str = Field(description="the new API token, shown this once")
