"""Stage 2: find faces. A detector returns boxes with a confidence score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            max(0, self.left), max(0, self.top), min(width, self.right), min(height, self.bottom)
        )

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


class Detector(Protocol):
    """Finds faces in an RGB uint8 image."""

    name: str

    def detect(self, pixels: np.ndarray) -> list[Detection]: ...


def padded(pixels: np.ndarray, pad: int) -> np.ndarray:
    """``pixels`` inside a border of ``pad`` pixels that repeat the edge rows and columns, so a
    face whose forehead or chin touches the frame still fits a detector's window."""
    if pad <= 0:
        return pixels
    return np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")


def unpadded(detections: list[Detection], pad: int, width: int, height: int) -> list[Detection]:
    """Boxes found in ``padded(pixels, pad)`` in the coordinates of ``pixels`` (``width`` x
    ``height``), clipped to it. A box whose centre lies in the border is dropped: what the
    detector saw there is the repeated edge, not a face of the photo."""
    out = []
    for d in detections:
        box = Box(d.box.left - pad, d.box.top - pad, d.box.right - pad, d.box.bottom - pad)
        cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
        if not (0 <= cx < width and 0 <= cy < height):
            continue
        box = box.clipped(width, height)
        if box.width > 0 and box.height > 0:
            out.append(Detection(box, d.score))
    return out


class BySize:
    """``small`` on images whose shorter side is under ``short_side`` pixels, else ``large``
    (e.g. the same detector with and without upsampling)."""

    def __init__(self, small: Detector, large: Detector, short_side: int) -> None:
        self.small, self.large, self.short_side = small, large, short_side
        self.name = f"{large.name} (upsampled below {short_side} px)"

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        small = min(pixels.shape[:2]) < self.short_side
        return (self.small if small else self.large).detect(pixels)


# ``upsample`` value (in the model options) for ``UntilFound``: dlib's HOG at upsample 0 and,
# where that finds no face or faces covering under AUTO_ENOUGH of the image, at upsample 1
# (settings: ``FACELEDGER_UPSAMPLE=auto``).
UPSAMPLE_AUTO = -1
AUTO_ENOUGH = 1 / 12  # LFW's centred faces cover 8.3-40% of the frame; a group photo's, less


class UntilFound:
    """Each detector in turn until one finds faces covering at least ``enough`` of the image:
    e.g. HOG without upsampling (faces from ~80 px, a quarter of the work) and, only where that
    finds none or finds faces covering a small part of the frame (a group photo, a crowd: room
    for smaller faces), upsampled once (from ~40 px). The pass that found most faces wins. A
    small face beside faces that fill the frame (a portrait's background) is not looked for."""

    def __init__(self, *detectors: Detector, name: str, enough: float = 0.0) -> None:
        if not detectors:
            raise ValueError("UntilFound needs at least one detector")
        self.detectors = detectors
        self.name = name
        self.enough = enough

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        best: list[Detection] = []
        area = max(1, pixels.shape[0] * pixels.shape[1])
        for detector in self.detectors:
            found = detector.detect(pixels)
            if len(found) >= len(best):
                best = found
            cover = sum(d.box.width * d.box.height for d in found) / area
            if found and cover >= self.enough:
                break
        return best
