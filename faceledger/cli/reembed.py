"""reembed: the gallery's originals through another face model, then the switch."""

from __future__ import annotations

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.gallery.interrupt import IngestInterrupted, stop_on_signals
from faceledger.gallery.reembed import run_reembed, start_reembed


def reembed(
    model: str = typer.Option(..., "--model", help="The registered face model to embed with."),
    collection: str | None = typer.Option(None, "--collection",
                                          help="Only this collection (default: all)."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: 1)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-embed the stored originals with MODEL; searches keep the current model until every
    image is done, then MODEL becomes active (ledgered). Stopped: run it again to resume."""
    with open_app() as app:
        principal = login(app, "index.manage")
        job = start_reembed(app, principal, model, collection)
        typer.echo(f"Re-embedding job {job['id']}: {job['total']} images to embed with "
                   f"{job['model']} (searches use {job['from_model']} meanwhile).", err=True)

        def shown(p: dict[str, object]) -> None:
            if not as_json:
                typer.echo(f"  {p['processed']}/{p['total']} images, {p['faces']} faces", err=True)

        try:
            with stop_on_signals():
                done = run_reembed(app, principal, int(job["id"]), shown, workers)
        except (IngestInterrupted, KeyboardInterrupt):
            typer.echo("Stopped; run the same command again to resume.", err=True)
            raise typer.Exit(130) from None
    if as_json:
        emit_json(done)
        return
    typer.echo(f"Done: {done['processed']} images, {done['faces']} faces, {done['failed']} "
               f"failed, {done['withheld']} withheld (opted out).")
    if done["switched"]:
        typer.echo(f"{done['model']} is now the active model.")
    else:
        typer.echo(f"{done['model']} is not active yet: {done['images_left_elsewhere']} images "
                   "in other collections still need it.")


def register(app: typer.Typer) -> None:
    app.command("reembed")(reembed)
