"""calibrate: derive the identify threshold from a labelled dataset and make it the model's
active calibration (admins; ledgered by the calibration service)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.cli.evaluate import (
    CacheOpt,
    ExcludeOpt,
    GroupsOpt,
    WorkersOpt,
    _bar,
    _dataset,
    _echo,
    _groups,
)
from faceledger.errors import ValidationError
from faceledger.eval import calibrate as cal
from faceledger.eval import card as card_mod
from faceledger.eval.embedset import EmbedSet
from faceledger.governance.calibration import set_calibration


def _details(res: cal.CalibrationResult, es: EmbedSet, name: str, root: Path, excluded: int,
             exclude: Path | None) -> tuple[dict[str, Any], str]:
    """The calibration's details (what it was computed on and left out) and its label."""
    d = res.details
    label = (f"{name}: {d['images']:,} images, {d['identities']:,} identities, "
             f"{d['nonmate_comparisons']:,} non-mate comparisons")
    d["dataset_path"] = str(root)
    d["left_out_no_face"] = int((es.ok & ~es.usable(False)).sum())
    d["left_out_excluded"] = excluded
    d["exclusion_list"] = str(exclude) if exclude else None
    d["code_version"] = card_mod.code_version()
    d["calibrated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")  # shown on the model card
    return d, label


def calibrate(
    lfw: Path | None = typer.Option(None, "--lfw", help="LFW folder."),
    dataset: Path | None = typer.Option(None, "--dataset", help="One sub-folder per identity."),
    target_fmr: float | None = typer.Option(None, "--target-fmr",
                                            help="Per-comparison false match rate."),
    target_fpir: float | None = typer.Option(None, "--target-fpir", help="Per-search false "
                                             "positive identification rate (needs --gallery-size)."),
    gallery_size: int | None = typer.Option(None, "--gallery-size",
                                            help="Faces searched per search (N)."),
    clamp: bool = typer.Option(False, "--clamp", help="Use the lowest FMR the data supports "
                               "instead of refusing a lower one."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Compute and print; write nothing."),
    groups: Path | None = GroupsOpt,
    exclude: Path | None = ExcludeOpt,
    cache: Path | None = CacheOpt,
    workers: int | None = WorkersOpt,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Derive the identify threshold for a target FMR (or FPIR at gallery size N) and make it
    the model's active calibration (admins; ledgered)."""
    if (lfw is None) == (dataset is None):
        raise ValidationError("give exactly one of --lfw DIR or --dataset DIR")
    root = lfw or dataset
    assert root is not None
    with open_app() as app:
        principal = None if dry_run else login(app, "calibration.manage")
        settings = app.settings
        es, excluded = _dataset(settings, root, cache, workers, exclude)
        usable = es.subset(es.usable(False))
        with _bar("score all pairs") as update:
            res = cal.calibrate(usable, target_fmr=target_fmr, target_fpir=target_fpir,
                                gallery_size=gallery_size, clamp=clamp, progress=update,
                                band_fmrs=tuple(f for f in (settings.band_possible_fmr,
                                                            settings.band_likely_fmr) if f))
        name = f"LFW ({root.name})" if lfw else root.name
        d, label = _details(res, es, name, root, excluded, exclude)
        g = _groups(groups, usable, res.threshold, "this calibration")
        if g:
            d["groups"] = g.as_dict()
        cal_id = None
        if principal is not None:
            cal_id = set_calibration(app, principal, settings.model, res.threshold,
                                     res.target_fmr, res.gallery_size, label, d).id
    result = {"model_id": settings.model, "threshold": res.threshold,
              "target_fmr": res.target_fmr, "gallery_size": res.gallery_size, "dataset": label,
              "calibration_id": cal_id, "written": cal_id is not None, "details": d}
    if as_json:
        emit_json(result)
        return
    typer.echo(f"calibration of {settings.model} on {label}")
    _echo(cal.describe(res))
    if g:
        _echo(g.lines())
    typer.echo(f"calibration {cal_id} is now active for {settings.model} (ledgered)"
               if cal_id is not None else "dry run: nothing written")
