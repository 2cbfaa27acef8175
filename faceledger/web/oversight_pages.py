"""The auditors' oversight dashboard: the oversight report for a period (and optionally one
user), rendered in the page, with links to download it as HTML, CSV or JSON."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from faceledger.http.deps import Caller, Core, need
from faceledger.oversight import service
from faceledger.oversight.period import DEFAULT_DAYS
from faceledger.oversight.render import FORMATS, render_html_fragment
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Overseer = Annotated[Caller, Depends(need("reports.read"))]


@router.get("/oversight")
def oversight(request: Request, core: Core, caller: Overseer, date_from: str = "",
              date_to: str = "", user: str = "") -> Response:
    values = {"from": date_from.strip(), "to": date_to.strip(), "user": user.strip()[:120]}
    board = service.dashboard(core, caller.principal, values["from"], values["to"],
                              values["user"])
    report_html: Markup | None = None
    error = board.error
    if board.result is not None:
        p = board.result.period
        values["from"], values["to"] = p.first.isoformat(), p.last.isoformat()
        # The fragment escapes every value it prints and carries no style or script.
        report_html = Markup(render_html_fragment(board.result.report))
    else:
        last = board.today.isoformat()
        values["from"], values["to"] = values["from"] or last, values["to"] or last
    query = {"from": values["from"], "to": values["to"]}
    if values["user"]:
        query["user"] = values["user"]
    downloads = [(fmt, "/api/v1/reports/oversight?" + urlencode({**query, "format": fmt}))
                 for fmt in ("html", "csv", "json") if fmt in FORMATS]
    return render(request, "oversight.html", caller, status=error.status if error else 200,
                  values=values, users=board.users, report_html=report_html,
                  error=error.message if error else None, downloads=downloads,
                  timezone=board.timezone, default_days=DEFAULT_DAYS)
