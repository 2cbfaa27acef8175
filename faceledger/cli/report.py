"""report: the oversight report (since when, by whom, for what, with what result, misuse flags)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from faceledger.cli.common import login, open_app
from faceledger.oversight.render import FORMATS, render
from faceledger.oversight.report import build_report


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                 param_hint=option) from None


def period(date_from: str, date_to: str, timezone: str) -> tuple[datetime, datetime]:
    """[first day 00:00, day after the last 00:00) in the policy's timezone, as UTC."""
    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if last < first:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def report(
    date_from: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (inclusive)."),
    date_to: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (inclusive)."),
    user: str | None = typer.Option(None, "--user", help="Only this user's searches."),
    fmt: str = typer.Option("json", "--format", help="json | csv | html"),
    out: Path | None = typer.Option(None, "--out", help="Write to FILE instead of stdout."),
) -> None:
    """Oversight report: since when and by whom face search was used, for what, with what
    outcome, refused attempts, and misuse flags (auditors and admins). Days are in the
    policy's oversight timezone."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    with open_app() as app:
        login(app, "ledger.read")
        policy = app.policy()
        start, end = period(date_from, date_to, policy.oversight.timezone)
        with app.db.read() as s:
            rep = build_report(s, start=start, end=end, user=user, policy=policy)
    text = render(rep, fmt)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {fmt} report ({rep.total} searches, {len(rep.flags)} flags) to {out}",
               err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
