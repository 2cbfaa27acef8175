"""Index kinds by name: ``register_index``, ``create_index``, ``load_index``."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from faceledger.errors import ValidationError
from faceledger.gallery.index.base import IndexFactory, IndexLoader, VectorIndex, read_sidecar

_lock = threading.Lock()
_factories: dict[str, IndexFactory] = {}
_loaders: dict[str, IndexLoader] = {}
# Kinds whose module (and client library) loads on first use: module with a ``register()``.
_LAZY = {"milvus": "faceledger.gallery.index.milvus_backend"}


def register_index(kind: str, factory: IndexFactory, loader: IndexLoader) -> None:
    """Register ``factory(model_id, dim, **params)`` and ``loader(path, mmap)`` under ``kind``."""
    if not kind or not isinstance(kind, str):
        raise ValidationError("index kind must be a non-empty string")
    with _lock:
        _factories[kind] = factory
        _loaders[kind] = loader


def available_kinds() -> list[str]:
    with _lock:
        return sorted(set(_factories) | set(_LAZY))


def _lookup(kind: str, table: dict[str, Any]) -> Any:
    with _lock:
        entry = table.get(kind)
    if entry is None and kind in _LAZY:
        importlib.import_module(_LAZY[kind]).register()
        with _lock:
            entry = table.get(kind)
    if entry is None:
        raise ValidationError(
            f"unknown index kind {kind!r}; available: {', '.join(available_kinds()) or 'none'}",
            kind=kind,
        )
    return entry


def create_index(kind: str, model_id: str, dim: int, **params: Any) -> VectorIndex:
    """Create an empty index of ``kind`` for embeddings of ``model_id`` with ``dim`` components."""
    factory: IndexFactory = _lookup(kind, _factories)
    return factory(model_id, dim, **params)


def load_index(path: Path | str, *, mmap: bool = False) -> VectorIndex:
    """Load an index written by ``save``; its sidecar names the kind and model.

    ``mmap=True`` maps the vectors read-only where the backend supports it; a mapped index copies
    itself into memory on its first ``add``/``remove``.
    """
    path = Path(path)
    meta = read_sidecar(path)
    loader: IndexLoader = _lookup(meta["kind"], _loaders)
    return loader(path, mmap)
