"""search, ledger, models."""

from __future__ import annotations

from pathlib import Path

import typer

from faceledger import ledger as ledger_mod
from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import LedgerIntegrityError, ValidationError
from faceledger.search import SearchRequest, run_search

ledger = typer.Typer(help="The hash-chained ledger (auditors and admins).", no_args_is_help=True)


def search(
    photo: Path = typer.Argument(..., help="The probe photo."),
    case: str | None = typer.Option(None, "--case", help="Case reference (required)."),
    purpose: str | None = typer.Option(None, "--purpose", help="Purpose (required)."),
    offence: str | None = typer.Option(None, "--offence", help="Offence type (required)."),
    legal_basis: str | None = typer.Option(None, "--legal-basis", help="Legal basis (required)."),
    face: int | None = typer.Option(None, "--face", help="Which probe face, when several."),
    top_k: int = typer.Option(20, "--top-k", help="Candidates to return."),
    collection: list[str] | None = typer.Option(None, "--collection",
                                                help="Limit to collection(s); repeatable."),
    mode: str = typer.Option("investigate", "--mode", help="investigate | identify"),
    authorisation_ref: str | None = typer.Option(None, "--authorisation-ref",
                                                 help="Warrant/authority reference, if policy "
                                                 "needs one for this purpose."),
    urgent: bool = typer.Option(False, "--urgent", help="Go ahead without the authorisation "
                                "reference; add it within the policy's window or the results "
                                "are purged."),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON schema."),
) -> None:
    """Search the gallery for PHOTO's face. Ledgered, with case, purpose, offence, legal basis."""
    with open_app() as app:
        principal = login(app)
        try:
            data = photo.read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read probe photo {photo}: {exc.strerror}") from None
        req = SearchRequest(case, purpose, offence, legal_basis, mode, top_k, face,
                            list(collection) if collection else None, authorisation_ref, urgent)
        result = run_search(app, principal, data, req)
    if as_json:
        emit_json(result.as_dict())
        return
    if result.status == "pending":
        typer.echo(f"Search {result.search_id} is waiting for a supervisor's approval "
                   f"(rules: {', '.join(result.approval_rules)}). No results are shown until "
                   "it is approved.")
        return
    cal = (f", threshold {result.threshold:.4f} (calibration {result.calibration['id']}: "
           f"FMR {result.calibration['target_fmr']:g}, {result.calibration['dataset']})"
           if result.calibration else "")
    typer.echo(f"Search {result.search_id} (ledger entry {result.ledger_seq}) by {result.user}, "
               f"case {result.case}, mode {result.mode}{cal}; "
               f"{sum(c['faces'] for c in result.collections)} faces searched")
    if not result.candidates:
        typer.echo("No candidates.")
    for c in result.candidates:
        typer.echo(f"{c.rank:>3}. {c.similarity:.4f}  face {c.face_id}  [{c.collection}]  "
                   f"{c.source_url or c.sources[0]['original_path'] if c.sources else ''}")
        typer.echo(f"      image {c.image_path}  thumb {c.thumbnail_path}  box {c.box}"
                   + (f"  page {c.page_url}" if c.page_url else ""))


@ledger.command("verify")
def ledger_verify(as_json: bool = typer.Option(False, "--json")) -> None:
    """Check the whole chain; name the first bad entry."""
    with open_app() as app:
        login(app, "ledger.verify")
        with app.db.read() as s:
            report = ledger_mod.verify(s)
    if as_json:
        emit_json(report.as_dict())
    elif report.ok:
        typer.echo(f"OK: {report.entries} entries, head {report.head_seq} {report.head_hash}")
    if not report.ok:
        raise LedgerIntegrityError(
            f"ledger verification FAILED at entry {report.first_bad_seq}: {report.reason}",
            first_bad_seq=report.first_bad_seq)


@ledger.command("show")
def ledger_show(
    user: str | None = typer.Option(None, "--user"),
    case: str | None = typer.Option(None, "--case"),
    kind: str | None = typer.Option(None, "--kind", help="e.g. search, ingest, user"),
    limit: int = typer.Option(200, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Read ledger entries, oldest first."""
    with open_app() as app:
        login(app, "ledger.read")
        with app.db.read() as s:
            rows = [ledger_mod.entry_dict(e) for e in
                    ledger_mod.read(s, user=user, case_ref=case, kind=kind, limit=limit)]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        p = r["payload"] or {}
        extra = ""
        if r["kind"] == "search":
            extra = (f" purpose={p.get('purpose')!r} offence={p.get('offence')!r} "
                     f"mode={p.get('mode')} candidates={len(p.get('candidates', []))}")
        elif r["kind"] == "search.refused":
            extra = f" reason={p.get('reason')!r}"
        typer.echo(f"{r['seq']:>6} {r['ts'][:19]} {r['kind']:<18} {r['actor'] or '-':<16} "
                   f"{r['case'] or '':<14}{extra}")


def models() -> None:
    """List the face model backends and their capabilities."""
    from dataclasses import asdict

    from faceledger.facemodels import available_models

    emit_json({k: asdict(v) for k, v in available_models().items()})


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.add_typer(ledger, name="ledger")
    app.command("models")(models)
