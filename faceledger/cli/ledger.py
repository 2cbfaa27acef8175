"""ledger verify | show: check the chain and read it, newest first (auditors and admins)."""

from __future__ import annotations

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import LedgerIntegrityError
from faceledger.governance import ledger_service
from faceledger.governance.ledger_service import Filters
from faceledger.governance.ledger_summary import summary

ledger = typer.Typer(help="The hash-chained ledger (auditors and admins).", no_args_is_help=True)


@ledger.command("verify")
def ledger_verify(as_json: bool = typer.Option(False, "--json")) -> None:
    """Check the whole chain and the records it vouches for (searches, reviews, outcomes,
    approvals, opt-outs); name the first bad entry or record."""
    with open_app() as app:
        report = ledger_service.verify_chain(app, login(app, "ledger.verify"))
    if as_json:
        emit_json(report.as_dict())
    elif report.ok:
        typer.echo(f"OK: {report.entries} entries, head {report.head_seq} {report.head_hash}")
    if not report.ok:
        where = f" at entry {report.first_bad_seq}" if report.first_bad_seq is not None else ""
        more = [p for p in report.record_problems if p != report.reason]
        extra = "".join(f"\n  also: {p}" for p in more)
        raise LedgerIntegrityError(f"ledger verification FAILED{where}: {report.reason}{extra}",
                                   first_bad_seq=report.first_bad_seq)


def line(entry: dict[str, object]) -> str:
    """time (UTC), seq, actor, kind, [case] and a one-line summary of the payload."""
    ts = str(entry["ts"])[:19].replace("T", " ") + "Z"
    case = f"[{entry['case']}] " if entry.get("case") else ""
    payload = entry.get("payload")
    text = summary(str(entry["kind"]), payload if isinstance(payload, dict) else None)
    return (f"{ts}  #{entry['seq']:<6} {entry.get('actor') or '-'!s:<12} "
            f"{entry['kind']!s:<22} {case}{text}")


@ledger.command("show")
def ledger_show(
    user: str | None = typer.Option(None, "--user", help="Only entries by this user."),
    case: str | None = typer.Option(None, "--case", help="Only entries for this case."),
    kind: str | None = typer.Option(None, "--kind", help="Kind prefix, e.g. search, ingest, "
                                    "user, signin."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="Entries to show."),
    reverse: bool = typer.Option(False, "--reverse", help="Oldest first, from the start of "
                                 "the ledger (default: newest first)."),
    before: int | None = typer.Option(None, "--before", min=1, metavar="SEQ",
                                      help="Only entries before this sequence number (the "
                                      "next page back)."),
    after: int | None = typer.Option(None, "--after", min=0, metavar="SEQ",
                                     help="Only entries after this sequence number."),
    as_json: bool = typer.Option(False, "--json", help="Full entries (payload, hashes) as a "
                                 "JSON list, in the same order."),
) -> None:
    """Read ledger entries, newest first: one line each (time UTC, seq, actor, kind, summary).
    A hint on stderr names the cursor for the next page."""
    with open_app() as app:
        pg = ledger_service.read_entries(app, login(app, "ledger.read"),
                                         Filters(user, case, kind), before=before,
                                         after=after, limit=limit, newest_first=not reverse)
    rows = pg.entries
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("No ledger entries match.", err=True)
    for r in rows:
        typer.echo(line(r))
    more = pg.newer if reverse else pg.older
    if rows and more is not None:
        flag = f"--after {more}" if reverse else f"--before {more}"
        typer.echo(f"(more entries: add {flag})", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger, name="ledger")
