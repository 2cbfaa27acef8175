"""The server-rendered web UI: registration, shared rendering helpers and the HTML error page.

Pages live in one module per area (auth, search, results, approvals, ingest, admin, subjects,
ledger, oversight, policy). Every page but
/login declares ``Depends(need(...))``; the templates only decide what to *show* (nav links),
never what is allowed. All script and style come from /static (the CSP forbids inline ones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceledger import __version__
from faceledger.accounts import websessions
from faceledger.accounts.users import Principal
from faceledger.errors import FaceChoiceRequired, FaceledgerError
from faceledger.http.deps import SESSION_COOKIE, Caller
from faceledger.http.negotiation import wants_html
from faceledger.roles import Role, allowed

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

# (permission, path, label): a link is shown to roles holding the permission.
NAV: list[tuple[str, str, str]] = [
    ("search", "/search", "Search"),
    ("searches.read", "/searches", "Searches"),
    ("reviews.write", "/reviews", "Reviews"),
    ("searches.approve", "/approvals", "Approvals"),
    ("ingest", "/ingest", "Ingest"),
    ("users.manage", "/admin", "Admin"),
    ("subjects.manage", "/subjects", "Subject rights"),
    ("ledger.read", "/ledger", "Ledger"),
    ("reports.read", "/oversight", "Oversight"),
]
# href -> a count shown after the link's label ("Reviews (3)"); filled by the page modules.
NAV_COUNTS: dict[str, Callable[[Request, Principal], int | None]] = {}
HOME: dict[str, str] = {Role.investigator: "/search", Role.supervisor: "/search",
                        Role.auditor: "/ledger", Role.admin: "/admin"}
STATUS_TITLES = {400: "Bad request", 401: "Sign-in needed", 403: "Not allowed",
                 404: "Not found", 405: "Not allowed here", 409: "A choice is needed",
                 413: "Too large", 422: "Cannot do that", 503: "Not ready"}
OUTCOME_LABELS = {"no_match": "No match", "lead_pursued": "Lead pursued",
                  "identification_confirmed": "Identification confirmed", "arrest": "Arrest",
                  "charge": "Charge", "no_further_action": "No further action"}
REVIEW_LABELS = {"unreviewed": "Unreviewed", "confirmed_once": "Confirmed once · needs second",
                 "confirmed": "Confirmed", "rejected": "Rejected", "disputed": "Disputed"}


def when(value: Any) -> str:
    """An ISO timestamp (or datetime) as 'YYYY-MM-DD HH:MM:SS UTC' (stored times are UTC)."""
    if value is None or value == "":
        return "—"
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if moment is None:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def safe_url(value: Any) -> bool:
    """Only http(s) URLs become links (a manifest could hold ``javascript:`` ones)."""
    return isinstance(value, str) and urlsplit(value.strip()).scheme.lower() in ("http", "https")


templates.env.filters["when"] = when
templates.env.filters["safe_url"] = safe_url
templates.env.globals["version"] = __version__
templates.env.globals["review_labels"] = REVIEW_LABELS
templates.env.globals["outcome_labels"] = OUTCOME_LABELS


def home_for(role: str) -> str:
    return HOME.get(role, "/search")


def nav_links(role: str | None) -> list[dict[str, str]]:
    if role is None:
        return []
    return [{"href": href, "label": label} for perm, href, label in NAV if allowed(role, perm)]


def render(request: Request, template: str, caller: Caller | Principal | None = None,
           status: int = 200, **context: Any) -> Response:
    """Render a page with the shared layout context (user, role, nav, CSRF token)."""
    principal = caller.principal if isinstance(caller, Caller) else caller
    csrf = caller.csrf if isinstance(caller, Caller) else context.pop("csrf", None)
    context.update(
        principal=principal, csrf=csrf or "",
        nav=[{**link, "count": NAV_COUNTS[link["href"]](request, principal)}
             if principal and link["href"] in NAV_COUNTS else link
             for link in nav_links(principal.role if principal else None)],
        current=request.url.path,
    )
    return templates.TemplateResponse(request, template, context, status_code=status)


def _session_caller(request: Request) -> Caller | None:
    """Best effort, for the error page's nav bar only (it grants nothing)."""
    sid = request.cookies.get(SESSION_COOKIE)
    core = getattr(request.app.state, "core", None)
    if not sid or core is None:
        return None
    found = websessions.session_of_quietly(core, sid)
    if found is None:
        return None
    return Caller(found[0], "session", found[1])


def error_page(request: Request, exc: FaceledgerError) -> Response:
    """An HTML page for a refused or failed request, with the error's own status code."""
    faces = exc.details.get("faces") if isinstance(exc, FaceChoiceRequired) else None
    caller = _session_caller(request)
    return render(request, "error.html", caller, status=exc.status,
                  title=STATUS_TITLES.get(exc.status, "Something went wrong"),
                  code=exc.code, message=exc.message, status_code=exc.status,
                  faces=faces or [], home=home_for(caller.principal.role) if caller else "/",
                  permission=exc.details.get("permission") if exc.status == 403 else None)


def register_web(app: FastAPI) -> None:
    """Mount /static and add the page routes (and an HTML 404/405 page for browsers)."""
    from faceledger.web import (
        admin_pages,
        approval_pages,
        auth_pages,
        ingest_pages,
        ledger_pages,
        oversight_pages,
        policy_pages,
        results_pages,
        review_pages,
        search_pages,
        subject_pages,
    )

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (auth_pages, search_pages, results_pages, approval_pages, admin_pages,
                   ledger_pages, oversight_pages, policy_pages, review_pages):
        app.include_router(module.router)
    # Starlette parses at most 1000 files per form by default; uploads may hold more.
    max_files = app.state.settings.max_upload_files + 1  # + the manifest
    app.include_router(ingest_pages.router,
                       form_limits={"max_files": max_files, "max_fields": 100})
    # The erasure confirmation carries one field per face found (find_faces returns <= 500).
    app.include_router(subject_pages.router, form_limits={"max_fields": 2000})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request) and 400 <= exc.status_code < 500:
            message = {404: "there is no such page",
                       405: "this page does not accept that kind of request"}.get(
                exc.status_code, str(exc.detail))
            err = FaceledgerError(message)
            err.status = exc.status_code
            err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                          "bad_request")
            return error_page(request, err)
        return await http_exception_handler(request, exc)
