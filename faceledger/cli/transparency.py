"""ledger checkpoint | key | proof | consistency | witness | check-receipt: the transparency
log's commands (registered on the ``ledger`` group)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import ValidationError
from faceledger.governance import checkpoints, proofs, witness_client

ALARM_EXIT = 9


def ledger_checkpoint(
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Also write the signed "
                                    "note to this file (keep it, or hand it to an overseer)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Sign a checkpoint of the log now (C2SP tlog-checkpoint note) and print it; ledgered."""
    with open_app() as app:
        cp = checkpoints.create_checkpoint(app, login(app, "ledger.checkpoint.create"))
    if out is not None:
        out.write_text(cp["note"])
    if as_json:
        emit_json(cp)
    else:
        typer.echo(cp["note"], nl=False)
        if out is not None:
            typer.echo(f"(written to {out})", err=True)


def ledger_key(as_json: bool = typer.Option(False, "--json")) -> None:
    """The log's public key: its verifier key (vkey) and PEM. Publish it; witnesses pin it."""
    with open_app() as app:
        key = checkpoints.log_key(app, login(app, "ledger.checkpoint.read"))
    if as_json:
        emit_json(key.as_dict())
        return
    typer.echo(key.vkey)
    typer.echo(key.public_key_pem, nl=False)
    typer.echo(f"origin {key.origin}; key id {key.key_id}; private key in {key.key_file}",
               err=True)


def ledger_proof(
    seq: int = typer.Option(..., "--seq", min=1, help="The entry's sequence number."),
    size: int | None = typer.Option(None, "--size", min=1, help="Tree size (default: the first "
                                    "checkpoint holding the entry, else the log's size)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Entry N's RFC 9162 inclusion proof (and the checkpoint it leads to)."""
    with open_app() as app:
        got = proofs.inclusion_proof(app, login(app, "ledger.read"), seq, size)
    if as_json:
        emit_json(got)
        return
    typer.echo(f"entry {got['seq']} (leaf {got['leaf_index']}) in the log of size "
               f"{got['tree_size']}\nleaf hash {got['leaf_hash']}\nroot      {got['root_hash']}"
               f"\npath ({len(got['path'])} hashes, leaf to root):")
    for h in got["path"]:
        typer.echo(f"  {h}")
    typer.echo(got["checkpoint"] or "(no signed checkpoint of this size yet)", nl=False)
    if not got["checkpoint"]:
        typer.echo("")


def ledger_consistency(
    first: int = typer.Option(..., "--from", min=0, help="The earlier tree size."),
    to: int = typer.Option(..., "--to", min=0, help="The later tree size."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """An RFC 9162 consistency proof: the log at --to extends the log at --from."""
    with open_app() as app:
        got = proofs.consistency_proof(app, login(app, "ledger.checkpoint.read"), first, to)
    if as_json:
        emit_json(got)
        return
    typer.echo(f"from {got['from']} (root {got['root_from']})\nto   {got['to']} (root "
               f"{got['root_to']})\nproof ({len(got['proof'])} hashes):")
    for h in got["proof"]:
        typer.echo(f"  {h}")


def ledger_witness(
    url: str = typer.Option(..., "--url", help="The faceledger server, e.g. https://host:8000"),
    state: Path = typer.Option(..., "--state", file_okay=False, help="This witness's folder: "
                               "the pinned log key, the last checkpoint seen, its own key."),
    log_key: str | None = typer.Option(None, "--log-key", metavar="VKEY", help="The log key to "
                                       "trust (else pinned from the server on the first run)."),
    cosign: bool = typer.Option(True, "--cosign/--no-cosign", help="Co-sign the checkpoint "
                                "and post the cosignature back (needs an auditor's token)."),
    name: str | None = typer.Option(None, "--name", help="This witness's name (first run)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check that the log only grew since this witness last looked (signature, consistency
    proof), store the new checkpoint and co-sign it. Exit 9 with an ALARM on a rollback,
    fork, rewritten history or bad signature. Token: FACELEDGER_TOKEN (an auditor's)."""
    token = os.environ.get("FACELEDGER_TOKEN", "").strip()
    if not token:
        raise ValidationError("set FACELEDGER_TOKEN to an auditor's API token for the server")
    try:
        run = witness_client.run(url, token, state, log_key=log_key, cosign=cosign, name=name)
    except witness_client.Alarm as alarm:
        typer.secho(f"ALARM: {alarm.message}", fg=typer.colors.RED, bold=True, err=True)
        raise typer.Exit(ALARM_EXIT) from alarm
    if as_json:
        emit_json(run.as_dict())
        return
    if run.pinned_now:
        typer.echo(f"pinned the log key on first use: {(state / 'log.vkey').read_text().strip()}"
                   " (compare it with the operator's published key)", err=True)
    since = (f"extends the {run.previous_size} entries seen before" if run.previous_size
             is not None else "first checkpoint seen")
    typer.echo(f"OK: {run.origin} at size {run.size} (root {run.root_hash[:16]}…), {since}"
               f"{'; co-signed' if run.cosigned else ''}")


def check_receipt(
    receipt: Path = typer.Argument(..., exists=True, dir_okay=False, help="A receipt (JSON): a "
                                   "search's `receipt`, or one of a subject-access answer's "
                                   "`proofs`."),
    key: str = typer.Option(..., "--key", metavar="VKEY", help="The log's published key."),
) -> None:
    """Check a receipt offline, trusting nothing but the log's key: the entry is in the log
    the signed checkpoint describes. Needs no data home and no token."""
    try:
        rec = json.loads(receipt.read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{receipt} is not a JSON receipt: {exc}") from exc
    rec = rec.get("receipt", rec) if isinstance(rec, dict) else rec
    problems = proofs.check_receipt(rec, key) if isinstance(rec, dict) else ["not a receipt"]
    if problems:
        for p in problems:
            typer.secho(f"FAILED: {p}", fg=typer.colors.RED, err=True)
        raise typer.Exit(ALARM_EXIT)
    typer.echo(f"OK: entry {rec['seq']} is in the log of size {rec['tree_size']} that the "
               "signed checkpoint describes")


def register(group: typer.Typer) -> None:
    """Add these commands to the ``ledger`` group."""
    group.command("checkpoint")(ledger_checkpoint)
    group.command("key")(ledger_key)
    group.command("proof")(ledger_proof)
    group.command("consistency")(ledger_consistency)
    group.command("witness")(ledger_witness)
    group.command("check-receipt")(check_receipt)
