"""Sign-in, sign-out and the role-dependent landing page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger.accounts import websessions
from faceledger.errors import AuthenticationError, PermissionDeniedError, TooManyAttemptsError
from faceledger.http.deps import SESSION_COOKIE, Caller, Core, client_address, need
from faceledger.web.pages import home_for, render

router = APIRouter(include_in_schema=False)
Anyone = Annotated[Caller, Depends(need("signed_in"))]  # every role holds it


def safe_next(target: str | None) -> str | None:
    """A local path to go back to after sign-in, or None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return None
    if target.split("?")[0].rstrip("/") in ("/login", "/logout"):
        return None
    return target


def _check_origin(request: Request) -> None:
    """Refuse cross-site sign-in posts (login CSRF); browsers send Origin on form posts."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return
    o = urlsplit(origin)
    if (o.scheme, o.netloc) != (request.url.scheme, request.url.netloc):
        raise PermissionDeniedError("sign-in from another site refused", reason="origin")


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    return render(request, "login.html", None, next=safe_next(next) or "", name="", error=None)


@router.post("/login")
def login(request: Request, core: Core, name: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    _check_origin(request)
    try:  # a failed attempt is counted (and committed) by the service
        sid, _csrf = websessions.open_session(core, name, password, client_address(request))
    except (AuthenticationError, TooManyAttemptsError) as failure:
        page = render(request, "login.html", None, status=failure.status,
                      next=safe_next(next) or "", name=name.strip()[:120],
                      error=failure.message)
        if "retry_after" in failure.details:
            page.headers["retry-after"] = str(failure.details["retry_after"])
        return page
    response = RedirectResponse(safe_next(next) or "/", status_code=303)
    response.set_cookie(SESSION_COOKIE, sid, max_age=int(core.settings.session_hours * 3600),
                        path="/", secure=core.settings.cookie_secure, httponly=True,
                        samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, core: Core, caller: Anyone) -> Response:
    websessions.close_session(core, caller.principal, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=core.settings.cookie_secure,
                           httponly=True, samesite="strict")
    return response


@router.get("/")
def index(caller: Anyone) -> Response:
    return RedirectResponse(home_for(caller.principal.role), status_code=303)
