"""Stage 3: landmarks and the aligned face chip the embedder sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from faceledger.faces.detect import Box


@dataclass(frozen=True)
class AlignedFace:
    landmarks: list[tuple[int, int]]  # 5 points: eye corners and nose base (dlib order)
    chip: np.ndarray  # (size, size, 3) uint8 RGB, aligned
    handle: object = None  # backend-specific shape object, if the embedder can reuse it


class Aligner(Protocol):
    name: str
    chip_size: int

    def align(self, pixels: np.ndarray, box: Box) -> AlignedFace: ...
