"""Stage 4: embeddings, each labelled with the model that made it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from faceledger.errors import ModelMismatchError

if TYPE_CHECKING:
    from faceledger.faces.align import AlignedFace


@dataclass(frozen=True)
class Embedding:
    model_id: str
    vector: np.ndarray  # (dim,) float32, L2-normalised

    def to_bytes(self) -> bytes:
        return self.vector.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, model_id: str, data: bytes) -> Embedding:
        return cls(model_id, np.frombuffer(data, dtype="<f4").astype(np.float32))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return out


def check_same_model(expected: str, actual: str) -> None:
    if expected != actual:
        raise ModelMismatchError(
            f"refusing to compare embeddings of model {actual!r} with model {expected!r}; "
            "re-embed with one model (faceledger index rebuild) first",
            expected=expected,
            actual=actual,
        )


def similarity(a: Embedding, b: Embedding) -> float:
    """Cosine similarity; refuses embeddings of different models."""
    check_same_model(a.model_id, b.model_id)
    return float(np.dot(a.vector, b.vector))


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, faces: Sequence[AlignedFace]) -> list[Embedding]: ...
