"""FastAPI dependencies: the app context, who is calling, and what they may do.

Routes declare ``Depends(need("permission"))`` and nothing else about auth. A caller is a bearer
token (API clients) or a session cookie (the web UI); cookie callers must also present the
session's CSRF token on every state-changing request."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from faceledger.accounts import service as account_services
from faceledger.accounts import websessions
from faceledger.core import Faceledger
from faceledger.errors import AuthenticationError, PermissionDeniedError
from faceledger.roles import PERMISSIONS, require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal

SESSION_COOKIE = "faceledger_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_core(request: Request) -> Faceledger:
    core: Faceledger = request.app.state.core
    return core


Core = Annotated[Faceledger, Depends(get_core)]


@dataclass(frozen=True)
class Caller:
    principal: Principal
    via: str  # "token" | "session"
    csrf: str | None = None


async def _csrf_from_request(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


def client_address(request: Request) -> str | None:
    """The peer's address, the key of per-address sign-in throttling (no proxy headers are
    trusted: behind a reverse proxy every client shares the proxy's address)."""
    return request.client.host if request.client else None


# Declares the bearer scheme in the OpenAPI document (so /docs offers "Authorize"); the header
# itself is read below, beside the session cookie.
_BEARER = HTTPBearer(auto_error=False, description="An API token: `faceledger users token NAME`")


async def optional_caller(
    request: Request, core: Core,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Caller | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return Caller(account_services.authenticate_token(core, auth[7:].strip(),
                                                          client_address(request)), "token")
    found = websessions.session_of(core, request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    principal, csrf = found
    if request.method not in SAFE_METHODS:
        sent = await _csrf_from_request(request)
        if not sent or not hmac.compare_digest(sent, csrf):
            raise PermissionDeniedError("missing or wrong CSRF token", reason="csrf")
    return Caller(principal, "session", csrf)


async def current_caller(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
    if caller is None:
        raise AuthenticationError("sign in, or send 'Authorization: Bearer <token>'")
    return caller


def need(permission: str) -> Callable[..., Caller]:
    """Dependency factory: the caller must hold ``permission`` (see faceledger.roles)."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        require(caller.principal.role, permission, caller.principal.name)
        return caller

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency
