"""ledger verify | show: check the chain and read it, newest first (auditors and admins)."""

from __future__ import annotations

from pathlib import Path

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import LedgerIntegrityError
from faceledger.governance import ledger_service, log_verify
from faceledger.governance.ledger_service import Filters
from faceledger.governance.ledger_summary import summary

ledger = typer.Typer(help="The hash-chained ledger (auditors and admins).", no_args_is_help=True)


@ledger.command("verify")
def ledger_verify(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", exists=True, dir_okay=False,
                                           help="A signed checkpoint kept elsewhere (from "
                                           "`ledger checkpoint --out`, a witness's state): the "
                                           "log must still hold it and extend it."),
    key: str | None = typer.Option(None, "--key", metavar="VKEY", help="The log key to trust "
                                   "(`faceledger ledger key`; default: this data home's)."),
    incremental: bool = typer.Option(False, "--incremental", help="Start from the newest "
                                     "checkpoint an earlier run proved (fast; a full run "
                                     "re-proves the entries before it)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check the chain, the Merkle log against every stored and witnessed checkpoint (and
    --checkpoint), and the records the ledger vouches for; name the first problem."""
    note = checkpoint.read_text(errors="replace")[:70_000] if checkpoint else None
    with open_app() as app:
        report = log_verify.verify_log(app, login(app, "ledger.verify"), checkpoint=note,
                                       vkey=key, incremental=incremental)
    out = report.as_dict()
    if as_json:
        emit_json(out)
    elif report.ok:
        typer.echo(f"OK: {out['entries']} entries walked ({out['mode']}), head "
                   f"{out['head_seq']} {out['head_hash']}\nMerkle root at {out['tree_size']}: "
                   f"{out['root_hash']}; checkpoints proven: {len(out['checkpoints_checked'])}")
        for label in out["checkpoints_checked"][-5:]:
            typer.echo(f"  {label}")
    if not report.ok:
        where = f" at entry {out['first_bad_seq']}" if out["first_bad_seq"] is not None else ""
        more = [p for p in out["record_problems"] if p != out["reason"]]
        extra = "".join(f"\n  also: {p}" for p in more)
        raise LedgerIntegrityError(f"ledger verification FAILED{where}: {out['reason']}{extra}",
                                   first_bad_seq=out["first_bad_seq"])


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
    from faceledger.cli import transparency

    transparency.register(ledger)  # checkpoint, key, proof, consistency, witness, …
    app.add_typer(ledger, name="ledger")
