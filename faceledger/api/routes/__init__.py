"""REST routes, one module per area, all under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI

from faceledger.api.routes import (
    collections,
    faces,
    health,
    ingest,
    ledger,
    models,
    oversight,
    policy,
    reembed,
    reports,
    retention,
    searches,
    subjects,
    transparency,
    users,
)

PREFIX = "/api/v1"


def register_api(app: FastAPI) -> None:
    from fastapi.staticfiles import StaticFiles

    from faceledger.api.docs import SWAGGER_UI_DIR

    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI_DIR), name="swagger")
    app.include_router(health.router)
    for module in (collections, searches, faces, ledger, users, oversight, subjects,
                   retention, policy, reports, models, transparency, reembed):
        app.include_router(module.router, prefix=PREFIX)
    # Starlette parses at most 1000 files per form by default; ingest uploads may hold more.
    app.include_router(ingest.router, prefix=PREFIX, form_limits={
        "max_files": app.state.settings.max_upload_files + 1, "max_fields": 100})
