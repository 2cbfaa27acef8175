"""The ledger for auditors: chain verification, filters and a readable table of entries."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from faceledger import ledger
from faceledger.api.deps import Caller, Core, need
from faceledger.errors import ValidationError
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Auditor = Annotated[Caller, Depends(need("ledger.read"))]
PAGE = 200
BATCH = 1000
KINDS = ["search", "search.refused", "search.requested", "search.approved",
         "search.approval_refused", "review", "outcome", "signin", "user", "token",
         "collection", "ingest", "subject", "policy", "retention", "system"]


def _day(raw: str, label: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(f"{label} must be a date like 2024-05-31") from None


def summary(kind: str, p: dict[str, Any] | None) -> str:
    """One line a person can read; the full payload is one click away."""
    if p is None:
        return "(payload redacted)"
    if kind == "search":
        n = len(p.get("candidates") or [])
        return (f"{p.get('mode')} search, {p.get('purpose')} / {p.get('offence')}, top-{p.get('top_k')}"
                f" → {n} candidate{'s' if n != 1 else ''}; basis: {p.get('legal_basis')}")
    if kind == "search.requested":
        rules = ", ".join(p.get("approval_rules") or [])
        return (f"{p.get('mode')} search #{p.get('search_id')}, {p.get('purpose')} / "
                f"{p.get('offence')} → held for approval ({rules})")
    if kind in ("search.approved", "search.approval_refused"):
        verb = "approved" if kind == "search.approved" else "refused"
        return (f"search #{p.get('search_id')} of {p.get('requested_by')} {verb} by "
                f"{p.get('by')}: “{p.get('reason')}”")
    if kind == "outcome":
        note = f" — “{p['note']}”" if p.get("note") else ""
        return f"search #{p.get('search_id')}: {p.get('result')} on {p.get('date')}{note}"
    if kind == "search.refused":
        return f"refused ({p.get('code')}): {p.get('reason')}"
    if kind == "review":
        note = f" — “{p['note']}”" if p.get("note") else ""
        return f"{p.get('decision')} face {p.get('face_id')} of search {p.get('search')}{note}"
    if kind.startswith("signin"):
        return f"user {p.get('user')}" + (" (failed)" if kind == "signin.failed" else "")
    if kind == "user.created":
        return f"user {p.get('user')} ({p.get('role')}) by {p.get('by') or 'system'}"
    parts = []
    for k, v in p.items():
        if isinstance(v, list | dict):
            v = json.dumps(v, ensure_ascii=False)
        parts.append(f"{k}={v}")
    text = ", ".join(parts)
    return text if len(text) <= 160 else text[:157] + "…"


def _matches(ts: str, start: date | None, end: date | None) -> bool:
    day = ts[:10]
    return (start is None or day >= start.isoformat()) and (end is None or day <= end.isoformat())


@router.get("/ledger")
def ledger_page(request: Request, core: Core, caller: Auditor, user: str = "", case: str = "",
                kind: str = "", date_from: str = "", date_to: str = "", after: int | None = None
                ) -> Response:
    filters = {"user": user.strip(), "case": case.strip(), "kind": kind.strip(),
               "date_from": date_from.strip(), "date_to": date_to.strip()}
    error = None
    try:
        start, end = _day(date_from, "'from'"), _day(date_to, "'to'")
    except ValidationError as exc:
        start = end = None
        error = exc.message
    if start and end and end < start:
        start, end = end, start
    with core.db.read() as s:
        report = ledger.verify(s)
    filtered = any(filters.values())
    # Unfiltered, start with the newest page; filtered, search the chain from the start.
    cursor = after if after is not None else (0 if filtered else max(0, report.head_seq - PAGE))
    first = cursor
    rows: list[dict[str, Any]] = []
    more = False
    with core.db.read() as s:
        while len(rows) < PAGE:
            batch = ledger.read(s, user=filters["user"] or None, case_ref=filters["case"] or None,
                                kind=filters["kind"] or None, limit=BATCH, after_seq=cursor)
            for e in batch:
                cursor = e.seq
                if _matches(e.ts, start, end):
                    rows.append(ledger.entry_dict(e))
                    if len(rows) == PAGE:
                        more = e.seq < report.head_seq
                        break
            if len(batch) < BATCH:
                break
    for r in rows:
        r["summary"] = summary(r["kind"], r["payload"])
        r["payload_json"] = json.dumps(r["payload"], indent=2, ensure_ascii=False,
                                       sort_keys=True)
    return render(request, "ledger.html", caller, report=report.as_dict(), rows=rows,
                  filters=filters, kinds=KINDS, error=error, more=more,
                  next_after=rows[-1]["seq"] if rows else None, first=first,
                  prev_after=max(0, first - PAGE) if first > 0 and not filtered else None,
                  filtered=filtered, page=PAGE)
