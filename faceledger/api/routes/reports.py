"""Oversight reports (auditors and admins)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from faceledger.api.deps import Caller, Core, need
from faceledger.oversight.period import DEFAULT_DAYS, resolve
from faceledger.oversight.render import render_csv, render_html, render_json
from faceledger.oversight.report import build_report

router = APIRouter(tags=["oversight"])


@router.get("/reports/oversight", response_class=Response)
def oversight_report(
    core: Core, _: Annotated[Caller, Depends(need("reports.read"))],
    date_from: Annotated[str | None, Query(alias="from", max_length=10, description=(
        f"YYYY-MM-DD; default: {DEFAULT_DAYS} days up to 'to'"))] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10, description=(
        "YYYY-MM-DD, inclusive; default: today"))] = None,
    user: Annotated[str | None, Query(max_length=120)] = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    """Who searched, when, how often, for what, with what result; misuse flags with evidence.
    Without from/to: the last 90 days, in the policy's oversight timezone."""
    policy = core.policy()
    p = resolve(date_from, date_to, policy.oversight.timezone)
    date_from, date_to = p.first.isoformat(), p.last.isoformat()
    with core.db.read() as s:
        rep = build_report(s, start=p.start, end=p.end, user=user, policy=policy,
                           period_label=p.label)
    if format == "csv":
        return Response(render_csv(rep), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="oversight-{date_from}-{date_to}.csv"'})
    if format == "html":
        return HTMLResponse(render_html(rep), headers={
            "content-disposition": f'attachment; filename="oversight-{date_from}-{date_to}.html"'})
    return JSONResponse(content=json.loads(render_json(rep)))
