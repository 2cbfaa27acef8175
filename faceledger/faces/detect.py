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
