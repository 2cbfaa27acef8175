"""FACELEDGER_UPSAMPLE=auto: HOG at upsample 0, at upsample 1 only where that finds no face or
faces covering under 1/12 of the image, then the CNN fallback; real dlib HOG on the test photos,
and a fake detector that counts passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from faceledger.faces.decode import DecodedImage
from faceledger.faces.detect import Box, Detection, Detector, UntilFound
from faceledger.faces.models.dlib_backend import DlibDetector
from faceledger.faces.pipeline import FacePipeline
from faceledger.settings import Settings
from tests import photos


class Counting:
    """A detector that counts its calls and returns what ``inner`` (or ``canned``) gives."""

    def __init__(self, inner: Detector | None = None, canned: list[Detection] | None = None,
                 name: str = "counting") -> None:
        self.inner, self.canned, self.name, self.calls = inner, canned or [], name, 0

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        self.calls += 1
        return self.inner.detect(pixels) if self.inner is not None else list(self.canned)


def _image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, format="PNG", width=pixels.shape[1], height=pixels.shape[0])


def _scaled(img: Image.Image, s: float) -> np.ndarray:
    size = (int(img.width * s), int(img.height * s))
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upsample-auto-home")


@pytest.fixture(scope="module")
def auto(home: Path) -> FacePipeline:
    return FacePipeline.from_settings(Settings(home=home, upsample="auto"))


@pytest.fixture()
def passes(auto: FacePipeline, monkeypatch: pytest.MonkeyPatch) -> tuple[Counting, ...]:
    """The auto pipeline's two HOG passes and its CNN fallback, counted (restored afterwards:
    the loaded model is shared by the whole test process)."""
    det = auto.model.detector
    assert isinstance(det, UntilFound) and auto.fallback is not None
    first, second = (Counting(d) for d in det.detectors)
    fallback = Counting(auto.fallback)
    monkeypatch.setattr(det, "detectors", (first, second))
    monkeypatch.setattr(auto, "fallback", fallback)
    return first, second, fallback


def test_settings_take_auto_and_keep_ints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELEDGER_UPSAMPLE", raising=False)
    assert Settings().upsample == "auto"  # the default (bench/detect_bench.py)
    monkeypatch.setenv("FACELEDGER_UPSAMPLE", "1")
    assert Settings().upsample == 1
    monkeypatch.setenv("FACELEDGER_UPSAMPLE", "auto")
    assert Settings().upsample == "auto"
    monkeypatch.setenv("FACELEDGER_UPSAMPLE", "2")
    assert Settings().upsample == 2
    for bad in ("4", "-1", "Auto", "twice"):
        monkeypatch.setenv("FACELEDGER_UPSAMPLE", bad)
        with pytest.raises(ValidationError):
            Settings()


def test_auto_detector_is_two_hog_passes_named_as_such(auto: FacePipeline, home: Path) -> None:
    det = auto.model.detector
    assert isinstance(det, UntilFound)
    assert [(d.kind, d.upsample) for d in det.detectors if isinstance(d, DlibDetector)] == [
        ("hog", 0), ("hog", 1)]
    assert det.name == ("dlib-hog (upsample 0; 1 where 0 finds no face or faces covering under "
                        "1/12 of the image)")
    assert det.enough == pytest.approx(1 / 12)
    first, second = det.detectors
    assert isinstance(first, DlibDetector) and isinstance(second, DlibDetector)
    assert first._hog is second._hog  # one pool of HOG objects: upsampling is a call argument
    fixed = FacePipeline.from_settings(Settings(home=home, upsample=1)).model.detector
    assert isinstance(fixed, DlibDetector) and fixed.upsample == 1 and fixed.name == "dlib-hog"


def test_until_found_stops_at_the_first_detector_that_finds_a_face() -> None:
    face = [Detection(Box(1, 2, 30, 40), 0.9)]
    pixels = np.zeros((8, 8, 3), np.uint8)
    hit, unused = Counting(canned=face), Counting(canned=face)
    assert UntilFound(hit, unused, name="x").detect(pixels) == face
    assert (hit.calls, unused.calls) == (1, 0)
    miss, second = Counting(), Counting(canned=face)
    assert UntilFound(miss, second, name="x").detect(pixels) == face
    assert (miss.calls, second.calls) == (1, 1)
    a, b = Counting(), Counting()
    assert UntilFound(a, b, name="x").detect(pixels) == []
    assert (a.calls, b.calls) == (1, 1)
    with pytest.raises(ValueError):
        UntilFound(name="none")


def test_until_found_goes_on_while_the_faces_found_cover_little_of_the_image() -> None:
    pixels = np.zeros((120, 120, 3), np.uint8)  # 14,400 px; a 30x30 box covers 1/16
    big = [Detection(Box(0, 0, 60, 60), 0.9)]  # covers 1/4
    small = [Detection(Box(0, 0, 30, 30), 0.9)]
    more = [*small, Detection(Box(60, 60, 90, 90), 0.8), Detection(Box(0, 60, 20, 80), 0.7)]
    first, second = Counting(canned=big), Counting(canned=more)
    assert UntilFound(first, second, name="x", enough=1 / 12).detect(pixels) == big
    assert (first.calls, second.calls) == (1, 0)
    first, second = Counting(canned=small), Counting(canned=more)
    assert UntilFound(first, second, name="x", enough=1 / 12).detect(pixels) == more
    assert (first.calls, second.calls) == (1, 1)
    first, second = Counting(canned=more), Counting(canned=small)  # the pass with most faces
    assert UntilFound(first, second, name="x", enough=1 / 2).detect(pixels) == more
    assert (first.calls, second.calls) == (1, 1)


def test_big_face_is_found_at_upsample_0_without_a_second_pass(
        auto: FacePipeline, passes: tuple[Counting, ...]) -> None:
    first, second, fallback = passes
    for img in (photos.astronaut_face().crop((40, 30, 300, 270)), photos.grace_hopper()):
        pixels = np.asarray(img)
        found = auto.detect(_image(pixels))
        assert len(found) == 1 and min(found[0].box.width, found[0].box.height) >= 80
        box = found[0].box
        assert box.width * box.height >= pixels.shape[0] * pixels.shape[1] / 12
    assert (first.calls, second.calls, fallback.calls) == (2, 0, 0)


def test_face_too_small_for_upsample_0_is_found_by_the_second_pass(
        auto: FacePipeline, passes: tuple[Counting, ...]) -> None:
    first, second, fallback = passes
    pixels = _scaled(photos.astronaut_face(), 0.55)  # the face is ~50 px
    assert first.inner is not None and auto.find(pixels, first.inner, None) == []  # u0 alone
    first.calls = 0
    found = auto.detect(_image(pixels))
    assert len(found) == 1 and 40 <= found[0].box.width <= 60
    assert (first.calls, second.calls, fallback.calls) == (1, 1, 0)
    faces = auto.process_decoded(_image(pixels)).faces
    assert len(faces) == 1 and faces[0].quality.face_px >= 40


def test_a_small_face_beside_a_larger_one_in_a_wide_photo_is_found(
        auto: FacePipeline, home: Path) -> None:
    """The two-face collage at 0.6: upsample 0 finds only the ~70 px face, which covers under
    1/12 of the frame, so the second pass runs and finds both (as upsample 1 does)."""
    pixels = _scaled(photos.collage(), 0.6)
    zero = FacePipeline.from_settings(Settings(home=home, upsample=0, detect_fallback=False))
    assert len(zero.detect(_image(pixels))) == 1
    one = FacePipeline.from_settings(Settings(home=home, upsample=1))
    assert len(one.detect(_image(pixels))) == 2
    assert len(auto.detect(_image(pixels))) == 2


def test_a_small_face_beside_one_that_fills_the_frame_is_the_trade(
        auto: FacePipeline, home: Path) -> None:
    """What auto gives up: a ~50 px face next to a face filling the frame is not looked for;
    upsample 1 finds both."""
    big = photos.astronaut_face().crop((40, 30, 300, 270))
    small = big.resize((big.width * 50 // 86, big.height * 50 // 86), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (big.width + small.width, big.height), (128, 128, 128))
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width, big.height - small.height))
    pixels = np.asarray(canvas)
    one = FacePipeline.from_settings(Settings(home=home, upsample=1))
    assert len(one.detect(_image(pixels))) == 2
    assert len(auto.detect(_image(pixels))) == 1


def test_no_face_runs_both_passes_then_the_fallback(
        auto: FacePipeline, passes: tuple[Counting, ...]) -> None:
    first, second, fallback = passes
    assert auto.detect(_image(np.full((120, 160, 3), 128, np.uint8))) == []
    assert (first.calls, second.calls, fallback.calls) == (1, 1, 1)
