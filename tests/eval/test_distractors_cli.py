"""`eval identify --distractors` end to end with the real models: a mini dataset from
tests/photos.py (A: the astronaut, B: Grace Hopper, C: no face) and a labelled distractor folder
holding another person (the cameraman), a folder named like a dataset identity, an image with no
face and a byte-identical copy of a dataset image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from faceledger.eval import card as card_mod
from tests.eval.test_cli_eval import run
from tests.photos import astronaut_face, encode, grace_hopper, noise_image, variants


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in ("FACELEDGER_HOME", "FACELEDGER_TOKEN", "FACELEDGER_DATABASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("FACELEDGER_HOME", str(tmp_path / "no-home"))
    monkeypatch.setattr(card_mod, "code_version", lambda: {"faceledger": "test", "git": None})


def _folders(root: Path) -> tuple[Path, Path]:
    import skimage.data

    data, dis = root / "data", root / "distractors"
    for name, img in (("A", astronaut_face()), ("B", grace_hopper())):
        (data / name).mkdir(parents=True)
        for i, b in enumerate(variants(img).values(), start=1):
            (data / name / f"{name}_{i:04d}.jpg").write_bytes(b)
    (data / "C").mkdir()
    (data / "C" / "C_0001.png").write_bytes(noise_image())
    camera = Image.fromarray(skimage.data.camera()).convert("RGB")
    for rel, b in (("Cameraman/1.jpg", encode(camera)),
                   ("Cameraman/2.jpg", encode(camera.transpose(Image.Transpose.FLIP_LEFT_RIGHT))),
                   ("B/1.jpg", encode(grace_hopper())),  # named like a dataset identity
                   ("Noise/1.png", noise_image(seed=3)),
                   ("Copy/1.jpg", (data / "A" / "A_0001.jpg").read_bytes())):
        (dis / rel).parent.mkdir(parents=True, exist_ok=True)
        (dis / rel).write_bytes(b)
    return data, dis


def test_identify_with_distractors(tmp_path: Path) -> None:
    data, dis = _folders(tmp_path)
    args = ["eval", "identify", "--dataset", str(data), "--workers", "1", "--gallery-sizes",
            "1,all", "--threshold", "0.95", "--cache", str(tmp_path / "c.npz"),
            "--distractor-cache", str(tmp_path / "d.npz")]
    r = json.loads(run(*args, "--distractors", str(dis), "--json", "--out",
                       str(tmp_path / "card")).stdout)["identify"]
    d = r["distractors"]
    assert d["labelled"] and d["found"] == 5
    assert d["excluded_identities"] == 1 and d["excluded_images"] == 1  # B/ left out by name
    assert d["images"] == 4 and d["no_face"] == 1 and d["identical_to_dataset"] == 1
    assert d["faces"] == 2 and d["duplicates"] == 0  # the cameraman, twice
    small, full = r["galleries"]
    assert small["gallery_size"] == 1 and full["gallery_size"] == 3
    assert full["nonmated_searches"] == 6 + 2 and full["nonmated_from_distractors"] == 2
    assert full["rank1"] == 1.0 and full["operating_threshold"]["fpir"] == 0.0
    assert full["identical_pairs"] == 0
    # all images: the no-face image C is a single-image identity: a failure to enrol
    every = r["all_images"]
    assert every["counts"]["images_no_face"] == 1
    assert every["galleries"][-1]["enrolment_failures"] == 1
    assert every["galleries"][-1]["gallery_size"] == 3
    md = (tmp_path / "card" / "model-card.md").read_text()
    assert "distractors: 2 faces" in md and "All images (" in md
    assert "packaged calibration" in md and "faceledger calibrate --dataset DIR" in md
    text = run(*args, "--distractors", str(dis)).stdout
    assert "distractors: 2 faces from" in text and "figures on all images" in text
    plain = json.loads(run(*args, "--json").stdout)["identify"]
    assert plain["distractors"] is None and plain["galleries"][-1]["gallery_size"] == 1
