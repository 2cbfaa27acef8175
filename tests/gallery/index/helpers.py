from __future__ import annotations

import numpy as np
import numpy.typing as npt


def unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def face_like(
    identities: int, per_identity: int, dim: int = 128, noise: float = 0.03, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``identities * per_identity`` unit vectors scattered around random unit centres.

    Returns ``(vectors, centres)``; vector ``i`` belongs to identity ``i // per_identity``.
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((identities, dim)).astype(np.float32))
    samples = np.repeat(centres, per_identity, axis=0)
    samples = samples + noise * rng.standard_normal(samples.shape).astype(np.float32)
    return unit(samples), centres
