"""Oversight reports (auditors and admins)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from typer import BadParameter

from faceledger.api.deps import Caller, Core, need
from faceledger.cli.report import period
from faceledger.errors import ValidationError
from faceledger.oversight.render import render_csv, render_html, render_json
from faceledger.oversight.report import build_report

router = APIRouter(tags=["oversight"])


@router.get("/reports/oversight", response_class=Response)
def oversight_report(
    core: Core, _: Annotated[Caller, Depends(need("reports.read"))],
    date_from: Annotated[str, Query(alias="from", description="YYYY-MM-DD")],
    date_to: Annotated[str, Query(alias="to", description="YYYY-MM-DD, inclusive")],
    user: str | None = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    """Who searched, when, how often, for what, with what result; misuse flags with evidence."""
    policy = core.policy()
    try:
        start, end = period(date_from, date_to, policy.oversight.timezone)
    except BadParameter as exc:
        raise ValidationError(f"bad period: {exc.message}") from None
    with core.db.read() as s:
        rep = build_report(s, start=start, end=end, user=user, policy=policy)
    if format == "csv":
        return Response(render_csv(rep), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="oversight-{date_from}-{date_to}.csv"'})
    if format == "html":
        return HTMLResponse(render_html(rep), headers={
            "content-disposition": f'attachment; filename="oversight-{date_from}-{date_to}.html"'})
    return JSONResponse(content=json.loads(render_json(rep)))
