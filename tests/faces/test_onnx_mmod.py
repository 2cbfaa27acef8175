"""The ONNX Runtime MMOD detector gives dlib's own CNN detector's boxes and scores."""

from __future__ import annotations

import stat
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.faces.models.dlib_backend import DlibDetector
from faceledger.faces.models.onnx_mmod import MODEL_STEM, OnnxMmodDetector, default_weights_path
from tests import photos


@cache
def _dlib_cnn() -> object:
    import dlib

    return dlib.cnn_face_detection_model_v1(str(default_weights_path()))


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def _cases() -> dict[str, np.ndarray]:
    face = photos.astronaut_face()
    collage = photos.collage()
    grace = photos.grace_hopper()
    return {
        "astronaut": _rgb(photos.astronaut()),
        "grace_hopper": _rgb(grace),
        "collage": _rgb(collage),
        "small": _rgb(collage.resize((collage.width // 2, collage.height // 2))),
        "grayscale_as_rgb": _rgb(face.convert("L")),
        "rotated": _rgb(grace.resize((256, 300)).rotate(20, expand=True, fillcolor=(128, 128, 128))),
        "padded": _rgb(_pad(face, 40, 30)),
    }


def _pad(img: Image.Image, dx: int, dy: int) -> Image.Image:
    out = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), (0, 0, 0))
    out.paste(img, (dx, dy))
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mmod-cache")


@pytest.fixture(scope="module")
def detectors(cache_dir: Path) -> dict[int, OnnxMmodDetector]:
    return {up: OnnxMmodDetector(cache_dir, upsample=up, threads=1) for up in (0, 1)}


UPSAMPLE_CASES = [(name, 0) for name in
                  ("astronaut", "grace_hopper", "collage", "small", "grayscale_as_rgb", "rotated",
                   "padded")] + [(name, 1) for name in ("small", "grayscale_as_rgb", "padded")]


@pytest.mark.parametrize(("name", "upsample"), UPSAMPLE_CASES)
def test_boxes_equal_dlib_and_scores_within_1e3(
    detectors: dict[int, OnnxMmodDetector], name: str, upsample: int
) -> None:
    pixels = _cases()[name]
    ref = [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence)
           for d in _dlib_cnn()(pixels, upsample)]  # type: ignore[operator]
    got = detectors[upsample].raw_detections(pixels)
    assert [r for r, _ in got] == [r for r, _ in ref], name
    for (_, s_got), (_, s_ref) in zip(got, ref, strict=True):
        assert abs(s_got - s_ref) < 1e-3


def test_detect_matches_dlib_backend_detector(detectors: dict[int, OnnxMmodDetector]) -> None:
    """detect() = DlibDetector(kind="cnn").detect(): clipped, filtered and sorted the same way."""
    pixels = _cases()["collage"]
    ref = DlibDetector("cnn", 0, 0.0).detect(pixels)
    got = detectors[0].detect(pixels)
    assert [d.box for d in got] == [d.box for d in ref]
    assert len(got) == 2
    assert all(abs(a.score - b.score) < 1e-3 for a, b in zip(got, ref, strict=True))


def test_no_face_in_noise(detectors: dict[int, OnnxMmodDetector]) -> None:
    rng = np.random.default_rng(1)
    assert detectors[0].detect(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) == []


def test_tiny_image_gives_nothing_rather_than_failing(detectors: dict[int, OnnxMmodDetector]) -> None:
    assert detectors[0].detect(np.zeros((12, 9, 3), dtype=np.uint8)) == []


def test_cached_onnx_named_by_sha_and_private(
    cache_dir: Path, detectors: dict[int, OnnxMmodDetector]
) -> None:
    import hashlib

    digest = hashlib.sha256(default_weights_path().read_bytes()).hexdigest()[:16]
    path = cache_dir / f"{MODEL_STEM}-{digest}.onnx"
    assert detectors[0].onnx_path == path
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mtime = path.stat().st_mtime_ns
    again = OnnxMmodDetector(cache_dir, upsample=0)
    assert again.onnx_path == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_cpu_provider_used_here(detectors: dict[int, OnnxMmodDetector]) -> None:
    import onnxruntime as ort

    expected = "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() \
        else "CPUExecutionProvider"
    assert detectors[0].providers[0] == expected
