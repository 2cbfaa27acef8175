"""Shared CLI plumbing: the app context, authentication, output, error mapping (one place)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from faceledger.accounts import service as account_services
from faceledger.accounts.users import Principal
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError
from faceledger.roles import require
from faceledger.settings import get_settings

EXIT_CODES = {400: 1, 401: 3, 403: 3, 404: 4, 409: 5, 413: 6, 422: 1, 500: 1, 503: 7}


@contextmanager
def open_app() -> Iterator[Faceledger]:
    app = Faceledger(get_settings())
    try:
        yield app
    finally:
        app.close()


def login(app: Faceledger, permission: str | None = None) -> Principal:
    """Authenticate with FACELEDGER_TOKEN. The services check their own permissions; a
    ``permission`` here is only a coarse gate before slow work (reading files, prompting)."""
    app.db.require_initialised()
    principal = account_services.authenticate_token(app, app.settings.token)
    if permission:
        require(principal.role, permission, principal.name)
    return principal


def emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def fail(exc: FaceledgerError, as_json: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps({"error": exc.to_dict()}, default=str), err=True)
    else:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        faces = exc.details.get("faces")
        if faces:
            typer.echo("Choose one with --face N (faces are numbered 1, 2, … left to right):",
                       err=True)
            for f in faces:
                typer.echo(f"  face {f['face']}: box {f['box']} score {f['detector_score']} "
                           f"size {f['face_px']}px", err=True)
    sys.exit(EXIT_CODES.get(exc.status, 1))
