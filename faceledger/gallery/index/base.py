"""The vector-index contract: capabilities, the ``VectorIndex`` protocol and the sidecar format.

Every index holds L2-normalised embeddings made by exactly one face model and is labelled with that
model's id. Scores are inner products, which for unit vectors equal cosine similarity. Result slots
that hold no neighbour carry id ``-1`` and score ``-inf``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceledger.errors import FaceledgerError

IdArray = npt.NDArray[np.int64]
VectorArray = npt.NDArray[np.float32]
ScoreArray = npt.NDArray[np.float32]

SIDECAR_FORMAT = 1
MISSING_ID = -1


class IndexFileError(FaceledgerError):
    """An index file or its sidecar is missing, unreadable or inconsistent."""

    code = "index_file_error"
    status = 500


@dataclass(frozen=True)
class IndexCapabilities:
    exact: bool
    approximate: bool
    supports_remove: bool
    mmap: bool


@runtime_checkable
class VectorIndex(Protocol):
    """A searchable set of ``(id, embedding)`` pairs made by one model."""

    @property
    def kind(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def capabilities(self) -> IndexCapabilities: ...

    def add(self, ids: IdArray, vectors: VectorArray, *, model_id: str | None = None) -> None:
        """Add unit vectors ``(n, dim)`` under new, unique, non-negative ids."""
        ...

    def search(
        self, vectors: VectorArray, k: int, *, model_id: str | None = None
    ) -> tuple[ScoreArray, IdArray]:
        """Return ``(scores, ids)``, both ``(q, k)``, best first; empty slots are ``-1``/``-inf``."""
        ...

    def remove(self, ids: IdArray) -> int:
        """Remove the given ids; return how many were present."""
        ...

    def count(self) -> int: ...

    def ids(self) -> IdArray: ...

    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` plus a JSON sidecar ``<path>.json``."""
        ...


IndexFactory = Callable[..., VectorIndex]
IndexLoader = Callable[[Path, bool], VectorIndex]


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` on a temp file next to ``path``, fsync it, then ``os.replace`` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_sidecar(path: Path, meta: dict[str, Any]) -> None:
    data = json.dumps({"format": SIDECAR_FORMAT, **meta}, indent=2, sort_keys=True).encode()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(sidecar_path(path), write)


def read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError as exc:
        raise IndexFileError(f"index sidecar {side} is missing", path=str(side)) from exc
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"index sidecar {side} is unreadable: {exc}", path=str(side)) from exc
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise IndexFileError(f"index sidecar {side} has an unknown format", path=str(side))
    for key, typ in (
        ("kind", str),
        ("model_id", str),
        ("dim", int),
        ("count", int),
        ("bytes", int),
    ):
        if not isinstance(meta.get(key), typ):
            raise IndexFileError(f"index sidecar {side} lacks a valid {key!r}", path=str(side))
    return meta
