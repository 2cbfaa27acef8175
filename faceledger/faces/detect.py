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
