"""report: the oversight report (since when, by whom, for what, with what result, misuse flags)."""

from __future__ import annotations

from pathlib import Path

import typer

from faceledger.accounts.users import Principal
from faceledger.cli.common import login, open_app
from faceledger.core import Faceledger
from faceledger.errors import ValidationError
from faceledger.oversight.period import DEFAULT_DAYS
from faceledger.oversight.render import FORMATS, render
from faceledger.oversight.service import PeriodReport, oversight_report


def _report(app: Faceledger, principal: Principal, date_from: str | None,
            date_to: str | None, user: str | None) -> PeriodReport:
    try:
        return oversight_report(app, principal, date_from, date_to, user)
    except ValidationError as exc:
        if exc.details.get("field") not in ("from", "to"):
            raise
        raise _bad_period(exc) from None


def _bad_period(exc: ValidationError) -> typer.BadParameter:
    """The service's period refusal, in the command's own words (--from, --to)."""
    hint = "--from" if exc.details.get("field") == "from" else "--to"
    return typer.BadParameter(exc.message.removeprefix("bad period: ").replace(
        "'to'", "--to").replace("'from'", "--from"), param_hint=hint)


def report(
    date_from: str | None = typer.Option(
        None, "--from", help=f"First day, YYYY-MM-DD (inclusive). Default: {DEFAULT_DAYS} days "
        "before --to, so that with neither option the report covers the last "
        f"{DEFAULT_DAYS} days."),
    date_to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (inclusive). "
                                       "Default: today."),
    user: str | None = typer.Option(None, "--user", help="Only this user's searches."),
    fmt: str = typer.Option("json", "--format", help="json | csv | html"),
    out: Path | None = typer.Option(None, "--out", help="Write to FILE instead of stdout."),
) -> None:
    """Oversight report: since when and by whom face search was used, for what, with what
    outcome, refused attempts, and misuse flags (auditors and admins). Days are in the
    policy's oversight timezone; without --from/--to it covers the last 90 days, up to and
    including today, and says so in its header."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    with open_app() as app:
        done = _report(app, login(app, "ledger.read"), date_from, date_to, user)
    rep, p = done.report, done.period
    text = render(rep, fmt)
    if p.label:
        typer.echo(f"Period {p.first} to {p.last} ({p.label}).", err=True)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {fmt} report ({rep.total} searches, {len(rep.flags)} flags) to {out}",
               err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
