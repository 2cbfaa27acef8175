"""Index parameters that grow with the index: tables kept as data (``data/index_params.json``).

A graph searched with a fixed ``efSearch`` loses recall as it grows (measured: efSearch 128 gives
recall@10 0.995 at 1M faces, 0.937 at 10M), so the search width, and the ``efConstruction`` of
graphs built or grown at that size, come from the first row of the table whose ``max_faces`` is
at least the index's face count. ``FACELEDGER_INDEX_EF_SEARCH`` is a floor over the table.
The ``ivfpq`` table (``faiss_ivfpq.py``) gives lists, PQ sub-quantizers, lists probed and the
re-rank factor by the face count an IVF-PQ index is trained for, chosen the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any, Protocol, TypeVar

from faceledger.errors import ValidationError


@dataclass(frozen=True)
class HnswParams:
    """One row of the table: the parameters for indexes of up to ``max_faces`` faces."""

    max_faces: int | None  # None: no upper bound (the last row)
    ef_search: int
    ef_construction: int


def _check_caps(caps: list[int | None]) -> None:
    if caps[-1] is not None or None in caps[:-1]:
        raise ValidationError("only the last index parameter row may (and must) have max_faces null")
    bounded = [c for c in caps if c is not None]
    if bounded != sorted(set(bounded)):
        raise ValidationError("index parameter rows must have increasing max_faces")


def _rows(data: Any, name: str) -> list[tuple[int | None, dict[str, Any]]]:
    """The ``name`` rows of a parsed ``index_params.json``: (max_faces, row), checked."""
    rows = data.get(name) if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValidationError(f"index parameters need a non-empty {name!r} list")
    out: list[tuple[int | None, dict[str, Any]]] = []
    for row in rows:
        if not isinstance(row, dict):
            raise ValidationError(f"index parameter row must be an object, got {row!r}")
        cap = row.get("max_faces")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValidationError(f"max_faces must be a positive integer or null, got {cap!r}")
        out.append((cap, row))
    _check_caps([cap for cap, _row in out])
    return out


@lru_cache(maxsize=1)
def _packaged() -> Any:
    """The packaged ``index_params.json``, parsed (read once, on first use, not at import)."""
    return json.loads(files("faceledger.data").joinpath("index_params.json").read_text("utf-8"))


class _Row(Protocol):
    @property
    def max_faces(self) -> int | None: ...


R = TypeVar("R", bound=_Row)


def _row_for(count: int, rows: tuple[R, ...]) -> R:
    """The first row whose ``max_faces`` is at least ``count`` (the parsers guarantee a null
    last row)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValidationError(f"count must be a non-negative integer, got {count!r}")
    for row in rows:
        if row.max_faces is None or count <= row.max_faces:
            return row
    return rows[-1]  # pragma: no cover - the parsers guarantee a null last row


def parse_table(data: Any) -> tuple[HnswParams, ...]:
    """Check and order the ``hnsw`` rows of a parsed ``index_params.json``."""
    out: list[HnswParams] = []
    for cap, row in _rows(data, "hnsw"):
        efs, efc = row.get("ef_search"), row.get("ef_construction")
        for name, v in (("ef_search", efs), ("ef_construction", efc)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValidationError(f"{name} must be an integer >= 2, got {v!r}")
        out.append(HnswParams(cap, int(efs), int(efc)))  # type: ignore[arg-type]  # checked above
    return tuple(out)


@lru_cache(maxsize=1)
def default_table() -> tuple[HnswParams, ...]:
    """The packaged table (read on first use, not at import)."""
    return parse_table(_packaged())


def hnsw_params(count: int, table: tuple[HnswParams, ...] | None = None) -> HnswParams:
    """The row that applies to an index of ``count`` faces."""
    return _row_for(count, table if table is not None else default_table())


def ef_search_for(count: int, floor: int, table: tuple[HnswParams, ...] | None = None) -> int:
    """efSearch for an index of ``count`` faces: the table's value, never below ``floor``
    (``FACELEDGER_INDEX_EF_SEARCH``)."""
    return max(int(floor), hnsw_params(count, table).ef_search)


# ------------------------------------------------------------------ ivfpq
@dataclass(frozen=True)
class IvfPqParams:
    """One row of the ``ivfpq`` table: IVF lists, PQ sub-quantizers (4 bits each), lists probed
    per query and the re-rank factor (``k * k_factor`` fast-scan candidates re-scored exactly)."""

    max_faces: int | None  # None: no upper bound (the last row)
    nlist: int
    m: int
    nprobe: int
    k_factor: int


def _positive(row: dict[str, Any], name: str, least: int = 1) -> int:
    v = row.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValidationError(f"ivfpq {name} must be an integer >= {least}, got {v!r}")
    return v


def parse_ivfpq_table(data: Any) -> tuple[IvfPqParams, ...]:
    """Check and order the ``ivfpq`` rows of a parsed ``index_params.json``."""
    return tuple(IvfPqParams(cap, _positive(row, "nlist"), _positive(row, "m"),
                             _positive(row, "nprobe"), _positive(row, "k_factor"))
                 for cap, row in _rows(data, "ivfpq"))


@lru_cache(maxsize=1)
def default_ivfpq_table() -> tuple[IvfPqParams, ...]:
    """The packaged ``ivfpq`` table (read on first use, not at import)."""
    return parse_ivfpq_table(_packaged())


def ivfpq_params(count: int, table: tuple[IvfPqParams, ...] | None = None) -> IvfPqParams:
    """The ``ivfpq`` row that applies to an index of ``count`` faces."""
    return _row_for(count, table if table is not None else default_ivfpq_table())


def ivfpq_search(count: int, nlist: int, table: tuple[IvfPqParams, ...] | None = None
                 ) -> tuple[int, int]:
    """(nprobe, k_factor) for a trained index of ``count`` faces in ``nlist`` lists: the size
    table's row for ``count``, its nprobe scaled to ``nlist`` (the same fraction of the lists
    probed; the row may name more lists than the index was trained with), within 1..nlist."""
    row = ivfpq_params(count, table)
    return max(1, min(nlist, round(row.nprobe * nlist / row.nlist))), row.k_factor
