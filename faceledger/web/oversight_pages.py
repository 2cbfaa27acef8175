"""The auditors' oversight dashboard: the oversight report for a period (and optionally one
user), rendered in the page, with links to download it as HTML, CSV or JSON."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import typer
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select

from faceledger.api.deps import Caller, Core, need
from faceledger.cli.report import period
from faceledger.db.schema import User
from faceledger.errors import FaceledgerError, ValidationError
from faceledger.oversight.render import FORMATS, render_html_fragment
from faceledger.oversight.report import build_report
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Overseer = Annotated[Caller, Depends(need("reports.read"))]
DEFAULT_DAYS = 30


def _day(raw: str, label: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"bad period: '{label}' must be a date like 2024-05-31, not "
                              f"{raw[:20]!r}") from None


@router.get("/oversight")
def oversight(request: Request, core: Core, caller: Overseer, date_from: str = "",
              date_to: str = "", user: str = "") -> Response:
    policy = core.policy()
    today = datetime.now(ZoneInfo(policy.oversight.timezone)).date()
    values = {"from": date_from.strip() or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
              "to": date_to.strip() or today.isoformat(), "user": user.strip()}
    with core.db.read() as s:
        users = list(s.execute(select(User.name).order_by(User.name)).scalars())
    report_html: Markup | None = None
    error: FaceledgerError | None = None
    try:
        if _day(values["to"], "to") < _day(values["from"], "from"):
            raise ValidationError("bad period: 'to' is before 'from'")
        try:
            start, end = period(values["from"], values["to"], policy.oversight.timezone)
        except typer.BadParameter as exc:
            raise ValidationError(f"bad period: {exc.message}") from None
        with core.db.read() as s:
            rep = build_report(s, start=start, end=end, user=values["user"] or None,
                               policy=policy)
        # The fragment escapes every value it prints and carries no style or script.
        report_html = Markup(render_html_fragment(rep))
    except FaceledgerError as exc:
        error = exc
    query = {"from": values["from"], "to": values["to"]}
    if values["user"]:
        query["user"] = values["user"]
    downloads = [(fmt, "/api/v1/reports/oversight?" + urlencode({**query, "format": fmt}))
                 for fmt in ("html", "csv", "json") if fmt in FORMATS]
    return render(request, "oversight.html", caller, status=error.status if error else 200,
                  values=values, users=users, report_html=report_html,
                  error=error.message if error else None, downloads=downloads,
                  timezone=policy.oversight.timezone, default_days=DEFAULT_DAYS)
