"""Input checks shared by every index backend. All raise ``ValidationError``/``ModelMismatchError``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ModelMismatchError, ValidationError

if TYPE_CHECKING:
    from faceledger.gallery.index.base import IdArray, VectorArray

MAX_K = 10_000
NORM_TOLERANCE = 1e-3


def check_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValidationError("model_id must be a non-empty string")
    return model_id


def check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or int(dim) <= 0:
        raise ValidationError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def check_same_model(index_model: str, given: str | None, action: str) -> None:
    if given is not None and given != index_model:
        raise ModelMismatchError(
            f"refusing to {action}: the embeddings were made by model {given!r} but this index "
            f"holds embeddings of model {index_model!r}; embeddings of different models are "
            "not comparable",
            index_model_id=index_model,
            model_id=given,
        )


def check_vectors(vectors: Any, dim: int, *, require_unit: bool = True) -> VectorArray:
    """Return ``vectors`` as a C-contiguous float32 ``(n, dim)`` array of finite unit vectors."""
    if not isinstance(vectors, np.ndarray):
        raise ValidationError(f"vectors must be a numpy array, got {type(vectors).__name__}")
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValidationError(
            f"vectors must have shape (n, {dim}), got {vectors.shape}",
            expected_dim=dim,
            shape=list(vectors.shape),
        )
    if vectors.dtype not in (np.float32, np.float64):
        raise ValidationError(f"vectors must be float32 (or float64), got dtype {vectors.dtype}")
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if out.shape[0] == 0:
        return out
    # einsum: no (n, dim) temporaries (a 10M-vector rebuild would need 5 GB more for them)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))
    if not np.isfinite(norms).all() and not np.isfinite(out).all():
        raise ValidationError("vectors contain NaN or infinite values")
    if require_unit:
        bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
        if bad.size:
            raise ValidationError(
                f"vectors must be L2-normalised; row {int(bad[0])} has norm {float(norms[bad[0]]):.4f}",
                rows=bad[:10].tolist(),
            )
    return out


def check_ids(ids: Any, n: int | None = None) -> IdArray:
    """Return ``ids`` as a contiguous 1-D int64 array of non-negative ids (``n`` of them if given)."""
    if not isinstance(ids, np.ndarray):
        ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValidationError(f"ids must be a 1-D array, got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValidationError(f"ids must be integers, got dtype {ids.dtype}")
    if n is not None and ids.shape[0] != n:
        raise ValidationError(f"got {ids.shape[0]} ids for {n} vectors")
    if ids.size and ids.dtype == np.uint64 and int(ids.max()) > np.iinfo(np.int64).max:
        raise ValidationError("ids must fit in int64")
    out = np.ascontiguousarray(ids, dtype=np.int64)
    if out.size and int(out.min()) < 0:
        raise ValidationError("ids must be non-negative (-1 marks an empty result slot)")
    return out


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise ValidationError(f"k must be an integer in [1, {MAX_K}], got {k!r}")
    return int(k)
