"""search, searches receipt, models (the ledger commands are in cli/ledger.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import ValidationError
from faceledger.faces.probefaces import FACE_HELP
from faceledger.search.receipts import search_receipt
from faceledger.search.service import SearchRequest, run_search

searches = typer.Typer(help="Searches already run: their ledger receipts.", no_args_is_help=True)


def search(
    photo: Path = typer.Argument(..., help="The probe photo."),
    case: str | None = typer.Option(None, "--case", help="Case reference (required)."),
    purpose: str | None = typer.Option(None, "--purpose", help="Purpose (required)."),
    offence: str | None = typer.Option(None, "--offence", help="Offence type (required)."),
    legal_basis: str | None = typer.Option(None, "--legal-basis", help="Legal basis (required)."),
    face: int | None = typer.Option(None, "--face", min=1, help=FACE_HELP),
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
        typer.echo(receipt_line(result.receipt))
        return
    cal = (f", threshold {result.threshold:.4f} (calibration {result.calibration['id']}: "
           f"FMR {result.calibration['target_fmr']:g}, {result.calibration['dataset']})"
           if result.calibration else "")
    typer.echo(f"Search {result.search_id} (ledger entry {result.ledger_seq}) by {result.user}, "
               f"case {result.case}, mode {result.mode}{cal}; "
               f"{sum(c['faces'] for c in result.collections)} faces searched; "
               f"probe face {result.face} of {len(result.probe_faces)}")
    for line in describe_results(result.bands, [asdict(c) for c in result.candidates]):
        typer.echo(line)
    typer.echo(receipt_line(result.receipt))


def receipt_line(rec: dict[str, Any] | None) -> str:
    """One line on where a search's entry stands in the signed log."""
    if rec is None:
        return "Ledger receipt: none"
    what = f"Ledger receipt: ledger entry #{rec['seq']}"
    if rec.get("leaf", {}).get("kind") == "search.requested":
        what += " (the request)"
    if rec.get("checkpoint"):
        at = f", signed {rec['checkpoint_at']}" if rec.get("checkpoint_at") else ""
        return (f"{what}, in checkpoint of size {rec['tree_size']}{at}; "
                f"{len(rec['path'])} proof hashes")
    return (f"{what}; checkpoint due: {rec.get('checkpoint_due') or 'later'} "
            f"(`faceledger searches receipt {rec['search_id']}`)")


def receipt(
    search_id: int = typer.Argument(..., min=1, help="The search's number."),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Write the receipt "
                                    "(JSON) to this file instead of printing it."),
) -> None:
    """The search's ledger receipt (JSON): its entry, the signed checkpoint holding it and the
    inclusion proof. `faceledger ledger check-receipt FILE --key VKEY` verifies it offline.
    Fetch it again once a checkpoint covers the entry."""
    with open_app() as app:
        rec = search_receipt(app, login(app, "searches.read"), search_id)
    if out is None:
        emit_json(rec)
        return
    try:
        out.write_text(json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ValidationError(f"cannot write the receipt to {out}: {exc.strerror}") from None
    typer.echo(f"{receipt_line(rec)}\n(written to {out})")


def describe_results(bands: dict[str, Any] | None, cands: list[dict[str, Any]]) -> list[str]:
    """Candidates as text: score, band, a bar on the bands' scale, provenance, marks; a rule
    where each band ends."""
    out = []
    if bands:
        lk, ps = bands["likely"], bands["possible"]
        floor = bands["scale"][0]
        out.append(f"Bands (calibration {bands['calibration_id']}): likely same person >= "
                   f"{lk['threshold']:.4f} (FMR {lk['fmr']:g}); possible >= "
                   f"{ps['threshold']:.4f} (FMR {ps['fmr']:g}); unlikely below. "
                   f"Bars run {floor:.2f} to 1.00; '|' marks the thresholds.")
    else:
        out.append("No calibration for this model: candidates are not banded.")
    if not cands:
        out.append("No candidates.")
    shown = None
    for c in cands:
        band = c.get("band")
        if bands and band != shown and shown is not None:
            out.append(_rule(bands, shown))
        shown = band
        title = f' "{c["title"]}"' if c.get("title") else ""
        when = f" {c['captured_at'][:10]}" if c.get("captured_at") else ""
        where = c.get("source_url") or (c["sources"][0]["original_path"] if c.get("sources")
                                        else "")
        out.append(f"{c['rank']:>3}. {c['similarity']:.4f}  {band or '-':<8} "
                   f"{_bar(c['similarity'], bands) if bands else ''}  face {c['face_id']}  "
                   f"[{c['collection']}]{title}{when}  {where or ''}")
        out.append(f"      image {c['image_path']}  thumb {c['thumbnail_path']}  box {c['box']}"
                   + (f"  page {c['page_url']}" if c.get("page_url") else ""))
        if c.get("probe_image"):
            out.append("      = the probe image itself (same bytes)")
        dup = c.get("duplicate_of")
        if dup:
            out.append(f"      = duplicate of #{dup['rank']} (same image bytes)")
    if bands and shown is not None and shown != "unlikely":
        out.append(_rule(bands, shown))
    return out


def _rule(bands: dict[str, Any], band: str) -> str:
    edge = bands[band]
    return (f"     ---- {'likely same person' if band == 'likely' else band} above this line: "
            f">= {edge['threshold']:.4f}, FMR {edge['fmr']:g} ----")


def _bar(score: float, bands: dict[str, Any], width: int = 20) -> str:
    floor = float(bands["scale"][0])

    def cell(v: float) -> int:
        return max(0, min(width, round((v - floor) / (1.0 - floor) * width)))

    chars = ["#" if i < cell(score) else "." for i in range(width)]
    for edge in ("possible", "likely"):
        chars[min(width - 1, cell(bands[edge]["threshold"]))] = "|"
    return "[" + "".join(chars) + "]"


models_app = typer.Typer(help="Face model backends.", invoke_without_command=True)


@models_app.callback()
def models(ctx: typer.Context) -> None:
    """List the face model backends and model packs: capabilities, licence, published accuracy."""
    if ctx.invoked_subcommand is not None:
        return
    from faceledger.faces.models.base import available_models, register_packs
    from faceledger.settings import get_settings

    packs = {p.model_id: p for p in register_packs(get_settings())}
    out: dict[str, Any] = {}
    for model_id, caps in available_models().items():
        pack = packs.get(model_id)
        out[model_id] = {**asdict(caps), "licence": pack.manifest.licence if pack else None,
                         "pack": pack.summary() if pack else None}
    emit_json(out)


@models_app.command("add-pack")
def models_add_pack(
    where: str = typer.Argument(..., help="A pack folder, or the http(s) URL of a pack's zip."),
    sha256: str | None = typer.Option(None, "--sha256", help="The zip's SHA-256 (for a URL, "
                                      "unless it ends in #sha256=<hex>)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check a model pack (download it once into <home>/models/packs/ for a URL), verify every
    file's SHA-256 and print its licence and the FACELEDGER_MODEL_PACKS entry that offers it."""
    from faceledger.faces.models.pack import resolve, split_pin
    from faceledger.settings import get_settings

    pack = resolve(where, get_settings().home, sha256)
    pack.verify()
    url, pin = split_pin(where)
    entry = f"{url}#sha256={(sha256 or pin or '').lower()}" if "://" in where else str(pack.folder)
    info = {**pack.summary(), "entry": entry}
    if as_json:
        emit_json(info)
        return
    typer.echo(f"model pack {pack.model_id}: files verified\n  licence: {info['licence']}\n"
               f"  published accuracy: {info['published_accuracy']}\n  folder: {pack.folder}\n"
               f"offer it with FACELEDGER_MODEL_PACKS='{json.dumps([entry])}' and use it with "
               f"FACELEDGER_MODEL={pack.model_id}")


@models_app.command("prepare")
def models_prepare(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Build dlib's ResNet as an ONNX graph in <home>/models (done at first use otherwise) and
    check its descriptors against dlib-bin's."""
    from faceledger.faces.models.onnx_resnet import prepare_report
    from faceledger.settings import get_settings

    report = prepare_report(get_settings().home.resolve() / "models")
    if as_json:
        emit_json(report)
        return
    agree = report["agreement"]
    typer.echo(f"{report['path']}\n  {report['bytes']:,} bytes, sha256 {report['sha256']}\n"
               f"  built from {report['source']} (sha256 {report['source_sha256'][:16]}...)\n"
               f"  providers: {', '.join(report['providers'])}\n"
               f"  against dlib on {agree['chips']} test chips: max abs diff "
               f"{agree['max_abs_diff']:.2e}, min cosine {agree['min_cosine']:.8f}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.add_typer(models_app, name="models")
    searches.command("receipt")(receipt)
    app.add_typer(searches, name="searches")
