"""eval verify / identify / card and calibrate, end to end with the real models on a mini
folder-per-identity set made from tests/photos.py (A: the astronaut, B: Grace Hopper)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from faceledger.cli import evaluate
from faceledger.db.schema import LedgerEntry
from faceledger.errors import PermissionDeniedError, ValidationError
from faceledger.eval import card as card_mod
from faceledger.governance.calibration import active_calibration
from tests.conftest import World
from tests.photos import astronaut_face, grace_hopper, noise_image, variants

# single-set pairs file: 3 matched + 3 mismatched
PAIRS = "3\nA\t1\t2\nA\t3\t4\nB\t1\t2\nA\t1\tB\t1\nA\t2\tB\t3\nA\t5\tB\t6\n"


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mini")
    for name, img in (("A", astronaut_face()), ("B", grace_hopper())):
        (root / name).mkdir()
        for i, data in enumerate(variants(img).values(), start=1):
            (root / name / f"{name}_{i:04d}.jpg").write_bytes(data)
    (root / "C").mkdir()
    (root / "C" / "C_0001.png").write_bytes(noise_image())  # no face
    (root / "pairs.txt").write_text(PAIRS)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache") / "mini.npz"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in ("FACELEDGER_HOME", "FACELEDGER_TOKEN", "FACELEDGER_DATABASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("FACELEDGER_HOME", str(tmp_path / "no-home"))
    monkeypatch.setattr(card_mod, "code_version", lambda: {"faceledger": "test", "git": None})


def run(*args: str, ok: bool = True) -> Result:
    app = typer.Typer()
    evaluate.register(app)
    res = CliRunner().invoke(app, list(args))
    if ok and res.exit_code != 0:
        raise AssertionError(f"{args}: exit {res.exit_code}\n{res.output}") from res.exception
    return res


def as_json(res: Result) -> Any:
    return json.loads(res.stdout)


def test_verify(mini: Path, cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "card"
    d = as_json(run("eval", "verify", "--lfw", str(mini), "--pairs", str(mini / "pairs.txt"),
                    "--cache", str(cache), "--workers", "1", "--threshold", "0.95", "--json",
                    "--out", str(out)))
    v = d["verify"]
    assert v["pairs"] == 6 and v["folds"] == 3 and "no folds in the file" in v["protocol"]
    assert v["accuracy"]["mean"] == 1.0 and v["auc"] == 1.0 and v["eer"] == 0.0
    assert v["fallback"]["pair_images_with_fallback"] == 0
    assert v["operating_threshold"]["source"] == "--threshold"
    assert v["operating_threshold"]["fmr"] == 0.0
    assert d["embeddings"]["embedded_now"] == 9  # the 9 images the pairs name
    assert (out / "model-card.md").is_file() and (out / "roc.png").is_file()
    again = as_json(run("eval", "verify", "--lfw", str(mini), "--pairs", str(mini / "pairs.txt"),
                        "--cache", str(cache), "--json"))
    assert again["embeddings"]["embedded_now"] == 0  # all from the cache
    text = run("eval", "verify", "--lfw", str(mini), "--pairs", str(mini / "pairs.txt"),
               "--cache", str(cache)).stdout
    assert "accuracy 100.00%" in text and "packaged calibration" in text


def test_verify_missing_images(mini: Path, tmp_path: Path) -> None:
    bad = tmp_path / "pairs.txt"
    bad.write_text("1\nZed\t1\t2\nA\t1\tB\t9\n")
    res = run("eval", "verify", "--lfw", str(mini), "--pairs", str(bad), ok=False)
    assert isinstance(res.exception, ValidationError) and "missing" in str(res.exception)


def test_identify_with_groups_and_a_process_pool(mini: Path, cache: Path, tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text("identity,group\nA,g1\nB,g2\n")
    d = as_json(run("eval", "identify", "--dataset", str(mini), "--cache", str(cache),
                    "--workers", "2", "--gallery-sizes", "1,all", "--threshold", "0.95",
                    "--groups", str(groups), "--json"))
    r = d["identify"]
    assert r["counts"]["left_out_no_face"] == 1  # the noise image
    assert r["counts"]["enrolled_identities"] == 1 and r["counts"]["unenrolled_identities"] == 1
    (g,) = r["galleries"]  # sizes 1 and all are the same gallery here
    assert g["gallery_size"] == 1 and g["mated_searches"] == 5 and g["nonmated_searches"] == 6
    assert g["rank1"] == 1.0 and g["investigation"]["fnir"] == 0.0
    assert g["operating_threshold"]["fpir"] == 0.0 and g["operating_threshold"]["fnir"] == 0.0
    assert {x["group"] for x in d["groups"]["groups"]} == {"g1", "g2"}
    assert d["groups"]["groups"][0]["mate_pairs"] == 15  # 6 images of A: 6 x 5 / 2
    assert d["groups"]["cross_group"]["false_matches"] == 0


def test_calibrate(mini: Path, cache: Path, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELEDGER_HOME", str(world.app.settings.home))
    monkeypatch.setenv("FACELEDGER_TOKEN", world.investigator_token)
    args = ["calibrate", "--dataset", str(mini), "--cache", str(cache), "--workers", "1"]
    denied = run(*args, "--target-fmr", "0.3", ok=False)
    assert isinstance(denied.exception, PermissionDeniedError)
    monkeypatch.setenv("FACELEDGER_TOKEN", world.admin_token)
    refused = run(*args, "--target-fmr", "1e-3", ok=False)  # 36 non-mate pairs: >= 0.28
    assert isinstance(refused.exception, ValidationError)
    assert "lowest FMR it supports is 0.278" in str(refused.exception)
    d = as_json(run(*args, "--target-fpir", "0.9", "--gallery-size", "2", "--json"))
    assert d["written"] and d["gallery_size"] == 2
    assert d["target_fmr"] == pytest.approx(1 - 0.1 ** 0.5)
    assert d["details"]["nonmate_comparisons"] == 36 and d["details"]["left_out_no_face"] == 1
    with world.app.db.read() as s:
        active = active_calibration(s, world.app.model_id)
        entry = s.query(LedgerEntry).order_by(LedgerEntry.seq.desc()).first()
    assert active.id == d["calibration_id"] and active.threshold == d["threshold"]
    assert entry is not None and entry.kind == "calibration.set" and entry.actor == "root"
    # evaluations now measure at the active calibration's threshold
    v = as_json(run("eval", "verify", "--lfw", str(mini), "--pairs", str(mini / "pairs.txt"),
                    "--cache", str(cache), "--json"))
    assert v["verify"]["operating_threshold"]["threshold"] == d["threshold"]
    assert v["verify"]["operating_threshold"]["source"].startswith(
        f"active calibration {d['calibration_id']}")
    dry = as_json(run(*args, "--target-fmr", "0.4", "--dry-run", "--json"))
    assert not dry["written"]


def test_card_published_into_the_data_home(mini: Path, cache: Path, world: World,
                                           monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    home = world.app.settings.home
    monkeypatch.setenv("FACELEDGER_HOME", str(home))
    assert card_mod.latest_card(home, world.app.model_id) is None
    out = tmp_path / "card"
    d = as_json(run("eval", "card", "--lfw", str(mini), "--pairs", str(mini / "pairs.txt"),
                    "--cache", str(cache), "--workers", "1", "--gallery-sizes", "all",
                    "--out", str(out), "--json"))
    for f in ("model-card.md", "model-card.html", "model-card.json", "roc.png", "cmc.png",
              "fnir_fpir.png", "scores.png"):
        assert (out / f).is_file(), f
    md = (out / "model-card.md").read_text()
    assert "![ROC curve](roc.png)" in md and "Demographic" not in md
    assert "1:1 verification" in md and "1:N identification" in md and "faceledger test" in md
    assert "data:image/png;base64," in (out / "model-card.html").read_text()
    latest = card_mod.latest_card(home, world.app.model_id)
    assert latest is not None and latest.parent == Path(d["published"])
    assert latest.read_text() == (out / "model-card.html").read_text()
    assert d["verify"]["accuracy"]["mean"] == 1.0
