"""collections, ingest, index."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from faceledger.cli.common import emit_json, login, open_app
from faceledger.gallery import indexstore
from faceledger.gallery.collections import collection_list, create_collection
from faceledger.gallery.index_check import index_check as check_indexes
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.interrupt import IngestInterrupted, stop_on_signals
from faceledger.gallery.summary import IngestSummary

collections = typer.Typer(help="Collections: lawfully held image sets.", no_args_is_help=True)
index = typer.Typer(help="The vector index (rebuilt from the database).", no_args_is_help=True)


@collections.command("add")
def collections_add(
    name: str,
    legal_basis: str = typer.Option(..., "--legal-basis", help="Why you may hold these images."),
    description: str = typer.Option("", "--description"),
) -> None:
    """Create a collection (admins only)."""
    with open_app() as app:
        col = create_collection(app, login(app), name, legal_basis, description)
    typer.echo(f"Created collection {col['name']}.")


@collections.command("list")
def collections_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List collections with their image and face counts."""
    with open_app() as app:
        rows = collection_list(app, login(app))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("No collections yet: faceledger collections add NAME --legal-basis B")
    for r in rows:
        typer.echo(f"{r['name']:<24} {r['images']:>8} images {r['faces']:>8} faces  "
                   f"legal basis: {r['legal_basis']}")


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files, folders (recursive) or zip archives."),
    collection: str = typer.Option(..., "--collection", help="Target collection."),
    manifest: Path | None = typer.Option(None, "--manifest", help="CSV or JSONL provenance."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    engine: str | None = typer.Option(None, "--engine", help="Where the face pipeline runs: local "
                                      "(a process pool, the default) or ray (a Ray cluster)."),
    address: str | None = typer.Option(None, "--address", help="The Ray cluster (host:port); "
                                       "default: a local Ray on 127.0.0.1 with --workers CPUs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Detect, embed and index every face in PATHS, with provenance."""
    with open_app() as app:
        service = Ingest(app, login(app), engine, address)  # checks the permission ("ingest")
        console = Console(stderr=True)
        shown = {"stage": ""}
        with Progress(TextColumn("[bold]ingest: {task.fields[stage]}"), BarColumn(),
                      MofNCompleteColumn(),
                      TextColumn("{task.fields[faces]} faces, {task.fields[rej]} rejected"),
                      TimeRemainingColumn(), console=console, transient=True,
                      disable=as_json) as bar:
            task = bar.add_task("ingest", total=None, faces=0, rej=0, stage="listing files")

            def progress(s: IngestSummary) -> None:
                loading = s.stage == "loading models"  # no known end: a pulsing bar
                bar.update(task, total=None if loading else s.total, completed=s.processed,
                           faces=s.faces, rej=len(s.rejections), stage=s.stage)
                if s.stage != shown["stage"] and not console.is_terminal and not as_json:
                    shown["stage"] = s.stage  # no live bar (a log, a pipe): say each stage
                    console.print(f"ingest: {s.stage} ({s.processed}/{s.total} files)",
                                  highlight=False)

            try:
                with stop_on_signals():  # kill PID / Ctrl-C: stop the workers, mark the job
                    summary = service.run(paths, collection, manifest, progress, workers)
            except IngestInterrupted as stop:
                typer.echo(stopped_line(stop), err=True)
                raise typer.Exit(128 + stop.signum) from None
    if as_json:
        emit_json(summary.as_dict())
        return
    for line in summary_lines(summary):
        typer.echo(line)


NAMED = 100  # images with no face named in the text summary


def stopped_line(stop: IngestInterrupted) -> str:
    """What an ingest stopped by a signal says."""
    if stop.job_id is None:
        return f"Ingest stopped by {stop.signame} before it started; nothing was added."
    return (f"Ingest job {stop.job_id} stopped by {stop.signame} after {stop.processed} of "
            f"{stop.total} files (marked interrupted); run the same command again to finish it.")


def summary_lines(summary: IngestSummary) -> list[str]:
    """The ingest summary as people read it: counts, faces per image, then what needs a look."""
    d = summary.as_dict()
    lines = [f"Ingest job {summary.job_id} into {summary.collection}: {summary.total} files, "
             f"{summary.added} images added, {summary.faces} faces, "
             f"{summary.duplicates} duplicates ({summary.new_sources} new sources), "
             f"{summary.rejected} rejected; {summary.seconds:.1f} s "
             f"({d['images_per_s']} images/s, {d['faces_per_s']} faces/s)",
             f"Faces per added image: {summary.images_no_face} with no face, "
             f"{summary.images_one_face} with one, {summary.images_several_faces} with several"
             + (f"; {summary.blocked_faces} opted-out faces not stored"
                if summary.blocked_faces else "")]
    lines += [f"  no face found in {p}" for p in summary.no_face_images[:NAMED]]
    if len(summary.no_face_images) > NAMED:
        lines.append(f"  ... and {len(summary.no_face_images) - NAMED} more images with no face "
                     "(--json lists them all)")
    lines += [f"  rejected {r['path']}: {r['reason']}" for r in summary.rejections]
    lines += [f"  warning: {w['reason']}" for w in summary.warnings]
    return lines


@index.command("rebuild")
def index_rebuild(collection: str | None = typer.Option(None, "--collection")) -> None:
    """Recreate the vector index from the database (the source of truth)."""
    with open_app() as app:
        rebuilt = indexstore.index_rebuild(app, login(app), collection)
    for r in rebuilt:
        typer.echo(f"{r['collection']}: {r['faces']} faces, {r['kind']}")


@index.command("status")
def index_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Show each collection's index kind and size."""
    with open_app() as app:
        out = indexstore.index_status(app, login(app))
    if as_json:
        emit_json(out)
        return
    for o in out:
        typer.echo(f"{o['collection']:<24} {o['faces_in_index']:>8} in index / "
                   f"{o['faces_in_db']:>8} in db  {o['kind']} ({o['model_id']})")


@index.command("check")
def index_check(
    repair: bool = typer.Option(False, "--repair", help="Put missing faces and differing vectors "
                                "back, delete ids the database no longer has."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare each index with the database: face counts and a sample of vectors. Exits 1 when
    they differ (after --repair: when they still do)."""
    with open_app() as app:
        out = check_indexes(app, login(app), repair=repair)
    if as_json:
        emit_json(out)
    else:
        for o in out["indexes"]:
            state = "OK" if o["ok"] else "MISMATCH"
            fixed = " (repaired)" if o["repaired"] else ""
            typer.echo(f"{o['collection']:<24} {o['model_id']}: {o['faces_in_index']} in index / "
                       f"{o['faces_in_db']} in db, {o['missing']} missing, {o['extra']} extra, "
                       f"{len(o['vectors_differ'])}/{o['sampled']} sampled vectors differ  "
                       f"{state}{fixed}")
        typer.echo(f"{out['engine']}: {'OK' if out['ok'] else 'MISMATCH (faceledger index check --repair)'}")
    if not out["ok"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(collections, name="collections")
    app.command("ingest")(ingest)
    app.add_typer(index, name="index")
