"""approvals, outcome, authorise, retention, subject, policy."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import ValidationError
from faceledger.faces.probefaces import FACE_HELP
from faceledger.oversight import policy_service, retention, subjects
from faceledger.search import approval, outcomes

approvals = typer.Typer(help="Searches waiting for a supervisor.", no_args_is_help=True)
subject = typer.Typer(help="Subject rights: opt-out, erasure, access.", no_args_is_help=True)
policy_cmd = typer.Typer(help="The policy in force.", no_args_is_help=True)
FaceOpt = typer.Option(None, "--face", min=1, help=FACE_HELP)


def _read(photo: Path) -> bytes:
    try:
        return photo.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {photo}: {exc.strerror}") from None


@approvals.command("list")
def approvals_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Searches waiting for approval."""
    with open_app() as app:
        rows = approval.pending(app, login(app))
        out: list[dict[str, Any]] = [{"search_id": r.id, "user": r.user, "case": r.case_ref,
                "purpose": r.purpose, "offence": r.offence, "mode": r.mode,
                "rules": r.approval_rules, "requested_at": r.started_at.isoformat()}
               for r in rows]
    if as_json:
        emit_json(out)
        return
    if not out:
        typer.echo("Nothing is waiting for approval.")
    for o in out:
        typer.echo(f"{o['search_id']:>6} {o['requested_at'][:16]} {o['user']:<12} case "
                   f"{o['case']} {o['purpose']} / {o['offence']} ({', '.join(o['rules'])})")


def _decide(search_id: int, approve: bool, reason: str) -> None:
    with open_app() as app:
        result = approval.decide(app, login(app), search_id, approve, reason)
    if result is None:
        typer.echo(f"Refused search {search_id}; its probe was deleted.")
    else:
        typer.echo(f"Approved search {search_id}: {len(result.candidates)} candidates are now "
                   "visible to the requester.")


@approvals.command("approve")
def approvals_approve(search_id: int, reason: str = typer.Option(..., "--reason")) -> None:
    """Approve: the search runs and its requester sees the results."""
    _decide(search_id, True, reason)


@approvals.command("refuse")
def approvals_refuse(search_id: int, reason: str = typer.Option(..., "--reason")) -> None:
    """Refuse: no results are ever shown; the probe is deleted."""
    _decide(search_id, False, reason)


def outcome(
    search_id: int,
    result: str = typer.Option(..., "--result", help=" | ".join(outcomes.RESULTS)),
    note: str = typer.Option("", "--note"),
    on: str | None = typer.Option(None, "--date", help="YYYY-MM-DD (default today)"),
) -> None:
    """Record what a search led to."""
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        raise ValidationError(f"--date {on!r} is not YYYY-MM-DD") from None
    with open_app() as app:
        outcomes.record_outcome(app, login(app), search_id, result, note, day)
    typer.echo(f"Recorded outcome {result} for search {search_id}.")


def authorise(search_id: int, ref: str = typer.Option(..., "--ref")) -> None:
    """Add the authorisation reference an urgent search went ahead without."""
    with open_app() as app:
        retention.add_authorisation(app, login(app), search_id, ref)
    typer.echo(f"Search {search_id} now carries authorisation {ref}.")


def retention_run(as_json: bool = typer.Option(False, "--json")) -> None:
    """Purge probes and result sets past the policy's retention (the ledger still verifies)."""
    with open_app() as app:
        done = retention.run_retention(app, login(app, "retention.run"))
    if as_json:
        emit_json(done)
        return
    typer.echo(f"Purged {len(done['probes'])} probes, {len(done['results'])} result sets, "
               f"{len(done['unauthorised'])} urgent searches never authorised.")


@subject.command("optout")
def subject_optout(photos: list[Path] = typer.Argument(..., help="One or more photos of the "
                                                       "person (several: better recall)."),
                   reference: str = typer.Option("", "--reference"),
                   face: int | None = FaceOpt,
                   yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Block this person's face from all results and future ingests: shows the gallery faces it
    will withhold, asks, then records it (--face: with one photo only)."""
    with open_app() as app:
        principal = login(app, "subjects.manage")
        preview = subjects.optout_preview(app, principal, [_read(p) for p in photos], reference,
                                          face)
        n = len(preview.faces)
        if not as_json or not yes:
            typer.echo(f"From {preview.photos} photo(s), the opt-out will withhold {n} gallery "
                       f"face(s) (similarity >= {preview.threshold:.4f}; some may be "
                       "look-alikes):", err=as_json)
            for f in preview.faces:
                typer.echo(f"  face {f.face_id} image {f.image_id} [{f.collection}] "
                           f"{f.similarity:.4f} {app.settings.home / f.thumbnail_path}",
                           err=as_json)
        if not yes and not typer.confirm(f"Opt out, withholding these {n} face(s) from every "
                                         "result and every later ingest?"):
            typer.echo("Nothing recorded.")
            return
        block_id = subjects.optout_confirm(app, principal, preview.token)
    if as_json:
        emit_json({"optout_id": block_id, "photos": preview.photos, "withheld_faces": n,
                   "threshold": preview.threshold})
        return
    typer.echo(f"Opt-out {block_id} recorded: matching faces are withheld from results and "
               "skipped at ingest.")


@subject.command("erase")
def subject_erase(photo: Path, reference: str = typer.Option("", "--reference"),
                  face: int | None = FaceOpt,
                  yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Find this person's faces, confirm, then delete their images, faces, thumbnails, vectors."""
    with open_app() as app:
        principal = login(app, "subjects.manage")
        found = subjects.erase_preview(app, principal, _read(photo), face, reference=reference)
        if not as_json or not yes:
            typer.echo(f"Found {len(found)} matching face(s):", err=as_json)
            for f in found:
                typer.echo(f"  face {f.face_id} image {f.image_id} [{f.collection}] "
                           f"{f.similarity:.4f} {app.settings.home / f.thumbnail_path}",
                           err=as_json)
        if not found:
            if as_json:
                emit_json({"found": 0, "images": 0, "faces": 0})
            return
        n = len(found)
        if not yes and not typer.confirm(
                f"Erase {n} face{'s' if n != 1 else ''} and {'their' if n != 1 else 'its'} "
                f"image{'s' if n != 1 else ''}? This cannot be undone."):
            typer.echo("Nothing erased.")
            return
        done = subjects.erase(app, principal, [f.face_id for f in found], reference)
    if as_json:
        emit_json({"found": len(found), **done})
        return
    typer.echo(f"Erased {done['images']} image(s) and {done['faces']} face(s).")


@subject.command("access", help=(
    "Who searched for this face? Searches whose probe was, or whose results held, the person, "
    "each with its ledger proof. --json prints the searches (each with `proof` and `log_key`); "
    "--out FILE writes the answer for the person or their lawyer: `searches`, `proofs` (one per "
    "search, same order), `log_key` and `how_to_check`: " + subjects.CHECK_HELP + "."))
def subject_access(photo: Path, face: int | None = FaceOpt,
                   as_json: bool = typer.Option(False, "--json"),
                   out: Path | None = typer.Option(None, "--out", dir_okay=False, help=(
                       "Also write the answer with its proofs to this file (JSON)."))) -> None:
    with open_app() as app:
        rows = subjects.access(app, login(app, "subjects.manage"), _read(photo), face)
    if out is not None:
        try:
            out.write_text(json.dumps(subjects.access_bundle(rows), indent=2,
                                      ensure_ascii=False) + "\n")
        except OSError as exc:
            raise ValidationError(f"cannot write {out}: {exc.strerror}") from None
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("No search within retention looked for or returned this face.")
    for r in rows:
        typer.echo(f"search {r['search_id']} {r['date'][:10]} purpose {r['purpose']!r} unit "
                   f"{r['unit']!r} matched as {'+'.join(r['matched_as'])} outcome "
                   f"{r['outcome'] or '(none recorded)'}")
        typer.echo(f"  {_proof_line(r)}")
    if rows and rows[0]["log_key"]:
        typer.echo(f"log key: {rows[0]['log_key']['vkey']}")
    if out is not None:
        typer.echo(f"(answer and proofs written to {out})", err=True)


def _proof_line(row: dict[str, Any]) -> str:
    p = row["proof"]
    if p is None:
        return f"no proof: {row['proof_problem']}"
    if p["checkpoint"] is None:
        return (f"proof: entry {p['seq']}, not in a signed checkpoint yet ({p['checkpoint_due']})")
    return f"proof: entry {p['seq']}, checkpoint size {p['tree_size']}"


@policy_cmd.command("show")
def policy_show() -> None:
    """Print the policy in force (validated)."""
    with open_app() as app:
        shown = policy_service.show_policy(app, login(app))
    emit_json(shown)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals, name="approvals")
    app.command("outcome")(outcome)
    app.command("authorise")(authorise)
    app.command("retention")(retention_run)
    app.add_typer(subject, name="subject")
    app.add_typer(policy_cmd, name="policy")
