"""Faces the fast detector misses: a border added before detecting, the accurate detector (dlib's
MMOD CNN on ONNX Runtime) where HOG finds nothing, and the settings that turn both off."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.faces.decode import DecodedImage
from faceledger.faces.detect import Box, Detection, padded, unpadded
from faceledger.faces.embed import similarity
from faceledger.faces.models.dlib_backend import DlibDetector
from faceledger.faces.models.onnx_mmod import OnnxMmodDetector
from faceledger.faces.pipeline import FacePipeline
from faceledger.settings import Settings
from tests import photos

# HOG's face boxes (upsample 1) on the two source pictures below
GRACE_BOX = (79, 68, 187, 175)
ASTRO_BOX = (116, 76, 205, 166)


def _grace() -> Image.Image:
    return photos.grace_hopper().resize((256, 300))


def border_crop(img: Image.Image, box: tuple[int, int, int, int], frac: float = 0.85) -> np.ndarray:
    """92x112 grayscale, the face filling the frame: forehead and chin touch the border."""
    cx, hgt = (box[0] + box[2]) / 2, (box[3] - box[1]) * frac
    wid, cy = hgt * 92 / 112, (box[1] + box[3]) / 2 + 0.05 * hgt
    crop = img.crop((int(cx - wid / 2), int(cy - hgt / 2), int(cx + wid / 2), int(cy + hgt / 2)))
    return np.asarray(crop.convert("L").resize((92, 112), Image.Resampling.LANCZOS).convert("RGB"))


def side_shadow(img: Image.Image, floor: float = 0.03, soft: float = 3) -> np.ndarray:
    """The left half of the picture darkened to ``floor`` of its level: harsh side light."""
    a = np.asarray(img.convert("RGB")).astype(np.float32)
    x = np.arange(a.shape[1])
    gain = floor + (1 - floor) / (1 + np.exp(-(x - a.shape[1] / 2) / soft))
    return np.clip(a * gain[None, :, None], 0, 255).astype(np.uint8)


def rotated(img: Image.Image, angle: float = 50) -> np.ndarray:
    return np.asarray(img.rotate(angle, expand=True, fillcolor=(128, 128, 128)))


def _image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels=pixels, format="PNG", width=pixels.shape[1], height=pixels.shape[0])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("detect-home")


@pytest.fixture(scope="module")
def pipes(home: Path) -> dict[str, FacePipeline]:
    """HOG at upsample 1 with neither and with padding only (the old detector: the HOG-misses
    premises below hold for it); and the defaults (upsample auto, padding, the fallback)."""
    return {
        "old": FacePipeline.from_settings(Settings(home=home, detect_pad=0, detect_fallback=False,
                                                  upsample=1)),
        "pad": FacePipeline.from_settings(Settings(home=home, detect_fallback=False, upsample=1)),
        "default": FacePipeline.from_settings(Settings(home=home)),
    }


def _inside(d: Detection, pixels: np.ndarray) -> bool:
    h, w = pixels.shape[:2]
    b = d.box
    return 0 <= b.left < b.right <= w and 0 <= b.top < b.bottom <= h


@pytest.mark.parametrize("source", ["grace", "astronaut"])
def test_face_touching_the_border_is_found_with_padding_only(
        pipes: dict[str, FacePipeline], source: str) -> None:
    img, box = (_grace(), GRACE_BOX) if source == "grace" else (photos.astronaut_face(), ASTRO_BOX)
    pixels = border_crop(img, box)
    assert pipes["old"].detect(_image(pixels)) == []  # HOG alone misses it
    found = pipes["pad"].detect(_image(pixels))
    assert len(found) == 1 and _inside(found[0], pixels)
    assert found[0].box.height >= 60  # the face, not a speck: it fills most of the 112 px


def test_border_face_aligns_and_matches_its_person(pipes: dict[str, FacePipeline]) -> None:
    """A clipped box still aligns: the crop's face is nearer the same person in full than the
    other person (alignment and embedding use the original pixels, not the padded ones)."""
    pipe = pipes["pad"]
    grace = pipe.process(photos.encode(_grace())).faces[0].embedding
    astro = pipe.process(photos.encode(photos.astronaut_face())).faces[0].embedding
    crop = pipe.process_decoded(_image(border_crop(_grace(), GRACE_BOX))).faces
    assert len(crop) == 1
    assert similarity(crop[0].embedding, grace) > similarity(crop[0].embedding, astro) + 0.05


@pytest.mark.parametrize(("effect", "who"), [("side_light", "astronaut"), ("side_light", "grace"),
                                           ("rotated", "grace"), ("rotated", "astronaut")])
def test_fallback_finds_a_face_hog_misses(pipes: dict[str, FacePipeline], effect: str,
                                          who: str) -> None:
    src = _grace() if who == "grace" else photos.astronaut_face()
    pixels = side_shadow(src) if effect == "side_light" else rotated(src)
    assert pipes["pad"].detect(_image(pixels)) == []  # HOG, even padded, misses it
    found = pipes["default"].detect(_image(pixels))
    assert len(found) == 1 and _inside(found[0], pixels)
    faces = pipes["default"].process_decoded(_image(pixels)).faces
    same = pipes["default"].process(photos.encode(src)).faces[0].embedding
    other_src = photos.astronaut_face() if who == "grace" else _grace()
    other = pipes["default"].process(photos.encode(other_src)).faces[0].embedding
    assert similarity(faces[0].embedding, same) > similarity(faces[0].embedding, other)


def test_no_false_faces_on_blank_or_noise(pipes: dict[str, FacePipeline]) -> None:
    blank = np.full((200, 240, 3), 128, np.uint8)
    edge = blank.copy()
    edge[:, :3] = 255  # a bright edge column, repeated 16 times by the padding
    for pixels in (blank, edge, np.asarray(Image.open(io.BytesIO(photos.noise_image())))):
        assert pipes["default"].detect(_image(pixels)) == []


def test_settings_off_restore_the_old_detector(home: Path, pipes: dict[str, FacePipeline]) -> None:
    old, default = pipes["old"], pipes["default"]
    assert old.detect_pad == 0 and old.fallback is None
    assert default.detect_pad == 16 and default.fallback is not None
    collage = np.asarray(photos.collage())
    raw = old.model.detector.detect(collage)
    assert old.detect(_image(collage)) == sorted(raw, key=lambda d: (d.box.left, d.box.top))
    assert len(raw) == 2
    # a detector of kind "cnn" needs no fallback
    assert FacePipeline.from_settings(Settings(home=home, detector="cnn", upsample=0)).fallback is None


def test_cnn_detector_runs_on_onnx_by_default_and_dlib_stays_selectable(home: Path) -> None:
    onnx = FacePipeline.from_settings(Settings(home=home, detector="cnn", upsample=0))
    dlib = FacePipeline.from_settings(Settings(home=home, detector="cnn", upsample=0,
                                               detector_runtime="dlib"))
    assert isinstance(onnx.model.detector, OnnxMmodDetector)
    assert isinstance(dlib.model.detector, DlibDetector) and dlib.model.detector.kind == "cnn"
    assert list((home / "models").glob("mmod_human_face_detector-*.onnx"))  # cached in the home
    pixels = np.asarray(photos.collage())
    assert onnx.detect(_image(pixels)) != [] and [d.box for d in onnx.detect(_image(pixels))] == [
        d.box for d in dlib.detect(_image(pixels))]


def test_fallback_on_a_scaled_copy_maps_boxes_back(pipes: dict[str, FacePipeline]) -> None:
    """The fallback sees at most fallback_pixels: boxes come back in the photo's coordinates."""
    pipe = pipes["default"]
    small = side_shadow(photos.astronaut_face())
    big = np.asarray(Image.fromarray(small).resize((small.shape[1] * 3, small.shape[0] * 3)))
    assert pipe.fallback is not None
    a = pipe.find(small, pipe.fallback, None)
    b = pipe.find(big, pipe.fallback, small.shape[0] * small.shape[1])
    assert len(a) == len(b) == 1
    for va, vb in zip(a[0].box.as_list(), b[0].box.as_list(), strict=True):
        assert abs(3 * va - vb) <= 12


def test_unpadded_maps_clips_and_drops_border_boxes() -> None:
    dets = [Detection(Box(10, 6, 60, 70), 1.0),  # partly in the border: clipped
            Detection(Box(-20, 0, 14, 30), 0.5),  # centre in the border: dropped
            Detection(Box(30, 30, 50, 50), 0.7)]
    out = unpadded(dets, 16, 40, 40)
    assert out == [Detection(Box(0, 0, 40, 40), 1.0), Detection(Box(14, 14, 34, 34), 0.7)]
    px = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    p = padded(px, 2)
    assert p.shape == (6, 7, 3) and (p[2:4, 2:5] == px).all() and (p[0, 0] == px[0, 0]).all()
    assert padded(px, 0) is px
