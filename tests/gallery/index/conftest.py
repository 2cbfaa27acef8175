from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from .helpers import face_like


@pytest.fixture(scope="session")
def clustered() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """20k face-like vectors: 2000 identities x 10 samples, 128-d."""
    return face_like(2000, 10, seed=42)
