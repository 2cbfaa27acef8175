"""Liveness, readiness, API docs (Swagger UI 5 from the installed fastapi-offline, no CDN)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from faceledger import __version__
from faceledger.api.schemas_gallery import HealthOut, ReadyOut

router = APIRouter(tags=["health"])
PUBLIC = True  # no route here needs a caller


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_class=JSONResponse,
            responses={200: {"model": ReadyOut, "description": "ready"},
                       503: {"model": ReadyOut, "description": "still starting"}})
def ready(request: Request) -> JSONResponse:
    ok = bool(getattr(request.app.state, "ready", False))
    body: dict[str, Any] = {"ready": ok}
    if ok:
        core = request.app.state.core
        body["model"] = core.model_id
        body["models_loaded"] = core._pipeline is not None
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    from faceledger.api.docs import docs_html

    return HTMLResponse(docs_html())
