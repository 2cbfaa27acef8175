"""Oversight reports (auditors and admins)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from faceledger.http.deps import Caller, Core, need
from faceledger.oversight import service
from faceledger.oversight.period import DEFAULT_DAYS
from faceledger.oversight.render import render_csv, render_html, render_json

router = APIRouter(tags=["oversight"])


class OversightReportOut(BaseModel):
    """The JSON report's shape (faceledger.oversight.report.OversightReport.as_dict)."""

    period: dict[str, Any] = Field(description="start, end (exclusive), timezone, working hours/days, label")
    user: str | None = Field(description="the user the report is limited to, if any")
    generated_at: str
    answers: list[str] = Field(description="plain sentences: since when, by whom, role played, charged")
    usage: dict[str, Any]
    users: list[dict[str, Any]] = Field(description="per user: first/last search, searches, cases")
    per_day: dict[str, Any]
    per_hour: dict[str, int]
    per_purpose: dict[str, int]
    per_offence: dict[str, int]
    per_case: dict[str, int]
    outcomes: dict[str, Any] = Field(description="counts, rates, no_outcome_share, role_played, charged")
    refused_attempts: Any
    refused_by_rule: dict[str, int]
    signin_failures: Any
    approvals: Any
    flags: list[dict[str, Any]] = Field(description="misuse flags, each with its evidence")
    searches: list[dict[str, Any]]
    transparency_log: dict[str, Any] | None = Field(None, description=(
        "the ledger's public key, latest signed checkpoint, witnesses (when each last "
        "co-signed) and warnings (no witness, a witness silent for over a day)"))


REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The report: JSON (default), CSV or a self-contained HTML file",
    "model": OversightReportOut,
    "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}}}}}


@router.get("/reports/oversight", response_class=Response, responses=REPORT_RESPONSES)
def oversight_report(
    core: Core, caller: Annotated[Caller, Depends(need("reports.read"))],
    date_from: Annotated[str | None, Query(alias="from", max_length=10, description=(
        f"YYYY-MM-DD; default: {DEFAULT_DAYS} days up to 'to'"))] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10, description=(
        "YYYY-MM-DD, inclusive; default: today"))] = None,
    user: Annotated[str | None, Query(max_length=120)] = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    """Who searched, when, how often, for what, with what result; misuse flags with evidence.
    Without from/to: the last 90 days, in the policy's oversight timezone."""
    done = service.oversight_report(core, caller.principal, date_from, date_to, user)
    rep, first, last = done.report, done.period.first.isoformat(), done.period.last.isoformat()
    if format == "csv":
        return Response(render_csv(rep), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="oversight-{first}-{last}.csv"'})
    if format == "html":
        return HTMLResponse(render_html(rep), headers={
            "content-disposition": f'attachment; filename="oversight-{first}-{last}.html"'})
    return JSONResponse(content=json.loads(render_json(rep)))
