"""Dataset walking, the subject-face rule, the embedding cache and exclusion lists."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import numpy.typing as npt
import pytest

from faceledger.errors import ValidationError
from faceledger.eval.card import latest_card, publish
from faceledger.eval.embedset import (
    Row,
    apply_exclusions,
    cache_meta,
    embed_image,
    load_cache,
    rescue_detector,
    save_cache,
    walk_dataset,
)
from faceledger.faces.detect import Box, Detection
from faceledger.settings import Settings
from tests.photos import astronaut


def test_walk_dataset(tmp_path: Path) -> None:
    for rel in ("b/x.JPG", "a/2.png", "a/sub/1.jpg", "a/notes.txt", ".hidden/1.jpg", "a/.1.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "top.jpg").write_bytes(b"x")  # not in an identity folder
    assert walk_dataset(tmp_path) == ["a/2.png", "a/sub/1.jpg", "b/x.JPG"]
    (tmp_path / "empty" / "nobody").mkdir(parents=True)
    with pytest.raises(ValidationError, match="no images"):
        walk_dataset(tmp_path / "empty")
    with pytest.raises(ValidationError, match="does not exist"):
        walk_dataset(tmp_path / "missing")


def test_cache_round_trip_and_settings_check(tmp_path: Path) -> None:
    meta = cache_meta(Settings(home=tmp_path))
    vec = (np.arange(4) / 10).astype(np.float32)
    rows: dict[str, tuple[int, Row]] = {"a/1.jpg": (10, (vec, True, 2, "", "")),
                                        "c/1.jpg": (7, (vec, False, 0, "", "cnn")),
                                        "b/1.jpg": (5, (None, False, 0, "bad_image: x", ""))}
    path = tmp_path / "c.npz"
    save_cache(path, meta, rows, 4)
    back = load_cache(path, meta)
    assert back["a/1.jpg"][0] == 10 and np.allclose(back["a/1.jpg"][1][0], vec)  # type: ignore[arg-type]
    assert back["a/1.jpg"][1][1:] == (True, 2, "", "")
    assert back["c/1.jpg"][1][1:] == (False, 0, "", "cnn")
    assert back["b/1.jpg"][1][0] is None and back["b/1.jpg"][1][3] == "bad_image: x"
    for other in (cache_meta(Settings(home=tmp_path, detector="cnn")),
                  cache_meta(Settings(home=tmp_path, jitters=10))):
        with pytest.raises(ValidationError, match="other settings"):
            load_cache(path, other)
    assert load_cache(tmp_path / "none.npz", meta) == {}


class _Boxes:
    """A detector that returns fixed boxes (to test the rescue order without models)."""

    def __init__(self, *boxes: Box) -> None:
        self.boxes = boxes
        self.calls = 0
        self.kind = "cnn"

    def detect(self, pixels: npt.NDArray[np.uint8]) -> list[Detection]:
        self.calls += 1
        return [Detection(b, 1.0) for b in self.boxes]


class _Pipe:
    """decode -> fixed detector -> aligner/embedder that remember the box they were given."""

    def __init__(self, detector: _Boxes) -> None:
        self.boxes: list[Box] = []
        pipe = self

        class Aligner:
            def align(self, pixels: npt.NDArray[np.uint8], box: Box) -> Box:
                pipe.boxes.append(box)
                return box

        class Embedder:
            def embed(self, faces: list[Box]) -> list[SimpleNamespace]:
                return [SimpleNamespace(vector=np.ones(4, dtype=np.float32)) for _ in faces]

        self.model = SimpleNamespace(detector=detector, aligner=Aligner(), embedder=Embedder())

    def decode(self, data: bytes) -> SimpleNamespace:
        return SimpleNamespace(pixels=np.zeros((200, 100, 3), dtype=np.uint8))


def test_subject_face_and_rescue_order() -> None:
    near, far = Box(30, 80, 70, 120), Box(0, 0, 20, 20)
    pipe = _Pipe(_Boxes(far, near))
    rescue = _Boxes(Box(1, 1, 9, 9))
    assert embed_image(pipe, b"", rescue)[1:] == (True, 2, "", "")  # type: ignore[arg-type]
    assert pipe.boxes[-1] == near and rescue.calls == 0  # nearest the centre; no rescue needed
    pipe = _Pipe(_Boxes())
    assert embed_image(pipe, b"", rescue)[1:] == (False, 0, "", "cnn")  # type: ignore[arg-type]
    assert pipe.boxes[-1] == Box(1, 1, 9, 9)
    assert embed_image(pipe, b"", _Boxes())[1:] == (False, 0, "", "centre")  # type: ignore[arg-type]
    assert pipe.boxes[-1] == Box(25, 50, 75, 150)  # the middle half of 100 x 200
    assert embed_image(pipe, b"")[4] == "centre"  # type: ignore[arg-type]


def test_exclusions(tmp_path: Path) -> None:
    rel = ["A/A_0001.jpg", "A/A_0002.jpg", "B/B_0001.jpg", "C/C_0001.jpg"]
    lst = tmp_path / "x.txt"
    lst.write_text("# reviewed\nA/A_0002.jpg   # duplicate\n\nC\n")
    kept, dropped = apply_exclusions(rel, lst)
    assert kept == ["A/A_0001.jpg", "B/B_0001.jpg"] and dropped == ["A/A_0002.jpg", "C/C_0001.jpg"]
    lst.write_text("Nobody\n")
    with pytest.raises(ValidationError, match="name no image or identity"):
        apply_exclusions(rel, lst)


def test_latest_card_is_the_newest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert latest_card(home, "m") is None
    for text in ("old", "new"):
        out = tmp_path / text
        out.mkdir()
        (out / "model-card.html").write_text(text)
        publish(out, home, "m")
    (home / "model-cards" / "m" / "zzz-incomplete").mkdir()  # no card inside: ignored
    card = latest_card(home, "m")
    assert card is not None and card.read_text() == "new"
    assert latest_card(home, "other-model") is None


def test_rescue_detector_is_the_models_other_detector(tmp_path: Path) -> None:
    r = rescue_detector(Settings(home=tmp_path))
    assert r is not None and r.kind == "cnn"
    found = r.detect(np.asarray(astronaut()))  # the real dlib CNN detector, loaded on first use
    assert len(found) == 1 and found[0].box.width > 50
    other = rescue_detector(Settings(home=tmp_path, detector="cnn"))
    assert other is not None and other.kind == "hog"
