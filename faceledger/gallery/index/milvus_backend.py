"""Milvus as the vector engine: one Milvus collection per face model, filtered by gallery collection.

``FACELEDGER_VECTOR_URI`` names a Milvus server or cluster (``http://host:19530``) or a local
file ending in ``.db`` (Milvus Lite, which serves one process at a time). Every model's collection
holds ``face_id`` (int64 primary key), ``collection_id`` (int64, the partition key, so a filter on
it prunes) and ``vector`` (FLOAT_VECTOR, metric IP: the vectors are L2-normalised). A
``MilvusIndex`` is the ``VectorIndex`` view of one (model, gallery collection). Writes are upserts
and deletes, both idempotent, so several processes may repair the same collection at once.

``pymilvus`` is imported on first connection only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ModelMismatchError, ValidationError
from faceledger.gallery.index.base import (
    MISSING_ID,
    IdArray,
    IndexCapabilities,
    IndexFileError,
    ScoreArray,
    VectorArray,
)
from faceledger.gallery.index.validation import (
    check_dim,
    check_ids,
    check_k,
    check_model_id,
    check_same_model,
    check_vectors,
)

if TYPE_CHECKING:
    from faceledger.settings import Settings

KIND = "milvus"
MODEL_PROPERTY = "faceledger.model_id"
WRITE_BATCH = 2_000  # rows per upsert (128-d: ~1 MB per request)
READ_BATCH = 10_000  # rows per query-iterator page
ID_BATCH = 1_000  # ids per ``in [...]`` filter
RANGE_LIMIT = 16_384  # Milvus's largest top-k: the most ids one range search returns per vector
RADIUS_SLACK = 1e-5  # a range search keeps scores above its radius; scores equal to a
# threshold count as reaching it (``>=``), so the radius sits this far below it
# Measured with pymilvus 3.0 / milvus-lite 3.2: these build; IVF_PQ, DISKANN, SCANN, GPU_* are
# accepted by the API but fail in the background, and search silently falls back to brute force.
LITE_INDEXES = frozenset({"FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX"})
DEFAULT_BUILD = {"HNSW": {"M": 32, "efConstruction": 128}, "HNSW_SQ": {"M": 32, "efConstruction": 128},
                 "IVF_FLAT": {"nlist": 1024}, "IVF_SQ8": {"nlist": 1024}}
_REMOTE = ("http://", "https://", "tcp://", "grpc://", "unix:")


def is_lite(uri: str) -> bool:
    """A local Milvus Lite file rather than a server."""
    return not uri.startswith(_REMOTE)


@dataclass(frozen=True)
class MilvusConfig:
    uri: str
    token: str | None = None
    prefix: str = "faceledger"
    index_type: str = "HNSW"
    index_params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)
    ef_search: int = 128
    nprobe: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusConfig:
        if not settings.vector_uri:
            raise ValidationError("vector_uri is not set: the faiss index files are in use")
        return check_config(cls(
            uri=settings.vector_uri, token=settings.vector_token, prefix=settings.vector_prefix,
            index_type=settings.vector_index.upper(), index_params=dict(settings.vector_index_params),
            search_params=dict(settings.vector_search_params), ef_search=settings.index_ef_search,
            nprobe=settings.index_nprobe))

    def build_params(self) -> dict[str, Any]:
        return self.index_params or dict(DEFAULT_BUILD.get(self.index_type, {}))

    def query_params(self, k: int) -> dict[str, Any]:
        """Search parameters for top-``k``: the settings', else defaults (HNSW's ``ef`` >= k)."""
        params = dict(self.search_params)
        if self.index_type.startswith("HNSW"):
            params["ef"] = max(int(params.get("ef", self.ef_search)), k)
        elif self.index_type.startswith("IVF"):
            params.setdefault("nprobe", self.nprobe)
        return params


def check_config(config: MilvusConfig) -> MilvusConfig:
    """Refuse index types Milvus Lite cannot build (they would quietly search by brute force)."""
    if is_lite(config.uri):
        if not config.uri.endswith(".db"):
            raise ValidationError(f"vector_uri {config.uri!r} is neither a Milvus server "
                                  "(http://host:19530) nor a Milvus Lite file ending in .db")
        if config.index_type not in LITE_INDEXES:
            raise ValidationError(
                f"Milvus Lite cannot build a {config.index_type} index (it builds "
                f"{', '.join(sorted(LITE_INDEXES))}); use one of those, or a Milvus server or "
                "cluster for DISKANN, IVF_PQ, SCANN and GPU indexes", index_type=config.index_type)
    return config


def collection_name(prefix: str, model_id: str) -> str:
    """The model's Milvus collection: letters, digits and ``_`` only, plus a digest of the exact
    model id so that two ids that sanitise alike never share a collection."""
    check_model_id(model_id)
    clean = re.sub(r"[^A-Za-z0-9_]", "_", model_id)[:120]
    return f"{prefix}_{clean}_{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def connect(config: MilvusConfig) -> Any:
    """A ``MilvusClient`` for the configured URI (Milvus Lite creates the file's folder)."""
    from pymilvus import MilvusClient  # type: ignore[import-untyped]

    if is_lite(config.uri):
        Path(config.uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri=config.uri, token=config.token or "")
    except Exception as exc:  # pymilvus raises many kinds; the message says which
        hint = (" (Milvus Lite serves one process at a time: stop the other one, or use a Milvus "
                "server)" if is_lite(config.uri) else "")
        raise IndexFileError(f"cannot open Milvus at {config.uri}: {exc}{hint}",
                             uri=config.uri) from exc


def ensure_collection(client: Any, config: MilvusConfig, model_id: str, dim: int) -> str:
    """Create the model's collection if missing (else check it holds this model and dim), loaded."""
    name = collection_name(config.prefix, model_id)
    if not client.has_collection(name):
        try:
            _create(client, config, name, model_id, dim)
        except Exception:  # another process may have created it meanwhile
            if not client.has_collection(name):
                raise
    desc = client.describe_collection(name)
    held = (desc.get("properties") or {}).get(MODEL_PROPERTY)
    if held is not None and held != model_id:
        raise ModelMismatchError(f"Milvus collection {name} holds embeddings of model {held!r}, "
                                 f"not {model_id!r}", index_model_id=held, model_id=model_id)
    have = next((int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == "vector"), dim)
    if have != dim:
        raise IndexFileError(f"Milvus collection {name} holds {have}-d vectors, model "
                             f"{model_id!r} makes {dim}-d ones", collection=name)
    client.load_collection(name)
    return name


def _create(client: Any, config: MilvusConfig, name: str, model_id: str, dim: int) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.INT64, is_primary=True)
    schema.add_field("collection_id", DataType.INT64, is_partition_key=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type=config.index_type, metric_type="IP",
                     params=config.build_params())
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
    client.alter_collection_properties(name, properties={MODEL_PROPERTY: model_id})


def _chunks(ids: IdArray, size: int) -> Iterable[list[int]]:
    for start in range(0, ids.size, size):
        yield [int(i) for i in ids[start:start + size]]


class MilvusIndex:
    """The ``VectorIndex`` of one (model, gallery collection) inside the model's Milvus collection."""

    kind = KIND

    def __init__(self, client: Any, config: MilvusConfig, model_id: str, dim: int,
                 collection_id: int) -> None:
        self._model_id = check_model_id(model_id)
        self._dim = check_dim(dim)
        self.collection_id = int(collection_id)
        self.config = config
        self._client = client
        self.name = ensure_collection(client, config, model_id, self._dim)
        self._scope = f"collection_id == {self.collection_id}"
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def capabilities(self) -> IndexCapabilities:
        exact = self.config.index_type == "FLAT"
        return IndexCapabilities(exact=exact, approximate=not exact, supports_remove=True, mmap=False)

    def __repr__(self) -> str:
        return f"MilvusIndex({self.name}, collection {self.collection_id})"

    def add(self, ids: IdArray, vectors: VectorArray, *, model_id: str | None = None) -> None:
        """Upsert ``(id, vector)`` rows: adding an id again replaces its vector."""
        check_same_model(self._model_id, model_id, "add embeddings")
        vectors = check_vectors(vectors, self._dim)
        ids = check_ids(ids, vectors.shape[0])
        for start in range(0, ids.size, WRITE_BATCH):
            rows = [{"face_id": int(i), "collection_id": self.collection_id, "vector": v.tolist()}
                    for i, v in zip(ids[start:start + WRITE_BATCH],
                                    vectors[start:start + WRITE_BATCH], strict=True)]
            self._client.upsert(self.name, rows)

    def search(self, vectors: VectorArray, k: int, *, model_id: str | None = None,
               exclude: Sequence[int] = ()) -> tuple[ScoreArray, IdArray]:
        """Top-``k`` within this gallery collection, leaving out the ``exclude`` face ids."""
        check_same_model(self._model_id, model_id, "search")
        vectors = check_vectors(vectors, self._dim, require_unit=False)
        k = check_k(k)
        scores = np.full((vectors.shape[0], k), -np.inf, dtype=np.float32)
        found = np.full((vectors.shape[0], k), MISSING_ID, dtype=np.int64)
        if vectors.shape[0] == 0:
            return scores, found
        where = self._scope
        if len(exclude):  # (Milvus Lite has no filter templates: the ids go in the text)
            where += f" and face_id not in {sorted({int(i) for i in exclude})}"
        result = self._client.search(self.name, data=vectors.tolist(), limit=k, filter=where,
                                     output_fields=["face_id"],
                                     search_params={"metric_type": "IP",
                                                    "params": self.config.query_params(k)})
        for row, hits in enumerate(result):
            for col, hit in enumerate(list(hits)[:k]):
                found[row, col] = int(hit["face_id"])
                scores[row, col] = float(hit["distance"])
        return scores, found

    def within(self, vectors: VectorArray, threshold: float, *, limit: int = RANGE_LIMIT
               ) -> IdArray:
        """The ids of this collection whose similarity to any of ``vectors`` is at least about
        ``threshold`` (a range search: at most ``limit`` per vector, approximate like any search
        of the index, and a hair below the threshold included: callers check what they use)."""
        vectors = check_vectors(vectors, self._dim, require_unit=False)
        if vectors.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        params = {**self.config.query_params(1), "radius": float(threshold) - RADIUS_SLACK}
        result = self._client.search(self.name, data=vectors.tolist(), limit=int(limit),
                                     filter=self._scope, output_fields=["face_id"],
                                     search_params={"metric_type": "IP", "params": params})
        return np.unique(np.asarray([int(h["face_id"]) for hits in result for h in hits],
                                    dtype=np.int64))

    def present(self, ids: IdArray) -> IdArray:
        """Which of ``ids`` this collection holds."""
        out: list[int] = []
        for chunk in _chunks(check_ids(ids), ID_BATCH):
            rows = self._client.query(self.name, filter=f"{self._scope} and face_id in {chunk}",
                                      output_fields=["face_id"])
            out.extend(int(r["face_id"]) for r in rows)
        return np.asarray(sorted(out), dtype=np.int64)

    def remove(self, ids: IdArray) -> int:
        ids = check_ids(ids)
        n = int(self.present(ids).size)
        for chunk in _chunks(ids, ID_BATCH):
            self._client.delete(self.name, filter=f"{self._scope} and face_id in {chunk}")
        return n

    def clear(self) -> None:
        self._client.delete(self.name, filter=self._scope)

    def count(self) -> int:
        rows = self._client.query(self.name, filter=self._scope, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> IdArray:
        it = self._client.query_iterator(self.name, filter=self._scope, output_fields=["face_id"],
                                         batch_size=READ_BATCH)
        out: list[int] = []
        try:
            while batch := it.next():
                out.extend(int(r["face_id"]) for r in batch)
        finally:
            it.close()
        return np.unique(np.asarray(out, dtype=np.int64))

    def vectors(self, ids: IdArray) -> dict[int, VectorArray]:
        """The stored vectors of those of ``ids`` present, by id."""
        out: dict[int, VectorArray] = {}
        for chunk in _chunks(check_ids(ids), ID_BATCH):
            rows = self._client.query(self.name, filter=f"{self._scope} and face_id in {chunk}",
                                      output_fields=["face_id", "vector"])
            out.update({int(r["face_id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows})
        return out

    def flush(self) -> None:
        self._client.flush(self.name)

    def save(self, path: Path) -> None:
        """Milvus keeps the data itself: flush it (``path`` is not used)."""
        self.flush()


def create_milvus_index(model_id: str, dim: int, *, config: MilvusConfig, collection_id: int,
                        client: Any = None) -> MilvusIndex:
    """The registry's factory: ``create_index("milvus", model, dim, config=..., collection_id=...)``."""
    return MilvusIndex(client if client is not None else connect(check_config(config)), config,
                       model_id, dim, collection_id)


def load_milvus_index(path: Path, mmap: bool) -> MilvusIndex:
    raise IndexFileError(f"a Milvus index lives in its Milvus server, not in a file ({path}): "
                         "set FACELEDGER_VECTOR_URI", path=str(path))


def register() -> None:
    """Called by the registry the first time the ``milvus`` kind is asked for."""
    from faceledger.gallery.index.registry import register_index

    register_index(KIND, create_milvus_index, load_milvus_index)
