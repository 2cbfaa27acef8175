"""Tiny synthetic embedding sets with known answers (no models, no files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceledger.eval.embedset import EmbedSet


def embed_set(items: list[tuple[str, list[float]]]) -> EmbedSet:
    """``items``: (relative path 'identity/file.jpg', vector); vectors are L2-normalised here."""
    v = np.array([x for _, x in items], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    paths = [p for p, _ in items]
    n = len(items)
    return EmbedSet(Path("synthetic"), "test-model", paths,
                    np.array([p.split("/")[0] for p in paths], dtype=str), v,
                    np.ones(n, dtype=bool), np.ones(n, dtype=np.int64), np.full(n, "", dtype=str))


def clustered(n_ids: int, per_id: list[int], dim: int = 64, noise: float = 0.05,
              seed: int = 0) -> EmbedSet:
    """Identity k gets per_id[k % len(per_id)] images near its own random direction."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(n_ids):
        centre = rng.normal(size=dim)
        centre /= np.linalg.norm(centre)
        for j in range(per_id[k % len(per_id)]):
            items.append((f"id{k:03d}/id{k:03d}_{j + 1:04d}.jpg",
                          list(centre + noise * rng.normal(size=dim) / np.sqrt(dim))))
    return embed_set(items)
