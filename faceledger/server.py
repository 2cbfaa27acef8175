"""The server: one FastAPI application wiring the REST API (/api/v1, faceledger.api) and the web UI
(/, faceledger.web), with the shared middleware and the one error-to-HTTP mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceledger import __version__
from faceledger.api.docs import OPENAPI_URL
from faceledger.core import Faceledger
from faceledger.errors import AuthenticationError, FaceledgerError
from faceledger.gallery.jobs import JobRunner
from faceledger.http.negotiation import wants_html
from faceledger.settings import Settings, get_settings

log = logging.getLogger("faceledger.api")

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """The security headers on every response (a header the response set itself is kept);
    static files may be cached privately for an hour. Plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs a task group and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                if static:
                    headers["cache-control"] = "private, max-age=3600"
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuse request bodies over the cap, counted as they stream (no trust in Content-Length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = (b'{"code":"request_too_large","message":"request body over the '
            + str(limit).encode() + b'-byte limit"}')
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def problem(exc: FaceledgerError) -> JSONResponse:
    response = JSONResponse(exc.to_dict(), status_code=exc.status)
    retry_after(exc, response)
    return response


def retry_after(exc: FaceledgerError, response: Response) -> Response:
    """A throttled answer (429) says when to try again."""
    if "retry_after" in exc.details:
        response.headers["retry-after"] = str(exc.details["retry_after"])
    return response


async def malformed_request(request: Request, exc: Exception) -> Response:
    """422 for a request FastAPI could not parse (a type, a range: ids are 1..2**63-1, see
    faceledger/http/ids.py): JSON for the API, the error page for a browser."""
    found = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in found]
    if wants_html(request):
        from faceledger.errors import ValidationError
        from faceledger.web.pages import error_page

        said = "; ".join(f"{e['loc'][-1] if e['loc'] else 'request'}: {e['msg']}" for e in errors)
        return error_page(request, ValidationError(f"malformed request ({said[:300]})"))
    return JSONResponse({"code": "invalid_request", "message": "malformed request",
                         "errors": errors}, status_code=422)


async def _checkpoint_timer(core: Faceledger) -> None:
    """Sign a ledger checkpoint whenever one is due (``checkpoints.due``)."""
    from starlette.concurrency import run_in_threadpool

    from faceledger.governance.checkpoints import maybe_checkpoint

    every = min(60.0, core.settings.checkpoint_every_minutes * 15)  # a quarter of the period
    while True:
        await asyncio.sleep(every)
        await run_in_threadpool(maybe_checkpoint, core)


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = Faceledger(settings)
        core.db.require_initialised()
        if load_models:
            core.pipeline()  # load once, at start-up, not per request
        app.state.core = core
        app.state.jobs = JobRunner(core)
        app.state.ready = True
        timer = asyncio.create_task(_checkpoint_timer(core))
        yield
        timer.cancel()
        app.state.jobs.shutdown()
        core.close()

    app = FastAPI(title="faceledger", version=__version__, lifespan=lifespan,
                  description="Accountable face search. Every search names a user, case, "
                  "purpose, offence and legal basis, and is written to a hash-chained ledger.",
                  docs_url=None, redoc_url=None, openapi_url=OPENAPI_URL)
    app.state.settings = settings
    app.state.ready = False

    @app.exception_handler(FaceledgerError)
    async def _faceledger_error(request: Request, exc: FaceledgerError) -> Response:
        if wants_html(request):
            if isinstance(exc, AuthenticationError):
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            from faceledger.web.pages import error_page

            return retry_after(exc, error_page(request, exc))
        return problem(exc)

    app.add_exception_handler(RequestValidationError, malformed_request)

    from faceledger.api.routes import register_api
    from faceledger.web.pages import register_web

    register_api(app)
    register_web(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    return app
