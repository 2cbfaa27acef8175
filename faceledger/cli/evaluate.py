"""eval verify | identify | card: accuracy figures and model cards (``calibrate`` is in
calibrate_cmd.py and registered with them)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from faceledger.cli.common import emit_json, open_app
from faceledger.errors import ValidationError
from faceledger.eval import calibrate as cal
from faceledger.eval import card as card_mod
from faceledger.eval.distractors import prepare, select, sha256_files
from faceledger.eval.embedset import EmbedSet, apply_exclusions, embed_dataset, walk_dataset
from faceledger.eval.groups import GroupReport, group_report, load_groups
from faceledger.eval.identify import IdentifyReport, Protocol, evaluate_identification
from faceledger.eval.pairs import PairSet, load_pairs
from faceledger.eval.verify import VerifyReport, evaluate_pairs, published_accuracy
from faceledger.faces.models.base import available_models
from faceledger.governance.calibration import current_calibration, packaged_defaults
from faceledger.settings import Settings, get_settings

evaluate = typer.Typer(help="Accuracy evaluation and model cards (no data home needed).",
                       no_args_is_help=True)

CacheOpt = typer.Option(None, "--cache", help="Embedding cache (.npz), reused and updated.")
WorkersOpt = typer.Option(None, "--workers", help="Embedding processes (default: all cores).")
ThresholdOpt = typer.Option(None, "--threshold", help="Operating threshold (default: the active "
                            "calibration of the data home, else the packaged one).")
ExcludeOpt = typer.Option(None, "--exclude", help="File listing images (relative paths) or "
                          "identities to leave out, e.g. reviewed label errors.")
JittersOpt = typer.Option(None, "--jitters", min=0, max=100,
                          help="Embed each face as the mean of N randomly jittered copies (N "
                          "network passes; dlib's published LFW figure uses 100). Default: the "
                          "FACELEDGER_JITTERS setting, which search and ingest use too.")
Distractors = tuple[Path, int | None, Path | None]  # folder, --max-distractors, its cache
GroupsOpt = typer.Option(None, "--groups", help="CSV with columns identity,group: FMR and FNMR "
                         "per group at the operating threshold.")


@contextmanager
def _bar(label: str) -> Iterator[Callable[[int, int], None]]:
    console = Console(stderr=True)
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _embed(settings: Settings, root: Path, rel: list[str], cache: Path | None,
           workers: int | None) -> EmbedSet:
    with _bar(f"embed {root.name}") as update:
        return embed_dataset(root, rel, settings, workers=workers or settings.workers,
                             cache=cache, progress=update)


def _without(es: EmbedSet, exclude: Path | None) -> tuple[EmbedSet, int]:
    if exclude is None:
        return es, 0
    kept, dropped = apply_exclusions(es.paths, exclude)
    keep = set(kept)
    return es.subset(np.array([p in keep for p in es.paths], dtype=bool)), len(dropped)


def _dataset(settings: Settings, root: Path, cache: Path | None, workers: int | None,
             exclude: Path | None) -> tuple[EmbedSet, int]:
    rel, dropped = walk_dataset(root), list[str]()
    if exclude is not None:
        rel, dropped = apply_exclusions(rel, exclude)
    return _embed(settings, root, rel, cache, workers), len(dropped)


def _settings(jitters: int | None) -> Settings:
    settings = get_settings()
    return settings if jitters is None else settings.model_copy(update={"jitters": jitters})


def _has_home(settings: Settings) -> bool:
    return bool(settings.database_url) or (settings.home / "faceledger.db").exists()


def _in_force(settings: Settings) -> dict[str, Any] | None:
    """The calibration in force: the data home's active one, else the packaged one."""
    if _has_home(settings):
        with open_app() as app:
            c = current_calibration(app, settings.model)
        if c is not None:
            return card_mod.calibration_in_force(c.as_dict(), c.details,
                                                 f"active calibration of {settings.home}")
    for row in packaged_defaults():
        if row["model_id"] == settings.model:
            return card_mod.calibration_in_force(row, row.get("details", {}),
                                                 "packaged calibration")
    return None


def _operating(settings: Settings, threshold: float | None) -> tuple[float | None, str]:
    """--threshold, else the data home's active calibration, else the packaged default."""
    if threshold is not None:
        return threshold, "--threshold"
    c = _in_force(settings)
    if c is None:
        return None, ""
    if c["id"] is None:
        return float(c["threshold"]), f"packaged calibration (FMR {c['target_fmr']:g})"
    size = f", gallery {c['gallery_size']:,}" if c["gallery_size"] else ""
    return c["threshold"], f"active calibration {c['id']} (FMR {c['target_fmr']:g}{size})"


def _groups(path: Path | None, es: EmbedSet, threshold: float | None,
            source: str) -> GroupReport | None:
    if path is None:
        return None
    if threshold is None:
        raise ValidationError("--groups needs an operating threshold: give --threshold")
    return group_report(es, load_groups(path), threshold, threshold_source=source)


def _model_info(settings: Settings) -> dict[str, Any]:
    caps = available_models().get(settings.model)
    info: dict[str, Any] = {"model id": settings.model}
    if caps:
        info.update({"embedding": f"{caps.dim}-d, L2-normalised, cosine similarity",
                     "aligned chip": f"{caps.chip_size} px, {caps.landmarks} landmarks",
                     "published accuracy": caps.published_accuracy, "weights": caps.source})
    info.update({"detector": f"{settings.detector}, upsample {settings.upsample}, "
                 f"min score {settings.min_detector_score}",
                 "jitters": f"{settings.jitters} (each embedding the mean of that many "
                 "jittered copies)" if settings.jitters > 1 else "none (one pass per face)",
                 "pipeline": "decode -> detect -> align -> embed (faceledger.faces.pipeline)"})
    return info


def _published(settings: Settings, pairs: PairSet) -> float | None:
    caps = available_models().get(settings.model)
    return published_accuracy(caps.published_accuracy) if caps and not pairs.single_set else None


def _verify(settings: Settings, lfw: Path, pairs_file: Path | None, es: EmbedSet | None,
            cache: Path | None, workers: int | None, threshold: float | None,
            source: str) -> tuple[VerifyReport, EmbedSet]:
    pairs = load_pairs(pairs_file or lfw / "pairs.txt")
    rel = pairs.images()
    missing = [p for p in rel if not (lfw / p).is_file()]
    if missing:
        raise ValidationError(f"{len(missing)} images named in {pairs.source} are missing from "
                              f"{lfw}, e.g. {', '.join(missing[:3])}", missing=missing[:20])
    if es is None:
        es = _embed(settings, lfw, rel, cache, workers)
    return evaluate_pairs(es, pairs, published=_published(settings, pairs), threshold=threshold,
                          threshold_source=source), es


def _protocol(gallery_sizes: str, seed: int, unenrolled: float) -> Protocol:
    sizes: list[int | None] = []
    for tok in gallery_sizes.split(","):
        tok = tok.strip().lower()
        if tok == "all":
            sizes.append(None)
        elif tok.isdigit() and int(tok) > 0:
            sizes.append(int(tok))
        else:
            raise ValidationError(f"--gallery-sizes: {tok!r} is neither a positive number nor 'all'")
    if not 0 <= unenrolled < 1:
        raise ValidationError("--unenrolled-fraction must be at least 0 and below 1")
    return Protocol(seed=seed, unenrolled_fraction=unenrolled, gallery_sizes=tuple(sizes))


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def _command() -> str:
    return "faceledger " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@evaluate.command("verify")
def eval_verify(
    lfw: Path = typer.Option(..., "--lfw", help="LFW folder (one sub-folder per identity)."),
    pairs: Path | None = typer.Option(None, "--pairs", help="Pairs file (default DIR/pairs.txt)."),
    as_json: bool = typer.Option(False, "--json"),
    cache: Path | None = CacheOpt,
    workers: int | None = WorkersOpt,
    out: Path | None = typer.Option(None, "--out", help="Write a model card into this folder."),
    groups: Path | None = GroupsOpt,
    jitters: int | None = JittersOpt,
    threshold: float | None = ThresholdOpt,
) -> None:
    """LFW 1:1 verification: 10-fold accuracy, ROC/AUC, EER, TAR at FAR 1e-2 and 1e-3."""
    settings = _settings(jitters)
    thr, source = _operating(settings, threshold)
    report, es = _verify(settings, lfw, pairs, None, cache, workers, thr, source)
    g = _groups(groups, es, thr, source)
    info = _model_info(settings)
    result: dict[str, Any] = {"verify": report.as_dict(), "embeddings": es.summary(),
                              "model": info, "groups": g.as_dict() if g else None}
    if out:
        data = card_mod.CardData(settings.model, info,
                                 [{"name": "LFW", "path": str(lfw), "summary": es.summary()}],
                                 _command(), verify=report, operating=_op(thr, source),
                                 calibration=_in_force(settings),
                                 groups=[("LFW pairs", g)] if g else [])
        result["card"] = str(card_mod.write_card(data, out, result))
    lines = report.lines()
    lines.insert(1, f"pipeline: detector {settings.detector} (upsample {settings.upsample}), "
                 f"jitters {settings.jitters}")
    _report(result, lines, g, as_json)


def _report(result: dict[str, Any], lines: list[str], g: Any, as_json: bool) -> None:
    """Print an evaluation: JSON, or its lines, the group lines and where the card went."""
    if as_json:
        emit_json(result)
        return
    _echo(lines)
    if g:
        _echo(g.lines())
    if "card" in result:
        typer.echo(f"model card: {result['card']}")


def _op(thr: float | None, source: str) -> dict[str, Any] | None:
    return {"threshold": thr, "source": source} if thr is not None else None


def _distractors(settings: Settings, opt: Distractors | None, es: EmbedSet, digests: list[str],
                 workers: int | None, seed: int) -> tuple[EmbedSet | None, dict[str, Any] | None]:
    if opt is None:
        return None, None
    folder, limit, cache = opt
    files = select(folder, set(es.identities.tolist()), limit=limit, seed=seed)
    return prepare(_embed(settings, folder, files.paths, cache, workers), files, digests)


def _identify(settings: Settings, dataset: Path, es: EmbedSet | None, cache: Path | None,
              workers: int | None, protocol: Protocol, fallback: bool, thr: float | None,
              source: str, exclude: Path | None,
              distractors: Distractors | None = None) -> tuple[IdentifyReport, EmbedSet, EmbedSet]:
    if es is None:
        es, excluded = _dataset(settings, dataset, cache, workers, exclude)
    else:
        es, excluded = _without(es, exclude)
    face = es.usable(fallback)
    usable = es.subset(face)
    digests = sha256_files(es.root, es.paths)
    d_es, d_info = _distractors(settings, distractors, es, digests, workers, protocol.seed)
    name = f"{dataset.name} ({dataset})"
    report = evaluate_identification(usable, protocol, dataset=name, threshold=thr,
                                     threshold_source=source, distractors=d_es,
                                     digests=[digests[i] for i in np.flatnonzero(face)])
    report.all_images = evaluate_identification(es, protocol, dataset=name, threshold=thr,
                                                threshold_source=source, distractors=d_es,
                                                digests=digests, has_face=face)
    report.distractors = d_info
    report.counts["left_out_no_face"] = int((es.ok & ~face).sum())
    report.counts["left_out_errors"] = len(es.errors)
    report.counts["left_out_excluded"] = excluded
    return report, es, usable


@evaluate.command("identify")
def eval_identify(
    dataset: Path = typer.Option(..., "--dataset", help="One sub-folder of images per identity."),
    as_json: bool = typer.Option(False, "--json"),
    cache: Path | None = CacheOpt,
    workers: int | None = WorkersOpt,
    out: Path | None = typer.Option(None, "--out", help="Write a model card into this folder."),
    groups: Path | None = GroupsOpt,
    jitters: int | None = JittersOpt,
    threshold: float | None = ThresholdOpt,
    exclude: Path | None = ExcludeOpt,
    gallery_sizes: str = typer.Option("100,1000,all", "--gallery-sizes"),
    seed: int = typer.Option(0, "--seed", help="Seed of the enrolled/unenrolled split."),
    unenrolled: float = typer.Option(0.5, "--unenrolled-fraction",
                                     help="Share of multi-image identities kept out of the "
                                     "gallery as non-mated probes."),
    fallback: bool = typer.Option(False, "--fallback/--no-fallback",
                                  help="Use central-box embeddings of images with no detected "
                                  "face (default: leave them out, as the product would)."),
    distractors: Path | None = typer.Option(
        None, "--distractors", help="Folder of faces added to every gallery as non-mates (e.g. "
        "LFW or your own gallery): one identity per image, unless it holds one sub-folder per "
        "identity (then identities named like a dataset identity are left out)."),
    max_distractors: int | None = typer.Option(None, "--max-distractors", min=1,
                                               help="Use a seeded random N distractor images."),
    distractor_cache: Path | None = typer.Option(None, "--distractor-cache",
                                                 help="Embedding cache for --distractors."),
) -> None:
    """1:N identification: rank-1/5 and CMC; FNIR at FPIR 1e-2/1e-3 as the gallery grows."""
    settings = _settings(jitters)
    protocol = _protocol(gallery_sizes, seed, unenrolled)
    thr, source = _operating(settings, threshold)
    extra = (distractors, max_distractors, distractor_cache) if distractors else None
    report, es, usable = _identify(settings, dataset, None, cache, workers, protocol, fallback,
                                   thr, source, exclude, extra)
    g = _groups(groups, usable, thr, source)
    result: dict[str, Any] = {"identify": report.as_dict(), "embeddings": es.summary(),
                              "groups": g.as_dict() if g else None}
    if out:
        data = card_mod.CardData(settings.model, _model_info(settings),
                                 [{"name": dataset.name, "path": str(dataset),
                                   "summary": es.summary()}], _command(), identify=report,
                                 operating=_op(thr, source), calibration=_in_force(settings),
                                 groups=[(dataset.name, g)] if g else [])
        result["card"] = str(card_mod.write_card(data, out, result))
    _report(result, report.lines(), g, as_json)


@evaluate.command("card")
def eval_card(
    lfw: Path = typer.Option(..., "--lfw", help="LFW folder with pairs.txt."),
    out: Path = typer.Option(..., "--out", help="Folder for the card and its plots."),
    pairs: Path | None = typer.Option(None, "--pairs", help="Pairs file (default DIR/pairs.txt)."),
    dataset: Path | None = typer.Option(None, "--dataset", help="Identification dataset "
                                        "(default: the LFW folder)."),
    groups: Path | None = GroupsOpt,
    cache: Path | None = CacheOpt,
    dataset_cache: Path | None = typer.Option(None, "--dataset-cache",
                                              help="Embedding cache for --dataset."),
    workers: int | None = WorkersOpt,
    jitters: int | None = JittersOpt,
    threshold: float | None = ThresholdOpt,
    exclude: Path | None = ExcludeOpt,
    gallery_sizes: str = typer.Option("100,1000,all", "--gallery-sizes"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write the model card (Markdown, HTML, JSON, PNG plots); copy it into the data home."""
    settings = _settings(jitters)
    thr, source = _operating(settings, threshold)
    lfw_es = _embed(settings, lfw, walk_dataset(lfw), cache, workers)
    report, _ = _verify(settings, lfw, pairs, lfw_es, None, None, thr, source)
    ds = dataset or lfw
    ident, ds_es, usable = _identify(settings, ds, None if dataset else lfw_es,
                                     dataset_cache, workers, _protocol(gallery_sizes, seed, 0.5),
                                     False, thr, source, exclude)
    with _bar("score all pairs") as update:
        scan = cal.scan_pairs(usable.vectors, usable.identities,
                              cal.keep_for(list(cal.FMR_TABLE), cal.nonmate_count(usable.identities)),
                              progress=update)
    g = _groups(groups, usable, thr, source)
    datasets = [{"name": "LFW", "path": str(lfw), "summary": lfw_es.summary()}]
    if dataset:
        datasets.append({"name": dataset.name, "path": str(dataset), "summary": ds_es.summary()})
    figures: dict[str, Any] = {
        "verify": report.as_dict(), "identify": ident.as_dict(),
        "calibration_table": cal.fmr_table(scan),
        "groups": g.as_dict() if g else None}
    data = card_mod.CardData(settings.model, _model_info(settings), datasets, _command(),
                             verify=report, identify=ident, scan=scan,
                             scan_dataset=f"{ds.name} (images with a detected face)",
                             operating=_op(thr, source), calibration=_in_force(settings),
                             groups=[(ds.name, g)] if g else [])
    md = card_mod.write_card(data, out, figures)
    published = None
    if _has_home(settings) and settings.home.is_dir():
        published = card_mod.publish(out, settings.home, settings.model)
    result = {"card": str(md), "html": str(out / card_mod.CARD_HTML),
              "published": str(published) if published else None, **figures}
    if as_json:
        emit_json(result)
        return
    _echo(report.lines())
    _echo(ident.lines())
    typer.echo(f"model card: {md} and {out / card_mod.CARD_HTML}")
    if published:
        typer.echo(f"published to {published}")


def register(app: typer.Typer) -> None:
    from faceledger.cli.calibrate_cmd import calibrate  # it reuses this module's helpers

    app.add_typer(evaluate, name="eval")
    app.command("calibrate")(calibrate)
