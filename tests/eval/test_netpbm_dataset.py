"""`eval identify` on a folder-per-identity set of Netpbm scans (issue 10 part 13): images are
listed by content, not by a fixed list of suffixes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from faceledger.cli import evaluate
from faceledger.eval.embedset import walk_dataset
from tests.netpbm import pgm, ppm
from tests.photos import astronaut_face, encode, grace_hopper, variants


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    for name, img, make in (("A", astronaut_face(), pgm), ("B", grace_hopper(), ppm)):
        (root / name).mkdir(parents=True)
        for i, data in enumerate(list(variants(img).values())[:3], start=1):
            (root / name / f"{name}_{i:04d}.{'pgm' if make is pgm else 'ppm'}").write_bytes(
                make(_open(data)))
    (root / "B" / "B_0004").write_bytes(encode(grace_hopper().resize((300, 380))))  # JPEG, no name
    (root / "B" / "notes.txt").write_text("scanned 2024-05-01")
    (root / "A" / "Thumbs.db").write_bytes(b"\x00" * 64)
    return root


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_walk_lists_netpbm_and_unnamed_images(scans: Path) -> None:
    assert walk_dataset(scans) == ["A/A_0001.pgm", "A/A_0002.pgm", "A/A_0003.pgm",
                                   "B/B_0001.ppm", "B/B_0002.ppm", "B/B_0003.ppm", "B/B_0004"]


def test_eval_identify_on_netpbm_scans(scans: Path, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("FACELEDGER_HOME", str(tmp_path / "no-home"))
    app = typer.Typer()
    evaluate.register(app)
    res = CliRunner().invoke(app, ["eval", "identify", "--dataset", str(scans), "--workers", "1",
                                   "--gallery-sizes", "all", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    r = d["identify"]
    assert r["counts"]["images"] == 7  # was "no images found" before Netpbm was read
    assert r["counts"]["left_out_no_face"] == 0 and r["counts"]["left_out_errors"] == 0
    (g,) = r["galleries"]
    assert g["rank1"] == 1.0
