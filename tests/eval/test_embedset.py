"""Dataset walking, the embedding cache and exclusion lists (no models needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger.errors import ValidationError
from faceledger.eval.card import latest_card, publish
from faceledger.eval.embedset import (
    Row,
    apply_exclusions,
    cache_meta,
    load_cache,
    save_cache,
    walk_dataset,
)
from faceledger.settings import Settings


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
    rows: dict[str, tuple[int, Row]] = {"a/1.jpg": (10, (vec, True, 2, "")),
                                        "b/1.jpg": (5, (None, False, 0, "bad_image: x"))}
    path = tmp_path / "c.npz"
    save_cache(path, meta, rows, 4)
    back = load_cache(path, meta)
    assert back["a/1.jpg"][0] == 10 and np.allclose(back["a/1.jpg"][1][0], vec)  # type: ignore[arg-type]
    assert back["a/1.jpg"][1][1:] == (True, 2, "")
    assert back["b/1.jpg"][1][0] is None and back["b/1.jpg"][1][3] == "bad_image: x"
    other = cache_meta(Settings(home=tmp_path, detector="cnn"))
    with pytest.raises(ValidationError, match="other settings"):
        load_cache(path, other)
    assert load_cache(tmp_path / "none.npz", meta) == {}


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
